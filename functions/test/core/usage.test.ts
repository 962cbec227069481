import { describe, expect, it } from "vitest";
import { estimateTokens, estimateUsage, normalizeUsage } from "../../src/core/usage.js";

describe("normalizeUsage", () => {
  it("maps OpenAI's usage, cached and reasoning details included", () => {
    expect(
      normalizeUsage({
        prompt_tokens: 120,
        completion_tokens: 80,
        total_tokens: 200,
        prompt_tokens_details: { cached_tokens: 100 },
        completion_tokens_details: { reasoning_tokens: 50 },
      }),
    ).toEqual({ inputTokens: 120, outputTokens: 80, cachedInputTokens: 100, reasoningTokens: 50, totalTokens: 200, estimated: false });
  });

  it("tolerates what compatible providers leave out or get wrong", () => {
    expect(normalizeUsage({ prompt_tokens: 10, completion_tokens: null, prompt_tokens_details: null })).toMatchObject({
      inputTokens: 10,
      outputTokens: 0,
      cachedInputTokens: 0,
      totalTokens: 10,
    });
    // cached above the prompt total, negative counts
    expect(normalizeUsage({ prompt_tokens: 5, prompt_tokens_details: { cached_tokens: 9 }, completion_tokens: -3 })).toMatchObject({
      cachedInputTokens: 5,
      outputTokens: 0,
    });
  });
});

describe("estimateUsage", () => {
  it("counts about four characters per token plus framing per message, and says it estimated", () => {
    expect(estimateTokens("")).toBe(0);
    expect(estimateTokens("abcde")).toBe(2);
    expect(estimateUsage([{ role: "user", content: "12345678" }, { role: "assistant", content: "1234" }], "abcdefghij")).toEqual({
      inputTokens: 2 + 4 + 1 + 4,
      outputTokens: 3,
      cachedInputTokens: 0,
      reasoningTokens: 0,
      totalTokens: 14,
      estimated: true,
    });
  });
});
