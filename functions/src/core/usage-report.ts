import { z } from "zod";
import { toUsageView, type UsageTotals, type UsageView } from "./ledger.js";
import { effectiveBudgetMicros, effectiveLimits, recentWithinWindow, remainingMicros, type AccountState, type LimitSettings } from "./limits.js";

/** What `getUsage` answers (API.md). */
export interface UsageReport {
  day: UsageView;
  month: UsageView;
  budget: { monthlyUsd: number | null; remainingUsd: number | null };
  rateLimit: { perMinute: number; remaining: number };
}

export interface UsageSnapshot {
  account: AccountState;
  day: UsageTotals;
  month: UsageTotals;
}

export interface UsageReader {
  /** The user's account state and ledger for the UTC day and month of `now`, read together. */
  read(uid: string, now: number): Promise<UsageSnapshot>;
}

export interface BudgetWriter {
  setMonthlyBudget(uid: string, monthlyUsd: number | null): Promise<void>;
}

/** A user's own limits (null: back to the params). Raising perMinute also gives the user lanes (docs/scaling.md). */
export interface LimitsWriter {
  setLimits(uid: string, limits: { perMinute: number | null; maxConcurrent: number | null }): Promise<void>;
}

export function usageReport(snapshot: UsageSnapshot, settings: LimitSettings, now: number): UsageReport {
  const budget = effectiveBudgetMicros(snapshot.account, settings);
  const remaining = remainingMicros(snapshot.account, settings, now);
  const limits = effectiveLimits(snapshot.account, settings);
  return {
    day: toUsageView(snapshot.day),
    month: toUsageView(snapshot.month),
    budget: {
      monthlyUsd: budget === null ? null : budget / 1_000_000,
      remainingUsd: remaining === null ? null : Math.max(0, remaining) / 1_000_000,
    },
    rateLimit: {
      perMinute: limits.perMinute,
      remaining: Math.max(0, limits.perMinute - recentWithinWindow(snapshot.account.recent, now).length),
    },
  };
}

export const getUsageRequestSchema = z.strictObject({});

export const setUserLimitsRequestSchema = z.strictObject({
  uid: z.string().min(1).max(128).regex(/^[^/]+$/, "must not contain /"),
  perMinute: z.number().int().min(1).max(60_000).nullable(),
  maxConcurrent: z.number().int().min(1).max(10_000).nullable(),
});

export const setUserBudgetRequestSchema = z.strictObject({
  uid: z.string().min(1).max(128).regex(/^[^/]+$/, "must not contain /"),
  monthlyUsd: z.number().min(0).max(1_000_000).nullable(),
});
