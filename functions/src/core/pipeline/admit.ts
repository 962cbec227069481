import { ExecutionError } from "../errors.js";
import { runningExecution, type Execution } from "../execution.js";
import { executionIdFor, requestFingerprint } from "../idempotency.js";
import { CONVERSATION_LIMITS, conversationTitle, type StoredMessage } from "../conversation.js";
import { worstCaseMicros } from "../limits.js";
import type { AdmissionTicket, ConversationTurn } from "../ports.js";
import { describeCause } from "./log.js";
import { DEFAULT_FUNCTION_TIMEOUT_MS } from "./settle.js";
import type { PipelineDeps, Plan } from "./types.js";

export type Admitted =
  | { kind: "replay"; execution: Execution }
  | { kind: "admitted"; running: Execution; ticket: AdmissionTicket; startedAt: number; history: StoredMessage[] };

/**
 * Admit: the one awaited step before the provider. Limits, the budget reservation (the
 * execution's worst case on the dearest candidate), idempotency and the `running` record,
 * atomically in the store. Refusals are client-facing ExecutionErrors; anything else the
 * store throws is ours, logged and answered as `internal`.
 */
export async function admitExecution(deps: PipelineDeps, plan: Plan, uid: string, startedAt: number, instance?: string): Promise<Admitted> {
  const { request, candidates, settings } = plan;
  const id = request.requestId ? executionIdFor(request.requestId) : deps.newId();
  const first = candidates[0]!.model;
  const running = runningExecution({
    id,
    model: first.id,
    provider: first.provider.id,
    messages: plan.messages,
    createdAt: startedAt,
    ttlDays: settings.historyTtlDays,
    ...(request.requestId ? { requestId: request.requestId, requestFingerprint: requestFingerprint(request) } : {}),
    ...(request.promptId ? { promptId: request.promptId } : {}),
    ...(instance ? { instance } : {}),
    ...(plan.tools ? { tools: plan.tools } : {}),
    ...(plan.responseFormat ? { responseFormat: plan.responseFormat } : {}),
  });
  const input = { messages: plan.messages, ...(plan.tools ? { tools: plan.tools } : {}), ...(plan.responseFormat ? { responseFormat: plan.responseFormat } : {}) };
  const models = candidates.map((c) => c.model);
  const conversation: ConversationTurn | undefined = request.conversationId
    ? {
        id: request.conversationId,
        title: conversationTitle(plan.messages),
        model: first.id,
        historyLimit: CONVERSATION_LIMITS.historyMessages,
        // Whatever of the history is sent is at most all of it (and at most the context window).
        reserveFor: (historyBytes) => worstCaseMicros({ ...input, historyBytes }, models, plan.params.maxTokens),
        expireAt: new Date(startedAt + settings.conversationTtlDays * 86_400_000),
      }
    : undefined;
  try {
    const admission = await deps.executions.admit({
      uid,
      execution: running,
      reserveMicros: worstCaseMicros(input, models, plan.params.maxTokens),
      ...(conversation ? { conversation } : {}),
      // Settlement is retried until the function's own deadline (settle.ts), whatever the request's
      // time limit: the reservation must outlive it, or a repeat could reclaim a run still settling.
      expireAt: startedAt + Math.max(plan.timeLimitMs, settings.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS) + settings.limits.reservationGraceMs,
      limits: settings.limits,
      now: startedAt,
    });
    if (admission.kind === "replay") return admission;
    return {
      kind: "admitted",
      running: admission.prior ? { ...running, prior: admission.prior } : running,
      ticket: admission.ticket,
      startedAt,
      history: admission.history ?? [],
    };
  } catch (error) {
    if (error instanceof ExecutionError) throw error;
    deps.logger.error("execution.admission_failed", { executionId: id, uid, cause: describeCause(error) });
    throw new ExecutionError("internal", undefined, { cause: error });
  }
}
