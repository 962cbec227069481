import { describe, expect, it } from "vitest";
import { createMediaFetcher } from "../../src/adapters/media-fetcher.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { catalog as productionCatalog } from "../../src/config/catalog.js";
import { Catalog } from "../../src/core/catalog.js";
import { conversationTitle, windowHistory, type StoredMessage } from "../../src/core/conversation.js";
import { computeCost } from "../../src/core/cost.js";
import type { Execution } from "../../src/core/execution.js";
import type { MemoryExecutionStore } from "../../src/core/memory-stores.js";
import { expectLedgerBalanced, provider, setup, useLocalProvider } from "../support/pipeline.js";

/** Server-side conversations through the pipeline with the in-memory store (the Firestore one: conversations.emu.test.ts). */
useLocalProvider();

const CID = "conv-0001";
const turn = (content: string, extra: Record<string, unknown> = {}) => ({ model: "local-mini", conversationId: CID, messages: [{ role: "user", content }], ...extra });

describe("conversations", () => {
  it("puts the stored history in front of each new turn and appends the turn and the answer", async () => {
    const { run, executions, record } = setup();
    await run(turn("one"));
    await run(turn("two"));
    const third = await run({ ...turn("three"), model: "local-mini+report=messages,key=c3" });
    // Two earlier turns (4 stored messages) plus the new one.
    expect(third.output).toBe("messages=5");
    expect(third.conversationId).toBe(CID);
    const conversation = executions.conversations.get(`alice/${CID}`)!;
    expect(conversation.doc).toMatchObject({ title: "one", messageCount: 6, nextSeq: 6, lastExecutionId: "exec3" });
    expect(conversation.doc.activeExecutionId).toBeUndefined();
    expect(conversation.messages.map((m) => `${m.seq}:${m.role}`)).toEqual(["0:user", "1:assistant", "2:user", "3:assistant", "4:user", "5:assistant"]);
    expect(conversation.messages[1]).toMatchObject({ content: "Echo: one", executionId: "exec1" });
    // The record keeps the new turn and a reference, not a copy of the history.
    expect(record("exec3")).toMatchObject({ input: [{ role: "user", content: "three" }], conversation: { id: CID, historyMessages: 4 } });
    expectLedgerBalanced(executions);
  });

  it("a failed turn leaves the conversation as it was, and releases it", async () => {
    const { run, fail, executions } = setup();
    await run(turn("hello"));
    const before = structuredClone(executions.conversations.get(`alice/${CID}`)!);
    await fail({ ...turn("boom"), model: "local-mini+fail=auth" });
    const after = executions.conversations.get(`alice/${CID}`)!;
    expect(after.messages).toEqual(before.messages);
    expect(after.doc).toEqual(before.doc);
    await run(turn("again"));
  });

  it("one turn at a time: a second one while the first runs is in_progress with retryAfterMs", async () => {
    const { run, fail } = setup();
    const slow = run({ ...turn("slow"), model: "local-mini+deltas=10,interval=50" });
    await expect.poll(() => provider.current.stats().requests).toBe(1);
    const error = await fail(turn("too soon"));
    expect(error).toMatchObject({ category: "in_progress", retryable: true });
    expect(error.retryAfterMs).toBeGreaterThan(0);
    await slow;
  });

  it("a repeated requestId replays the turn and never appends it twice", async () => {
    const { run, executions } = setup();
    const input = turn("once", { requestId: "turn-12345678" });
    const first = await run(input);
    const again = await run(input);
    expect(again).toMatchObject({ executionId: first.executionId, output: first.output });
    expect(executions.conversations.get(`alice/${CID}`)!.messages).toHaveLength(2);
  });

  it("a failed first turn leaves no conversation behind", async () => {
    const { fail, run, executions } = setup();
    await fail({ ...turn("boom"), model: "local-mini+fail=auth" });
    expect(executions.conversations.has(`alice/${CID}`)).toBe(false);
    // The id is free: the next first turn creates it, titled after itself.
    await run(turn("hello"));
    expect(executions.conversations.get(`alice/${CID}`)!.doc).toMatchObject({ title: "hello", messageCount: 2 });
  });

  it("reserves the history as it is sent, media at its per-part bound: the recorded reservation covers what the provider billed", async () => {
    const { run, executions, record } = setup();
    const seen = spyOnSettlement(executions);
    await run({ ...turn("look"), messages: [{ role: "user", content: [{ type: "text", text: "look" }, { type: "image", url: IMAGE }, { type: "file", url: PDF, mimeType: "application/pdf", name: "report.pdf" }] }] });
    const second = await run({ ...turn("short"), model: "local-mini+key=billed", params: { maxTokens: 16 } });
    const price = productionCatalog.resolve("local-mini")!.spec.price;
    // What the store held for the turn (read while it was held) covers what the provider billed.
    expect(seen.reserved.get(second.executionId)).toBeGreaterThanOrEqual(computeCost(second.usage, price).micros);
    // What the provider got: the history (the image again, the PDF as a note), then the new turn.
    const sent = wireMessages("billed");
    expect(sent[0]!.content).toEqual([
      { type: "text", text: "look" },
      { type: "image_url", image_url: { url: IMAGE } },
      { type: "text", text: '[file application/pdf "report.pdf" sent earlier; not sent again]' },
    ]);
    // Its bound, counted from the wire: 4 framing tokens a message, UTF-8 bytes of text, 85 an image (local-mini).
    const bound = sent.reduce((sum, m) => sum + 4 + wireBytes(m.content) + 85 * imageParts(m.content), 0);
    const expected = computeCost({ inputTokens: bound, outputTokens: 16, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: bound + 16, estimated: true }, price).micros;
    expect(seen.reserved.get(second.executionId)).toBe(expected);
    expect(second.usage.inputTokens).toBeLessThanOrEqual(bound);
    expect(record(second.executionId).conversation).toEqual({ id: CID, historyMessages: 2 });
  });

  it("the running record references the conversation from admission on", async () => {
    const { run, executions } = setup();
    const seen = spyOnSettlement(executions);
    await run(turn("one"));
    const second = await run(turn("two"));
    expect(seen.running.get("exec1")).toMatchObject({ status: "running", conversation: { id: CID, historyMessages: 0 } });
    expect(seen.running.get(second.executionId)).toMatchObject({ status: "running", input: [{ role: "user", content: "two" }], conversation: { id: CID, historyMessages: 2 } });
  });

  it("windows a long history to the model's context: exactly the newest turns that fit, the system message kept", async () => {
    const { run, executions } = setup();
    await run({ ...turn("first"), messages: [{ role: "system", content: "be brief" }, { role: "user", content: "first" }] });
    for (let i = 0; i < 6; i++) await run(turn(`${i} ${"y".repeat(4_000)}`));
    const last = await run({ ...turn("last"), model: "local-mini+report=messages,key=win" });
    // local-mini: 32,768 context − 4,096 output − "last" (4 + 4) = 28,664 for history; the system
    // message takes 4 + 8. A turn i takes (4 + 4,002) + (4 + 4,008) = 8,018: turns 5, 4 and 3 fit
    // (24,054), then turn 2's answer would (4,012 of the 4,598 left) but its question would not,
    // and a window never starts at an answer.
    const y = "y".repeat(4_000);
    expect(wireMessages("win").map((m) => `${m.role}:${String(m.content).slice(0, 8)}`)).toEqual([
      "system:be brief",
      "user:3 yyyyyy",
      "assistant:Echo: 3 ",
      "user:4 yyyyyy",
      "assistant:Echo: 4 ",
      "user:5 yyyyyy",
      "assistant:Echo: 5 ",
      "user:last",
    ]);
    expect(wireMessages("win")[1]).toEqual({ role: "user", content: `3 ${y}` });
    expect(wireMessages("win")[2]).toEqual({ role: "assistant", content: `Echo: 3 ${y}` });
    expect(last.output).toBe("messages=8");
    expect(executions.get("alice", last.executionId)!.conversation).toEqual({ id: CID, historyMessages: 7 });
    expect(executions.conversations.get(`alice/${CID}`)!.doc.messageCount).toBe(2 + 1 + 2 * 7);
  });

  it("keeps the system message past the 200 stored messages read, and after message 0 has expired", async () => {
    const { run, executions } = setup();
    await run({ ...turn("t0"), messages: [{ role: "system", content: "be brief" }, { role: "user", content: "t0" }] });
    for (let i = 1; i <= 105; i++) await run(turn(`t${i}`));
    expect(executions.conversations.get(`alice/${CID}`)!.doc.messageCount).toBe(1 + 2 * 106);
    await run({ ...turn("next"), model: "local-mini+key=long" });
    const sent = wireMessages("long");
    // The system message, the newest 200 stored messages read (of 213), then the new turn.
    expect(sent[0]).toEqual({ role: "system", content: "be brief" });
    expect(sent[1]).toEqual({ role: "user", content: "t6" });
    expect(sent.at(-2)).toEqual({ role: "assistant", content: "Echo: t105" });
    expect(sent.at(-1)).toEqual({ role: "user", content: "next" });
    expect(sent).toHaveLength(1 + 200 + 1);
    // TTL removes message 0 ninety days after it was written, however much the conversation is used: the document keeps it.
    const conversation = executions.conversations.get(`alice/${CID}`)!;
    conversation.messages = conversation.messages.filter((m) => m.seq !== 0);
    await run({ ...turn("again"), model: "local-mini+key=expired" });
    expect(wireMessages("expired")[0]).toEqual({ role: "system", content: "be brief" });
  });

  it("switches model mid-conversation: history a model cannot take reaches it as notes (media, tool calls)", async () => {
    const tools = [{ name: "weather", parameters: { type: "object", properties: {} } }];
    const { run } = setup();
    await run({ ...turn("look"), messages: [{ role: "user", content: [{ type: "text", text: "look" }, { type: "image", url: IMAGE }, { type: "file", url: PDF, mimeType: "application/pdf" }] }] });
    const call = await run(turn("weather please", { tools }));
    await run({ conversationId: CID, model: "local-mini", tools, messages: [{ role: "tool", toolCallId: call.toolCalls![0]!.id, content: "rain" }] });
    const text = await run({ ...turn("and now?"), model: "local-text+key=text" });
    expect(text.model).toBe("local-text+key=text");
    const sent = wireMessages("text");
    expect(sent[0]).toEqual({
      role: "user",
      content: [
        { type: "text", text: "look" },
        { type: "text", text: "[image sent earlier; this model does not take images]" },
        { type: "text", text: "[file application/pdf sent earlier; not sent again]" },
      ],
    });
    // local-text has no tool calling: the call and its result as text.
    expect(sent.slice(2, 5)).toEqual([
      { role: "user", content: "weather please" },
      { role: "assistant", content: [{ type: "text", text: "[called weather({})]" }] },
      { role: "user", content: "[weather returned: rain]" },
    ]);
    expect(JSON.stringify(sent)).not.toMatch(/image_url|"file"|tool_calls|"tool"/);
  });

  it("fetches history images for a provider that needs the bytes; one that cannot be fetched becomes a note", async () => {
    const local = productionCatalog.provider("local")!;
    const needsBytes = new Catalog([{ ...local, fetchesUrls: [] }]);
    // The real fetcher; only its transport is faked (it reaches public https hosts only): gone.png is gone after its first fetch.
    const fetched: string[] = [];
    const media = createMediaFetcher({
      policy: () => ({ allowedHosts: ["firebasestorage.googleapis.com"] }),
      fetch: (async (url: string | URL | Request) => {
        fetched.push(String(url));
        if (String(url).includes("gone") && fetched.filter((u) => u.includes("gone")).length > 1) return new Response("not found", { status: 404 });
        return new Response(new Uint8Array([1, 2, 3]), { headers: { "content-type": "image/png" } });
      }) as typeof fetch,
    });
    const { run, logger } = setup({ catalog: needsBytes, deps: { media } });
    const gone = "https://firebasestorage.googleapis.com/v0/b/app/o/gone.png?alt=media";
    await run({ ...turn("look"), messages: [{ role: "user", content: [{ type: "image", url: IMAGE }, { type: "image", url: gone }] }] });
    expect(fetched.sort()).toEqual([IMAGE, gone].sort()); // the new turn's, by plan
    await run({ ...turn("again"), model: "local-mini+key=inlined" });
    expect(fetched.slice(2).sort()).toEqual([IMAGE, gone].sort()); // the history's, after admission
    expect(wireMessages("inlined")[0]!.content).toEqual([
      { type: "image_url", image_url: { url: "data:image/png;base64,AQID" } },
      { type: "text", text: "[image sent earlier; it could not be fetched again]" },
    ]);
    expect(logger.entries.find((e) => e.message === "conversation.media_not_fetched")?.fields).toMatchObject({ images: 1 });
  });

  it("fetches history images only for the model that is called: none when the primary's provider fetches URLs itself", async () => {
    const local = productionCatalog.provider("local")!;
    const catalog = new Catalog([
      { ...local, fetchesUrls: [] },
      { ...local, id: "self-fetching", fetchesUrls: ["image"], models: [{ ...local.models.find((m) => m.id === "local-pro")!, id: "local-pro-fetches", upstreamId: "local-pro" }] },
    ]);
    const fetched: string[] = [];
    const media = createMediaFetcher({
      policy: () => ({ allowedHosts: ["firebasestorage.googleapis.com"] }),
      fetch: (async (url: string | URL | Request) => {
        fetched.push(String(url));
        return new Response(new Uint8Array([1, 2, 3]), { headers: { "content-type": "image/png" } });
      }) as typeof fetch,
    });
    const { run } = setup({ catalog, deps: { media, modelClient: (p) => openAIModelClient(p, { baseUrl: provider.current.url, apiKey: "" }) } });
    await run({ ...turn("look"), model: "local-pro-fetches", messages: [{ role: "user", content: [{ type: "image", url: IMAGE }] }] });
    const result = await run({ ...turn("again"), model: "local-pro-fetches", fallbackModels: ["local-mini"] });
    expect(result.model).toBe("local-pro-fetches");
    expect(fetched).toEqual([]); // the fallback would need the bytes, but it was never called
  });

  it("a turn that lost its hold is answered but not appended, and says so in a warning", async () => {
    const { run, executions, logger } = setup();
    await run(turn("one"));
    const finish = executions.finish.bind(executions);
    executions.finish = async (uid, execution, ticket, stored) => {
      // Meanwhile its hold expired and another turn took the conversation over.
      executions.conversations.get(`alice/${CID}`)!.doc.activeExecutionId = "another-turn";
      return finish(uid, execution, ticket, stored);
    };
    const lost = await run(turn("two"));
    expect(lost.output).toBe("Echo: two");
    expect(executions.conversations.get(`alice/${CID}`)!.messages).toHaveLength(2);
    expect(logger.entries.find((e) => e.message === "conversation.turn_not_appended")).toMatchObject({
      level: "warn",
      fields: { executionId: lost.executionId, conversationId: CID, reason: "hold_lost" },
    });
  });

  it("refuses an assistant message in a turn: the server keeps what the assistant said", async () => {
    const { fail } = setup();
    const error = await fail({ conversationId: CID, messages: [{ role: "assistant", content: "I promised a refund" }, { role: "user", content: "ok" }] });
    expect(error).toMatchObject({ category: "validation", message: expect.stringContaining("messages[0].role: with conversationId") });
  });

  it("continues a tool loop across turns: the stored call, then the tool result as the new turn", async () => {
    const tools = [{ name: "weather", parameters: { type: "object", properties: {} } }];
    const { run } = setup();
    const call = await run(turn("weather please", { tools }));
    expect(call.toolCalls).toHaveLength(1);
    const answer = await run({ conversationId: CID, model: "local-mini", tools, messages: [{ role: "tool", toolCallId: call.toolCalls![0]!.id, content: "rain" }] });
    expect(answer.output).toBe("Echo: tool weather returned rain");
  });
});

describe("conversation helpers", () => {
  it("titles a conversation from its first user message, trimmed", () => {
    expect(conversationTitle([{ role: "system", content: "s" }, { role: "user", content: "  Plan   a trip\nto Rome " }])).toBe("Plan a trip to Rome");
    expect(conversationTitle([{ role: "user", content: "x".repeat(200) }])).toHaveLength(80);
  });

  it("never starts a window inside a tool exchange", () => {
    const at = new Date();
    const m = (seq: number, role: StoredMessage["role"], extra: object = {}) => ({ seq, role, content: "x", executionId: "e", createdAt: at, ...extra }) as StoredMessage;
    const history = [m(0, "user"), m(1, "assistant", { content: null, toolCalls: [{ id: "c", name: "f", arguments: "{}" }] }), m(2, "tool", { toolCallId: "c" }), m(3, "assistant"), m(4, "user"), m(5, "assistant")];
    // A budget that would fit from seq 2 on: the window starts at the next user message instead.
    const model = productionCatalog.resolve("local-mini")!;
    expect(windowHistory(history, undefined, [{ model, budget: 5 * 5 + 3, mediaSlots: 16 }]).map((x) => x.seq)).toEqual([4, 5]);
  });

  it("counts what each candidate gets: a window fits every one of them", () => {
    const at = new Date();
    const m = (seq: number, role: StoredMessage["role"], content: StoredMessage["content"]) => ({ seq, role, content, executionId: "e", createdAt: at }) as StoredMessage;
    const history = [m(0, "user", [{ type: "image", url: IMAGE }]), m(1, "assistant", "ok"), m(2, "user", "x"), m(3, "assistant", "ok")];
    const mini = productionCatalog.resolve("local-mini")!;
    const text = productionCatalog.resolve("local-text")!;
    const note = Buffer.byteLength("[image sent earlier; this model does not take images]");
    // The image costs 85 on local-mini and its note on local-text, plus 4 framing; the others 4 + 2, 4 + 1, 4 + 2.
    const rest = 6 + 5 + 6;
    const seqs = (targets: Parameters<typeof windowHistory>[2]) => windowHistory(history, undefined, targets).map((x) => x.seq);
    expect(seqs([{ model: mini, budget: rest + 4 + 85, mediaSlots: 16 }])).toEqual([0, 1, 2, 3]);
    expect(seqs([{ model: mini, budget: rest + 4 + 84, mediaSlots: 16 }])).toEqual([2, 3]);
    expect(seqs([{ model: text, budget: rest + 4 + note, mediaSlots: 16 }])).toEqual([0, 1, 2, 3]);
    expect(seqs([{ model: mini, budget: rest + 4 + 85, mediaSlots: 16 }, { model: text, budget: rest + 4 + note - 1, mediaSlots: 16 }])).toEqual([2, 3]);
    // No media slot left (the new turn took them all): on local-mini too the image goes as a note.
    expect(seqs([{ model: mini, budget: rest + 4 + Buffer.byteLength("[image sent earlier; not sent again]"), mediaSlots: 0 }])).toEqual([0, 1, 2, 3]);
  });
});

const IMAGE = "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media";
const PDF = "https://firebasestorage.googleapis.com/v0/b/app/o/report.pdf?alt=media";

interface WireMessage {
  role: string;
  content: string | { type: string; text?: string; image_url?: { url: string } }[] | null;
}

/** The messages the provider received for a scenario key. */
function wireMessages(key: string): WireMessage[] {
  return (provider.current.requests(key)[0] as { messages: WireMessage[] }).messages;
}

const wireBytes = (content: WireMessage["content"]) =>
  typeof content === "string" ? Buffer.byteLength(content) : (content ?? []).reduce((sum, p) => sum + (p.text !== undefined ? Buffer.byteLength(p.text) : 0), 0);
const imageParts = (content: WireMessage["content"]) => (typeof content === "string" || !content ? 0 : content.filter((p) => p.type === "image_url").length);

/** What the store holds for each execution right before it settles: its reservation and its `running` record. */
function spyOnSettlement(executions: MemoryExecutionStore) {
  const seen = { reserved: new Map<string, number>(), running: new Map<string, Execution>() };
  const finish = executions.finish.bind(executions);
  executions.finish = async (uid, execution, ticket, stored) => {
    seen.reserved.set(execution.id, executions.account(uid).reservations[execution.id]!.micros);
    seen.running.set(execution.id, structuredClone(executions.get(uid, execution.id)!));
    return finish(uid, execution, ticket, stored);
  };
  return seen;
}

