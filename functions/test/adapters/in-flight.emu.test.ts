import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFunctionsHost, type FunctionsHost } from "../../../scripts/functions-host.js";
import { choosePorts } from "../../../scripts/stack/ports.js";
import { adminDb, executionRecord, providerAborts, signedInClient } from "../support/firebase.js";
import { callableDeltaText, expectPartwayOutput, readUntil, sseEvents } from "../support/stream.js";

/**
 * What the Functions emulator cannot show: a client that disconnects mid-stream, and an
 * instance receiving SIGTERM with executions in flight. The deployed handlers
 * (functions/lib) are mounted on a plain Node server, in this process or in a child.
 */

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
let host: FunctionsHost;
let client: Awaited<ReturnType<typeof signedInClient>>;

beforeAll(async () => {
  [host, client] = await Promise.all([startFunctionsHost(), signedInClient()]);
});
afterAll(() => host?.close());

function callExecute(baseUrl: string, data: unknown, options: { stream?: boolean; signal?: AbortSignal; token?: string } = {}) {
  return fetch(`${baseUrl}/executePrompt`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${options.token ?? client.idToken}`,
      "content-type": "application/json",
      ...(options.stream ? { accept: "text/event-stream" } : {}),
    },
    body: JSON.stringify({ data }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

describe("client disconnect (handler called directly)", () => {
  it("aborts the upstream request at once and records cancelled with the output so far", async () => {
    const key = `gone-${randomUUID().slice(0, 8)}`;
    const controller = new AbortController();
    const response = await callExecute(
      host.url,
      { model: `local-pro+deltas=200,interval=25,key=${key}`, messages: [{ role: "user", content: "hi" }] },
      { stream: true, signal: controller.signal },
    );
    const text = await readUntil(response.body!.getReader(), (t) => callableDeltaText(t).includes("bravo "));
    controller.abort();
    const executionId = /"executionId":"([^"]+)"/.exec(text)![1]!;

    await expect.poll(() => providerAborts(key), { timeout: 10_000 }).toBe(1);
    await expect.poll(async () => (await executionRecord(client.uid, executionId))?.status, { timeout: 10_000 }).toBe("cancelled");
    const record = await executionRecord(client.uid, executionId);
    expect(record).toMatchObject({ error: { category: "cancelled" }, usage: { estimated: true } });
    expectPartwayOutput(record, 200, callableDeltaText(text));
  });
});

/** The plain host in a child process; resolves with its URL once it listens. */
async function plainHostChild(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/functions-host.ts"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  await expect.poll(() => /listening on (\S+)/.exec(out)?.[1], { timeout: 30_000 }).toBeDefined();
  return { child, url: /listening on (\S+)/.exec(out)![1]! };
}

/**
 * executePrompt as Cloud Run starts it: the functions framework's own `main` (its CLI), which
 * installs SIGTERM and SIGINT handlers that end the process, in the functions directory.
 */
async function frameworkChild(): Promise<{ child: ChildProcess; url: string }> {
  // A port nobody listens on now (no *_PORT override applies: that names the running stack's).
  const { functions: port } = await choosePorts("free", {});
  const main = createRequire(import.meta.url).resolve("@google-cloud/functions-framework").replace(/index\.js$/, "main.js");
  const child = spawn(process.execPath, [main, "--target=executePrompt", "--signature-type=http", `--port=${port}`], {
    cwd: join(ROOT, "functions"),
    env: { ...process.env, NODE_ENV: "production" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.resume();
  child.stderr!.resume();
  const url = `http://127.0.0.1:${port}`;
  await expect.poll(() => fetch(url, { method: "GET" }).then(() => true, () => false), { timeout: 30_000 }).toBe(true);
  return { child, url };
}

describe.each([
  ["a plain Node host", plainHostChild],
  ["the functions framework's main, as Cloud Run runs it", frameworkChild],
])("SIGTERM with executions in flight (%s)", (_name, start) => {
  it("lets what finishes within the grace period finish, records the rest cancelled (retryable), none left running", async () => {
    const [{ child, url }, user] = await Promise.all([start(), signedInClient()]);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

    const token = user.idToken;
    const calls = [
      callExecute(url, { model: "local-mini+fail=hang", messages: [{ role: "user", content: "one" }] }, { token }),
      callExecute(url, { model: "local-pro+deltas=500,interval=50", messages: [{ role: "user", content: "two" }] }, { stream: true, token }),
      // About 3 s: well within the grace period, so it finishes as if nothing happened.
      callExecute(url, { model: "local-pro+deltas=30,interval=100", messages: [{ role: "user", content: "three" }] }, { stream: true, token }),
    ];
    const executions = adminDb().collection(`users/${user.uid}/executions`);
    const running = () => executions.where("status", "==", "running").get();
    await expect.poll(async () => (await running()).size, { timeout: 20_000 }).toBe(3);

    child.kill("SIGTERM");
    const answers = await Promise.all(calls.map(async (call) => (await call).text()));
    await exited;

    expect((await running()).size).toBe(0);
    const records = (await executions.get()).docs.map((d) => d.data());
    const mine = records.filter((r) => ["local-mini+fail=hang", "local-pro+deltas=500,interval=50"].includes(r.model));
    expect(mine).toHaveLength(2);
    for (const record of mine) expect(record).toMatchObject({ status: "cancelled", error: { category: "cancelled" } });
    expect(records.find((r) => r.model === "local-pro+deltas=30,interval=100")).toMatchObject({ status: "succeeded" });
    expect(answers[2]).toContain('"result"');
    // Both cancelled calls tell their client so, as an error it may retry: the whole answer as
    // its JSON body, the stream as its last event (after the deltas it had sent).
    const cancelled = { error: { details: { category: "cancelled", retryable: true } } };
    expect(JSON.parse(answers[0]!)).toMatchObject(cancelled);
    const events = sseEvents(answers[1]!);
    expect(callableDeltaText(answers[1]!)).not.toBe("");
    expect(events.at(-1)).toMatchObject(cancelled);
  });
});
