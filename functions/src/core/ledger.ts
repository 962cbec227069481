import type { Execution } from "./execution.js";

/** One period of the usage ledger (`users/{uid}/usage/{YYYY-MM}` and `{YYYY-MM-DD}`, and the global shards). */
export interface UsageTotals {
  requests: number;
  succeeded: number;
  failed: number;
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
}

export const EMPTY_TOTALS: UsageTotals = { requests: 0, succeeded: 0, failed: 0, inputTokens: 0, outputTokens: 0, costMicros: 0 };

/** What an abandoned execution adds: a failed request that cost nothing we know of. */
export const ABANDONED_DELTA: UsageTotals = { ...EMPTY_TOTALS, requests: 1, failed: 1 };

/** What one finished execution adds to the ledger; cancelled and timed-out count as failed. */
export function usageDelta(execution: Execution): UsageTotals {
  const succeeded = execution.status === "succeeded" ? 1 : 0;
  return {
    requests: 1,
    succeeded,
    failed: 1 - succeeded,
    inputTokens: execution.usage?.inputTokens ?? 0,
    outputTokens: execution.usage?.outputTokens ?? 0,
    costMicros: execution.cost?.micros ?? 0,
  };
}

/** The record of an execution whose instance died: what the reclaimer writes over its `running` state. */
export function abandoned(at: Date): Pick<Execution, "status" | "error" | "completedAt" | "abandoned"> {
  return {
    status: "failed",
    error: { category: "internal", message: "The server instance stopped before the execution finished." },
    completedAt: at,
    abandoned: true,
  };
}

/** `Usage` in API.md: the ledger with cost in dollars. */
export interface UsageView {
  requests: number;
  succeeded: number;
  failed: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export function toUsageView(totals: UsageTotals): UsageView {
  return {
    requests: totals.requests,
    succeeded: totals.succeeded,
    failed: totals.failed,
    inputTokens: totals.inputTokens,
    outputTokens: totals.outputTokens,
    costUsd: totals.costMicros / 1_000_000,
  };
}
