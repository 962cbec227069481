import { z } from "zod";
import { ExecutionError } from "./errors.js";
import { formatPath, LIMITS } from "./request.js";

/**
 * The request side of OpenAI's chat completions protocol: the fields we support, validated
 * (everything else refused by name, never ignored), and their mapping to the pipeline's request.
 * The response side is in openai-wire.ts.
 */

/** Fields of OpenAI's request that this endpoint does not implement, refused with a clear message. */
const UNSUPPORTED = [
  "tools",
  "tool_choice",
  "functions",
  "function_call",
  "parallel_tool_calls",
  "response_format",
  "logprobs",
  "top_logprobs",
  "logit_bias",
  "presence_penalty",
  "frequency_penalty",
  "seed",
  "modalities",
  "audio",
  "prediction",
  "reasoning_effort",
  "service_tier",
  "store",
  "metadata",
  "web_search_options",
];

const textPart = z.strictObject({ type: z.literal("text"), text: z.string() });

const messageSchema = z.strictObject({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(textPart).min(1)]),
});

export const chatCompletionRequestSchema = z.strictObject({
  model: z.string().min(1).max(200),
  messages: z.array(messageSchema).min(1).max(LIMITS.messages),
  stream: z.boolean().optional(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(LIMITS.stopSequences)]).nullable().optional(),
  n: z.literal(1).nullable().optional(),
  user: z.string().max(256).optional(),
  /** Extension: models tried in order when `model` keeps failing. */
  fallback_models: z.array(z.string().min(1).max(200)).max(LIMITS.fallbackModels).optional(),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** Validates an OpenAI request body; errors name the field, as `invalid_request_error`s do. */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new ExecutionError("validation", "The request body must be a JSON object.");
  }
  const unsupported = UNSUPPORTED.filter((field) => field in body && (body as Record<string, unknown>)[field] != null);
  if (unsupported.length > 0) {
    throw new ExecutionError("validation", `Unsupported parameter: '${unsupported[0]}' is not supported by this endpoint.`);
  }
  const result = chatCompletionRequestSchema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    throw new ExecutionError("validation", `Unrecognized request argument: '${[formatPath(issue.path), issue.keys[0]].filter((p) => p !== "request").join(".")}'.`);
  }
  throw new ExecutionError("validation", `Invalid value for '${formatPath(issue.path)}': ${issue.message}`);
}

/** Values that OpenAI's body has no field for, taken from headers: `Idempotency-Key`, `X-Timeout-Ms`. */
export interface RequestHeaders {
  idempotencyKey?: string;
  timeoutMs?: string;
}

/** The pipeline's request for an OpenAI one (the pipeline validates it again, naming fields). */
export function toExecuteRequest(request: ChatCompletionRequest, headers: RequestHeaders = {}): Record<string, unknown> {
  const requestId = headers.idempotencyKey;
  const timeoutMs = headers.timeoutMs === undefined ? undefined : Number(headers.timeoutMs);
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  const params = {
    ...(request.temperature != null ? { temperature: request.temperature } : {}),
    ...(request.top_p != null ? { topP: request.top_p } : {}),
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(request.stop != null ? { stop: typeof request.stop === "string" ? [request.stop] : request.stop } : {}),
  };
  return {
    ...(requestId !== undefined ? { requestId } : {}),
    model: request.model,
    messages: request.messages.map((m) => ({
      role: m.role === "developer" ? "system" : m.role,
      content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
    })),
    ...(Object.keys(params).length > 0 ? { params } : {}),
    ...(request.fallback_models ? { fallbackModels: request.fallback_models } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  };
}
