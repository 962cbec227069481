import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalProvider, type LocalProvider } from "../local-provider/server.js";
import type { Report } from "../verify-keys/report.js";
import { ROOT } from "./support/launcher.js";

/**
 * `npm run verify-keys` end to end: the CLI in a child process, every provider pointed at
 * the local provider with a scenario in its base URL, keys in the environment and in files.
 */

let provider: LocalProvider;
let dir: string;
let closedPort: number;

const KEY = "sk-test-verifykeys0000000000000000000001";
const keyOf = (n: number) => `sk-test-verifykeys${String(n).padStart(22, "0")}`;

function providerSpec(id: string, scenario: string, extra: Record<string, unknown> = {}) {
  const base = scenario === "" ? provider.url : provider.url.replace(/\/v1$/, `/_scenario/${scenario}/v1`);
  return {
    id,
    name: id,
    baseUrl: base,
    apiKeySecret: `${id.toUpperCase()}_KEY`,
    timeouts: { totalMs: 1, firstTokenMs: 1, idleMs: 1 },
    models: [{ id: `${id}-m`, upstreamId: "local-mini" }],
    ...extra,
  };
}

function writeCatalog(name: string, providers: unknown[]): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(providers));
  return path;
}

function verifyKeys(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/verify-keys.ts", "--functions-dir", join(dir, "functions"), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH!, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  provider = await startLocalProvider();
  dir = mkdtempSync(join(tmpdir(), "verify-keys-"));
  closedPort = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
});
afterAll(async () => {
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("verify-keys: every category", () => {
  it("classifies each provider, masks every key, and exits 1 when a required one is not ok", async () => {
    const catalog = writeCatalog("all.json", [
      providerSpec("good", ""),
      providerSpec("absent", ""),
      providerSpec("placeholder", ""),
      providerSpec("spaced", ""),
      providerSpec("badformat", "", { keyCheck: { pattern: "^sk-live-[a-z]{10}$" } }),
      providerSpec("revoked", "fail=auth"),
      providerSpec("blocked", "fail=forbidden"),
      providerSpec("broke", "fail=quota"),
      providerSpec("unpaid", "fail=quota,status=402"),
      providerSpec("creditless", "credit=0", { keyCheck: { pattern: "^sk-test-", creditPath: "/key" } }),
      providerSpec("credited", "credit=12.5", { keyCheck: { pattern: "^sk-test-", creditPath: "/key" } }),
      providerSpec("throttled", "fail=rate_limit,retry-after=7"),
      providerSpec("narrow", "models=local-pro"),
      providerSpec("hanging", "fail=hang"),
      { ...providerSpec("offline", ""), baseUrl: `http://127.0.0.1:${closedPort}/v1` },
      providerSpec("broken", "fail=server"),
    ]);
    const keys: Record<string, string> = {
      GOOD_KEY: keyOf(1),
      PLACEHOLDER_KEY: "your-api-key-here",
      SPACED_KEY: `${keyOf(3)} extra`,
      BADFORMAT_KEY: keyOf(4),
      REVOKED_KEY: keyOf(5),
      BLOCKED_KEY: keyOf(6),
      BROKE_KEY: keyOf(7),
      UNPAID_KEY: keyOf(8),
      CREDITLESS_KEY: keyOf(9),
      CREDITED_KEY: keyOf(10),
      THROTTLED_KEY: keyOf(11),
      NARROW_KEY: keyOf(12),
      HANGING_KEY: keyOf(13),
      OFFLINE_KEY: keyOf(14),
      BROKEN_KEY: keyOf(15),
    };
    const json = await verifyKeys(["--catalog", catalog, "--json", "--timeout-ms", "300"], keys);
    const table = await verifyKeys(["--catalog", catalog, "--timeout-ms", "300"], keys);
    expect(json.code).toBe(1);
    expect(table.code).toBe(1);

    const report = JSON.parse(json.stdout) as Report;
    const by = Object.fromEntries(report.results.map((r) => [r.provider, r]));
    expect(Object.fromEntries(report.results.map((r) => [r.provider, r.status]))).toEqual({
      good: "ok",
      absent: "missing",
      placeholder: "malformed",
      spaced: "malformed",
      badformat: "malformed",
      revoked: "invalid",
      blocked: "forbidden",
      broke: "no_credit",
      unpaid: "no_credit",
      creditless: "no_credit",
      credited: "ok",
      throttled: "rate_limited",
      narrow: "model_unavailable",
      hanging: "unreachable",
      offline: "unreachable",
      broken: "unexpected",
    });
    expect(by.good).toMatchObject({ required: true, source: "environment", key: "sk-…0001" });
    expect(by.absent).toMatchObject({ required: false, source: null, key: null, detail: "ABSENT_KEY is not set" });
    expect(by.spaced!.detail).toContain("whitespace");
    expect(by.throttled).toMatchObject({ httpStatus: 429, retryAfterSeconds: 7 });
    expect(by.narrow).toMatchObject({ missingModels: ["local-mini"] });
    expect(by.credited).toMatchObject({ creditUsd: 12.5 });
    expect(by.broken).toMatchObject({ httpStatus: 500, detail: "unexpected HTTP 500" });
    expect(by.hanging!.detail).toContain("300 ms");

    // Nothing anywhere in the output shows a whole key (nor more than its last 4 characters).
    for (const output of [json.stdout, json.stderr, table.stdout, table.stderr]) {
      for (const key of Object.values(keys)) {
        expect(output).not.toContain(key);
        if (key.length >= 16) expect(output).not.toContain(key.slice(3, -4));
      }
    }
    expect(table.stdout).toMatch(/^PROVIDER\s+STATUS\s+SOURCE\s+KEY\s+DETAIL/);
    expect(table.stdout).toContain("Some required provider is not ok.");
  }, 30_000);
});

describe("verify-keys: sources, offline mode, exit codes", () => {
  it("takes the environment first, then .secret.local, then .env.local, then .env, naming the source", async () => {
    const functionsDir = join(dir, "functions");
    rmSync(functionsDir, { recursive: true, force: true });
    const { mkdirSync } = await import("node:fs");
    mkdirSync(functionsDir, { recursive: true });
    writeFileSync(join(functionsDir, ".env"), `GOOD_KEY=${keyOf(40)}\n`);
    writeFileSync(join(functionsDir, ".env.local"), `# local\nGOOD_KEY="${keyOf(30)}"\n`);
    writeFileSync(join(functionsDir, ".secret.local"), `export GOOD_KEY=${keyOf(20)}\n`);
    const catalog = writeCatalog("one.json", [providerSpec("good", "")]);
    const sourceOf = async (env: Record<string, string>) => {
      const { stdout } = await verifyKeys(["--catalog", catalog, "--json", "--offline"], env);
      const [result] = (JSON.parse(stdout) as Report).results;
      return [result!.source, result!.key];
    };
    expect(await sourceOf({ GOOD_KEY: keyOf(10) })).toEqual(["environment", "sk-…0010"]);
    expect(await sourceOf({})).toEqual([expect.stringMatching(/functions\/\.secret\.local$/), "sk-…0020"]);
    rmSync(join(functionsDir, ".secret.local"));
    expect(await sourceOf({})).toEqual([expect.stringMatching(/functions\/\.env\.local$/), "sk-…0030"]);
    rmSync(join(functionsDir, ".env.local"));
    expect(await sourceOf({})).toEqual([expect.stringMatching(/functions\/\.env$/), "sk-…0040"]);
    rmSync(functionsDir, { recursive: true, force: true });
  });

  it("--offline checks formats without any request", async () => {
    const catalog = writeCatalog("offline.json", [providerSpec("good", "fail=auth")]);
    const { code, stdout } = await verifyKeys(["--catalog", catalog, "--json", "--offline"], { GOOD_KEY: KEY });
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as Report).results[0]).toMatchObject({ status: "ok", detail: "format plausible; not checked live" });
  });

  it("exits 0 when every required provider is ok; --provider checks one; --require makes a missing one fail", async () => {
    const catalog = writeCatalog("mixed.json", [providerSpec("good", ""), providerSpec("absent", "")]);
    expect((await verifyKeys(["--catalog", catalog], { GOOD_KEY: KEY })).code).toBe(0);
    const one = await verifyKeys(["--catalog", catalog, "--provider", "good", "--json"], { GOOD_KEY: KEY });
    expect(one.code).toBe(0);
    expect((JSON.parse(one.stdout) as Report).results.map((r) => r.provider)).toEqual(["good"]);
    expect((await verifyKeys(["--catalog", catalog, "--require", "good,absent"], { GOOD_KEY: KEY })).code).toBe(1);
    expect((await verifyKeys(["--catalog", catalog, "--provider", "absent"], { GOOD_KEY: KEY })).code).toBe(1);
  });

  it("exits 2 on bad usage, with the usage text", async () => {
    for (const args of [["--frobnicate"], ["--provider", "nope"], ["--require", "nope"], ["--timeout-ms", "soon"], ["--catalog", "/nonexistent.json"]]) {
      const { code, stderr } = await verifyKeys(args);
      expect(code).toBe(2);
      expect(stderr).toContain("usage: npm run verify-keys");
    }
  });

  it("checks the built-in catalog offline: real providers missing, local provider by its URL", async () => {
    const { code, stdout } = await verifyKeys(["--json", "--offline"], { LOCAL_PROVIDER_URL: provider.url });
    const report = JSON.parse(stdout) as Report;
    expect(code).toBe(0);
    expect(report.results.find((r) => r.provider === "openai")).toMatchObject({ status: "missing", required: false });
    expect(report.results.find((r) => r.provider === "local")).toMatchObject({ status: "ok", source: "environment", required: true });
  });
});
