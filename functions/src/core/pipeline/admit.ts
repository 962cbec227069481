import { ExecutionError } from "../errors.js";
import type { Execution } from "../execution.js";
import { executionIdFor } from "../idempotency.js";
import { CONVERSATION_LIMITS, conversationTitle, type StoredMessage } from "../conversation.js";
import { worstCaseMicros, type Headroom } from "../limits.js";
import type { AdmissionTicket, ConversationTurn } from "../ports.js";
import { modelInputOf, turnWindow } from "./history.js";
import { describeCause } from "./log.js";
import { runningRecord } from "./plan.js";
import { reservationLifetimeMs } from "./settle.js";
import type { PipelineDeps, Plan } from "./types.js";

export type Admitted =
  | { kind: "replay"; execution: Execution }
  | { kind: "admitted"; running: Execution; ticket: AdmissionTicket; startedAt: number; history: StoredMessage[]; headroom?: Headroom };

/** The id the execution's record gets: from the requestId when there is one. */
export function executionIdOf(deps: PipelineDeps, plan: Plan): string {
  return plan.request.requestId ? executionIdFor(plan.request.requestId) : deps.newId();
}

/** What admission reserves: the execution's worst case on the dearest candidate (a conversation adds its history in the store). */
export function reservationOf(plan: Plan): number {
  return worstCaseMicros(modelInputOf(plan), plan.candidates.map((c) => c.model), plan.params.maxTokens);
}

/**
 * Admit: the one Firestore round (a read, a guarded commit) before any output. Limits, the
 * budget reservation (`reserveMicros`: the execution's worst case on the dearest candidate,
 * or for a conversation turn as the store's window decides), idempotency and the `running`
 * record, atomically in the store. Refusals are client-facing ExecutionErrors; anything else the
 * store throws is ours, logged and answered as `internal`.
 */
export async function admitExecution(
  deps: PipelineDeps,
  plan: Plan,
  reserveMicros: number,
  { uid, startedAt, id, instance }: { uid: string; startedAt: number; id: string; instance?: string },
): Promise<Admitted> {
  const { request, candidates, settings } = plan;
  const first = candidates[0]!.model;
  const running = runningRecord(plan, { id, startedAt, ...(instance ? { instance } : {}) });
  const conversation: ConversationTurn | undefined = request.conversationId
    ? {
        id: request.conversationId,
        title: conversationTitle(plan.messages),
        model: first.id,
        historyLimit: CONVERSATION_LIMITS.historyMessages,
        // The window is decided once the history is read, and the reservation counts it as it is sent.
        window: turnWindow(plan),
        maxReserveMicros: worstCaseMicros({ ...modelInputOf(plan), historyTokens: Number.MAX_SAFE_INTEGER }, candidates.map((c) => c.model), plan.params.maxTokens),
        expireAt: new Date(startedAt + settings.conversationTtlDays * 86_400_000),
      }
    : undefined;
  try {
    const admission = await deps.executions.admit({
      uid,
      execution: running,
      reserveMicros,
      ...(conversation ? { conversation } : {}),
      expireAt: startedAt + reservationLifetimeMs(plan.timeLimitMs, settings.functionTimeoutMs, settings.limits.reservationGraceMs),
      limits: settings.limits,
      now: startedAt,
    });
    if (admission.kind === "replay") return admission;
    const history = admission.history ?? [];
    return {
      kind: "admitted",
      running: {
        ...running,
        ...(admission.prior ? { prior: admission.prior } : {}),
        // As the store wrote it on the `running` record: the new turn is in `input`, the history referenced.
        ...(conversation ? { conversation: { id: conversation.id, historyMessages: history.length } } : {}),
      },
      ticket: admission.ticket,
      startedAt,
      history,
      ...(admission.headroom ? { headroom: admission.headroom } : {}),
    };
  } catch (error) {
    if (error instanceof ExecutionError) throw error;
    deps.logger.error("execution.admission_failed", { executionId: id, uid, cause: describeCause(error) });
    throw new ExecutionError("internal", undefined, { cause: error });
  }
}
