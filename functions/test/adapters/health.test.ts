import { describe, expect, it } from "vitest";
import { checkHealth, checkReadiness, clearReadinessCache } from "../../src/adapters/health.js";
import { catalog } from "../../src/config/catalog.js";
import type { ProviderSpec } from "../../src/core/catalog.js";
import type { LiveOutcome } from "../../src/core/provider-check.js";

const providers = catalog.providers;
const local = (p: { id: string }) => p.id === "local";

describe("checkHealth", () => {
  it("is ok when Firestore answers and a provider is configured", async () => {
    const report = await checkHealth({ pingFirestore: async () => {}, providers, isConfigured: local, timeoutMs: 100 });
    expect(report.status).toBe("ok");
    expect(report.checks.firestore.ok).toBe(true);
  });

  it("is degraded when Firestore does not answer in time", async () => {
    const report = await checkHealth({ pingFirestore: () => new Promise(() => {}), providers, isConfigured: local, timeoutMs: 20 });
    expect(report).toMatchObject({ status: "degraded", checks: { firestore: { ok: false, error: "no answer within 20 ms" } } });
  });

  it("is degraded when Firestore fails, or when no provider is configured", async () => {
    const failing = await checkHealth({ pingFirestore: () => Promise.reject(new Error("UNAVAILABLE")), providers, isConfigured: local, timeoutMs: 100 });
    expect(failing.checks.firestore).toMatchObject({ ok: false, error: "UNAVAILABLE" });
    const noProvider = await checkHealth({ pingFirestore: async () => {}, providers, isConfigured: () => false, timeoutMs: 100 });
    expect(noProvider.status).toBe("degraded");
  });
});

describe("checkReadiness", () => {
  const ping = async () => {};

  it("asks each configured provider (once a minute at most) and is degraded when one does not take its key", async () => {
    clearReadinessCache();
    let now = 1_000_000;
    const asked: string[] = [];
    const check = (provider: ProviderSpec): Promise<LiveOutcome> | undefined => {
      if (provider.id === "openai") return undefined; // not configured here
      asked.push(provider.id);
      return Promise.resolve(provider.id === "local" ? { status: "ok", detail: "3 catalog model(s) available" } : { status: "invalid", detail: "the provider rejected the key (401)", httpStatus: 401 });
    };
    const deps = { pingFirestore: ping, providers: providers.filter((p) => ["openai", "gemini", "local"].includes(p.id)), timeoutMs: 100, check, clock: () => now };
    const report = await checkReadiness(deps);
    expect(report.status).toBe("degraded");
    expect(report.checks.providers).toMatchObject({
      openai: { configured: false },
      gemini: { configured: true, ok: false, status: "invalid" },
      local: { configured: true, ok: true, status: "ok" },
    });
    await checkReadiness(deps);
    expect(asked).toEqual(["gemini", "local"]);
    now += 60_001;
    await checkReadiness(deps);
    expect(asked).toEqual(["gemini", "local", "gemini", "local"]);
  });

  it("is ok when every configured provider answers ok, and never shows a key", async () => {
    clearReadinessCache();
    const report = await checkReadiness({
      pingFirestore: ping,
      providers: providers.filter((p) => p.id === "local"),
      timeoutMs: 100,
      check: () => Promise.resolve({ status: "ok", detail: "fine" }),
    });
    expect(report.status).toBe("ok");
    expect(JSON.stringify(report)).not.toMatch(/sk-|_API_KEY/);
  });
});
