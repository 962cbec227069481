import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { Timestamp } from "firebase-admin/firestore";
import { collection, connectFirestoreEmulator, getFirestore, onSnapshot, orderBy, query } from "firebase/firestore";
import OpenAI from "openai";
import { beforeAll, describe, expect, it } from "vitest";
import { conversationPaths } from "../../src/adapters/conversations-repo.js";
import { paths } from "../../src/adapters/executions-repo.js";
import { PROVIDER_FUNCTION_TIMEOUT_SECONDS } from "../../src/config/params.js";
import type { ExecutionResult } from "../../src/core/execution.js";
import { adminDb, callable, executionRecord, rejection, signedInClient } from "../support/firebase.js";
import { functionUrl, stackEnv } from "../support/stack.js";

/** Conversations kept on the server, through the Functions emulator, with the firebase SDK and the openai SDK. */

type Client = Awaited<ReturnType<typeof signedInClient>>;
let user: Client;
beforeAll(async () => {
  user = await signedInClient();
});

const newId = () => `conv-${randomUUID().slice(0, 12)}`;
const execute = (c: Client = user) => callable<unknown, ExecutionResult>(c.functions, "executePrompt");
const say = (conversationId: string, content: string, model = "local-mini") => ({ model, conversationId, messages: [{ role: "user", content }] });

async function stored(uid: string, conversationId: string) {
  const snapshot = await adminDb().collection(conversationPaths.messages(uid, conversationId)).orderBy("seq").get();
  return snapshot.docs.map((d) => d.data() as { role: string; content: unknown; seq: number; executionId: string });
}
const conversation = async (uid: string, id: string) => (await adminDb().doc(conversationPaths.conversation(uid, id)).get()).data();

describe("conversations through executePrompt (firebase SDK)", () => {
  it("three turns: the provider gets the history, the turns and answers are stored in order", async () => {
    const id = newId();
    await execute()(say(id, "Plan a trip to Rome"));
    await execute()(say(id, "in May"));
    const { data } = await execute()(say(id, "how many messages?", "local-mini+report=messages"));
    expect(data.output).toBe("messages=5");
    expect(data).toMatchObject({ conversationId: id });
    const messages = await stored(user.uid, id);
    expect(messages.map((m) => `${m.seq}:${m.role}:${typeof m.content === "string" ? m.content : ""}`)).toEqual([
      "0:user:Plan a trip to Rome",
      "1:assistant:Echo: Plan a trip to Rome",
      "2:user:in May",
      "3:assistant:Echo: in May",
      "4:user:how many messages?",
      "5:assistant:messages=5",
    ]);
    expect(await conversation(user.uid, id)).toMatchObject({ title: "Plan a trip to Rome", messageCount: 6, lastExecutionId: data.executionId });
    expect(await executionRecord(user.uid, data.executionId)).toMatchObject({
      input: [{ role: "user", content: "how many messages?" }],
      conversation: { id, historyMessages: 4 },
    });
  });

  it("a turn that fails leaves the conversation as it was", async () => {
    const id = newId();
    await execute()(say(id, "hello"));
    const before = [await conversation(user.uid, id), await stored(user.uid, id)];
    const error = await rejection(execute()(say(id, "boom", "local-mini+fail=auth")));
    expect(error.details).toMatchObject({ category: "provider_auth" });
    expect([await conversation(user.uid, id), await stored(user.uid, id)]).toEqual(before);
  });

  it("a new conversation whose first turn fails does not exist afterwards (not listed, no document)", async () => {
    const other = await signedInClient();
    const id = newId();
    const error = await rejection(execute(other)(say(id, "boom", "local-mini+fail=auth")));
    expect(error.details).toMatchObject({ category: "provider_auth" });
    expect(await conversation(other.uid, id)).toBeUndefined();
    const list = callable<unknown, { conversations: { conversationId: string }[] }>(other.functions, "listConversations");
    expect((await list({})).data.conversations).toEqual([]);
    // The id is still free: a first turn that succeeds creates it.
    await execute(other)(say(id, "hello"));
    expect((await list({})).data.conversations).toEqual([expect.objectContaining({ conversationId: id, title: "hello", messageCount: 2 })]);
  });

  it("two turns at once: one runs, the other is in_progress with retryAfterMs", async () => {
    // The emulator runs one request of a function at a time, so the second turn goes through
    // the api function (another worker), as two devices of one user would reach two instances.
    const id = newId();
    const first = execute()(say(id, "first", "local-mini+deltas=20,interval=100"));
    await expect.poll(async () => (await conversation(user.uid, id))?.activeExecutionId, { timeout: 20_000 }).toBeDefined();
    const openai = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: user.idToken, maxRetries: 0, defaultHeaders: { "x-conversation-id": id } });
    const error = await openai.chat.completions.create({ model: "local-mini", messages: [{ role: "user", content: "second" }] }).catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(409);
    expect((error as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({ type: "in_progress", retryable: true, retry_after_ms: expect.any(Number) });
    await first;
    expect((await stored(user.uid, id)).length).toBe(2);
  });

  it("a repeated requestId appends the turn once", async () => {
    const id = newId();
    const input = { ...say(id, "only once"), requestId: `rq-${randomUUID()}` };
    const first = await execute()(input);
    const again = await execute()(input);
    expect(again.data.executionId).toBe(first.data.executionId);
    expect((await stored(user.uid, id)).length).toBe(2);
  });

  it("a long conversation is windowed to the model's context", async () => {
    const id = newId();
    for (let i = 0; i < 6; i++) await execute()(say(id, `${i} ${"z".repeat(6_000)}`));
    const { data } = await execute()(say(id, "count", "local-mini+report=messages"));
    // 12 stored messages of ~6 KB; local-mini leaves 32,768 − 4,096 output − (4 + 5) for history. A
    // turn takes (4 + 6,002) + (4 + 6,008) = 12,018: the newest two fit (24,036), the next answer not.
    expect(data.output).toBe("messages=5");
    expect((await executionRecord(user.uid, data.executionId))!.conversation).toEqual({ id, historyMessages: 4 });
  });

  it("onSnapshot on the messages shows the new turn appear (the firebase Firestore SDK, under the rules)", async () => {
    const id = newId();
    await execute()(say(id, "hi"));
    const db = getFirestore(user.app);
    const [host, port] = stackEnv().firestoreHost.split(":");
    connectFirestoreEmulator(db, host!, Number(port));
    const seen: number[] = [];
    const unsubscribe = onSnapshot(query(collection(db, conversationPaths.messages(user.uid, id)), orderBy("seq")), (snapshot) => seen.push(snapshot.size));
    // The web SDK's first connection to the emulator can take a while on a busy machine.
    await expect.poll(() => seen.at(-1), { timeout: 15_000 }).toBe(2);
    await execute()(say(id, "again"));
    await expect.poll(() => seen.at(-1), { timeout: 15_000 }).toBe(4);
    unsubscribe();
    // Never 3: the new turn and the answer arrive in one commit.
    expect(seen).not.toContain(3);
  });

  it("listConversations (newest first, paginated) and deleteConversation (2,000 messages)", async () => {
    const other = await signedInClient();
    const ids = [newId(), newId(), newId()];
    for (const id of ids) await execute(other)(say(id, `about ${id}`));
    const list = callable<unknown, { conversations: { conversationId: string; title: string }[]; nextStartAfter: string | null }>(other.functions, "listConversations");
    const page1 = (await list({ limit: 2 })).data;
    expect(page1.conversations.map((c) => c.conversationId)).toEqual([ids[2], ids[1]]);
    expect(page1.nextStartAfter).toBe(ids[1]);
    const page2 = (await list({ limit: 2, startAfter: page1.nextStartAfter })).data;
    expect(page2).toEqual({ conversations: [expect.objectContaining({ conversationId: ids[0], title: `about ${ids[0]}` })], nextStartAfter: null });

    // A long conversation, written directly: 2,000 messages.
    const big = ids[0]!;
    for (let batch = 0; batch < 4; batch++) {
      const writes = adminDb().batch();
      for (let i = 0; i < 500; i++) {
        const seq = 2 + batch * 500 + i;
        writes.set(adminDb().doc(conversationPaths.message(other.uid, big, seq)), { role: "user", content: "x", seq, executionId: "e", createdAt: new Date() });
      }
      await writes.commit();
    }
    const remove = callable<unknown, { conversationId: string; deletedMessages: number }>(other.functions, "deleteConversation");
    expect((await remove({ conversationId: big })).data).toEqual({ conversationId: big, deletedMessages: 2_002 });
    expect(await stored(other.uid, big)).toEqual([]);
    expect(await conversation(other.uid, big)).toBeUndefined();
    expect((await list({})).data.conversations.map((c) => c.conversationId)).toEqual([ids[2], ids[1]]);
    const gone = await rejection(remove({ conversationId: big }));
    expect(gone.code).toBe("functions/not-found");
  });

  it("another user's conversation cannot be continued, listed or deleted", async () => {
    const id = newId();
    await execute()(say(id, "mine"));
    const intruder = await signedInClient();
    // Their own conversation with the same id is a different one: nothing of ours leaks into it.
    const { data } = await execute(intruder)(say(id, "count", "local-mini+report=messages"));
    expect(data.output).toBe("messages=1");
    expect((await stored(user.uid, id)).length).toBe(2);
    const gone = await rejection(callable(intruder.functions, "deleteConversation")({ conversationId: "conv-not-theirs" }));
    expect(gone.code).toBe("functions/not-found");
  });
});

describe("conversations through /v1 (openai SDK, X-Conversation-Id)", () => {
  it("three turns: only the new message is sent each time", async () => {
    const id = newId();
    const openai = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: user.idToken, maxRetries: 0, defaultHeaders: { "x-conversation-id": id } });
    expect((await openai.chat.completions.create({ model: "local-mini", messages: [{ role: "user", content: "one" }] })).choices[0]!.message.content).toBe("Echo: one");
    let streamed = "";
    for await (const chunk of await openai.chat.completions.create({ model: "local-mini", stream: true, messages: [{ role: "user", content: "two" }] })) {
      streamed += chunk.choices[0]?.delta.content ?? "";
    }
    expect(streamed).toBe("Echo: two");
    const third = await openai.chat.completions.create({ model: "local-mini+report=messages", messages: [{ role: "user", content: "three" }] });
    expect(third.choices[0]!.message.content).toBe("messages=5");
    expect((await stored(user.uid, id)).length).toBe(6);
  });
});

describe("a crash in the middle of a turn", () => {
  it("leaves the conversation usable once the turn's hold has expired", async () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const host = spawn(process.execPath, ["--import", "tsx", "scripts/functions-host.ts"], {
      cwd: root,
      env: { ...process.env, RESERVATION_GRACE_MS: "300" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    host.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise((resolve) => host.once("exit", resolve));
    await expect.poll(() => /listening on (\S+)/.exec(out)?.[1], { timeout: 30_000 }).toBeDefined();
    const url = /listening on (\S+)/.exec(out)![1]!;
    const id = newId();
    void fetch(`${url}/executePrompt`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.idToken}`, "content-type": "application/json" },
      // A time limit long enough that the instance is killed before it would end the turn itself.
      body: JSON.stringify({ data: { ...say(id, "stuck", "local-mini+fail=hang"), timeoutMs: 5_000 } }),
    }).catch(() => undefined);
    await expect.poll(async () => (await conversation(user.uid, id))?.activeExecutionId, { timeout: 20_000 }).toBeDefined();

    host.kill("SIGKILL");
    await exited;
    const error = await rejection(execute()(say(id, "too soon")));
    expect(error.details).toMatchObject({ category: "in_progress" });
    // The hold lasts as long as the turn's reservation: the function's 300 s timeout + the grace,
    // from the execution's start (its record's createdAt). Past it (moved into the past here
    // rather than waited for), the conversation takes turns again.
    const hold = await conversation(user.uid, id);
    const executionId = hold!.activeExecutionId as string;
    const limits = (await adminDb().doc(paths.limits(user.uid)).get()).data()!;
    const reservation = (limits.reservations as Record<string, { expireAt: number }>)[executionId]!;
    const createdAt = ((await executionRecord(user.uid, executionId))!.createdAt as Timestamp).toMillis();
    expect(reservation.expireAt - createdAt).toBe(PROVIDER_FUNCTION_TIMEOUT_SECONDS * 1_000 + 300);
    expect(hold!.activeUntil).toBe(reservation.expireAt);
    await adminDb().doc(conversationPaths.conversation(user.uid, id)).update({ activeUntil: Date.now() - 1 });
    const { data } = await execute()(say(id, "after the crash", "local-mini+report=messages"));
    expect(data.output).toBe("messages=1");
    expect((await stored(user.uid, id)).map((m) => m.content)).toEqual(["after the crash", "messages=1"]);
  });
});
