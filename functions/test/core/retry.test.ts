import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ExecutionError } from "../../src/core/errors.js";
import { backoffDelay, retry, type RetryPolicy } from "../../src/core/retry.js";

const policy: RetryPolicy = { maxRetries: 3, baseDelayMs: 500, maxDelayMs: 8_000 };

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});
afterEach(() => vi.useRealTimers());

/** An attempt function that fails with the given errors in turn, then succeeds; records when each attempt ran. */
function scripted(...failures: ExecutionError[]) {
  const calls: number[] = [];
  const fn = async () => {
    calls.push(Date.now());
    const failure = failures[calls.length - 1];
    if (failure) throw failure;
    return "ok";
  };
  return { fn, calls };
}

const unavailable = () => new ExecutionError("provider_unavailable");
const rateLimited = (retryAfterMs: number) => new ExecutionError("provider_rate_limited", undefined, { retryAfterMs });
const base = () => ({ policy, signal: new AbortController().signal, deadline: Number.POSITIVE_INFINITY, random: () => 1 });

describe("backoffDelay", () => {
  it("is full jitter: random × min(cap, base·2^(n-1))", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, () => 1))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect(backoffDelay(3, policy, () => 0.25)).toBe(500);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
  });
});

describe("retry", () => {
  it("retries retryable failures with exponential backoff, then succeeds", async () => {
    const { fn, calls } = scripted(unavailable(), unavailable());
    const result = retry(fn, base());
    await vi.runAllTimersAsync();
    await expect(result).resolves.toBe("ok");
    expect(calls).toEqual([0, 500, 1500]);
  });

  it("honours Retry-After instead of the backoff: not one attempt before it, the next one right at it", async () => {
    const { fn, calls } = scripted(rateLimited(3_000));
    const result = retry(fn, base());
    await vi.advanceTimersByTimeAsync(2_999);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 3_000]);
    await expect(result).resolves.toBe("ok");
  });

  it("stops after maxRetries and throws the last failure", async () => {
    const { fn, calls } = scripted(unavailable(), unavailable(), unavailable(), unavailable(), unavailable());
    const result = retry(fn, base());
    const settled = expect(result).rejects.toMatchObject({ category: "provider_unavailable" });
    await vi.runAllTimersAsync();
    await settled;
    expect(calls).toHaveLength(4);
  });

  it("does not retry what is not retryable", async () => {
    const { fn, calls } = scripted(new ExecutionError("provider_auth"));
    await expect(retry(fn, base())).rejects.toMatchObject({ category: "provider_auth" });
    expect(calls).toHaveLength(1);
  });

  it("gives up at once, with the real cause, when the wait would pass the deadline", async () => {
    const { fn, calls } = scripted(rateLimited(5_000));
    await expect(retry(fn, { ...base(), deadline: 4_000 })).rejects.toMatchObject({
      category: "provider_rate_limited",
      retryAfterMs: 5_000,
    });
    expect(calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("does not retry once canRetry says output reached the client", async () => {
    const { fn, calls } = scripted(unavailable());
    await expect(retry(fn, { ...base(), canRetry: () => false })).rejects.toMatchObject({ category: "provider_unavailable" });
    expect(calls).toHaveLength(1);
  });

  it("an abort during the wait ends it promptly with the signal's reason", async () => {
    const controller = new AbortController();
    const { fn, calls } = scripted(unavailable());
    const result = retry(fn, { ...base(), signal: controller.signal });
    const settled = expect(result).rejects.toMatchObject({ category: "cancelled" });
    await vi.advanceTimersByTimeAsync(100);
    controller.abort(new ExecutionError("cancelled"));
    await settled;
    expect(calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("classifies whatever the attempt throws", async () => {
    const fn = async () => {
      throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    };
    const result = retry(fn, { ...base(), policy: { ...policy, maxRetries: 0 } });
    await expect(result).rejects.toBeInstanceOf(ExecutionError);
    await expect(result).rejects.toMatchObject({ category: "network" });
  });

  it("reports each retry with its delay", async () => {
    const seen: [string, number, number][] = [];
    const { fn } = scripted(rateLimited(200));
    const result = retry(fn, { ...base(), onRetry: (e, n, d) => seen.push([e.category, n, d]) });
    await vi.runAllTimersAsync();
    await result;
    expect(seen).toEqual([["provider_rate_limited", 1, 200]]);
  });
});
