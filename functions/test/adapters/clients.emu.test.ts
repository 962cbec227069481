import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { tool as langchainTool } from "@langchain/core/tools";
import { ChatOpenAI } from "@langchain/openai";
import { generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { ExecuteChunk } from "../../src/adapters/execute-prompt-callable.js";
import type { ExecutionResult } from "../../src/core/execution.js";
import { callable, executionRecord, signedInClient } from "../support/firebase.js";
import { functionUrl } from "../support/stack.js";

/**
 * The clients people really use, unmodified, against /v1/chat/completions and executePrompt
 * on the Functions emulator, answered by the local provider: the openai SDK, the Vercel AI
 * SDK (@ai-sdk/openai-compatible), LangChain (@langchain/openai) and the firebase SDK.
 */

type Client = Awaited<ReturnType<typeof signedInClient>>;
let user: Client;
let openai: OpenAI;
beforeAll(async () => {
  user = await signedInClient();
  openai = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: user.idToken, maxRetries: 0 });
});

const PNG = "data:image/png;base64,iVBORw0KGgo=";
const weatherTool = {
  type: "function" as const,
  function: { name: "weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};

describe("openai SDK", () => {
  it("multi-turn by pushing the returned message back (not streamed): the SDK's own chat loop", async () => {
    const messages: ChatCompletionMessageParam[] = [{ role: "user", content: "hello" }];
    for (const next of ["again", "and once more"]) {
      const completion = await openai.chat.completions.create({ model: "local-mini", messages });
      messages.push(completion.choices[0]!.message); // refusal: null and all
      messages.push({ role: "user", content: next });
    }
    const last = await openai.chat.completions.create({ model: "local-mini", messages });
    expect(last.choices[0]!.message.content).toBe("Echo: and once more");
  });

  it("multi-turn streamed: the accumulated message goes back", async () => {
    const messages: ChatCompletionMessageParam[] = [{ role: "user", content: "first" }];
    let text = "";
    for await (const chunk of await openai.chat.completions.create({ model: "local-mini", messages, stream: true, stream_options: { include_usage: true } })) {
      text += chunk.choices[0]?.delta.content ?? "";
    }
    messages.push({ role: "assistant", content: text, refusal: null }, { role: "user", content: "second" });
    const next = await openai.chat.completions.create({ model: "local-mini", messages });
    expect(next.choices[0]!.message.content).toBe("Echo: second");
  });

  it("a complete tool loop, with streamed tool-call deltas assembled by the SDK's helper", async () => {
    const messages: ChatCompletionMessageParam[] = [{ role: "user", content: "what is the weather in Paris" }];
    const runner = openai.chat.completions.stream({ model: "local-mini", messages, tools: [weatherTool] });
    const first = await runner.finalChatCompletion();
    const call = first.choices[0]!.message.tool_calls![0]! as { id: string; function: { name: string; arguments: string } };
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call.function).toEqual({ name: "weather", arguments: '{"city":""}' });
    messages.push(first.choices[0]!.message, { role: "tool", tool_call_id: call.id, content: "sunny" });
    const second = await openai.chat.completions.create({ model: "local-mini", messages, tools: [weatherTool] });
    expect(second.choices[0]!.message.content).toBe("Echo: tool weather returned sunny");
  });

  it("response_format json_schema", async () => {
    const completion = await openai.chat.completions.create({
      model: "local-mini",
      messages: [{ role: "user", content: "a cat" }],
      response_format: {
        type: "json_schema",
        json_schema: { name: "animal", strict: true, schema: { type: "object", properties: { name: { type: "string" } }, required: ["name"], additionalProperties: false } },
      },
    });
    expect(JSON.parse(completion.choices[0]!.message.content!)).toEqual({ name: "a cat" });
  });

  it("an image part, recorded by reference", async () => {
    const { data, response } = await openai.chat.completions
      .create({ model: "local-mini", messages: [{ role: "user", content: [{ type: "text", text: "what is it" }, { type: "image_url", image_url: { url: PNG } }] }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe("Echo: what is it [1 image]");
    const record = await executionRecord(user.uid, response.headers.get("x-execution-id")!);
    expect(record!.input[0].content[1]).toEqual({ type: "image", mimeType: "image/png", bytes: 8 });
  });
});

describe("Vercel AI SDK (@ai-sdk/openai-compatible)", () => {
  const gateway = () =>
    createOpenAICompatible({ name: "gateway", baseURL: functionUrl("api", "/v1"), apiKey: user.idToken, includeUsage: true, supportsStructuredOutputs: true });

  it("generateText and streamText", async () => {
    const { text, usage } = await generateText({ model: gateway()("local-mini"), prompt: "hi there" });
    expect(text).toBe("Echo: hi there");
    expect(usage.outputTokens).toBeGreaterThan(0);
    const result = streamText({ model: gateway()("local-mini"), prompt: "stream me" });
    let streamed = "";
    for await (const delta of result.textStream) streamed += delta;
    expect(streamed).toBe("Echo: stream me");
  });

  it("generateObject with a zod schema", async () => {
    const { object } = await generateObject({ model: gateway()("local-mini"), schema: z.object({ city: z.string(), days: z.number().int() }), prompt: "plan" });
    // zod bounds integers to ±2^53 − 1, so the minimal instance is the smallest safe integer.
    expect(object).toEqual({ city: "plan", days: Number.MIN_SAFE_INTEGER });
  });

  it("a tool loop: the SDK calls the tool, sends the result, and gets the final text", async () => {
    let called = 0;
    const { text, steps } = await generateText({
      model: gateway()("local-mini"),
      prompt: "use weather for Oslo",
      tools: {
        weather: tool({
          description: "Weather in a city",
          inputSchema: z.object({ city: z.string() }),
          execute: async () => {
            called++;
            return "cold";
          },
        }),
      },
      stopWhen: stepCountIs(3),
    });
    expect(called).toBe(1);
    expect(steps.length).toBe(2);
    expect(text).toBe("Echo: tool weather returned cold");
  });
});

describe("LangChain JS (@langchain/openai)", () => {
  const chat = () => new ChatOpenAI({ model: "local-mini", apiKey: user.idToken, configuration: { baseURL: functionUrl("api", "/v1") }, maxRetries: 0 });

  it("invoke and stream", async () => {
    expect((await chat().invoke("hello langchain")).content).toBe("Echo: hello langchain");
    let streamed = "";
    for await (const chunk of await chat().stream("stream langchain")) streamed += String(chunk.content);
    expect(streamed).toBe("Echo: stream langchain");
  });

  it("bindTools: the model's tool call comes back parsed", async () => {
    const weather = langchainTool(async () => "warm", { name: "weather", description: "Weather in a city", schema: z.object({ city: z.string() }) });
    const message = await chat().bindTools([weather]).invoke("weather in Rome?");
    expect(message.tool_calls).toMatchObject([{ name: "weather", args: { city: "" } }]);
  });

  it("withStructuredOutput", async () => {
    const answer = await chat().withStructuredOutput(z.object({ title: z.string() }), { name: "book" }).invoke("dune");
    // The local provider answers the minimal instance of the schema, its strings the prompt's text.
    expect(answer).toEqual({ title: "dune" });
  });
});

describe("firebase SDK on executePrompt", () => {
  const execute = () => callable<unknown, ExecutionResult, ExecuteChunk>(user.functions, "executePrompt");

  it("content parts", async () => {
    const { data } = await execute()({ model: "local-mini", messages: [{ role: "user", content: [{ type: "text", text: "see" }, { type: "image", url: PNG }] }] });
    expect(data.output).toBe("Echo: see [1 image]");
  });

  it("tools with .stream(): tool_call chunks, then the result with toolCalls", async () => {
    const { stream, data } = await execute().stream({
      model: "local-mini",
      messages: [{ role: "user", content: "weather please" }],
      tools: [{ name: "weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }],
    });
    const chunks: ExecuteChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]).toMatchObject({ type: "start", model: "local-mini" });
    const calls = chunks.filter((c) => c.type === "tool_call");
    expect(calls[0]).toEqual({ type: "tool_call", index: 0, id: "call_1_0", name: "weather", argumentsDelta: "" });
    expect(calls.map((c) => (c as { argumentsDelta: string }).argumentsDelta).join("")).toBe('{"city":""}');
    expect(await data).toMatchObject({ finishReason: "tool_calls", toolCalls: [{ id: "call_1_0", name: "weather", arguments: '{"city":""}' }] });
  });

  it("responseFormat json_schema gives json", async () => {
    const { data } = await execute()({
      model: "local-mini",
      messages: [{ role: "user", content: "ok" }],
      responseFormat: { type: "json_schema", name: "status", schema: { type: "object", properties: { status: { type: "string" } }, required: ["status"] } },
    });
    expect(data.json).toEqual({ status: "ok" });
  });
});
