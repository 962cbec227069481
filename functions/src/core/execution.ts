import type { Cost } from "./cost.js";
import type { ErrorCategory } from "./errors.js";
import { mediaReference, type MediaReference } from "./media.js";
import type { Message, TextPart, ToolCall } from "./messages.js";
import { textBudget, truncate } from "./truncate.js";
import type { Usage } from "./usage.js";

export type ExecutionStatus = "running" | "succeeded" | "failed" | "cancelled" | "timed_out";

export interface AttemptRecord {
  model: string;
  provider: string;
  outcome: "succeeded" | "failed";
  category?: ErrorCategory;
  httpStatus?: number;
  latencyMs: number;
  /** What the provider billed for this attempt (reported or estimated), when anything. */
  usage?: Usage;
  costMicros?: number;
}

/** A message as records keep it: media by reference (never a data URL's bytes), text capped. */
export type RecordedPart = TextPart | MediaReference;
export type RecordedMessage =
  | { role: "system" | "user"; content: string | RecordedPart[] }
  | { role: "assistant"; content: string | RecordedPart[] | null; toolCalls?: ToolCall[] }
  | { role: "tool"; toolCallId: string; content: string };

/**
 * Earlier runs of the same `requestId` (a repeat reruns after a timeout, a cancel, a
 * retryable failure or an abandoned run): what they were charged, so that the ledger still
 * equals the sum of the records (cost + prior.costMicros, and 1 + prior.runs requests).
 */
export interface PriorRuns {
  runs: number;
  costMicros: number;
  inputTokens: number;
  outputTokens: number;
  lastStatus: ExecutionStatus;
  lastError?: { category: ErrorCategory; message: string };
  /**
   * Earlier runs settled late (`npm run settle-unsettled`) after the record had been reclaimed
   * and run again: their `createdAt` (ms), so that settling one again counts nothing twice.
   */
  settledLate?: string[];
}

/** `users/{uid}/executions/{executionId}` (API.md, "Firestore data model"). */
export interface Execution {
  id: string;
  status: ExecutionStatus;
  requestId?: string;
  /** With requestId: tells a repeat from a different request under the same id. */
  requestFingerprint?: string;
  model: string;
  provider: string;
  promptId?: string;
  input: RecordedMessage[];
  inputTruncated: boolean;
  /** Names of the tools offered, and the response format asked for, when any. */
  tools?: string[];
  responseFormat?: "json_object" | "json_schema";
  output: string;
  outputTruncated: boolean;
  /** Function calls the model asked for (partial ones kept when the answer was cut). */
  toolCalls?: ToolCall[];
  finishReason: string | null;
  usage: Usage | null;
  cost: Cost | null;
  attempts: AttemptRecord[];
  error?: { category: ErrorCategory; message: string };
  createdAt: Date;
  completedAt: Date | null;
  latencyMs: number | null;
  ttftMs: number | null;
  /** Firestore's TTL policy deletes the record after this. */
  expireAt: Date;
  /** Closed by a reclaimer because its instance died: a repeat of its requestId runs again. */
  abandoned?: boolean;
  prior?: PriorRuns;
  /** The server instance running it (for cancelExecution). */
  instance?: string;
  /**
   * Called the provider before admission, and admission refused it: the upstream call was
   * aborted before any output reached the client; the record keeps what it may have cost.
   */
  speculative?: boolean;
  /** A turn of a server-side conversation: which, and how many stored messages were sent before the new turn. */
  conversation?: { id: string; historyMessages: number };
  /**
   * 0–15, random: the first field of the sweeper's collection-group index, so that the index's
   * insertion point (`createdAt` only grows) is spread over 16 ranges (docs/scaling.md).
   */
  sweepShard?: number;
}

/** What `executePrompt` returns (API.md). */
export interface ExecutionResult {
  executionId: string;
  model: string;
  provider: string;
  output: string;
  finishReason: string;
  toolCalls?: ToolCall[];
  conversationId?: string;
  /** With a response format: the output parsed (and validated against the schema). */
  json?: unknown;
  usage: Usage;
  cost: { usd: number; micros: number };
  latencyMs: number;
  ttftMs?: number;
  attempts: number;
}

/** Limits on what a record stores, so that one document stays far below Firestore's 1 MiB. */
export const RECORD_LIMITS = { inputChars: 50_000, outputChars: 100_000 } as const;

/** What a record keeps of the input: media by reference, text within RECORD_LIMITS.inputChars in all. */
export function capInput(messages: readonly Message[]): { input: RecordedMessage[]; inputTruncated: boolean } {
  const budget = textBudget(RECORD_LIMITS.inputChars);
  const take = (text: string) => budget.take(text);
  const input: RecordedMessage[] = [];
  let truncated = false;
  for (const message of messages) {
    if (budget.left <= 0) {
      truncated = true;
      break;
    }
    if (message.role === "tool") {
      input.push({ role: "tool", toolCallId: message.toolCallId, content: take(message.content) });
      continue;
    }
    const content =
      message.content === null || typeof message.content === "string"
        ? message.content === null
          ? null
          : take(message.content)
        : message.content.map((part): RecordedPart => (part.type === "text" ? { type: "text", text: take(part.text) } : mediaReference(part)));
    if (message.role === "assistant") {
      const toolCalls = message.toolCalls?.map((call) => ({ ...call, arguments: take(call.arguments) }));
      input.push({ role: "assistant", content, ...(toolCalls ? { toolCalls } : {}) });
    } else {
      input.push({ role: message.role, content: content ?? "" });
    }
  }
  return { input, inputTruncated: truncated || budget.truncated };
}

export function capOutput(output: string): { output: string; outputTruncated: boolean } {
  return output.length > RECORD_LIMITS.outputChars
    ? { output: truncate(output, RECORD_LIMITS.outputChars), outputTruncated: true }
    : { output, outputTruncated: false };
}

/** The record an execution starts with: nothing produced yet, everything to be filled in at settlement. */
export const SWEEP_SHARDS = 16;

export function runningExecution(fields: {
  id: string;
  model: string;
  provider: string;
  messages: readonly Message[];
  createdAt: number;
  ttlDays: number;
  requestId?: string;
  requestFingerprint?: string;
  promptId?: string;
  instance?: string;
  tools?: readonly { name: string }[];
  responseFormat?: { type: "json_object" | "json_schema" };
}): Execution {
  return {
    id: fields.id,
    status: "running",
    ...(fields.requestId ? { requestId: fields.requestId } : {}),
    ...(fields.requestFingerprint ? { requestFingerprint: fields.requestFingerprint } : {}),
    model: fields.model,
    provider: fields.provider,
    ...(fields.promptId ? { promptId: fields.promptId } : {}),
    ...(fields.instance ? { instance: fields.instance } : {}),
    ...capInput(fields.messages),
    ...(fields.tools ? { tools: fields.tools.map((t) => t.name) } : {}),
    ...(fields.responseFormat ? { responseFormat: fields.responseFormat.type } : {}),
    output: "",
    outputTruncated: false,
    finishReason: null,
    usage: null,
    cost: null,
    attempts: [],
    createdAt: new Date(fields.createdAt),
    completedAt: null,
    latencyMs: null,
    ttftMs: null,
    expireAt: new Date(fields.createdAt + fields.ttlDays * 86_400_000),
    sweepShard: Math.floor(Math.random() * SWEEP_SHARDS),
  };
}

export function finalStatus(category: ErrorCategory): ExecutionStatus {
  if (category === "timeout") return "timed_out";
  if (category === "cancelled") return "cancelled";
  return "failed";
}

/**
 * Tool calls as a record keeps them: their arguments share the output's budget
 * (RECORD_LIMITS.outputChars, what is left after the text), so that a model answering with
 * huge arguments cannot push the record past Firestore's 1 MiB. The client gets them whole.
 */
export function capToolCalls(calls: readonly ToolCall[], outputChars: number): { toolCalls: ToolCall[]; truncated: boolean } {
  const budget = textBudget(RECORD_LIMITS.outputChars - outputChars);
  const toolCalls = calls.map((call) => {
    const kept = budget.take(call.arguments);
    return kept === call.arguments ? call : { ...call, arguments: kept };
  });
  return { toolCalls, truncated: budget.truncated };
}
