import { describe, expect, it } from "vitest";
import { catalog } from "../../src/config/catalog.js";
import { computeCost } from "../../src/core/cost.js";
import { runningExecution } from "../../src/core/execution.js";
import { executionIdFor, requestFingerprint } from "../../src/core/idempotency.js";
import type { ExecutionStore } from "../../src/core/ports.js";
import { executeRequestSchema, parseOrThrow } from "../../src/core/request.js";
import { ask, expectLedgerBalanced, provider, settings, setup, useLocalProvider } from "../support/pipeline.js";

/** Reliability round 2 (issue "what a fault matrix, 360 malformed requests and a crash found"), on the pipeline. */
useLocalProvider();

describe("a client that waits for the whole answer keeps its retries after a mid-stream fault", () => {
  it("a stream cut after two deltas is retried, and the cut attempt's usage is charged too", async () => {
    const { run, record, executions } = setup();
    const result = await run(ask("local-mini+fail=cut,after=2,times=1,key=cut-whole", "one two three"));
    expect(result).toMatchObject({ output: "Echo: one two three", attempts: 2 });
    const saved = record();
    expect(saved.attempts).toMatchObject([
      { outcome: "failed", category: "network", usage: { estimated: true } },
      { outcome: "succeeded", usage: { estimated: false } },
    ]);
    // The record's cost is every attempt's, each at its model's price; the answer says the same.
    const perAttempt = saved.attempts.map((a) => a.costMicros ?? 0);
    expect(perAttempt[0]).toBeGreaterThan(0);
    expect(saved.cost!.micros).toBe(perAttempt[0]! + perAttempt[1]!);
    expect(result.cost.micros).toBe(saved.cost!.micros);
    expect(saved.usage!.estimated).toBe(true);
    expect(provider.current.stats().byKey["cut-whole"]).toBe(2);
    expectLedgerBalanced(executions);
  });

  it("falls back after a cut when retries run out, like a failure before the first token", async () => {
    const { run, record } = setup({ settings: { retry: { maxRetries: 0, baseDelayMs: 1, maxDelayMs: 1 } } });
    const result = await run(ask("local-mini+fail=cut,after=1,key=cut-fb", "hi", { fallbackModels: ["local-pro"] }));
    expect(result).toMatchObject({ model: "local-pro", output: "Echo: hi" });
    expect(record().attempts.map((a) => a.outcome)).toEqual(["failed", "succeeded"]);
  });

  it("a streaming client that saw text gets the error instead: it cannot be taken back", async () => {
    const { fail, record } = setup();
    const error = await fail(ask("local-mini+fail=cut,after=2,times=1,key=cut-stream"), { onDelta: () => {} });
    expect(error.category).toBe("network");
    expect(record().attempts).toHaveLength(1);
  });
});

describe("the model that answered is the one recorded and priced", () => {
  it("a fallback that answers with nothing is recorded as itself, not as the primary", async () => {
    const { run, record } = setup();
    const starts: string[] = [];
    const result = await run(ask("local-mini+fail=server,key=empty-fb", "hi", { fallbackModels: ["local-pro+deltas=0"] }), {
      onStart: (info) => starts.push(info.model),
      onDelta: () => {},
    });
    expect(result).toMatchObject({ model: "local-pro+deltas=0", output: "" });
    expect(starts).toEqual(["local-pro+deltas=0"]);
    const saved = record();
    expect(saved).toMatchObject({ model: "local-pro+deltas=0", status: "succeeded", cost: { priceVersion: "local-1" } });
    // Priced at local-pro's $1 per million input tokens, not local-mini's $0.10.
    const pro = catalog.resolve("local-pro")!.spec.price;
    expect(saved.cost!.micros).toBe(computeCost(saved.attempts.at(-1)!.usage!, pro).micros);
  });
});

describe("a model whose provider has no key is skipped like a failing one", () => {
  it("gpt-4o-mini without an OpenAI key falls back to local-mini", async () => {
    const { run, record } = setup();
    const result = await run(ask("gpt-4o-mini", "hi", { fallbackModels: ["local-mini"] }));
    expect(result).toMatchObject({ model: "local-mini", provider: "local" });
    expect(record().attempts).toHaveLength(1);
  });

  it("is refused only when no candidate can be called", async () => {
    const { fail, executions } = setup();
    const error = await fail(ask("gpt-4o-mini", "hi", { fallbackModels: ["gemini-2.0-flash"] }));
    expect(error).toMatchObject({ category: "provider_auth" });
    expect(error.message).toContain('no key for provider "openai"');
    expect(executions.records.size).toBe(0);
  });
});

/** A store whose settlement commits fail a number of times, as Firestore does during an outage. */
function flakyFinish(store: ExecutionStore, failures: number) {
  let left = failures;
  const finish = store.finish.bind(store);
  store.finish = async (...args) => {
    if (left-- > 0) throw Object.assign(new Error("14 UNAVAILABLE: connection refused"), { code: 14 });
    return finish(...args);
  };
}

describe("settlement is retried, and never lost", () => {
  it("retries a failing final commit with backoff until it goes through", async () => {
    const { run, record, executions, logger } = setup();
    flakyFinish(executions, 3);
    const result = await run(ask("local-mini"));
    expect(record()).toMatchObject({ status: "succeeded", cost: { micros: result.cost.micros } });
    expect(logger.entries.filter((e) => e.message === "execution.settle_retry")).toHaveLength(3);
    expectLedgerBalanced(executions);
  });

  it("a repeated commit counts once (settlement is idempotent)", async () => {
    const { run, executions } = setup();
    const finish = executions.finish.bind(executions);
    // The first try's outcome is unknown (it went through, the answer was lost): it is tried again.
    let first = true;
    executions.finish = async (...args) => {
      await finish(...args);
      if (first) {
        first = false;
        throw new Error("DEADLINE_EXCEEDED");
      }
    };
    await run(ask("local-mini"));
    expectLedgerBalanced(executions);
  });

  it("when the function's time runs out, logs everything needed to settle it later, without the prompt", async () => {
    const { run, executions, logger } = setup({ settings: { functionTimeoutMs: 5_500 } });
    flakyFinish(executions, Number.POSITIVE_INFINITY);
    const result = await run(ask("local-mini", "a secret prompt"));
    const entry = logger.entries.find((e) => e.message === "execution.unsettled");
    expect(entry).toMatchObject({ level: "error", fields: { uid: "alice", executionId: result.executionId, ticket: {} } });
    expect(entry!.fields.record).toMatchObject({ status: "succeeded", cost: { micros: result.cost.micros }, usage: result.usage });
    expect(JSON.stringify(entry)).not.toContain("a secret prompt");
  });
});

describe("an idempotency key survives a crash", () => {
  /** The state a crash leaves: a running record under the requestId whose reservation has expired. */
  async function crashed(executions: ExecutionStore, input: Record<string, unknown>, expireAt: number) {
    const request = parseOrThrow(executeRequestSchema, input);
    const id = executionIdFor(request.requestId!);
    const execution = runningExecution({
      id,
      model: "local-mini",
      provider: "local",
      messages: request.messages!,
      createdAt: Date.now() - 60_000,
      ttlDays: 1,
      requestId: request.requestId!,
      requestFingerprint: requestFingerprint(request),
    });
    await executions.admit({ uid: "alice", execution, reserveMicros: 100, expireAt, limits: settings.limits, now: Date.now() - 60_000 });
    return id;
  }

  const input = ask("local-mini", "hi", { requestId: "crash-1234" });

  it("a repeat while the dead run's reservation is live is in_progress (it may still be alive)", async () => {
    const { fail, executions } = setup();
    await crashed(executions, input, Date.now() + 60_000);
    expect(await fail(input)).toMatchObject({ category: "in_progress", retryAfterMs: 1_000 });
  });

  it("once it expired, a repeat reclaims the dead run and runs again, charged once", async () => {
    const { run, executions, record } = setup();
    const id = await crashed(executions, input, Date.now() - 1);
    const result = await run(input);
    expect(result).toMatchObject({ executionId: id, output: "Echo: hi" });
    expect(record(id)).toMatchObject({ status: "succeeded", prior: { runs: 1, costMicros: 0, lastStatus: "failed" } });
    expectLedgerBalanced(executions);
    // Another repeat replays the success; nothing more is charged.
    await run(input);
    expectLedgerBalanced(executions);
    expect(executions.totals(`alice/${new Date().toISOString().slice(0, 7)}`)).toMatchObject({ requests: 2, succeeded: 1, failed: 1 });
  });

  it("a run closed as abandoned (by the sweeper or another admission) runs again under its key", async () => {
    const { run, executions, record } = setup();
    const input = ask("local-mini", "hi", { requestId: "crash-5678" });
    const id = await crashed(executions, input, Date.now() - 1);
    // Another admission of the same user closes it as abandoned first.
    await run(ask("local-mini", "something else"));
    expect(executions.get("alice", id)).toMatchObject({ status: "failed", abandoned: true, error: { category: "internal" } });
    const result = await run(input);
    expect(result.executionId).toBe(id);
    expect(record(id)).toMatchObject({ status: "succeeded", prior: { runs: 1 } });
    expectLedgerBalanced(executions);
  });
});
