import { describe, expect, it } from "vitest";
import { executeRequestSchema, LIMITS, parseOrThrow } from "../../src/core/request.js";

const ok = { messages: [{ role: "user", content: "hi" }] };
const parse = (input: unknown) => parseOrThrow(executeRequestSchema, input);
const rejection = (input: unknown): string => {
  try {
    parse(input);
  } catch (error) {
    expect(error).toMatchObject({ category: "validation", code: "invalid-argument" });
    return (error as Error).message;
  }
  throw new Error("expected a validation error");
};

describe("executeRequestSchema", () => {
  it("accepts the documented shape", () => {
    expect(
      parse({
        requestId: "req_12345678",
        model: "local-mini",
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "hi" },
        ],
        params: { temperature: 0.2, maxTokens: 100, topP: 0.9, stop: ["\n"] },
        fallbackModels: ["local-pro"],
        timeoutMs: 5_000,
      }),
    ).toMatchObject({ model: "local-mini" });
    expect(parse({ promptId: "greeting", variables: { name: "Ada", n: 2, formal: true } })).toMatchObject({ promptId: "greeting" });
  });

  it.each([
    [{ ...ok, extra: 1 }, 'request: unknown field "extra"'],
    [{ ...ok, params: { temperature: 1, seed: 3 } }, 'params: unknown field "seed"'],
    [{ messages: [{ role: "user", content: "x", name: "bob" }] }, 'messages[0]: unknown field "name"'],
    [{}, "messages: send exactly one of messages or promptId"],
    [{ ...ok, promptId: "p" }, "messages: send exactly one of messages or promptId"],
    [{ messages: [] }, "messages: "],
    [{ messages: [{ role: "tool", content: "x" }] }, "messages[0].role"],
    [{ messages: [{ role: "system", content: "x" }] }, "messages: needs at least one user message"],
    [{ messages: Array.from({ length: LIMITS.messages + 1 }, () => ({ role: "user", content: "x" })) }, "messages: "],
    [{ messages: [{ role: "user", content: "x".repeat(LIMITS.messageChars + 1) }] }, "messages[0].content"],
    [{ messages: Array.from({ length: 5 }, () => ({ role: "user", content: "x".repeat(LIMITS.messageChars) })) }, "characters in all"],
    [{ ...ok, requestId: "short" }, "requestId: must be 8-128 characters"],
    [{ ...ok, requestId: "has spaces in it" }, "requestId"],
    [{ ...ok, params: { temperature: 3 } }, "params.temperature"],
    [{ ...ok, params: { maxTokens: 0 } }, "params.maxTokens"],
    [{ ...ok, params: { maxTokens: 1.5 } }, "params.maxTokens"],
    [{ ...ok, params: { stop: ["a", "b", "c", "d", "e"] } }, "params.stop"],
    [{ ...ok, fallbackModels: ["a", "b", "c", "d"] }, "fallbackModels"],
    [{ ...ok, timeoutMs: 10 }, "timeoutMs"],
    [{ ...ok, variables: { x: 1 } }, "variables: only allowed with promptId"],
    [{ promptId: "p", variables: { x: { nested: true } } }, "variables.x"],
    [{ promptId: "../other-user" }, "promptId"],
  ])("rejects %j naming the field", (input, expected) => {
    expect(rejection(input)).toContain(expected);
  });

  it("treats a missing body as empty", () => {
    expect(rejection(undefined)).toContain("messages: send exactly one");
  });
});
