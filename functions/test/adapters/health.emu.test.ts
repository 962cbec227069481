import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { HealthReport } from "../../src/adapters/health.js";
import { makeAdmin, signedInClient } from "../support/firebase.js";
import { functionUrl } from "../support/stack.js";

const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

describe("GET /health through the Functions emulator", () => {
  it("answers ok with Firestore reachable, the local provider configured, and the version", async () => {
    const response = await fetch(functionUrl("api", "/health"));
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as HealthReport;
    expect(body.status).toBe("ok");
    expect(body.version).toBe(version);
    expect(body.checks.firestore.ok).toBe(true);
    expect(body.checks.providers.local).toEqual({ configured: true });
    expect(Object.keys(body.checks.providers)).toEqual(["openai", "gemini", "openrouter", "ollama", "local"]);
  });

  it("needs no auth and reveals no secret or URL", async () => {
    const text = await (await fetch(functionUrl("api", "/health"))).text();
    expect(text).not.toMatch(/http:\/\/|apiKey|_API_KEY|sk-/);
  });

  it("answers 404 in the API's error shape for an unknown path", async () => {
    const response = await fetch(functionUrl("api", "/nope"));
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { type: "not_found", code: "not-found" } });
  });
});

describe("GET /health/ready (operators)", () => {
  it("needs an admin's ID token", async () => {
    expect((await fetch(functionUrl("api", "/health/ready"))).status).toBe(401);
    const user = await signedInClient();
    const answer = await fetch(functionUrl("api", "/health/ready"), { headers: { authorization: `Bearer ${user.idToken}` } });
    expect(answer.status).toBe(403);
    expect(await answer.json()).toMatchObject({ error: { type: "permission_denied" } });
  });

  it("for an admin: each configured provider reachable and its key accepted, at no cost", async () => {
    const admin = await signedInClient();
    await makeAdmin(admin.uid);
    const token = await admin.user.getIdToken(true);
    const answer = await fetch(functionUrl("api", "/health/ready"), { headers: { authorization: `Bearer ${token}` } });
    const body = (await answer.json()) as { status: string; checks: { providers: Record<string, unknown> } };
    expect(answer.status).toBe(200);
    expect(body.status).toBe("ok");
    expect(body.checks.providers.local).toMatchObject({ configured: true, ok: true, status: "ok" });
    expect(body.checks.providers.openai).toEqual({ configured: false });
    expect(JSON.stringify(body)).not.toMatch(/http:\/\/|_API_KEY|sk-/);
  });
});
