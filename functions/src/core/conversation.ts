import { ExecutionError } from "./errors.js";
import type { RecordedMessage, RecordedPart } from "./execution.js";
import { capInput } from "./execution.js";
import type { MediaReference } from "./media.js";
import { textOf, type Message, type Part, type ToolCall } from "./messages.js";
import type { ConversationTurn } from "./ports.js";
import { truncate } from "./truncate.js";

/**
 * Conversations kept on the server (API.md, "Conversations"): what a stored turn looks like,
 * which of the stored messages are sent with a new turn, and the one-turn-at-a-time rule.
 * Pure: the stores read and write them (adapters/conversations-repo.ts, memory-stores.ts).
 */

/** `users/{uid}/conversations/{id}/messages/{seq}`: a message as kept, media by reference. */
export type StoredMessage = RecordedMessage & { seq: number; executionId: string; createdAt: Date };

/** `users/{uid}/conversations/{id}`. */
export interface ConversationDoc {
  title: string;
  model: string;
  createdAt: Date;
  updatedAt: Date;
  messageCount: number;
  lastExecutionId: string | null;
  /** UTF-8 bytes of every stored message: what the budget reservation bounds the history by. */
  historyBytes: number;
  /** The seq the next stored message gets. */
  nextSeq: number;
  /** The turn running now, and until when it holds the conversation (its reservation's expiry). */
  activeExecutionId?: string;
  activeUntil?: number;
  expireAt?: Date;
}

export const CONVERSATION_LIMITS = {
  /** Stored messages read for one turn, newest first (then windowed to the model's context). */
  historyMessages: 200,
  titleChars: 80,
  /** Characters of one stored message's text (a Firestore document holds at most 1 MiB). */
  messageChars: 200_000,
  listDefault: 20,
  listMax: 100,
  /** Messages deleted per batch by deleteConversation. */
  deleteBatch: 400,
} as const;

/** A title from the first user message: its text, whitespace collapsed, trimmed to 80 characters. */
export function conversationTitle(messages: readonly Message[]): string {
  const first = messages.find((m) => m.role === "user");
  const text = (first ? textOf(first) : "").replace(/\s+/g, " ").trim();
  if (text === "") return "New conversation";
  return text.length <= CONVERSATION_LIMITS.titleChars ? text : `${truncate(text, CONVERSATION_LIMITS.titleChars - 1).trimEnd()}…`;
}

/** Throws `in_progress` when another turn holds the conversation; an expired hold (its instance died) does not count. */
export function checkTurnFree(doc: Pick<ConversationDoc, "activeExecutionId" | "activeUntil"> | undefined, executionId: string, now: number): void {
  if (!doc?.activeExecutionId || doc.activeExecutionId === executionId) return;
  const until = doc.activeUntil ?? 0;
  if (until <= now) return;
  throw new ExecutionError("in_progress", "Another turn of this conversation is still running; send the next one when it has finished.", {
    retryAfterMs: Math.min(1_000, until - now),
  });
}

/** What a turn stores: the new messages and the answer, as records keep messages (no data-URL bytes). */
export function storedTurn(turn: readonly Message[], answer: { text: string; toolCalls?: ToolCall[] }): RecordedMessage[] {
  const messages: Message[] = [...turn, { role: "assistant", content: answer.text === "" && answer.toolCalls ? null : answer.text, ...(answer.toolCalls ? { toolCalls: answer.toolCalls } : {}) }];
  return messages.map((m) => capInput([m]).input[0]!).map(capStored);
}

function capStored(message: RecordedMessage): RecordedMessage {
  if (message.role === "tool" || typeof message.content !== "string") return message;
  const max = CONVERSATION_LIMITS.messageChars;
  return message.content.length <= max ? message : { ...message, content: truncate(message.content, max) };
}

/** UTF-8 bytes of a stored message's text, tool calls included (what the history's bound adds up). */
export function storedBytes(message: RecordedMessage): number {
  let text = message.role === "tool" ? message.content + message.toolCallId : "";
  if (message.role !== "tool") {
    if (typeof message.content === "string") text += message.content;
    else if (message.content) for (const part of message.content) text += part.type === "text" ? part.text : (part.url ?? "");
    if (message.role === "assistant") for (const call of message.toolCalls ?? []) text += call.id + call.name + call.arguments;
  }
  return Buffer.byteLength(text, "utf8") + 4;
}

/** A stored part as a model gets it back: an https URL as itself; a data URL's bytes were not kept, so a note says so. */
function resentPart(part: RecordedPart): Part {
  if (part.type === "text") return part;
  const media = part as MediaReference;
  if (media.url !== undefined) {
    return media.type === "image"
      ? { type: "image", url: media.url, ...(media.detail ? { detail: media.detail } : {}) }
      : { type: "file", url: media.url, mimeType: media.mimeType ?? "application/octet-stream", ...(media.name ? { name: media.name } : {}) };
  }
  const size = media.bytes !== undefined ? `, ${Math.ceil(media.bytes / 1024)} KB` : "";
  return { type: "text", text: `[${media.type}${media.mimeType ? ` ${media.mimeType}` : ""}${size} sent earlier as inline data; not kept]` };
}

/** A stored message as the pipeline's message type. */
export function fromStored(message: RecordedMessage): Message {
  if (message.role === "tool") return { role: "tool", toolCallId: message.toolCallId, content: message.content };
  const content = typeof message.content === "string" || message.content === null ? message.content : message.content.map(resentPart);
  if (message.role === "assistant") return { role: "assistant", content, ...(message.toolCalls ? { toolCalls: message.toolCalls } : {}) };
  return { role: message.role, content: content ?? "" };
}

/**
 * The stored messages sent with a new turn: the newest that fit `budgetBytes` (the model's
 * context window less the new turn, the tools and the output it may write, counted as UTF-8
 * bytes, a true upper bound of tokens), the conversation's system message always kept, and
 * never starting inside a tool exchange (a tool result without its call is refused by
 * providers). `history` is oldest first.
 */
export function windowHistory(history: readonly StoredMessage[], budgetBytes: number): StoredMessage[] {
  const system = history[0]?.role === "system" ? history[0] : undefined;
  let budget = budgetBytes - (system ? storedBytes(system) : 0);
  let start = history.length;
  for (let i = history.length - 1; i >= (system ? 1 : 0); i--) {
    const bytes = storedBytes(history[i]!);
    if (bytes > budget) break;
    budget -= bytes;
    start = i;
  }
  // Start at a user message: what comes before the first kept user message would be cut off from its context.
  while (start < history.length && history[start]!.role !== "user") start++;
  return [...(system ? [system] : []), ...history.slice(start)];
}

/** The document a conversation starts with, at its first turn. */
export function newConversation(turn: ConversationTurn, now: number): ConversationDoc {
  return {
    title: turn.title,
    model: turn.model,
    createdAt: new Date(now),
    updatedAt: new Date(now),
    messageCount: 0,
    lastExecutionId: null,
    historyBytes: 0,
    nextSeq: 0,
    expireAt: turn.expireAt,
  };
}
