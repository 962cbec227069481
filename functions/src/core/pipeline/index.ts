import { ExecutionError } from "../errors.js";
import type { ExecutionResult, Execution } from "../execution.js";
import { replayOf } from "../idempotency.js";
import { systemClock, type Clock } from "../ports.js";
import { childController } from "../timeout.js";
import { admitExecution, executionIdOf, reservationOf, type Admitted } from "./admit.js";
import { withHistory } from "./history.js";
import { runAttempts } from "./attempts.js";
import { planExecution } from "./plan.js";
import { settleExecution, settleUnadmitted } from "./settle.js";
import { isStreaming, type ExecuteOptions, type PipelineDeps, type Plan } from "./types.js";

export type { Candidate, ExecuteOptions, PipelineDeps, PipelineSettings, Plan } from "./types.js";
export { describeCause, redactSecrets } from "./log.js";
export { SpeculationGate, type SpeculationStats } from "./speculation.js";

/**
 * Executes one prompt, in four phases, one module each, with two helpers:
 *   plan     (plan.ts)     validate, render, resolve models and capabilities; nothing recorded yet
 *   admit    (admit.ts)    limits, budget reservation, idempotency and the `running` record, atomically
 *                          (history.ts: a conversation's window, decided there and put in front after)
 *   attempts (attempts.ts) call the models with retries, timeouts and fallbacks, streaming to the client
 *                          (media.ts: media a provider needs as bytes, fetched only after admission)
 *   settle   (settle.ts)   the final record, usage, cost and ledger in one commit; the log line
 * Every request that passes planning ends with exactly one finished record, whatever fails;
 * a thrown error is an ExecutionError carrying the executionId. For a user this instance
 * knows to have room, admission and the first attempt run at once (speculation.ts); a start
 * that admission then refuses is recorded apart, under an id of its own, with what it cost.
 */
export async function executePrompt(deps: PipelineDeps, input: unknown, options: ExecuteOptions): Promise<ExecutionResult> {
  const clock = deps.clock ?? systemClock;
  const plan = await planExecution(deps, input, options.uid);
  const startedAt = clock.now();
  const id = executionIdOf(deps, plan);
  const reserveMicros = reservationOf(plan);
  if (deps.speculation?.begin(options.uid, plan, reserveMicros, startedAt)) return speculative(deps, plan, reserveMicros, id, startedAt, clock, options);

  const admitted = await admit(deps, plan, reserveMicros, id, startedAt, options);
  // A run's admission time tells a cancel meant for it from one meant for an earlier run of the same id.
  if (admitted.kind === "replay") options.onAdmitted?.(id);
  else options.onAdmitted?.(id, startedAt);
  if (admitted.kind === "replay") return replay(admitted.execution, options);

  const { running } = admitted;
  const sending = withHistory(plan, admitted.history);
  const outcome = await runAttempts(deps, sending, { executionId: id, startedAt, clock, signal: options.signal ?? new AbortController().signal, options });
  return settleExecution(deps, plan, outcome, { uid: options.uid, running, ticket: admitted.ticket, startedAt, clock });
}

/** Admission, telling the speculation gate what it left (or that it refused). */
async function admit(deps: PipelineDeps, plan: Plan, reserveMicros: number, id: string, startedAt: number, options: ExecuteOptions): Promise<Admitted> {
  try {
    const admitted = await admitExecution(deps, plan, reserveMicros, { uid: options.uid, startedAt, id, ...(options.instance ? { instance: options.instance } : {}) });
    if (admitted.kind === "admitted") deps.speculation?.admitted(options.uid, admitted.headroom, startedAt, plan.request.requestId);
    return admitted;
  } catch (error) {
    if (error instanceof ExecutionError && (error.category === "rate_limited" || error.category === "budget_exceeded")) deps.speculation?.refused(options.uid, startedAt);
    throw error;
  }
}

/**
 * The provider is called while admission runs; its output is held until admission commits.
 * Refused (or a repeat answered from its record): the upstream call is aborted before any
 * output reached the client, and what it may have cost is recorded apart.
 */
async function speculative(
  deps: PipelineDeps,
  plan: Plan,
  reserveMicros: number,
  id: string,
  startedAt: number,
  clock: Clock,
  options: ExecuteOptions,
): Promise<ExecutionResult> {
  const gate = deps.speculation!;
  const { controller, dispose } = childController(options.signal ?? new AbortController().signal);
  let release!: (admitted: boolean) => void;
  const released = new Promise<boolean>((resolve) => (release = resolve));
  const attempts = runAttempts(deps, plan, { executionId: id, startedAt, clock, signal: controller.signal, options, release: released });
  const abort = async (reason: string) => {
    release(false);
    controller.abort(new ExecutionError("cancelled", reason));
    const outcome = await attempts;
    dispose();
    const costMicros = await settleUnadmitted(deps, plan, outcome, { uid: options.uid, id: deps.newId(), startedAt, clock, reason });
    gate.end(options.uid, { released: false, costMicros });
  };
  let admitted: Admitted;
  try {
    admitted = await admit(deps, plan, reserveMicros, id, startedAt, options);
  } catch (refusal) {
    await abort(`Admission refused it (${refusal instanceof ExecutionError ? refusal.category : "internal"}).`);
    throw refusal;
  }
  if (admitted.kind === "replay") {
    options.onAdmitted?.(id);
    await abort("A repeat of a finished request: answered from its record.");
    return replay(admitted.execution, options);
  }
  options.onAdmitted?.(id, startedAt);
  release(true);
  const outcome = await attempts;
  dispose();
  gate.end(options.uid, { released: true });
  return settleExecution(deps, plan, outcome, { uid: options.uid, running: admitted.running, ticket: admitted.ticket, startedAt, clock });
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
