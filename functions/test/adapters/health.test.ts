import { describe, expect, it } from "vitest";
import { checkHealth } from "../../src/adapters/health.js";
import { catalog } from "../../src/config/catalog.js";

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
