import { describe, expect, it } from "vitest";
import { conversationTitle, windowHistory, type StoredMessage } from "../../src/core/conversation.js";
import { ask, expectLedgerBalanced, provider, setup, useLocalProvider } from "../support/pipeline.js";

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

  it("reserves the history that is sent, not just the new turn", async () => {
    const { run, executions } = setup();
    await run(turn("x".repeat(20_000)));
    const spy: number[] = [];
    const admit = executions.admit.bind(executions);
    executions.admit = async (request) => {
      spy.push(request.conversation!.reserveFor(executions.conversations.get(`alice/${CID}`)!.doc.historyBytes));
      return admit(request);
    };
    await run(turn("short"));
    const alone = (await setup().run(ask("local-mini+deltas=0", "short"))).cost; // context: the new turn alone costs little
    expect(spy[0]).toBeGreaterThan(2_000); // 20 KB of history at $0.10/M tokens is ≥ 2 µ$ more than the turn alone
    expect(alone.micros).toBeLessThan(spy[0]!);
  });

  it("windows a long history to the model's context: the newest turns that fit, the system message kept", async () => {
    const { run, executions } = setup();
    await run({ ...turn("first"), messages: [{ role: "system", content: "be brief" }, { role: "user", content: "first" }] });
    for (let i = 0; i < 6; i++) await run(turn(`${i} ${"y".repeat(4_000)}`));
    const last = await run({ ...turn("last"), model: "local-mini+report=messages,key=win" });
    // local-mini: 32,768 context − 4,096 output; each stored turn ≈ 8 KB (question + echo): about three fit.
    const sent = Number(last.output.split("=")[1]);
    expect(sent).toBeLessThan(1 + 2 * 7 + 1);
    expect(sent).toBeGreaterThanOrEqual(1 + 2 + 1);
    const request = provider.current.requests("win")[0] as { messages: { role: string; content: string }[] };
    expect(request.messages[0]).toEqual({ role: "system", content: "be brief" });
    expect(request.messages[1]!.role).toBe("user");
    expect(request.messages.at(-1)).toEqual({ role: "user", content: "last" });
    expect(executions.conversations.get(`alice/${CID}`)!.doc.messageCount).toBe(2 + 1 + 2 * 7);
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
    expect(windowHistory(history, 4 * 6).map((x) => x.seq)).toEqual([4, 5]);
  });
});
