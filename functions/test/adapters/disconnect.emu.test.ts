import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFrameworkHost, type FunctionsHost } from "../../../scripts/functions-host.js";
import { executionRecord, providerAborts, providerCount, signedInClient } from "../support/firebase.js";
import { callableDeltaText, chatDeltaText, expectPartwayOutput, readUntil } from "../support/stream.js";

/**
 * Client disconnects on what Cloud Functions (2nd gen) runs around our handlers: the
 * deployed handlers inside @google-cloud/functions-framework (scripts/functions-host.ts,
 * `startFrameworkHost`). For every way a client leaves (a stream aborted, a whole-answer
 * request aborted, a socket closed mid-request, on the callable and on /v1), the upstream
 * request is aborted and the record ends `cancelled` with the output produced so far.
 * (What Cloud Run's front end does in between cannot be measured here: docs/api.md.)
 */

let host: FunctionsHost;
let client: Awaited<ReturnType<typeof signedInClient>>;
beforeAll(async () => {
  [host, client] = await Promise.all([startFrameworkHost(), signedInClient()]);
});
afterAll(() => host?.close());

/** 200 words 25 ms apart: 5 s when nobody stops it. */
const DELTAS = 200;
const slowModel = (key: string) => `local-pro+deltas=${DELTAS},interval=25,key=${key}`;

/**
 * `received`: the text a streamed client had been sent, which the record must start with; a
 * whole-answer client received none, and the record must still hold the words produced so far.
 */
async function expectCancelledPartway(key: string, executionId: string, received?: string): Promise<void> {
  await expect.poll(() => providerAborts(key), { timeout: 10_000 }).toBe(1);
  await expect.poll(async () => (await executionRecord(client.uid, executionId))?.status, { timeout: 10_000 }).toBe("cancelled");
  const record = await executionRecord(client.uid, executionId);
  expect(record).toMatchObject({ error: { category: "cancelled" }, usage: { estimated: true } });
  // The output so far, and only that: a prefix of the stream, far from its 200 words, not empty.
  expectPartwayOutput(record, DELTAS, received);
}

/** The execution just admitted for this user (a request that streams nothing yet names it nowhere else). */
async function admittedExecution(key: string): Promise<string> {
  const { adminDb } = await import("../support/firebase.js");
  let id: string | undefined;
  await expect
    .poll(async () => {
      const running = await adminDb().collection(`users/${client.uid}/executions`).where("model", "==", slowModel(key)).get();
      id = running.docs[0]?.id;
      return id !== undefined && (await providerCount(key)) === 1;
    }, { timeout: 20_000 })
    .toBe(true);
  // Let a few words be produced before leaving (not a timing assertion: the record is checked for a
  // non-empty prefix). The provider's stats count requests, not the deltas sent, so there is
  // nothing to poll for instead.
  await new Promise((resolve) => setTimeout(resolve, 300));
  return id!;
}

const callableRequest = (key: string, stream: boolean) => ({
  method: "POST",
  headers: { authorization: `Bearer ${client.idToken}`, "content-type": "application/json", ...(stream ? { accept: "text/event-stream" } : {}) },
  body: JSON.stringify({ data: { model: slowModel(key), messages: [{ role: "user", content: "hi" }] } }),
});
const chatRequest = (key: string, stream: boolean) => ({
  method: "POST",
  headers: { authorization: `Bearer ${client.idToken}`, "content-type": "application/json" },
  body: JSON.stringify({ model: slowModel(key), stream, messages: [{ role: "user", content: "hi" }] }),
});
const key = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

describe("client disconnects inside the functions framework", () => {
  it("callable, streamed (.stream() aborted): upstream aborted, record cancelled with the words so far", async () => {
    const k = key("ff-callable-stream");
    const controller = new AbortController();
    const response = await fetch(`${host.url}/executePrompt`, { ...callableRequest(k, true), signal: controller.signal });
    const text = await readUntil(response.body!.getReader(), (t) => callableDeltaText(t).includes("bravo "));
    controller.abort();
    await expectCancelledPartway(k, /"executionId":"([^"]+)"/.exec(text)![1]!, callableDeltaText(text));
  });

  it("callable, whole answer (a plain call aborted before the result)", async () => {
    const k = key("ff-callable-whole");
    const controller = new AbortController();
    const call = fetch(`${host.url}/executePrompt`, { ...callableRequest(k, false), signal: controller.signal }).catch(() => undefined);
    const executionId = await admittedExecution(k);
    controller.abort();
    await call;
    await expectCancelledPartway(k, executionId);
  });

  it("callable, curl-style: the client closes its socket mid-request", async () => {
    const k = key("ff-callable-socket");
    const { body, headers } = callableRequest(k, false);
    const url = new URL(`${host.url}/executePrompt`);
    const socket = connect(Number(url.port), url.hostname);
    socket.on("error", () => {});
    socket.write(
      [`POST ${url.pathname} HTTP/1.1`, `host: ${url.host}`, ...Object.entries(headers).map(([n, v]) => `${n}: ${v}`), `content-length: ${Buffer.byteLength(body)}`, "", body].join("\r\n"),
    );
    const executionId = await admittedExecution(k);
    socket.destroy();
    await expectCancelledPartway(k, executionId);
  });

  it("/v1, streamed (the openai SDK's AbortController)", async () => {
    const k = key("ff-v1-stream");
    const controller = new AbortController();
    const response = await fetch(`${host.url}/api/v1/chat/completions`, { ...chatRequest(k, true), signal: controller.signal });
    const executionId = response.headers.get("x-execution-id")!;
    const text = await readUntil(response.body!.getReader(), (t) => chatDeltaText(t).includes("bravo "));
    controller.abort();
    await expectCancelledPartway(k, executionId, chatDeltaText(text));
  });

  it("/v1, whole answer (stream: false, aborted before the completion)", async () => {
    const k = key("ff-v1-whole");
    const controller = new AbortController();
    const call = fetch(`${host.url}/api/v1/chat/completions`, { ...chatRequest(k, false), signal: controller.signal }).catch(() => undefined);
    const executionId = await admittedExecution(k);
    controller.abort();
    await call;
    await expectCancelledPartway(k, executionId);
  });
});
