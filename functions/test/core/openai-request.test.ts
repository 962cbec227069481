import { describe, expect, it } from "vitest";
import { parseChatCompletionRequest, toExecuteRequest } from "../../src/core/openai-request.js";

const base = { model: "m", messages: [{ role: "user", content: "hi" }] };
const refusal = (body: unknown) => {
  try {
    parseChatCompletionRequest(body);
  } catch (error) {
    expect(error).toMatchObject({ category: "validation" });
    return (error as Error).message;
  }
  throw new Error("expected a refusal");
};

describe("parseChatCompletionRequest", () => {
  it("refuses unsupported OpenAI parameters by name instead of ignoring them", () => {
    expect(refusal({ ...base, tools: [{ type: "function" }] })).toBe("Unsupported parameter: 'tools' is not supported by this endpoint.");
    expect(refusal({ ...base, response_format: { type: "json_object" } })).toContain("'response_format'");
    expect(refusal({ ...base, n: 2 })).toContain("'n'");
  });
  it("names unknown fields, nested ones included", () => {
    expect(refusal({ ...base, temprature: 1 })).toBe("Unrecognized request argument: 'temprature'.");
    expect(refusal({ ...base, messages: [{ role: "user", content: "x", name: "bob" }] })).toBe("Unrecognized request argument: 'messages[0].name'.");
  });
  it("refuses non-objects and bad values", () => {
    expect(refusal([])).toBe("The request body must be a JSON object.");
    expect(refusal({ ...base, temperature: 5 })).toContain("'temperature'");
    expect(refusal({ ...base, messages: [{ role: "tool", content: "x" }] })).toContain("'messages[0].role'");
  });
  it("accepts nulls where OpenAI clients send them", () => {
    expect(parseChatCompletionRequest({ ...base, temperature: null, stop: null, n: 1, stream_options: null })).toMatchObject({ model: "m" });
  });
});

describe("toExecuteRequest", () => {
  it("maps fields, roles, text parts and headers to the pipeline's request", () => {
    const request = parseChatCompletionRequest({
      model: "m",
      messages: [
        { role: "developer", content: "be brief" },
        { role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] },
      ],
      temperature: 0.5,
      top_p: 0.9,
      max_tokens: 10,
      max_completion_tokens: 20,
      stop: "END",
      fallback_models: ["x"],
    });
    expect(toExecuteRequest(request, { idempotencyKey: "key-12345678", timeoutMs: "5000" })).toEqual({
      requestId: "key-12345678",
      model: "m",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "ab" },
      ],
      params: { temperature: 0.5, topP: 0.9, maxTokens: 20, stop: ["END"] },
      fallbackModels: ["x"],
      timeoutMs: 5000,
    });
  });
});
