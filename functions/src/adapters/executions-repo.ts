import type { DocumentData, DocumentReference, DocumentSnapshot, FieldValue, Firestore, Timestamp } from "firebase-admin/firestore";
import type { Execution, RecordedMessage } from "../core/execution.js";
import { idempotencyDecision, priorRunsOf } from "../core/idempotency.js";
import { abandoned, ABANDONED_DELTA, usageDelta, type UsageTotals } from "../core/ledger.js";
import { decideAdmission, partitionReservations, usagePeriods, type AccountState, type GlobalShardState, type Reservation } from "../core/limits.js";
import { checkTurnFree, type StoredMessage } from "../core/conversation.js";
import type { Admission, AdmissionRequest, AdmissionTicket, ExecutionStore } from "../core/ports.js";
import { conversationFromSnapshot, conversationPaths, holdConversation, loadHistory, settleConversation } from "./conversations-repo.js";

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

/** Rounds of read-then-commit before giving up; a burst of one user's requests settles well within this. */
const OPTIMISTIC_ATTEMPTS = 50;

/** gRPC codes of a commit whose precondition another writer invalidated: FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED. */
function lostRace(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 9 || code === 6 || code === 10;
}

/**
 * Runs `round` (read, decide, commit with preconditions) until a commit goes through, reading
 * again after a few jittered milliseconds whenever another writer got there first.
 */
async function untilCommitted<T>(round: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await round();
    } catch (error) {
      if (!lostRace(error) || attempt >= OPTIMISTIC_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));
    }
  }
}

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

export interface FirestoreExecutionStore extends ExecutionStore {
  /**
   * Closes a user's abandoned executions: those whose reservation expired, and the given
   * stale `running` records that hold no live reservation. Returns the ids closed.
   */
  reclaimAbandoned(uid: string, now: number, staleIds: readonly string[]): Promise<string[]>;
}

export function firestoreExecutionStore(db: Db, options: { globalShards: number }): FirestoreExecutionStore {
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
    /**
     * Optimistic concurrency rather than a transaction: one batched read, then one commit
     * whose preconditions (`lastUpdateTime`, or `exists: false`) fail if the user's limits
     * document changed meanwhile. Every admission, settlement and budget change writes that
     * document, so it versions all of the user's state and admissions are serialized per
     * user; on a lost race we read again after a few milliseconds. Transactions would hold
     * locks and back off a second or more per conflict (measured: 12 at once took 13 s).
     */
    async admit(request: AdmissionRequest): Promise<Admission> {
      const firestore = await db();
      const FV = await fieldValues();
      const { uid, execution, now, limits } = request;
      const doc = (path: string) => firestore.doc(path);
      const { month } = usagePeriods(now);
      const limitsRef = doc(paths.limits(uid));
      const recordRef = doc(paths.execution(uid, execution.id));

      const turn = request.conversation;
      const conversationRef = turn ? doc(conversationPaths.conversation(uid, turn.id)) : undefined;

      return untilCommitted(async (): Promise<Admission> => {
        const shardIndexes = limits.globalMonthlyBudgetUsd === null ? [] : [...new Set([randomShard(), randomShard()])];
        const shardRefs = shardIndexes.map((i) => doc(paths.globalShard(month, i)));
        const refs = [limitsRef, doc(paths.usage(uid, month)), ...shardRefs, ...(execution.requestId ? [recordRef] : []), ...(conversationRef ? [conversationRef] : [])];
        // One round trip: the documents, and a conversation's newest messages, read at once.
        const [snapshots, history] = await Promise.all([
          firestore.getAll(...refs),
          turn ? loadHistory(firestore, uid, turn.id, turn.historyLimit) : Promise.resolve<StoredMessage[] | undefined>(undefined),
        ]);
        const [limitsSnap, monthSnap] = snapshots as [DocumentSnapshot, DocumentSnapshot];
        const shardSnaps = snapshots.slice(2, 2 + shardIndexes.length);
        const existingSnap = execution.requestId ? snapshots[2 + shardIndexes.length] : undefined;
        const conversationSnap = conversationRef ? snapshots.at(-1)! : undefined;
        const account = accountFromSnapshots(limitsSnap, monthSnap);
        const existing = existingSnap?.exists ? executionFromSnapshot(existingSnap) : undefined;
        const live = (id: string) => (account.reservations[id]?.expireAt ?? 0) > now;
        const repeat = existing ? idempotencyDecision(existing, execution.requestFingerprint ?? "", live(existing.id)) : undefined;
        if (existing && repeat === "replay") return { kind: "replay", execution: existing };
        const conversation = conversationSnap ? conversationFromSnapshot(conversationSnap) : undefined;
        if (turn) checkTurnFree(conversation, execution.id, now);
        const decision = decideAdmission({
          executionId: execution.id,
          now,
          reserveMicros: turn ? turn.reserveFor(conversation?.historyBytes ?? 0) : request.reserveMicros,
          expireAt: request.expireAt,
          account,
          globalShards: shardSnaps.map((snap, i): GlobalShardState => {
            const data = snap.data();
            return { index: shardIndexes[i]!, spentMicros: number(data?.costMicros), reservations: reservationsOf(data) };
          }),
          settings: limits,
        });

        const batch = firestore.batch();
        const guardedWrite = (snap: DocumentSnapshot, data: DocumentData) =>
          snap.exists ? batch.update(snap.ref, data, { lastUpdateTime: snap.updateTime! }) : batch.create(snap.ref, data);
        guardedWrite(limitsSnap, { reservations: decision.reservations, recent: decision.recent, updatedAt: new Date(now) });
        if (decision.globalShard) {
          const index = shardIndexes.indexOf(decision.globalShard.index);
          guardedWrite(shardSnaps[index]!, { reservations: decision.globalShard.reservations });
        }
        const ledger = (delta: UsageTotals) => addToLedger((ref, data) => batch.set(ref, data, { merge: true }), doc, uid, delta, now, randomShard(), FV);
        for (const id of decision.expired) {
          // Settlement deletes a reservation in the same commit as the final record, so a
          // reservation still here means its execution never finished: close its record
          // (unless it is the one rerun below, which is overwritten anyway).
          if (id !== existing?.id) batch.set(doc(paths.execution(uid, id)), abandoned(new Date(now)), { merge: true });
          ledger(ABANDONED_DELTA);
        }
        let record = execution;
        if (existing) {
          // A rerun under the same requestId: the earlier run (closed as abandoned first, when
          // its instance died) stays counted in the ledger, so the record carries what it cost.
          const reclaimed = repeat === "reclaim";
          if (reclaimed && !decision.expired.includes(existing.id)) ledger(ABANDONED_DELTA);
          record = { ...execution, prior: priorRunsOf(reclaimed ? { ...existing, ...abandoned(new Date(now)) } : existing) };
        }
        if (turn && conversationSnap) guardedWrite(conversationSnap, holdConversation(conversationSnap, turn, execution.id, request.expireAt, now));
        batch.set(recordRef, toDoc(record));
        const results = await batch.commit();
        // Write times of the last two writes: the conversation (when held) and the record. Settlement
        // commits over exactly these versions, so that it is idempotent and never appends to a turn it lost.
        const version = results.at(-1)!.writeTime;
        return {
          kind: "admitted",
          ticket: {
            ...(decision.globalShard ? { globalShard: decision.globalShard.index } : {}),
            version,
            ...(turn ? { conversation: { id: turn.id, nextSeq: conversation?.nextSeq ?? 0, version: results.at(-2)!.writeTime, expireAt: turn.expireAt.getTime() } } : {}),
          },
          ...(record.prior ? { prior: record.prior } : {}),
          ...(history ? { history } : {}),
        };
      });
    },

    async reclaimAbandoned(uid: string, now: number, staleIds: readonly string[]): Promise<string[]> {
      const firestore = await db();
      const FV = await fieldValues();
      const doc = (path: string) => firestore.doc(path);
      return untilCommitted(async () => {
        const [limitsSnap, ...records] = await firestore.getAll(doc(paths.limits(uid)), ...staleIds.map((id) => doc(paths.execution(uid, id))));
        const { live, expired } = partitionReservations(reservationsOf(limitsSnap!.data()), now);
        const orphans = records.filter((r) => r.exists && r.data()?.status === "running" && !(r.id in live)).map((r) => r.id);
        const closing = [...new Set([...expired, ...orphans])];
        if (closing.length === 0) return [];
        const batch = firestore.batch();
        if (limitsSnap!.exists) batch.update(limitsSnap!.ref, { reservations: live }, { lastUpdateTime: limitsSnap!.updateTime! });
        for (const id of closing) {
          batch.set(doc(paths.execution(uid, id)), abandoned(new Date(now)), { merge: true });
          addToLedger((ref, data) => batch.set(ref, data, { merge: true }), doc, uid, ABANDONED_DELTA, now, randomShard(), FV);
        }
        await batch.commit();
        return closing;
      });
    },

    /**
     * The final record, the ledger and the release, in one commit guarded by the `running`
     * record's version: if a try whose outcome we never learned went through, the repeat is
     * refused by the precondition and we find our own settlement in place. If the record was
     * meanwhile closed as abandoned (settlement outlived the reservation), the settlement
     * replaces that closure, counting only the difference in the ledger.
     */
    async finish(uid: string, execution: Execution, ticket: AdmissionTicket, turn?: RecordedMessage[]): Promise<void> {
      const firestore = await db();
      const FV = await fieldValues();
      const doc = (path: string) => firestore.doc(path);
      const recordRef = doc(paths.execution(uid, execution.id));
      const at = execution.completedAt?.getTime() ?? Date.now();
      const held = ticket.conversation;
      const commit = async (version: Timestamp | undefined, delta: UsageTotals, release: boolean, withConversation: boolean) => {
        const batch = firestore.batch();
        if (held && withConversation) {
          settleConversation(
            batch,
            firestore,
            {
              uid,
              id: held.id,
              nextSeq: held.nextSeq,
              executionId: execution.id,
              model: execution.model,
              at: new Date(at),
              expireAt: new Date(held.expireAt),
              ...(execution.status === "succeeded" && turn ? { turn } : {}),
            },
            () => FV.delete(),
            (n) => FV.increment(n),
            await asTimestamp(held.version),
          );
        }
        if (version) batch.update(recordRef, toDoc(execution), { lastUpdateTime: version });
        else batch.set(recordRef, toDoc(execution));
        if (release) batch.set(doc(paths.limits(uid)), { reservations: { [execution.id]: FV.delete() } }, { merge: true });
        const reservedOnShard = release && ticket.globalShard !== undefined;
        // Without a global budget any shard will do: spreading the writes is the point of shards.
        const shard = ticket.globalShard ?? randomShard();
        addToLedger((ref, data) => batch.set(ref, data, { merge: true }), doc, uid, delta, at, shard, FV, reservedOnShard ? { reservations: { [execution.id]: FV.delete() } } : {});
        await batch.commit();
      };
      const version = await asTimestamp(ticket.version);
      try {
        await commit(version, usageDelta(execution), true, true);
      } catch (error) {
        if (!lostRace(error)) throw error;
        const current = await recordRef.get();
        const data = current.data();
        if (!data) throw error;
        if (data.status === execution.status && toDate(data.completedAt)?.getTime() === execution.completedAt?.getTime()) return; // ours, already in
        if (data.abandoned === true && data.status === "failed") {
          // Settled after its hold expired and was reclaimed: the execution's truth replaces the
          // closure; the conversation went on without this turn.
          const delta = subtractTotals(usageDelta(execution), ABANDONED_DELTA);
          await commit(current.updateTime, delta, false, false);
          return;
        }
        if (held && version && current.updateTime?.isEqual(version)) {
          // The record is as admission left it, so the conversation moved on (another turn took it
          // over after this one's hold expired): settle the execution without touching it.
          await commit(version, usageDelta(execution), true, false);
          return;
        }
        throw error;
      }
    },
  };
}

/** A version as the ticket carries it: a Timestamp, or its JSON form after a trip through a log (`execution.unsettled`). */
async function asTimestamp(version: unknown): Promise<Timestamp | undefined> {
  if (!version || typeof version !== "object") return undefined;
  if ("toMillis" in version) return version as Timestamp;
  const { _seconds: seconds, _nanoseconds: nanos } = version as { _seconds?: unknown; _nanoseconds?: unknown };
  if (typeof seconds !== "number" || typeof nanos !== "number") return undefined;
  const { Timestamp: TimestampClass } = await import("firebase-admin/firestore");
  return new TimestampClass(seconds, nanos);
}

function subtractTotals(a: UsageTotals, b: UsageTotals): UsageTotals {
  return {
    requests: a.requests - b.requests,
    succeeded: a.succeeded - b.succeeded,
    failed: a.failed - b.failed,
    inputTokens: a.inputTokens - b.inputTokens,
    outputTokens: a.outputTokens - b.outputTokens,
    costMicros: a.costMicros - b.costMicros,
  };
}
