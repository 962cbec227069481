import type { LimitSettings } from "../core/limits.js";
import { defaultUserBudgetUsd, globalBudgetUsd, globalLedgerShards, maxConcurrentExecutions, rateLimitPerMinute, reservationGraceMs } from "./params.js";

/** The limits from the params: apart from pipeline-deps, so that the usage callables load no provider code. */
export function limitsFromParams(): LimitSettings {
  return {
    perMinute: rateLimitPerMinute.value(),
    maxConcurrent: maxConcurrentExecutions.value(),
    defaultMonthlyBudgetUsd: defaultUserBudgetUsd.value(),
    globalMonthlyBudgetUsd: globalBudgetUsd.value(),
    globalShards: globalLedgerShards.value(),
    reservationGraceMs: reservationGraceMs.value(),
  };
}
