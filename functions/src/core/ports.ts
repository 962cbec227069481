import type { ResolvedModel } from "./catalog.js";
import type { StoredMessage } from "./conversation.js";
import type { Execution, PriorRuns, RecordedMessage } from "./execution.js";
import type { Headroom, LimitSettings } from "./limits.js";
import type { InputKind, Message, ResponseFormat, ToolChoice, ToolSpec } from "./messages.js";
import type { GenerationParams } from "./request.js";
import type { PromptTemplate } from "./templates.js";
import type { ProviderUsage } from "./usage.js";

/** What the pipeline asks of a model provider: one streamed chat completion. */
export interface ModelRequest {
  model: ResolvedModel;
  messages: Message[];
  tools?: ToolSpec[];
  toolChoice?: ToolChoice;
  responseFormat?: ResponseFormat;
  params: GenerationParams;
  signal: AbortSignal;
}

/** A piece of a streamed tool call, as providers send them: the id and name come first, then the arguments in pieces. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  argumentsDelta: string;
}

export type ModelChunk =
  | { type: "delta"; text: string }
  | ({ type: "tool_call" } & ToolCallDelta)
  | { type: "finish"; reason: string }
  | { type: "usage"; usage: ProviderUsage };

/** Fetches media from an https URL for providers that need the bytes (adapters/media-fetcher.ts). */
export interface MediaFetcher {
  /** Why this URL may not be fetched (scheme, host, allow-list), checked without fetching; undefined when it may. */
  refusal(url: string): string | undefined;
  /**
   * Returns the content as a base64 data URL, or throws a `validation` ExecutionError when
   * the URL may not be fetched (not https, a host outside the allow-list, a redirect to one,
   * too big, too slow, or not of the expected kind).
   */
  fetchAsDataUrl(url: string, kind: Exclude<InputKind, "text">, signal: AbortSignal): Promise<string>;
}

export interface ModelClient {
  /**
   * Streams one completion. Throws what the transport throws (the pipeline classifies it);
   * when `signal` aborts it must throw (the signal's reason), never end quietly.
   */
  stream(request: ModelRequest): AsyncIterable<ModelChunk>;
}

/** A turn of a server-side conversation, as admission needs it (core/conversation.ts). */
export interface ConversationTurn {
  id: string;
  /** For a conversation this turn creates. */
  title: string;
  model: string;
  /** The newest this many stored messages are read, in the same round trip as the rest of admission. */
  historyLimit: number;
  /**
   * Once the store has read the history (oldest first) and the conversation's system message:
   * the stored messages sent with this turn, and the reservation, which counts them as sent.
   */
  window(history: readonly StoredMessage[], system: StoredMessage | undefined): { messages: StoredMessage[]; reserveMicros: number };
  /** The most `window` can reserve (a history that fills the context): what is held before the history is read. */
  maxReserveMicros: number;
  /** When the conversation and its messages are deleted by TTL. */
  expireAt: Date;
}

export interface AdmissionRequest {
  uid: string;
  /** The `running` record to create. Its id is derived from the requestId when there is one. */
  execution: Execution;
  reserveMicros: number;
  /**
   * With a conversation: one turn at a time (the turn holds it until `expireAt`), the history
   * read and windowed, the reservation from the window, and the record's `conversation` reference.
   */
  conversation?: ConversationTurn;
  /** When the reservation counts as abandoned. */
  expireAt: number;
  limits: LimitSettings;
  now: number;
}

/** What the store needs back at settlement to release what admission took. */
export interface AdmissionTicket {
  /** The lane of the user's state that holds the reservation (docs/scaling.md); 0 when absent. */
  lane?: number;
  /** What was reserved, released at settlement. */
  reservedMicros?: number;
  globalShard?: number;
  /**
   * The store's version of the `running` record (Firestore: its update time), so that
   * settlement can be retried safely: a repeat of a commit that already went through is
   * refused by the store instead of counting twice.
   */
  version?: unknown;
  /** The conversation this turn holds: where its messages go, and the conversation's version to commit over. */
  conversation?: {
    id: string;
    nextSeq: number;
    version?: unknown;
    /** Epoch ms the turn's messages are deleted by TTL. */
    expireAt: number;
    /** Nothing was stored in it at admission (this turn created it): if the turn stores nothing either, settlement removes it. */
    created?: boolean;
  };
}

/** What settlement did to the conversation of a turn. */
export interface FinishResult {
  /**
   * `appended`: the turn and the answer were stored; `released`: nothing to store (the turn did
   * not succeed); `removed`: the conversation this turn created was removed, as nothing was
   * stored; `skipped`: the turn had lost its hold (another turn took the conversation over, or it
   * was settled late), so the conversation was left alone, and a successful turn is not in it.
   */
  conversation?: "appended" | "released" | "removed" | "skipped";
}

export type Admission =
  | {
      kind: "admitted";
      ticket: AdmissionTicket;
      /** What is left for the user after this admission (the speculative start's basis). */
      headroom?: Headroom;
      /** When the requestId's earlier run is rerun: what it (and its own earlier runs) cost, now carried by the record. */
      prior?: PriorRuns;
      /** With a conversation: the stored messages sent with this turn (the window), oldest first. */
      history?: StoredMessage[];
    }
  | { kind: "replay"; execution: Execution };

export interface ExecutionStore {
  /**
   * Records an execution that was never admitted but still called a provider (a speculative
   * start aborted because admission refused, pipeline/speculation.ts): the finished record and
   * its cost in the usage ledger, in one commit. No reservation is involved.
   */
  recordUnadmitted(uid: string, execution: Execution): Promise<void>;
  /**
   * Atomically (one transaction): idempotency, rate and concurrency limits, budget
   * reservations (user and global), reclaiming abandoned reservations, and the `running`
   * record. Throws `rate_limited`, `budget_exceeded`, `in_progress` or `idempotency_conflict`.
   */
  admit(request: AdmissionRequest): Promise<Admission>;
  /**
   * Atomically (one commit): the final record, the usage ledger, and the release of the
   * reservations; with a conversation, its release and, when the execution succeeded, `turn`
   * appended (a failed turn leaves the conversation as it was). Idempotent: calling it again after a commit that went through (or whose
   * outcome is unknown) changes nothing more (and then reports nothing about the conversation).
   */
  finish(uid: string, execution: Execution, ticket: AdmissionTicket, turn?: RecordedMessage[]): Promise<FinishResult | void>;
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
