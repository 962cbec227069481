import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { firestoreExecutionStore, paths } from "../../src/adapters/executions-repo.js";
import { firestore } from "../../src/adapters/firestore.js";
import { shutdownError } from "../../src/adapters/in-flight.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { firestorePromptStore } from "../../src/adapters/prompts-repo.js";
import { catalog } from "../../src/config/catalog.js";
import { usagePeriods } from "../../src/core/limits.js";
import { MemoryLogger } from "../../src/core/memory-stores.js";
import type { Clock, ExecutionStore } from "../../src/core/ports.js";
import { executePrompt, type PipelineDeps, type PipelineSettings } from "../../src/core/pipeline/index.js";
import { settleUnsettled } from "../../../scripts/settle-unsettled.js";
import { adminDb, providerCount } from "../support/firebase.js";
import { stackEnv } from "../support/stack.js";

/**
 * Idempotency after a crash, on the Firestore store (the in-memory twin has its own unit
 * tests): a requestId whose run died, was closed as abandoned, or was cancelled by a shutdown
 * runs again under the same record, and every run is counted exactly once in the ledger.
 */

const HOUR = 3_600_000;

function instance(options: { clock?: Clock; functionTimeoutMs?: number; executions?: ExecutionStore } = {}): PipelineDeps {
  const settings: PipelineSettings = {
    defaultFallbackModels: [],
    maxTimeoutMs: 60_000,
    ...(options.functionTimeoutMs ? { functionTimeoutMs: options.functionTimeoutMs } : {}),
    retry: { maxRetries: 0, baseDelayMs: 10, maxDelayMs: 10 },
    historyTtlDays: 1,
    conversationTtlDays: 1,
    logPrompts: false,
    limits: { perMinute: 1_000, maxConcurrent: 1_000, defaultMonthlyBudgetUsd: null, globalMonthlyBudgetUsd: null, globalShards: 4, reservationGraceMs: 90_000 },
  };
  return {
    catalog,
    modelClient: (p) => (p.id === "local" ? openAIModelClient(p, { baseUrl: stackEnv().providerUrl, apiKey: "" }) : undefined),
    executions: options.executions ?? firestoreExecutionStore(firestore, { globalShards: 4 }),
    prompts: firestorePromptStore(firestore),
    settings: () => settings,
    newId: () => randomUUID().replaceAll("-", "").slice(0, 20),
    logger: new MemoryLogger(),
    ...(options.clock ? { clock: options.clock } : {}),
  };
}

/**
 * An instance that dies after the provider answered and before settlement: its store never
 * commits the final record (and with a 5-second function timeout, settlement gives up at once),
 * so the `running` record and its reservation stay behind, as after a crash. (A real crash, a
 * SIGKILLed instance in the middle of its provider call, then a repeat: limits.emu.test.ts.)
 */
function dyingInstance(): PipelineDeps & { logger: MemoryLogger } {
  const store = firestoreExecutionStore(firestore, { globalShards: 4 });
  const executions: ExecutionStore = {
    admit: (request) => store.admit(request),
    finish: () => Promise.reject(new Error("the instance died")),
    recordUnadmitted: () => Promise.reject(new Error("the instance died")),
  };
  return instance({ executions, functionTimeoutMs: 5_000 }) as PipelineDeps & { logger: MemoryLogger };
}

const later: Clock = { now: () => Date.now() + HOUR };
const user = () => `idem-${randomUUID().slice(0, 8)}`;
const ask = (requestId: string, model = `local-mini+key=${requestId}`) => ({ requestId, model, messages: [{ role: "user", content: "hi" }] });

async function record(uid: string, id: string) {
  return (await adminDb().doc(paths.execution(uid, id)).get()).data()!;
}
async function ledger(uid: string, at: number) {
  return (await adminDb().doc(paths.usage(uid, usagePeriods(at).month)).get()).data() ?? {};
}
async function reservations(uid: string) {
  return Object.keys(((await adminDb().doc(paths.limits(uid)).get()).data()?.reservations as object | undefined) ?? {});
}

describe("idempotency after a crash (Firestore store)", () => {
  it("a repeat of a requestId whose instance died reclaims the expired running record at once and runs again; counted once", async () => {
    const uid = user();
    const requestId = `dead-${randomUUID()}`;
    await executePrompt(dyingInstance(), ask(requestId), { uid });
    expect(await record(uid, `rq_${requestId}`)).toMatchObject({ status: "running" });
    expect(await reservations(uid)).toEqual([`rq_${requestId}`]);

    // An hour later its reservation has expired: the repeat does not wait for the sweeper.
    const result = await executePrompt(instance({ clock: later }), ask(requestId), { uid });
    expect(result.executionId).toBe(`rq_${requestId}`);
    expect(await providerCount(requestId)).toBe(2);
    expect(await record(uid, result.executionId)).toMatchObject({ status: "succeeded", prior: { runs: 1, costMicros: 0, lastStatus: "failed" } });
    // The dead run counts as a failed request that cost nothing we know of; the rerun as itself.
    expect(await ledger(uid, later.now())).toMatchObject({ requests: 2, failed: 1, succeeded: 1, costMicros: result.cost.micros });
    expect(await reservations(uid)).toEqual([]);

    // Finished now: a further repeat is answered from the record, with no call and no charge.
    expect(await executePrompt(instance({ clock: later }), ask(requestId), { uid })).toEqual(result);
    expect(await providerCount(requestId)).toBe(2);
    expect(await ledger(uid, later.now())).toMatchObject({ requests: 2 });
  });

  it("a repeat after the record was closed as abandoned (the sweeper's reclaim) runs again under the same record; counted once", async () => {
    const uid = user();
    const requestId = `swept-${randomUUID()}`;
    await executePrompt(dyingInstance(), ask(requestId), { uid });
    const store = firestoreExecutionStore(firestore, { globalShards: 4 });
    expect(await store.reclaimAbandoned(uid, later.now(), [`rq_${requestId}`])).toEqual([`rq_${requestId}`]);
    expect(await record(uid, `rq_${requestId}`)).toMatchObject({ status: "failed", abandoned: true });

    const result = await executePrompt(instance({ clock: later }), ask(requestId), { uid });
    expect(result.executionId).toBe(`rq_${requestId}`);
    const rerun = await record(uid, result.executionId);
    expect(rerun).toMatchObject({ status: "succeeded", prior: { runs: 1, costMicros: 0, lastStatus: "failed" } });
    expect(rerun.abandoned).toBeUndefined();
    expect(await ledger(uid, later.now())).toMatchObject({ requests: 2, failed: 1, succeeded: 1, costMicros: result.cost.micros });
    expect(await providerCount(requestId)).toBe(2);
  });

  it("a repeat after a shutdown cancelled the run (retryable) runs again; both runs are counted once, what each cost included", async () => {
    const uid = user();
    const requestId = `sigterm-${randomUUID()}`;
    const input = ask(requestId, `local-mini+deltas=40,interval=50,key=${requestId}`);
    const controller = new AbortController();
    const first = await executePrompt(instance(), input, { uid, signal: controller.signal, onStart: () => {}, onDelta: () => controller.abort(shutdownError()) }).catch((e: unknown) => e);
    expect(first).toMatchObject({ category: "cancelled", retryable: true });
    const cancelled = await record(uid, `rq_${requestId}`);
    expect(cancelled).toMatchObject({ status: "cancelled" });
    const firstCost = cancelled.cost.micros as number;
    expect(firstCost).toBeGreaterThan(0);

    const result = await executePrompt(instance(), input, { uid });
    expect(result.executionId).toBe(`rq_${requestId}`);
    expect(await record(uid, result.executionId)).toMatchObject({ status: "succeeded", prior: { runs: 1, costMicros: firstCost, lastStatus: "cancelled" } });
    expect(await ledger(uid, Date.now())).toMatchObject({ requests: 2, failed: 1, succeeded: 1, costMicros: firstCost + result.cost.micros });
    expect(await providerCount(requestId)).toBe(2);
    expect(await reservations(uid)).toEqual([]);
  });
});

describe("settlement that outlives the reservation", () => {
  it("the reservation lasts until the function's deadline + grace, whatever the request's timeoutMs", async () => {
    const uid = user();
    const requestId = `short-${randomUUID()}`;
    await executePrompt(dyingInstance(), { ...ask(requestId), timeoutMs: 1_000 }, { uid });
    const reservation = ((await adminDb().doc(paths.limits(uid)).get()).data()!.reservations as Record<string, { expireAt: number }>)[`rq_${requestId}`]!;
    const createdAt = (await record(uid, `rq_${requestId}`)).createdAt.toMillis() as number;
    // The dying instance's function may run 5 s (settlement retries until then), the grace is 90 s;
    // the record's createdAt is the execution's start, from which admission counts both.
    expect(reservation.expireAt - createdAt).toBe(5_000 + 90_000);
  });

  it("settle-unsettled over a closure of the same run: the record becomes the run's truth, without the closure's marks", async () => {
    const uid = user();
    const requestId = `closed-${randomUUID()}`;
    const dying = dyingInstance();
    await executePrompt(dying, ask(requestId), { uid });
    const unsettled = dying.logger.entries.find((e) => e.message === "execution.unsettled")!;
    await firestoreExecutionStore(firestore, { globalShards: 4 }).reclaimAbandoned(uid, later.now(), [`rq_${requestId}`]);
    expect(await record(uid, `rq_${requestId}`)).toMatchObject({ status: "failed", abandoned: true });

    expect(await settleUnsettled(`${JSON.stringify({ message: "execution.unsettled", ...unsettled.fields })}\n`, () => {})).toEqual({ settled: 1, pending: 0 });
    const settled = await record(uid, `rq_${requestId}`);
    const cost = (unsettled.fields.record as { cost: { micros: number } }).cost.micros;
    expect(settled).toMatchObject({ status: "succeeded", cost: { micros: cost } });
    expect(settled.abandoned).toBeUndefined();
    expect(settled.error).toBeUndefined();
    expect(settled.input).toEqual([{ role: "user", content: "hi" }]);
    const months = [...new Set([Date.now(), later.now()].map((t) => usagePeriods(t).month))];
    let requests = 0;
    let micros = 0;
    for (const month of months) {
      const data = (await adminDb().doc(paths.usage(uid, month)).get()).data() ?? {};
      requests += (data.requests as number | undefined) ?? 0;
      micros += (data.costMicros as number | undefined) ?? 0;
    }
    expect({ requests, micros }).toEqual({ requests: 1, micros: cost });
  });

  it("settle-unsettled counts a run whose record was reclaimed and run again since: the ledger ends with the true total, once", async () => {
    const uid = user();
    const requestId = `late-${randomUUID()}`;
    const input = ask(requestId, `local-mini+deltas=10,interval=100,key=${requestId}`);
    const dying = dyingInstance();
    await executePrompt(dying, input, { uid });
    const unsettled = dying.logger.entries.find((e) => e.message === "execution.unsettled")!;
    const line = `${JSON.stringify({ message: "execution.unsettled", ...unsettled.fields })}\n`;
    const firstCost = (unsettled.fields.record as { cost: { micros: number } }).cost.micros;
    expect(firstCost).toBeGreaterThan(0);

    // Its reservation expired (an hour later): a repeat reclaims the record and runs again.
    const rerun = executePrompt(instance({ clock: later }), input, { uid });
    await expect.poll(async () => (await record(uid, `rq_${requestId}`)).prior?.runs, { timeout: 10_000 }).toBe(1);
    const quiet = () => {};
    // While the rerun runs its record is left alone: pending, nothing counted.
    expect(await settleUnsettled(line, quiet)).toEqual({ settled: 0, pending: 1 });
    const result = await rerun;

    expect(await settleUnsettled(line, quiet)).toEqual({ settled: 1, pending: 0 });
    expect(await settleUnsettled(line, quiet)).toEqual({ settled: 1, pending: 0 }); // again: nothing more
    const months = [...new Set([Date.now(), later.now()].map((t) => usagePeriods(t).month))];
    const totals = { requests: 0, succeeded: 0, failed: 0, costMicros: 0 };
    for (const month of months) {
      const data = (await adminDb().doc(paths.usage(uid, month)).get()).data() ?? {};
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += (data[k] as number | undefined) ?? 0;
    }
    expect(totals).toEqual({ requests: 2, succeeded: 2, failed: 0, costMicros: firstCost + result.cost.micros });
    const final = await record(uid, `rq_${requestId}`);
    expect(final).toMatchObject({ status: "succeeded", cost: { micros: result.cost.micros }, prior: { runs: 1, costMicros: firstCost, lastStatus: "succeeded" } });
    // The ledger is the sum of the record's runs.
    expect(final.cost.micros + final.prior.costMicros).toBe(totals.costMicros);
    expect(await reservations(uid)).toEqual([]);
  });
});
