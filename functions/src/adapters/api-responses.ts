import type { Response } from "express";
import { openAIParamName, TEXT_ONLY, type Catalog } from "../core/catalog.js";
import { classifyError } from "../core/errors.js";
import { errorResponse } from "../core/openai-wire.js";

/**
 * Responses of the `api` function that need neither the pipeline nor request validation,
 * so that `/health`, `/v1/models` and error answers load neither.
 */

/** Sends an error in API.md's shape, with Retry-After when we know how long to wait. */
export function sendError(res: Response, error: unknown): void {
  const failure = classifyError(error);
  const { status, body, retryAfterMs } = errorResponse(failure);
  if (failure.executionId) res.set("x-execution-id", failure.executionId);
  // The openai SDKs retry what this header says (else every 409, 429 and 5xx, budget_exceeded included).
  res.set("x-should-retry", String(failure.retryable));
  if (retryAfterMs !== undefined && (failure.category === "rate_limited" || failure.category === "provider_rate_limited")) {
    res.set("retry-after", String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    res.set("retry-after-ms", String(retryAfterMs));
  }
  res.status(status).json(body);
}

/**
 * `GET /v1/models`: the models this deployment can call right now (their provider has a key
 * or URL here), with prices and capabilities (API.md, "Catalog").
 */
export function listModels(res: Response, catalog: Catalog, isConfigured: (providerId: string) => boolean): void {
  res.set("cache-control", "public, max-age=300").json({
    object: "list",
    data: catalog
      .models()
      .filter(({ provider }) => isConfigured(provider.id))
      .map(({ provider, spec }) => {
        const capabilities = spec.capabilities ?? TEXT_ONLY;
        return {
          id: spec.id,
          object: "model",
          created: 0,
          owned_by: provider.id,
          context_window: spec.contextWindow,
          max_output_tokens: spec.maxOutputTokens,
          pricing: {
            inputPerMTokUsd: spec.price.inputPerMTokUsd,
            outputPerMTokUsd: spec.price.outputPerMTokUsd,
            cachedInputPerMTokUsd: spec.price.cachedInputPerMTokUsd,
            ...(spec.price.audioInputPerMTokUsd !== undefined ? { audioInputPerMTokUsd: spec.price.audioInputPerMTokUsd } : {}),
            priceVersion: spec.price.priceVersion,
          },
          capabilities: {
            input: capabilities.input,
            tools: capabilities.tools,
            structuredOutput: capabilities.structuredOutput,
            // In OpenAI's names: what a request to this model must not set.
            ...(capabilities.unsupportedParams ? { unsupportedParams: capabilities.unsupportedParams.map(openAIParamName) } : {}),
            contextWindow: spec.contextWindow,
            maxOutputTokens: spec.maxOutputTokens,
          },
        };
      }),
  });
}
