import { describe, expect, it } from "vitest";
import type { Execution } from "../../src/core/execution.js";
import { idempotencyDecision, priorRunsOf, replayOf, requestFingerprint } from "../../src/core/idempotency.js";

const record = (over: Partial<Execution>): Execution => ({
  id: "rq_abcdefgh",
  status: "succeeded",
  requestFingerprint: "fp",
  model: "local-mini",
  provider: "local",
  input: [],
  inputTruncated: false,
  output: "hi",
  outputTruncated: false,
  finishReason: "stop",
  usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: 2, estimated: false },
  cost: { micros: 3, usd: 0.000003, priceVersion: "v" },
  attempts: [{ model: "local-mini", provider: "local", outcome: "succeeded", latencyMs: 5 }],
  createdAt: new Date(0),
  completedAt: new Date(5),
  latencyMs: 5,
  ttftMs: 4,
  expireAt: new Date(10),
  ...over,
});

describe("requestFingerprint", () => {
  it("ignores requestId and key order, and sees every other difference", () => {
    const a = requestFingerprint({ requestId: "one-12345", model: "m", messages: [{ role: "user", content: "x" }] });
    const b = requestFingerprint({ messages: [{ content: "x", role: "user" }], model: "m", requestId: "two-12345" });
    const c = requestFingerprint({ model: "m", messages: [{ role: "user", content: "y" }] });
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
});

describe("idempotencyDecision", () => {
  it("replays a success and a failure that retrying would not fix", () => {
    expect(idempotencyDecision(record({}), "fp", false)).toBe("replay");
    expect(idempotencyDecision(record({ status: "failed", error: { category: "content_filtered", message: "m" } }), "fp", false)).toBe("replay");
  });
  it("runs again after a timeout, a disconnect, a retryable failure, or an instance that died", () => {
    expect(idempotencyDecision(record({ status: "timed_out" }), "fp", false)).toBe("rerun");
    expect(idempotencyDecision(record({ status: "cancelled" }), "fp", false)).toBe("rerun");
    expect(idempotencyDecision(record({ status: "failed", error: { category: "provider_unavailable", message: "m" } }), "fp", false)).toBe("rerun");
    // Closed by a reclaimer: its error is `internal`, which would otherwise replay "Internal error." for the record's lifetime.
    expect(idempotencyDecision(record({ status: "failed", abandoned: true, error: { category: "internal", message: "m" } }), "fp", false)).toBe("rerun");
  });
  it("reclaims a running record that holds no live reservation: its instance died", () => {
    expect(idempotencyDecision(record({ status: "running" }), "fp", false)).toBe("reclaim");
  });
  it("refuses a different request under the same id, and a repeat while it runs", () => {
    expect(() => idempotencyDecision(record({}), "other", false)).toThrow(expect.objectContaining({ category: "idempotency_conflict" }));
    expect(() => idempotencyDecision(record({ status: "running" }), "fp", true)).toThrow(
      expect.objectContaining({ category: "in_progress", retryable: true, retryAfterMs: 1_000 }),
    );
  });
});

describe("priorRunsOf", () => {
  it("adds the finished run to the runs before it", () => {
    const first = record({ status: "timed_out", error: { category: "timeout", message: "late" } });
    expect(priorRunsOf(first)).toEqual({ runs: 1, costMicros: 3, inputTokens: first.usage!.inputTokens, outputTokens: first.usage!.outputTokens, lastStatus: "timed_out", lastError: { category: "timeout", message: "late" } });
    expect(priorRunsOf({ ...first, prior: priorRunsOf(first) })).toMatchObject({ runs: 2, costMicros: 6, lastStatus: "timed_out" });
  });
});

describe("replayOf", () => {
  it("rebuilds the result of a success", () => {
    expect(replayOf(record({}))).toEqual({
      executionId: "rq_abcdefgh",
      model: "local-mini",
      provider: "local",
      output: "hi",
      finishReason: "stop",
      usage: record({}).usage,
      cost: { micros: 3, usd: 0.000003 },
      latencyMs: 5,
      ttftMs: 4,
      attempts: 1,
    });
  });
  it("throws the stored error of a failure, with its executionId", () => {
    expect(() => replayOf(record({ status: "failed", error: { category: "content_filtered", message: "refused" } }))).toThrow(
      expect.objectContaining({ category: "content_filtered", message: "refused", executionId: "rq_abcdefgh" }),
    );
  });
});
