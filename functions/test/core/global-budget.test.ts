import { describe, expect, it } from "vitest";
import { GlobalBudgetGate, type GlobalTotals } from "../../src/core/global-budget.js";

/** The global budget on a cached total (docs/scaling.md): what it admits, when it reads, and its bound. */
function setup(initial: GlobalTotals = { spentMicros: 0, reservedMicros: 0 }) {
  let now = 1_000_000;
  let reads = 0;
  let totals = { ...initial };
  const gate = new GlobalBudgetGate(
    {
      read: async () => {
        reads++;
        return { ...totals };
      },
    },
    { now: () => now },
    1_000,
  );
  return {
    gate,
    reads: () => reads,
    advance: (ms: number) => (now += ms),
    /** A reservation written to a shard (another instance's, or ours): visible once the total is read again. */
    written: (micros: number) => (totals = { ...totals, reservedMicros: totals.reservedMicros + micros }),
  };
}

describe("GlobalBudgetGate", () => {
  it("admits on the cached total plus what this instance holds, reading at most once a refresh interval", async () => {
    const { gate, reads, advance } = setup();
    await gate.ready("2026-11", 1_000_000);
    for (let i = 0; i < 5; i++) (await gate.hold("2026-11", 1_000, 100)).committed();
    expect(gate.total("2026-11")).toBe(500);
    expect(reads()).toBe(1);
    advance(1_001);
    await gate.ready("2026-11", 1_000_000); // stale: refreshes in the background, does not wait
    expect(reads()).toBe(2);
  });

  it("decides again on a fresh total before refusing: what fits is never refused because a figure was stale", async () => {
    const { gate, reads } = setup({ spentMicros: 950, reservedMicros: 0 });
    await gate.ready("2026-11", 1_000_000);
    // Cached: 950 spent, so 100 more does not fit in 1,000 …
    const refusal = gate.hold("2026-11", 1_000, 100);
    await expect(refusal).rejects.toMatchObject({ category: "budget_exceeded" });
    expect(reads()).toBe(2); // … and it read again before refusing.
  });

  it("a request larger than the budget split over any number of shards is admitted when the total has room", async () => {
    const { gate } = setup();
    await gate.ready("2026-11", 1_000_000);
    // $5 budget, 2,000 shards: the old per-shard allowance was $0.0025; one request of $4 fits in the whole.
    await expect(gate.hold("2026-11", 5_000_000, 4_000_000)).resolves.toBeDefined();
  });

  it("overspends by at most what other instances admitted between two reads, then refuses", async () => {
    const { gate, advance, written } = setup();
    const budget = 10_000;
    await gate.ready("2026-11", 1_000_000);
    // Another instance admits 3 × 1,000 after our read: we cannot see it until we read again.
    written(3_000);
    let admitted = 0;
    for (let i = 0; i < 20; i++) {
      const hold = await gate.hold("2026-11", budget, 1_000).catch(() => undefined);
      if (hold) {
        hold.committed();
        written(1_000); // our own shard write
        admitted++;
      }
      advance(1);
    }
    // We admitted the whole budget as we saw it; the first refusal read again and saw everything.
    expect(admitted).toBe(10);
    expect(gate.total("2026-11")).toBe(13_000);
    // Over by 3,000: exactly the other instance's admissions inside the window, the documented bound.
    expect(gate.total("2026-11") - budget).toBe(3_000);
  });

  it("within a tenth of the budget, decides on a fresh total for every admission", async () => {
    const { gate, reads } = setup({ spentMicros: 950, reservedMicros: 0 });
    await gate.ready("2026-11", 1_000);
    await gate.ready("2026-11", 1_000);
    await gate.ready("2026-11", 1_000);
    expect(reads()).toBe(3);
  });

  it("forgets a hold whose admission did not commit", async () => {
    const { gate } = setup();
    await gate.ready("2026-11", 1_000_000);
    const hold = await gate.hold("2026-11", 1_000, 600);
    hold.release();
    await expect(gate.hold("2026-11", 1_000, 600)).resolves.toBeDefined();
  });
});
