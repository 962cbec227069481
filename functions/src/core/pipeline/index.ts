import type { ExecutionResult, Execution } from "../execution.js";
import { replayOf } from "../idempotency.js";
import { systemClock } from "../ports.js";
import { admitExecution } from "./admit.js";
import { withHistory } from "./history.js";
import { runAttempts } from "./attempts.js";
import { planExecution } from "./plan.js";
import { settleExecution } from "./settle.js";
import { isStreaming, type ExecuteOptions, type PipelineDeps } from "./types.js";

export type { Candidate, ExecuteOptions, PipelineDeps, PipelineSettings, Plan } from "./types.js";
export { describeCause, redactSecrets } from "./log.js";

/**
 * Executes one prompt, in four phases, one module each:
 *   plan     (plan.ts)     validate, render, resolve models and capabilities; nothing recorded yet
 *   admit    (admit.ts)    limits, budget reservation, idempotency and the `running` record, atomically
 *   attempts (attempts.ts) call the models with retries, timeouts and fallbacks, streaming to the client
 *   settle   (settle.ts)   the final record, usage, cost and ledger in one commit; the log line
 * Every request that passes planning ends with exactly one finished record, whatever fails;
 * a thrown error is an ExecutionError carrying the executionId.
 */
export async function executePrompt(deps: PipelineDeps, input: unknown, options: ExecuteOptions): Promise<ExecutionResult> {
  const clock = deps.clock ?? systemClock;
  const plan = await planExecution(deps, input, options.uid, options.signal);
  const startedAt = clock.now();
  const admitted = await admitExecution(deps, plan, options.uid, startedAt, options.instance);
  if (admitted.kind === "replay") options.onAdmitted?.(admitted.execution.id);
  else options.onAdmitted?.(admitted.running.id, startedAt);
  if (admitted.kind === "replay") return replay(admitted.execution, options);

  const conversationId = plan.request.conversationId;
  const { plan: sending, historyMessages } = withHistory(plan, admitted.history);
  const running = conversationId ? { ...admitted.running, conversation: { id: conversationId, historyMessages } } : admitted.running;
  const outcome = await runAttempts(deps, sending, {
    executionId: running.id,
    startedAt,
    clock,
    signal: options.signal ?? new AbortController().signal,
    options,
  });
  return settleExecution(deps, plan, outcome, { uid: options.uid, running, ticket: admitted.ticket, startedAt, clock });
}

/** A finished request repeated under its requestId: its stored outcome, without calling the provider or charging again. */
function replay(record: Execution, options: ExecuteOptions): ExecutionResult {
  const result = replayOf(record);
  if (isStreaming(options)) {
    options.onStart?.({ executionId: record.id, model: record.model, provider: record.provider });
    if (result.output !== "") options.onDelta?.(result.output);
    result.toolCalls?.forEach((call, index) => options.onToolCall?.({ index, id: call.id, name: call.name, argumentsDelta: call.arguments }));
  }
  return result;
}
