import type { DocumentData, DocumentReference, DocumentSnapshot, FieldValue, Firestore } from "firebase-admin/firestore";
import type { Execution } from "../core/execution.js";
import { idempotencyDecision } from "../core/idempotency.js";
import { abandoned, ABANDONED_DELTA, usageDelta, type UsageTotals } from "../core/ledger.js";
import { decideAdmission, usagePeriods, type AccountState, type GlobalShardState, type Reservation } from "../core/limits.js";
import type { Admission, AdmissionRequest, AdmissionTicket, ExecutionStore } from "../core/ports.js";

/**
 * Where everything lives (docs/data-model.md):
 *   users/{uid}/executions/{executionId}   the record
 *   users/{uid}/limits/current             budget override, live reservations, recent admissions
 *   users/{uid}/usage/{YYYY-MM[-DD]}       the user's ledger
 *   globalUsage/{YYYY-MM}/shards/{i}       the global ledger and global-budget reservations, sharded
 */
export const paths = {
  execution: (uid: string, id: string) => `users/${uid}/executions/${id}`,
  limits: (uid: string) => `users/${uid}/limits/current`,
  usage: (uid: string, period: string) => `users/${uid}/usage/${period}`,
  globalShard: (month: string, index: number) => `globalUsage/${month}/shards/${index}`,
};

/** Day documents of the ledger are deleted by TTL after this long; month documents are kept. */
const DAY_LEDGER_TTL_MS = 400 * 86_400_000;

/** Admission transactions of one user wait on each other; allow more retries than the SDK's 5 under bursts. */
const TRANSACTION_ATTEMPTS = 25;

type Db = () => Promise<Firestore>;
type FieldValues = typeof FieldValue;
/** A merge-set on whatever is collecting the writes (a transaction or a batch). */
type MergeSet = (ref: DocumentReference, data: DocumentData) => void;


function toDoc({ id: _id, ...execution }: Execution): DocumentData {
  return execution;
}

function toDate(value: unknown): Date | null {
  if (value instanceof Date) return value;
  if (value && typeof value === "object" && "toDate" in value) return (value as { toDate(): Date }).toDate();
  return null;
}

export function executionFromSnapshot(snapshot: DocumentSnapshot): Execution {
  const data = snapshot.data()!;
  return {
    ...(data as Omit<Execution, "id" | "createdAt" | "completedAt" | "expireAt">),
    id: snapshot.id,
    createdAt: toDate(data.createdAt)!,
    completedAt: toDate(data.completedAt),
    expireAt: toDate(data.expireAt)!,
  };
}

function number(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function reservationsOf(data: DocumentData | undefined): Record<string, Reservation> {
  const raw = (data?.reservations ?? {}) as Record<string, Partial<Reservation>>;
  const out: Record<string, Reservation> = {};
  for (const [id, r] of Object.entries(raw)) {
    out[id] = { micros: number(r.micros), expireAt: number(r.expireAt), ...(typeof r.globalShard === "number" ? { globalShard: r.globalShard } : {}) };
  }
  return out;
}

export function accountFromSnapshots(limits: DocumentSnapshot, month: DocumentSnapshot): AccountState {
  const data = limits.data();
  const budget = data?.monthlyBudgetUsd;
  return {
    ...(budget === null || typeof budget === "number" ? { monthlyBudgetUsd: budget } : {}),
    spentMicros: number(month.data()?.costMicros),
    reservations: reservationsOf(data),
    recent: Array.isArray(data?.recent) ? (data.recent as unknown[]).filter((t): t is number => typeof t === "number") : [],
  };
}

/** Increments for one ledger document; `set(…, { merge: true })` creates it on first use. */
function ledgerIncrements(delta: UsageTotals, increment: (n: number) => unknown): DocumentData {
  return {
    requests: increment(delta.requests),
    succeeded: increment(delta.succeeded),
    failed: increment(delta.failed),
    inputTokens: increment(delta.inputTokens),
    outputTokens: increment(delta.outputTokens),
    costMicros: increment(delta.costMicros),
  };
}

export function firestoreExecutionStore(db: Db, options: { globalShards: number }): ExecutionStore {
  let loaded: FieldValues | undefined;
  // Loaded with Firestore itself, on first use, not at cold start.
  const fieldValues = async () => (loaded ??= (await import("firebase-admin/firestore")).FieldValue);
  const randomShard = () => Math.floor(Math.random() * options.globalShards);

  /** Adds one execution to the user's day and month and to a global shard. */
  function addToLedger(
    mergeSet: MergeSet,
    doc: (path: string) => DocumentReference,
    uid: string,
    delta: UsageTotals,
    at: number,
    shard: number,
    FV: FieldValues,
    extraShardFields: DocumentData = {},
  ): void {
    const { day, month } = usagePeriods(at);
    const fields = { ...ledgerIncrements(delta, (n) => FV.increment(n)), updatedAt: new Date(at) };
    mergeSet(doc(paths.usage(uid, month)), { ...fields, period: month });
    mergeSet(doc(paths.usage(uid, day)), { ...fields, period: day, expireAt: new Date(Date.parse(day) + DAY_LEDGER_TTL_MS) });
    mergeSet(doc(paths.globalShard(month, shard)), { ...fields, ...extraShardFields });
  }

  return {
    async admit(request: AdmissionRequest): Promise<Admission> {
      const firestore = await db();
      const FV = await fieldValues();
      const { uid, execution, now, limits } = request;
      const doc = (path: string) => firestore.doc(path);
      const { month } = usagePeriods(now);
      const recordRef = doc(paths.execution(uid, execution.id));
      const shardIndexes =
        limits.globalMonthlyBudgetUsd === null
          ? []
          : [...new Set([randomShard(), randomShard()])];

      return firestore.runTransaction(
        async (tx) => {
          const refs = [doc(paths.limits(uid)), doc(paths.usage(uid, month)), ...shardIndexes.map((i) => doc(paths.globalShard(month, i)))];
          if (execution.requestId) refs.push(recordRef);
          const snapshots = await tx.getAll(...refs);
          const [limitsSnap, monthSnap] = snapshots as [DocumentSnapshot, DocumentSnapshot];
          const existing = execution.requestId ? snapshots.at(-1)! : undefined;
          if (existing?.exists && idempotencyDecision(executionFromSnapshot(existing), execution.requestFingerprint ?? "") === "replay") {
            return { kind: "replay", execution: executionFromSnapshot(existing) } as const;
          }
          const globalShards: GlobalShardState[] = shardIndexes.map((index, i) => {
            const data = snapshots[2 + i]!.data();
            return { index, spentMicros: number(data?.costMicros), reservations: reservationsOf(data) };
          });
          const decision = decideAdmission({
            executionId: execution.id,
            now,
            reserveMicros: request.reserveMicros,
            expireAt: request.expireAt,
            account: accountFromSnapshots(limitsSnap, monthSnap),
            globalShards,
            settings: limits,
          });
          for (const id of decision.expired) {
            // Settlement deletes a reservation in the same commit as the final record, so a
            // reservation still here means its execution never finished: close its record.
            tx.set(doc(paths.execution(uid, id)), abandoned(new Date(now)), { merge: true });
            addToLedger((ref, data) => tx.set(ref, data, { merge: true }), doc, uid, ABANDONED_DELTA, now, randomShard(), FV);
          }
          tx.set(
            limitsSnap.ref,
            { reservations: decision.reservations, recent: decision.recent, updatedAt: new Date(now) },
            { mergeFields: ["reservations", "recent", "updatedAt"] },
          );
          if (decision.globalShard) {
            tx.set(doc(paths.globalShard(month, decision.globalShard.index)), { reservations: decision.globalShard.reservations }, { mergeFields: ["reservations"] });
          }
          tx.set(recordRef, toDoc(execution));
          const ticket: AdmissionTicket = decision.globalShard ? { globalShard: decision.globalShard.index } : {};
          return { kind: "admitted", ticket } as const;
        },
        { maxAttempts: TRANSACTION_ATTEMPTS },
      );
    },

    async finish(uid: string, execution: Execution, ticket: AdmissionTicket): Promise<void> {
      const firestore = await db();
      const FV = await fieldValues();
      const doc = (path: string) => firestore.doc(path);
      const at = execution.completedAt?.getTime() ?? Date.now();
      const batch = firestore.batch();
      batch.set(doc(paths.execution(uid, execution.id)), toDoc(execution));
      batch.set(doc(paths.limits(uid)), { reservations: { [execution.id]: FV.delete() } }, { merge: true });
      const reservedOnShard = ticket.globalShard !== undefined;
      // Without a global budget any shard will do: spreading the writes is the point of shards.
      const shard = ticket.globalShard ?? randomShard();
      addToLedger((ref, data) => batch.set(ref, data, { merge: true }), doc, uid, usageDelta(execution), at, shard, FV, reservedOnShard ? { reservations: { [execution.id]: FV.delete() } } : {});
      await batch.commit();
    },
  };
}
