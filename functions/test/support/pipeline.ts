import { afterAll, beforeAll, beforeEach, expect } from "vitest";
import { startLocalProvider, type LocalProvider } from "../../../scripts/local-provider/server.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { catalog as productionCatalog } from "../../src/config/catalog.js";
import type { Catalog, ProviderSpec } from "../../src/core/catalog.js";
import { ExecutionError } from "../../src/core/errors.js";
import { MemoryExecutionStore, MemoryLogger, MemoryPromptStore } from "../../src/core/memory-stores.js";
import { executePrompt, type ExecuteOptions, type PipelineDeps, type PipelineSettings } from "../../src/core/pipeline/index.js";

/**
 * The pipeline with in-memory stores and the real openai-SDK client over HTTP to the local
 * provider: every fault is one the provider produces on the wire. Call `useLocalProvider()`
 * at the top of a test file, then `setup()` per test.
 */
export const provider = {} as { current: LocalProvider };

export function useLocalProvider(): void {
  beforeAll(async () => {
    provider.current = await startLocalProvider();
  });
  afterAll(() => provider.current.close());
  beforeEach(() => provider.current.reset());
}

export const settings: PipelineSettings = {
  defaultModel: "local-mini",
  defaultFallbackModels: [],
  maxTimeoutMs: 10_000,
  functionTimeoutMs: 30_000,
  retry: { maxRetries: 3, baseDelayMs: 5, maxDelayMs: 20 },
  historyTtlDays: 30,
  conversationTtlDays: 30,
  logPrompts: false,
  limits: {
    perMinute: 1_000,
    maxConcurrent: 100,
    defaultMonthlyBudgetUsd: null,
    globalMonthlyBudgetUsd: null,
    globalShards: 4,
    reservationGraceMs: 1_000,
  },
};

export function setup(options: { catalog?: Catalog; settings?: Partial<PipelineSettings>; deps?: Partial<PipelineDeps> } = {}) {
  const executions = new MemoryExecutionStore();
  const prompts = new MemoryPromptStore();
  const logger = new MemoryLogger();
  let n = 0;
  const deps: PipelineDeps = {
    catalog: options.catalog ?? productionCatalog,
    modelClient: (p: ProviderSpec) => (p.id === "local" ? openAIModelClient(p, { baseUrl: provider.current.url, apiKey: "" }) : undefined),
    executions,
    prompts,
    settings: () => ({ ...settings, ...options.settings }),
    newId: () => `exec${++n}`,
    logger,
    ...options.deps,
  };
  const run = (input: unknown, opts: Partial<ExecuteOptions> = {}) => executePrompt(deps, input, { uid: "alice", ...opts });
  const fail = async (input: unknown, opts: Partial<ExecuteOptions> = {}): Promise<ExecutionError> => {
    try {
      await run(input, opts);
    } catch (error) {
      expect(error).toBeInstanceOf(ExecutionError);
      return error as ExecutionError;
    }
    throw new Error("expected the execution to fail");
  };
  return { deps, executions, prompts, logger, run, fail, record: (id = "exec1") => executions.get("alice", id)! };
}

export const ask = (model: string, content = "hello there world", extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: "user", content }],
  ...extra,
});

/** The ledger equals the sum of the records, to the micro (prior runs of reruns included). */
export function expectLedgerBalanced(executions: MemoryExecutionStore, uid = "alice"): void {
  let micros = 0;
  let requests = 0;
  for (const [key, record] of executions.records) {
    if (!key.startsWith(`${uid}/`)) continue;
    micros += (record.cost?.micros ?? 0) + (record.prior?.costMicros ?? 0);
    requests += 1 + (record.prior?.runs ?? 0);
  }
  const month = new Date().toISOString().slice(0, 7);
  expect(executions.totals(`${uid}/${month}`)).toMatchObject({ costMicros: micros, requests });
}
