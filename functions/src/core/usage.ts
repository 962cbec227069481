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
  totalTokens: number;
  /** True when we counted ourselves because the provider reported nothing (cut stream, no usage support). */
  estimated: boolean;
}

/** OpenAI's chat usage object, which OpenAI-compatible providers copy more or less faithfully. */
export interface ProviderUsage {
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  total_tokens?: number | null;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
}

const count = (n: number | null | undefined): number => (typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);

export function normalizeUsage(raw: ProviderUsage): Usage {
  const inputTokens = count(raw.prompt_tokens);
  const outputTokens = count(raw.completion_tokens);
  return {
    inputTokens,
    outputTokens,
    cachedInputTokens: Math.min(count(raw.prompt_tokens_details?.cached_tokens), inputTokens),
    reasoningTokens: Math.min(count(raw.completion_tokens_details?.reasoning_tokens), outputTokens),
    totalTokens: inputTokens + outputTokens,
    estimated: false,
  };
}

/** Rough tokens for a text: about four characters per token for English with the common tokenizers. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/** A conservative count for when the provider sent none: every message costs its text plus a few framing tokens. */
export function estimateUsage(messages: readonly { content: string }[], output: string): Usage {
  const inputTokens = messages.reduce((sum, m) => sum + estimateTokens(m.content) + 4, 0);
  const outputTokens = estimateTokens(output);
  return { inputTokens, outputTokens, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: inputTokens + outputTokens, estimated: true };
}
