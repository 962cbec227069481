import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { ExecuteChunk } from "../../src/adapters/execute-prompt-callable.js";
import type { ExecutionResult } from "../../src/core/execution.js";
import { adminDb, anonymousFunctions, callable, rejection, executionRecord, providerCount, signedInClient } from "../support/firebase.js";
import { functionUrl } from "../support/stack.js";

/**
 * executePrompt through the Functions emulator with the firebase web SDK, one test per
 * local-provider scenario: what the client sees (code, details) and what Firestore keeps.
 */

type Client = Awaited<ReturnType<typeof signedInClient>>;
let client: Client;
beforeAll(async () => {
  client = await signedInClient();
});

const execute = () => callable<unknown, ExecutionResult, ExecuteChunk>(client.functions, "executePrompt");
const ask = (model: string, content = "hello there world", extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: "user", content }],
  ...extra,
});
/** A scenario key unique to this run, so provider counts are ours alone. */
const key = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;


describe("executePrompt (callable, firebase web SDK)", () => {
  it("succeeds and leaves a succeeded record with usage and cost", async () => {
    const { data } = await execute()(ask("local-mini"));
    expect(data).toMatchObject({
      model: "local-mini",
      provider: "local",
      output: "Echo: hello there world",
      finishReason: "stop",
      usage: { inputTokens: 5, outputTokens: 4, estimated: false },
      cost: { micros: 2, usd: 0.000002 },
      attempts: 1,
    });
    const record = await executionRecord(client.uid, data.executionId);
    expect(record).toMatchObject({
      status: "succeeded",
      model: "local-mini",
      output: "Echo: hello there world",
      usage: { totalTokens: 9 },
      cost: { micros: 2, priceVersion: "local-1" },
      attempts: [{ outcome: "succeeded", model: "local-mini" }],
    });
    expect(record!.createdAt.toDate()).toBeInstanceOf(Date);
    expect(record!.expireAt.toMillis()).toBeGreaterThan(record!.createdAt.toMillis());
  });

  it("streams with .stream(): a start chunk, the deltas, then the same result", async () => {
    const { stream, data } = await execute().stream(ask("local-pro+deltas=5,interval=5"));
    const chunks: ExecuteChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const result = await data;
    expect(chunks[0]).toEqual({ type: "start", executionId: result.executionId, model: "local-pro+deltas=5,interval=5" });
    expect(chunks.slice(1)).toEqual(["alpha ", "bravo ", "charlie ", "delta ", "echo"].map((text) => ({ type: "delta", text })));
    expect(result.output).toBe("alpha bravo charlie delta echo");
    expect((await executionRecord(client.uid, result.executionId))?.status).toBe("succeeded");
  });

  it("429 then success: retried after Retry-After, two attempts recorded", async () => {
    const k = key("r429");
    const { data } = await execute()(ask(`local-mini+fail=rate_limit,times=1,retry-after-ms=50,key=${k}`));
    expect(data.attempts).toBe(2);
    expect(await providerCount(k)).toBe(2);
    expect((await executionRecord(client.uid, data.executionId))?.attempts).toMatchObject([
      { outcome: "failed", category: "provider_rate_limited", httpStatus: 429 },
      { outcome: "succeeded" },
    ]);
  });

  it("500 on every retry, then the fallback model answers", async () => {
    const k = key("down");
    const { data } = await execute()(ask(`local-mini+fail=server,key=${k}`, "hi", { fallbackModels: ["local-pro"] }));
    expect(data).toMatchObject({ model: "local-pro", output: "Echo: hi", attempts: 5 });
    expect(await providerCount(k)).toBe(4);
    const record = await executionRecord(client.uid, data.executionId);
    expect(record).toMatchObject({ status: "succeeded", model: "local-pro" });
    expect(record!.attempts.filter((a: { httpStatus?: number }) => a.httpStatus === 500)).toHaveLength(4);
  });

  it.each([
    ["auth", "functions/failed-precondition", "provider_auth", false],
    ["quota", "functions/failed-precondition", "provider_quota_exhausted", false],
    ["context_length", "functions/invalid-argument", "context_length_exceeded", false],
    ["content_filter", "functions/invalid-argument", "content_filtered", false],
  ] as const)("fail=%s → %s / %s, one attempt, failed record", async (fail, code, category, retryable) => {
    const error = await rejection(execute()(ask(`local-mini+fail=${fail}`)));
    expect(error.code).toBe(code);
    const details = error.details as Record<string, unknown>;
    expect(details).toMatchObject({ category, retryable, model: `local-mini+fail=${fail}`, provider: "local" });
    expect(error.message).not.toMatch(/sk-|API key provided|"error"/);
    const record = await executionRecord(client.uid, details.executionId as string);
    expect(record).toMatchObject({ status: "failed", error: { category }, usage: { totalTokens: 0 }, cost: { micros: 0 } });
    expect(record!.attempts).toHaveLength(1);
  });

  it("a hung provider → deadline-exceeded / timeout, record timed_out", async () => {
    const error = await rejection(execute()(ask("local-mini+fail=hang", "hi", { timeoutMs: 1_500 })));
    expect(error.code).toBe("functions/deadline-exceeded");
    const details = error.details as Record<string, unknown>;
    expect(details).toMatchObject({ category: "timeout", retryable: true });
    const record = await executionRecord(client.uid, details.executionId as string);
    expect(record).toMatchObject({ status: "timed_out", error: { category: "timeout" } });
  });

  it("a stream cut mid-way → unavailable / network, partial output and estimated usage kept", async () => {
    // A user this instance has not admitted yet: no speculative start, so the deltas reach the
    // client before the cut (held ones would not, and the attempt would be retried instead).
    const fresh = await signedInClient();
    const { stream, data } = await callable<unknown, ExecutionResult, ExecuteChunk>(fresh.functions, "executePrompt").stream(ask("local-mini+fail=cut,after=2"));
    const result = rejection(data);
    const texts: string[] = [];
    await rejection(
      (async () => {
        for await (const chunk of stream) if (chunk.type === "delta") texts.push(chunk.text);
      })(),
    );
    const error = await result;
    expect(texts).toEqual(["Echo: ", "hello "]);
    expect(error.code).toBe("functions/unavailable");
    const details = error.details as Record<string, unknown>;
    expect(details).toMatchObject({ category: "network", retryable: true });
    const record = await executionRecord(fresh.uid, details.executionId as string);
    // Estimated: input 17 characters → 5 + 4 framing = 9 tokens, output 3: 9 × 0.10 + 3 × 0.40 = 2.1 µ$ → 2.
    expect(record).toMatchObject({
      status: "failed",
      output: "Echo: hello ",
      usage: { estimated: true, inputTokens: 9, outputTokens: 3 },
      cost: { micros: 2 },
    });
    expect(record!.attempts).toHaveLength(1);
  });

  it("a malformed SSE line every time → unavailable / provider_unavailable, partial output kept", async () => {
    const error = await rejection(execute()(ask("local-mini+fail=malformed,after=1")));
    expect(error.code).toBe("functions/unavailable");
    const details = error.details as Record<string, unknown>;
    expect(details).toMatchObject({ category: "provider_unavailable" });
    expect(await executionRecord(client.uid, details.executionId as string)).toMatchObject({ status: "failed", output: "Echo: " });
  });

  it("a reset before headers is retried; when it keeps happening → unavailable / network", async () => {
    const k = key("reset");
    const { data } = await execute()(ask(`local-mini+fail=reset,times=1,key=${k}`));
    expect(data.attempts).toBe(2);
    const error = await rejection(execute()(ask(`local-mini+fail=reset,key=${key("reset-always")}`)));
    expect(error.code).toBe("functions/unavailable");
    expect(error.details).toMatchObject({ category: "network", retryable: true });
  });

  it("refuses a caller without a user as unauthenticated, with details", async () => {
    const error = await rejection(callable(anonymousFunctions(), "executePrompt")(ask("local-mini")));
    expect(error.code).toBe("functions/unauthenticated");
    expect(error.details).toEqual({ category: "unauthenticated", retryable: false });
  });

  it("answers bad input with invalid-argument naming the field, and records nothing", async () => {
    const error = await rejection(execute()({ messages: [{ role: "user", content: "x" }], temperature: 2 }));
    expect(error.code).toBe("functions/invalid-argument");
    expect(error.message).toContain('request: unknown field "temperature"');
    expect(error.details).toEqual({ category: "validation", retryable: false });
    const notFound = await rejection(execute()(ask("gpt-9")));
    expect(notFound.code).toBe("functions/not-found");
  });
});

/** The callable protocol by hand: what the firebase SDKs never send, but anyone can. */
async function rawCall(body: string, token: string | undefined = client.idToken) {
  const response = await fetch(functionUrl("executePrompt"), {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });
  return { status: response.status, body: (await response.json()) as { error?: { status: string; message: string; details?: Record<string, unknown> } } };
}

describe("reliability round 2 through the emulator (callable)", () => {
  it("a client waiting for the whole answer keeps its retry after a mid-stream cut; both attempts are charged", async () => {
    const { data } = await execute()(ask(`local-mini+fail=cut,after=2,times=1,key=${key("cut-whole")}`, "one two three"));
    expect(data).toMatchObject({ output: "Echo: one two three", attempts: 2 });
    const record = await executionRecord(client.uid, data.executionId);
    const costs = (record!.attempts as { costMicros?: number }[]).map((a) => a.costMicros ?? 0);
    expect(costs[0]).toBeGreaterThan(0);
    expect(record!.cost.micros).toBe(costs[0]! + costs[1]!);
    expect(data.cost.micros).toBe(record!.cost.micros);
  });

  it("a primary model without a key falls back instead of stopping the request", async () => {
    const { data } = await execute()(ask("gpt-4o-mini", "hi", { fallbackModels: ["local-mini"] }));
    expect(data).toMatchObject({ model: "local-mini", output: "Echo: hi" });
  });

  it("a lone surrogate is invalid-argument naming the field, not a 500", async () => {
    const error = await rejection(execute()(ask("local-mini", "hi \ud800 there")));
    expect(error.code).toBe("functions/invalid-argument");
    expect(error.message).toContain("messages[0].content: contains an unpaired surrogate (ill-formed UTF-16)");
  });

  it("__proto__ cannot smuggle fields past the unknown-key rule", async () => {
    const smuggled = await rawCall('{"data":{"__proto__":{"messages":[{"role":"user","content":"smuggled"}]},"model":"local-mini"}}');
    expect(smuggled.status).toBe(400);
    expect(smuggled.body.error).toMatchObject({ status: "INVALID_ARGUMENT", details: { category: "validation" } });
    const inParams = await rawCall('{"data":{"messages":[{"role":"user","content":"hi"}],"params":{"__proto__":{"temperature":1}}}}');
    expect(inParams.body.error).toMatchObject({ status: "INVALID_ARGUMENT", message: expect.stringContaining("__proto__") });
  });

  it("an undeclared template variable named like a built-in is refused", async () => {
    await adminDb()
      .doc(`users/${client.uid}/prompts/builtins`)
      .set({ name: "builtins", messages: [{ role: "user", content: "say {{x}}" }], variables: { x: { type: "string" } } });
    const error = await rejection(execute()({ promptId: "builtins", model: "local-mini", variables: { x: "1", constructor: "2" } }));
    expect(error.code).toBe("functions/invalid-argument");
    expect(error.message).toContain("variables.constructor");
  });

  it("a bearer token that names no user is unauthenticated, and nothing is written under users/undefined", async () => {
    const fake = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"aud":"x"}').toString("base64url")}.sig`;
    const answer = await rawCall(JSON.stringify({ data: ask("local-mini") }), fake);
    expect(answer.status).toBe(401);
    expect(answer.body.error).toMatchObject({ status: "UNAUTHENTICATED", details: { category: "unauthenticated" } });
    expect((await adminDb().collection("users/undefined/executions").get()).size).toBe(0);
  });

  it.each([
    ['{"__proto__":null,"model":"local-mini","messages":[{"role":"user","content":"hi"}]}', '__proto__: a "__proto__" key is not allowed'],
    ['{"__proto__":"x","model":"local-mini","messages":[{"role":"user","content":"hi"}]}', '__proto__: a "__proto__" key is not allowed'],
    ['{"model":"local-mini","messages":[{"role":"user","content":"hi"}],"params":{"__proto__":null}}', 'params.__proto__: a "__proto__" key is not allowed'],
    ['{"model":"local-mini","messages":[{"role":"user","content":"hi","__proto__":7}]}', 'messages[0].__proto__: a "__proto__" key is not allowed'],
  ])("a __proto__ key with a null, primitive or nested value is refused before the framework decodes it: %s", async (data, message) => {
    const answer = await rawCall(`{"data":${data}}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ status: "INVALID_ARGUMENT", message, details: { category: "validation", retryable: false } });
  });

  it("/v1 refuses a __proto__ key too (express.json keeps it as an ordinary key)", async () => {
    for (const body of [
      '{"__proto__":null,"model":"local-mini","messages":[{"role":"user","content":"hi"}]}',
      '{"model":"local-mini","messages":[{"role":"user","content":"hi","__proto__":"x"}]}',
    ]) {
      const response = await fetch(functionUrl("api", "/v1/chat/completions"), {
        method: "POST",
        headers: { authorization: `Bearer ${client.idToken}`, "content-type": "application/json" },
        body,
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { type: string; message: string } }).error).toMatchObject({ type: "validation", message: expect.stringContaining('"__proto__" key is not allowed') });
    }
  });

  it('a tool schema with a property named "@type" (JSON-LD): refused on the callable with what to do; /v1 takes it', async () => {
    const parameters = { type: "object", properties: { "@type": { type: "string" }, name: { type: "string" } }, required: ["name"] };
    const refused = await rawCall(JSON.stringify({ data: { model: "local-mini", tools: [{ name: "person", parameters }], messages: [{ role: "user", content: "person?" }] } }));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ status: "INVALID_ARGUMENT", details: { category: "validation" } });
    expect(refused.body.error!.message).toContain('tools[0].parameters.properties: a key "@type" cannot be sent to a callable function');
    expect(refused.body.error!.message).toContain("POST /v1/chat/completions");
    const response = await fetch(functionUrl("api", "/v1/chat/completions"), {
      method: "POST",
      headers: { authorization: `Bearer ${client.idToken}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "local-mini", tools: [{ type: "function", function: { name: "person", parameters } }], messages: [{ role: "user", content: "call person" }] }),
    });
    expect(response.status).toBe(200);
    const completion = (await response.json()) as { choices: { message: { tool_calls?: { function: { name: string } }[] } }[] };
    expect(completion.choices[0]!.message.tool_calls?.[0]?.function.name).toBe("person");
  });

  it.each([
    ['{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"NaN"}', "timeoutMs: \"NaN\" is not a number"],
    ['{"@type":"type.googleapis.com/google.protobuf.Struct","value":"1"}', 'timeoutMs: a key "@type" cannot be sent to a callable function'],
  ])("malformed wire data %s → invalid-argument from us, not a 500 from the framework", async (timeoutMs, message) => {
    const answer = await rawCall(`{"data":{"model":"local-mini","messages":[{"role":"user","content":"hi"}],"timeoutMs":${timeoutMs}}}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ status: "INVALID_ARGUMENT", message: expect.stringContaining(message), details: { category: "validation" } });
  });

  it("100,000-deep nesting → invalid-argument, not a stack overflow", async () => {
    const deep = `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`;
    const answer = await rawCall(`{"data":{"model":"local-mini","messages":[{"role":"user","content":"hi"}],"params":${deep}}}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ status: "INVALID_ARGUMENT", message: expect.stringContaining("nested more than 64 levels deep") });
  });
});

describe("rich prompts on Firestore (callable)", () => {
  const weather = { name: "weather", description: "Today's weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } };

  it("a stream cut in the middle of tool-call arguments: the client had part of the call, the record keeps it, the ledger balances", async () => {
    const fresh = await signedInClient();
    const run = callable<unknown, ExecutionResult, ExecuteChunk>(fresh.functions, "executePrompt");
    const { stream, data } = await run.stream(ask("local-mini+fail=cut_tool", "hi", { tools: [weather], toolChoice: "required" }));
    const result = rejection(data);
    const argumentsSeen: string[] = [];
    await rejection(
      (async () => {
        for await (const chunk of stream) if (chunk.type === "tool_call") argumentsSeen.push(chunk.argumentsDelta);
      })(),
    );
    const error = await result;
    expect(error.code).toBe("functions/unavailable");
    const executionId = (error.details as { executionId: string }).executionId;
    const record = await executionRecord(fresh.uid, executionId);
    expect(record).toMatchObject({ status: "failed", error: { category: "network" }, toolCalls: [{ id: "call_1_0", name: "weather" }] });
    const kept = (record!.toolCalls as { arguments: string }[])[0]!.arguments;
    // What the client received is what the record keeps: a start of the arguments, not the whole.
    expect(kept).toBe(argumentsSeen.join(""));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept).not.toBe('{"city":""}');
    // The ledger: this execution alone, its true cost, no reservation left.
    const month = new Date().toISOString().slice(0, 7);
    const usage = (await adminDb().doc(`users/${fresh.uid}/usage/${month}`).get()).data();
    expect(usage).toMatchObject({ requests: 1, failed: 1, succeeded: 0, costMicros: (record!.cost as { micros: number }).micros });
    expect((record!.cost as { micros: number }).micros).toBeGreaterThan(0);
    const limits = (await adminDb().doc(`users/${fresh.uid}/limits/current`).get()).data();
    expect(Object.keys((limits?.reservations as Record<string, unknown>) ?? {})).toEqual([]);
  });
});
