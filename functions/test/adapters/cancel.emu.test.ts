import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFunctionsHost, type FunctionsHost } from "../../../scripts/functions-host.js";
import type { ExecuteChunk } from "../../src/adapters/execute-prompt-callable.js";
import type { ExecutionResult } from "../../src/core/execution.js";
import { callable, executionRecord, providerAborts, providerCount, rejection, signedInClient } from "../support/firebase.js";
import { functionUrl } from "../support/stack.js";
import { expectPartwayOutput, readUntil } from "../support/stream.js";

/**
 * cancelExecution and POST /v1/executions/{id}/cancel through the emulators: the call runs
 * in the cancelExecution (or api) function's worker, the execution in executePrompt's, so
 * the request crosses instances through Firestore as it does deployed.
 */

type Client = Awaited<ReturnType<typeof signedInClient>>;
let client: Client;
/** Another instance: the deployed handlers in this process. */
let host: FunctionsHost;
beforeAll(async () => {
  [client, host] = await Promise.all([signedInClient(), startFunctionsHost()]);
  // Its Admin SDK app first (it takes the first app there is), before the tests' own admin app exists.
  await fetch(`${host.url}/api/health`);
  // Warm workers: a cold start of the function that cancels is not what the tests below measure.
  await Promise.all([
    rejection(cancel()({ executionId: "warm-up-none" })),
    fetch(functionUrl("api", "/v1/executions/warm-up-none/cancel"), { method: "POST", headers: { authorization: `Bearer ${client.idToken}` } }),
  ]);
});
afterAll(() => host?.close());

const key = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
/** 200 words 25 ms apart: 5 s when nobody stops it. */
const DELTAS = 200;
const slow = (k: string) => ({ model: `local-pro+deltas=${DELTAS},interval=25,key=${k}`, messages: [{ role: "user" as const, content: "hi" }] });

/**
 * "Within a second", without a clock: the provider saw its request aborted, and the record kept
 * the stream's first words only (at least those the client had, far fewer than the 200 it would
 * have sent), with their usage and cost.
 */
async function expectStoppedPartway(k: string, executionId: string, received: string): Promise<void> {
  expect(await providerAborts(k)).toBe(1);
  const record = await executionRecord(client.uid, executionId);
  expect(record).toMatchObject({ status: "cancelled", error: { category: "cancelled" }, usage: { estimated: true } });
  expectPartwayOutput(record, DELTAS, received);
  expect(record!.cost.micros).toBeGreaterThan(0);
}
const cancel = (c: Client = client) => callable<{ executionId: string }, { executionId: string; status: string }>(c.functions, "cancelExecution");

describe("cancelExecution (callable)", () => {
  it("stops a running stream from another instance: upstream aborted, record cancelled with its partial output, usage and cost", async () => {
    const k = key("cancel");
    const { stream, data } = await callable<unknown, ExecutionResult, ExecuteChunk>(client.functions, "executePrompt").stream(slow(k));
    const outcome = rejection(data);
    const texts: string[] = [];
    let executionId = "";
    const reading = (async () => {
      for await (const chunk of stream) {
        if (chunk.type === "start") executionId = chunk.executionId;
        if (chunk.type === "delta") texts.push(chunk.text);
      }
    })().catch(() => undefined);
    await expect.poll(() => texts.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);

    const { data: answer } = await cancel()({ executionId });
    expect(answer).toEqual({ executionId, status: "cancelled" });
    const error = await outcome;
    await reading;
    expect(error.code).toBe("functions/cancelled");
    expect(error.details).toMatchObject({ category: "cancelled", executionId });
    await expectStoppedPartway(k, executionId, texts.join(""));
  });

  it("answers the final status of an execution that already finished, and changes nothing", async () => {
    const { data } = await callable<unknown, ExecutionResult>(client.functions, "executePrompt")({ model: "local-mini", messages: [{ role: "user", content: "hi" }] });
    expect((await cancel()({ executionId: data.executionId })).data).toEqual({ executionId: data.executionId, status: "succeeded" });
  });

  it("another user's execution is not found, as if it did not exist", async () => {
    const other = await signedInClient();
    const { data } = await callable<unknown, ExecutionResult>(client.functions, "executePrompt")({ model: "local-mini", messages: [{ role: "user", content: "hi" }] });
    const error = await rejection(cancel(other)({ executionId: data.executionId }));
    expect(error.code).toBe("functions/not-found");
    expect(error.details).toMatchObject({ category: "not_found" });
  });

  it("refuses a malformed executionId", async () => {
    const error = await rejection(cancel()({ executionId: "../limits/current" }));
    expect(error.code).toBe("functions/invalid-argument");
  });
});

describe("POST /v1/executions/{id}/cancel", () => {
  it("stops an openai-SDK stream: the SDK throws the in-stream error, the record ends cancelled", async () => {
    const k = key("cancel-v1");
    const openai = new OpenAI({ baseURL: functionUrl("api", "/v1"), apiKey: client.idToken, maxRetries: 0 });
    const { data: stream, response } = await openai.chat.completions.create({ ...slow(k), stream: true }).withResponse();
    const executionId = response.headers.get("x-execution-id")!;
    const texts: string[] = [];
    // Settled into a value at once, so that its rejection is never unhandled while we wait.
    const reading = (async () => {
      for await (const chunk of stream) texts.push(chunk.choices[0]?.delta.content ?? "");
    })().then(
      () => new Error("the stream ended without an error"),
      (error: unknown) => error,
    );
    await expect.poll(() => texts.join(""), { timeout: 20_000 }).toContain("bravo");

    const answer = await fetch(functionUrl("api", `/v1/executions/${executionId}/cancel`), {
      method: "POST",
      headers: { authorization: `Bearer ${client.idToken}` },
    });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ executionId, status: "cancelled" });
    expect(await reading).toMatchObject({ error: { type: "cancelled" } });
    await expectStoppedPartway(k, executionId, texts.join(""));
  });

  it("leaves nothing behind on the cancelling instance: a repeat of the requestId that lands there runs", async () => {
    // The execution runs on another instance (the deployed handlers in this process); the cancel
    // goes to the emulator's api worker, where the repeat then lands too.
    {
      const k = key("cancel-rerun");
      const requestId = `rerun-${randomUUID()}`;
      const body = JSON.stringify({ model: `local-pro+deltas=80,interval=25,key=${k}`, stream: true, messages: [{ role: "user", content: "hi" }] });
      const headers = { authorization: `Bearer ${client.idToken}`, "content-type": "application/json", "idempotency-key": requestId };
      const first = await fetch(`${host.url}/api/v1/chat/completions`, { method: "POST", headers, body });
      const executionId = first.headers.get("x-execution-id")!;
      const reader = first.body!.getReader();
      await readUntil(reader, (seen) => seen.includes("bravo"));
      const cancelled = await fetch(functionUrl("api", `/v1/executions/${executionId}/cancel`), { method: "POST", headers: { authorization: `Bearer ${client.idToken}` } });
      expect(await cancelled.json()).toEqual({ executionId, status: "cancelled" });
      await reader.cancel().catch(() => undefined);

      const again = await fetch(functionUrl("api", "/v1/chat/completions"), { method: "POST", headers, body });
      expect(again.headers.get("x-execution-id")).toBe(executionId);
      const text = await again.text();
      expect(text).not.toContain('"error"');
      expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
      const record = await executionRecord(client.uid, executionId);
      expect(record).toMatchObject({ status: "succeeded", prior: { runs: 1, lastStatus: "cancelled" } });
      expect(await providerCount(k)).toBe(2);
    }
  });

  it("needs the owner's ID token", async () => {
    const answer = await fetch(functionUrl("api", "/v1/executions/someid/cancel"), { method: "POST" });
    expect(answer.status).toBe(401);
  });
});
