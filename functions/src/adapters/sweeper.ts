import type { Firestore } from "firebase-admin/firestore";
import type { Logger } from "../core/ports.js";
import type { FirestoreExecutionStore } from "./executions-repo.js";

export interface SweepResult {
  users: number;
  closed: number;
}

/**
 * Closes executions whose instance died (crash, OOM, SIGKILL) for users who may never send
 * another request: admission reclaims a user's abandoned reservations lazily, this does it
 * on a schedule. Needs the collection-group index on executions (status, createdAt).
 */
export async function sweepAbandonedExecutions(
  db: () => Promise<Firestore>,
  store: FirestoreExecutionStore,
  options: { now: number; olderThanMs: number; logger: Logger; batchSize?: number },
): Promise<SweepResult> {
  const firestore = await db();
  const stale = await firestore
    .collectionGroup("executions")
    .where("status", "==", "running")
    .where("createdAt", "<", new Date(options.now - options.olderThanMs))
    .limit(options.batchSize ?? 500)
    .get();
  const byUser = new Map<string, string[]>();
  for (const record of stale.docs) {
    const uid = record.ref.parent.parent?.id;
    if (uid) byUser.set(uid, [...(byUser.get(uid) ?? []), record.id]);
  }
  let closed = 0;
  for (const [uid, ids] of byUser) {
    const done = await store.reclaimAbandoned(uid, options.now, ids);
    closed += done.length;
    if (done.length > 0) options.logger.warn("execution.abandoned", { uid, executionIds: done });
  }
  return { users: byUser.size, closed };
}
