import { computeCost, type Cost } from "../cost.js";
import { ExecutionError } from "../errors.js";
import { storedTurn } from "../conversation.js";
import { capOutput, capToolCalls, finalStatus, type Execution, type ExecutionResult, type RecordedMessage } from "../execution.js";
import type { ToolCall } from "../messages.js";
import type { AdmissionTicket, Clock, FinishResult } from "../ports.js";
import { backoffDelay } from "../retry.js";
import { sleep } from "../timeout.js";
import { estimateUsage, sumUsage } from "../usage.js";
import { DEFAULT_IMAGE_TOKENS } from "../catalog.js";
import type { Outcome } from "./attempts.js";
import { runningRecord } from "./plan.js";
import { describeCause } from "./log.js";
import type { PipelineDeps, Plan } from "./types.js";

/** Cloud Functions' timeoutSeconds for the provider-calling functions (index.ts), when settings do not say. */
export const DEFAULT_FUNCTION_TIMEOUT_MS = 300_000;

/**
 * How long an admission's reservation lasts: settlement is retried until the function's own
 * deadline, whatever the request's time limit, so the reservation must outlive both (or a
 * repeat could reclaim a run still settling), plus the grace. The sweeper closes records older.
 */
export function reservationLifetimeMs(timeLimitMs: number, functionTimeoutMs: number | undefined, graceMs: number): number {
  return Math.max(timeLimitMs, functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS) + graceMs;
}
/** Left for the response itself after the last settlement try. */
const RESPONSE_MARGIN_MS = 5_000;
/** One settlement commit that takes longer is tried again (settlement is idempotent). */
const SETTLE_TRY_TIMEOUT_MS = 15_000;
const SETTLE_BACKOFF = { maxRetries: Number.POSITIVE_INFINITY, baseDelayMs: 250, maxDelayMs: 5_000 };

export interface SettleContext {
  uid: string;
  running: Execution;
  ticket: AdmissionTicket;
  startedAt: number;
  clock: Clock;
}

/** The finished record: what was produced, what every attempt cost, and how it ended. */
export function finalRecord(plan: Plan, outcome: Outcome, context: SettleContext): Execution {
  const { failure, final } = outcome;
  const completedAt = context.clock.now();
  const model = final?.model ?? plan.candidates[0]!.model;
  // Every attempt is billed at the price of the model it called; the record sums them.
  const costs = outcome.outputs.map((o) => computeCost(o.usage, o.model.spec.price).micros);
  const micros = costs.reduce((a, b) => a + b, 0);
  const cost: Cost = { micros, usd: micros / 1_000_000, priceVersion: model.spec.price.priceVersion };
  const firstOutputAt = outcome.committedAt ?? (failure ? undefined : final?.firstOutputAt);
  return {
    ...context.running,
    status: failure ? finalStatus(failure.category) : "succeeded",
    model: model.id,
    provider: model.provider.id,
    ...recordedOutput(final?.text ?? "", final?.toolCalls ?? []),
    finishReason: failure ? (final?.finishReason ?? null) : (final?.finishReason ?? "stop"),
    usage: sumUsage(outcome.outputs.map((o) => o.usage)),
    cost,
    attempts: outcome.attempts.map((a, i) => (costs[i] ? { ...a, costMicros: costs[i] } : a)),
    ...(failure ? { error: { category: failure.category, message: failure.message } } : {}),
    completedAt: new Date(completedAt),
    latencyMs: completedAt - context.startedAt,
    ttftMs: firstOutputAt === undefined ? null : firstOutputAt - context.startedAt,
  };
}

/** The output and tool calls as the record keeps them, within RECORD_LIMITS together. */
function recordedOutput(text: string, calls: readonly ToolCall[]): Pick<Execution, "output" | "outputTruncated" | "toolCalls"> {
  const capped = capOutput(text);
  if (calls.length === 0) return capped;
  const { toolCalls, truncated } = capToolCalls(calls, capped.output.length);
  return { ...capped, toolCalls, outputTruncated: capped.outputTruncated || truncated };
}

/**
 * Settle: write the final record, the ledger and the release of the reservation in one
 * commit, retried with backoff until shortly before the function's own deadline (the store's
 * `finish` is idempotent, so a try whose outcome is unknown is simply tried again). If time
 * runs out, one `execution.unsettled` log entry carries everything needed to settle it later
 * (docs/operations.md). Then log the execution, and answer or throw.
 */
export async function settleExecution(deps: PipelineDeps, plan: Plan, outcome: Outcome, context: SettleContext): Promise<ExecutionResult> {
  const final = finalRecord(plan, outcome, context);
  const deadline = context.startedAt + (plan.settings.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS) - RESPONSE_MARGIN_MS;
  // A conversation keeps the new turn and the answer, only when the execution succeeded.
  const turn = plan.request.conversationId && !outcome.failure && outcome.final
    ? storedTurn(plan.messages, { text: outcome.final.text, ...(outcome.final.toolCalls.length > 0 ? { toolCalls: outcome.final.toolCalls } : {}) })
    : undefined;
  const settled = await writeFinal(deps, context, final, deadline, plan.settings.logPrompts, turn);
  if (turn && (settled === "unsettled" || settled?.conversation === "skipped")) {
    // Answered (and billed), but not in the conversation: this turn had lost its hold (its instance
    // was presumed dead and another turn took the conversation over), or it is to be settled later
    // (npm run settle-unsettled), which does not append it. docs/api.md, "Conversations".
    deps.logger.warn("conversation.turn_not_appended", {
      executionId: final.id,
      uid: context.uid,
      conversationId: plan.request.conversationId,
      reason: settled === "unsettled" ? "unsettled" : "hold_lost",
    });
  }

  const { failure } = outcome;
  const usage = final.usage!;
  const logFields = {
    executionId: final.id,
    uid: context.uid,
    status: final.status,
    model: final.model,
    provider: final.provider,
    attempts: final.attempts.length,
    latencyMs: final.latencyMs,
    ttftMs: final.ttftMs,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    usageEstimated: usage.estimated,
    costMicros: final.cost!.micros,
    ...(final.toolCalls ? { toolCalls: final.toolCalls.length } : {}),
    ...(failure ? { category: failure.category } : {}),
    // With LOG_PROMPTS, the text: media by reference, as records keep it (never a data URL's bytes in a log line).
    ...(plan.settings.logPrompts ? { input: final.input, output: final.output } : {}),
  };
  if (failure) {
    deps.logger[failure.category === "internal" ? "error" : "warn"]("execution.failed", {
      ...logFields,
      ...(failure.category === "internal" ? { cause: describeCause(failure.cause) } : {}),
    });
    failure.executionId = final.id;
    failure.model = final.model;
    failure.provider = final.provider;
    throw failure;
  }
  deps.logger.info("execution.succeeded", logFields);
  return {
    executionId: final.id,
    model: final.model,
    provider: final.provider,
    output: outcome.final?.text ?? "",
    finishReason: final.finishReason ?? "stop",
    // The client gets the tool calls whole, whatever the record had room for.
    ...(outcome.final && outcome.final.toolCalls.length > 0 ? { toolCalls: outcome.final.toolCalls } : {}),
    ...(final.conversation ? { conversationId: final.conversation.id } : {}),
    ...(outcome.json !== undefined ? { json: outcome.json } : {}),
    usage,
    cost: { usd: final.cost!.usd, micros: final.cost!.micros },
    latencyMs: final.latencyMs!,
    ...(final.ttftMs !== null ? { ttftMs: final.ttftMs } : {}),
    attempts: final.attempts.length,
  };
}

/**
 * A speculative start that admission refused (speculation.ts): its own record, `failed` and
 * `speculative: true`, with what it may have cost in the user's ledger. The upstream call was
 * aborted early, usually before the provider sent anything, yet the request reached it: each
 * attempt that sent nothing back counts its input as billed (estimated), so that nothing a
 * provider may bill goes unrecorded. Returns the cost, in micros.
 */
export async function settleUnadmitted(
  deps: PipelineDeps,
  plan: Plan,
  outcome: Outcome,
  context: { uid: string; id: string; startedAt: number; clock: Clock; reason: string },
): Promise<number> {
  const outputs = outcome.outputs.map((o) => {
    if (o.usage.totalTokens > 0) return o;
    const messages = plan.candidates.find((c) => c.model === o.model)?.messages ?? plan.messages;
    return { ...o, usage: estimateUsage(messages, "", o.model.spec.imageTokens ?? DEFAULT_IMAGE_TOKENS) };
  });
  const running = runningRecord(plan, { id: context.id, startedAt: context.startedAt });
  const record: Execution = {
    ...finalRecord(plan, { ...outcome, outputs, failure: new ExecutionError("cancelled", context.reason) }, { uid: context.uid, running, ticket: {}, startedAt: context.startedAt, clock: context.clock }),
    status: "failed",
    speculative: true,
    error: { category: "cancelled", message: `Started before admission and stopped: ${context.reason}` },
  };
  try {
    await deps.executions.recordUnadmitted(context.uid, record);
  } catch (error) {
    // The refusal still reaches the client; the entry below carries what to record by hand.
    deps.logger.error("execution.unsettled", { executionId: record.id, uid: context.uid, cause: describeCause(error), record: withoutContent(record) });
  }
  deps.logger.warn("execution.speculation_aborted", { executionId: record.id, uid: context.uid, model: record.model, costMicros: record.cost!.micros, reason: context.reason });
  return record.cost!.micros;
}

async function writeFinal(
  deps: PipelineDeps,
  context: SettleContext,
  final: Execution,
  deadline: number,
  logContent: boolean,
  turn: RecordedMessage[] | undefined,
): Promise<FinishResult | "unsettled" | undefined> {
  const { clock } = context;
  for (let attempt = 1; ; attempt++) {
    try {
      const tryFor = Math.max(1_000, Math.min(SETTLE_TRY_TIMEOUT_MS, deadline - clock.now()));
      return (await withTimeout(deps.executions.finish(context.uid, final, context.ticket, turn), tryFor)) ?? undefined;
    } catch (error) {
      const wait = backoffDelay(attempt, SETTLE_BACKOFF, deps.random);
      if (clock.now() + wait >= deadline) {
        // Out of time: everything needed to settle it later, as one structured entry.
        deps.logger.error("execution.unsettled", {
          executionId: final.id,
          uid: context.uid,
          cause: describeCause(error),
          ticket: context.ticket,
          // Prompt and answer stay out of logs (unless LOG_PROMPTS): settling later merges this over the
          // `running` record, which has the input; the answer's text is lost, its usage and cost are not.
          record: logContent ? final : withoutContent(final),
        });
        return "unsettled";
      }
      deps.logger.warn("execution.settle_retry", { executionId: final.id, attempt, cause: describeCause(error) });
      await sleep(wait);
    }
  }
}

function withoutContent(record: Execution): Omit<Execution, "input" | "inputTruncated" | "toolCalls"> {
  const { input: _input, inputTruncated: _inputTruncated, toolCalls: _toolCalls, ...rest } = record;
  return { ...rest, output: "", outputTruncated: record.output !== "" || record.outputTruncated };
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ExecutionError("timeout", `settlement took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
