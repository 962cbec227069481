import { renderHistory, windowHistory, type HistoryTarget, type StoredMessage } from "../conversation.js";
import { inputTokensBound, worstCaseMicros, type ModelInput } from "../limits.js";
import { isHttpsUrl, MEDIA_LIMITS } from "../media.js";
import { mediaParts } from "../messages.js";
import type { ConversationTurn } from "../ports.js";
import type { Plan } from "./types.js";

/**
 * A conversation's turn: the stored messages that fit go in front of the new turn, for every
 * candidate model. Which ones is decided at admission, in the store's round (turnWindow), so
 * that the reservation counts exactly what is sent; each candidate then gets them as it can
 * take them (withHistory): media it cannot take, or that has no bound, as short notes, images
 * listed to be fetched for providers that need the bytes.
 */

/** What the new turn sends besides history: its messages, tools and response format. */
export function modelInputOf(plan: Plan): ModelInput {
  return { messages: plan.messages, ...(plan.tools ? { tools: plan.tools } : {}), ...(plan.responseFormat ? { responseFormat: plan.responseFormat } : {}) };
}

/** Every candidate, with what its context leaves for history: the window less the new turn, the tools and the most output it may write. */
export function historyTargets(plan: Plan): HistoryTarget[] {
  const input = modelInputOf(plan);
  const mediaSlots = Math.max(0, MEDIA_LIMITS.mediaParts - mediaParts(plan.messages).length);
  return plan.candidates.map(({ model }) => {
    const output = Math.min(plan.params.maxTokens ?? model.spec.maxOutputTokens, model.spec.maxOutputTokens);
    return { model, budget: model.spec.contextWindow - output - inputTokensBound(input, model), mediaSlots };
  });
}

/**
 * For admission, once the store has read the history: the stored messages sent with this turn
 * (the newest that fit every candidate, the system message kept) and the reservation, which is
 * the worst case of the new turn plus that history as each candidate gets it, on the dearest one.
 */
export function turnWindow(plan: Plan): ConversationTurn["window"] {
  const targets = historyTargets(plan);
  const input = modelInputOf(plan);
  return (history, system) => {
    const messages = windowHistory(history, system, targets);
    const reserveMicros = Math.max(
      ...targets.map(({ model, mediaSlots }) =>
        worstCaseMicros({ ...input, historyTokens: renderHistory(messages, model, mediaSlots).tokens }, [model], plan.params.maxTokens),
      ),
    );
    return { messages, reserveMicros };
  };
}

/**
 * After admission: every candidate gets the window in front of its messages, as it can take
 * it. https images go to providers that fetch URLs as they are; for the others they are
 * listed in `historyInline`, and fetched with the turn's own media, for the candidate about
 * to be called (media.ts), where one that cannot be fetched becomes a note.
 */
export function withHistory(plan: Plan, window: readonly StoredMessage[]): Plan {
  if (window.length === 0) return plan;
  return {
    ...plan,
    candidates: historyTargets(plan).map(({ model, mediaSlots }, k) => {
      const candidate = plan.candidates[k]!;
      const history = renderHistory(window, model, mediaSlots).messages;
      const needsBytes = !(model.provider.fetchesUrls ?? []).includes("image");
      const historyInline = needsBytes ? mediaParts(history).filter((part) => isHttpsUrl(part.url)) : [];
      return { ...candidate, messages: [...history, ...candidate.messages], ...(historyInline.length > 0 ? { historyInline } : {}) };
    }),
  };
}
