import { describe, expect, it } from "vitest";
import { catalog } from "../../src/config/catalog.js";
import {
  decideAdmission,
  inputTokensBound,
  remainingMicros,
  usagePeriods,
  worstCaseMicros,
  type AccountState,
  lanesFor,
  mergeLanes,
  type LaneState,
  type LimitSettings,
} from "../../src/core/limits.js";

const settings: LimitSettings = {
  perMinute: 3,
  maxConcurrent: 2,
  defaultMonthlyBudgetUsd: 1,
  globalMonthlyBudgetUsd: null,
  globalShards: 4,
  reservationGraceMs: 1_000,
};
const empty: AccountState = { spentMicros: 0, reservations: {}, recent: [] };
const now = 1_000_000;
const admit = (account: AccountState, extra: Partial<Parameters<typeof decideAdmission>[0]> = {}) =>
  decideAdmission({ executionId: "new", now, reserveMicros: 100_000, expireAt: now + 60_000, account, settings, ...extra });

describe("decideAdmission", () => {
  it("admits within every limit, reserving and counting the request", () => {
    const decision = admit(empty);
    expect(decision.reservations).toEqual({ new: { micros: 100_000, expireAt: now + 60_000 } });
    expect(decision.recent).toEqual([now]);
    expect(decision.expired).toEqual([]);
  });

  it("limits requests per minute, saying when the oldest leaves the window", () => {
    const account = { ...empty, recent: [now - 50_000, now - 20_000, now - 1_000] };
    expect(() => admit(account)).toThrow(expect.objectContaining({ category: "rate_limited", retryAfterMs: 10_000 }));
    // one of them outside the window: admitted
    expect(admit({ ...account, recent: [now - 61_000, now - 20_000, now - 1_000] }).recent).toEqual([now - 20_000, now - 1_000, now]);
  });

  it("limits concurrent executions, ignoring expired reservations, which it reclaims", () => {
    const busy = { ...empty, reservations: { a: { micros: 1, expireAt: now + 5 }, b: { micros: 1, expireAt: now + 5 } } };
    expect(() => admit(busy)).toThrow(expect.objectContaining({ category: "rate_limited", retryAfterMs: 1_000 }));
    const oneDead = { ...empty, reservations: { a: { micros: 1, expireAt: now + 5 }, dead: { micros: 500_000, expireAt: now - 1 } } };
    const decision = admit(oneDead);
    expect(decision.expired).toEqual(["dead"]);
    expect(Object.keys(decision.reservations).sort()).toEqual(["a", "new"]);
  });

  it("refuses what the budget cannot cover counting spent and reserved money, naming the amounts", () => {
    const account = { ...empty, spentMicros: 700_000, reservations: { a: { micros: 250_000, expireAt: now + 5 } } };
    expect(() => admit(account)).toThrow(expect.objectContaining({ category: "budget_exceeded", retryable: false }));
    expect(() => admit(account)).toThrow(/\$1\.00 .*\$0\.05 left/);
    expect(admit(account, { reserveMicros: 50_000 }).reservations.new!.micros).toBe(50_000);
  });

  it("uses the user's override over the default; null means no limit", () => {
    expect(() => admit({ ...empty, monthlyBudgetUsd: 0.05 })).toThrow(expect.objectContaining({ category: "budget_exceeded" }));
    expect(admit({ ...empty, monthlyBudgetUsd: null, spentMicros: 9e12 }).reservations.new).toBeDefined();
    expect(remainingMicros({ ...empty, monthlyBudgetUsd: null }, settings, now)).toBeNull();
    expect(remainingMicros({ ...empty, spentMicros: 100 }, settings, now)).toBe(999_900);
  });

  it("checks a user's lanes together, and rewrites only the lane it admits on", () => {
    const laneA: LaneState = { reservations: { a: { micros: 400_000, expireAt: now + 9 } }, recent: [now - 10] };
    const laneB: LaneState = { reservations: { dead: { micros: 1, expireAt: now - 1 } }, recent: [now - 5] };
    const account = mergeLanes({ spentMicros: 0 }, [laneA, laneB]);
    const decision = admit(account, { lane: laneB });
    // The lane's own state, the dead reservation reclaimed; the other lane untouched.
    expect(Object.keys(decision.reservations).sort()).toEqual(["new"]);
    expect(decision.recent).toEqual([now - 5, now]);
    expect(decision.expired).toEqual(["dead"]);
    // The budget sees both lanes: $1, 0.4 held in lane A, 0.7 asked → refused.
    expect(() => admit(account, { lane: laneB, reserveMicros: 700_000 })).toThrow(expect.objectContaining({ category: "budget_exceeded" }));
  });

  it("uses a user's own limits when an admin set them, and gives a high-rate user lanes", () => {
    expect(() => admit({ ...empty, maxConcurrent: 1, reservations: { x: { micros: 1, expireAt: now + 9 } } })).toThrow(
      expect.objectContaining({ category: "rate_limited" }),
    );
    expect(lanesFor({})).toBe(1);
    expect(lanesFor({ perMinute: 30 })).toBe(1);
    // 5 executions a second, two writes each: 13 lanes of at most 0.8 writes a second each (ten would
    // be exactly one write a second, no headroom); just over one write a second needs two.
    expect(lanesFor({ perMinute: 300 })).toBe(13);
    expect(lanesFor({ perMinute: 31 })).toBe(2);
    expect(lanesFor({ perMinute: 1_000_000 })).toBe(32);
  });
});

describe("worstCaseMicros", () => {
  it("is an upper bound of input (UTF-8 bytes) plus maximum output on the dearest candidate", () => {
    const mini = catalog.resolve("local-mini")!;
    const pro = catalog.resolve("local-pro")!;
    const messages = [{ role: "user" as const, content: "x".repeat(100) }];
    // 100 bytes + 4 framing = 104 input tokens; local-mini: 104 × 0.1 + 10 × 0.4 = 14.4 → 14; local-pro: 104 × 1 + 10 × 4 = 144
    expect(worstCaseMicros({ messages }, [mini], 10)).toBe(14);
    expect(worstCaseMicros({ messages }, [mini, pro], 10)).toBe(144);
    // without maxTokens: the model's maximum output (4,096 for local-mini)
    expect(worstCaseMicros({ messages }, [mini])).toBe(Math.round(104 * 0.1 + 4_096 * 0.4));
  });

  it("bounds CJK text truly: a character can be a token, and is three bytes", () => {
    const mini = catalog.resolve("local-mini")!;
    const text = "漢字仮名交じり文".repeat(100); // 800 characters, 2,400 bytes
    // The old bound (2 characters a token) said 404 tokens; a tokenizer may spend up to 800 (one per
    // character) and never more than one per byte.
    expect(inputTokensBound({ messages: [{ role: "user", content: text }] }, mini)).toBe(2_404);
    expect(inputTokensBound({ messages: [{ role: "user", content: text }] }, mini)).toBeGreaterThanOrEqual(800 + 4);
  });

  it("counts each image at the model's bound, tools and schemas by their bytes, and caps at the context window", () => {
    const mini = catalog.resolve("local-mini")!;
    const image = { type: "image" as const, url: "https://example.com/a.png" };
    const withImages = { messages: [{ role: "user" as const, content: [{ type: "text" as const, text: "hi" }, image, image] }] };
    expect(inputTokensBound(withImages, mini)).toBe(4 + 2 + 2 * 85);
    const tools = [{ name: "f", parameters: { type: "object" } }];
    expect(inputTokensBound({ ...withImages, tools }, mini)).toBe(4 + 2 + 2 * 85 + JSON.stringify(tools).length);
    // A file (a PDF of any length) can fill the window: the bound is the window.
    const pdf = { messages: [{ role: "user" as const, content: [{ type: "file" as const, url: "data:application/pdf;base64,AAAA", mimeType: "application/pdf" }] }] };
    expect(inputTokensBound(pdf, mini)).toBe(mini.spec.contextWindow);
    expect(inputTokensBound({ messages: [{ role: "user", content: "x".repeat(40_000) }] }, mini)).toBe(mini.spec.contextWindow);
  });

  it("prices an input with audio at the audio price, where the provider's is higher", () => {
    const flash = catalog.resolve("gemini-2.5-flash")!;
    const audio = { messages: [{ role: "user" as const, content: [{ type: "file" as const, url: "data:audio/wav;base64,AAAA", mimeType: "audio/wav" }] }] };
    const pdf = { messages: [{ role: "user" as const, content: [{ type: "file" as const, url: "data:application/pdf;base64,AAAA", mimeType: "application/pdf" }] }] };
    // Both fill the window; audio tokens cost $1.00 per million on this model, text $0.30.
    const window = flash.spec.contextWindow;
    expect(worstCaseMicros(audio, [flash], 1)).toBe(Math.round(window * 1 + 2.5));
    expect(worstCaseMicros(pdf, [flash], 1)).toBe(Math.round(window * 0.3 + 2.5));
  });

  it("bounds an image at the most its model bills for one (OpenAI's tile and patch formulas)", () => {
    // gpt-4o-mini: 2,833 + 5,667 × 8 tiles (768 × 2048 px); patch models: 1,536 patches × their multiplier.
    expect(catalog.resolve("gpt-4o-mini")!.spec.imageTokens).toBe(2_833 + 5_667 * 8);
    expect(catalog.resolve("gpt-4.1-mini")!.spec.imageTokens).toBe(Math.ceil(1_536 * 1.62));
    expect(catalog.resolve("gpt-4.1-nano")!.spec.imageTokens).toBe(Math.ceil(1_536 * 2.46));
    expect(catalog.resolve("o4-mini")!.spec.imageTokens).toBe(Math.ceil(1_536 * 1.72));
    for (const { spec } of catalog.models()) if (spec.capabilities?.input.includes("image")) expect(spec.imageTokens, spec.id).toBeDefined();
  });
});

describe("usagePeriods", () => {
  it("is UTC", () => {
    expect(usagePeriods(Date.parse("2026-11-30T23:59:59.999Z"))).toEqual({ day: "2026-11-30", month: "2026-11" });
    expect(usagePeriods(Date.parse("2026-12-01T00:00:00Z"))).toEqual({ day: "2026-12-01", month: "2026-12" });
  });
});
