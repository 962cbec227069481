import type { DocumentData, DocumentSnapshot, Firestore, QueryDocumentSnapshot, Timestamp, WriteBatch } from "firebase-admin/firestore";
import { checkTurnFree, CONVERSATION_LIMITS, newConversation, storedBytes, systemOf, type ConversationDoc, type StoredMessage } from "../core/conversation.js";
import { ExecutionError } from "../core/errors.js";
import type { RecordedMessage } from "../core/execution.js";
import type { ConversationTurn } from "../core/ports.js";
import { untilCommitted } from "./optimistic.js";

/**
 * Conversations in Firestore (docs/data-model.md):
 *   users/{uid}/conversations/{conversationId}                  title, model, counts, the running turn
 *   users/{uid}/conversations/{conversationId}/messages/{seq}   one stored message, seq zero-padded
 * The execution store (executions-repo.ts) locks a conversation at admission and appends a
 * turn at settlement, in the same commits as the execution's own writes; this module holds
 * the shapes, and the list and delete operations of the callables.
 */
export const conversationPaths = {
  conversation: (uid: string, id: string) => `users/${uid}/conversations/${id}`,
  messages: (uid: string, id: string) => `users/${uid}/conversations/${id}/messages`,
  /** Zero-padded so that document ids sort as seq does. */
  message: (uid: string, id: string, seq: number) => `users/${uid}/conversations/${id}/messages/${String(seq).padStart(10, "0")}`,
};

function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (value && typeof value === "object" && "toDate" in value) return (value as { toDate(): Date }).toDate();
  return new Date(0);
}

const count = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0);

export function conversationFromSnapshot(snapshot: DocumentSnapshot): ConversationDoc | undefined {
  const data = snapshot.data();
  if (!data) return undefined;
  return {
    title: String(data.title ?? ""),
    model: String(data.model ?? ""),
    createdAt: toDate(data.createdAt),
    updatedAt: toDate(data.updatedAt),
    messageCount: count(data.messageCount),
    lastExecutionId: typeof data.lastExecutionId === "string" ? data.lastExecutionId : null,
    historyBytes: count(data.historyBytes),
    nextSeq: count(data.nextSeq),
    ...(data.system === null ? { system: null } : data.system && typeof data.system === "object" ? { system: storedMessageFromData(data.system as DocumentData) } : {}),
    ...(typeof data.activeExecutionId === "string" ? { activeExecutionId: data.activeExecutionId } : {}),
    ...(typeof data.activeUntil === "number" ? { activeUntil: data.activeUntil } : {}),
    ...(data.deleting === true ? { deleting: true } : {}),
    ...(data.expireAt ? { expireAt: toDate(data.expireAt) } : {}),
  };
}

function storedMessageFromData({ expireAt: _expireAt, ...data }: DocumentData): StoredMessage {
  return { ...data, createdAt: toDate(data.createdAt) } as StoredMessage;
}

export function storedMessageFromSnapshot(snapshot: QueryDocumentSnapshot): StoredMessage {
  return storedMessageFromData(snapshot.data());
}

/** The newest `limit` messages, oldest first: one query, run alongside admission's reads. */
export async function loadHistory(firestore: Firestore, uid: string, id: string, limit: number): Promise<StoredMessage[]> {
  const snapshot = await firestore.collection(conversationPaths.messages(uid, id)).orderBy("seq", "desc").limit(limit).get();
  return snapshot.docs.map(storedMessageFromSnapshot).reverse();
}

/** One stored message, when it exists (TTL may have removed it). */
export async function loadMessage(firestore: Firestore, uid: string, id: string, seq: number): Promise<StoredMessage | undefined> {
  const snapshot = await firestore.doc(conversationPaths.message(uid, id, seq)).get();
  const data = snapshot.data();
  return data ? storedMessageFromData(data) : undefined;
}

/**
 * Admission's write: the turn holds the conversation until `until` (created at the first turn).
 * `system`: the system message found in the messages of a conversation from before it was kept
 * on the document, kept there from now on (null: it has none).
 */
export function holdConversation(
  snapshot: DocumentSnapshot,
  turn: ConversationTurn,
  executionId: string,
  until: number,
  now: number,
  system?: StoredMessage | null,
): DocumentData {
  const hold = {
    activeExecutionId: executionId,
    activeUntil: until,
    // Taking over from a delete that stopped half-way (its hold expired): the conversation goes on.
    ...(snapshot.get("deleting") === true ? { deleting: false } : {}),
    ...(system !== undefined ? { system } : {}),
  };
  return snapshot.exists ? hold : { ...newConversation(turn, now), ...hold };
}

/**
 * Settlement's writes: the conversation released, and with a successful execution its turn
 * appended (messages with the next seqs, counts, the model that answered, and the system message
 * when the turn is the conversation's first). A conversation this turn created that stores
 * nothing is removed: a failed first turn leaves no conversation behind. `version` is the
 * conversation as admission left it: if another turn took it over meanwhile (this one's hold
 * expired), the commit fails on it and nothing is written to it.
 */
export function settleConversation(
  batch: WriteBatch,
  firestore: Firestore,
  fields: {
    uid: string;
    id: string;
    nextSeq: number;
    executionId: string;
    model: string;
    at: Date;
    expireAt: Date;
    turn?: RecordedMessage[];
    created?: boolean;
  },
  deleteField: () => unknown,
  increment: (n: number) => unknown,
  version: Timestamp | undefined,
): "appended" | "released" | "removed" {
  const { uid, id, turn } = fields;
  const ref = firestore.doc(conversationPaths.conversation(uid, id));
  const release = { activeExecutionId: deleteField(), activeUntil: deleteField() };
  let update: DocumentData = release;
  if (turn && turn.length > 0) {
    const stored = turn.map((message, i) => ({ ...message, seq: fields.nextSeq + i, executionId: fields.executionId, createdAt: fields.at, expireAt: fields.expireAt }));
    stored.forEach((message) => batch.create(firestore.doc(conversationPaths.message(uid, id, message.seq)), message));
    const first = systemOf(fields.nextSeq, stored);
    update = {
      ...release,
      ...(first ? { system: { role: first.role, content: first.content, seq: first.seq, executionId: first.executionId, createdAt: first.createdAt } } : {}),
      model: fields.model,
      updatedAt: fields.at,
      lastExecutionId: fields.executionId,
      messageCount: increment(turn.length),
      historyBytes: increment(turn.reduce((sum, m) => sum + storedBytes(m), 0)),
      nextSeq: fields.nextSeq + turn.length,
      // A turn that succeeded keeps the conversation for another CONVERSATION_TTL_DAYS.
      expireAt: fields.expireAt,
    };
  } else if (fields.created) {
    // Only this turn holds it (one turn at a time), and it stores nothing: as if never started.
    if (version) batch.delete(ref, { lastUpdateTime: version });
    else batch.delete(ref);
    return "removed";
  }
  if (version) batch.update(ref, update, { lastUpdateTime: version });
  else batch.update(ref, update);
  return turn && turn.length > 0 ? "appended" : "released";
}

/** What `listConversations` answers per conversation. */
export interface ConversationSummary {
  conversationId: string;
  title: string;
  model: string;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
  lastExecutionId: string | null;
  running: boolean;
}

/** The caller's conversations, newest first, a page at a time (`startAfter`: the last conversationId of the previous page). */
export async function listConversations(
  firestore: Firestore,
  uid: string,
  options: { limit?: number; startAfter?: string },
): Promise<{ conversations: ConversationSummary[]; nextStartAfter: string | null }> {
  const limit = Math.min(options.limit ?? CONVERSATION_LIMITS.listDefault, CONVERSATION_LIMITS.listMax);
  let query = firestore.collection(`users/${uid}/conversations`).orderBy("updatedAt", "desc");
  if (options.startAfter) {
    const cursor = await firestore.doc(conversationPaths.conversation(uid, options.startAfter)).get();
    if (!cursor.exists) throw new ExecutionError("validation", "startAfter: not one of your conversations.");
    query = query.startAfter(cursor);
  }
  const snapshot = await query.limit(limit + 1).get();
  const now = Date.now();
  const conversations = snapshot.docs.slice(0, limit).map((d): ConversationSummary => {
    const doc = conversationFromSnapshot(d)!;
    return {
      conversationId: d.id,
      title: doc.title,
      model: doc.model,
      createdAt: doc.createdAt.toISOString(),
      updatedAt: doc.updatedAt.toISOString(),
      messageCount: doc.messageCount,
      lastExecutionId: doc.lastExecutionId,
      running: doc.activeExecutionId !== undefined && (doc.activeUntil ?? 0) > now,
    };
  });
  return { conversations, nextStartAfter: snapshot.docs.length > limit ? conversations.at(-1)!.conversationId : null };
}

/** How long deleteConversation holds a conversation from its last step (renewed with every batch). */
const DELETE_HOLD_MS = 60_000;

/**
 * Deletes a conversation and its messages, in batches of a few hundred (a conversation of
 * thousands of messages is a few commits), the conversation document last, so that a delete
 * interrupted half-way can simply be repeated. A conversation with a turn running is refused.
 * First it holds the conversation as a turn would (a precondition on the version it read), so
 * that no turn is admitted while its messages go: such a turn would lose its answer.
 */
export async function deleteConversation(firestore: Firestore, uid: string, id: string): Promise<{ conversationId: string; deletedMessages: number }> {
  const ref = firestore.doc(conversationPaths.conversation(uid, id));
  const holder = `delete-${Math.random().toString(36).slice(2, 12)}`;
  await untilCommitted(async () => {
    const snapshot = await ref.get();
    const doc = conversationFromSnapshot(snapshot);
    if (!doc) throw new ExecutionError("not_found", `conversationId: you have no conversation "${id}".`);
    const now = Date.now();
    try {
      checkTurnFree(doc, holder, now);
    } catch {
      const message = doc.deleting ? "This conversation is already being deleted." : "A turn of this conversation is running; delete it when the turn has finished.";
      throw new ExecutionError("in_progress", message, { retryAfterMs: 1_000 });
    }
    // A turn admitted (or settled) since the read fails the precondition: look again.
    await ref.update({ activeExecutionId: holder, activeUntil: now + DELETE_HOLD_MS, deleting: true }, { lastUpdateTime: snapshot.updateTime! });
  });
  let deleted = 0;
  for (;;) {
    const page = await firestore.collection(conversationPaths.messages(uid, id)).limit(CONVERSATION_LIMITS.deleteBatch).get();
    if (page.empty) break;
    const batch = firestore.batch();
    for (const message of page.docs) batch.delete(message.ref);
    batch.update(ref, { activeUntil: Date.now() + DELETE_HOLD_MS });
    await batch.commit();
    deleted += page.size;
  }
  await ref.delete();
  return { conversationId: id, deletedMessages: deleted };
}
