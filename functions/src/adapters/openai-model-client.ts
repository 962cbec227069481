import type OpenAI from "openai";
import type { ProviderSpec } from "../core/catalog.js";
import type { ModelChunk, ModelClient, ModelRequest } from "../core/ports.js";
import type { ProviderConnection } from "../config/providers.js";

// Loaded on first use: a cold start that only serves /health never pays for the SDK.
let sdk: Promise<{ default: typeof OpenAI }> | undefined;
const clients = new Map<string, OpenAI>();

/** `max_completion_tokens` for OpenAI itself (its reasoning models reject `max_tokens`); the older name elsewhere. */
function maxTokensField(provider: ProviderSpec): "max_completion_tokens" | "max_tokens" {
  return provider.id === "openai" ? "max_completion_tokens" : "max_tokens";
}

async function clientFor(provider: ProviderSpec, connection: ProviderConnection): Promise<OpenAI> {
  const key = `${provider.id}\n${connection.baseUrl}\n${connection.apiKey}`;
  const cached = clients.get(key);
  if (cached) return cached;
  sdk ??= import("openai");
  const { default: OpenAIClient } = await sdk;
  const client = new OpenAIClient({
    baseURL: connection.baseUrl,
    apiKey: connection.apiKey || "no-key",
    // Retries and timeouts are the pipeline's: it knows the deadline and what reached the client.
    maxRetries: 0,
    timeout: 24 * 3_600_000,
    // The SDK logs unparsable chunks (model output) at error level; our logs carry no content.
    logLevel: "off",
  });
  clients.set(key, client);
  return client;
}

/** A ModelClient over the openai SDK, for OpenAI and every OpenAI-compatible endpoint in the catalog. */
export function openAIModelClient(provider: ProviderSpec, connection: ProviderConnection): ModelClient {
  return {
    async *stream(request: ModelRequest): AsyncIterable<ModelChunk> {
      const client = await clientFor(provider, connection);
      const { params } = request;
      const stream = await client.chat.completions.create(
        {
          model: request.model.upstreamId,
          messages: request.messages,
          stream: true,
          stream_options: { include_usage: true },
          ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
          ...(params.topP !== undefined ? { top_p: params.topP } : {}),
          ...(params.stop !== undefined ? { stop: params.stop } : {}),
          ...(params.maxTokens !== undefined ? { [maxTokensField(provider)]: params.maxTokens } : {}),
        },
        { signal: request.signal },
      );
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        const text = choice?.delta?.content;
        if (text) yield { type: "delta", text };
        if (choice?.finish_reason) yield { type: "finish", reason: choice.finish_reason };
        if (chunk.usage) yield { type: "usage", usage: chunk.usage };
      }
      // The SDK ends an aborted stream quietly; the pipeline must see why it ended.
      request.signal.throwIfAborted();
    },
  };
}
