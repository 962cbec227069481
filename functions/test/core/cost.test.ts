import { describe, expect, it } from "vitest";
import { computeCost } from "../../src/core/cost.js";
import type { ModelPrice } from "../../src/core/catalog.js";
import type { Usage } from "../../src/core/usage.js";

const usage = (u: Partial<Usage>): Usage => ({
  inputTokens: 0,
  outputTokens: 0,
  cachedInputTokens: 0,
  reasoningTokens: 0,
  totalTokens: 0,
  estimated: false,
  ...u,
});
const gpt4oMini: ModelPrice = { inputPerMTokUsd: 0.15, cachedInputPerMTokUsd: 0.075, outputPerMTokUsd: 0.6, priceVersion: "p1" };
const o4Mini: ModelPrice = { inputPerMTokUsd: 1.1, cachedInputPerMTokUsd: 0.275, outputPerMTokUsd: 4.4, priceVersion: "p2" };

describe("computeCost (hand-computed fixtures)", () => {
  it("prices input and output", () => {
    // 1,000,000 in × $0.15 + 1,000,000 out × $0.60 = $0.75
    expect(computeCost(usage({ inputTokens: 1_000_000, outputTokens: 1_000_000 }), gpt4oMini)).toEqual({
      micros: 750_000,
      usd: 0.75,
      priceVersion: "p1",
    });
  });

  it("bills cached input at the cached price and the rest at the input price", () => {
    // 10,000 in of which 8,000 cached: 2,000 × 0.15 + 8,000 × 0.075 = 300 + 600 = 900 µ$; 500 out × 0.6 = 300 µ$
    expect(computeCost(usage({ inputTokens: 10_000, cachedInputTokens: 8_000, outputTokens: 500 }), gpt4oMini).micros).toBe(1_200);
  });

  it("bills reasoning tokens as output (they are inside outputTokens)", () => {
    // 1,200 in × 1.1 = 1,320 µ$; 3,000 out (2,500 of them reasoning) × 4.4 = 13,200 µ$
    const cost = computeCost(usage({ inputTokens: 1_200, outputTokens: 3_000, reasoningTokens: 2_500 }), o4Mini);
    expect(cost.micros).toBe(14_520);
    expect(cost.usd).toBeCloseTo(0.01452, 10);
  });

  it("rounds once, half up, from exact integer picodollars", () => {
    // 3 in × 0.15 = 0.45 µ$ → 0; 5 in = 0.75 → 1; 10 in = 1.5 → 2; 0.1 × 3 would drift in floating point, this does not
    expect(computeCost(usage({ inputTokens: 3 }), gpt4oMini).micros).toBe(0);
    expect(computeCost(usage({ inputTokens: 5 }), gpt4oMini).micros).toBe(1);
    expect(computeCost(usage({ inputTokens: 10 }), gpt4oMini).micros).toBe(2);
    const tenth: ModelPrice = { inputPerMTokUsd: 0.1, cachedInputPerMTokUsd: 0, outputPerMTokUsd: 0, priceVersion: "x" };
    expect(computeCost(usage({ inputTokens: 3 * 5 }), tenth).micros).toBe(2); // 1.5 → 2
  });

  it("is zero for zero usage and for free models", () => {
    expect(computeCost(usage({}), gpt4oMini).micros).toBe(0);
    const free: ModelPrice = { inputPerMTokUsd: 0, cachedInputPerMTokUsd: 0, outputPerMTokUsd: 0, priceVersion: "f" };
    expect(computeCost(usage({ inputTokens: 99_999, outputTokens: 99_999 }), free).micros).toBe(0);
  });
});
