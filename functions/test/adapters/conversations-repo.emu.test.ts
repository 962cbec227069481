import { randomUUID } from "node:crypto";
import type { CollectionReference, Firestore, WriteBatch } from "firebase-admin/firestore";
import { describe, expect, it } from "vitest";
import { conversationPaths, deleteConversation } from "../../src/adapters/conversations-repo.js";
import { firestoreExecutionStore, paths } from "../../src/adapters/executions-repo.js";
import { firestore } from "../../src/adapters/firestore.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { firestorePromptStore } from "../../src/adapters/prompts-repo.js";
import { catalog } from "../../src/config/catalog.js";
import { computeCost } from "../../src/core/cost.js";
import type { ExecutionError } from "../../src/core/errors.js";
import { MemoryLogger } from "../../src/core/memory-stores.js";
import type { Clock } from "../../src/core/ports.js";
import { executePrompt, type ExecuteOptions, type PipelineDeps, type PipelineSettings } from "../../src/core/pipeline/index.js";
import { adminDb } from "../support/firebase.js";
import { stackEnv } from "../support/stack.js";

/**
 * The Firestore conversation store (executions-repo.ts, conversations-repo.ts) under the
 * pipeline, in this process, against the emulator: what needs a real Firestore (two reads that
 * are not one snapshot, preconditions, deletes) or reaching into it (stale reads, a paused delete).
 */

const settings: PipelineSettings = {
  defaultFallbackModels: [],
  maxTimeoutMs: 60_000,
  functionTimeoutMs: 12_000,
  retry: { maxRetries: 1, baseDelayMs: 10, maxDelayMs: 50 },
  historyTtlDays: 1,
  conversationTtlDays: 1,
  logPrompts: false,
  limits: { perMinute: 1_000, maxConcurrent: 1_000, defaultMonthlyBudgetUsd: null, globalMonthlyBudgetUsd: null, globalShards: 4, reservationGraceMs: 1_000 },
};

function instance(options: { db?: () => Promise<Firestore>; clock?: Clock } = {}) {
  const logger = new MemoryLogger();
  const deps: PipelineDeps = {
    catalog,
    modelClient: (p) => (p.id === "local" ? openAIModelClient(p, { baseUrl: stackEnv().providerUrl, apiKey: "" }) : undefined),
    executions: firestoreExecutionStore(options.db ?? firestore, { globalShards: 4 }),
    prompts: firestorePromptStore(firestore),
    settings: () => settings,
    newId: () => randomUUID().replaceAll("-", "").slice(0, 20),
    logger,
    ...(options.clock ? { clock: options.clock } : {}),
  };
  return { deps, logger, run: (uid: string, input: unknown, opts: Partial<ExecuteOptions> = {}) => executePrompt(deps, input, { uid, ...opts }) };
}

const ids = () => ({ uid: `conv-${randomUUID().slice(0, 8)}`, id: `c-${randomUUID().slice(0, 12)}` });
const say = (conversationId: string, content: string, model = "local-mini", extra: Record<string, unknown> = {}) => ({ model, conversationId, messages: [{ role: "user", content }], ...extra });

interface WireMessage {
  role: string;
  content: unknown;
}
/** What the local provider received for a scenario key. */
async function received(key: string): Promise<{ messages: WireMessage[] }[]> {
  const response = await fetch(`${stackEnv().providerUrl.replace(/\/v1$/, "")}/_requests?key=${key}`);
  return ((await response.json()) as { requests: { messages: WireMessage[] }[] }).requests;
}

const conversationDoc = async (uid: string, id: string) => (await adminDb().doc(conversationPaths.conversation(uid, id)).get()).data();
const storedCount = async (uid: string, id: string) => (await adminDb().collection(conversationPaths.messages(uid, id)).count().get()).data().count;

/** A Firestore whose method `name` is replaced for as long as `replace` says (the rest is the real one). */
function intercepted(db: Firestore, name: "collection" | "batch", replace: (original: (...args: never[]) => unknown) => (...args: never[]) => unknown): Firestore {
  const original = (db[name] as (...args: never[]) => unknown).bind(db);
  const replacement = replace(original);
  return new Proxy(db, {
    get(target, prop) {
      if (prop === name) return replacement;
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe("the conversation's system message", () => {
  it("is kept on the document and sent past the 200 messages read; a conversation from before that gets it from message 0", async () => {
    const { run } = instance();
    const { uid, id } = ids();
    await run(uid, { ...say(id, "t0"), messages: [{ role: "system", content: "be brief" }, { role: "user", content: "t0" }] });
    expect((await conversationDoc(uid, id))!.system).toMatchObject({ role: "system", content: "be brief", seq: 0 });
    // 210 more messages, written directly (as 105 turns would have), and message 0 removed as TTL does after 90 days.
    await writeMessages(uid, id, 3, 210);
    await adminDb().doc(conversationPaths.message(uid, id, 0)).delete();
    await run(uid, say(id, "next", `local-mini+key=${id}`));
    const sent = (await received(id))[0]!.messages;
    expect(sent[0]).toEqual({ role: "system", content: "be brief" });
    expect(sent).toHaveLength(1 + 200 + 1);

    // A conversation written before the system message was kept on the document (no `system` field).
    const legacy = ids();
    await adminDb().doc(conversationPaths.conversation(legacy.uid, legacy.id)).set({ title: "old", model: "local-mini", createdAt: new Date(), updatedAt: new Date(), messageCount: 211, lastExecutionId: "e", historyBytes: 0, nextSeq: 211 });
    await adminDb().doc(conversationPaths.message(legacy.uid, legacy.id, 0)).set({ role: "system", content: "be old", seq: 0, executionId: "e", createdAt: new Date() });
    await writeMessages(legacy.uid, legacy.id, 1, 210);
    await run(legacy.uid, say(legacy.id, "next", `local-mini+key=${legacy.id}`));
    expect((await received(legacy.id))[0]!.messages[0]).toEqual({ role: "system", content: "be old" });
    // Kept on the document from now on: message 0 is no longer needed.
    expect((await conversationDoc(legacy.uid, legacy.id))!.system).toMatchObject({ role: "system", content: "be old", seq: 0 });
  });
});

describe("admission", () => {
  it("reads the history again when it misses a turn the conversation document has (two reads, not one snapshot)", async () => {
    const { uid, id } = ids();
    await instance().run(uid, say(id, "one"));
    await instance().run(uid, say(id, "two"));
    // The next history query answers as if it had run before turn two settled (messages 0 and 1 only).
    let stale = 0;
    const db = intercepted(await firestore(), "collection", (original) => (path: string) => {
      const collection = (original as (p: string) => CollectionReference)(path);
      if (!path.endsWith("/messages") || stale > 0) return collection;
      stale++;
      return { orderBy: (field: string, direction: "desc") => collection.where("seq", "<", 2).orderBy(field, direction) };
    });
    const { data, record } = await (async () => {
      const result = await instance({ db: async () => db }).run(uid, say(id, "count", "local-mini+report=messages"));
      return { data: result, record: (await adminDb().doc(paths.execution(uid, result.executionId)).get()).data() };
    })();
    expect(stale).toBe(1);
    expect(data.output).toBe("messages=5");
    expect(record).toMatchObject({ conversation: { id, historyMessages: 4 } });
  });

  it("writes the conversation reference on the running record, and reserves the history's media at their bound (limits doc)", async () => {
    const { uid, id } = ids();
    const { run } = instance();
    const image = "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media";
    const pdf = "https://firebasestorage.googleapis.com/v0/b/app/o/report.pdf?alt=media";
    await run(uid, { ...say(id, "look"), messages: [{ role: "user", content: [{ type: "text", text: "look" }, { type: "image", url: image }, { type: "file", url: pdf, mimeType: "application/pdf" }] }] });
    let executionId = "";
    const key = `res-${id}`;
    const turn = run(uid, say(id, "short", `local-mini+deltas=8,interval=150,key=${key}`, { params: { maxTokens: 16 } }), { onAdmitted: (admitted) => (executionId = admitted) });
    await expect.poll(() => executionId).not.toBe("");
    const running = (await adminDb().doc(paths.execution(uid, executionId)).get()).data();
    const held = ((await adminDb().doc(paths.limits(uid)).get()).data()!.reservations as Record<string, { micros: number }>)[executionId]!.micros;
    const result = await turn;
    expect(running).toMatchObject({ status: "running", conversation: { id, historyMessages: 2 } });
    const price = catalog.resolve("local-mini")!.spec.price;
    expect(held).toBeGreaterThanOrEqual(computeCost(result.usage, price).micros);
    // Exactly the bound of what was sent: 4 a message, the text's bytes, 85 for the image.
    const sent = (await received(key))[0]!.messages;
    const bytes = (content: unknown) =>
      typeof content === "string" ? Buffer.byteLength(content) : (content as { text?: string }[]).reduce((sum, p) => sum + Buffer.byteLength(p.text ?? ""), 0);
    const images = (content: unknown) => (Array.isArray(content) ? content.filter((p: { type: string }) => p.type === "image_url").length : 0);
    const bound = sent.reduce((sum, m) => sum + 4 + bytes(m.content) + 85 * images(m.content), 0);
    expect(held).toBe(computeCost({ inputTokens: bound, outputTokens: 16, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: bound + 16, estimated: true }, price).micros);
  });
});

describe("settlement", () => {
  it("a turn that lost its hold to another turn is answered, not appended, and logged as such", async () => {
    const { uid, id } = ids();
    await instance().run(uid, say(id, "one"));
    // This instance's clock is ten minutes behind: its turn's hold (and reservation) expire at once.
    const late = instance({ clock: { now: () => Date.now() - 600_000 } });
    let admitted = false;
    const slow = late.run(uid, say(id, "slow", "local-mini+deltas=8,interval=150"), { onAdmitted: () => (admitted = true) });
    await expect.poll(() => admitted).toBe(true);
    await instance().run(uid, say(id, "took over"));
    const answer = await slow;
    expect(answer.output).toContain("alpha");
    expect(await storedCount(uid, id)).toBe(4);
    expect((await conversationDoc(uid, id))!.lastExecutionId).not.toBe(answer.executionId);
    expect(late.logger.entries.find((e) => e.message === "conversation.turn_not_appended")).toMatchObject({
      level: "warn",
      fields: { executionId: answer.executionId, conversationId: id, reason: "hold_lost" },
    });
  });

  it("a failed first turn removes the conversation it created, in the settling commit", async () => {
    const { uid, id } = ids();
    const error = await instance()
      .run(uid, say(id, "boom", "local-mini+fail=auth"))
      .catch((e: unknown) => e as ExecutionError);
    expect(error).toMatchObject({ category: "provider_auth" });
    expect(await conversationDoc(uid, id)).toBeUndefined();
    expect((await adminDb().doc(paths.execution(uid, error.executionId!)).get()).data()).toMatchObject({ status: "failed", conversation: { id, historyMessages: 0 } });
  });
});

describe("deleteConversation", () => {
  it("holds the conversation while it deletes: a turn in between is refused, not admitted to lose its answer", async () => {
    const { uid, id } = ids();
    await instance().run(uid, say(id, "hello"));
    await writeMessages(uid, id, 2, 500);
    // The delete pauses after its first batch of messages.
    let release!: () => void;
    const paused = new Promise<void>((resolve) => (release = resolve));
    let batches = 0;
    const db = intercepted(await firestore(), "batch", (original) => () => {
      const batch = (original as () => WriteBatch)();
      const commit = batch.commit.bind(batch);
      batch.commit = async () => {
        const result = await commit();
        if (++batches === 1) await paused;
        return result;
      };
      return batch;
    });
    const deleting = deleteConversation(db, uid, id);
    await expect.poll(() => batches).toBe(1);
    const refused = await instance()
      .run(uid, say(id, "in between"))
      .catch((e: unknown) => e as ExecutionError);
    expect(refused).toMatchObject({ category: "in_progress", message: "This conversation is being deleted.", retryable: true });
    release();
    expect(await deleting).toEqual({ conversationId: id, deletedMessages: 502 });
    expect(await conversationDoc(uid, id)).toBeUndefined();
    expect(await storedCount(uid, id)).toBe(0);
  });
});

/** `count` more alternating user/assistant messages from seq `from`, written directly, and the document's counts to match. */
async function writeMessages(uid: string, id: string, from: number, count: number): Promise<void> {
  for (let start = 0; start < count; start += 400) {
    const batch = adminDb().batch();
    for (let i = start; i < Math.min(count, start + 400); i++) {
      const seq = from + i;
      batch.set(adminDb().doc(conversationPaths.message(uid, id, seq)), { role: i % 2 === 0 ? "user" : "assistant", content: `m${seq}`, seq, executionId: "e", createdAt: new Date() });
    }
    await batch.commit();
  }
  await adminDb().doc(conversationPaths.conversation(uid, id)).update({ nextSeq: from + count, messageCount: from + count });
}
