import { mediaParts, textOf, type Message } from "./messages.js";

/** Token counts normalised across providers. */
export interface Usage {
  /** All prompt tokens, cached ones included. */
  inputTokens: number;
  /** All completion tokens, reasoning ones included. */
  outputTokens: number;
  /** The part of inputTokens served from the provider's prompt cache. */
  cachedInputTokens: number;
  /** The part of outputTokens spent on hidden reasoning. */
  reasoningTokens: number;
  /** The part of inputTokens that was audio, when the provider says (priced apart by some). */
  audioInputTokens?: number;
  /** The part of inputTokens that was images, when the provider says. */
  imageInputTokens?: number;
  totalTokens: number;
  /** True when we counted ourselves because the provider reported nothing (cut stream, no usage support). */
  estimated: boolean;
}

/** OpenAI's chat usage object, which OpenAI-compatible providers copy more or less faithfully. */
export interface ProviderUsage {
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  total_tokens?: number | null;
  prompt_tokens_details?: { cached_tokens?: number | null; audio_tokens?: number | null; image_tokens?: number | null } | null;
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
}

const count = (n: number | null | undefined): number => (typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);

export function normalizeUsage(raw: ProviderUsage): Usage {
  const inputTokens = count(raw.prompt_tokens);
  const outputTokens = count(raw.completion_tokens);
  const audio = Math.min(count(raw.prompt_tokens_details?.audio_tokens), inputTokens);
  const image = Math.min(count(raw.prompt_tokens_details?.image_tokens), inputTokens);
  return {
    inputTokens,
    outputTokens,
    cachedInputTokens: Math.min(count(raw.prompt_tokens_details?.cached_tokens), inputTokens),
    reasoningTokens: Math.min(count(raw.completion_tokens_details?.reasoning_tokens), outputTokens),
    ...(audio > 0 ? { audioInputTokens: audio } : {}),
    ...(image > 0 ? { imageInputTokens: image } : {}),
    totalTokens: inputTokens + outputTokens,
    estimated: false,
  };
}

export const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: 0, estimated: false };

/** Usage of several attempts together: what the provider billed for the whole execution. */
export function sumUsage(usages: readonly Usage[]): Usage {
  const total = { ...ZERO_USAGE };
  let audio = 0;
  let image = 0;
  for (const u of usages) {
    total.inputTokens += u.inputTokens;
    total.outputTokens += u.outputTokens;
    total.cachedInputTokens += u.cachedInputTokens;
    total.reasoningTokens += u.reasoningTokens;
    total.totalTokens += u.totalTokens;
    total.estimated ||= u.estimated;
    audio += u.audioInputTokens ?? 0;
    image += u.imageInputTokens ?? 0;
  }
  return { ...total, ...(audio > 0 ? { audioInputTokens: audio } : {}), ...(image > 0 ? { imageInputTokens: image } : {}) };
}

/** Rough tokens for a text: about four characters per token for English with the common tokenizers. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/**
 * A count for when the provider sent none (a cut stream, a provider without usage): every
 * message costs its text plus a few framing tokens, every media part `mediaTokens`, and the
 * output its text (tool-call arguments included).
 */
export function estimateUsage(messages: readonly Message[], output: string, mediaTokens = 0): Usage {
  let inputTokens = 0;
  for (const message of messages) {
    inputTokens += estimateTokens(textOf(message)) + 4;
    if (message.role === "assistant") for (const call of message.toolCalls ?? []) inputTokens += estimateTokens(call.name + call.arguments) + 4;
  }
  inputTokens += mediaParts(messages).length * mediaTokens;
  const outputTokens = estimateTokens(output);
  return { inputTokens, outputTokens, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: inputTokens + outputTokens, estimated: true };
}
