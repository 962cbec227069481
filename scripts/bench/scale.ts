import { randomUUID } from "node:crypto";
import type { DocumentReference, Firestore } from "firebase-admin/firestore";
import { firestoreExecutionStore } from "../../functions/src/adapters/executions-repo.js";
import { firestore } from "../../functions/src/adapters/firestore.js";
import { openAIModelClient } from "../../functions/src/adapters/openai-model-client.js";
import { firestorePromptStore } from "../../functions/src/adapters/prompts-repo.js";
import { firestoreUsageRepo } from "../../functions/src/adapters/usage-repo.js";
import { catalog } from "../../functions/src/config/catalog.js";
import { ledgerShardsFor } from "../../functions/src/core/global-budget.js";
import { lanesFor, WRITES_PER_DOCUMENT_PER_SECOND, type LimitSettings } from "../../functions/src/core/limits.js";
import { silentLogger } from "../../functions/src/core/memory-stores.js";
import { executePrompt, type PipelineDeps } from "../../functions/src/core/pipeline/index.js";

/**
 * `npm run bench:scale`: the accounting's write load, measured. The real pipeline and the
 * Firestore store run against the emulator; every document write the store sends is counted
 * by path. Two load shapes (docs/scaling.md):
 *   A. 1,000 executions a second overall with a global budget, from users at the default
 *      limits (30 a minute: at most 0.5 a second each);
 *   B. one user with raised limits (300 a minute) at 5 executions a second.
 * Every figure "per document" is the busiest document of its class, not the class's average.
 * A is too fast for one machine's emulator, so it runs a sample and projects: the busiest
 * document's writes per execution that feeds it, times the rate that feeds it (a user's own 0.5
 * a second; everyone's 1,000 a second for a global shard). The sample is 2,000 executions, one
 * round of the 2,000 shards, which each instance takes in turn. B runs at its real rate on two
 * instances, so its writes per second on the busiest document are also measured directly.
 * The last line is the answer the issue asks for.
 */

const TARGET_OVERALL = 1_000;
const TARGET_ONE_USER = 5;
const DEFAULT_PER_MINUTE = 30;
const RAISED_PER_MINUTE = 300;
const GLOBAL_SHARDS = ledgerShardsFor(TARGET_OVERALL); // globalLedgerShards at PEAK_EXECUTIONS_PER_SECOND=1000

/** Counts what batches write, by document path. */
async function counted(): Promise<{ db: () => Promise<Firestore>; writes: Map<string, number>; reset(): void }> {
  const db = await firestore();
  const writes = new Map<string, number>();
  const original = db.batch.bind(db);
  db.batch = () => {
    const batch = original();
    const pending: string[] = [];
    for (const method of ["set", "update", "create", "delete"] as const) {
      const call = (batch[method] as (...args: unknown[]) => unknown).bind(batch);
      (batch as unknown as Record<string, unknown>)[method] = (ref: DocumentReference, ...rest: unknown[]) => {
        pending.push(ref.path);
        return call(ref, ...rest);
      };
    }
    const commit = batch.commit.bind(batch);
    batch.commit = async () => {
      const result = await commit();
      for (const path of pending) writes.set(path, (writes.get(path) ?? 0) + 1);
      return result;
    };
    return batch;
  };
  return { db: async () => db, writes, reset: () => writes.clear() };
}

/** The class of a document, by its path. */
function classOf(path: string): string {
  if (/^users\/[^/]+\/executions\//.test(path)) return "users/{uid}/executions/{id}";
  if (/^users\/[^/]+\/limits\/current$/.test(path)) return "users/{uid}/limits/current (lane 0)";
  if (/^users\/[^/]+\/limits\/lane-\d+$/.test(path)) return "users/{uid}/limits/lane-{k}";
  if (/^users\/[^/]+\/usage\/\d{4}-\d{2}$/.test(path)) return "users/{uid}/usage/{YYYY-MM}";
  if (/^users\/[^/]+\/usage\/\d{4}-\d{2}-\d{2}$/.test(path)) return "users/{uid}/usage/{YYYY-MM-DD}";
  if (/^users\/[^/]+\/usage\/\d{4}-\d{2}~\d+$/.test(path)) return "users/{uid}/usage/{YYYY-MM}~{k}";
  if (/^users\/[^/]+\/usage\/\d{4}-\d{2}-\d{2}~\d+$/.test(path)) return "users/{uid}/usage/{YYYY-MM-DD}~{k}";
  if (/^globalUsage\/[^/]+\/shards\/\d+$/.test(path)) return "globalUsage/{YYYY-MM}/shards/{i}";
  return path;
}

function deps(db: () => Promise<Firestore>, limits: Partial<LimitSettings>): PipelineDeps {
  const settings = {
    defaultFallbackModels: [],
    maxTimeoutMs: 60_000,
    retry: { maxRetries: 1, baseDelayMs: 10, maxDelayMs: 50 },
    historyTtlDays: 1,
    conversationTtlDays: 1,
    logPrompts: false,
    limits: {
      perMinute: DEFAULT_PER_MINUTE,
      maxConcurrent: 4,
      defaultMonthlyBudgetUsd: 5,
      globalMonthlyBudgetUsd: 1_000_000,
      globalShards: GLOBAL_SHARDS,
      reservationGraceMs: 60_000,
      ...limits,
    },
  };
  return {
    catalog,
    modelClient: (p) => (p.id === "local" ? openAIModelClient(p, { baseUrl: process.env.LOCAL_PROVIDER_URL!, apiKey: "" }) : undefined),
    executions: firestoreExecutionStore(db, { globalShards: GLOBAL_SHARDS }),
    prompts: firestorePromptStore(db),
    settings: () => settings,
    newId: () => randomUUID().replaceAll("-", "").slice(0, 20),
    logger: silentLogger,
  };
}

const ask = { model: "local-mini+deltas=2", messages: [{ role: "user", content: "hi" }], params: { maxTokens: 8 } };

interface ClassFigures {
  documents: number;
  writes: number;
  /** The document of the class written most: what "on one document" means. */
  busiest: { path: string; writes: number };
}

function summarize(writes: Map<string, number>): Map<string, ClassFigures> {
  const classes = new Map<string, ClassFigures>();
  for (const [path, n] of writes) {
    const name = classOf(path);
    const entry = classes.get(name) ?? { documents: 0, writes: 0, busiest: { path, writes: 0 } };
    entry.documents += 1;
    entry.writes += n;
    if (n > entry.busiest.writes) entry.busiest = { path, writes: n };
    classes.set(name, entry);
  }
  return classes;
}

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  "));
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(3));
const isRecord = (name: string) => name.startsWith("users/{uid}/executions");

async function shapeA(counter: Awaited<ReturnType<typeof counted>>): Promise<number> {
  // Whole rounds of the global shards (every instance takes them in turn), and whole users.
  const users = Array.from({ length: GLOBAL_SHARDS / 4 }, () => `scaleA-${randomUUID().slice(0, 8)}`);
  const perUser = 4;
  const pipeline = deps(counter.db, {});
  counter.reset();
  // Each user's requests one after the other (a user at the default limits runs at most 0.5 a second).
  const queue = Array.from({ length: perUser }, () => users).flat();
  let done = 0;
  await Promise.all(
    Array.from({ length: 24 }, async () => {
      for (let uid = queue.shift(); uid !== undefined; uid = queue.shift()) {
        await executePrompt(pipeline, ask, { uid });
        done++;
      }
    }),
  );
  // A user's documents are fed by that user's executions (each user at their limit, 0.5/s); the
  // global shards by everyone's (1,000/s): the busiest shard takes its share of them.
  const userRate = DEFAULT_PER_MINUTE / 60;
  const rows = [["A: 1,000/s overall, global budget on", "documents", "writes", "writes/execution", "busiest document: writes", "fed at /s", "projected writes/s, busiest document"]];
  let max = 0;
  for (const [name, f] of summarize(counter.writes)) {
    const isGlobal = name.startsWith("globalUsage/");
    // A record is written twice in its life (admission, settlement) and never again: no sustained rate.
    const projected = isRecord(name) ? 0 : isGlobal ? (f.busiest.writes / done) * TARGET_OVERALL : (f.busiest.writes / perUser) * userRate;
    if (!isRecord(name)) max = Math.max(max, projected);
    rows.push([
      name,
      String(f.documents),
      String(f.writes),
      fmt(f.writes / done),
      String(f.busiest.writes),
      isRecord(name) ? "-" : isGlobal ? `${TARGET_OVERALL} overall` : `${fmt(userRate)} (its user)`,
      isRecord(name) ? "2 in its life" : fmt(projected),
    ]);
  }
  console.log(`\n${done} executions by ${users.length} users (${perUser} each, each user at most ${DEFAULT_PER_MINUTE}/minute), ${GLOBAL_SHARDS} global shards`);
  table(rows);
  return max;
}

async function shapeB(counter: Awaited<ReturnType<typeof counted>>): Promise<number> {
  const uid = `scaleB-${randomUUID().slice(0, 8)}`;
  await firestoreUsageRepo(counter.db).setLimits(uid, { perMinute: RAISED_PER_MINUTE, maxConcurrent: 50 });
  const lanes = lanesFor({ perMinute: RAISED_PER_MINUTE });
  // Two instances, each spreading its own admissions over the lanes, taking turns.
  const instances = [deps(counter.db, { defaultMonthlyBudgetUsd: 100 }), deps(counter.db, { defaultMonthlyBudgetUsd: 100 })];
  counter.reset();
  const seconds = 20;
  const started = Date.now();
  const runs: Promise<unknown>[] = [];
  for (let i = 0; i < seconds * TARGET_ONE_USER; i++) {
    const due = started + (i * 1_000) / TARGET_ONE_USER;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
    runs.push(executePrompt(instances[i % instances.length]!, ask, { uid }));
  }
  await Promise.all(runs);
  const elapsed = (Date.now() - started) / 1_000;
  const executions = runs.length;
  const rows = [[`B: one user at ${TARGET_ONE_USER}/s (${lanes} lanes, 2 instances)`, "documents", "writes", "writes/execution", "busiest document: writes", "measured writes/s, busiest", "projected writes/s, busiest document"]];
  let max = 0;
  for (const [name, f] of summarize(counter.writes)) {
    const measured = f.busiest.writes / elapsed;
    // Every document here is fed by this user's executions, at 5 a second.
    const projected = (f.busiest.writes / executions) * TARGET_ONE_USER;
    if (!isRecord(name)) max = Math.max(max, projected);
    rows.push([name, String(f.documents), String(f.writes), fmt(f.writes / executions), String(f.busiest.writes), isRecord(name) ? "2 in its life" : fmt(measured), isRecord(name) ? "2 in its life" : fmt(projected)]);
  }
  console.log(`\n${executions} executions by one user in ${elapsed.toFixed(1)} s (${(executions / elapsed).toFixed(2)}/s)`);
  table(rows);
  return max;
}

const counter = await counted();
console.log(`Firestore writes by document, against the emulator (target: ≤ ${WRITES_PER_DOCUMENT_PER_SECOND} sustained write/s on any document; each class is shown by its busiest document)`);
const maxA = await shapeA(counter);
const maxB = await shapeB(counter);
console.log(`\nA: ${fmt(maxA)}   B: ${fmt(maxB)}`);
console.log(`max projected writes/s on one document: ${Math.max(maxA, maxB).toFixed(3)}`);
process.exit(0);
