import type { Catalog, ProviderSpec, ResolvedModel } from "../catalog.js";
import type { LimitSettings } from "../limits.js";
import type { MediaPart, Message, ResponseFormat, ToolChoice, ToolSpec } from "../messages.js";
import type { Clock, ExecutionStore, Logger, MediaFetcher, ModelClient, PromptStore, ToolCallDelta } from "../ports.js";
import type { ExecuteRequest, GenerationParams } from "../request.js";
import type { RetryPolicy } from "../retry.js";
import type { SpeculationGate } from "./speculation.js";

export interface PipelineSettings {
  /** Used when neither the request nor the saved prompt names a model. */
  defaultModel?: string;
  /** Tried after the request's own fallbackModels. */
  defaultFallbackModels: string[];
  /** Ceiling for one execution, retries and fallbacks included; the client's timeoutMs can only lower it. */
  maxTimeoutMs: number;
  /**
   * How long the function may run in all (its `timeoutSeconds`): settlement is retried until
   * shortly before it, so that a Firestore outage after the answer loses nothing.
   */
  functionTimeoutMs?: number;
  retry: RetryPolicy;
  historyTtlDays: number;
  /** Days after its last turn (a message: after it was written) before a conversation is deleted by TTL. */
  conversationTtlDays: number;
  /** Put prompt and output text in logs (off in production). */
  logPrompts: boolean;
  limits: LimitSettings;
}

export interface PipelineDeps {
  catalog: Catalog;
  /** The client for a provider, or undefined when the provider has no key or URL here. */
  modelClient(provider: ProviderSpec): ModelClient | undefined;
  executions: ExecutionStore;
  prompts: PromptStore;
  /** Fetches https media for providers that need bytes; without it such requests are refused. */
  media?: MediaFetcher;
  /** Read per request, so that params are only evaluated at runtime. */
  settings(): PipelineSettings;
  newId(): string;
  logger: Logger;
  clock?: Clock;
  random?: () => number;
  /** This instance's speculative starts (speculation.ts); without it, every request waits for its admission. */
  speculation?: SpeculationGate;
}

export interface ExecuteOptions {
  uid: string;
  /** The instance running it, kept on the `running` record so that a cancel can find it. */
  instance?: string;
  /** Aborts the execution; its reason (an ExecutionError: cancelled, shutdown) becomes the outcome. */
  signal?: AbortSignal;
  /**
   * Called once the request is admitted (or found to be a repeat), before any output reaches
   * the client (on a speculative start the provider may already be answering). `run` is when this run was admitted (its record's `createdAt`, in ms): a rerun of
   * the same requestId is another run of the same executionId. Absent for a replay.
   */
  onAdmitted?(executionId: string, run?: number): void;
  /**
   * Called once, right before the first output (text or a tool call) reaches a streaming
   * client. Nothing reaches the client before output exists, so that a failure before it
   * can still be retried or fall back.
   */
  onStart?(info: { executionId: string; model: string; provider: string }): void;
  onDelta?(text: string): void;
  onToolCall?(delta: ToolCallDelta): void;
}

/** A model the execution may call, with the messages to send it. */
export interface Candidate {
  model: ResolvedModel;
  messages: Message[];
  /** https media its provider cannot fetch itself: fetched by us and sent as data URLs (media.ts). */
  inline?: MediaPart[];
  /** The same for images in a conversation's history (history.ts): one that cannot be fetched becomes a note. */
  historyInline?: MediaPart[];
}

/** Everything decided before anything is recorded (plan.ts). */
export interface Plan {
  request: ExecuteRequest;
  /** The conversation as the request gives it (a saved prompt rendered). */
  messages: Message[];
  tools?: ToolSpec[];
  toolChoice?: ToolChoice;
  responseFormat?: ResponseFormat;
  params: GenerationParams;
  candidates: Candidate[];
  settings: PipelineSettings;
  timeLimitMs: number;
}

/** Whether output reaches the client as it comes (then it can no longer be retried away). */
export function isStreaming(options: ExecuteOptions): boolean {
  return options.onDelta !== undefined || options.onToolCall !== undefined;
}
