import { createHash } from "node:crypto";
import { CATEGORIES, ExecutionError } from "./errors.js";
import type { Execution, ExecutionResult, PriorRuns } from "./execution.js";
import type { ExecuteRequest } from "./request.js";

/**
 * A `requestId` names one execution per user: its record id is derived from it, so the
 * admission transaction that creates the record also claims the id. The record keeps a
 * fingerprint of the request to tell a repeat from a different request under the same id.
 */
export function executionIdFor(requestId: string): string {
  return `rq_${requestId}`;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** SHA-256 of the request without its requestId, keys sorted: equal for repeats, different otherwise. */
export function requestFingerprint(request: ExecuteRequest): string {
  const { requestId: _ignored, ...rest } = request;
  return createHash("sha256").update(JSON.stringify(canonical(rest))).digest("base64url").slice(0, 32);
}

export const IN_PROGRESS_RETRY_MS = 1_000;

/**
 * What to do when a record already exists for this requestId:
 * - `replay` its outcome (a success, or a failure that would fail the same again);
 * - `rerun` under the same record, when the earlier run ended in a way worth retrying
 *   (timeout, cancel, a retryable failure, or an instance that died);
 * - `reclaim` it, then rerun: it is still `running` but holds no live reservation, so its
 *   instance died and nobody else will finish it.
 * Throws `idempotency_conflict` (another request under this id) or `in_progress`.
 */
export function idempotencyDecision(existing: Execution, fingerprint: string, reservationLive: boolean): "replay" | "rerun" | "reclaim" {
  if (existing.requestFingerprint !== fingerprint) throw new ExecutionError("idempotency_conflict");
  if (existing.status === "running") {
    if (!reservationLive) return "reclaim";
    throw new ExecutionError("in_progress", undefined, { retryAfterMs: IN_PROGRESS_RETRY_MS });
  }
  if (existing.status === "succeeded") return "replay";
  if (existing.abandoned || existing.status === "timed_out" || existing.status === "cancelled") return "rerun";
  return existing.error && CATEGORIES[existing.error.category].retryable ? "rerun" : "replay";
}

/** The earlier runs a rerun carries: the finished record's own run added to its prior ones. */
export function priorRunsOf(finished: Execution): PriorRuns {
  const before = finished.prior;
  return {
    runs: (before?.runs ?? 0) + 1,
    costMicros: (before?.costMicros ?? 0) + (finished.cost?.micros ?? 0),
    inputTokens: (before?.inputTokens ?? 0) + (finished.usage?.inputTokens ?? 0),
    outputTokens: (before?.outputTokens ?? 0) + (finished.usage?.outputTokens ?? 0),
    lastStatus: finished.status,
    ...(finished.error ? { lastError: finished.error } : {}),
    ...(before?.settledLate ? { settledLate: before.settledLate } : {}),
  };
}

/** The result (or the error) a finished record stands for, for a repeated request. */
export function replayOf(record: Execution): ExecutionResult {
  if (record.status !== "succeeded") {
    const category = record.error?.category ?? "internal";
    const error = new ExecutionError(category, record.error?.message);
    error.executionId = record.id;
    error.model = record.model;
    error.provider = record.provider;
    throw error;
  }
  return {
    executionId: record.id,
    model: record.model,
    provider: record.provider,
    output: record.output,
    finishReason: record.finishReason ?? "stop",
    ...(record.toolCalls ? { toolCalls: record.toolCalls } : {}),
    ...(record.responseFormat && !record.toolCalls ? { json: parsedOrUndefined(record.output) } : {}),
    usage: record.usage!,
    cost: { usd: record.cost?.usd ?? 0, micros: record.cost?.micros ?? 0 },
    latencyMs: record.latencyMs ?? 0,
    ...(record.ttftMs !== null ? { ttftMs: record.ttftMs } : {}),
    attempts: record.attempts.length,
  };
}

/** The stored output was validated when it was produced; it parses again unless the record capped it. */
function parsedOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
