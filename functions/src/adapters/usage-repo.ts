import type { DocumentData, Firestore } from "firebase-admin/firestore";
import { EMPTY_TOTALS, type UsageTotals } from "../core/ledger.js";
import { usagePeriods } from "../core/limits.js";
import type { BudgetWriter, UsageReader } from "../core/usage-report.js";
import { accountFromSnapshots, paths } from "./executions-repo.js";

function totals(data: DocumentData | undefined): UsageTotals {
  const n = (v: unknown) => (typeof v === "number" ? v : 0);
  if (!data) return { ...EMPTY_TOTALS };
  return {
    requests: n(data.requests),
    succeeded: n(data.succeeded),
    failed: n(data.failed),
    inputTokens: n(data.inputTokens),
    outputTokens: n(data.outputTokens),
    costMicros: n(data.costMicros),
  };
}

export function firestoreUsageRepo(db: () => Promise<Firestore>): UsageReader & BudgetWriter {
  return {
    async read(uid, now) {
      const firestore = await db();
      const { day, month } = usagePeriods(now);
      const [limits, monthSnap, daySnap] = await firestore.getAll(
        firestore.doc(paths.limits(uid)),
        firestore.doc(paths.usage(uid, month)),
        firestore.doc(paths.usage(uid, day)),
      );
      return { account: accountFromSnapshots(limits!, monthSnap!), month: totals(monthSnap!.data()), day: totals(daySnap!.data()) };
    },
    async setMonthlyBudget(uid, monthlyUsd) {
      const firestore = await db();
      await firestore.doc(paths.limits(uid)).set({ monthlyBudgetUsd: monthlyUsd, budgetUpdatedAt: new Date() }, { merge: true });
    },
  };
}
