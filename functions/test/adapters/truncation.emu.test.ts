import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { ExecutionResult } from "../../src/core/execution.js";
import { adminDb, callable, executionRecord, signedInClient } from "../support/firebase.js";
import { functionUrl } from "../support/stack.js";

/**
 * Our own caps on stored text (the record's input and output, a conversation's title and
 * stored turns) never cut a surrogate pair in two: the Firestore emulator refuses a short
 * string with half a pair (the commit fails: a 500), and stores a long one with U+FFFD.
 */

type Client = Awaited<ReturnType<typeof signedInClient>>;
let client: Client;
beforeAll(async () => {
  client = await signedInClient();
});

const EMOJI = "😀";
/** Neither half of a pair alone, nor the replacement character Firestore would have put there. */
const intact = (text: unknown) => typeof text === "string" && text.isWellFormed() && !text.includes("\ufffd");
const execute = () => callable<unknown, ExecutionResult>(client.functions, "executePrompt");

/** The auditor's reproduction: the record's 50,000-character input cap falls inside the emoji. */
const reproduction = [
  { role: "user" as const, content: "a".repeat(49_990) },
  { role: "assistant" as const, content: "ok" },
  { role: "user" as const, content: `abcdefg${EMOJI}xyz` },
];

describe("truncation on code-point boundaries", () => {
  it("the callable: an input capped inside a surrogate pair is recorded, not a 500", async () => {
    const { data } = await execute()({ model: "local-mini", messages: reproduction });
    const record = await executionRecord(client.uid, data.executionId);
    expect(record).toMatchObject({ status: "succeeded", inputTruncated: true });
    expect(record!.input[2]).toEqual({ role: "user", content: "abcdefg" });
  });

  it("/v1/chat/completions: the same request succeeds", async () => {
    const response = await fetch(functionUrl("api", "/v1/chat/completions"), {
      method: "POST",
      headers: { authorization: `Bearer ${client.idToken}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "local-mini", messages: reproduction }),
    });
    expect(response.status).toBe(200);
    const record = await executionRecord(client.uid, response.headers.get("x-execution-id")!);
    expect(record!.input[2]).toEqual({ role: "user", content: "abcdefg" });
  });

  it("long records and outputs keep no half pair and no U+FFFD where they were cut", async () => {
    // The input cap (50,000) falls inside the emoji.
    const longInput = await execute()({ model: "local-mini", messages: [{ role: "user", content: `${"a".repeat(49_999)}${EMOJI}b` }] });
    const inputRecord = await executionRecord(client.uid, longInput.data.executionId);
    expect(inputRecord!.input[0].content).toBe("a".repeat(49_999));
    expect(intact(inputRecord!.output)).toBe(true);

    // The echo is "Echo: " + the message: the output cap (100,000) falls inside the emoji.
    const { data } = await execute()({ model: "local-mini", messages: [{ role: "user", content: `${"a".repeat(99_993)}${EMOJI}tail` }] });
    expect(data.output.endsWith(`${EMOJI}tail`)).toBe(true);
    const record = await executionRecord(client.uid, data.executionId);
    expect(record).toMatchObject({ status: "succeeded", outputTruncated: true });
    expect(record!.output).toBe(`Echo: ${"a".repeat(99_993)}`);
    expect(intact(record!.input[0].content)).toBe(true);
  });

  it("a conversation's title cut inside a pair, and its stored turn cut inside one", async () => {
    const conversationId = `trunc-${randomUUID()}`;
    const first = `${"c".repeat(78)}${EMOJI}${"d".repeat(49_919)}${EMOJI}`; // 80 then 50,000 units: both caps inside an emoji
    await execute()({ model: "local-mini", conversationId, messages: [{ role: "user", content: first }] });
    const conversation = (await adminDb().doc(`users/${client.uid}/conversations/${conversationId}`).get()).data();
    expect(conversation!.title).toBe(`${"c".repeat(78)}…`);
    const messages = (await adminDb().collection(`users/${client.uid}/conversations/${conversationId}/messages`).get()).docs.map((d) => d.data());
    expect(messages).toHaveLength(2);
    for (const message of messages) expect(intact(message.content)).toBe(true);
    expect(messages.find((m) => m.role === "user")!.content).toBe(`${"c".repeat(78)}${EMOJI}${"d".repeat(49_919)}`);
  });
});
