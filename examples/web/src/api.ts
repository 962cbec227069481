/** The backend's callable contract, as much of it as this app uses (docs/api.md). */

export type Part = { type: "text"; text: string } | { type: "image"; url: string };

export interface UserMessage {
  role: "user";
  content: string | Part[];
}

export interface ExecutePromptRequest {
  requestId: string;
  model: string;
  messages: UserMessage[];
  conversationId?: string;
}

export type StreamChunk =
  | { type: "start"; executionId: string; model: string }
  | { type: "delta"; text: string }
  | { type: "tool_call"; index: number; id?: string; name?: string; argumentsDelta: string };

export interface ExecutionResult {
  executionId: string;
  model: string;
  output: string;
  finishReason: string;
  conversationId?: string;
  usage: { inputTokens: number; outputTokens: number; totalTokens: number; estimated: boolean };
  cost: { usd: number; micros: number };
  latencyMs: number;
  ttftMs?: number;
  attempts: number;
}

/** `HttpsError.details` of every failure (docs/errors.md). */
export interface ErrorDetails {
  category: string;
  retryable: boolean;
  retryAfterMs?: number;
  executionId?: string;
}

export interface Usage {
  requests: number;
  succeeded: number;
  failed: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export interface UsageResult {
  day: Usage;
  month: Usage;
  budget: { monthlyUsd: number | null; remainingUsd: number | null };
  rateLimit: { perMinute: number; remaining: number };
}

export interface ConversationSummary {
  conversationId: string;
  title: string;
  model: string;
  messageCount: number;
  running: boolean;
}

/** A stored message: parts are kept by reference, a data URL as its type and size only. */
export interface StoredMessage {
  role: string;
  content: string | ({ type: string; text?: string; url?: string; mimeType?: string; bytes?: number })[] | null;
  executionId: string;
  seq: number;
}

/** The fields of `users/{uid}/executions/{id}` the history list shows (docs/data-model.md). */
export interface ExecutionRecord {
  status: "running" | "succeeded" | "failed" | "cancelled" | "timed_out";
  model: string;
  input?: { role: string; content: StoredMessage["content"] }[];
  output?: string;
  usage?: { inputTokens: number; outputTokens: number };
  cost?: { usd: number };
  error?: { category: string; message: string };
  createdAt?: { toDate(): Date };
}
