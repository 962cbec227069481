import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { CATEGORIES, classifyError, ExecutionError, parseRetryAfter, type ErrorCategory } from "../../src/core/errors.js";

/** The error the openai SDK itself builds for a status and body, headers included. */
function apiError(status: number, error: Record<string, unknown>, headers: Record<string, string> = {}) {
  return OpenAI.APIError.generate(status, { error }, undefined, new Headers(headers));
}

function networkError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

describe("classifyError: openai SDK errors by status and body", () => {
  const cases: [string, unknown, ErrorCategory, boolean][] = [
    ["401 invalid key", apiError(401, { code: "invalid_api_key", message: "Incorrect API key provided: sk-abc...wxyz" }), "provider_auth", false],
    ["403 region", apiError(403, { code: "unsupported_country_region_territory" }), "provider_auth", false],
    ["402 OpenRouter credits", apiError(402, { message: "Insufficient credits" }), "provider_quota_exhausted", false],
    ["429 insufficient_quota", apiError(429, { code: "insufficient_quota", type: "insufficient_quota" }), "provider_quota_exhausted", false],
    ["429 rate limit", apiError(429, { code: "rate_limit_exceeded" }), "provider_rate_limited", true],
    ["400 context_length_exceeded", apiError(400, { code: "context_length_exceeded" }), "context_length_exceeded", false],
    ["400 context by message", apiError(400, { message: "This model's maximum context length is 8192 tokens" }), "context_length_exceeded", false],
    ["400 content_filter", apiError(400, { code: "content_filter" }), "content_filtered", false],
    ["400 content policy by message", apiError(400, { message: "Your request was rejected by our content management policy." }), "content_filtered", false],
    ["400 other", apiError(400, { message: "temperature must be <= 2" }), "validation", false],
    ["404 model", apiError(404, { code: "model_not_found" }), "not_found", false],
    ["408", apiError(408, {}), "timeout", true],
    ["409", apiError(409, {}), "provider_unavailable", true],
    ["500", apiError(500, { type: "server_error" }), "provider_unavailable", true],
    ["502", apiError(502, {}), "provider_unavailable", true],
    ["503 overloaded", apiError(503, { code: "overloaded" }), "provider_unavailable", true],
    ["in-stream error event", new OpenAI.APIError(undefined, { message: "boom", type: "server_error" }, undefined, new Headers()), "provider_unavailable", true],
    ["SDK connection error", new OpenAI.APIConnectionError({ cause: networkError("ECONNRESET") }), "network", true],
    ["SDK timeout", new OpenAI.APIConnectionTimeoutError(), "timeout", true],
    ["SDK user abort", new OpenAI.APIUserAbortError(), "cancelled", false],
  ];
  it.each(cases)("%s", (_, error, category, retryable) => {
    const classified = classifyError(error);
    expect(classified.category).toBe(category);
    expect(classified.retryable).toBe(retryable);
    expect(classified.code).toBe(CATEGORIES[category].code);
  });

  it("keeps the upstream status and reads retry-after-ms before retry-after", () => {
    const classified = classifyError(apiError(429, {}, { "retry-after-ms": "250", "retry-after": "3" }));
    expect(classified.upstreamStatus).toBe(429);
    expect(classified.retryAfterMs).toBe(250);
    expect(classifyError(apiError(503, {}, { "retry-after": "2" })).retryAfterMs).toBe(2000);
  });

  it("never repeats the provider's message, which can echo key fragments", () => {
    const classified = classifyError(apiError(401, { message: "Incorrect API key provided: sk-proj-abcdefghijklmnop" }));
    expect(classified.message).not.toContain("sk-");
    expect(classified.message).toContain("HTTP 401");
  });
});

describe("classifyError: Node and fetch errors", () => {
  it.each(["ECONNRESET", "ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EPIPE", "UND_ERR_SOCKET"])("%s → network", (code) => {
    expect(classifyError(networkError(code)).category).toBe("network");
  });

  it("looks through fetch's `TypeError: fetch failed` to the cause's code", () => {
    const error = new TypeError("fetch failed", { cause: networkError("ECONNREFUSED") });
    const classified = classifyError(error);
    expect(classified.category).toBe("network");
    expect(classified.message).toContain("ECONNREFUSED");
  });

  it("treats an undici body cut (`terminated`) as network", () => {
    expect(classifyError(new TypeError("terminated", { cause: { code: "UND_ERR_SOCKET" } })).category).toBe("network");
    expect(classifyError(new TypeError("terminated")).category).toBe("network");
  });

  it("ETIMEDOUT and undici timeouts → timeout", () => {
    expect(classifyError(networkError("ETIMEDOUT")).category).toBe("timeout");
    expect(classifyError(networkError("UND_ERR_HEADERS_TIMEOUT")).category).toBe("timeout");
  });

  it("a DOM AbortError is a cancellation, a TimeoutError a timeout", () => {
    expect(classifyError(new DOMException("aborted", "AbortError")).category).toBe("cancelled");
    expect(classifyError(new DOMException("timed out", "TimeoutError")).category).toBe("timeout");
  });

  it("a malformed stream (JSON.parse failing on an SSE line) → provider_unavailable, retryable", () => {
    let syntax: unknown;
    try {
      JSON.parse('{"id":"broken", "choices": [');
    } catch (error) {
      syntax = error;
    }
    const classified = classifyError(syntax);
    expect(classified.category).toBe("provider_unavailable");
    expect(classified.retryable).toBe(true);
  });

  it("anything else is internal, not retryable, with the cause kept for logs only", () => {
    const bug = new RangeError("index out of range");
    const classified = classifyError(bug);
    expect(classified).toMatchObject({ category: "internal", retryable: false, message: "Internal error." });
    expect(classified.cause).toBe(bug);
    expect(classifyError("a string").category).toBe("internal");
    expect(classifyError(undefined).category).toBe("internal");
  });

  it("passes ExecutionErrors through untouched", () => {
    const error = new ExecutionError("budget_exceeded");
    expect(classifyError(error)).toBe(error);
  });
});

describe("ExecutionError.toDetails", () => {
  it("carries exactly the fields of API.md", () => {
    const error = new ExecutionError("provider_rate_limited", undefined, { retryAfterMs: 1234.4 });
    error.executionId = "exec1";
    error.model = "local-mini";
    error.provider = "local";
    expect(error.toDetails()).toEqual({
      category: "provider_rate_limited",
      retryable: true,
      retryAfterMs: 1234,
      executionId: "exec1",
      model: "local-mini",
      provider: "local",
    });
    expect(new ExecutionError("validation", "x").toDetails()).toEqual({ category: "validation", retryable: false });
  });
});

describe("parseRetryAfter", () => {
  const headers = (h: Record<string, string>) => new Headers(h);
  it("reads milliseconds, seconds and HTTP dates", () => {
    expect(parseRetryAfter(headers({ "retry-after-ms": "1500.5" }))).toBe(1500.5);
    expect(parseRetryAfter(headers({ "retry-after": "7" }))).toBe(7000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter(headers({ "retry-after": "Thu, 01 Jan 2026 00:00:05 GMT" }), now)).toBe(5000);
  });
  it("ignores garbage and absence", () => {
    expect(parseRetryAfter(headers({ "retry-after": "soon" }))).toBeUndefined();
    expect(parseRetryAfter(headers({}))).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
