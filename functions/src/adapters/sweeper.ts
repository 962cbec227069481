import type { Firestore } from "firebase-admin/firestore";
import { SWEEP_SHARDS } from "../core/execution.js";
import type { Logger } from "../core/ports.js";
import type { FirestoreExecutionStore } from "./executions-repo.js";

export interface SweepResult {
  users: number;
  closed: number;
}

/**
 * Closes executions whose instance died (crash, OOM, SIGKILL) for users who may never send
 * another request: admission reclaims a user's abandoned reservations lazily, this does it
 * on a schedule. Needs the collection-group index on executions (sweepShard, status, createdAt).
 * Records written before sweepShard existed are closed by their user's next admission.
 */
export async function sweepAbandonedExecutions(
  db: () => Promise<Firestore>,
  store: FirestoreExecutionStore,
  options: { now: number; olderThanMs: number; logger: Logger; batchSize?: number },
): Promise<SweepResult> {
  const firestore = await db();
  const before = new Date(options.now - options.olderThanMs);
  // One query per sweep shard (the index's first field), all at once.
  const pages = await Promise.all(
    Array.from({ length: SWEEP_SHARDS }, (_, shard) =>
      firestore
        .collectionGroup("executions")
        .where("sweepShard", "==", shard)
        .where("status", "==", "running")
        .where("createdAt", "<", before)
        .limit(options.batchSize ?? 100)
        .get(),
    ),
  );
  const byUser = new Map<string, string[]>();
  for (const record of pages.flatMap((page) => page.docs)) {
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
