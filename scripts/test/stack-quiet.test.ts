import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ancestors } from "../stack/lifeline.js";
import { declaredParams, dotenvNames, writeMissingParams } from "../stack/local-params.js";
import { quietOutput } from "../stack/quiet-output.js";
import { ROOT } from "./support/launcher.js";

describe("what npm start shows of firebase-tools", () => {
  it("folds the expected warnings into one line and hides progress chatter", () => {
    const quiet = quietOutput();
    const lines = [
      "i  emulators: Starting emulators: auth, functions",
      "⚠  Unable to fetch the CLI MOTD and remote config. This is not a fatal error, but may indicate an issue with your network connection.",
      "⚠  emulators: The Emulator UI is not starting because none of the running emulators have a UI component.",
      '⚠  functions: Your requested "node" version "22" doesn\'t match your global version "20". Using node@20 from host.',
      "\u001b[90m┌─────────────────┐\u001b[39m",
      "✔  functions[us-central1-api]: http function initialized (http://127.0.0.1:5001/demo/us-central1/api).",
      "i  functions: Beginning execution of \"us-central1-api\"",
    ];
    expect(lines.map((line) => quiet.line(line)).filter((l) => l !== undefined)).toEqual([]);
    expect(quiet.notices()).toBe("expected here, and harmless: offline (no CLI news); no Emulator UI; functions run on this machine's Node (deployed: nodejs22)");
  });

  it("shows what may be a real problem, and the functions' own logs", () => {
    const quiet = quietOutput();
    const shown = [
      "⬢  functions: Failed to load function definition from source: FirebaseError: Functions codebase could not be analyzed successfully.",
      '{"executionId":"x","status":"succeeded","severity":"INFO","message":"execution.succeeded"}',
      "⚠  functions: something nobody has seen before",
    ];
    expect(shown.map((line) => quiet.line(line))).toEqual(shown);
    expect(quiet.notices()).toBeUndefined();
  });
});

describe("the params' defaults written before the Functions emulator would prompt for them", () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("writes every declared param (no secret) to a new .env.local", async () => {
    dir = mkdtempSync(join(tmpdir(), "params-test-"));
    const params = await declaredParams(join(ROOT, "functions"));
    expect(params.map((p) => p.name)).toEqual(expect.arrayContaining(["REGION", "RATE_LIMIT_PER_MINUTE", "GLOBAL_MONTHLY_BUDGET_USD"]));
    expect(params.some((p) => p.name.endsWith("_API_KEY"))).toBe(false);
    expect(writeMissingParams(dir, params)).toEqual(params.map((p) => p.name));
    const written = readFileSync(join(dir, ".env.local"), "utf8");
    expect(written).toContain("REGION=us-central1\n");
    expect(written).toContain("RATE_LIMIT_PER_MINUTE=30\n");
    expect([...dotenvNames(written)].sort()).toEqual(params.map((p) => p.name).sort());
  });

  it("keeps the developer's values and adds only the missing ones", async () => {
    dir = mkdtempSync(join(tmpdir(), "params-test-"));
    writeFileSync(join(dir, ".env.local"), "RATE_LIMIT_PER_MINUTE=1000\n# a comment\nLOG_PROMPTS=true");
    const params = await declaredParams(join(ROOT, "functions"));
    const added = writeMissingParams(dir, params);
    expect(added).not.toContain("RATE_LIMIT_PER_MINUTE");
    expect(added).not.toContain("LOG_PROMPTS");
    const written = readFileSync(join(dir, ".env.local"), "utf8");
    expect(written.startsWith("RATE_LIMIT_PER_MINUTE=1000\n# a comment\nLOG_PROMPTS=true\n")).toBe(true);
    expect(written.match(/^RATE_LIMIT_PER_MINUTE=/gm)).toHaveLength(1);
    expect(writeMissingParams(dir, params)).toEqual([]);
  });

  it("leaves out params that functions/.env or .env.<project> sets, so those values keep applying", async () => {
    dir = mkdtempSync(join(tmpdir(), "params-test-"));
    writeFileSync(join(dir, ".env"), "ENFORCE_APP_CHECK=true\n");
    writeFileSync(join(dir, ".env.demo-llm-gateway"), "LOG_PROMPTS=true\n");
    writeFileSync(join(dir, ".env.other-project"), "REGION=europe-west1\n");
    const params = await declaredParams(join(ROOT, "functions"));
    const added = writeMissingParams(dir, params, "demo-llm-gateway");
    expect(added).not.toContain("ENFORCE_APP_CHECK");
    expect(added).not.toContain("LOG_PROMPTS");
    expect(added).toContain("REGION"); // another project's file is not the emulator's
    expect(dotenvNames(readFileSync(join(dir, ".env.local"), "utf8")).has("ENFORCE_APP_CHECK")).toBe(false);
  });
});

describe("the chain of processes the launcher watches", () => {
  it("starts at the direct parent", () => {
    const chain = ancestors();
    expect(chain[0]?.pid).toBe(process.ppid);
  });
});
