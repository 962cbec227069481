import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFunctionsHost, type FunctionsHost } from "../../../scripts/functions-host.js";
import { executionRecord, providerAborts, signedInClient } from "../support/firebase.js";
import { functionUrl } from "../support/stack.js";
import { readUntil } from "../support/stream.js";

/**
 * The bytes on the wire. Through the Functions emulator where it is faithful, and through
 * the deployed handlers on a plain Node server (scripts/functions-host.ts) where the
 * emulator's proxy stands in the way: CORS preflights (it answers them itself), client
 * disconnects (it does not pass them on), body size limits.
 */

let token: string;
let uid: string;
let host: FunctionsHost;

beforeAll(async () => {
  const user = await signedInClient();
  token = user.idToken;
  uid = user.uid;
  host = await startFunctionsHost();
});
afterAll(() => host?.close());

const chat = (base: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body,
  });

describe("SSE framing", () => {
  it("is exactly OpenAI's: role chunk, one event per delta, finish, usage, [DONE]; no blank events", async () => {
    const response = await chat(
      functionUrl("api"),
      JSON.stringify({ model: "local-mini+deltas=3", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }] }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(response.headers.get("cache-control")).toBe("no-cache, no-transform");
    const executionId = response.headers.get("x-execution-id")!;
    const text = await response.text();
    const created = Number(/"created":(\d+)/.exec(text)![1]);
    const head = `{"id":"chatcmpl-${executionId}","object":"chat.completion.chunk","created":${created},"model":"local-mini+deltas=3",`;
    const usage = `{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}`;
    expect(text).toBe(
      [
        `data: ${head}"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`,
        `data: ${head}"choices":[{"index":0,"delta":{"content":"alpha "},"finish_reason":null}]}\n\n`,
        `data: ${head}"choices":[{"index":0,"delta":{"content":"bravo "},"finish_reason":null}]}\n\n`,
        `data: ${head}"choices":[{"index":0,"delta":{"content":"charlie"},"finish_reason":null}]}\n\n`,
        `data: ${head}"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n`,
        `data: ${head}"choices":[],"usage":${usage}}\n\n`,
        `data: [DONE]\n\n`,
      ].join(""),
    );
  });

  it("without include_usage sends no usage event", async () => {
    const response = await chat(functionUrl("api"), JSON.stringify({ model: "local-mini", stream: true, messages: [{ role: "user", content: "hi" }] }));
    const events = (await response.text()).split("\n\n").filter((e) => e !== "");
    expect(events.every((e) => e.startsWith("data: "))).toBe(true);
    expect(events.some((e) => e.includes('"usage"'))).toBe(false);
    expect(events.at(-1)).toBe("data: [DONE]");
  });

  it("an error after admission is one error event, then the stream closes (no [DONE])", async () => {
    const response = await chat(functionUrl("api"), JSON.stringify({ model: "local-mini+fail=quota", stream: true, messages: [{ role: "user", content: "hi" }] }));
    const events = (await response.text()).split("\n\n").filter((e) => e !== "");
    expect(events).toHaveLength(1);
    const error = JSON.parse(events[0]!.slice("data: ".length)) as { error: Record<string, unknown> };
    expect(error.error).toMatchObject({ type: "provider_quota_exhausted", code: "failed-precondition", retryable: false });
    expect(error.error.execution_id).toBe(response.headers.get("x-execution-id"));
  });

  it("an error before admission keeps its HTTP status even when streaming was asked", async () => {
    const response = await chat(functionUrl("api"), JSON.stringify({ model: "nope", stream: true, messages: [{ role: "user", content: "hi" }] }));
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { type: "not_found", code: "not-found" } });
  });
});

describe("bad requests", () => {
  it("malformed JSON in a body we read → 400 with an OpenAI-style body", async () => {
    const response = await chat(functionUrl("api"), '{"model": oops', { "content-type": "text/plain" });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: { message: "The request body is not valid JSON.", type: "validation", code: "invalid-argument", param: null, retryable: false },
    });
  });

  it("a JSON body without Content-Type → 400 saying so (not that the body is empty)", async () => {
    // fetch sends a byte array without any Content-Type, as curl --data-binary with -H 'content-type:' does.
    const body = new TextEncoder().encode(JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: "hi" }] }));
    const response = await fetch(`${functionUrl("api")}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body });
    expect(response.status).toBe(400);
    expect((await response.json()) as unknown).toMatchObject({
      error: { type: "validation", message: "The request has a body but no Content-Type header; send it with Content-Type: application/json." },
    });
  });

  it("malformed JSON declared as application/json → 400 from the platform, never a 500 or a stack trace", async () => {
    const response = await chat(functionUrl("api"), '{"model": oops');
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text).not.toMatch(/SyntaxError|at JSON\.parse|node_modules/);
  });

  it("missing and forged tokens → 401 unauthenticated", async () => {
    const body = JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: "hi" }] });
    const missing = await fetch(functionUrl("api", "/v1/chat/completions"), { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: { type: "unauthenticated", code: "unauthenticated" } });
    const forged = await chat(functionUrl("api"), body, { authorization: `Bearer ${token.slice(0, -8)}AAAAAAAA.x` });
    expect(forged.status).toBe(401);
    const other = await chat(functionUrl("api"), body, { authorization: "Basic dXNlcjpwYXNz" });
    expect(other.status).toBe(401);
  });

  it("names unknown and unsupported fields", async () => {
    const unknown = await chat(functionUrl("api"), JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: "x" }], temprature: 1 }));
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe("Unrecognized request argument: 'temprature'.");
    const image = await chat(
      functionUrl("api"),
      JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }),
    );
    expect(image.status).toBe(400);
  });

  it("names the pipeline's refusals in OpenAI's fields, and says which errors to retry (x-should-retry)", async () => {
    const sampling = await chat(functionUrl("api"), JSON.stringify({ model: "local-pro", temperature: 0.3, messages: [{ role: "user", content: "x" }] }));
    expect(sampling.status).toBe(400);
    expect(sampling.headers.get("x-should-retry")).toBe("false");
    expect(((await sampling.json()) as { error: { message: string } }).error.message).toBe('temperature: model "local-pro" does not take this parameter.');
    const tooLong = await chat(functionUrl("api"), JSON.stringify({ model: "local-mini", max_tokens: 999_999, messages: [{ role: "user", content: "x" }] }));
    expect(((await tooLong.json()) as { error: { message: string } }).error.message).toBe('max_tokens: at most 4096 for model "local-mini".');
    const overloaded = await chat(functionUrl("api"), JSON.stringify({ model: "local-mini+fail=server", messages: [{ role: "user", content: "x" }] }));
    expect(overloaded.status).toBe(503);
    expect(overloaded.headers.get("x-should-retry")).toBe("true");
  });

  it("bad percent-encoding in the cancel path → 400 in the contract's error shape (deployed handler), not a plain-text 500", async () => {
    const response = await fetch(`${host.url}/api/v1/executions/%E0%A4%A/cancel`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(await response.json()).toMatchObject({
      error: { type: "validation", code: "invalid-argument", message: expect.stringContaining("executionId"), retryable: false },
    });
  });

  it("refuses a body over the size limit with 413 (deployed handler)", async () => {
    const huge = JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: "x".repeat(11 * 1024 * 1024) }] });
    const response = await chat(`${host.url}/api`, huge);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { type: "validation" } });
  });

  it("GET /v1/models lists only the models that can be called here, with prices and capabilities", async () => {
    const response = await fetch(functionUrl("api", "/v1/models"));
    const body = (await response.json()) as { object: string; data: { id: string; owned_by: string }[] };
    expect(body.object).toBe("list");
    expect(body.data.find((m) => m.id === "local-mini")).toMatchObject({
      object: "model",
      owned_by: "local",
      pricing: { inputPerMTokUsd: 0.1, outputPerMTokUsd: 0.4, cachedInputPerMTokUsd: 0.05 },
      capabilities: { input: ["text", "image", "file", "audio"], tools: true, structuredOutput: true, contextWindow: 32_768, maxOutputTokens: 4_096 },
    });
    expect(body.data.find((m) => m.id === "local-text")).toMatchObject({ capabilities: { input: ["text"], tools: false, structuredOutput: false } });
    expect(body.data.find((m) => m.id === "local-pro")).toMatchObject({ capabilities: { unsupportedParams: ["temperature", "top_p", "presence_penalty", "frequency_penalty"] } });
    // No key for OpenAI, Gemini or OpenRouter, no URL for Ollama here: none of theirs is listed.
    expect(new Set(body.data.map((m) => m.owned_by))).toEqual(new Set(["local"]));
  });
});

describe("CORS (deployed handler)", () => {
  const withOrigins = async <T>(origins: string, work: () => Promise<T>): Promise<T> => {
    process.env.CORS_ORIGINS = origins;
    try {
      return await work();
    } finally {
      delete process.env.CORS_ORIGINS;
    }
  };
  const preflight = (origin: string) =>
    fetch(`${host.url}/api/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, x-stainless-os" },
    });

  it("answers a preflight from an allowed origin, echoing the requested headers", async () => {
    const response = await withOrigins("https://app.example.com", () => preflight("https://app.example.com"));
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(response.headers.get("access-control-allow-methods")).toBe("GET, POST, OPTIONS");
    expect(response.headers.get("access-control-allow-headers")).toBe("authorization, content-type, x-stainless-os");
  });

  it("grants nothing to other origins, and nothing by default in production", async () => {
    const other = await withOrigins("https://app.example.com", () => preflight("https://evil.example.com"));
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const byDefault = await preflight("https://app.example.com");
    expect(byDefault.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("exposes x-execution-id to allowed origins on real requests", async () => {
    const response = await withOrigins("*", () =>
      chat(`${host.url}/api`, JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: "hi" }] }), { origin: "https://any.example" }),
    );
    expect(response.headers.get("access-control-allow-origin")).toBe("https://any.example");
    expect(response.headers.get("access-control-expose-headers")).toContain("x-execution-id");
  });

  it("exposes every header an error answer carries (a browser's openai SDK reads x-should-retry)", async () => {
    const response = await withOrigins("*", () =>
      chat(`${host.url}/api`, JSON.stringify({ model: "local-mini+fail=server", messages: [{ role: "user", content: "hi" }] }), { origin: "https://any.example" }),
    );
    expect(response.status).toBe(503);
    const exposed = (response.headers.get("access-control-expose-headers") ?? "").split(/,\s*/);
    const ours = [...response.headers.keys()].filter((name) => name.startsWith("x-") || name.startsWith("retry-after"));
    expect(ours).toEqual(expect.arrayContaining(["x-execution-id", "x-should-retry"]));
    expect(exposed).toEqual(expect.arrayContaining(ours));
  });
});

describe("App Check (deployed handler)", () => {
  it("with ENFORCE_APP_CHECK, a request without a valid token → 403 permission_denied", async () => {
    process.env.ENFORCE_APP_CHECK = "true";
    try {
      const response = await chat(`${host.url}/api`, JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: "hi" }] }), {
        "x-firebase-appcheck": "forged",
      });
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ error: { type: "permission_denied", code: "permission-denied" } });
    } finally {
      delete process.env.ENFORCE_APP_CHECK;
    }
  });
});

describe("App Check replay protection (deployed handler)", () => {
  it("with APP_CHECK_REPLAY_PROTECTION, a token sent to /v1/executions/{id}/cancel is verified and spent too, as on every /v1 route", async () => {
    process.env.APP_CHECK_REPLAY_PROTECTION = "true";
    try {
      // Not enforced, but sent: it must be a valid, unused token (the Admin SDK refuses this one).
      const cancel = await fetch(`${host.url}/api/v1/executions/someid/cancel`, { method: "POST", headers: { authorization: `Bearer ${token}`, "x-firebase-appcheck": "forged" } });
      expect(cancel.status).toBe(403);
      expect(await cancel.json()).toMatchObject({ error: { type: "permission_denied" } });
      const chat = await fetch(`${host.url}/api/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "x-firebase-appcheck": "forged" },
        body: JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(chat.status).toBe(403);
      // Without a token (not enforced) both proceed: the cancel finds no such execution.
      const without = await fetch(`${host.url}/api/v1/executions/someid/cancel`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
      expect(without.status).toBe(404);
    } finally {
      delete process.env.APP_CHECK_REPLAY_PROTECTION;
    }
  });
});

describe("client disconnect (deployed handler)", () => {
  it("aborts the upstream request and records cancelled with the partial output", async () => {
    const key = `abort-${randomUUID().slice(0, 8)}`;
    const controller = new AbortController();
    const response = await chat(
      `${host.url}/api`,
      JSON.stringify({ model: `local-pro+deltas=200,interval=25,key=${key}`, stream: true, messages: [{ role: "user", content: "hi" }] }),
    ).then((r) => r, (e: unknown) => Promise.reject(e));
    const executionId = response.headers.get("x-execution-id")!;
    const reader = response.body!.getReader();
    // Stop reading after two deltas and hang up.
    await readUntil(reader, (text) => (text.match(/"content":"[a-z]/g) ?? []).length >= 2);
    controller.abort();
    await reader.cancel();

    await expect.poll(() => providerAborts(key), { timeout: 10_000 }).toBe(1);
    await expect.poll(async () => (await executionRecord(uid, executionId))?.status, { timeout: 10_000 }).toBe("cancelled");
    const record = await executionRecord(uid, executionId);
    expect(record!.output.startsWith("alpha bravo")).toBe(true);
    expect(record!.output.length).toBeLessThan(200 * 6);
  });
});
