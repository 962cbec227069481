import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { firestoreExecutionStore, paths } from "../functions/src/adapters/executions-repo.js";
import { firestore } from "../functions/src/adapters/firestore.js";
import { globalLedgerShards } from "../functions/src/config/params.js";
import type { Execution } from "../functions/src/core/execution.js";
import type { AdmissionTicket } from "../functions/src/core/ports.js";

/**
 * Settles executions whose final commit ran out of time (a long Firestore outage): reads
 * `execution.unsettled` log entries, as JSON lines (one entry per line, either the entry
 * itself or Cloud Logging's export with the fields under `jsonPayload`), and commits each
 * one as the function would have. Settlement is idempotent: an execution already settled
 * is left as it is, so running this twice, or on an entry that settled late, is safe. An
 * execution whose record was since reclaimed and run again under its requestId is counted
 * in that record's `prior` and the ledger (once the rerun has finished; until then it is
 * reported pending and the exit code is 1).
 *
 *   gcloud logging read 'jsonPayload.message="execution.unsettled"' --format=json \
 *     | node -e 'for (const e of JSON.parse(require("fs").readFileSync(0))) console.log(JSON.stringify(e))' \
 *     | npm run settle-unsettled
 *   npm run settle-unsettled -- entries.jsonl
 *
 * Credentials as for any Admin SDK script (GOOGLE_APPLICATION_CREDENTIALS, or the emulator's
 * FIRESTORE_EMULATOR_HOST); GCLOUD_PROJECT names the project. docs/operations.md.
 */

interface UnsettledEntry {
  uid: string;
  executionId: string;
  ticket: AdmissionTicket;
  record: Omit<Execution, "input" | "inputTruncated"> & { createdAt: string; completedAt: string | null; expireAt: string };
}

function entriesOf(text: string): UnsettledEntry[] {
  const out: UnsettledEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const parsed = JSON.parse(line) as Record<string, unknown> & { jsonPayload?: Record<string, unknown>; fields?: Record<string, unknown> };
    const entry = (parsed.jsonPayload ?? parsed.fields ?? parsed) as Partial<UnsettledEntry> & { message?: string };
    if (entry.message !== undefined && entry.message !== "execution.unsettled") continue;
    if (!entry.uid || !entry.executionId || !entry.record || !entry.ticket) throw new Error(`not an execution.unsettled entry: ${line.slice(0, 120)}`);
    out.push(entry as UnsettledEntry);
  }
  return out;
}

const date = (value: string | null) => (value === null ? null : new Date(value));

/** Settles every entry it can; those it cannot yet (a rerun of the same record still running) are reported and counted as pending. */
export async function settleUnsettled(text: string, log: (line: string) => void = console.log): Promise<{ settled: number; pending: number }> {
  const store = firestoreExecutionStore(firestore, { globalShards: globalLedgerShards.value() });
  const db = await firestore();
  let settled = 0;
  let pending = 0;
  for (const entry of entriesOf(text)) {
    // The entry has no prompt (logs never do): the record keeps it, so take it from there. Only
    // that: the record may since be a closure of this run or a later run's, with fields of its own.
    const current = (await db.doc(paths.execution(entry.uid, entry.executionId)).get()).data() ?? {};
    const record = {
      input: current.input ?? [],
      inputTruncated: current.inputTruncated ?? false,
      ...entry.record,
      id: entry.executionId,
      createdAt: date(entry.record.createdAt)!,
      completedAt: date(entry.record.completedAt),
      expireAt: date(entry.record.expireAt)!,
    } as Execution;
    let result: Awaited<ReturnType<typeof store.finish>>;
    try {
      result = await store.finish(entry.uid, record, entry.ticket);
    } catch (error) {
      if (!/still running/.test(String(error))) throw error;
      pending++;
      log(`pending ${entry.uid}/${entry.executionId}: ${(error as Error).message}`);
      continue;
    }
    settled++;
    log(`settled ${entry.uid}/${entry.executionId}: ${record.status}, ${record.cost?.micros ?? 0} µ$`);
    if (record.conversation && record.status === "succeeded" && result && result.conversation !== undefined) {
      // The answer is not in the log (nor, without LOG_PROMPTS, its text), and the turn's hold is long gone.
      log(`warning: conversation.turn_not_appended: ${entry.uid}/${entry.executionId} answered in conversation ${record.conversation.id}, which does not keep this turn`);
    }
  }
  return { settled, pending };
}

const isMain = process.argv[1]?.endsWith("settle-unsettled.ts");
if (isMain) {
  const { positionals } = parseArgs({ allowPositionals: true });
  const text = readFileSync(positionals[0] ?? 0, "utf8");
  settleUnsettled(text).then(
    ({ settled, pending }) => {
      console.log(`${settled} execution(s) settled.${pending > 0 ? ` ${pending} pending: run this again later.` : ""}`);
      process.exit(pending > 0 ? 1 : 0);
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    },
  );
}
