import type { ModelPrice } from "./catalog.js";
import type { Usage } from "./usage.js";

export interface Cost {
  /** Integer millionths of a US dollar: the unit everything is summed in. */
  micros: number;
  usd: number;
  priceVersion: string;
}

/** A price in $/million tokens is the same number in micro-dollars per token; ×1e6 makes it exact integer picodollars. */
const picosPerToken = (usdPerMTok: number): number => Math.round(usdPerMTok * 1_000_000);

/**
 * Prices one execution. Cached input tokens are billed at the cached price and the rest of
 * the input at the input price; reasoning tokens are already inside outputTokens and are
 * billed as output, which is how OpenAI-compatible providers bill them. Integer arithmetic
 * until one final rounding, half up, so sums over many executions are exact.
 */
export function computeCost(usage: Usage, price: ModelPrice): Cost {
  // Audio input at its own price when the model has one; the rest of the input at the input price.
  const audio = price.audioInputPerMTokUsd !== undefined ? Math.min(usage.audioInputTokens ?? 0, usage.inputTokens - usage.cachedInputTokens) : 0;
  const uncachedInput = usage.inputTokens - usage.cachedInputTokens - audio;
  const picos =
    uncachedInput * picosPerToken(price.inputPerMTokUsd) +
    audio * picosPerToken(price.audioInputPerMTokUsd ?? 0) +
    usage.cachedInputTokens * picosPerToken(price.cachedInputPerMTokUsd) +
    usage.outputTokens * picosPerToken(price.outputPerMTokUsd);
  const micros = Math.floor((picos + 500_000) / 1_000_000);
  return { micros, usd: micros / 1_000_000, priceVersion: price.priceVersion };
}
