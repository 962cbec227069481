import type { ResolvedModel } from "./catalog.js";
import type { Execution } from "./execution.js";
import type { LimitSettings } from "./limits.js";
import type { GenerationParams } from "./request.js";
import type { ChatMessage, PromptTemplate } from "./templates.js";
import type { ProviderUsage } from "./usage.js";

/** What the pipeline asks of a model provider: one streamed chat completion. */
export interface ModelRequest {
  model: ResolvedModel;
  messages: ChatMessage[];
  params: GenerationParams;
  signal: AbortSignal;
}

export type ModelChunk =
  | { type: "delta"; text: string }
  | { type: "finish"; reason: string }
  | { type: "usage"; usage: ProviderUsage };

export interface ModelClient {
  /**
   * Streams one completion. Throws what the transport throws (the pipeline classifies it);
   * when `signal` aborts it must throw (the signal's reason), never end quietly.
   */
  stream(request: ModelRequest): AsyncIterable<ModelChunk>;
}

export interface AdmissionRequest {
  uid: string;
  /** The `running` record to create. Its id is derived from the requestId when there is one. */
  execution: Execution;
  reserveMicros: number;
  /** When the reservation counts as abandoned. */
  expireAt: number;
  limits: LimitSettings;
  now: number;
}

/** What the store needs back at settlement to release what admission took. */
export interface AdmissionTicket {
  globalShard?: number;
}

export type Admission = { kind: "admitted"; ticket: AdmissionTicket } | { kind: "replay"; execution: Execution };

export interface ExecutionStore {
  /**
   * Atomically (one transaction): idempotency, rate and concurrency limits, budget
   * reservations (user and global), reclaiming abandoned reservations, and the `running`
   * record. Throws `rate_limited`, `budget_exceeded`, `in_progress` or `idempotency_conflict`.
   */
  admit(request: AdmissionRequest): Promise<Admission>;
  /** Atomically (one commit): the final record, the usage ledger, and the release of the reservations. */
  finish(uid: string, execution: Execution, ticket: AdmissionTicket): Promise<void>;
}

export interface PromptStore {
  get(uid: string, promptId: string): Promise<PromptTemplate | undefined>;
}

export interface Logger {
  info(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
