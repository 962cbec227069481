import { describe, expect, it } from "vitest";
import { catalog as productionCatalog } from "../../src/config/catalog.js";
import { Catalog } from "../../src/core/catalog.js";
import { ExecutionError } from "../../src/core/errors.js";
import { ask, provider as local, setup, useLocalProvider } from "../support/pipeline.js";

useLocalProvider();
const provider = { stats: () => local.current.stats() };

describe("executePrompt: success", () => {
  it("answers, records usage and cost from the provider, and logs no prompt text", async () => {
    const { run, record, logger } = setup();
    const result = await run(ask("local-mini"));
    expect(result).toMatchObject({
      executionId: "exec1",
      model: "local-mini",
      provider: "local",
      output: "Echo: hello there world",
      finishReason: "stop",
      usage: { inputTokens: 5, outputTokens: 4, totalTokens: 9, estimated: false },
      attempts: 1,
    });
    // 5 × $0.10 + 4 × $0.40 per million = 0.5 + 1.6 = 2.1 µ$ → 2
    expect(result.cost).toEqual({ micros: 2, usd: 0.000002 });
    expect(result.ttftMs).toBeGreaterThanOrEqual(0);
    const saved = record();
    expect(saved).toMatchObject({
      status: "succeeded",
      model: "local-mini",
      output: "Echo: hello there world",
      outputTruncated: false,
      input: [{ role: "user", content: "hello there world" }],
      usage: result.usage,
      cost: { micros: 2, priceVersion: "local-1" },
      attempts: [{ model: "local-mini", provider: "local", outcome: "succeeded" }],
    });
    expect(saved.expireAt.getTime() - saved.createdAt.getTime()).toBe(30 * 86_400_000);
    expect(JSON.stringify(logger.entries)).not.toContain("hello there world");
    expect(logger.entries.at(-1)).toMatchObject({ message: "execution.succeeded", fields: { executionId: "exec1", costMicros: 2 } });
  });

  it("streams: start once, right before the first delta, then every delta in order", async () => {
    const { run } = setup();
    const events: string[] = [];
    const result = await run(ask("local-pro+deltas=6"), {
      onStart: (info) => events.push(`start:${info.executionId}:${info.model}`),
      onDelta: (text) => events.push(text),
    });
    expect(events).toEqual(["start:exec1:local-pro+deltas=6", "alpha ", "bravo ", "charlie ", "delta ", "echo ", "foxtrot"]);
    expect(result.output).toBe("alpha bravo charlie delta echo foxtrot");
  });

  it("uses the default model, and finishReason length under maxTokens", async () => {
    const { run } = setup();
    const result = await run({ messages: [{ role: "user", content: "one two three four" }], params: { maxTokens: 2 } });
    expect(result).toMatchObject({ model: "local-mini", output: "Echo: one", finishReason: "length" });
  });

  it("estimates usage, and says so, when the provider reports none", async () => {
    const { run, record } = setup();
    const result = await run(ask("local-mini+usage=0"));
    expect(result.usage).toMatchObject({ estimated: true, outputTokens: 6 });
    expect(record().usage?.estimated).toBe(true);
  });

  it("prices cached and reasoning tokens", async () => {
    const { run } = setup();
    const result = await run(ask("local-pro+cached=4,reasoning=100"));
    // input 5 (4 cached): 1 × 1.00 + 4 × 0.25 = 2 µ$; output 4 + 100 reasoning = 104 × 4.00 = 416 µ$
    expect(result.usage).toMatchObject({ inputTokens: 5, cachedInputTokens: 4, outputTokens: 104, reasoningTokens: 100 });
    expect(result.cost.micros).toBe(418);
  });

  it("renders a saved prompt with its variables, model and params", async () => {
    const { run, prompts, record } = setup();
    prompts.put("alice", "greet", {
      name: "greet",
      model: "local-pro",
      params: { maxTokens: 3 },
      messages: [{ role: "user", content: "Say hi to {{who}} now please" }],
      variables: { who: { type: "string", required: true } },
    });
    const result = await run({ promptId: "greet", variables: { who: "Ada" } });
    expect(result).toMatchObject({ model: "local-pro", output: "Echo: Say hi", finishReason: "length" });
    expect(record()).toMatchObject({ promptId: "greet", input: [{ content: "Say hi to Ada now please" }] });
  });
});

describe("executePrompt: retries and fallbacks", () => {
  it("retries a 429 after its Retry-After and succeeds", async () => {
    const { run, record } = setup();
    const result = await run(ask("local-mini+fail=rate_limit,times=1,retry-after-ms=30,key=r429"));
    expect(result.attempts).toBe(2);
    expect(record().attempts).toMatchObject([
      { outcome: "failed", category: "provider_rate_limited", httpStatus: 429 },
      { outcome: "succeeded" },
    ]);
    expect(provider.stats().byKey.r429).toBe(2);
  });

  it("after 500 on every retry, falls back to the next model", async () => {
    const { run, record, logger } = setup();
    const result = await run(ask("local-mini+fail=server,key=down", "hi", { fallbackModels: ["local-pro"] }));
    expect(result).toMatchObject({ model: "local-pro", provider: "local", output: "Echo: hi", attempts: 5 });
    expect(provider.stats().byKey.down).toBe(4);
    const saved = record();
    expect(saved.model).toBe("local-pro");
    expect(saved.attempts.map((a) => `${a.model}:${a.outcome}:${a.httpStatus ?? ""}`)).toEqual([
      "local-mini+fail=server,key=down:failed:500",
      "local-mini+fail=server,key=down:failed:500",
      "local-mini+fail=server,key=down:failed:500",
      "local-mini+fail=server,key=down:failed:500",
      "local-pro:succeeded:",
    ]);
    expect(logger.entries.some((e) => e.message === "execution.fallback")).toBe(true);
  });

  it("uses the configured default fallbacks after the request's own", async () => {
    const { run } = setup({ settings: { defaultFallbackModels: ["local-pro"] } });
    expect((await run(ask("local-mini+fail=unavailable"))).model).toBe("local-pro");
  });

  it("retries a reset before headers and a malformed stream before the first delta", async () => {
    const { run } = setup();
    expect((await run(ask("local-mini+fail=reset,times=2,key=rst"))).attempts).toBe(3);
    expect((await run(ask("local-mini+fail=malformed,after=0,times=1,key=mal"))).attempts).toBe(2);
  });

  it("gives up at once when the Retry-After would pass the deadline, keeping the category and the wait", async () => {
    const { fail, record } = setup();
    const error = await fail(ask("local-mini+fail=rate_limit,retry-after-ms=5000", "hi", { timeoutMs: 1_500 }));
    expect(error).toMatchObject({ category: "provider_rate_limited", retryable: true, retryAfterMs: 5000, executionId: "exec1" });
    expect(record().attempts).toHaveLength(1);
  });
});

describe("executePrompt: failures end with a finished record", () => {
  it.each([
    ["auth", "provider_auth", "failed-precondition", 1],
    ["quota", "provider_quota_exhausted", "failed-precondition", 1],
    ["context_length", "context_length_exceeded", "invalid-argument", 1],
    ["content_filter", "content_filtered", "invalid-argument", 1],
    ["server", "provider_unavailable", "unavailable", 4],
    ["reset", "network", "unavailable", 4],
  ] as const)("fail=%s → %s (%s) after %i attempt(s)", async (fail, category, code, attempts) => {
    const { fail: failing, record } = setup();
    const error = await failing(ask(`local-mini+fail=${fail}`));
    expect(error).toMatchObject({ category, code, executionId: "exec1", model: `local-mini+fail=${fail}`, provider: "local" });
    expect(error.message).not.toMatch(/sk-|Incorrect API key|\{/);
    expect(record()).toMatchObject({ status: "failed", error: { category }, usage: { totalTokens: 0 }, cost: { micros: 0 } });
    expect(record().attempts).toHaveLength(attempts);
  });

  it("content filtering does not fall back (another model would get the same content)", async () => {
    const { fail, record } = setup();
    await fail(ask("local-mini+fail=content_filter", "hi", { fallbackModels: ["local-pro"] }));
    expect(record().attempts).toHaveLength(1);
  });

  it("a cut stream keeps the partial output, estimates usage, and is not retried", async () => {
    const { fail, record } = setup();
    const deltas: string[] = [];
    const error = await fail(ask("local-mini+fail=cut,after=2", "one two three"), { onStart: () => {}, onDelta: (t) => deltas.push(t) });
    expect(error.category).toBe("network");
    expect(deltas).toEqual(["Echo: ", "one "]);
    // Estimated: input 13 characters → 4 tokens + 4 framing = 8; output "Echo: one " → 3 tokens.
    // Cost on local-mini: 8 × $0.10 + 3 × $0.40 per million = 2.0 µ$.
    expect(record()).toMatchObject({
      status: "failed",
      output: "Echo: one ",
      usage: { estimated: true, inputTokens: 8, outputTokens: 3 },
      cost: { micros: 2 },
    });
    expect(record().attempts).toHaveLength(1);
  });

  it("a malformed line after the first streamed delta fails without retry, partial output kept", async () => {
    const { fail, record } = setup();
    const error = await fail(ask("local-mini+fail=malformed,after=1"), { onDelta: () => {} });
    expect(error.category).toBe("provider_unavailable");
    expect(record()).toMatchObject({ status: "failed", output: "Echo: ", attempts: [{ category: "provider_unavailable" }] });
  });

  it("a hung provider hits the request's timeout: timed_out, upstream aborted", async () => {
    const { fail, record } = setup();
    const error = await fail(ask("local-mini+fail=hang", "hi", { timeoutMs: 1_000 }));
    expect(error).toMatchObject({ category: "timeout", code: "deadline-exceeded", retryable: true });
    expect(record()).toMatchObject({ status: "timed_out", error: { category: "timeout" } });
    await expect.poll(() => provider.stats().aborted).toBe(1);
  });

  it("the server maximum caps the client's timeoutMs", async () => {
    const { fail, record } = setup({ settings: { maxTimeoutMs: 1_000 } });
    await fail(ask("local-mini+fail=hang", "hi", { timeoutMs: 60_000 }));
    expect(record().status).toBe("timed_out");
    expect(record().latencyMs).toBeLessThan(60_000);
  });

  it("client cancellation aborts upstream at once and records what was produced", async () => {
    const { fail, record } = setup();
    const controller = new AbortController();
    const error = await fail(ask("local-pro+deltas=50,interval=20"), {
      signal: controller.signal,
      onDelta: (text) => text === "bravo " && controller.abort(new ExecutionError("cancelled", "The client went away.")),
    });
    expect(error.category).toBe("cancelled");
    expect(record()).toMatchObject({ status: "cancelled", output: "alpha bravo ", usage: { estimated: true } });
    await expect.poll(() => provider.stats().aborted).toBe(1);
  });

  it("a bug in our own code still finishes the record, as internal", async () => {
    const { fail, record, logger } = setup();
    const error = await fail(ask("local-mini"), {
      onDelta: () => {
        throw new TypeError("cannot read properties of undefined");
      },
    });
    expect(error).toMatchObject({ category: "internal", message: "Internal error." });
    expect(record().status).toBe("failed");
    expect(logger.entries.at(-1)).toMatchObject({ level: "error", fields: { cause: "TypeError: cannot read properties of undefined" } });
  });

  it("when admission cannot be written, fails without calling the provider", async () => {
    const { deps, fail, executions } = setup();
    deps.executions.admit = async () => {
      throw new Error("firestore unavailable");
    };
    expect((await fail(ask("local-mini"))).category).toBe("internal");
    expect(executions.records.size).toBe(0);
    expect(provider.stats().requests).toBe(0);
  });
});

describe("executePrompt: first-token and idle timeouts from the catalog", () => {
  const local = productionCatalog.provider("local")!;
  const quick = new Catalog([{ ...local, timeouts: { totalMs: 5_000, firstTokenMs: 200, idleMs: 200 } }]);

  it("a first token later than the model's limit times the attempt out, and the retry can succeed", async () => {
    const { run, record } = setup({ catalog: quick });
    const result = await run(ask("local-mini+fail=hang,times=1,key=slow1"));
    expect(result.attempts).toBe(2);
    expect(record().attempts[0]).toMatchObject({ outcome: "failed", category: "timeout" });
    expect(provider.stats().aborted).toBe(1);
  });

  it("deltas that stop for longer than the idle timeout end a stream as timed_out with the partial output", async () => {
    const { fail, record } = setup({ catalog: quick });
    const error = await fail(ask("local-pro+deltas=5,interval=1000"), { onDelta: () => {} });
    expect(error.category).toBe("timeout");
    expect(record()).toMatchObject({ status: "timed_out", output: "alpha ", attempts: [{ category: "timeout" }] });
  });
});

describe("executePrompt: requests refused before anything is recorded", () => {
  it.each([
    [{ messages: [] }, "validation"],
    [ask("no-such-model"), "not_found"],
    [ask("gpt-4o-mini"), "provider_auth"],
    [{ ...ask("local-mini"), fallbackModels: ["nope"] }, "not_found"],
    [{ ...ask("local-mini"), params: { maxTokens: 5_000 } }, "validation"],
    [{ promptId: "missing" }, "not_found"],
  ] as const)("%j → %s", async (input, category) => {
    const { fail, executions } = setup();
    expect((await fail(input)).category).toBe(category);
    expect(executions.records.size).toBe(0);
    expect(provider.stats().requests).toBe(0);
  });

  it("names the unconfigured provider", async () => {
    const { fail } = setup();
    expect((await fail(ask("gpt-4o-mini"))).message).toContain('no key for provider "openai"');
  });
});
