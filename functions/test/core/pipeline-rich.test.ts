import { describe, expect, it } from "vitest";
import { createMediaFetcher } from "../../src/adapters/media-fetcher.js";
import { catalog as productionCatalog } from "../../src/config/catalog.js";
import { Catalog } from "../../src/core/catalog.js";
import { capToolCalls, RECORD_LIMITS } from "../../src/core/execution.js";
import type { ToolCallDelta } from "../../src/core/ports.js";
import { openAIModelClient } from "../../src/adapters/openai-model-client.js";
import { ask, expectLedgerBalanced, provider, settings, setup, useLocalProvider } from "../support/pipeline.js";

/** Content parts, tools and structured output through the pipeline and the local provider over HTTP. */
useLocalProvider();

const png = "data:image/png;base64,iVBORw0KGgo=";
const weather = { name: "weather", description: "Today's weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } };
const received = (key: string) => provider.current.requests(key) as { messages: { content: unknown }[]; [field: string]: unknown }[];

describe("content parts", () => {
  it("reach the provider in OpenAI's shapes, and the record keeps them by reference, never a data URL's bytes", async () => {
    const { run, record } = setup();
    const result = await run({
      model: "local-mini+key=parts",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this" },
            { type: "image", url: png, detail: "low" },
            { type: "image", url: "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media" },
            { type: "file", url: "data:application/pdf;base64,JVBERi0=", mimeType: "application/pdf", name: "a.pdf" },
          ],
        },
      ],
    });
    expect(result.output).toBe("Echo: what is this [2 images, 1 file]");
    expect(received("parts")[0]!.messages[0]!.content).toEqual([
      { type: "text", text: "what is this" },
      // The provider keeps data URLs shortened to 32 characters.
      { type: "image_url", image_url: { url: `${png.slice(0, 32)}…`, detail: "low" } },
      { type: "image_url", image_url: { url: "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media" } },
      { type: "file", file: { file_data: "data:application/pdf;base64,JVBE…", filename: "a.pdf" } },
    ]);
    expect(record().input).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "what is this" },
          { type: "image", bytes: 8, mimeType: "image/png", detail: "low" },
          { type: "image", url: "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media" },
          { type: "file", bytes: 5, mimeType: "application/pdf", name: "a.pdf" },
        ],
      },
    ]);
    expect(JSON.stringify(record())).not.toContain("iVBORw0KGgo");
  });

  it("a model that cannot take images is refused naming the field and the model; a fallback that cannot is skipped", async () => {
    const { fail, executions } = setup();
    const error = await fail({ model: "local-text", messages: [{ role: "user", content: [{ type: "text", text: "x" }, { type: "image", url: png }] }] });
    expect(error).toMatchObject({ category: "validation", message: 'messages[0].content[1]: model "local-text" does not take images.' });
    expect(executions.records.size).toBe(0);
    const skipped = await fail(ask("local-mini+fail=server,key=skip", "hi", { tools: [weather], fallbackModels: ["local-text"] }));
    expect(skipped.category).toBe("provider_unavailable");
    expect(provider.current.stats().byKey["skip"]).toBe(4); // local-text was never called
  });

  it("fetches an https URL for a provider that needs the bytes, from allowed hosts only", async () => {
    const local = productionCatalog.provider("local")!;
    const needsBytes = new Catalog([{ ...local, fetchesUrls: [] }]);
    const allowed = "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media";
    const media = createMediaFetcher({
      policy: () => ({ allowedHosts: ["firebasestorage.googleapis.com"] }),
      fetch: (async () => new Response(new Uint8Array([1, 2, 3]), { headers: { "content-type": "image/png" } })) as typeof fetch,
    });
    const { run, fail } = setup({ catalog: needsBytes, deps: { media } });
    await run({ model: "local-mini+key=inlined", messages: [{ role: "user", content: [{ type: "image", url: allowed }] }] });
    expect(received("inlined")[0]!.messages[0]!.content).toEqual([{ type: "image_url", image_url: { url: "data:image/png;base64,AQID" } }]);
    const refused = await fail({ model: "local-mini", messages: [{ role: "user", content: [{ type: "image", url: "https://127.0.0.1/secret.png" }] }] });
    expect(refused).toMatchObject({ category: "validation", message: expect.stringContaining("messages[0].content[0].url: the host 127.0.0.1 is not allowed") });
  });
});

describe("records and logs of rich requests", () => {
  it("with LOG_PROMPTS, the log line has the text and media by reference, never a data URL's bytes", async () => {
    const { run, logger } = setup({ settings: { logPrompts: true } });
    await run({ model: "local-mini", messages: [{ role: "user", content: [{ type: "text", text: "what is this" }, { type: "image", url: png }] }] });
    const line = logger.entries.find((e) => e.message === "execution.succeeded")!;
    expect(line.fields.input).toEqual([{ role: "user", content: [{ type: "text", text: "what is this" }, { type: "image", bytes: 8, mimeType: "image/png" }] }]);
    expect(JSON.stringify(logger.entries)).not.toContain("iVBORw0KGgo");
  });

  it("tool-call arguments share the record's output budget; the client gets them whole", () => {
    const calls = [
      { id: "a", name: "f", arguments: "x".repeat(60_000) },
      { id: "b", name: "g", arguments: "y".repeat(60_000) },
    ];
    const { toolCalls, truncated } = capToolCalls(calls, 10_000);
    expect(truncated).toBe(true);
    expect(toolCalls.map((c) => c.arguments.length)).toEqual([60_000, RECORD_LIMITS.outputChars - 10_000 - 60_000]);
    expect(capToolCalls(calls.slice(0, 1), 0)).toEqual({ toolCalls: calls.slice(0, 1), truncated: false });
  });
});

describe("generation params per model", () => {
  it("a model that refuses a sampling param is refused naming it; a fallback that refuses it is skipped; reasoning effort reaches only reasoning models", async () => {
    const { run, fail, executions } = setup();
    // local-pro behaves like OpenAI's reasoning models: no temperature, top_p or penalties.
    expect(await fail(ask("local-pro", "hi", { params: { temperature: 0.2 } }))).toMatchObject({
      category: "validation",
      message: 'params.temperature: model "local-pro" does not take this parameter.',
    });
    expect(executions.records.size).toBe(0);
    const result = await run(ask("local-mini+fail=server,key=skip-pro", "hi", { params: { topP: 0.5 }, fallbackModels: ["local-pro+key=skip-pro", "local-text+key=skip-pro"] }));
    expect(result.model).toBe("local-text+key=skip-pro");
    expect(received("skip-pro").map((r) => r.model)).toEqual(["local-mini+fail=server,key=skip-pro", "local-mini+fail=server,key=skip-pro", "local-mini+fail=server,key=skip-pro", "local-mini+fail=server,key=skip-pro", "local-text+key=skip-pro"]);
    await run(ask("local-pro+key=effort", "hi", { params: { reasoningEffort: "none", seed: 7 } }));
    await run(ask("local-mini+key=effort", "hi", { params: { reasoningEffort: "low", seed: 7 } }));
    expect(received("effort").map((r) => [r.reasoning_effort, r.seed])).toEqual([["none", 7], [undefined, 7]]);
  });
});

describe("limits of rich requests", () => {
  it("refuses more than 10 MiB of strings in all, data URLs included, before recording anything", async () => {
    const { fail, executions } = setup();
    // Four data URLs of ~3 MiB each: each within its own 5 MiB limit, together over the request's.
    const big = `data:image/png;base64,${"A".repeat(4 * 1024 * 1024)}`;
    const error = await fail({ model: "local-mini", messages: [{ role: "user", content: Array.from({ length: 4 }, () => ({ type: "image", url: big })) }] });
    expect(error.category).toBe("validation");
    expect(error.message).toMatch(/^request: at most 10485760 bytes in all, got \d+\.$/);
    expect(executions.records.size).toBe(0);
  });

  it("a model without tool calling is refused naming the field and the model", async () => {
    const weatherTool = { name: "weather", parameters: { type: "object" } };
    expect(await setup().fail(ask("local-text", "hi", { tools: [weatherTool] }))).toMatchObject({ category: "validation", message: 'tools: model "local-text" does not support tool calling.' });
  });
});

describe("media the server fetches", () => {
  const local = productionCatalog.provider("local")!;
  const allowed = "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media";
  const image = (url = allowed) => [{ role: "user", content: [{ type: "text", text: "look" }, { type: "image", url }] }];
  /** A remote that counts what it is asked for. */
  function remote(answer: () => Response = () => new Response(new Uint8Array([1, 2, 3]), { headers: { "content-type": "image/png" } })) {
    const asked: string[] = [];
    const media = createMediaFetcher({
      policy: () => ({ allowedHosts: ["firebasestorage.googleapis.com"] }),
      fetch: (async (url: string | URL | Request) => {
        asked.push(String(url));
        return answer();
      }) as typeof fetch,
    });
    return { asked, media };
  }

  /** The local provider twice: as one that needs bytes (local-mini, local-pro), and as one that fetches images itself. */
  const mixed = () =>
    new Catalog([
      { ...local, fetchesUrls: [] },
      { ...local, id: "self-fetching", fetchesUrls: ["image"], models: [{ ...local.models.find((m) => m.id === "local-pro")!, id: "local-pro-fetches", upstreamId: "local-pro" }] },
    ]);

  it("fetches nothing for a request that admission refuses", async () => {
    const { asked, media } = remote();
    const { fail } = setup({ catalog: new Catalog([{ ...local, fetchesUrls: [] }]), deps: { media }, settings: { limits: { ...settings.limits, perMinute: 0 } } });
    expect((await fail({ model: "local-mini", messages: image() })).category).toBe("rate_limited");
    expect(asked).toEqual([]);
  });

  it("fetches a URL once for every model that needs it, and only for a model that is called", async () => {
    const { asked, media } = remote();
    const needsBytes = new Catalog([{ ...local, fetchesUrls: [] }]);
    const { run } = setup({ catalog: needsBytes, deps: { media } });
    const result = await run({ model: "local-mini+fail=server,key=twice", fallbackModels: ["local-pro+key=twice"], messages: image() });
    expect(result.model).toBe("local-pro+key=twice");
    expect(asked).toEqual([allowed]);
    expect(received("twice").at(-1)!.messages[0]!.content).toEqual([
      { type: "text", text: "look" },
      { type: "image_url", image_url: { url: "data:image/png;base64,AQID" } },
    ]);
  });

  it("a fallback's media is not fetched when the primary, which fetches URLs itself, answers", async () => {
    const { asked, media } = remote();
    const { run } = setup({ catalog: mixed(), deps: { media, modelClient: (p) => openAIModelClient(p, { baseUrl: provider.current.url, apiKey: "" }) } });
    expect((await run({ model: "local-pro-fetches", fallbackModels: ["local-mini"], messages: image() })).model).toBe("local-pro-fetches");
    expect(asked).toEqual([]);
  });

  it("a fetch that fails for the primary falls back to a model whose provider fetches URLs itself; the record says why", async () => {
    const { media } = remote(() => new Response("nope", { status: 404 }));
    const { run, record } = setup({
      catalog: mixed(),
      deps: {
        media,
        modelClient: (p) => openAIModelClient(p, { baseUrl: provider.current.url, apiKey: "" }),
      },
    });
    const result = await run({ model: "local-mini", fallbackModels: ["local-pro-fetches"], messages: image() });
    expect(result.model).toBe("local-pro-fetches");
    const { attempts, cost } = record();
    expect(attempts).toEqual([
      expect.objectContaining({ model: "local-mini", outcome: "failed", category: "validation" }),
      expect.objectContaining({ model: "local-pro-fetches", outcome: "succeeded" }),
    ]);
    // Each attempt carries its own cost: the one that called nothing none, the answer all of it.
    expect(attempts[0]!.costMicros).toBeUndefined();
    expect(cost!.micros).toBeGreaterThan(0);
    expect(attempts[1]!.costMicros).toBe(cost!.micros);
  });

  it("a fetch that fails with no model left ends the execution failed, validation, naming the part", async () => {
    const { media } = remote(() => new Response("nope", { status: 404 }));
    const { fail, record, executions } = setup({ catalog: new Catalog([{ ...local, fetchesUrls: [] }]), deps: { media } });
    const error = await fail({ model: "local-mini", messages: image() });
    expect(error).toMatchObject({ category: "validation", message: "messages[0].content[1].url: the URL answered HTTP 404" });
    expect(record()).toMatchObject({ status: "failed", error: { category: "validation" }, cost: { micros: 0 } });
    expectLedgerBalanced(executions);
  });
});

describe("tool calling", () => {
  it("returns the model's tool calls, streams them as tool_call deltas, and records them", async () => {
    const { run, record } = setup();
    const deltas: ToolCallDelta[] = [];
    const starts: string[] = [];
    const result = await run(ask("local-mini", "hi", { tools: [weather], toolChoice: "required" }), {
      onStart: (info) => starts.push(info.model),
      onToolCall: (delta) => deltas.push(delta),
      onDelta: () => {},
    });
    expect(result).toMatchObject({ finishReason: "tool_calls", output: "", toolCalls: [{ id: "call_1_0", name: "weather", arguments: '{"city":""}' }] });
    expect(starts).toEqual(["local-mini"]);
    expect(deltas[0]).toEqual({ index: 0, id: "call_1_0", name: "weather", argumentsDelta: "" });
    expect(deltas.map((d) => d.argumentsDelta).join("")).toBe('{"city":""}');
    expect(record()).toMatchObject({ status: "succeeded", tools: ["weather"], toolCalls: result.toolCalls });
  });

  it("completes a tool loop: the assistant's call and the tool's result go back, the model answers in text", async () => {
    const { run } = setup();
    const first = await run(ask("local-mini", "what is the weather", { tools: [weather] }));
    const second = await run({
      model: "local-mini",
      tools: [weather],
      messages: [
        { role: "user", content: "what is the weather" },
        { role: "assistant", content: null, toolCalls: first.toolCalls },
        { role: "tool", toolCallId: first.toolCalls![0]!.id, content: "sunny, 21 °C" },
      ],
    });
    expect(second).toMatchObject({ finishReason: "stop", output: "Echo: tool weather returned sunny, 21 °C" });
  });

  it("a stream cut in the middle of tool-call arguments ends failed with the partial call kept, and the ledger balances", async () => {
    const { fail, record, executions } = setup();
    const error = await fail(ask("local-mini+fail=cut_tool", "hi", { tools: [weather], toolChoice: "required" }), { onToolCall: () => {} });
    expect(error.category).toBe("network");
    const saved = record();
    expect(saved).toMatchObject({ status: "failed", toolCalls: [{ id: "call_1_0", name: "weather" }] });
    expect(saved.toolCalls![0]!.arguments.length).toBeGreaterThan(0);
    expect(saved.toolCalls![0]!.arguments).not.toBe('{"city":""}');
    expect(saved.cost!.micros).toBeGreaterThan(0);
    expectLedgerBalanced(executions);
  });
});

describe("structured output", () => {
  const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"], additionalProperties: false };
  const format = { type: "json_schema", name: "reply", schema, strict: true };

  it("returns the output parsed and validated as json", async () => {
    const { run } = setup();
    const result = await run(ask("local-mini", "forty two", { responseFormat: format }));
    expect(result.json).toEqual({ answer: "forty two" });
    expect(JSON.parse(result.output)).toEqual(result.json);
  });

  it("retries output that is not valid JSON for the schema, when nothing reached the client yet", async () => {
    const { run, record } = setup();
    const result = await run(ask("local-mini+fail=invalid_json,times=1,key=json1", "x", { responseFormat: format }));
    expect(result).toMatchObject({ attempts: 2, json: { answer: "x" } });
    expect(record().attempts[0]).toMatchObject({ outcome: "failed", category: "invalid_output" });
  });

  it("fails as invalid_output (retryable) when a streaming client already has the text", async () => {
    const { fail, record } = setup();
    const error = await fail(ask("local-mini+fail=invalid_json", "x", { responseFormat: format }), { onDelta: () => {} });
    expect(error).toMatchObject({ category: "invalid_output", retryable: true, code: "unavailable" });
    expect(record()).toMatchObject({ status: "failed", error: { category: "invalid_output" } });
  });

  it("refuses a schema that is not a usable JSON Schema, before recording anything", async () => {
    const { fail, executions } = setup();
    const error = await fail(ask("local-mini", "x", { responseFormat: { type: "json_schema", name: "bad", schema: { type: "object", properties: { a: { type: 42 } } } } }));
    expect(error.category).toBe("validation");
    expect(error.message).toContain("responseFormat.schema: not a usable JSON Schema");
    expect(executions.records.size).toBe(0);
  });

  it("a model without structured output is refused naming the field", async () => {
    const { fail } = setup();
    expect((await fail(ask("local-text", "x", { responseFormat: { type: "json_object" } }))).message).toBe(
      'responseFormat: model "local-text" does not support structured output.',
    );
  });
});

describe("generation parameters", () => {
  it("forwards seed and penalties, and reasoning effort only to models that reason", async () => {
    const { run } = setup();
    const params = { seed: 7, presencePenalty: 0.5, frequencyPenalty: 0.25, reasoningEffort: "low" };
    await run(ask("local-mini+key=p1", "hi", { params }));
    expect(received("p1")[0]).toMatchObject({ seed: 7, presence_penalty: 0.5, frequency_penalty: 0.25 });
    expect(received("p1")[0]).not.toHaveProperty("reasoning_effort");
    // local-pro, like OpenAI's reasoning models, refuses the penalties: only what it takes is sent.
    await run(ask("local-pro+key=p2", "hi", { params: { seed: 7, reasoningEffort: "low" } }));
    expect(received("p2")[0]).toMatchObject({ seed: 7, reasoning_effort: "low" });
  });
});
