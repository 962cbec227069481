import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import OpenAI from "openai";
import { getApps, initializeApp as initializeAdmin } from "firebase-admin/app";
import { getFirestore } from "firebase-admin/firestore";
import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInAnonymously } from "firebase/auth";
import { connectFunctionsEmulator, getFunctions, httpsCallable, httpsCallableFromURL } from "firebase/functions";
import { startFrameworkHost } from "./functions-host.js";

/**
 * Measures, rather than assumes, whether a client that goes away is seen by the backend:
 * for each way a client can leave, does the execution's record end `cancelled` (the
 * platform reported the disconnect) or `succeeded` (it ran to the end)? Twice: through the
 * Functions emulator, and with the deployed handlers inside @google-cloud/functions-framework
 * (what Cloud Functions 2nd gen runs on Cloud Run; scripts/functions-host.ts). Run it inside
 * the stack: `npm run measure-disconnect`. docs/api.md ("Cancelling") reports its output.
 */
const env = process.env;
const project = env.GCLOUD_PROJECT!;
const base = env.FUNCTIONS_BASE_URL!;
// The hosted handlers take the first Admin SDK app there is and configure its Firestore: they go first.
const host = await startFrameworkHost();
await fetch(`${host.url}/api/health`);
const admin = getApps()[0] ?? initializeAdmin({ projectId: project });
const db = getFirestore(admin);

const app = initializeApp({ projectId: project, apiKey: "fake-api-key" });
const auth = getAuth(app);
connectAuthEmulator(auth, `http://${env.FIREBASE_AUTH_EMULATOR_HOST}`, { disableWarnings: true });
const { user } = await signInAnonymously(auth);
const token = await user.getIdToken();
const functions = getFunctions(app, "us-central1");
const origin = new URL(base);
connectFunctionsEmulator(functions, origin.hostname, Number(origin.port));

// 40 deltas 100 ms apart: 4 s if nobody stops it; every client leaves after about 1 s.
const model = () => `local-mini+deltas=40,interval=100,key=disc-${randomUUID().slice(0, 8)}`;
const messages = [{ role: "user" as const, content: "hi" }];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function finalStatus(executionId: string | undefined): Promise<string> {
  if (!executionId) return "no execution id seen";
  for (let i = 0; i < 80; i++) {
    const status = (await db.doc(`users/${user.uid}/executions/${executionId}`).get()).get("status") as string | undefined;
    if (status && status !== "running") return status;
    await sleep(100);
  }
  return "running";
}

async function latestExecutionId(): Promise<string | undefined> {
  const snapshot = await db.collection(`users/${user.uid}/executions`).orderBy("createdAt", "desc").limit(1).get();
  return snapshot.docs[0]?.id;
}

/** Where the four kinds of client call: the Functions emulator, or the handlers inside the real functions framework. */
interface Target {
  executePrompt: ReturnType<typeof httpsCallable>;
  callableUrl: string;
  apiBase: string;
}

async function measure(target: Target): Promise<Record<string, string>> {
  const results: Record<string, string> = {};
  {
    const controller = new AbortController();
    const { stream, data } = await target.executePrompt.stream({ model: model(), messages }, { signal: controller.signal });
    data.catch(() => undefined);
    let executionId: string | undefined;
    setTimeout(() => controller.abort(), 1_000);
    try {
      for await (const chunk of stream as AsyncIterable<{ type: string; executionId?: string }>) if (chunk.type === "start") executionId = chunk.executionId;
    } catch {
      // aborted
    }
    results["firebase SDK .stream({ signal }) aborted"] = await finalStatus(executionId);
  }
  {
    const openai = new OpenAI({ baseURL: target.apiBase, apiKey: token, maxRetries: 0 });
    const controller = new AbortController();
    const { data: stream, response } = await openai.chat.completions.create({ model: model(), messages, stream: true }, { signal: controller.signal }).withResponse();
    setTimeout(() => controller.abort(), 1_000);
    try {
      for await (const _chunk of stream) void _chunk;
    } catch {
      // aborted
    }
    results["openai SDK stream, AbortController"] = await finalStatus(response.headers.get("x-execution-id") ?? undefined);
  }
  {
    const openai = new OpenAI({ baseURL: target.apiBase, apiKey: token, maxRetries: 0 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1_000);
    await openai.chat.completions.create({ model: model(), messages }, { signal: controller.signal }).catch(() => undefined);
    results["openai SDK, not streamed, AbortController"] = await finalStatus(await latestExecutionId());
  }
  {
    const body = JSON.stringify({ data: { model: model(), messages } });
    await promisify(execFile)("curl", ["-sN", "--max-time", "1", "-H", `authorization: Bearer ${token}`, "-H", "content-type: application/json", "-H", "accept: text/event-stream", "-d", body, target.callableUrl]).catch(() => undefined);
    results["curl --max-time 1, callable stream"] = await finalStatus(await latestExecutionId());
  }
  return results;
}

const emulator = await measure({ executePrompt: httpsCallable(functions, "executePrompt"), callableUrl: `${base}/executePrompt`, apiBase: `${base}/api/v1` });
const framework = await measure({
  executePrompt: httpsCallableFromURL(functions, `${host.url}/executePrompt`),
  callableUrl: `${host.url}/executePrompt`,
  apiBase: `${host.url}/api/v1`,
});
await host.close();

console.log(`${"how the client leaves".padEnd(45)}   ${"Functions emulator".padEnd(20)} functions framework (@google-cloud/functions-framework)`);
for (const how of Object.keys(emulator)) console.log(`${how.padEnd(45)} → ${emulator[how]!.padEnd(20)} ${framework[how]}`);
process.exit(0);
