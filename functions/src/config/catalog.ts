import { Catalog, type ModelCapabilities, type ProviderSpec } from "../core/catalog.js";

import { mergeCatalog, readCatalogFile } from "./catalog-file.js";

/**
 * The providers and models built in; `functions/catalog.json` adds or changes some without
 * editing this file (catalog-file.ts). Prices are US dollars per million tokens, taken from
 * the maintained price database @pydantic/genai-prices (its version is the `priceVersion`
 * stored on every execution's cost); functions/test/config/prices.test.ts fails when they
 * drift from it, and `npm run prices` shows the current figures. Provider order matters:
 * with no DEFAULT_MODEL set, the first model of the first configured provider is the default.
 */
const PRICES_CHECKED = "genai-prices@0.1.8";

// Capabilities as the providers document them for their OpenAI-compatible chat endpoints.
const VISION_TOOLS_JSON: ModelCapabilities = { input: ["text", "image", "file"], tools: true, structuredOutput: true };
const GEMINI: ModelCapabilities = { input: ["text", "image", "file", "audio"], tools: true, structuredOutput: true };
// Gemini counts 258 tokens per 768 px tile of an image; images are scaled into 3072 px: 16 tiles.
const GEMINI_IMAGE_TOKENS = 16 * 258;
// OpenAI's reasoning models answer 400 "Unsupported parameter" to sampling controls.
const REASONING: Pick<ModelCapabilities, "reasoning" | "unsupportedParams"> = { reasoning: true, unsupportedParams: ["temperature", "topP", "presencePenalty", "frequencyPenalty"] };

export const BUILT_IN_PROVIDERS: readonly ProviderSpec[] = [
  {
    id: "openai",
    name: "OpenAI",
    baseUrl: "https://api.openai.com/v1",
    apiKeySecret: "OPENAI_API_KEY",
    // OpenAI fetches image URLs itself; PDFs and audio must be sent as data.
    fetchesUrls: ["image"],
    keyCheck: { pattern: "^sk-[A-Za-z0-9_-]{20,}$" },
    timeouts: { totalMs: 120_000, firstTokenMs: 30_000, idleMs: 20_000 },
    models: [
      {
        id: "gpt-4o-mini",
        upstreamId: "gpt-4o-mini",
        contextWindow: 128_000,
        maxOutputTokens: 16_384,
        price: { inputPerMTokUsd: 0.15, cachedInputPerMTokUsd: 0.075, outputPerMTokUsd: 0.6, priceVersion: PRICES_CHECKED },
        capabilities: VISION_TOOLS_JSON,
        // gpt-4o-mini bills images at many more tokens than gpt-4o (same price): 2,833 base + 5,667 a
        // 512 px tile; an image is scaled into 2048 px, its short side to 768 px: 768 × 2048 is 8 tiles.
        imageTokens: 48_169,
      },
      {
        id: "gpt-4.1-mini",
        upstreamId: "gpt-4.1-mini",
        contextWindow: 1_047_576,
        maxOutputTokens: 32_768,
        price: { inputPerMTokUsd: 0.4, cachedInputPerMTokUsd: 0.1, outputPerMTokUsd: 1.6, priceVersion: PRICES_CHECKED },
        capabilities: VISION_TOOLS_JSON,
        // Billed by 32 px patches, at most 1,536 an image, × 1.62 for this model.
        imageTokens: 2_489,
      },
      {
        id: "gpt-4.1-nano",
        upstreamId: "gpt-4.1-nano",
        contextWindow: 1_047_576,
        maxOutputTokens: 32_768,
        price: { inputPerMTokUsd: 0.1, cachedInputPerMTokUsd: 0.025, outputPerMTokUsd: 0.4, priceVersion: PRICES_CHECKED },
        capabilities: VISION_TOOLS_JSON,
        // At most 1,536 patches × 2.46.
        imageTokens: 3_779,
      },
      {
        id: "o4-mini",
        upstreamId: "o4-mini",
        contextWindow: 200_000,
        maxOutputTokens: 100_000,
        price: { inputPerMTokUsd: 1.1, cachedInputPerMTokUsd: 0.275, outputPerMTokUsd: 4.4, priceVersion: PRICES_CHECKED },
        capabilities: { ...VISION_TOOLS_JSON, ...REASONING },
        // At most 1,536 patches × 1.72.
        imageTokens: 2_642,
        // Reasoning models think before the first visible token.
        timeouts: { firstTokenMs: 120_000, totalMs: 240_000 },
      },
    ],
  },
  {
    id: "gemini",
    name: "Google Gemini (OpenAI-compatible endpoint)",
    baseUrl: "https://generativelanguage.googleapis.com/v1beta/openai",
    apiKeySecret: "GEMINI_API_KEY",
    keyCheck: { pattern: "^AIza[0-9A-Za-z_-]{35}$" },
    timeouts: { totalMs: 120_000, firstTokenMs: 30_000, idleMs: 20_000 },
    models: [
      {
        id: "gemini-2.5-flash",
        upstreamId: "gemini-2.5-flash",
        contextWindow: 1_048_576,
        maxOutputTokens: 65_536,
        price: { inputPerMTokUsd: 0.3, cachedInputPerMTokUsd: 0.03, outputPerMTokUsd: 2.5, audioInputPerMTokUsd: 1, priceVersion: PRICES_CHECKED },
        capabilities: { ...GEMINI, reasoning: true },
        imageTokens: GEMINI_IMAGE_TOKENS,
        timeouts: { firstTokenMs: 60_000 },
      },
      {
        id: "gemini-2.0-flash",
        upstreamId: "gemini-2.0-flash",
        contextWindow: 1_048_576,
        maxOutputTokens: 8_192,
        price: { inputPerMTokUsd: 0.1, cachedInputPerMTokUsd: 0.025, outputPerMTokUsd: 0.4, audioInputPerMTokUsd: 0.7, priceVersion: PRICES_CHECKED },
        capabilities: GEMINI,
        imageTokens: GEMINI_IMAGE_TOKENS,
      },
    ],
  },
  {
    id: "openrouter",
    name: "OpenRouter",
    baseUrl: "https://openrouter.ai/api/v1",
    apiKeySecret: "OPENROUTER_API_KEY",
    fetchesUrls: ["image"],
    keyCheck: { pattern: "^sk-or-v1-[0-9a-f]{64}$", creditPath: "/key" },
    timeouts: { totalMs: 120_000, firstTokenMs: 45_000, idleMs: 30_000 },
    models: [
      {
        id: "openrouter/openai/gpt-4o-mini",
        upstreamId: "openai/gpt-4o-mini",
        contextWindow: 128_000,
        maxOutputTokens: 16_384,
        price: { inputPerMTokUsd: 0.15, cachedInputPerMTokUsd: 0.075, outputPerMTokUsd: 0.6, priceVersion: PRICES_CHECKED },
        capabilities: { input: ["text", "image"], tools: true, structuredOutput: true },
        imageTokens: 48_169, // as gpt-4o-mini
      },
      {
        id: "openrouter/anthropic/claude-3.5-haiku",
        upstreamId: "anthropic/claude-3.5-haiku",
        contextWindow: 200_000,
        maxOutputTokens: 8_192,
        price: { inputPerMTokUsd: 0.8, cachedInputPerMTokUsd: 0.08, outputPerMTokUsd: 4, priceVersion: PRICES_CHECKED },
        capabilities: { input: ["text"], tools: true, structuredOutput: false },
      },
    ],
  },
  {
    id: "ollama",
    name: "Ollama (self-hosted)",
    baseUrl: { env: "OLLAMA_BASE_URL" },
    timeouts: { totalMs: 300_000, firstTokenMs: 120_000, idleMs: 30_000 },
    models: [
      {
        id: "ollama/llama3.2",
        upstreamId: "llama3.2",
        contextWindow: 131_072,
        maxOutputTokens: 8_192,
        price: { inputPerMTokUsd: 0, cachedInputPerMTokUsd: 0, outputPerMTokUsd: 0, priceVersion: PRICES_CHECKED },
        capabilities: { input: ["text"], tools: true, structuredOutput: true },
      },
    ],
  },
  {
    // The project's own deterministic provider (scripts/local-provider): the zero-key
    // default locally and the fault source in tests. Prices are made up but non-zero
    // so that cost accounting is exercised.
    id: "local",
    name: "Local model provider",
    baseUrl: { env: "LOCAL_PROVIDER_URL" },
    acceptsScenarioSuffix: true,
    // It fetches nothing, but takes URLs as they are: only counts and names the parts.
    fetchesUrls: ["image", "file", "audio"],
    timeouts: { totalMs: 60_000, firstTokenMs: 15_000, idleMs: 10_000 },
    models: [
      {
        id: "local-mini",
        upstreamId: "local-mini",
        contextWindow: 32_768,
        maxOutputTokens: 4_096,
        price: { inputPerMTokUsd: 0.1, cachedInputPerMTokUsd: 0.05, outputPerMTokUsd: 0.4, priceVersion: "local-1" },
        capabilities: { input: ["text", "image", "file", "audio"], tools: true, structuredOutput: true },
        imageTokens: 85,
      },
      {
        id: "local-pro",
        upstreamId: "local-pro",
        contextWindow: 32_768,
        maxOutputTokens: 8_192,
        price: { inputPerMTokUsd: 1, cachedInputPerMTokUsd: 0.25, outputPerMTokUsd: 4, priceVersion: "local-1" },
        // Behaves like OpenAI's reasoning models: takes reasoningEffort, refuses sampling controls.
        capabilities: { input: ["text", "image", "file", "audio"], tools: true, structuredOutput: true, ...REASONING },
        imageTokens: 85,
      },
      {
        // Text only, no tools, no structured output: for testing capability checks and fallbacks that skip it.
        id: "local-text",
        upstreamId: "local-text",
        contextWindow: 8_192,
        maxOutputTokens: 2_048,
        price: { inputPerMTokUsd: 0.05, cachedInputPerMTokUsd: 0.025, outputPerMTokUsd: 0.2, priceVersion: "local-1" },
        capabilities: { input: ["text"], tools: false, structuredOutput: false },
      },
    ],
  },
];

/** The built-in catalog with functions/catalog.json merged in (read once, at load: a small file). */
export const PROVIDERS: readonly ProviderSpec[] = mergeCatalog(BUILT_IN_PROVIDERS, readCatalogFile());

export const catalog = new Catalog(PROVIDERS);

/** Secret names of every provider that has one, for binding to functions. */
export const PROVIDER_SECRET_NAMES: readonly string[] = PROVIDERS.flatMap((p) => (p.apiKeySecret ? [p.apiKeySecret] : []));
