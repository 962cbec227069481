import { fromStored, windowHistory, type StoredMessage } from "../conversation.js";
import { inputTokensBound } from "../limits.js";
import type { Message } from "../messages.js";
import type { Plan } from "./types.js";

/**
 * A conversation's turn: the stored messages that fit go in front of the new turn, for every
 * candidate model. What fits is decided for the smallest context among the candidates, less
 * the new turn, the tools and the most output the model may write, all counted as UTF-8
 * bytes (a true upper bound of tokens), so that no candidate is sent more than it takes.
 */
export function withHistory(plan: Plan, history: readonly StoredMessage[]): { plan: Plan; historyMessages: number } {
  if (history.length === 0) return { plan, historyMessages: 0 };
  const input = { messages: plan.messages, ...(plan.tools ? { tools: plan.tools } : {}), ...(plan.responseFormat ? { responseFormat: plan.responseFormat } : {}) };
  const budget = Math.min(
    ...plan.candidates.map(({ model }) => {
      const output = Math.min(plan.params.maxTokens ?? model.spec.maxOutputTokens, model.spec.maxOutputTokens);
      return model.spec.contextWindow - output - inputTokensBound(input, model);
    }),
  );
  const window = windowHistory(history, budget);
  const sent: Message[] = window.map(fromStored);
  return {
    plan: { ...plan, candidates: plan.candidates.map((c) => ({ ...c, messages: [...sent, ...c.messages] })) },
    historyMessages: window.length,
  };
}
