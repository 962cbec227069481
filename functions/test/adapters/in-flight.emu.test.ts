import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFunctionsHost, type FunctionsHost } from "../../../scripts/functions-host.js";
import { adminDb, executionRecord, providerAborts, signedInClient } from "../support/firebase.js";

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

function callExecute(baseUrl: string, data: unknown, options: { stream?: boolean; signal?: AbortSignal } = {}) {
  return fetch(`${baseUrl}/executePrompt`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${client.idToken}`,
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
    const reader = response.body!.getReader();
    let text = "";
    while (!text.includes('"bravo ')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const executionId = /"executionId":"([^"]+)"/.exec(text)![1]!;

    await expect.poll(() => providerAborts(key), { timeout: 10_000 }).toBe(1);
    await expect.poll(async () => (await executionRecord(client.uid, executionId))?.status, { timeout: 10_000 }).toBe("cancelled");
    const record = await executionRecord(client.uid, executionId);
    expect(record!.output.startsWith("alpha bravo ")).toBe(true);
    expect(record!.output.length).toBeLessThan("alpha ".length * 200);
    expect(record).toMatchObject({ error: { category: "cancelled" }, usage: { estimated: true } });
  });
});

describe("SIGTERM with executions in flight", () => {
  it("lets what finishes within the grace period finish, records the rest cancelled (retryable), none left running", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/functions-host.ts"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await expect.poll(() => /listening on (\S+)/.exec(out)?.[1], { timeout: 30_000 }).toBeDefined();
    const url = /listening on (\S+)/.exec(out)![1]!;

    const calls = [
      callExecute(url, { model: "local-mini+fail=hang", messages: [{ role: "user", content: "one" }] }),
      callExecute(url, { model: "local-pro+deltas=500,interval=50", messages: [{ role: "user", content: "two" }] }, { stream: true }),
      // About 3 s: well within the grace period, so it finishes as if nothing happened.
      callExecute(url, { model: "local-pro+deltas=30,interval=100", messages: [{ role: "user", content: "three" }] }, { stream: true }),
    ];
    const executions = adminDb().collection(`users/${client.uid}/executions`);
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
    expect(answers[0]).toContain('"category":"cancelled"');
    expect(answers[0]).toContain('"retryable":true');
  });
});
