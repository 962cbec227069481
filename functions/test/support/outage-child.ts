import { firestoreExecutionStore, paths } from "../../src/adapters/executions-repo.js";
import { firestore } from "../../src/adapters/firestore.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { firestorePromptStore } from "../../src/adapters/prompts-repo.js";
import { catalog } from "../../src/config/catalog.js";
import { usagePeriods } from "../../src/core/limits.js";
import type { Logger } from "../../src/core/ports.js";
import { executePrompt, type PipelineDeps, type PipelineSettings } from "../../src/core/pipeline/index.js";

/**
 * One "instance" for settlement-outage.emu.test.ts, in its own process so that its Firestore
 * client talks to a private emulator the test pauses (FIRESTORE_EMULATOR_HOST). Every line
 * it prints is one JSON event: `admitted`, `log` (what the pipeline logged), `result`, `state`.
 *   tsx outage-child.ts run <uid>       two executions: A may settle for 300 s, B for only 25 s
 *   tsx outage-child.ts inspect <uid>   the records and the month's ledger
 */
const [mode, uid] = process.argv.slice(2) as ["run" | "inspect", string];
const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

const logger: Logger = {
  info: () => {},
  warn: (message, fields) => emit({ event: "log", level: "warn", message, fields }),
  error: (message, fields) => emit({ event: "log", level: "error", message, fields }),
};

function deps(functionTimeoutMs: number): PipelineDeps {
  const settings: PipelineSettings = {
    defaultFallbackModels: [],
    maxTimeoutMs: 60_000,
    functionTimeoutMs,
    retry: { maxRetries: 0, baseDelayMs: 10, maxDelayMs: 10 },
    historyTtlDays: 1,
    conversationTtlDays: 1,
    logPrompts: false,
    limits: { perMinute: 100, maxConcurrent: 10, defaultMonthlyBudgetUsd: null, globalMonthlyBudgetUsd: null, globalShards: 4, reservationGraceMs: 600_000 },
  };
  return {
    catalog,
    modelClient: (p) => (p.id === "local" ? openAIModelClient(p, { baseUrl: process.env.LOCAL_PROVIDER_URL!, apiKey: "" }) : undefined),
    executions: firestoreExecutionStore(firestore, { globalShards: 4 }),
    prompts: firestorePromptStore(firestore),
    settings: () => settings,
    newId: () => `outage${Math.random().toString(36).slice(2, 12)}`,
    logger,
  };
}

async function run(): Promise<void> {
  const ask = { model: "local-mini+deltas=10,interval=200", messages: [{ role: "user", content: "during an outage" }] };
  const one = async (name: string, functionTimeoutMs: number) => {
    try {
      const result = await executePrompt(deps(functionTimeoutMs), ask, { uid, onAdmitted: (executionId) => emit({ event: "admitted", name, executionId }) });
      emit({ event: "result", name, executionId: result.executionId, costMicros: result.cost.micros });
    } catch (error) {
      emit({ event: "result", name, error: String(error) });
    }
  };
  await Promise.all([one("A", 300_000), one("B", 25_000)]);
}

async function inspect(): Promise<void> {
  const db = await firestore();
  const records = (await db.collection(`users/${uid}/executions`).get()).docs.map((d) => ({ id: d.id, status: d.get("status") as string, costMicros: d.get("cost.micros") as number }));
  const ledger = (await db.doc(paths.usage(uid, usagePeriods(Date.now()).month)).get()).data() ?? {};
  const reservations = Object.keys(((await db.doc(paths.limits(uid)).get()).get("reservations") as object | undefined) ?? {});
  emit({ event: "state", records, ledger, reservations });
}

await (mode === "run" ? run() : inspect());
process.exit(0);
