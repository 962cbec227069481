import type { ResolvedModel } from "./catalog.js";
import type { Execution } from "./execution.js";
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

export interface ExecutionStore {
  /** Writes the `running` record. */
  create(uid: string, execution: Execution): Promise<void>;
  /** Writes the final record, whole. Called after `create` has settled. */
  finish(uid: string, execution: Execution): Promise<void>;
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
