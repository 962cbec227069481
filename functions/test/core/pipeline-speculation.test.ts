import { describe, expect, it } from "vitest";
import { createMediaFetcher } from "../../src/adapters/media-fetcher.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { Catalog } from "../../src/core/catalog.js";
import { ExecutionError } from "../../src/core/errors.js";
import type { Execution } from "../../src/core/execution.js";
import { MemoryExecutionStore } from "../../src/core/memory-stores.js";
import { executePrompt, SpeculationGate, type PipelineDeps } from "../../src/core/pipeline/index.js";
import type { AdmissionRequest } from "../../src/core/ports.js";
import { catalog as productionCatalog } from "../../src/config/catalog.js";
import { ask, expectLedgerBalanced, provider, settings, setup, useLocalProvider } from "../support/pipeline.js";

/**
 * The speculative start (pipeline/speculation.ts): the provider is called while admission
 * runs, for users this instance knows to have room; output is held until admission commits.
 * Two instances are two pipelines (each with its own gate) over one store, as two Cloud
 * Functions instances over one Firestore.
 */
useLocalProvider();

const until = async (check: () => boolean) => {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
};

/** An instance: its own gate and ids, the shared store and limits. */
function instance(base: ReturnType<typeof setup>, name: string, store: MemoryExecutionStore = base.executions): PipelineDeps & { speculation: SpeculationGate } {
  let n = 0;
  return { ...base.deps, executions: store, speculation: new SpeculationGate(), newId: () => `${name}-${++n}` };
}

describe("speculative start", () => {
  it("starts a known user's request before admission commits, and releases its output only after", async () => {
    const base = setup();
    const deps = instance(base, "a");
    const run = (content: string, events: string[]) =>
      executePrompt(deps, ask("local-mini+deltas=3", content), {
        uid: "alice",
        onAdmitted: () => events.push("admitted"),
        onStart: () => events.push("start"),
        onDelta: (text) => events.push(`delta:${text}`),
      });
    const first: string[] = [];
    await run("one", first);
    // The first request of a user here waits for its admission: nothing is known yet.
    expect(deps.speculation.stats).toMatchObject({ started: 0 });
    const second: string[] = [];
    const result = await run("two", second);
    expect(deps.speculation.stats).toMatchObject({ started: 1, released: 1, aborted: 0 });
    expect(second).toEqual(["admitted", "start", "delta:alpha ", "delta:bravo ", "delta:charlie"]);
    expect(result.output).toBe("alpha bravo charlie");
    expect(base.executions.get("alice", result.executionId)).toMatchObject({ status: "succeeded" });
    expectLedgerBalanced(base.executions);
  });

  it("a refused admission aborts the upstream call before any output reaches the client, and records what it cost", async () => {
    const base = setup({ settings: { limits: { ...settings.limits, perMinute: 3 } } });
    // Admission here takes as long as the provider needs to receive the request (a memory store answers at once).
    const admit = base.executions.admit.bind(base.executions);
    base.executions.admit = async (request: AdmissionRequest) => {
      if (request.execution.input.some((m) => m.content === "too many")) await until(() => (provider.current.stats().byKey["spec-refused"] ?? 0) >= 1);
      return admit(request);
    };
    const a = instance(base, "a");
    const b = instance(base, "b");
    await executePrompt(a, ask("local-mini", "warm up"), { uid: "alice" }); // a now knows: 2 more this minute
    // Meanwhile instance b uses the rest of the minute.
    await executePrompt(b, ask("local-mini", "b1"), { uid: "alice" });
    await executePrompt(b, ask("local-mini", "b2"), { uid: "alice" });
    const seen: string[] = [];
    const error = await executePrompt(a, ask("local-mini+deltas=50,interval=20,key=spec-refused", "too many"), {
      uid: "alice",
      onStart: () => seen.push("start"),
      onDelta: () => seen.push("delta"),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ExecutionError);
    expect((error as ExecutionError).category).toBe("rate_limited");
    expect(seen).toEqual([]);
    // The upstream call was made, and abandoned.
    expect(provider.current.stats().byKey["spec-refused"]).toBe(1);
    await until(() => (provider.current.stats().abortedByKey["spec-refused"] ?? 0) === 1);
    expect(a.speculation.stats).toMatchObject({ started: 1, released: 0, aborted: 1 });
    // Its own record, failed and speculative, with the input it may have been billed for.
    const records = [...base.executions.records.values()].filter((r) => r.speculative);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ status: "failed", speculative: true, error: { category: "cancelled" }, usage: { estimated: true } });
    expect(records[0]!.cost!.micros).toBeGreaterThan(0);
    expect(a.speculation.stats.abortedMicros).toBe(records[0]!.cost!.micros);
    expectLedgerBalanced(base.executions);
    // After a refusal, no speculation for this user for a while.
    await executePrompt(a, ask("local-mini", "again"), { uid: "alice" }).catch(() => {});
    expect(a.speculation.stats.started).toBe(1);
  });

  it("held output of an attempt that fails before the release never reaches the client, and the retry is allowed", async () => {
    const base = setup();
    // Admission answers only once the provider has seen both attempts: the first is cut after one delta.
    const store = new MemoryExecutionStore();
    const admit = store.admit.bind(store);
    let slow = false;
    store.admit = async (request: AdmissionRequest) => {
      if (slow) await until(() => (provider.current.stats().byKey["held"] ?? 0) >= 2);
      return admit(request);
    };
    const deps = instance(base, "a", store);
    await executePrompt(deps, ask("local-mini", "warm"), { uid: "alice" });
    slow = true;
    const deltas: string[] = [];
    const result = await executePrompt(deps, ask("local-mini+fail=cut,after=1,times=1,deltas=3,key=held", "x"), { uid: "alice", onDelta: (t) => deltas.push(t) });
    expect(deps.speculation.stats.started).toBe(1);
    expect(result).toMatchObject({ attempts: 2, output: "alpha bravo charlie" });
    // Only the attempt that succeeded was released: no "alpha " twice.
    expect(deltas).toEqual(["alpha ", "bravo ", "charlie"]);
    expectLedgerBalanced(store);
  });

  it("a budget race with speculation keeps the bound: what was admitted fits the budget, aborted starts add their input only", async () => {
    const reserve = 1_700; // local-mini, maxTokens 4,096 and a short prompt: a little under 1,700 µ$
    const budgetUsd = (10 * reserve) / 1_000_000;
    const base = setup({ settings: { limits: { ...settings.limits, defaultMonthlyBudgetUsd: budgetUsd } } });
    const [a, b] = [instance(base, "a"), instance(base, "b")];
    const month = new Date().toISOString().slice(0, 7);
    // What the budget held right after each admission: the month's settled cost (aborted starts
    // included, as admission counts them) plus every live reservation. Each reservation is far
    // above the cost of one local-mini answer, so only this sees an over-admission.
    let peak = 0;
    let admissions = 0;
    const admit = base.executions.admit.bind(base.executions);
    base.executions.admit = async (request: AdmissionRequest) => {
      const admission = await admit(request);
      if (admission.kind === "admitted") {
        admissions += 1;
        const live = Object.values(base.executions.account("alice").reservations).filter((r) => r.expireAt > request.now);
        const held = base.executions.totals(`alice/${month}`).costMicros + live.reduce((sum, r) => sum + r.micros, 0);
        peak = Math.max(peak, held);
      }
      return admission;
    };
    await executePrompt(a, ask("local-mini", "warm a"), { uid: "alice" });
    await executePrompt(b, ask("local-mini", "warm b"), { uid: "alice" });
    const runs = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => executePrompt(i % 2 ? a : b, ask("local-mini", `race ${i}`), { uid: "alice" })));
    const records = [...base.executions.records.values()] as Execution[];
    const admitted = records.filter((r) => !r.speculative);
    const aborted = records.filter((r) => r.speculative);
    expect(runs.filter((r) => r.status === "rejected").length).toBeGreaterThan(0);
    // Admission is the only decision: every admitted execution had its reservation fit the budget.
    const spentAdmitted = admitted.reduce((sum, r) => sum + r.cost!.micros, 0);
    expect(spentAdmitted).toBeLessThanOrEqual(budgetUsd * 1_000_000);
    // The bound itself: at no admission did settled cost and live reservations exceed the budget,
    // and the race did fill it (more than nine reservations' worth held at once).
    expect(admissions).toBe(admitted.length);
    expect(peak).toBeLessThanOrEqual(budgetUsd * 1_000_000);
    expect(peak).toBeGreaterThan(budgetUsd * 1_000_000 - reserve);
    // The documented bound: beyond that, only the aborted starts, each at most its input.
    expect(aborted.length).toBe(a.speculation.stats.aborted + b.speculation.stats.aborted);
    expect(aborted.length).toBeGreaterThan(0);
    for (const record of aborted) {
      expect(record.usage!.outputTokens).toBe(0);
      expect(record.cost!.micros).toBeLessThanOrEqual(reserve);
    }
    const abortedMicros = aborted.reduce((sum, r) => sum + r.cost!.micros, 0);
    expect(base.executions.totals(`alice/${month}`).costMicros).toBeLessThanOrEqual(budgetUsd * 1_000_000 + abortedMicros);
    expectLedgerBalanced(base.executions);
  });

  it("never speculates on a conversation turn, media a fallback would need fetched, a requestId seen here, or a user it does not know", async () => {
    const local = productionCatalog.provider("local")!;
    // The primary's provider fetches image URLs itself; the fallback's needs the bytes.
    const catalog = new Catalog([
      { ...local, fetchesUrls: [] },
      { ...local, id: "self-fetching", fetchesUrls: ["image"], models: [{ ...local.models.find((m) => m.id === "local-pro")!, id: "local-pro-fetches", upstreamId: "local-pro" }] },
    ]);
    const media = createMediaFetcher({
      policy: () => ({ allowedHosts: ["firebasestorage.googleapis.com"] }),
      fetch: (async () => new Response(new Uint8Array([1, 2, 3]), { headers: { "content-type": "image/png" } })) as typeof fetch,
    });
    const base = setup({ catalog, deps: { media, modelClient: (p) => openAIModelClient(p, { baseUrl: provider.current.url, apiKey: "" }) } });
    const deps = instance(base, "a");
    const image = [{ role: "user", content: [{ type: "text", text: "look" }, { type: "image", url: "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media" }] }];
    await executePrompt(deps, ask("local-mini", "hi", { requestId: "req-spec-1" }), { uid: "alice" });
    await executePrompt(deps, ask("local-mini", "hi"), { uid: "alice" }); // alice is known now: this one speculates
    expect(deps.speculation.stats.started).toBe(1);
    await executePrompt(deps, ask("local-mini", "hi", { requestId: "req-spec-1" }), { uid: "alice" }); // a replay
    await executePrompt(deps, { model: "local-mini", conversationId: "conv-spec-1", messages: [{ role: "user", content: "hi" }] }, { uid: "alice" });
    await executePrompt(deps, { model: "local-pro-fetches", fallbackModels: ["local-mini"], messages: image }, { uid: "alice" });
    await executePrompt(deps, ask("local-mini", "hi"), { uid: "bob" });
    expect(deps.speculation.stats.started).toBe(1);
    await executePrompt(deps, { model: "local-pro-fetches", messages: image }, { uid: "alice" }); // nothing to fetch for it
    expect(deps.speculation.stats.started).toBe(2);
  });
});
