import { createSign, createVerify, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { getAuth, type DecodedIdToken } from "firebase-admin/auth";
import type { Query as FirestoreQuery } from "firebase-admin/firestore";
import { onCall, onRequest } from "firebase-functions/https";
import type * as AdminApp from "../../functions/src/adapters/admin-app.js";
import type * as Auth from "../../functions/src/adapters/auth.js";
import type * as Callable from "../../functions/src/adapters/execute-prompt-callable.js";
import type * as FirestoreModule from "../../functions/src/adapters/firestore.js";
import type * as HttpApi from "../../functions/src/adapters/http-api.js";
import type * as OpenAIApi from "../../functions/src/adapters/openai-api.js";
import type * as PipelineDeps from "../../functions/src/adapters/pipeline-deps.js";
import type * as Params from "../../functions/src/config/params.js";
import type * as MemoryStores from "../../functions/src/core/memory-stores.js";
import { deployedFunctions, startFunctionsHost, type HostedFunctions } from "../functions-host.js";

/** A module of the compiled, deployed code (functions/lib), typed from its source. */
const lib = <T>(path: string): Promise<T> => import(new URL(`../../functions/lib/${path}`, import.meta.url).href) as Promise<T>;
const [
  { verifyAppCheck, verifyBearer },
  { createExecutePromptHandler },
  { firestore },
  { createApiHandler },
  { productionDeps, settingsFromParams },
  { MemoryExecutionStore, MemoryPromptStore },
  { adminApp },
  { chatCompletions },
  { PROVIDER_CONCURRENCY, PROVIDER_FUNCTION_TIMEOUT_SECONDS },
] = await Promise.all([
    lib<typeof Auth>("adapters/auth.js"),
    lib<typeof Callable>("adapters/execute-prompt-callable.js"),
    lib<typeof FirestoreModule>("adapters/firestore.js"),
    lib<typeof HttpApi>("adapters/http-api.js"),
    lib<typeof PipelineDeps>("adapters/pipeline-deps.js"),
    lib<typeof MemoryStores>("core/memory-stores.js"),
    lib<typeof AdminApp>("adapters/admin-app.js"),
    lib<typeof OpenAIApi>("adapters/openai-api.js"),
    lib<typeof Params>("config/params.js"),
  ]);

/**
 * One "instance" for the benchmark, in its own process: the deployed handlers on a plain
 * Node server. BENCH_STORES=firestore loads functions/lib/index.js as deployed (Firestore
 * emulator); BENCH_STORES=memory builds the same functions from the same factories with
 * the in-memory stores, to measure the pipeline alone. GET /__bench reports memory and
 * the Firestore operations this process issued.
 */

const mode = process.env.BENCH_STORES === "firestore" ? "firestore" : "memory";
const counters = { getAlls: 0, docsRead: 0, commits: 0, docsWritten: 0, queries: 0, queryDocsRead: 0 };
/** What the host counts of its Firestore traffic (GET /__bench). */
export type FirestoreCounters = typeof counters;

/** Counts what the stores ask of Firestore: getAll and batches, and queries (a conversation's history). */
async function instrumentFirestore(): Promise<void> {
  const db = await firestore();
  const { Query } = await import("firebase-admin/firestore");
  const get = Query.prototype.get;
  Query.prototype.get = async function (this: FirestoreQuery) {
    const snapshot = await get.call(this);
    counters.queries++;
    // Firestore bills a query at least one read, even when it returns nothing.
    counters.queryDocsRead += Math.max(1, snapshot.size);
    return snapshot;
  } as typeof get;
  const getAll = db.getAll.bind(db);
  db.getAll = ((...refs: Parameters<typeof db.getAll>) => {
    counters.getAlls++;
    counters.docsRead += refs.filter((r) => typeof r === "object" && r !== null && "path" in r).length;
    return getAll(...refs);
  }) as typeof db.getAll;
  const batch = db.batch.bind(db);
  db.batch = () => {
    const b = batch();
    let writes = 0;
    for (const method of ["set", "update", "create", "delete"] as const) {
      const original = (b[method] as (...args: unknown[]) => unknown).bind(b);
      (b as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
        writes++;
        return original(...args);
      };
    }
    const commit = b.commit.bind(b);
    b.commit = () => {
      counters.commits++;
      counters.docsWritten += writes;
      return commit();
    };
    return b;
  };
}

async function memoryFunctions(): Promise<HostedFunctions> {
  const executions = new MemoryExecutionStore();
  const deps = {
    ...productionDeps(),
    executions,
    prompts: new MemoryPromptStore(),
    settings: () => ({
      ...settingsFromParams(),
      limits: { perMinute: Number(process.env.RATE_LIMIT_PER_MINUTE ?? 1_000), maxConcurrent: 1_000, defaultMonthlyBudgetUsd: null, globalMonthlyBudgetUsd: null, globalShards: 20, reservationGraceMs: 90_000 },
    }),
  };
  // As index.ts deploys executePrompt and api.
  const options = { cpu: 1, memory: "512MiB", concurrency: PROVIDER_CONCURRENCY, timeoutSeconds: PROVIDER_FUNCTION_TIMEOUT_SECONDS } as const;
  return {
    executePrompt: onCall(options, createExecutePromptHandler({ deps: () => deps, enforceAppCheck: () => false })),
    api: onRequest(
      { ...options, invoker: "public" },
      createApiHandler({
        corsOrigins: () => [],
        verifyBearer,
        readinessPublic: () => false,
        chatCompletions: (req, res) => chatCompletions(req, res, { deps: () => deps, enforceAppCheck: () => false, verifyBearer, verifyAppCheck }),
        // Nothing cancels in the benchmark: no Firestore to carry the request between instances.
        cancelExecution: async (_req, res) => void res.status(404).json({ error: { message: "not in the benchmark", type: "not_found" } }),
      }),
    ),
  };
}

/**
 * With the Auth emulator, firebase-admin checks every ID token with a round trip to the
 * emulator (`verifyIdToken`: `if (checkRevoked || isEmulator)` → getUser), ~2.4 ms here.
 * Production verifies locally: decode, check the claims, verify one RS256 signature with
 * cached Google keys. This does that same work, so the figures reflect production.
 */
async function productionLikeTokenVerification(): Promise<void> {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  // Verification costs the same whatever the ~1 kB it covers: one signature made up front stands in for Google's.
  const sample = "x".repeat(1_000);
  const sampleSignature = createSign("RSA-SHA256").update(sample).sign(privateKey);
  const project = process.env.GCLOUD_PROJECT!;
  const auth = getAuth(await adminApp());
  const proto = Object.getPrototypeOf(auth) as { verifyIdToken: (token: string) => Promise<DecodedIdToken> };
  proto.verifyIdToken = async (token: string) => {
    const [, payload] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8")) as DecodedIdToken;
    const now = Date.now() / 1000;
    if (claims.aud !== project || claims.iss !== `https://securetoken.google.com/${project}` || !(claims.exp > now) || !claims.sub) {
      throw new Error("invalid token");
    }
    if (!createVerify("RSA-SHA256").update(sample).verify(publicKey, sampleSignature)) throw new Error("bad signature");
    return { ...claims, uid: claims.sub };
  };
}

function peakRssBytes(): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  return hwm ? Number(hwm) * 1024 : process.memoryUsage().rss;
}

await productionLikeTokenVerification();
const functions = mode === "firestore" ? await deployedFunctions() : await memoryFunctions();
// SIGINT ends the process normally, so that --cpu-prof can write its profile.
process.on("SIGINT", () => process.exit(0));
if (mode === "firestore") await instrumentFirestore();
const host = await startFunctionsHost({
  functions,
  extraRoutes: (app) => {
    app.get("/__bench", (_req, res) => {
      const cpu = process.cpuUsage();
      // The same gate serves both modes (memory mode copies productionDeps()).
      const speculation = productionDeps().speculation?.stats;
      res.json({ mode, rss: process.memoryUsage().rss, peakRss: peakRssBytes(), cpuMicros: cpu.user + cpu.system, firestore: counters, speculation });
    });
  },
});
console.log(`bench host (${mode}) listening on ${host.url}`);
