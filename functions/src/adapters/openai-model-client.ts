import type OpenAI from "openai";
import type {
  ChatCompletionContentPart,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionToolChoiceOption,
} from "openai/resources/chat/completions";
import type { ProviderSpec } from "../core/catalog.js";
import { parseDataUrl } from "../core/media.js";
import type { Message, Part, ResponseFormat, ToolChoice, ToolSpec } from "../core/messages.js";
import type { ModelChunk, ModelClient, ModelRequest } from "../core/ports.js";
import type { ProviderConnection } from "../config/providers.js";
import { nodeFetch } from "./node-fetch.js";

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
    // Node's http instead of undici's fetch and web streams: measured cheaper (node-fetch.ts).
    fetch: nodeFetch as unknown as typeof fetch,
  });
  clients.set(key, client);
  return client;
}

/** Our parts in OpenAI's shapes: images as `image_url`, audio as `input_audio`, other files as `file`. */
function toProviderPart(part: Part): ChatCompletionContentPart {
  if (part.type === "text") return { type: "text", text: part.text };
  if (part.type === "image") return { type: "image_url", image_url: { url: part.url, ...(part.detail ? { detail: part.detail } : {}) } };
  const data = parseDataUrl(part.url);
  if (part.mimeType.startsWith("audio/") && data) {
    return { type: "input_audio", input_audio: { data: data.base64, format: part.mimeType === "audio/mpeg" ? "mp3" : "wav" } };
  }
  // A URL here means the provider fetches URLs itself (the catalog's fetchesUrls); OpenAI's
  // field takes data URLs, and compatible endpoints that fetch take URLs in the same field.
  return { type: "file", file: { file_data: part.url, ...(part.name ? { filename: part.name } : {}) } };
}

function textParts(content: string | Part[]): string | { type: "text"; text: string }[] {
  if (typeof content === "string") return content;
  return content.flatMap((p) => (p.type === "text" ? [{ type: "text" as const, text: p.text }] : []));
}

export function toProviderMessages(messages: readonly Message[]): ChatCompletionMessageParam[] {
  return messages.map((message): ChatCompletionMessageParam => {
    switch (message.role) {
      case "system":
        return { role: "system", content: textParts(message.content) };
      case "user":
        return { role: "user", content: typeof message.content === "string" ? message.content : message.content.map(toProviderPart) };
      case "assistant":
        return {
          role: "assistant",
          content: message.content === null ? null : textParts(message.content),
          ...(message.toolCalls
            ? { tool_calls: message.toolCalls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } })) }
            : {}),
        };
      case "tool":
        return { role: "tool", tool_call_id: message.toolCallId, content: message.content };
    }
  });
}

function toProviderTools(tools: readonly ToolSpec[]) {
  return tools.map((t) => ({
    type: "function" as const,
    function: {
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      parameters: t.parameters,
      ...(t.strict !== undefined ? { strict: t.strict } : {}),
    },
  }));
}

function toProviderToolChoice(choice: ToolChoice): ChatCompletionToolChoiceOption {
  return typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } };
}

function toProviderResponseFormat(format: ResponseFormat): ChatCompletionCreateParamsStreaming["response_format"] {
  if (format.type === "json_object") return { type: "json_object" };
  return {
    type: "json_schema",
    json_schema: {
      name: format.name,
      schema: format.schema,
      ...(format.strict !== undefined ? { strict: format.strict } : {}),
      ...(format.description !== undefined ? { description: format.description } : {}),
    },
  };
}

/** The body of one streamed chat completion for a provider, from the pipeline's request. */
export function toProviderRequest(provider: ProviderSpec, request: Omit<ModelRequest, "signal">): ChatCompletionCreateParamsStreaming {
  const { params } = request;
  return {
    model: request.model.upstreamId,
    messages: toProviderMessages(request.messages),
    stream: true,
    stream_options: { include_usage: true },
    ...(request.tools ? { tools: toProviderTools(request.tools) } : {}),
    ...(request.toolChoice ? { tool_choice: toProviderToolChoice(request.toolChoice) } : {}),
    ...(request.tools && params.parallelToolCalls !== undefined ? { parallel_tool_calls: params.parallelToolCalls } : {}),
    ...(request.responseFormat ? { response_format: toProviderResponseFormat(request.responseFormat) } : {}),
    ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
    ...(params.topP !== undefined ? { top_p: params.topP } : {}),
    ...(params.stop !== undefined ? { stop: params.stop } : {}),
    ...(params.seed !== undefined ? { seed: params.seed } : {}),
    ...(params.presencePenalty !== undefined ? { presence_penalty: params.presencePenalty } : {}),
    ...(params.frequencyPenalty !== undefined ? { frequency_penalty: params.frequencyPenalty } : {}),
    ...(params.reasoningEffort !== undefined ? { reasoning_effort: params.reasoningEffort } : {}),
    ...(params.maxTokens !== undefined ? { [maxTokensField(provider)]: params.maxTokens } : {}),
  };
}

/** A ModelClient over the openai SDK, for OpenAI and every OpenAI-compatible endpoint in the catalog. */
export function openAIModelClient(provider: ProviderSpec, connection: ProviderConnection): ModelClient {
  return {
    async *stream(request: ModelRequest): AsyncIterable<ModelChunk> {
      const client = await clientFor(provider, connection);
      const stream = await client.chat.completions.create(toProviderRequest(provider, request), { signal: request.signal });
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        const delta = choice?.delta;
        if (delta?.content) yield { type: "delta", text: delta.content };
        // A refusal (structured output declined) is the model's answer too: the client gets it as text.
        if (delta?.refusal) yield { type: "delta", text: delta.refusal };
        for (const call of delta?.tool_calls ?? []) {
          yield {
            type: "tool_call",
            index: call.index,
            ...(call.id ? { id: call.id } : {}),
            ...(call.function?.name ? { name: call.function.name } : {}),
            argumentsDelta: call.function?.arguments ?? "",
          };
        }
        if (choice?.finish_reason) yield { type: "finish", reason: choice.finish_reason };
        if (chunk.usage) yield { type: "usage", usage: chunk.usage };
      }
      // The SDK ends an aborted stream quietly; the pipeline must see why it ended.
      request.signal.throwIfAborted();
    },
  };
}
