import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { choosePorts, emulatorsConfig } from "../../../scripts/stack/ports.js";
import { declaredParams, writeMissingParams } from "../../../scripts/stack/local-params.js";
import { signedInClient } from "../support/firebase.js";
import { stackEnv } from "../support/stack.js";

/**
 * What the Functions emulator does with App Check tokens, measured rather than assumed: a
 * private Functions emulator (the suite's own keeps the defaults) runs the same functions with
 * ENFORCE_APP_CHECK and APP_CHECK_REPLAY_PROTECTION on (an .env.local of its own, through
 * firebase.json's `configDir`), against the suite's Auth and Firestore emulators.
 * docs/operations.md ("App Check replay protection") reports it.
 */

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const PROJECT = "demo-llm-gateway";
const configDir = join(ROOT, ".emulators", `appcheck-${process.pid}`);
const configFile = join(ROOT, `firebase.appcheck.${process.pid}.json`);
const tempDir = join(tmpdir(), `llm-gateway-appcheck-${process.pid}`);
let emulator: ChildProcess | undefined;
let base = "";
let token = "";

/** An App Check token as the SDKs send one (a JWT), but signed by nobody: what a replayed or forged limited-use token looks like. */
const unsignedAppCheckToken = (() => {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: "RS256", typ: "JWT", kid: "none" })}.${part({ sub: "1:123:web:abc", aud: [`projects/${PROJECT}`], iss: "https://firebaseappcheck.googleapis.com/123", iat: now, exp: now + 3600, jti: "limited-use-1" })}.c2lnbmF0dXJl`;
})();

beforeAll(async () => {
  stackEnv(); // fails with the fix when no stack runs
  token = (await signedInClient()).idToken;
  mkdirSync(configDir, { recursive: true });
  mkdirSync(tempDir, { recursive: true });
  writeFileSync(join(configDir, ".env.local"), "ENFORCE_APP_CHECK=true\nAPP_CHECK_REPLAY_PROTECTION=true\n");
  writeMissingParams(configDir, await declaredParams(join(ROOT, "functions")));
  const ports = await choosePorts("free");
  const base_ = JSON.parse(readFileSync(join(ROOT, "firebase.json"), "utf8")) as { functions: Record<string, unknown>[] };
  writeFileSync(
    configFile,
    JSON.stringify({
      functions: [{ ...base_.functions[0], configDir: `.emulators/appcheck-${process.pid}` }],
      // Only Functions: the suite's Auth and Firestore emulators serve it.
      emulators: emulatorsConfig(ports, { auth: false, firestore: false }),
    }),
  );
  const { FIREBASE_EMULATOR_HUB: _hub, ...inherited } = process.env;
  const firebaseBin = createRequire(import.meta.url).resolve("firebase-tools/lib/bin/firebase.js");
  emulator = spawn(process.execPath, [firebaseBin, "emulators:start", "--project", PROJECT, "--config", configFile, "--only", "functions"], {
    cwd: ROOT,
    // The suite's Auth and Firestore emulators reach the workers through the environment.
    env: { ...inherited, NODE_ENV: "production", FIREBASE_CLI_DISABLE_UPDATE_CHECK: "true", TMPDIR: tempDir },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: stopping it stops its workers and discovery process too.
    detached: true,
  });
  let output = "";
  emulator.stdout!.on("data", (b: Buffer) => (output += b.toString()));
  emulator.stderr!.on("data", (b: Buffer) => (output += b.toString()));
  base = `http://127.0.0.1:${ports.functions}/${PROJECT}/us-central1`;
  // Up once our /health answers (the emulator answers 404 while it is still loading the functions).
  const healthy = () => fetch(`${base}/api/health`).then(async (r) => "checks" in ((await r.json().catch(() => ({}))) as object), () => false);
  for (let started = Date.now(); !(await healthy()); ) {
    if (emulator.exitCode !== null || Date.now() - started > 90_000) throw new Error(`the private Functions emulator did not start:\n${output.slice(-3_000)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}, 120_000);

/** Signals the emulator's whole process group (firebase-tools, its function workers, the discovery process). */
function signalGroup(signal: NodeJS.Signals): void {
  try {
    if (emulator?.pid) process.kill(-emulator.pid, signal);
  } catch {
    // Already gone.
  }
}

afterAll(async () => {
  if (emulator && emulator.exitCode === null) {
    const exited = new Promise((resolve) => emulator!.once("exit", resolve));
    signalGroup("SIGINT");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }
  signalGroup("SIGKILL"); // whatever of the group is left
  rmSync(configFile, { force: true });
  rmSync(configDir, { recursive: true, force: true });
  rmSync(tempDir, { recursive: true, force: true });
});

const callExecute = (appCheck?: string) =>
  fetch(`${base}/executePrompt`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(appCheck ? { "x-firebase-appcheck": appCheck } : {}) },
    body: JSON.stringify({ data: { model: "local-mini", messages: [{ role: "user", content: "hi" }] } }),
  });
const callChat = (appCheck?: string) =>
  fetch(`${base}/api/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(appCheck ? { "x-firebase-appcheck": appCheck } : {}) },
    body: JSON.stringify({ model: "local-mini", messages: [{ role: "user", content: "hi" }] }),
  });

describe("App Check in the Functions emulator (ENFORCE_APP_CHECK and APP_CHECK_REPLAY_PROTECTION on)", () => {
  it("callable: enforcement holds (no token → permission-denied)", async () => {
    const answer = await callExecute();
    expect(answer.status).toBe(403);
    expect(await answer.json()).toMatchObject({ error: { status: "PERMISSION_DENIED", details: { category: "permission_denied" } } });
  });

  it("callable: any token passes, unverified, a forged one included, and a limited-use token is never consumed", async () => {
    // firebase-functions decodes App Check tokens without verifying them in the emulator
    // (skipTokenVerification) and reports alreadyConsumed: false whatever is sent.
    expect((await callExecute("forged")).status).toBe(200);
    const first = await callExecute(unsignedAppCheckToken);
    const replayed = await callExecute(unsignedAppCheckToken);
    expect([first.status, replayed.status]).toEqual([200, 200]);
    expect(await replayed.json()).toMatchObject({ result: { output: "Echo: hi" } });
  });

  it("/v1: every token is refused, forged or not (our check uses the Admin SDK, which verifies, and there is no App Check emulator)", async () => {
    for (const appCheck of [undefined, "forged", unsignedAppCheckToken]) {
      const answer = await callChat(appCheck);
      expect(answer.status).toBe(403);
      expect(await answer.json()).toMatchObject({ error: { type: "permission_denied" } });
    }
    const cancel = await fetch(`${base}/api/v1/executions/someid/cancel`, { method: "POST", headers: { authorization: `Bearer ${token}`, "x-firebase-appcheck": unsignedAppCheckToken } });
    expect(cancel.status).toBe(403);
  });
});
