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
    [{ ...ok, params: { temperature: 1, bogus: 3 } }, 'params: unknown field "bogus"'],
    [{ messages: [{ role: "user", content: "x", name: "bob" }] }, 'messages[0]: unknown field "name"'],
    [{}, "messages: send exactly one of messages or promptId"],
    [{ ...ok, promptId: "p" }, "messages: send exactly one of messages or promptId"],
    [{ messages: [] }, "messages: "],
    [{ messages: [{ role: "tool", content: "x" }] }, "messages[0].toolCallId"],
    [{ messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
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

const png = "data:image/png;base64,iVBORw0KGgo=";
const user = (content: unknown) => ({ messages: [{ role: "user", content }] });

describe("executeRequestSchema: content parts, tools and response formats (v1.1)", () => {
  it("accepts parts, tool calls, tool results, tools, toolChoice and responseFormat", () => {
    const request = parse({
      messages: [
        { role: "system", content: [{ type: "text", text: "be brief" }] },
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            { type: "image", url: png, detail: "low" },
            { type: "image", url: "https://firebasestorage.googleapis.com/v0/b/x/o/a.png?alt=media" },
            { type: "file", url: "data:application/pdf;base64,JVBERi0=", mimeType: "application/pdf", name: "a.pdf" },
            { type: "file", url: "data:audio/wav;base64,UklGRg==", mimeType: "audio/wav" },
          ],
        },
        { role: "assistant", content: null, toolCalls: [{ id: "call_1", name: "lookup", arguments: '{"q":"x"}' }] },
        { role: "tool", toolCallId: "call_1", content: "42" },
      ],
      tools: [{ name: "lookup", description: "Looks up", parameters: { type: "object", properties: { q: { type: "string" } } } }],
      toolChoice: { name: "lookup" },
      responseFormat: { type: "json_schema", name: "answer", schema: { type: "object" }, strict: true },
      params: { seed: 7, presencePenalty: 0.5, frequencyPenalty: -0.5, reasoningEffort: "low", parallelToolCalls: false },
    });
    expect(request.messages).toHaveLength(4);
  });

  it.each([
    [user([{ type: "image", url: "http://example.com/a.png" }]), "messages[0].content[0].url: must be an https URL or a base64 data URL"],
    [user([{ type: "image", url: "file:///etc/passwd" }]), "messages[0].content[0].url"],
    [user([{ type: "image", url: "data:text/plain;base64,aGk=" }]), 'messages[0].content[0]: type "text/plain" is not accepted for images'],
    [user([{ type: "image", url: "data:image/png;base64,not base64!" }]), "messages[0].content[0].url"],
    [user([{ type: "file", url: "data:application/zip;base64,UEs=", mimeType: "application/zip" }]), 'type "application/zip" is not accepted for files'],
    [user([{ type: "file", url: png, mimeType: "application/pdf" }]), "messages[0].content[0]"],
    [user([{ type: "video", url: png }]), "messages[0].content[0].type"],
    [user([{ type: "image", url: `data:image/png;base64,${"A".repeat(5 * 1024 * 1024 * 1.4)}` }]), "bytes per data URL"],
    [user(Array.from({ length: 17 }, () => ({ type: "image", url: png }))), "at most 16 images, files or audio"],
    [user(Array.from({ length: 65 }, () => ({ type: "text", text: "x" }))), "messages: at most 64 content parts in all, got 65"],
    [user([]), "messages[0].content"],
    [{ messages: [{ role: "user", content: "hi" }, { role: "tool", toolCallId: "call_9", content: "x" }] }, 'messages[1].toolCallId: "call_9" answers no tool call'],
    [{ messages: [{ role: "system", content: [{ type: "image", url: png }] }, { role: "user", content: "hi" }] }, "messages[0].content"],
    [{ ...ok, tools: [{ name: "has space", parameters: {} }] }, "tools[0].name"],
    [{ ...ok, tools: [{ name: "f", parameters: {} }, { name: "f", parameters: {} }] }, 'tools[1].name: "f" is declared twice'],
    [{ ...ok, tools: [{ name: "f" }] }, "tools[0].parameters"],
    [{ ...ok, toolChoice: "required" }, "toolChoice: needs tools"],
    [{ ...ok, tools: [{ name: "f", parameters: {} }], toolChoice: { name: "g" } }, 'toolChoice.name: "g" is not one of the tools'],
    [{ ...ok, responseFormat: { type: "json_schema", name: "x" } }, "responseFormat.schema"],
    [{ ...ok, responseFormat: { type: "xml" } }, "responseFormat.type"],
    [{ messages: [{ role: "assistant", content: null, toolCalls: [{ id: "c", name: "f" }] }] }, "messages[0].toolCalls[0].arguments"],
  ])("rejects %# naming the field", (input, expected) => {
    expect(rejection(input)).toContain(expected);
  });
});

describe("parseOrThrow: what no schema may let through", () => {
  it("refuses a __proto__ key, as JSON.parse leaves it (an own key) and as a decoder turns it (a prototype)", () => {
    const own = JSON.parse('{"model":"local-mini","__proto__":{"messages":[{"role":"user","content":"smuggled"}]}}') as unknown;
    expect(rejection(own)).toContain('__proto__: a "__proto__" key is not allowed');
    const decoded: Record<string, unknown> = { model: "local-mini" };
    Object.setPrototypeOf(decoded, { messages: [{ role: "user", content: "smuggled" }] });
    expect(rejection(decoded)).toContain('a "__proto__" key is not allowed');
    const nested = JSON.parse('{"messages":[{"role":"user","content":"hi"}],"params":{"__proto__":{"temperature":1}}}') as unknown;
    expect(rejection(nested)).toContain('params.__proto__: a "__proto__" key is not allowed');
  });

  it.each([
    [user("hi \ud800 there"), "messages[0].content: contains an unpaired surrogate"],
    [user([{ type: "text", text: "x\udc00" }]), "messages[0].content[0].text: contains an unpaired surrogate"],
    [{ ...ok, model: "local\ud800" }, "model: contains an unpaired surrogate"],
    [{ promptId: "p", variables: { x: "\ud83d" } }, "variables.x: contains an unpaired surrogate"],
    [{ ...ok, tools: [{ name: "f", description: "\udfff", parameters: {} }] }, "tools[0].description"],
  ])("refuses ill-formed UTF-16 (%#) naming the field", (input, expected) => {
    expect(rejection(JSON.parse(JSON.stringify(input).replaceAll("\\\\u", "\\u")))).toContain(expected);
  });

  it("accepts well-formed surrogate pairs (emoji)", () => {
    expect(parse(user("ok 😀")).messages).toHaveLength(1);
  });

  it("refuses nesting deeper than 64 levels, without a stack overflow", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(rejection({ ...ok, tools: [{ name: "f", parameters: deep }] })).toContain("nested more than 64 levels deep");
  });
});

describe("parseOrThrow: errors", () => {
  it("names the field of the branch that got furthest in a union", () => {
    expect(rejection(user([{ type: "text", text: 5 }]))).toContain("messages[0].content[0].text");
  });
});
