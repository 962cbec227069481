import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { parseJsonOutput } from "../../functions/src/core/json-output.js";
import { minimalInstance } from "../local-provider/json-instance.js";
import { PART_TOKENS } from "../local-provider/reply.js";
import { startLocalProvider, type LocalProvider } from "../local-provider/server.js";

/** The local provider's v1.1 behaviours: content parts, tool calls, structured output, and their faults. */

let provider: LocalProvider;
let client: OpenAI;
beforeAll(async () => {
  provider = await startLocalProvider();
  client = new OpenAI({ baseURL: provider.url, apiKey: "none", maxRetries: 0 });
});
afterAll(() => provider.close());
beforeEach(() => provider.reset());

const weather = {
  type: "function" as const,
  function: {
    name: "weather",
    parameters: { type: "object", properties: { city: { type: "string", minLength: 2 }, days: { type: "integer", minimum: 1 } }, required: ["city", "days"] },
  },
};
const clock = { type: "function" as const, function: { name: "clock", parameters: { type: "object", properties: {} } } };

async function rawStream(body: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${provider.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: true }),
  });
  // Read what arrives, and stop quietly where a fault cuts the connection.
  let text = "";
  const reader = response.body!.getReader();
  try {
    for (let read = await reader.read(); !read.done; read = await reader.read()) text += new TextDecoder().decode(read.value);
  } catch {
    // cut
  }
  return text;
}

const events = (text: string) =>
  text
    .split("\n\n")
    .filter((e) => e.startsWith("data: ") && e !== "data: [DONE]")
    .map((e) => JSON.parse(e.slice(6)) as { choices: { delta: Record<string, unknown>; finish_reason: string | null }[] });

describe("minimalInstance", () => {
  const schemas: [string, unknown][] = [
    ["zod object", z.toJSONSchema(z.object({ name: z.string().min(3), age: z.number().int().min(18), tags: z.array(z.string()).min(2), kind: z.enum(["a", "b"]) }))],
    ["zod nullable and optional", z.toJSONSchema(z.object({ note: z.string().nullable(), extra: z.string().optional(), when: z.iso.datetime() }))],
    ["zod union and literal", z.toJSONSchema(z.object({ value: z.union([z.number().gt(5), z.string()]), fixed: z.literal("x") }))],
    [
      "OpenAI strict with $defs and a cycle",
      {
        type: "object",
        properties: { root: { $ref: "#/$defs/node" } },
        required: ["root"],
        additionalProperties: false,
        $defs: { node: { type: "object", properties: { label: { type: "string" }, children: { type: "array", items: { $ref: "#/$defs/node" } } }, required: ["label", "children"], additionalProperties: false } },
      },
    ],
    ["allOf", { allOf: [{ type: "object", properties: { a: { type: "string" } }, required: ["a"] }, { properties: { b: { type: "boolean" } }, required: ["b"] }] }],
    ["number bounds", { type: "object", properties: { x: { type: "number", exclusiveMinimum: 1, maximum: 3 }, y: { type: "integer", multipleOf: 5, minimum: 7 } }, required: ["x", "y"] }],
    ["formats", { type: "object", properties: { e: { type: "string", format: "email" }, u: { type: "string", format: "uuid" }, d: { type: "string", format: "date" } }, required: ["e", "u", "d"] }],
  ];
  it.each(schemas)("is valid against %s (checked with the gateway's own validator)", async (_, schema) => {
    const value = minimalInstance(schema, "seed words");
    await expect(parseJsonOutput(JSON.stringify(value), { type: "json_schema", name: "t", schema: schema as Record<string, unknown> })).resolves.toEqual(value);
  });

  it("is {} for a missing or empty schema, and seeds plain strings", () => {
    expect(minimalInstance(undefined)).toEqual({});
    expect(minimalInstance({})).toEqual({});
    expect(minimalInstance({ type: "object", properties: { s: { type: "string" } }, required: ["s"] }, "hi")).toEqual({ s: "hi" });
  });
});

describe("content parts", () => {
  it("counts fixed tokens per part and names what it received", async () => {
    const plain = await client.chat.completions.create({ model: "local-mini", messages: [{ role: "user", content: "look" }] });
    const withParts = await client.chat.completions.create({
      model: "local-mini",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "look" },
            { type: "image_url", image_url: { url: "https://example.com/a.png" } },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "file", file: { file_data: "data:application/pdf;base64,JVBERi0=", filename: "a.pdf" } },
            { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } },
          ],
        },
      ],
    });
    expect(withParts.choices[0]!.message.content).toBe("Echo: look [2 images, 1 file, 1 audio]");
    const extra = 2 * PART_TOKENS.image + PART_TOKENS.file + PART_TOKENS.audio;
    expect(withParts.usage!.prompt_tokens - plain.usage!.prompt_tokens).toBe(extra);
    expect(withParts.usage!.prompt_tokens_details).toMatchObject({ audio_tokens: 100, image_tokens: 170 });
  });

  it("refuses an unknown part type or an image URL that is neither https nor data, naming the field", async () => {
    const bad = (content: unknown) =>
      client.chat.completions.create({ model: "local-mini", messages: [{ role: "user", content: content as never }] }).catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    const unknown = (await bad([{ type: "video", video: {} }])) as InstanceType<typeof OpenAI.APIError>;
    expect(unknown.status).toBe(400);
    expect((unknown.error as { param: string }).param).toBe("messages[0].content[0].type");
    const http = (await bad([{ type: "image_url", image_url: { url: "http://example.com/a.png" } }])) as InstanceType<typeof OpenAI.APIError>;
    expect((http.error as { param: string }).param).toBe("messages[0].content[0].image_url.url");
  });
});

describe("tool calls", () => {
  it("streams a required call in OpenAI's framing: id and name first, then the arguments in pieces", async () => {
    const text = await rawStream({ model: "local-mini", messages: [{ role: "user", content: "hi" }], tools: [weather], tool_choice: "required" });
    const chunks = events(text);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: "assistant", content: null });
    expect(chunks[1]!.choices[0]!.delta).toEqual({ tool_calls: [{ index: 0, id: "call_1_0", type: "function", function: { name: "weather", arguments: "" } }] });
    const pieces = chunks.slice(2).flatMap((c) => (c.choices[0]?.delta.tool_calls as { function: { arguments: string } }[] | undefined)?.map((t) => t.function.arguments) ?? []);
    expect(pieces.length).toBeGreaterThanOrEqual(2);
    expect(JSON.parse(pieces.join(""))).toEqual({ city: "aa", days: 1 });
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("tool_calls");
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("calls the tool named by tool_choice, or with auto every tool the user mentions (parallel unless turned off)", async () => {
    const named = await client.chat.completions.create({
      model: "local-mini",
      messages: [{ role: "user", content: "hi" }],
      tools: [weather, clock],
      tool_choice: { type: "function", function: { name: "clock" } },
    });
    expect(named.choices[0]!.message.tool_calls?.map((c) => (c as { function: { name: string } }).function.name)).toEqual(["clock"]);
    const auto = await client.chat.completions.create({ model: "local-mini", messages: [{ role: "user", content: "use clock and weather please" }], tools: [weather, clock] });
    expect(auto.choices[0]).toMatchObject({ finish_reason: "tool_calls", message: { content: null } });
    expect(auto.choices[0]!.message.tool_calls?.map((c) => (c as { function: { name: string } }).function.name)).toEqual(["weather", "clock"]);
    const single = await client.chat.completions.create({
      model: "local-mini",
      messages: [{ role: "user", content: "use clock and weather" }],
      tools: [weather, clock],
      parallel_tool_calls: false,
    });
    expect(single.choices[0]!.message.tool_calls).toHaveLength(1);
    const none = await client.chat.completions.create({ model: "local-mini", messages: [{ role: "user", content: "weather" }], tools: [weather], tool_choice: "none" });
    expect(none.choices[0]!.message.content).toBe("Echo: weather");
  });

  it("answers a tool result in text that mentions it", async () => {
    const reply = await client.chat.completions.create({
      model: "local-mini",
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1_0", type: "function", function: { name: "weather", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "call_1_0", content: "sunny" },
      ],
      tools: [weather],
    });
    expect(reply.choices[0]!.message.content).toBe("Echo: tool weather returned sunny");
  });

  it("fail=cut_tool ends the stream in the middle of the arguments", async () => {
    const text = await rawStream({ model: "local-mini+fail=cut_tool", messages: [{ role: "user", content: "hi" }], tools: [weather], tool_choice: "required" });
    expect(text).toContain('"arguments":"');
    expect(text).not.toContain("finish_reason\":\"tool_calls");
    expect(text).not.toContain("[DONE]");
  });
});

describe("structured output", () => {
  const schema = { type: "object", properties: { answer: { type: "string" }, score: { type: "number", minimum: 1 } }, required: ["answer", "score"], additionalProperties: false };

  it("answers json_schema with a valid instance, streamed in pieces", async () => {
    const text = await rawStream({ model: "local-mini", messages: [{ role: "user", content: "rate it" }], response_format: { type: "json_schema", json_schema: { name: "r", schema } } });
    const content = events(text).map((c) => (c.choices[0]?.delta.content as string | undefined) ?? "");
    expect(content.filter((c) => c !== "").length).toBeGreaterThanOrEqual(2);
    expect(JSON.parse(content.join(""))).toEqual({ answer: "rate it", score: 1 });
  });

  it("answers json_object with the echo as an object, and fail=invalid_json with broken JSON", async () => {
    const ok = await client.chat.completions.create({ model: "local-mini", messages: [{ role: "user", content: "x" }], response_format: { type: "json_object" } });
    expect(JSON.parse(ok.choices[0]!.message.content!)).toEqual({ echo: "x" });
    const broken = await client.chat.completions.create({
      model: "local-mini+fail=invalid_json",
      messages: [{ role: "user", content: "x" }],
      response_format: { type: "json_schema", json_schema: { name: "r", schema } },
    });
    expect(broken.choices[0]!.finish_reason).toBe("stop");
    expect(() => JSON.parse(broken.choices[0]!.message.content!)).toThrow();
  });
});

describe("what the provider received", () => {
  it("keeps the last request bodies per scenario key, data URLs shortened, and can report the message count", async () => {
    await client.chat.completions.create({
      model: "local-mini+key=seen,report=messages",
      messages: [
        { role: "system", content: "s" },
        { role: "user", content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${"A".repeat(1_000)}` } }] },
      ],
      seed: 7,
    }).then((r) => expect(r.choices[0]!.message.content).toBe("messages=2"));
    const response = (await (await fetch(`${provider.url.replace(/\/v1$/, "")}/_requests?key=seen`)).json()) as { requests: Record<string, unknown>[] };
    expect(response.requests).toHaveLength(1);
    expect(response.requests[0]).toMatchObject({ seed: 7, messages: [{ role: "system" }, { content: [{ image_url: { url: expect.stringMatching(/^data:image\/png;base64,A+…$/) } }] }] });
    expect(JSON.stringify(response.requests[0]).length).toBeLessThan(500);
  });
});
