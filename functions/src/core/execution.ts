import type { Cost } from "./cost.js";
import type { ErrorCategory } from "./errors.js";
import type { ChatMessage } from "./templates.js";
import type { Usage } from "./usage.js";

export type ExecutionStatus = "running" | "succeeded" | "failed" | "cancelled" | "timed_out";

export interface AttemptRecord {
  model: string;
  provider: string;
  outcome: "succeeded" | "failed";
  category?: ErrorCategory;
  httpStatus?: number;
  latencyMs: number;
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
  input: ChatMessage[];
  inputTruncated: boolean;
  output: string;
  outputTruncated: boolean;
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
}

/** What `executePrompt` returns (API.md). */
export interface ExecutionResult {
  executionId: string;
  model: string;
  provider: string;
  output: string;
  finishReason: string;
  usage: Usage;
  cost: { usd: number; micros: number };
  latencyMs: number;
  ttftMs?: number;
  attempts: number;
}

/** Limits on what a record stores, so that one document stays far below Firestore's 1 MiB. */
export const RECORD_LIMITS = { inputChars: 50_000, outputChars: 100_000 } as const;

export function capInput(messages: readonly ChatMessage[]): { input: ChatMessage[]; inputTruncated: boolean } {
  let budget = RECORD_LIMITS.inputChars;
  let truncated = false;
  const input: ChatMessage[] = [];
  for (const message of messages) {
    if (budget <= 0) {
      truncated = true;
      break;
    }
    const content = message.content.length > budget ? message.content.slice(0, budget) : message.content;
    if (content.length < message.content.length) truncated = true;
    budget -= content.length;
    input.push({ role: message.role, content });
  }
  return { input, inputTruncated: truncated };
}

export function capOutput(output: string): { output: string; outputTruncated: boolean } {
  return output.length > RECORD_LIMITS.outputChars
    ? { output: output.slice(0, RECORD_LIMITS.outputChars), outputTruncated: true }
    : { output, outputTruncated: false };
}

/** The record an execution starts with: nothing produced yet, everything to be filled in at settlement. */
export function runningExecution(fields: {
  id: string;
  model: string;
  provider: string;
  messages: readonly ChatMessage[];
  createdAt: number;
  ttlDays: number;
  requestId?: string;
  requestFingerprint?: string;
  promptId?: string;
}): Execution {
  return {
    id: fields.id,
    status: "running",
    ...(fields.requestId ? { requestId: fields.requestId } : {}),
    ...(fields.requestFingerprint ? { requestFingerprint: fields.requestFingerprint } : {}),
    model: fields.model,
    provider: fields.provider,
    ...(fields.promptId ? { promptId: fields.promptId } : {}),
    ...capInput(fields.messages),
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
  };
}

export function finalStatus(category: ErrorCategory): ExecutionStatus {
  if (category === "timeout") return "timed_out";
  if (category === "cancelled") return "cancelled";
  return "failed";
}
