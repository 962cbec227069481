import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { beforeAll, describe, expect, it } from "vitest";
import { paths } from "../../src/adapters/executions-repo.js";
import { adminDb, executionRecord, providerCount, signedInClient } from "../support/firebase.js";
import { functionUrl } from "../support/stack.js";

/**
 * The OpenAI-compatible endpoint through the Functions emulator, with the official
 * `openai` npm SDK as the client and an Auth-emulator ID token as its API key.
 */

let uid: string;
let client: OpenAI;

beforeAll(async () => {
  const user = await signedInClient();
  uid = user.uid;
  client = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: user.idToken, maxRetries: 0, timeout: 60_000 });
});

const ask = (model: string, content = "hello there world") => ({ model, messages: [{ role: "user" as const, content }] });

async function failure(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(OpenAI.APIError);
    return error as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error("expected the request to fail");
}

describe("POST /v1/chat/completions with the openai SDK", () => {
  it("non-streamed: a chat.completion with usage, x-execution-id, and the history record", async () => {
    const { data, response } = await client.chat.completions.create(ask("local-mini")).withResponse();
    const executionId = response.headers.get("x-execution-id")!;
    expect(executionId).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(data).toMatchObject({
      id: `chatcmpl-${executionId}`,
      object: "chat.completion",
      model: "local-mini",
      choices: [{ index: 0, message: { role: "assistant", content: "Echo: hello there world" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
    });
    expect(await executionRecord(uid, executionId)).toMatchObject({ status: "succeeded", output: "Echo: hello there world" });
  });

  it("streamed: chunks with for await, then the final usage chunk", async () => {
    const { data: stream, response } = await client.chat.completions
      .create({ ...ask("local-pro+deltas=4,interval=5"), stream: true, stream_options: { include_usage: true } })
      .withResponse();
    const executionId = response.headers.get("x-execution-id")!;
    const texts: string[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.id).toBe(`chatcmpl-${executionId}`);
      const choice = chunk.choices[0];
      if (choice?.delta.content) texts.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(texts).toEqual(["alpha ", "bravo ", "charlie ", "delta"]);
    expect(finish).toBe("stop");
    expect(usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 4 });
    expect(await executionRecord(uid, executionId)).toMatchObject({ status: "succeeded", output: "alpha bravo charlie delta" });
  });

  it("maps parameters: developer role, text parts, max_tokens → finish_reason length; fallback_models", async () => {
    const capped = await client.chat.completions.create({
      model: "local-mini",
      messages: [
        { role: "developer", content: "be brief" },
        { role: "user", content: [{ type: "text", text: "one two " }, { type: "text", text: "three" }] },
      ],
      max_tokens: 2,
    });
    expect(capped.choices[0]).toMatchObject({ message: { content: "Echo: one" }, finish_reason: "length" });
    const fallback = await client.chat.completions.create({ ...ask("local-mini+fail=not_found"), fallback_models: ["local-pro"] } as never);
    expect(fallback.model).toBe("local-pro");
  });

  it("Idempotency-Key: a repeat answers from the record without a new provider call", async () => {
    const key = `idem-${randomUUID()}`;
    const body = ask(`local-mini+key=${key}`);
    const first = await client.chat.completions.create(body, { headers: { "idempotency-key": key } });
    const second = await client.chat.completions.create(body, { headers: { "idempotency-key": key } });
    expect(second.choices[0]?.message.content).toBe(first.choices[0]?.message.content);
    expect(second.id).toBe(first.id);
    expect(await providerCount(key)).toBe(1);
    const conflict = await failure(client.chat.completions.create(ask("local-mini", "other"), { headers: { "idempotency-key": key } }));
    expect(conflict).toBeInstanceOf(OpenAI.ConflictError);
    expect(conflict.type).toBe("idempotency_conflict");
  });
});

describe("every error category as the SDK's matching error class, with our message", () => {
  it.each([
    ["validation", { ...ask("local-mini"), logprobs: true }, OpenAI.BadRequestError, 400, "Unsupported parameter: 'logprobs'"],
    ["not_found", ask("no-such-model"), OpenAI.NotFoundError, 404, '"no-such-model" is not in the catalog'],
    ["context_length_exceeded", ask("local-mini+fail=context_length"), OpenAI.BadRequestError, 400, "too long"],
    ["content_filtered", ask("local-mini+fail=content_filter"), OpenAI.BadRequestError, 400, "refused"],
    ["provider_auth", ask("local-mini+fail=auth"), OpenAI.BadRequestError, 400, "key"],
    ["provider_quota_exhausted", ask("local-mini+fail=quota"), OpenAI.BadRequestError, 400, "out of credit"],
    ["provider_rate_limited", ask("local-mini+fail=rate_limit,retry-after=300"), OpenAI.InternalServerError, 503, "rate limiting"],
    ["provider_unavailable", ask("local-mini+fail=unavailable"), OpenAI.InternalServerError, 503, "unavailable"],
    ["network", ask("local-mini+fail=reset"), OpenAI.InternalServerError, 503, "reach the model provider"],
  ] as const)("%s", async (category, body, errorClass, status, message) => {
    const error = await failure(client.chat.completions.create(body as never));
    expect(error).toBeInstanceOf(errorClass);
    expect(error.status).toBe(status);
    expect(error.type).toBe(category);
    expect(error.message).toContain(message);
    expect(error.message).not.toMatch(/sk-|Incorrect API key|stack/);
    const executionId = error.headers?.get("x-execution-id");
    if (category !== "validation" && category !== "not_found") {
      expect(await executionRecord(uid, executionId!)).toMatchObject({ status: "failed", error: { category } });
    }
    if (category === "provider_rate_limited") expect(error.headers?.get("retry-after")).toBe("300");
  });

  it("timeout → 504", async () => {
    const local = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: (await signedInClient()).idToken, maxRetries: 0 });
    // OpenAI's body has no timeout field: X-Timeout-Ms carries timeoutMs.
    const error = await failure(local.chat.completions.create(ask("local-mini+fail=hang"), { headers: { "x-timeout-ms": "1500" } }));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error.status).toBe(504);
    expect(error.type).toBe("timeout");
  });

  it("unauthenticated: a forged token → AuthenticationError", async () => {
    const forged = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: "not-a-firebase-token", maxRetries: 0 });
    const error = await failure(forged.chat.completions.create(ask("local-mini")));
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.type).toBe("unauthenticated");
  });

  it("rate_limited (requests per minute) → RateLimitError with Retry-After", async () => {
    const user = await signedInClient();
    const own = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: user.idToken, maxRetries: 0 });
    for (let i = 0; i < 30; i++) await own.chat.completions.create(ask("local-mini")); // RATE_LIMIT_PER_MINUTE defaults to 30
    const error = await failure(own.chat.completions.create(ask("local-mini")));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.type).toBe("rate_limited");
    const retryAfter = Number(error.headers?.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(Number(error.headers?.get("retry-after-ms"))).toBeLessThanOrEqual(60_000);
  });

  it("budget_exceeded → RateLimitError, not retryable", async () => {
    const user = await signedInClient();
    await adminDb().doc(paths.limits(user.uid)).set({ monthlyBudgetUsd: 0 }, { merge: true });
    const own = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: user.idToken, maxRetries: 0 });
    const error = await failure(own.chat.completions.create(ask("local-mini")));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.type).toBe("budget_exceeded");
    expect((error.error as { retryable?: boolean }).retryable).toBe(false);
  });

  it("a failure after the stream started arrives as one error event the SDK throws", async () => {
    const stream = await client.chat.completions.create({ ...ask("local-mini+fail=auth"), stream: true });
    const error = await failure(
      (async () => {
        for await (const _ of stream) void _;
      })(),
    );
    expect(error.message).toContain("key");
    expect((error.error as { type?: string }).type).toBe("provider_auth");
  });
});
