import type { Firestore } from "firebase-admin/firestore";
import { EMPTY_TOTALS } from "../core/ledger.js";
import { lanesFor, usagePeriods } from "../core/limits.js";
import type { BudgetWriter, LimitsWriter, UsageReader } from "../core/usage-report.js";
import { accountFromLanes, addTotals, lanesToRead, totalsOf, userPaths } from "./user-state-repo.js";
import { untilCommitted } from "./optimistic.js";

export function firestoreUsageRepo(db: () => Promise<Firestore>): UsageReader & BudgetWriter & LimitsWriter {
  return {
    /** Lane 0 says how many lanes the user has had this month; then every lane and its ledger, summed. */
    async read(uid, now) {
      const firestore = await db();
      const { day, month } = usagePeriods(now);
      const doc = (path: string) => firestore.doc(path);
      const lane0 = await doc(userPaths.lane(uid, 0)).get();
      const lanes = lanesToRead(lane0, month);
      const snapshots = await firestore.getAll(
        ...Array.from({ length: lanes - 1 }, (_, k) => doc(userPaths.lane(uid, k + 1))),
        ...Array.from({ length: lanes }, (_, k) => doc(userPaths.usage(uid, month, k))),
        ...Array.from({ length: lanes }, (_, k) => doc(userPaths.usage(uid, day, k))),
      );
      const laneSnaps = [lane0, ...snapshots.slice(0, lanes - 1)];
      const months = snapshots.slice(lanes - 1, 2 * lanes - 1);
      const days = snapshots.slice(2 * lanes - 1);
      const sum = (snaps: typeof months) => snaps.reduce((total, s) => addTotals(total, totalsOf(s.data())), { ...EMPTY_TOTALS });
      return { account: accountFromLanes(laneSnaps, months), month: sum(months), day: sum(days) };
    },
    async setMonthlyBudget(uid, monthlyUsd) {
      const firestore = await db();
      await firestore.doc(userPaths.lane(uid, 0)).set({ monthlyBudgetUsd: monthlyUsd, budgetUpdatedAt: new Date() }, { merge: true });
    },
    /**
     * Also remembers on lane 0 the most lanes the user has had this month (`lanesUsed`), so that
     * lowering the limits never hides spend, reservations or admissions on the lanes dropped
     * (lanesToRead). Read, then written only over the version read: admissions write lane 0 too.
     */
    async setLimits(uid, limits) {
      const firestore = await db();
      const { FieldValue } = await import("firebase-admin/firestore");
      const value = (v: number | null) => (v === null ? FieldValue.delete() : v);
      const ref = firestore.doc(userPaths.lane(uid, 0));
      await untilCommitted(async () => {
        const now = new Date();
        const { month } = usagePeriods(now.getTime());
        const lane0 = await ref.get();
        const lanes = Math.max(lanesToRead(lane0, month), lanesFor(limits.perMinute === null ? {} : { perMinute: limits.perMinute }));
        const fields = {
          ...(limits.perMinute !== null ? { perMinute: limits.perMinute } : {}),
          ...(limits.maxConcurrent !== null ? { maxConcurrent: limits.maxConcurrent } : {}),
          limitsUpdatedAt: now,
          ...(lanes > 1 ? { lanesUsed: { month, lanes } } : {}),
        };
        // Preconditions: written meanwhile (created, or updated since the read) → read again.
        if (!lane0.exists) await ref.create(fields);
        else await ref.update({ perMinute: value(limits.perMinute), maxConcurrent: value(limits.maxConcurrent), ...fields }, { lastUpdateTime: lane0.updateTime! });
      });
    },
  };
}
