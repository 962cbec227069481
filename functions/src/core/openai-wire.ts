import { CATEGORIES, classifyError } from "./errors.js";
import type { ExecutionResult } from "./execution.js";
import type { ToolCall } from "./messages.js";
import type { ToolCallDelta } from "./ports.js";
import type { Usage } from "./usage.js";

/**
 * What OpenAI's chat completions protocol sends back: completions, stream chunks and error
 * bodies, in the shapes the openai SDKs parse. No validation library here, so the `api`
 * function can answer errors and `/health` without loading one.
 */

export function toOpenAIUsage(usage: Usage) {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
    // OpenAI's own detail fields; image tokens (which some providers report) have none there.
    prompt_tokens_details: { cached_tokens: usage.cachedInputTokens, ...(usage.audioInputTokens !== undefined ? { audio_tokens: usage.audioInputTokens } : {}) },
    completion_tokens_details: { reasoning_tokens: usage.reasoningTokens },
  };
}

export const completionId = (executionId: string) => `chatcmpl-${executionId}`;

export function chatCompletion(result: ExecutionResult, created: number) {
  return {
    id: completionId(result.executionId),
    object: "chat.completion",
    created,
    model: result.model,
    choices: [
      {
        index: 0,
        message: assistantMessage(result.output, result.toolCalls),
        finish_reason: result.finishReason,
        logprobs: null,
      },
    ],
    usage: toOpenAIUsage(result.usage),
  };
}

/** The answer as OpenAI's message; clients push it back as the next turn's input, which we accept. */
function assistantMessage(output: string, toolCalls: ToolCall[] | undefined) {
  return {
    role: "assistant",
    content: toolCalls && output === "" ? null : output,
    refusal: null,
    ...(toolCalls ? { tool_calls: toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) } : {}),
  };
}

/** One SSE event. JSON never contains a raw newline, so one `data:` line is always enough. */
export function sseEvent(data: unknown): string {
  return `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
}

export const SSE_DONE = "data: [DONE]\n\n";

/** Builds the `chat.completion.chunk` events of one streamed completion, as OpenAI frames them. */
export function chunkWriter(executionId: string, model: string, created: number) {
  const head = `{"id":${JSON.stringify(completionId(executionId))},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},`;
  return {
    role: () => `data: ${head}"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`,
    // Hot path: one string concatenation per delta rather than building and serialising an object.
    delta: (text: string) => `data: ${head}"choices":[{"index":0,"delta":{"content":${JSON.stringify(text)}},"finish_reason":null}]}\n\n`,
    toolCall: (delta: ToolCallDelta) => {
      const call = {
        index: delta.index,
        ...(delta.id !== undefined ? { id: delta.id, type: "function" } : {}),
        function: { ...(delta.name !== undefined ? { name: delta.name } : {}), arguments: delta.argumentsDelta },
      };
      return `data: ${head}"choices":[{"index":0,"delta":{"tool_calls":[${JSON.stringify(call)}]},"finish_reason":null}]}\n\n`;
    },
    finish: (reason: string) => `data: ${head}"choices":[{"index":0,"delta":{},"finish_reason":${JSON.stringify(reason)}}]}\n\n`,
    usage: (usage: Usage) => `data: ${head}"choices":[],"usage":${JSON.stringify(toOpenAIUsage(usage))}}\n\n`,
  };
}

/** API.md: `{ error: { message, type: <category>, code: <HttpsError code> } }` with the category's HTTP status. */
export function errorResponse(error: unknown): { status: number; body: { error: Record<string, unknown> }; retryAfterMs?: number } {
  const failure = classifyError(error);
  const message = failure.category === "internal" ? "Internal error." : failure.message;
  return {
    status: CATEGORIES[failure.category].httpStatus,
    body: {
      error: {
        message,
        type: failure.category,
        code: failure.code,
        param: null,
        retryable: failure.retryable,
        ...(failure.retryAfterMs !== undefined ? { retry_after_ms: failure.retryAfterMs } : {}),
        ...(failure.executionId ? { execution_id: failure.executionId } : {}),
      },
    },
    ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
  };
}
