import { describe, expect, it } from "vitest";
import { inOpenAITerms, parseChatCompletionRequest, toExecuteRequest } from "../../src/core/openai-request.js";
import { executeRequestSchema, parseOrThrow } from "../../src/core/request.js";

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
/** What the pipeline gets, validated by the pipeline's own schema as it would be. */
const converted = (body: unknown, headers = {}) => parseOrThrow(executeRequestSchema, toExecuteRequest(parseChatCompletionRequest(body), headers));

describe("parseChatCompletionRequest", () => {
  it("refuses what it cannot honour, by name", () => {
    expect(refusal({ ...base, n: 2 })).toContain("'n'");
    expect(refusal({ ...base, logprobs: true })).toBe("Unsupported parameter: 'logprobs' is not supported by this endpoint.");
    expect(refusal({ ...base, functions: [] })).toContain("'functions'");
    expect(refusal({ ...base, modalities: ["text", "audio"] })).toContain("'modalities'");
    expect(refusal({ ...base, store: true })).toContain("'store'");
    expect(refusal({ ...base, service_tier: "flex" })).toContain("'service_tier'");
    expect(refusal({ ...base, tools: [{ type: "custom", custom: { name: "x" } }] })).toContain("tools[0]");
  });

  it("accepts what the official clients send by default", () => {
    expect(
      parseChatCompletionRequest({
        ...base,
        n: 1,
        user: "u-1",
        metadata: { app: "x" },
        seed: 1,
        presence_penalty: 0.1,
        frequency_penalty: 0.1,
        max_completion_tokens: 10,
        reasoning_effort: "low",
        stream_options: { include_usage: true, include_obfuscation: false },
        parallel_tool_calls: true,
        logprobs: false,
        top_logprobs: null,
        store: false,
        service_tier: "auto",
        modalities: ["text"],
        temperature: null,
        stop: null,
      }),
    ).toMatchObject({ model: "m" });
  });

  it("names unknown fields, nested ones included", () => {
    expect(refusal({ ...base, temprature: 1 })).toBe("Unrecognized request argument: 'temprature'.");
    expect(refusal({ ...base, messages: [{ role: "user", content: "x", nickname: "bob" }] })).toBe(
      "Unrecognized request argument: 'messages[0].nickname'.",
    );
  });

  it("refuses non-objects, bad values and prototype keys", () => {
    expect(refusal([])).toBe("The request body must be a JSON object.");
    expect(refusal({ ...base, temperature: 5 })).toContain("temperature");
    expect(refusal({ ...base, messages: [{ role: "tool", content: "x" }] })).toContain("messages[0].tool_call_id");
    expect(refusal(JSON.parse('{"model":"m","__proto__":{"messages":[]}}'))).toContain('"__proto__" key is not allowed');
    expect(refusal({ ...base, messages: [{ role: "user", content: "a\ud800" }] })).toContain("messages[0].content: contains an unpaired surrogate");
  });
});

describe("a message the endpoint returned is accepted back (the openai SDK chat loop)", () => {
  it("takes the assistant message with refusal: null, annotations, tool_calls and content: null", () => {
    const answer = { role: "assistant", content: "Echo: hi", refusal: null, annotations: [], parsed: null };
    const toolAnswer = {
      role: "assistant",
      content: null,
      refusal: null,
      tool_calls: [{ id: "call_2_0", type: "function", function: { name: "weather", arguments: '{"city":""}' } }],
    };
    const request = converted({
      model: "m",
      messages: [
        { role: "user", content: "hi", name: "ada" },
        answer,
        { role: "user", content: "weather?" },
        toolAnswer,
        { role: "tool", tool_call_id: "call_2_0", content: "sunny" },
      ],
      tools: [{ type: "function", function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
    });
    expect(request.messages).toEqual([
      { role: "user", content: "hi" },
      { role: "assistant", content: "Echo: hi" },
      { role: "user", content: "weather?" },
      { role: "assistant", content: null, toolCalls: [{ id: "call_2_0", name: "weather", arguments: '{"city":""}' }] },
      { role: "tool", toolCallId: "call_2_0", content: "sunny" },
    ]);
  });

  it("keeps a refusal as the assistant's words", () => {
    const request = converted({ model: "m", messages: [{ role: "user", content: "x" }, { role: "assistant", content: null, refusal: "I can't." }, { role: "user", content: "ok" }] });
    expect(request.messages?.[1]).toEqual({ role: "assistant", content: "I can't." });
  });
});

describe("toExecuteRequest", () => {
  it("maps fields, roles, text parts and headers to the pipeline's request", () => {
    expect(
      converted(
        {
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
          seed: 3,
          presence_penalty: 0.2,
          frequency_penalty: 0.3,
          reasoning_effort: "high",
          fallback_models: ["x"],
        },
        { idempotencyKey: "key-12345678", timeoutMs: "5000" },
      ),
    ).toEqual({
      requestId: "key-12345678",
      model: "m",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] },
      ],
      params: { temperature: 0.5, topP: 0.9, maxTokens: 20, stop: ["END"], seed: 3, presencePenalty: 0.2, frequencyPenalty: 0.3, reasoningEffort: "high" },
      fallbackModels: ["x"],
      timeoutMs: 5000,
    });
  });

  it("maps image_url, file and input_audio parts to the contract's parts", () => {
    const request = converted({
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: "https://firebasestorage.googleapis.com/a.png", detail: "high" } },
            { type: "file", file: { file_data: "data:application/pdf;base64,JVBERi0=", filename: "a.pdf" } },
            { type: "file", file: { file_data: "JVBERi0=" } },
            { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } },
          ],
        },
      ],
    });
    expect(request.messages?.[0]?.content).toEqual([
      { type: "image", url: "https://firebasestorage.googleapis.com/a.png", detail: "high" },
      { type: "file", url: "data:application/pdf;base64,JVBERi0=", mimeType: "application/pdf", name: "a.pdf" },
      { type: "file", url: "data:application/pdf;base64,JVBERi0=", mimeType: "application/pdf" },
      { type: "file", url: "data:audio/wav;base64,UklGRg==", mimeType: "audio/wav" },
    ]);
  });

  it("refuses a file by provider file id: we cannot resolve it", () => {
    expect(() => converted({ model: "m", messages: [{ role: "user", content: [{ type: "file", file: { file_id: "file-1" } }] }] })).toThrow(
      "'file_id' is not supported",
    );
  });

  it("maps tools, tool_choice, parallel_tool_calls and response_format", () => {
    const request = converted({
      ...base,
      tools: [{ type: "function", function: { name: "f", description: "d", parameters: { type: "object" }, strict: true } }, { type: "function", function: { name: "g" } }],
      tool_choice: { type: "function", function: { name: "f" } },
      parallel_tool_calls: false,
      response_format: { type: "json_schema", json_schema: { name: "out", schema: { type: "object" }, strict: true } },
    });
    expect(request).toMatchObject({
      tools: [
        { name: "f", description: "d", parameters: { type: "object" }, strict: true },
        { name: "g", parameters: { type: "object", properties: {} } },
      ],
      toolChoice: { name: "f" },
      params: { parallelToolCalls: false },
      responseFormat: { type: "json_schema", name: "out", schema: { type: "object" }, strict: true },
    });
    expect(converted({ ...base, response_format: { type: "text" }, tool_choice: "none" })).not.toHaveProperty("responseFormat");
    expect(converted({ ...base, response_format: { type: "json_object" } }).responseFormat).toEqual({ type: "json_object" });
  });
});

describe("inOpenAITerms", () => {
  it.each([
    ['params.maxTokens: at most 8192 for model "local-pro".', 'max_tokens: at most 8192 for model "local-pro".'],
    ['params.temperature: model "o4-mini" does not take this parameter.', 'temperature: model "o4-mini" does not take this parameter.'],
    ['params.presencePenalty: x', "presence_penalty: x"],
    ['responseFormat: model "local-text" does not support structured output.', 'response_format: model "local-text" does not support structured output.'],
    ["responseFormat.schema: not a usable JSON Schema (x).", "response_format.json_schema.schema: not a usable JSON Schema (x)."],
    ["tools[1].parameters: not a usable JSON Schema (x).", "tools[1].function.parameters: not a usable JSON Schema (x)."],
    ['messages[2].toolCalls: model "local-text" does not support tool calling.', 'messages[2].tool_calls: model "local-text" does not support tool calling.'],
    ["requestId: 8-128 characters", "Idempotency-Key (header): 8-128 characters"],
    ['messages[0].content[1]: model "local-text" does not take images.', 'messages[0].content[1]: model "local-text" does not take images.'],
  ])("%s", (pipeline, openai) => {
    expect(inOpenAITerms(pipeline)).toBe(openai);
  });
});
