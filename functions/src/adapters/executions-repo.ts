import type { DocumentData, DocumentReference, DocumentSnapshot, FieldValue, Firestore, Timestamp, WriteBatch } from "firebase-admin/firestore";
import { checkTurnFree, historyAgrees, type StoredMessage } from "../core/conversation.js";
import type { Execution, PriorRuns, RecordedMessage } from "../core/execution.js";
import { GlobalBudgetGate, type GlobalAdmission } from "../core/global-budget.js";
import { idempotencyDecision, priorRunsOf } from "../core/idempotency.js";
import { abandoned, ABANDONED_DELTA, usageDelta, type UsageTotals } from "../core/ledger.js";
import { decideAdmission, headroomAfter, partitionReservations, usagePeriods } from "../core/limits.js";
import type { Admission, AdmissionRequest, AdmissionTicket, ExecutionStore, FinishResult } from "../core/ports.js";
import { systemClock } from "../core/ports.js";
import { conversationFromSnapshot, conversationPaths, holdConversation, loadHistory, loadMessage, settleConversation } from "./conversations-repo.js";
import { firestoreGlobalTotals, globalPaths, microsOf } from "./global-ledger-repo.js";
import { lostRace, ReadAgain, untilCommitted } from "./optimistic.js";
import { accountFromLanes, laneCountOf, LaneCounts, laneFromSnapshot, lanesToRead, reservationsOf, userPaths } from "./user-state-repo.js";

export { accountFromSnapshots } from "./user-state-repo.js";

/**
 * Where everything lives (docs/data-model.md, docs/scaling.md):
 *   users/{uid}/executions/{executionId}   the record
 *   users/{uid}/limits/current             lane 0: budget and limit overrides, live reservations, recent admissions
 *   users/{uid}/limits/lane-{k}            further lanes of a user with raised limits
 *   users/{uid}/usage/{YYYY-MM[-DD]}[~k]   the user's ledger, per lane
 *   globalUsage/{YYYY-MM}/shards/{i}       the global ledger and the global budget's reservations, sharded
 */
export const paths = {
  execution: (uid: string, id: string) => `users/${uid}/executions/${id}`,
  limits: (uid: string) => userPaths.lane(uid, 0),
  usage: (uid: string, period: string) => userPaths.usage(uid, period),
  globalShard: globalPaths.shard,
};

/** Day documents of the ledger are deleted by TTL after this long; month documents are kept. */
const DAY_LEDGER_TTL_MS = 400 * 86_400_000;


type Db = () => Promise<Firestore>;
type FieldValues = typeof FieldValue;

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

/** An update that leaves exactly `next` (as `set` would): fields of `current` it lacks are deleted. */
function replacing(current: DocumentData, next: DocumentData, FV: FieldValues): DocumentData {
  const update: DocumentData = { ...next };
  for (const field of Object.keys(current)) if (!(field in next)) update[field] = FV.delete();
  return update;
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

export interface StoreOptions {
  /** Shards of the global ledger (docs/scaling.md: from the configured peak rate). */
  globalShards: number;
}

export function firestoreExecutionStore(db: Db, options: StoreOptions): FirestoreExecutionStore {
  let loaded: FieldValues | undefined;
  // Loaded with Firestore itself, on first use, not at cold start.
  const fieldValues = async () => (loaded ??= (await import("firebase-admin/firestore")).FieldValue);
  const randomIndex = (n: number) => Math.floor(Math.random() * n);
  // Global shards in turn from a random start: every shard takes an even share of this instance's
  // executions, so no shard is written more than the average (docs/scaling.md).
  let shardCursor = randomIndex(options.globalShards);
  const nextShard = () => (shardCursor = (shardCursor + 1) % options.globalShards);
  const lanes = new LaneCounts();
  const global = new GlobalBudgetGate(firestoreGlobalTotals(db), systemClock);

  /** The writes that add one execution to the user's lane ledger and to a global shard. */
  function addToLedger(batch: WriteBatch, firestore: Firestore, FV: FieldValues, at: {
    uid: string;
    lane: number;
    delta: UsageTotals;
    time: number;
    shard: number;
    /** Released from the shard's reservations at the same time. */
    releasedMicros?: number;
  }): void {
    const { day, month } = usagePeriods(at.time);
    const fields = { ...ledgerIncrements(at.delta, (n) => FV.increment(n)), updatedAt: new Date(at.time) };
    batch.set(firestore.doc(userPaths.usage(at.uid, month, at.lane)), { ...fields, period: month }, { merge: true });
    batch.set(firestore.doc(userPaths.usage(at.uid, day, at.lane)), { ...fields, period: day, expireAt: new Date(Date.parse(day) + DAY_LEDGER_TTL_MS) }, { merge: true });
    const shard = { ...fields, reservedMicros: FV.increment(-(at.releasedMicros ?? 0)) };
    batch.set(firestore.doc(globalPaths.shard(month, at.shard)), shard, { merge: true });
  }

  /** Closes an execution presumed dead: its record, its ledger entry, and its global reservation. */
  function closeAbandoned(batch: WriteBatch, firestore: Firestore, FV: FieldValues, uid: string, lane: number, id: string, reservation: { micros: number; globalShard?: number } | undefined, now: number, writeRecord: boolean): void {
    if (writeRecord) batch.set(firestore.doc(paths.execution(uid, id)), abandoned(new Date(now)), { merge: true });
    const shard = reservation?.globalShard;
    addToLedger(batch, firestore, FV, {
      uid,
      lane,
      delta: ABANDONED_DELTA,
      time: now,
      shard: shard ?? nextShard(),
      ...(shard !== undefined && reservation ? { releasedMicros: reservation.micros } : {}),
    });
  }

  /**
   * A run settled after its record was reclaimed and run again: the record now belongs to a later
   * run, so only its `prior` takes this run's cost (what reclaiming counted as nothing), with the
   * ledger, in one commit over the record's version, once (`prior.settledLate`). While the later
   * run is still running its record is left alone (its own settlement commits over its version):
   * this throws, and settling again once it has finished does it.
   */
  async function settleRerunLate(firestore: Firestore, FV: FieldValues, uid: string, execution: Execution, ticket: AdmissionTicket, version: Timestamp, prior: PriorRuns): Promise<void> {
    const late = String(execution.createdAt.getTime());
    if (prior.settledLate?.includes(late)) return;
    const recordRef = firestore.doc(paths.execution(uid, execution.id));
    const current = await recordRef.get();
    if (current.get("status") === "running") throw Object.assign(new Error(`${execution.id} was run again and that run is still running: settle it again once it has finished`), { code: 10 });
    const delta = subtractTotals(usageDelta(execution), ABANDONED_DELTA);
    const latest = prior.runs === (execution.prior?.runs ?? 0) + 1;
    const { lastError: _lastError, ...rest } = prior;
    const settled: PriorRuns = {
      ...(latest ? rest : prior),
      costMicros: prior.costMicros + delta.costMicros,
      inputTokens: prior.inputTokens + delta.inputTokens,
      outputTokens: prior.outputTokens + delta.outputTokens,
      // The most recent earlier run is this one: its true outcome replaces "abandoned".
      ...(latest ? { lastStatus: execution.status, ...(execution.error ? { lastError: execution.error } : {}) } : {}),
      settledLate: [...(prior.settledLate ?? []), late],
    };
    const batch = firestore.batch();
    batch.update(recordRef, { prior: settled }, { lastUpdateTime: current.updateTime ?? version });
    const at = execution.completedAt?.getTime() ?? Date.now();
    addToLedger(batch, firestore, FV, { uid, lane: ticket.lane ?? 0, delta, time: at, shard: ticket.globalShard ?? nextShard() });
    await batch.commit();
  }

  return {
    /**
     * Optimistic concurrency rather than a transaction: one batched read, then one commit
     * whose preconditions (`lastUpdateTime`, or `exists: false`) fail if the lane document
     * changed meanwhile. Every admission and settlement writes its lane, so the lane versions
     * that part of the user's state: a one-lane user's admissions are serialized exactly; on a
     * lost race we read again after a few milliseconds. The global budget is checked on a
     * cached total far from it, on a fresh one near it (core/global-budget.ts), read alongside the
     * documents. Transactions
     * would hold locks and back off a second or more per conflict (measured: 12 at once took 13 s).
     */
    async admit(request: AdmissionRequest): Promise<Admission> {
      const firestore = await db();
      const FV = await fieldValues();
      const { uid, execution, now, limits } = request;
      const doc = (path: string) => firestore.doc(path);
      const { month } = usagePeriods(now);
      const recordRef = doc(paths.execution(uid, execution.id));
      const turn = request.conversation;
      const conversationRef = turn ? doc(conversationPaths.conversation(uid, turn.id)) : undefined;
      const globalBudget = limits.globalMonthlyBudgetUsd === null ? null : Math.round(limits.globalMonthlyBudgetUsd * 1_000_000);

      // Chosen once per admission, kept when a round is tried again: the spread stays even.
      let chosenLane: number | undefined;
      let chosenShard: number | undefined;
      return untilCommitted(async (): Promise<Admission> => {
        // A conversation's reservation depends on its history, read below: bounded by the whole context window.
        const globally = globalBudget === null ? undefined : global.admission(month, globalBudget, turn ? turn.maxReserveMicros : request.reserveMicros);
        try {
          return await admitOnce(globally);
        } finally {
          globally?.end();
        }
      });

      async function admitOnce(globally: GlobalAdmission | undefined): Promise<Admission> {
        const laneCount = lanes.get(uid);
        const laneRefs = Array.from({ length: laneCount }, (_, k) => doc(userPaths.lane(uid, k)));
        const monthRefs = Array.from({ length: laneCount }, (_, k) => doc(userPaths.usage(uid, month, k)));
        const refs = [...laneRefs, ...monthRefs, ...(execution.requestId ? [recordRef] : []), ...(conversationRef ? [conversationRef] : [])];
        // One round trip: the documents, a conversation's newest messages, and (when stale) the global total.
        const [snapshots, history] = await Promise.all([
          firestore.getAll(...refs),
          turn ? loadHistory(firestore, uid, turn.id, turn.historyLimit) : Promise.resolve<StoredMessage[] | undefined>(undefined),
          globally?.ready,
        ]);
        const laneSnaps = snapshots.slice(0, laneCount);
        if (lanesToRead(laneSnaps[0]!, month) !== laneCount) {
          lanes.set(uid, lanesToRead(laneSnaps[0]!, month));
          throw new ReadAgain("the user's lanes changed");
        }
        const monthSnaps = snapshots.slice(laneCount, 2 * laneCount);
        const existingSnap = execution.requestId ? snapshots[2 * laneCount] : undefined;
        const conversationSnap = conversationRef ? snapshots.at(-1)! : undefined;
        const account = accountFromLanes(laneSnaps, monthSnaps);
        const existing = existingSnap?.exists ? executionFromSnapshot(existingSnap) : undefined;
        const live = (id: string) => (account.reservations[id]?.expireAt ?? 0) > now;
        const repeat = existing ? idempotencyDecision(existing, execution.requestFingerprint ?? "", live(existing.id)) : undefined;
        if (existing && repeat === "replay") return { kind: "replay", execution: existing };
        const conversation = conversationSnap ? conversationFromSnapshot(conversationSnap) : undefined;
        if (turn) checkTurnFree(conversation, execution.id, now);
        // The history and the document are two reads, not one snapshot: when the history misses
        // a turn the document has (it settled in between), read it again (rare: one round trip more).
        // Without a document there is no history (a first turn that commits first makes this one's create fail).
        let read = conversation ? (history ?? []) : [];
        if (turn && conversation && !historyAgrees(read, conversation)) read = await loadHistory(firestore, uid, turn.id, turn.historyLimit);
        // The system message is on the document; a conversation from before that has it as message 0
        // (one read more, once: the hold written below keeps it on the document).
        let system = conversation?.system ?? undefined;
        const legacy = turn !== undefined && conversation !== undefined && conversation.system === undefined && conversation.nextSeq > 0;
        if (legacy) {
          const first = read[0]?.seq === 0 ? read[0] : await loadMessage(firestore, uid, turn.id, 0);
          system = first?.role === "system" ? first : undefined;
        }
        const planned = turn ? turn.window(read, system) : undefined;
        const reserveMicros = planned ? planned.reserveMicros : request.reserveMicros;
        // A one-lane user writes lane 0; others their lanes in turn (docs/scaling.md: the bound this costs).
        // Lanes beyond those the limits call for (limits lowered this month) are read, never written.
        const writable = laneCountOf(laneSnaps[0]!);
        if (chosenLane === undefined || chosenLane >= writable) chosenLane = writable === 1 ? 0 : lanes.nextLane(uid, writable);
        const lane = chosenLane;
        const laneSnap = laneSnaps[lane]!;
        const decision = decideAdmission({
          executionId: execution.id,
          now,
          reserveMicros,
          expireAt: request.expireAt,
          account,
          ...(laneCount > 1 ? { lane: laneFromSnapshot(laneSnap) } : {}),
          settings: limits,
        });
        if (globally) await globally.hold(reserveMicros);
        const globalShard = globally ? (chosenShard ??= nextShard()) : undefined;
        if (globalShard !== undefined) decision.reservations[execution.id] = { ...decision.reservations[execution.id]!, globalShard };

        const batch = firestore.batch();
        const guardedWrite = (snap: DocumentSnapshot, data: DocumentData) =>
          snap.exists ? batch.update(snap.ref, data, { lastUpdateTime: snap.updateTime! }) : batch.create(snap.ref, data);
        guardedWrite(laneSnap, { reservations: decision.reservations, recent: decision.recent, updatedAt: new Date(now) });
        // Both summed fields on every shard: an aggregation only sums documents that have all of them.
        if (globalShard !== undefined) batch.set(doc(globalPaths.shard(month, globalShard)), { reservedMicros: FV.increment(reserveMicros), costMicros: FV.increment(0) }, { merge: true });
        const expiredReservations = reservationsOf(laneSnap.data());
        for (const id of decision.expired) {
          // Settlement deletes a reservation in the same commit as the final record, so a
          // reservation still here means its execution never finished: close its record
          // (unless it is the one rerun below, which is overwritten anyway).
          closeAbandoned(batch, firestore, FV, uid, lane, id, expiredReservations[id], now, id !== existing?.id);
        }
        let record = execution;
        if (existing) {
          // A rerun under the same requestId: the earlier run (closed as abandoned first, when
          // its instance died) stays counted in the ledger, so the record carries what it cost.
          const reclaimed = repeat === "reclaim";
          if (reclaimed && !decision.expired.includes(existing.id)) {
            // Its expired reservation may sit in another lane: take it out there too, or that lane
            // would close the rerun later.
            const other = laneSnaps.findIndex((snap) => existing.id in reservationsOf(snap.data()));
            const reservation = other >= 0 ? reservationsOf(laneSnaps[other]!.data())[existing.id] : undefined;
            if (other >= 0 && other !== lane) {
              batch.update(laneSnaps[other]!.ref, { [`reservations.${existing.id}`]: FV.delete() }, { lastUpdateTime: laneSnaps[other]!.updateTime! });
            }
            closeAbandoned(batch, firestore, FV, uid, lane, existing.id, reservation, now, false);
          }
          record = { ...execution, prior: priorRunsOf(reclaimed ? { ...existing, ...abandoned(new Date(now)) } : existing) };
        }
        // The running record references the conversation from the start: an abandoned turn keeps it too.
        if (turn && planned) record = { ...record, conversation: { id: turn.id, historyMessages: planned.messages.length } };
        if (turn && conversationSnap) {
          guardedWrite(conversationSnap, holdConversation(conversationSnap, turn, execution.id, request.expireAt, now, legacy ? (system ?? null) : undefined));
        }
        // The record claims the requestId by itself: created only if absent, or replaced only as it
        // was read. A lane's precondition is not enough, since another admission may write another lane.
        if (existingSnap?.exists) batch.update(recordRef, replacing(existingSnap.data()!, toDoc(record), FV), { lastUpdateTime: existingSnap.updateTime! });
        else batch.create(recordRef, toDoc(record));
        const results = await batch.commit();
        globally?.committed(microsOf(results[0]!.writeTime));
        const headroom = headroomAfter(account, limits, now, reserveMicros, globalBudget === null ? null : globalBudget - global.total(month));
        // Write times of the last two writes: the conversation (when held) and the record. Settlement
        // commits over exactly these versions, so that it is idempotent and never appends to a turn it lost.
        const version = results.at(-1)!.writeTime;
        return {
          kind: "admitted",
          ticket: {
            lane,
            reservedMicros: reserveMicros,
            ...(globalShard !== undefined ? { globalShard } : {}),
            version,
            ...(turn
              ? {
                  conversation: {
                    id: turn.id,
                    nextSeq: conversation?.nextSeq ?? 0,
                    version: results.at(-2)!.writeTime,
                    expireAt: turn.expireAt.getTime(),
                    ...((conversation?.nextSeq ?? 0) === 0 ? { created: true } : {}),
                  },
                }
              : {}),
          },
          headroom,
          ...(record.prior ? { prior: record.prior } : {}),
          ...(planned ? { history: planned.messages } : {}),
        };
      }
    },

    async reclaimAbandoned(uid: string, now: number, staleIds: readonly string[]): Promise<string[]> {
      const firestore = await db();
      const FV = await fieldValues();
      const doc = (path: string) => firestore.doc(path);
      return untilCommitted(async () => {
        const laneCount = lanes.get(uid);
        const snapshots = await firestore.getAll(...Array.from({ length: laneCount }, (_, k) => doc(userPaths.lane(uid, k))), ...staleIds.map((id) => doc(paths.execution(uid, id))));
        const laneSnaps = snapshots.slice(0, laneCount);
        const month = usagePeriods(now).month;
        if (lanesToRead(laneSnaps[0]!, month) !== laneCount) {
          lanes.set(uid, lanesToRead(laneSnaps[0]!, month));
          throw new ReadAgain("the user's lanes changed");
        }
        const records = snapshots.slice(laneCount);
        const batch = firestore.batch();
        const closing = new Set<string>();
        const allLive = new Set<string>();
        laneSnaps.forEach((snap, lane) => {
          const reservations = reservationsOf(snap.data());
          const { live, expired } = partitionReservations(reservations, now);
          for (const id of Object.keys(live)) allLive.add(id);
          if (expired.length === 0) return;
          batch.update(snap.ref, { reservations: live }, { lastUpdateTime: snap.updateTime! });
          for (const id of expired) {
            closing.add(id);
            closeAbandoned(batch, firestore, FV, uid, lane, id, reservations[id], now, true);
          }
        });
        for (const record of records) {
          if (!record.exists || record.data()?.status !== "running" || allLive.has(record.id) || closing.has(record.id)) continue;
          closing.add(record.id);
          closeAbandoned(batch, firestore, FV, uid, 0, record.id, undefined, now, true);
        }
        if (closing.size === 0) return [];
        await batch.commit();
        return [...closing];
      });
    },

    async recordUnadmitted(uid: string, execution: Execution): Promise<void> {
      await recordUnadmitted(await db(), await fieldValues(), addToLedger, nextShard(), uid, execution);
    },

    /**
     * The final record, the ledger and the release, in one commit guarded by the `running`
     * record's version: if a try whose outcome we never learned went through, the repeat is
     * refused by the precondition and we find our own settlement in place. If the record was
     * meanwhile closed as abandoned (settlement outlived the reservation), the settlement
     * replaces that closure, counting only the difference in the ledger; if it was also run
     * again since, the run's cost goes into the record's `prior` and the ledger instead.
     */
    async finish(uid: string, execution: Execution, ticket: AdmissionTicket, turn?: RecordedMessage[]): Promise<FinishResult> {
      const firestore = await db();
      const FV = await fieldValues();
      const doc = (path: string) => firestore.doc(path);
      const recordRef = doc(paths.execution(uid, execution.id));
      const at = execution.completedAt?.getTime() ?? Date.now();
      const held = ticket.conversation;
      const lane = ticket.lane ?? 0;
      /** `replaces`: the record as read, whose fields the execution lacks are deleted in the same write. */
      const commit = async (
        version: Timestamp | undefined,
        delta: UsageTotals,
        release: boolean,
        withConversation: boolean,
        replaces?: DocumentData,
      ): Promise<FinishResult> => {
        const batch = firestore.batch();
        const result: FinishResult = held ? { conversation: "skipped" } : {};
        if (held && withConversation) {
          result.conversation = settleConversation(
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
              ...(held.created ? { created: true } : {}),
            },
            () => FV.delete(),
            (n) => FV.increment(n),
            await asTimestamp(held.version),
          );
        }
        if (version) batch.update(recordRef, replaces ? replacing(replaces, toDoc(execution), FV) : toDoc(execution), { lastUpdateTime: version });
        else batch.set(recordRef, toDoc(execution));
        if (release) batch.set(doc(userPaths.lane(uid, lane)), { reservations: { [execution.id]: FV.delete() } }, { merge: true });
        // Without a global reservation any shard will do: spreading the writes is the point of shards.
        addToLedger(batch, firestore, FV, {
          uid,
          lane,
          delta,
          time: at,
          shard: ticket.globalShard ?? nextShard(),
          ...(release && ticket.globalShard !== undefined ? { releasedMicros: ticket.reservedMicros ?? 0 } : {}),
        });
        await batch.commit();
        return result;
      };
      const version = await asTimestamp(ticket.version);
      try {
        return await commit(version, usageDelta(execution), true, true);
      } catch (error) {
        if (!lostRace(error)) throw error;
        const current = await recordRef.get();
        const data = current.data();
        if (!data) throw error;
        if (data.status === execution.status && toDate(data.completedAt)?.getTime() === execution.completedAt?.getTime()) return {}; // ours, already in
        const prior = data.prior as PriorRuns | undefined;
        if ((prior?.runs ?? 0) > (execution.prior?.runs ?? 0)) {
          // Reclaimed as abandoned and run again under the same requestId since (settle-unsettled,
          // long after): this run was counted as an abandoned one, costing nothing; count what it cost.
          await settleRerunLate(firestore, FV, uid, execution, ticket, current.updateTime!, prior!);
          return held ? { conversation: "skipped" } : {};
        }
        if (data.abandoned === true && data.status === "failed") {
          // Settled after its hold expired and was reclaimed: the execution's truth replaces the
          // closure; the conversation went on without this turn (reported: "skipped").
          const delta = subtractTotals(usageDelta(execution), ABANDONED_DELTA);
          // One write: the closure's `abandoned` and `error` go with it.
          return await commit(current.updateTime, delta, false, false, data);
        }
        if (held && version && current.updateTime?.isEqual(version)) {
          // The record is as admission left it, so the conversation moved on (another turn took it
          // over after this one's hold expired): settle the execution without touching it ("skipped").
          return await commit(version, usageDelta(execution), true, false);
        }
        throw error;
      }
    },
  };
}

/**
 * An execution that called a provider without being admitted (a speculative start that
 * admission refused): its record and its cost in the ledger, one commit. `create`, so that a
 * repeat changes nothing; no lane is written (nothing was reserved). Called by the store's
 * `recordUnadmitted` (firestoreExecutionStore above), which chooses the ledger shard.
 */
async function recordUnadmitted(
  firestore: Firestore,
  FV: FieldValues,
  addToLedger: (batch: WriteBatch, firestore: Firestore, FV: FieldValues, at: { uid: string; lane: number; delta: UsageTotals; time: number; shard: number }) => void,
  shard: number,
  uid: string,
  execution: Execution,
): Promise<void> {
  const batch = firestore.batch();
  batch.create(firestore.doc(paths.execution(uid, execution.id)), toDoc(execution));
  addToLedger(batch, firestore, FV, { uid, lane: 0, delta: usageDelta(execution), time: execution.completedAt?.getTime() ?? Date.now(), shard });
  try {
    await batch.commit();
  } catch (error) {
    // Already recorded (a repeat after an unknown outcome): nothing more to count.
    if ((error as { code?: unknown }).code !== 6) throw error;
  }
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

/** Documents a reference type uses; kept for the bench's write counter. */
export type { DocumentReference };
