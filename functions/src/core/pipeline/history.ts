import { renderHistory, unfetchedNote, windowHistory, type HistoryTarget, type StoredMessage } from "../conversation.js";
import { inputTokensBound, worstCaseMicros, type ModelInput } from "../limits.js";
import { MEDIA_LIMITS } from "../media.js";
import { mediaParts, type Message } from "../messages.js";
import type { ConversationTurn } from "../ports.js";
import type { PipelineDeps, Plan } from "./types.js";

/**
 * A conversation's turn: the stored messages that fit go in front of the new turn, for every
 * candidate model. Which ones is decided at admission, in the store's round (turnWindow), so
 * that the reservation counts exactly what is sent; each candidate then gets them as it can
 * take them (withHistory): media it cannot take, or that has no bound, as short notes, images
 * fetched for providers that need the bytes.
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
 * it. https images go to providers that fetch URLs as they are; for the others they are fetched
 * here (once each, in parallel, from allowed hosts only: deps.media), and one that cannot be
 * fetched is replaced by a note (the reservation counted whichever is longer). Never throws.
 */
export async function withHistory(
  deps: PipelineDeps,
  plan: Plan,
  window: readonly StoredMessage[],
  run: { executionId: string; signal?: AbortSignal },
): Promise<Plan> {
  if (window.length === 0) return plan;
  const targets = historyTargets(plan);
  const rendered = targets.map(({ model, mediaSlots }) => renderHistory(window, model, mediaSlots).messages);
  const needsBytes = targets.map(({ model }) => !(model.provider.fetchesUrls ?? []).includes("image"));
  const urls = new Set<string>();
  rendered.forEach((messages, k) => {
    if (needsBytes[k]) for (const part of mediaParts(messages)) urls.add(part.url);
  });
  const fetched = new Map<string, string | undefined>();
  const signal = run.signal ?? new AbortController().signal;
  await Promise.all(
    [...urls].map(async (url) => {
      try {
        fetched.set(url, deps.media ? await deps.media.fetchAsDataUrl(url, "image", signal) : undefined);
      } catch {
        fetched.set(url, undefined);
      }
    }),
  );
  const unfetched = [...fetched.values()].filter((v) => v === undefined).length;
  if (unfetched > 0) deps.logger.warn("conversation.media_not_fetched", { executionId: run.executionId, images: unfetched });
  return {
    ...plan,
    candidates: plan.candidates.map((candidate, k) => ({
      ...candidate,
      messages: [...(needsBytes[k] && urls.size > 0 ? inlined(rendered[k]!, fetched) : rendered[k]!), ...candidate.messages],
    })),
  };
}

/** Images as the data URLs fetched for them, or a note where none could be. */
function inlined(messages: Message[], fetched: ReadonlyMap<string, string | undefined>): Message[] {
  return messages.map((message) => {
    if (typeof message.content === "string" || message.content === null || message.role === "tool") return message;
    const content = message.content.map((part) => {
      if (part.type !== "image") return part;
      const dataUrl = fetched.get(part.url);
      return dataUrl === undefined ? unfetchedNote() : { ...part, url: dataUrl };
    });
    return { ...message, content } as Message;
  });
}
