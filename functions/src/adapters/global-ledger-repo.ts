import type { Firestore, Timestamp } from "firebase-admin/firestore";
import type { GlobalTotals, GlobalTotalsSource } from "../core/global-budget.js";

/**
 * The global ledger: `globalUsage/{YYYY-MM}/shards/{i}`, each with the usage counters and
 * `reservedMicros` (what running executions hold of the global budget). Executions write
 * random shards with increments only (no read, no precondition), so the shard count alone
 * decides the write rate per document: docs/scaling.md derives it from the peak rate.
 */
export const globalPaths = {
  shards: (month: string) => `globalUsage/${month}/shards`,
  shard: (month: string, index: number) => `globalUsage/${month}/shards/${index}`,
};

/**
 * The fields the budget's aggregation sums. Firestore computes sum() from a field's index, so these
 * two stay indexed; the shards' other fields are exempt (firestore.indexes.json, docs/scaling.md).
 */
export const SUMMED_FIELDS = { spent: "costMicros", reserved: "reservedMicros" } as const;

/** Totals of all of a month's shards, in one aggregation query (billed one read per 1,000 shards). */
export function firestoreGlobalTotals(db: () => Promise<Firestore>): GlobalTotalsSource {
  return {
    async read(month: string): Promise<GlobalTotals> {
      const firestore = await db();
      const { AggregateField } = await import("firebase-admin/firestore");
      const snapshot = await firestore
        .collection(globalPaths.shards(month))
        .aggregate({ spent: AggregateField.sum(SUMMED_FIELDS.spent), reserved: AggregateField.sum(SUMMED_FIELDS.reserved) })
        .get();
      const data = snapshot.data();
      return { spentMicros: Number(data.spent ?? 0), reservedMicros: Number(data.reserved ?? 0), readTime: microsOf(snapshot.readTime) };
    },
  };
}

/** A server time in µs (Firestore's precision), to compare read and commit times exactly. */
export function microsOf(time: Timestamp): number {
  return time.seconds * 1_000_000 + Math.floor(time.nanoseconds / 1_000);
}
