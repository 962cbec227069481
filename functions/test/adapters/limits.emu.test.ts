import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { firestoreExecutionStore, paths } from "../../src/adapters/executions-repo.js";
import { firestore } from "../../src/adapters/firestore.js";
import { sweepAbandonedExecutions } from "../../src/adapters/sweeper.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { firestorePromptStore } from "../../src/adapters/prompts-repo.js";
import { firestoreUsageRepo } from "../../src/adapters/usage-repo.js";
import { catalog } from "../../src/config/catalog.js";
import type { ExecutionError } from "../../src/core/errors.js";
import { runningExecution } from "../../src/core/execution.js";
import { worstCaseMicros, usagePeriods, type LimitSettings } from "../../src/core/limits.js";
import { MemoryLogger } from "../../src/core/memory-stores.js";
import type { Clock } from "../../src/core/ports.js";
import { executePrompt, type PipelineDeps, type PipelineSettings } from "../../src/core/pipeline/index.js";
import { AggregateField } from "firebase-admin/firestore";
import { adminDb, providerCount } from "../support/firebase.js";
import { stackEnv } from "../support/stack.js";

/**
 * Limits hold across instances: two independent pipelines ("instances"), each with its own
 * store and clients, share only the Firestore emulator. The provider is the local one.
 */

const generous: LimitSettings = {
  perMinute: 1_000,
  maxConcurrent: 1_000,
  defaultMonthlyBudgetUsd: null,
  globalMonthlyBudgetUsd: null,
  globalShards: 4,
  reservationGraceMs: 60_000,
};

function instance(limits: Partial<LimitSettings> = {}, clock?: Clock): PipelineDeps {
  const settings: PipelineSettings = {
    defaultFallbackModels: [],
    maxTimeoutMs: 60_000,
    retry: { maxRetries: 1, baseDelayMs: 10, maxDelayMs: 50 },
    historyTtlDays: 1,
    conversationTtlDays: 1,
    logPrompts: false,
    limits: { ...generous, ...limits },
  };
  return {
    catalog,
    modelClient: (p) => (p.id === "local" ? openAIModelClient(p, { baseUrl: stackEnv().providerUrl, apiKey: "" }) : undefined),
    executions: firestoreExecutionStore(firestore, { globalShards: settings.limits.globalShards }),
    prompts: firestorePromptStore(firestore),
    settings: () => settings,
    newId: () => randomUUID().replaceAll("-", "").slice(0, 20),
    logger: new MemoryLogger(),
    ...(clock ? { clock } : {}),
  };
}

/** A clock in a month of its own (far in the future), so that a test's global ledger holds only its own executions. */
function monthOfItsOwn(): Clock & { month: string } {
  const year = 2090 + Math.floor(Math.random() * 10);
  const month = `${year}-${String(1 + Math.floor(Math.random() * 12)).padStart(2, "0")}`;
  const offset = Date.parse(`${month}-15T00:00:00Z`) - Date.now();
  return { now: () => Date.now() + offset, month };
}

const user = () => `limits-${randomUUID().slice(0, 8)}`;
const ask = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: "user", content: "hi" }], ...extra });

/** Runs calls in parallel, alternating between instances, and sorts the outcomes. */
async function burst(instances: PipelineDeps[], uid: string, inputs: unknown[]) {
  const outcomes = await Promise.allSettled(inputs.map((input, i) => executePrompt(instances[i % instances.length]!, input, { uid })));
  const errors = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as ExecutionError] : []));
  const results = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
  return { results, errors, categories: errors.map((e) => e.category) };
}

async function records(uid: string) {
  return (await adminDb().collection(`users/${uid}/executions`).get()).docs.map((d) => ({ id: d.id, ...d.data() })) as {
    id: string;
    status: string;
    cost: { micros: number } | null;
  }[];
}

async function ledger(uid: string, period: string) {
  return (await adminDb().doc(paths.usage(uid, period)).get()).data() ?? {};
}

async function reservations(uid: string): Promise<Record<string, unknown>> {
  return ((await adminDb().doc(paths.limits(uid)).get()).data()?.reservations as Record<string, unknown>) ?? {};
}

describe("budget under concurrency (two instances, one Firestore)", () => {
  it("50 parallel requests against a budget that fits 10 reservations: exactly 10 run, 40 refused, ledger = records", async () => {
    const uid = user();
    const model = `local-pro+deltas=30,interval=300,key=${uid}`;
    const reserve = worstCaseMicros({ messages: [{ role: "user", content: "hi" }] }, [catalog.resolve(model)!], 30);
    await firestoreUsageRepo(firestore).setMonthlyBudget(uid, (10 * reserve) / 1_000_000);

    const { results, categories } = await burst([instance(), instance()], uid, Array.from({ length: 50 }, () => ask(model, { params: { maxTokens: 30 } })));

    expect(results).toHaveLength(10);
    expect(categories).toEqual(Array.from({ length: 40 }, () => "budget_exceeded"));
    expect(await providerCount(uid)).toBe(10);
    const saved = await records(uid);
    expect(saved).toHaveLength(10);
    const spent = saved.reduce((sum, r) => sum + r.cost!.micros, 0);
    expect(spent).toBeLessThanOrEqual(10 * reserve);
    const month = await ledger(uid, usagePeriods(Date.now()).month);
    expect(month).toMatchObject({ requests: 10, succeeded: 10, failed: 0, costMicros: spent });
    expect(await ledger(uid, usagePeriods(Date.now()).day)).toMatchObject({ requests: 10, costMicros: spent });
    expect(await reservations(uid)).toEqual({});
  });
});

describe("rate limits across instances", () => {
  it("requests per minute: 12 at once with a limit of 5 → 5 run, 7 are told when to come back", async () => {
    const uid = user();
    const { results, errors } = await burst([instance({ perMinute: 5 }), instance({ perMinute: 5 })], uid, Array.from({ length: 12 }, () => ask("local-mini")));
    expect(results).toHaveLength(5);
    expect(errors).toHaveLength(7);
    for (const error of errors) {
      expect(error).toMatchObject({ category: "rate_limited", retryable: true });
      expect(error.retryAfterMs).toBeGreaterThan(0);
      expect(error.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    expect(await ledger(uid, usagePeriods(Date.now()).month)).toMatchObject({ requests: 5 });
  });

  it("concurrent executions: 10 long ones at once with a limit of 3 → 3 run, 7 refused with retryAfterMs", async () => {
    const uid = user();
    const inputs = Array.from({ length: 10 }, () => ask(`local-mini+deltas=10,interval=200,key=${uid}`));
    const { results, errors } = await burst([instance({ maxConcurrent: 3 }), instance({ maxConcurrent: 3 })], uid, inputs);
    expect(results).toHaveLength(3);
    expect(errors.map((e) => [e.category, e.retryAfterMs])).toEqual(Array.from({ length: 7 }, () => ["rate_limited", 1_000]));
    expect(await reservations(uid)).toEqual({});
  });
});

describe("global budget", () => {
  const month = () => usagePeriods(Date.now()).month;
  const shards = async () => (await adminDb().collection(`globalUsage/${month()}/shards`).get()).docs.map((d) => d.data());
  const reservedNow = async () => (await shards()).reduce((sum, d) => sum + (d.reservedMicros ?? 0), 0);
  const spentNow = async () => (await shards()).reduce((sum, d) => sum + (d.costMicros ?? 0), 0);

  it("reserves on a shard while running, releases it and charges a shard at settlement; refuses all once the budget cannot cover a request", async () => {
    const uid = user();
    const requestId = `global-${randomUUID()}`;
    const reservedBefore = await reservedNow();
    const spentBefore = await spentNow();
    const ample = instance({ globalMonthlyBudgetUsd: 1_000, globalShards: 4 });
    const running = executePrompt(ample, ask(`local-mini+deltas=10,interval=100,key=${requestId}`, { requestId }), { uid });
    await expect.poll(async () => (await reservedNow()) - reservedBefore, { timeout: 10_000 }).toBeGreaterThan(0);
    const result = await running;
    expect((await reservedNow()) - reservedBefore).toBe(0);
    expect((await spentNow()) - spentBefore).toBe(result.cost.micros);

    const tiny = instance({ globalMonthlyBudgetUsd: 0.000001 });
    const { categories } = await burst([tiny], user(), [ask("local-mini")]);
    expect(categories).toEqual(["budget_exceeded"]);
  });
});

describe("global budget at scale: no global document on the request path (docs/scaling.md)", () => {
  const totalsIn = async (month: string) => {
    const data = (await adminDb().collection(`globalUsage/${month}/shards`).aggregate({ s: AggregateField.sum("costMicros"), r: AggregateField.sum("reservedMicros") }).get()).data();
    return { spent: Number(data.s ?? 0), reserved: Number(data.r ?? 0) };
  };

  it("a request larger than budget / shards is admitted when the budget has room", async () => {
    const clock = monthOfItsOwn();
    const model = "local-pro+deltas=3";
    const reserve = worstCaseMicros({ messages: [{ role: "user", content: "hi" }] }, [catalog.resolve(model)!], 1_000);
    const budgetUsd = (reserve + 10) / 1_000_000;
    // 2,000 shards: the old even split gave each shard 1/2,000 of the budget, far less than this request.
    expect(reserve).toBeGreaterThan((budgetUsd * 1_000_000) / 2_000);
    const result = await executePrompt(instance({ globalMonthlyBudgetUsd: budgetUsd, globalShards: 2_000 }, clock), ask(model, { params: { maxTokens: 1_000 } }), { uid: user() });
    expect(result.output).toBe("alpha bravo charlie");
    expect(await totalsIn(clock.month)).toEqual({ spent: result.cost.micros, reserved: 0 });
  });

  it("50 requests at once on two instances against a global budget: what fits is admitted, and overspend stays within the bound", async () => {
    const clock = monthOfItsOwn();
    const model = "local-pro+deltas=20,interval=50";
    const reserve = worstCaseMicros({ messages: [{ role: "user", content: "hi" }] }, [catalog.resolve(model)!], 30);
    const limits = { globalMonthlyBudgetUsd: (10 * reserve) / 1_000_000, globalShards: 2_000 };
    const [a, b] = [instance(limits, clock), instance(limits, clock)];
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => executePrompt(i % 2 ? a! : b!, ask(model, { params: { maxTokens: 30 } }), { uid: user() })));
    const admitted = outcomes.filter((o) => o.status === "fulfilled").length;
    const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [(o.reason as ExecutionError).category] : []));
    expect(new Set(refused)).toEqual(new Set(["budget_exceeded"]));
    // Never refused what fits: at least the 10 the budget holds.
    expect(admitted).toBeGreaterThanOrEqual(10);
    // The bound (core/global-budget.ts): an instance never passes the budget on its own; beyond it only
    // what the other admitted inside its staleness window, at most that instance's own 10 here.
    expect(admitted).toBeLessThanOrEqual(20);
    // Every reservation released; the global ledger is the sum of what was charged.
    const charged = outcomes.reduce((sum, o) => sum + (o.status === "fulfilled" ? o.value.cost.micros : 0), 0);
    expect(await totalsIn(clock.month)).toEqual({ spent: charged, reserved: 0 });
  });

  it("admissions spread over time, alternating between two instances, are held to the budget exactly once its pace is known", async () => {
    const clock = monthOfItsOwn();
    const model = "local-mini+deltas=60,interval=100";
    const reserve = worstCaseMicros({ messages: [{ role: "user", content: "hi" }] }, [catalog.resolve(model)!], 60);
    const limits = { globalMonthlyBudgetUsd: (6 * reserve) / 1_000_000, globalShards: 2_000 };
    const pair = [instance(limits, clock), instance(limits, clock)];
    // Long executions, started one after the other: each admission sees the ones before it.
    const running: Promise<unknown>[] = [];
    const categories: string[] = [];
    for (let i = 0; i < 10; i++) {
      const started = executePrompt(pair[i % 2]!, ask(model, { params: { maxTokens: 60 } }), { uid: user() });
      running.push(started.catch((e: ExecutionError) => categories.push(e.category)));
      await new Promise((resolve) => setTimeout(resolve, 450));
    }
    await Promise.all(running);
    expect(categories).toEqual(["budget_exceeded", "budget_exceeded", "budget_exceeded", "budget_exceeded"]);
  });
});

describe("a user with raised limits: lanes (docs/scaling.md)", () => {
  it("spreads a user's admissions over lanes, keeps the ledger exact, and getUsage sums the lanes", async () => {
    const uid = user();
    await firestoreUsageRepo(firestore).setLimits(uid, { perMinute: 300, maxConcurrent: 50 });
    const runs = await Promise.all(Array.from({ length: 20 }, () => executePrompt(instance(), ask("local-mini+deltas=2"), { uid })));
    const lanes = await adminDb().collection(`users/${uid}/limits`).get();
    expect(lanes.size).toBeGreaterThan(1);
    expect(lanes.docs.every((d) => Object.keys(d.data().reservations ?? {}).length === 0)).toBe(true);
    const month = usagePeriods(Date.now()).month;
    const months = (await adminDb().collection(`users/${uid}/usage`).get()).docs.filter((d) => d.id === month || d.id.startsWith(`${month}~`));
    const sum = months.reduce((acc, d) => ({ requests: acc.requests + (d.data().requests ?? 0), costMicros: acc.costMicros + (d.data().costMicros ?? 0) }), { requests: 0, costMicros: 0 });
    expect(sum).toEqual({ requests: 20, costMicros: runs.reduce((s, r) => s + r.cost.micros, 0) });
    const report = await firestoreUsageRepo(firestore).read(uid, Date.now());
    expect(report.month).toMatchObject({ requests: 20, costMicros: sum.costMicros });
  });

  it("a race on a laned user passes its limits by at most lanes − 1", async () => {
    const uid = user();
    await firestoreUsageRepo(firestore).setLimits(uid, { perMinute: 300, maxConcurrent: 5 });
    const inputs = Array.from({ length: 30 }, () => ask(`local-mini+deltas=10,interval=200,key=${uid}`));
    const { results, categories } = await burst([instance(), instance()], uid, inputs);
    // 300 a minute → 10 lanes: at most 5 + 9 at once; never fewer than the limit.
    expect(results.length).toBeGreaterThanOrEqual(5);
    expect(results.length).toBeLessThanOrEqual(5 + 9);
    expect(new Set(categories)).toEqual(new Set(["rate_limited"]));
  });
});

describe("idempotency across instances", () => {
  it("the same requestId 20 times in parallel: one provider call, one record, one charge", async () => {
    const uid = user();
    const requestId = `req-${randomUUID()}`;
    const input = ask(`local-mini+deltas=5,interval=100,key=${requestId}`, { requestId });
    const { results, errors } = await burst([instance(), instance()], uid, Array.from({ length: 20 }, () => input));

    expect(await providerCount(requestId)).toBe(1);
    expect(results.length).toBeGreaterThanOrEqual(1);
    expect(new Set(results.map((r) => r.executionId))).toEqual(new Set([`rq_${requestId}`]));
    for (const error of errors) expect(error).toMatchObject({ category: "in_progress", retryable: true, retryAfterMs: 1_000 });
    const saved = await records(uid);
    expect(saved).toHaveLength(1);
    const month = await ledger(uid, usagePeriods(Date.now()).month);
    expect(month).toMatchObject({ requests: 1, costMicros: saved[0]!.cost!.micros });

    // Finished: a repeat is answered from the record, with no call and no charge.
    const again = await executePrompt(instance(), input, { uid });
    expect(again).toEqual(results[0]);
    expect(await providerCount(requestId)).toBe(1);
    expect(await ledger(uid, usagePeriods(Date.now()).month)).toMatchObject({ requests: 1 });

    // The same id with a different request is refused.
    const conflict = await executePrompt(instance(), { ...input, messages: [{ role: "user", content: "other" }] }, { uid }).catch((e) => e);
    expect(conflict).toMatchObject({ category: "idempotency_conflict", code: "already-exists" });
  });

  it("a repeat after a retryable failure runs again under the same record", async () => {
    const uid = user();
    const requestId = `req-${randomUUID()}`;
    const failing = ask(`local-mini+fail=unavailable,times=2,key=${requestId}`, { requestId });
    await expect(executePrompt(instance(), failing, { uid })).rejects.toMatchObject({ category: "provider_unavailable" });
    const result = await executePrompt(instance(), failing, { uid });
    expect(result.executionId).toBe(`rq_${requestId}`);
    expect((await records(uid))[0]).toMatchObject({ status: "succeeded" });
    expect(await ledger(uid, usagePeriods(Date.now()).month)).toMatchObject({ requests: 2, failed: 1, succeeded: 1 });
  });
});

describe("a crash between reservation and settlement", () => {
  it("leaves no permanent reservation: the next admission reclaims it and closes the dead record", async () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const host = spawn(process.execPath, ["--import", "tsx", "scripts/functions-host.ts"], {
      cwd: root,
      env: { ...process.env, RESERVATION_GRACE_MS: "300" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    host.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise((resolve) => host.once("exit", resolve));
    await expect.poll(() => /listening on (\S+)/.exec(out)?.[1], { timeout: 30_000 }).toBeDefined();
    const url = /listening on (\S+)/.exec(out)![1]!;

    const signUp = await fetch(`http://${stackEnv().authHost}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ returnSecureToken: true }),
    });
    const { idToken, localId: uid } = (await signUp.json()) as { idToken: string; localId: string };
    void fetch(`${url}/executePrompt`, {
      method: "POST",
      headers: { authorization: `Bearer ${idToken}`, "content-type": "application/json" },
      body: JSON.stringify({ data: { ...ask("local-mini+fail=hang"), timeoutMs: 1_000 } }),
    }).catch(() => undefined);
    await expect.poll(async () => Object.keys(await reservations(uid)).length, { timeout: 20_000 }).toBe(1);
    const [deadId] = Object.keys(await reservations(uid));

    host.kill("SIGKILL"); // no handler runs: the reservation and the running record stay behind
    await exited;
    expect((await records(uid)).find((r) => r.id === deadId)?.status).toBe("running");

    // Past the reservation's expiry (the function's 300 s timeout + the grace): the next admission, ten minutes on.
    const later: Clock = { now: () => Date.now() + 600_000 };
    await executePrompt(instance({}, later), ask("local-mini"), { uid });
    expect(Object.keys(await reservations(uid))).toEqual([]);
    expect((await records(uid)).find((r) => r.id === deadId)).toMatchObject({ status: "failed" });
    expect(await ledger(uid, usagePeriods(later.now()).month)).toMatchObject({ requests: 2, failed: 1, succeeded: 1 });
  });
});

describe("the scheduled sweeper", () => {
  it("closes the abandoned executions of users who never come back, releasing their reservations", async () => {
    const uid = user();
    const store = firestoreExecutionStore(firestore, { globalShards: 4 });
    const now = Date.now();
    const running = runningExecution({ id: "abandoned1", model: "local-mini", provider: "local", messages: [], createdAt: now - 10_000, ttlDays: 1 });
    await store.admit({ uid, execution: running, reserveMicros: 500, expireAt: now - 1, limits: generous, now: now - 10_000 });
    expect(Object.keys(await reservations(uid))).toEqual(["abandoned1"]);

    const result = await sweepAbandonedExecutions(firestore, store, { now, olderThanMs: 5_000, logger: new MemoryLogger() });
    expect(result.closed).toBeGreaterThanOrEqual(1);
    expect(await reservations(uid)).toEqual({});
    expect((await records(uid))[0]).toMatchObject({ status: "failed" });
    expect(await ledger(uid, usagePeriods(now).month)).toMatchObject({ requests: 1, failed: 1, costMicros: 0 });
    // Sweeping again finds nothing more for this user.
    expect(await store.reclaimAbandoned(uid, now, ["abandoned1"])).toEqual([]);
  });
});
