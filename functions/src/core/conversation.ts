import { DEFAULT_IMAGE_TOKENS, type ResolvedModel } from "./catalog.js";
import { ExecutionError } from "./errors.js";
import type { RecordedMessage, RecordedPart } from "./execution.js";
import { capInput } from "./execution.js";
import { inputTokensBound } from "./limits.js";
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
  /** UTF-8 bytes of the text of every stored message (media not included): a size, for operators. */
  historyBytes: number;
  /** The seq the next stored message gets. */
  nextSeq: number;
  /**
   * The conversation's system message (its first stored message, when that is a system one),
   * kept here because admission reads this document anyway: it is sent with every turn however
   * long the conversation, and TTL never removes it while the conversation is in use. `null`:
   * none. Absent: a conversation from before it was kept here (then it is message 0).
   */
  system?: StoredMessage | null;
  /** The turn running now, and until when it holds the conversation (its reservation's expiry). */
  activeExecutionId?: string;
  activeUntil?: number;
  /** deleteConversation holds the conversation (as a turn would) while it removes it. */
  deleting?: boolean;
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
export function checkTurnFree(doc: Pick<ConversationDoc, "activeExecutionId" | "activeUntil" | "deleting"> | undefined, executionId: string, now: number): void {
  if (!doc?.activeExecutionId || doc.activeExecutionId === executionId) return;
  const until = doc.activeUntil ?? 0;
  if (until <= now) return;
  const message = doc.deleting
    ? "This conversation is being deleted."
    : "Another turn of this conversation is still running; send the next one when it has finished.";
  throw new ExecutionError("in_progress", message, { retryAfterMs: Math.min(1_000, until - now) });
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

/**
 * UTF-8 bytes of a stored message's text, tool calls included (what the conversation's
 * `historyBytes` adds up). Media parts count nothing here: what they cost is bounded per part,
 * per model, when they are sent (renderStored).
 */
export function storedBytes(message: RecordedMessage): number {
  let text = message.role === "tool" ? message.content + message.toolCallId : "";
  if (message.role !== "tool") {
    if (typeof message.content === "string") text += message.content;
    else if (message.content) for (const part of message.content) if (part.type === "text") text += part.text;
    if (message.role === "assistant") for (const call of message.toolCalls ?? []) text += call.id + call.name + call.arguments;
  }
  return Buffer.byteLength(text, "utf8") + 4;
}

/** One model a turn may call, as the history's window sees it. */
export interface HistoryTarget {
  model: ResolvedModel;
  /** Input tokens the history may take on it: its context window less the new turn, tools and the most output it may write. */
  budget: number;
  /** Images the history may add: a request carries at most MEDIA_LIMITS.mediaParts media parts, the new turn's included. */
  mediaSlots: number;
}

/** A stored message as one model gets it, and a true upper bound of its input tokens on that model. */
export interface RenderedMessage {
  message: Message;
  tokens: number;
  /** Images it carries (each counts against the request's media parts). */
  images: number;
}

/** What stands in for a stored part that is not sent again (docs/api.md, "Conversations"). */
const NOTE_UNFETCHED = "[image sent earlier; it could not be fetched again]";

/** The text that stands in for an image that was sent earlier but could not be fetched again for a provider that needs the bytes. */
export function unfetchedNote(): Part {
  return { type: "text", text: NOTE_UNFETCHED };
}

function mediaLabel(media: MediaReference): string {
  const kind = media.type === "image" ? "image" : media.mimeType?.startsWith("audio/") ? "audio" : "file";
  return `${kind}${media.mimeType ? ` ${media.mimeType}` : ""}${media.name !== undefined ? ` "${media.name}"` : ""}`;
}

/**
 * A stored part as one model gets it back. Text as it is. An https image to a model that takes
 * images, while the request has room for one more: itself (the pipeline fetches it for providers
 * that need the bytes). Anything else becomes a short note in its place: a data URL (its bytes
 * were not kept), an image to a model that does not take images or past the media-part limit, and
 * every file and audio part, whose size in tokens has no bound the server could check before
 * sending it (a PDF can fill a context window), so that it can never push a turn past the context.
 */
function renderPart(part: RecordedPart, model: ResolvedModel, slots: number): { part: Part; images: number } {
  if (part.type === "text") return { part, images: 0 };
  const media = part as MediaReference;
  const note = (text: string) => ({ part: { type: "text" as const, text: `[${mediaLabel(media)} ${text}]` }, images: 0 });
  if (media.url === undefined) {
    const size = media.bytes !== undefined ? `, ${Math.ceil(media.bytes / 1024)} KB` : "";
    return { part: { type: "text", text: `[${media.type}${media.mimeType ? ` ${media.mimeType}` : ""}${size} sent earlier as inline data; not kept]` }, images: 0 };
  }
  if (media.type !== "image") return note("sent earlier; not sent again");
  if (!model.capabilities.input.includes("image")) return note("sent earlier; this model does not take images");
  if (slots <= 0) return note("sent earlier; not sent again");
  return { part: { type: "image", url: media.url, ...(media.detail ? { detail: media.detail } : {}) }, images: 1 };
}

/**
 * A stored message as one model gets it: its parts by renderPart, and for a model without tool
 * calling, the tool exchange as text (a call as a note in the assistant's message, a result as a
 * user message), so that a conversation can switch to any model. `toolNames`: call id → name.
 */
export function renderStored(message: RecordedMessage, model: ResolvedModel, slots: number, toolNames: ReadonlyMap<string, string>): RenderedMessage {
  let images = 0;
  const parts = (content: string | RecordedPart[]): string | Part[] =>
    typeof content === "string"
      ? content
      : content.map((p) => {
          const rendered = renderPart(p, model, slots - images);
          images += rendered.images;
          return rendered.part;
        });
  let out: Message;
  if (message.role === "tool") {
    out = model.capabilities.tools
      ? { role: "tool", toolCallId: message.toolCallId, content: message.content }
      : { role: "user", content: `[${toolNames.get(message.toolCallId) ?? "tool"} returned: ${message.content}]` };
  } else if (message.role === "assistant") {
    const content = message.content === null ? null : parts(message.content);
    if (!message.toolCalls || model.capabilities.tools) out = { role: "assistant", content, ...(message.toolCalls ? { toolCalls: message.toolCalls } : {}) };
    else {
      const calls = message.toolCalls.map((call) => ({ type: "text" as const, text: `[called ${call.name}(${call.arguments})]` }));
      out = { role: "assistant", content: [...(content === null ? [] : typeof content === "string" ? [{ type: "text" as const, text: content }] : content), ...calls] };
    }
  } else {
    out = { role: message.role, content: parts(message.content) } as Message;
  }
  // An image that cannot be fetched again is replaced by a note: the bound covers whichever is longer.
  const imageTokens = model.spec.imageTokens ?? DEFAULT_IMAGE_TOKENS;
  const unfetched = Math.max(0, Buffer.byteLength(NOTE_UNFETCHED, "utf8") - imageTokens);
  return { message: out, tokens: inputTokensBound({ messages: [out] }, model) + images * unfetched, images };
}

/** Tool call ids → names, from the assistant messages of a history. */
export function toolNamesOf(history: readonly RecordedMessage[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of history) if (m.role === "assistant") for (const call of m.toolCalls ?? []) names.set(call.id, call.name);
  return names;
}

/**
 * A window of stored messages as one model gets it, with a true upper bound of its input tokens
 * there. Images take the request's free media slots newest first, as windowHistory counted them.
 */
export function renderHistory(window: readonly StoredMessage[], model: ResolvedModel, mediaSlots: number): { messages: Message[]; tokens: number } {
  const names = toolNamesOf(window);
  const messages: Message[] = new Array(window.length);
  let tokens = 0;
  let slots = mediaSlots;
  for (let i = window.length - 1; i >= 0; i--) {
    const system = i === 0 && window[0]!.role === "system";
    const rendered = renderStored(window[i]!, model, system ? 0 : slots, names);
    messages[i] = rendered.message;
    tokens += rendered.tokens;
    slots -= rendered.images;
  }
  return { messages, tokens };
}

/**
 * The stored messages sent with a new turn: the conversation's system message always, then the
 * newest stored messages that fit every target model (each counted as renderStored sends it to
 * that model: text as UTF-8 bytes, images at the model's bound, notes as their text; a true upper
 * bound of tokens), never starting inside a tool exchange (a tool result without its call is
 * refused by providers). `history` is oldest first; `system`, when given, is one of the stored
 * messages (the conversation document keeps it) and is not counted twice if `history` has it too.
 */
export function windowHistory(history: readonly StoredMessage[], system: StoredMessage | undefined, targets: readonly HistoryTarget[]): StoredMessage[] {
  const names = toolNamesOf(history);
  const left = targets.map((t) => t.budget - (system ? renderStored(system, t.model, 0, names).tokens : 0));
  const slots = targets.map((t) => t.mediaSlots);
  const rest = system ? history.filter((m) => m.seq !== system.seq) : history;
  let start = rest.length;
  for (let i = rest.length - 1; i >= 0; i--) {
    const costs = targets.map((t, k) => renderStored(rest[i]!, t.model, slots[k]!, names));
    if (costs.some((cost, k) => cost.tokens > left[k]!)) break;
    costs.forEach((cost, k) => {
      left[k]! -= cost.tokens;
      slots[k]! -= cost.images;
    });
    start = i;
  }
  // Start at a user message: what comes before the first kept user message would be cut off from its context.
  while (start < rest.length && rest[start]!.role !== "user") start++;
  return [...(system ? [system] : []), ...rest.slice(start)];
}

/**
 * Whether the newest messages read agree with the conversation document read alongside (they
 * are two reads, not one snapshot): the newest read is the document's last seq. When not, a
 * turn that settled between the two reads is missing from the history, and it is read again.
 */
export function historyAgrees(history: readonly StoredMessage[], doc: Pick<ConversationDoc, "nextSeq">): boolean {
  return (history.at(-1)?.seq ?? -1) >= doc.nextSeq - 1;
}

/** The system message a conversation keeps on its document once `appended` are its first messages. */
export function systemOf(nextSeq: number, appended: readonly StoredMessage[]): StoredMessage | undefined {
  return nextSeq === 0 && appended[0]?.role === "system" ? appended[0] : undefined;
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
    system: null,
    expireAt: turn.expireAt,
  };
}
