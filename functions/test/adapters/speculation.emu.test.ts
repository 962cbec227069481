import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { firestoreExecutionStore } from "../../src/adapters/executions-repo.js";
import { firestore } from "../../src/adapters/firestore.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { firestorePromptStore } from "../../src/adapters/prompts-repo.js";
import { catalog } from "../../src/config/catalog.js";
import type { ExecutionError } from "../../src/core/errors.js";
import type { LimitSettings } from "../../src/core/limits.js";
import { MemoryLogger } from "../../src/core/memory-stores.js";
import { executePrompt, SpeculationGate, type PipelineDeps } from "../../src/core/pipeline/index.js";
import type { AdmissionRequest } from "../../src/core/ports.js";
import { adminDb, providerCount } from "../support/firebase.js";
import { stackEnv } from "../support/stack.js";

/**
 * The speculative start on the Firestore store: two instances (pipelines with their own
 * store and gate) over the emulator. What admission leaves is learned from the store's
 * headroom; a refused start leaves its own record and ledger entry in Firestore.
 */

const limits: LimitSettings = { perMinute: 3, maxConcurrent: 100, defaultMonthlyBudgetUsd: null, globalMonthlyBudgetUsd: null, globalShards: 4, reservationGraceMs: 60_000 };

function instance(admitHook?: (request: AdmissionRequest) => Promise<void>): PipelineDeps & { speculation: SpeculationGate } {
  const executions = firestoreExecutionStore(firestore, { globalShards: limits.globalShards });
  if (admitHook) {
    const admit = executions.admit.bind(executions);
    executions.admit = async (request) => {
      await admitHook(request);
      return admit(request);
    };
  }
  return {
    catalog,
    modelClient: (p) => (p.id === "local" ? openAIModelClient(p, { baseUrl: stackEnv().providerUrl, apiKey: "" }) : undefined),
    executions,
    prompts: firestorePromptStore(firestore),
    settings: () => ({ defaultFallbackModels: [], maxTimeoutMs: 60_000, retry: { maxRetries: 1, baseDelayMs: 10, maxDelayMs: 50 }, historyTtlDays: 1, conversationTtlDays: 1, logPrompts: false, limits }),
    newId: () => randomUUID().replaceAll("-", "").slice(0, 20),
    logger: new MemoryLogger(),
    speculation: new SpeculationGate(),
  };
}

const ask = (model: string, content = "hi") => ({ model, messages: [{ role: "user", content }] });
const until = async (check: () => Promise<boolean>) => {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
};

describe("speculative start on Firestore", () => {
  it("calls the provider while admission runs, then answers as usual", async () => {
    const uid = `spec-${randomUUID().slice(0, 8)}`;
    const key = `spec-ok-${randomUUID().slice(0, 8)}`;
    // Admission of the second request commits only once the provider has received it.
    const a = instance(async (request) => {
      if (request.execution.input.some((m) => m.content === "second")) await until(async () => (await providerCount(key)) >= 1);
    });
    await executePrompt(a, ask("local-mini"), { uid });
    const result = await executePrompt(a, ask(`local-mini+key=${key}`, "second"), { uid, onDelta: () => {} });
    expect(a.speculation.stats).toMatchObject({ started: 1, released: 1, aborted: 0 });
    const record = (await adminDb().doc(`users/${uid}/executions/${result.executionId}`).get()).data();
    expect(record).toMatchObject({ status: "succeeded", output: result.output });
    expect(record!.speculative).toBeUndefined();
  });

  it("a start that admission refuses is aborted and recorded, with its cost in the ledger and nothing reserved", async () => {
    const uid = `spec-${randomUUID().slice(0, 8)}`;
    const key = `spec-no-${randomUUID().slice(0, 8)}`;
    const a = instance(async (request) => {
      if (request.execution.input.some((m) => m.content === "refused")) await until(async () => (await providerCount(key)) >= 1);
    });
    const b = instance();
    await executePrompt(a, ask("local-mini"), { uid }); // a knows: two more this minute
    await executePrompt(b, ask("local-mini"), { uid });
    await executePrompt(b, ask("local-mini"), { uid }); // b used them
    const seen: string[] = [];
    const error = await executePrompt(a, ask(`local-mini+deltas=50,interval=20,key=${key}`, "refused"), { uid, onDelta: (t) => seen.push(t) }).catch((e: unknown) => e);
    expect((error as ExecutionError).category).toBe("rate_limited");
    expect(seen).toEqual([]);
    expect(a.speculation.stats).toMatchObject({ started: 1, aborted: 1 });
    const records = (await adminDb().collection(`users/${uid}/executions`).get()).docs.map((d) => d.data());
    const speculative = records.filter((r) => r.speculative === true);
    expect(speculative).toHaveLength(1);
    expect(speculative[0]).toMatchObject({ status: "failed", error: { category: "cancelled" }, usage: { estimated: true } });
    const month = new Date().toISOString().slice(0, 7);
    const usage = (await adminDb().doc(`users/${uid}/usage/${month}`).get()).data();
    const total = records.reduce((sum, r) => sum + (r.cost?.micros ?? 0), 0);
    expect(usage).toMatchObject({ requests: 4, succeeded: 3, failed: 1, costMicros: total });
    expect(speculative[0]!.cost.micros).toBeGreaterThan(0);
    const lane = (await adminDb().doc(`users/${uid}/limits/current`).get()).data();
    expect(Object.keys(lane?.reservations ?? {})).toEqual([]);
  });
});
