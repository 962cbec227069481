import { describe, expect, it } from "vitest";
import type { ExecutionError } from "../../src/core/errors.js";
import { ALLOWANCE_FRACTION, GlobalBudgetGate, NEAR_FRACTION } from "../../src/core/global-budget.js";

/**
 * The global budget on cached and fresh totals (docs/scaling.md), driven the way the Firestore
 * store drives it: each admission begins, awaits `ready` alongside its own reads, holds, commits
 * its shard write, reports the commit's time, and ends. The shards are a stand-in for Firestore:
 * one total, a server clock that stamps every read and commit, and round trips of a few turns of
 * the event loop, so that several instances (gates) interleave as they would.
 */

const MONTH = "2090-01";
const REFRESH_MS = 1_000;

/** The documented bound: N instances, r the largest reservation, A the allowance. */
const bound = (instances: number, largest: number, budget: number) => (instances - 1) * (largest + 3 * ALLOWANCE_FRACTION * budget);

/** mulberry32: a seeded generator, so that a failing interleaving can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

class Shards {
  total = 0;
  reads = 0;
  /** The server's clock (µs): one tick per read or commit. */
  private time = 0;
  readonly events: string[] = [];
  constructor(private readonly turns: () => number = () => 1) {}

  async roundTrip(): Promise<void> {
    for (let i = this.turns(); i > 0; i--) await new Promise((resolve) => setImmediate(resolve));
  }

  readonly source = {
    read: async (_month: string) => {
      this.reads++;
      await this.roundTrip();
      const readTime = ++this.time;
      this.events.push("read");
      const totals = { spentMicros: 0, reservedMicros: this.total, readTime };
      await this.roundTrip();
      return totals;
    },
  };

  /** A committed shard write: its server time. */
  async commit(micros: number): Promise<number> {
    await this.roundTrip();
    this.total += micros;
    this.events.push("commit");
    const writeTime = ++this.time;
    await this.roundTrip();
    return writeTime;
  }
}

function world(turns?: () => number) {
  let now = 1_000_000;
  const clock = { now: () => now };
  const shards = new Shards(turns);
  return {
    shards,
    instance: () => new GlobalBudgetGate(shards.source, clock, REFRESH_MS),
    advance: (ms: number) => (now += ms),
  };
}

/** What each instance's admissions begun and not yet committed or ended may hold. */
const inFlight = new Map<GlobalBudgetGate, number>();

/** One admission as executions-repo.ts makes it; false when refused. */
async function admit(gate: GlobalBudgetGate, shards: Shards, budget: number, micros: number, onRefusal?: () => void): Promise<boolean> {
  const admission = gate.admission(MONTH, budget, micros);
  let open = micros;
  inFlight.set(gate, (inFlight.get(gate) ?? 0) + open);
  const close = () => {
    inFlight.set(gate, inFlight.get(gate)! - open);
    open = 0;
  };
  try {
    await Promise.all([shards.roundTrip(), admission.ready]);
    await admission.hold(micros);
    const writeTime = await shards.commit(micros);
    close();
    admission.committed(writeTime);
    return true;
  } catch (error) {
    if ((error as ExecutionError).category !== "budget_exceeded") throw error;
    close();
    onRefusal?.();
    return false;
  } finally {
    close();
    admission.end();
  }
}

describe("GlobalBudgetGate", () => {
  it("far from the budget decides on the cached total: one read per refresh interval, not one per admission", async () => {
    const { shards, instance, advance } = world();
    const gate = instance();
    const budget = 1_000_000_000;
    for (let i = 0; i < 6; i++) expect(await admit(gate, shards, budget, 100)).toBe(true);
    expect(shards.reads).toBe(1); // the first, with no total yet
    expect(gate.total(MONTH)).toBe(600);
    advance(REFRESH_MS);
    expect(await admit(gate, shards, budget, 100)).toBe(true); // decided on the cached total; a read starts behind it
    expect(shards.reads).toBe(2);
    advance(REFRESH_MS); // the background read finished; this one is a refresh interval old again, not two
    expect(await admit(gate, shards, budget, 100)).toBe(true);
    expect(shards.reads).toBe(3);
  });

  it("counts its own admission once, whether or not the total read while it committed includes it", async () => {
    const { shards, instance } = world();
    const gate = instance();
    await gate.refresh(MONTH);
    const admission = gate.admission(MONTH, 1_000, 600);
    await admission.ready;
    await admission.hold(600);
    // A read starts while the commit is on its way, and is taken after it: it includes the 600.
    const committing = shards.commit(600);
    const reading = gate.refresh(MONTH);
    admission.committed(await committing);
    admission.end();
    await reading;
    expect(gate.total(MONTH)).toBe(600); // once (it was 1,200 when the gate compared local times)
    // So 300 more fits in 1,000, and is admitted.
    expect(await admit(gate, shards, 1_000, 300)).toBe(true);
    expect(gate.total(MONTH)).toBe(900);
  });

  it("keeps counting its own admission when the total it reads was taken before the commit", async () => {
    const { shards, instance } = world();
    const gate = instance();
    await gate.refresh(MONTH);
    const admission = gate.admission(MONTH, 1_000, 600);
    await admission.ready;
    await admission.hold(600);
    const reading = gate.refresh(MONTH); // taken first: does not include the 600
    const committing = shards.commit(600);
    await reading;
    admission.committed(await committing);
    admission.end();
    expect(gate.total(MONTH)).toBe(600);
    expect(await admit(gate, shards, 1_000, 500)).toBe(false);
  });

  it("refuses only on a fresh total: what fits overall is admitted although the cached total said no", async () => {
    const { shards, instance } = world();
    const [gate, other] = [instance(), instance()];
    const budget = 1_000_000;
    expect(await admit(other, shards, budget, 950_000)).toBe(true);
    await gate.refresh(MONTH); // 950,000 of 1,000,000 as cached
    shards.total -= 950_000; // the other instance's execution settled for nothing
    const readsBefore = shards.reads;
    expect(await admit(gate, shards, budget, 100_000)).toBe(true);
    expect(shards.reads).toBe(readsBefore + 1);
    // And what does not fit in the fresh total is refused.
    expect(await admit(gate, shards, budget, 950_000)).toBe(false);
  });

  it("a request larger than the budget split over any number of shards is admitted when the total has room", async () => {
    const { shards, instance } = world();
    // $5 budget, 2,000 shards: the old per-shard allowance was $0.0025; one request of $4 fits in the whole.
    expect(await admit(instance(), shards, 5_000_000, 4_000_000)).toBe(true);
  });

  it("near the budget, every admission reads a fresh total, after the instance's previous admission committed", async () => {
    const { shards, instance } = world();
    const gate = instance();
    const budget = 1_000;
    // Ten at once, within the last tenth of the budget from the start (a reservation is a tenth).
    const admitted = await Promise.all(Array.from({ length: 12 }, () => admit(gate, shards, budget, 100)));
    expect(admitted.filter(Boolean)).toHaveLength(10);
    // One at a time: read, commit, read, commit … and two reads that refuse.
    expect(shards.events).toEqual([...Array.from({ length: 10 }, () => ["read", "commit"]).flat(), "read", "read"]);
    expect(shards.total).toBe(budget);
  });

  it("within its allowance an instance admits on cached totals; beyond it, on fresh ones", async () => {
    const { shards, instance, advance } = world();
    const gate = instance();
    const budget = 10_000_000_000;
    const allowance = ALLOWANCE_FRACTION * budget; // 1,000,000 a refresh interval
    expect(await admit(gate, shards, budget, 400_000)).toBe(true); // fresh: no total yet
    expect(await admit(gate, shards, budget, 400_000)).toBe(true); // cached: 400,000 of the allowance
    expect(await admit(gate, shards, budget, 400_000)).toBe(true); // cached: 800,000
    expect(shards.reads).toBe(1);
    expect(await admit(gate, shards, budget, 400_000)).toBe(true); // 1,200,000 > allowance: fresh
    expect(shards.reads).toBe(2);
    expect(allowance).toBe(1_000_000);
    advance(REFRESH_MS + 1); // the allowance is per refresh interval
    expect(await admit(gate, shards, budget, 400_000)).toBe(true);
    expect(shards.reads).toBe(3); // the background refresh of a total one interval old, not a fresh read
  });

  it("in the budget's last tenth, reads a fresh total for every admission, however small", async () => {
    const { shards, instance } = world();
    const [gate, other] = [instance(), instance()];
    const budget = 1_000_000_000;
    expect(await admit(other, shards, budget, 850_000_000)).toBe(true);
    expect(await admit(gate, shards, budget, 100)).toBe(true); // its first read
    expect(await admit(gate, shards, budget, 100)).toBe(true); // cached: 850,000,200 of 1,000,000,000 leaves more than a tenth
    expect(shards.reads).toBe(2);
    expect(await admit(other, shards, budget, 60_000_000)).toBe(true); // the other instance takes the total into the last tenth
    await gate.refresh(MONTH);
    const reads = shards.reads;
    for (let i = 0; i < 3; i++) expect(await admit(gate, shards, budget, 100)).toBe(true);
    expect(shards.reads).toBe(reads + 3);
  });

  it("another instance's admissions on cached totals go unseen until the next read: at most its allowance in an interval", async () => {
    const { shards, instance, advance } = world();
    const [gate, other] = [instance(), instance()];
    const budget = 10_000_000_000; // an allowance of 1,000,000 a refresh interval
    expect(await admit(gate, shards, budget, 100)).toBe(true);
    expect(await admit(other, shards, budget, 100)).toBe(true);
    // Inside the gate's staleness window the other instance admits on its cached total …
    expect(await admit(other, shards, budget, 400_000)).toBe(true);
    expect(await admit(other, shards, budget, 400_000)).toBe(true);
    expect(gate.total(MONTH)).toBe(shards.total - 800_100); // … unseen by the gate (nor is the other's first 100)
    // … until its allowance is spent: then it decides on fresh totals, one at a time.
    const reads = shards.reads;
    expect(await admit(other, shards, budget, 400_000)).toBe(true);
    expect(shards.reads).toBe(reads + 1);
    advance(REFRESH_MS);
    expect(await admit(gate, shards, budget, 100)).toBe(true); // and the gate reads again behind it
    await shards.roundTrip();
    expect(gate.total(MONTH)).toBe(shards.total);
  });

  it("an admission on the cached total is decided as it begins: its instance's next admissions count it, and holding needs no read", async () => {
    const { shards, instance } = world();
    const gate = instance();
    const budget = 10_000_000_000; // an allowance of 1,000,000 a refresh interval
    await gate.refresh(MONTH);
    const first = gate.admission(MONTH, budget, 600_000); // up to 600,000 (a conversation's bound, say)
    const second = gate.admission(MONTH, budget, 600_000); // would pass the allowance with the first: a fresh total
    await Promise.all([first.ready, second.ready]);
    expect(shards.reads).toBe(2);
    await first.hold(500_000); // what the first turned out to reserve
    await second.hold(600_000);
    expect(shards.reads).toBe(2);
    expect(gate.total(MONTH)).toBe(1_100_000);
    first.end();
    second.end();
    expect(gate.total(MONTH)).toBe(0);
  });

  it("does not decide on a total two refresh intervals old", async () => {
    const { shards, instance, advance } = world();
    const gate = instance();
    await gate.refresh(MONTH);
    advance(2 * REFRESH_MS);
    const admission = gate.admission(MONTH, 1_000_000_000, 100);
    await admission.ready;
    expect(shards.reads).toBe(2);
    admission.end();
  });

  it("forgets a hold whose admission did not commit", async () => {
    const { shards, instance } = world();
    const gate = instance();
    const admission = gate.admission(MONTH, 1_000, 600);
    await admission.ready;
    await admission.hold(600);
    admission.end(); // the commit failed
    expect(gate.total(MONTH)).toBe(0);
    expect(await admit(gate, shards, 1_000, 600)).toBe(true);
  });

  for (const instances of [2, 3]) {
    it(`${instances} instances, 50 admissions at once near the budget: overspend ≤ (N − 1) × (r + 3A), what fits is admitted`, async () => {
      const { shards, instance } = world();
      const gates = Array.from({ length: instances }, instance);
      const r = 1_000;
      const budget = 10 * r;
      const admitted = (await Promise.all(Array.from({ length: 50 }, (_, i) => admit(gates[i % instances]!, shards, budget, r)))).filter(Boolean).length;
      expect(admitted).toBeGreaterThanOrEqual(10);
      expect(shards.total - budget).toBeLessThanOrEqual(bound(instances, r, budget));
      // Here A is a hundredth of r: every admission was on a fresh total, and each other instance had
      // at most one in flight that a given admission could not see.
      expect(admitted).toBeLessThanOrEqual(10 + (instances - 1));
    });
  }

  it("staggered admissions on several instances, cached and fresh, random latencies: overspend ≤ (N − 1) × (r + 3A), never a refusal of what fits", async () => {
    for (let seed = 1; seed <= 24; seed++) {
      const rand = seeded(seed);
      const { shards, instance, advance } = world(() => 1 + Math.floor(rand() * 4));
      const instances = 2 + (seed % 4);
      const gates = Array.from({ length: instances }, instance);
      // Budgets of 50 and 200 of the largest reservations, and one of 2,000 (an allowance of a fifth of
      // the largest a refresh interval) already spent but for 260: admissions on cached totals, then fresh ones.
      const r = 1_000;
      const budget = r * [50, 200, 2_000][seed % 3]!;
      if (seed % 3 === 2) shards.total = budget - 260 * r;
      const running: Promise<boolean>[] = [];
      let unjust = 0;
      let refusals = 0;
      for (let i = 0; running.length < 800; i++) {
        const gate = gates[Math.floor(rand() * instances)]!;
        const micros = 1 + Math.floor(rand() * r);
        running.push(
          admit(gate, shards, budget, micros, () => {
            // Refused on a total no larger than the truth (the shards, and what this instance's other
            // admissions may hold uncommitted), in which it does not fit: nothing counted twice.
            if (gate.total(MONTH) > shards.total + (inFlight.get(gate) ?? 0)) unjust++;
            refusals++;
          }),
        );
        // Bursts, and pauses that let totals age past a refresh interval.
        if (rand() < 0.3) {
          advance(Math.floor(rand() * 400));
          await shards.roundTrip();
        }
      }
      const admitted = (await Promise.all(running)).filter(Boolean).length;
      expect(unjust, `seed ${seed}`).toBe(0);
      expect(admitted).toBeGreaterThan(0);
      expect(refusals).toBeGreaterThan(0);
      expect(shards.total - budget, `seed ${seed}`).toBeLessThanOrEqual(bound(instances, r, budget));
      // What fits is admitted: each refusal saw less left than it asked for, and nothing is ever released here.
      expect(budget - shards.total, `seed ${seed}`).toBeLessThan(r);
    }
  });
});

describe("the bound's terms", () => {
  it("near the budget is the last tenth; the allowance a ten-thousandth a refresh interval", () => {
    expect(NEAR_FRACTION).toBe(0.1);
    expect(ALLOWANCE_FRACTION).toBe(0.0001);
  });
});
