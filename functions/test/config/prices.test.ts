import { calcPrice } from "@pydantic/genai-prices";
import { describe, expect, it } from "vitest";
import { BUILT_IN_PROVIDERS } from "../../src/config/catalog.js";

/**
 * The built-in prices are the maintained price database's (@pydantic/genai-prices, a dev
 * dependency): bumping it makes this fail where a provider changed a price, and
 * `npm run prices` prints the figures to copy. The local provider's made-up prices are not in it.
 */
const DATABASE_PROVIDER: Record<string, string> = { openai: "openai", gemini: "google", openrouter: "openrouter" };
const MTOK = 1_000_000;

const real = BUILT_IN_PROVIDERS.filter((p) => p.id in DATABASE_PROVIDER).flatMap((p) => p.models.map((m) => [p.id, m] as const));

describe("built-in prices match @pydantic/genai-prices", () => {
  it.each(real.map(([provider, model]) => [`${provider}/${model.id}`, provider, model] as const))("%s", (_, provider, model) => {
    const providerId = DATABASE_PROVIDER[provider]!;
    const price = (usage: Record<string, number>) => calcPrice({ input_tokens: 0, output_tokens: 0, ...usage }, model.upstreamId, { providerId });
    const input = price({ input_tokens: MTOK });
    expect(input, `${model.upstreamId} is not in the price database`).not.toBeNull();
    expect(model.price.inputPerMTokUsd).toBeCloseTo(input!.total_price, 6);
    expect(model.price.outputPerMTokUsd).toBeCloseTo(price({ output_tokens: MTOK })!.total_price, 6);
    const listed = input!.model_price;
    if (typeof listed.cache_read_mtok === "number") expect(model.price.cachedInputPerMTokUsd).toBeCloseTo(listed.cache_read_mtok, 6);
    if (typeof listed.input_audio_mtok === "number") expect(model.price.audioInputPerMTokUsd).toBeCloseTo(listed.input_audio_mtok, 6);
    expect(model.price.priceVersion).toMatch(/^genai-prices@/);
  });
});
