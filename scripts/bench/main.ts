import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import type { SpeculationStats } from "../../functions/src/core/pipeline/speculation.js";
import type { FirestoreCounters } from "./host.js";
import { added, ms, percentile, shuffle, summarize, type Added } from "./stats.js";

/**
 * `npm run bench`: what this backend adds to a direct call of the same (local) provider,
 * measured in one run with interleaved A/B calls after a warm-up. Needs the stack's
 * environment (npm run bench starts it): the local provider, Firestore and Auth emulators.
 * Prints a table and writes bench/results.json. Asserts nothing.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CALLS = Number(process.env.BENCH_CALLS ?? 2_000);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 600);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "64,256,512").split(",").map(Number);
const CONVERSATION_ROUNDS = Number(process.env.BENCH_CONVERSATION_ROUNDS ?? 300);
const CONVERSATION_MESSAGES = 50;
const SLOW_START_ROUNDS = Number(process.env.BENCH_SLOW_START_ROUNDS ?? 150);

function diffSpeculation(before: SpeculationStats, after: SpeculationStats): SpeculationStats {
  return {
    started: after.started - before.started,
    released: after.released - before.released,
    aborted: after.aborted - before.aborted,
    abortedMicros: after.abortedMicros - before.abortedMicros,
  };
}

/** `BENCH_ONLY=conversation` runs the conversation series alone (Firestore mode), for a quick look. */
const ONLY = process.env.BENCH_ONLY;
const USERS = 40;

const need = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the benchmark with \`npm run bench\``);
  return value;
};
const providerUrl = need("LOCAL_PROVIDER_URL");
const authHost = need("FIREBASE_AUTH_EMULATOR_HOST");
need("FIRESTORE_EMULATOR_HOST");
const log = (line: string) => process.stderr.write(`${line}\n`);

async function signUp(): Promise<string> {
  const response = await fetch(`http://${authHost}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ returnSecureToken: true }),
  });
  return ((await response.json()) as { idToken: string }).idToken;
}

interface Host {
  url: string;
  child: ChildProcess;
  stats(): Promise<{ rss: number; peakRss: number; cpuMicros: number; firestore: FirestoreCounters; speculation?: SpeculationStats }>;
  stop(): Promise<void>;
}


/** The bare relay (relay.ts): the floor any gateway pays for the second hop. */
async function startRelay(): Promise<{ url: string; cpuMicros(): Promise<number>; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/bench/relay.ts"], { cwd: ROOT, env: process.env, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once("exit", (code) => reject(new Error(`relay exited with ${code}`)));
  });
  return {
    url,
    cpuMicros: async () => ((await (await fetch(`${url}/__bench`)).json()) as { cpuMicros: number }).cpuMicros,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

async function startHost(stores: "memory" | "firestore"): Promise<Host> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/bench/host.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      BENCH_STORES: stores,
      // Limits high enough not to refuse benchmark traffic (40 users), still enforced on every call.
      RATE_LIMIT_PER_MINUTE: "1000",
      MAX_CONCURRENT_EXECUTIONS: "1000",
      DEFAULT_USER_MONTHLY_BUDGET_USD: "1000",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const onData = (b: Buffer) => {
      out += b.toString();
      const match = /listening on (\S+)/.exec(out);
      if (match) {
        // From here on its stdout (one log line per execution) is drained and dropped.
        child.stdout!.off("data", onData);
        child.stdout!.resume();
        resolve(match[1]!);
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`bench host exited with ${code}`)));
  });
  return {
    url,
    child,
    stats: async () => (await (await fetch(`${url}/__bench`)).json()) as Awaited<ReturnType<Host["stats"]>>,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

const messages = [{ role: "user" as const, content: "hello there" }];
const timed = async (work: () => Promise<unknown>): Promise<number> => {
  const start = performance.now();
  await work();
  return performance.now() - start;
};

/** Reads an SSE body, calling `onData` with each event's data; returns when the stream ends. */
async function readSse(response: Response, onData: (data: string) => void): Promise<void> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (event.startsWith("data: ")) onData(event.slice(6));
    }
  }
}

interface StreamSample {
  ttft: number;
  gaps: number[];
}

function streamClock() {
  const start = performance.now();
  let last = 0;
  const sample: StreamSample = { ttft: Number.NaN, gaps: [] };
  return {
    delta() {
      const now = performance.now();
      if (Number.isNaN(sample.ttft)) sample.ttft = now - start;
      else sample.gaps.push(now - last);
      last = now;
    },
    sample,
  };
}

async function latencySuite(host: Host, tokens: string[], relayUrl: string) {
  const direct = new OpenAI({ baseURL: providerUrl, apiKey: "none", maxRetries: 0 });
  const relay = new OpenAI({ baseURL: `${relayUrl}/v1`, apiKey: "none", maxRetries: 0 });
  const viaApi = tokens.map((token) => new OpenAI({ baseURL: `${host.url}/api/v1`, apiKey: token, maxRetries: 0 }));
  const series = { sdkDirect: [] as number[], sdkRelay: [] as number[], sdkApi: [] as number[], fetchDirect: [] as number[], callable: [] as number[] };
  const calls: Record<keyof typeof series, (i: number) => Promise<unknown>> = {
    sdkDirect: () => direct.chat.completions.create({ model: "local-mini", messages }),
    sdkRelay: () => relay.chat.completions.create({ model: "local-mini", messages }),
    sdkApi: (i) => viaApi[i % viaApi.length]!.chat.completions.create({ model: "local-mini", messages }),
    fetchDirect: async () =>
      (
        await fetch(`${providerUrl}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "local-mini", messages }),
        })
      ).json(),
    callable: async (i) => {
      const response = await fetch(`${host.url}/executePrompt`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${tokens[i % tokens.length]}` },
        body: JSON.stringify({ data: { model: "local-mini", messages } }),
      });
      const body = (await response.json()) as { result?: unknown };
      if (!body.result) throw new Error(`callable failed: ${JSON.stringify(body)}`);
    },
  };
  const before = await host.stats();
  for (let i = 0; i < WARMUP + CALLS; i++) {
    for (const name of shuffle(Object.keys(calls) as (keyof typeof series)[])) {
      const elapsed = await timed(() => calls[name](i));
      if (i >= WARMUP) series[name].push(elapsed);
    }
  }
  const after = await host.stats();
  return {
    api: added(series.sdkDirect, series.sdkApi),
    relay: added(series.sdkDirect, series.sdkRelay),
    apiOverRelay: added(series.sdkRelay, series.sdkApi),
    callable: added(series.fetchDirect, series.callable),
    firestorePerExecution: perExecution(before.firestore, after.firestore, 2 * (WARMUP + CALLS)),
  };
}

async function streamingSuite(host: Host, tokens: string[], scenario: string, rounds: number) {
  const model = `local-mini+${scenario}`;
  const direct = new OpenAI({ baseURL: providerUrl, apiKey: "none", maxRetries: 0 });
  const viaApi = tokens.map((token) => new OpenAI({ baseURL: `${host.url}/api/v1`, apiKey: token, maxRetries: 0 }));
  const samples = { direct: [] as StreamSample[], api: [] as StreamSample[], callable: [] as StreamSample[] };
  const runs: Record<keyof typeof samples, (i: number) => Promise<StreamSample>> = {
    direct: async () => {
      const clock = streamClock();
      for await (const chunk of await direct.chat.completions.create({ model, messages, stream: true })) {
        if (chunk.choices[0]?.delta.content) clock.delta();
      }
      return clock.sample;
    },
    api: async (i) => {
      const clock = streamClock();
      for await (const chunk of await viaApi[i % viaApi.length]!.chat.completions.create({ model, messages, stream: true })) {
        if (chunk.choices[0]?.delta.content) clock.delta();
      }
      return clock.sample;
    },
    callable: async (i) => {
      const clock = streamClock();
      const response = await fetch(`${host.url}/executePrompt`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${tokens[i % tokens.length]}` },
        body: JSON.stringify({ data: { model, messages } }),
      });
      await readSse(response, (data) => {
        if (data.startsWith('{"message":{"type":"delta"')) clock.delta();
      });
      return clock.sample;
    },
  };
  for (let i = 0; i < Math.min(WARMUP, 100) + rounds; i++) {
    for (const name of shuffle(Object.keys(runs) as (keyof typeof samples)[])) {
      const sample = await runs[name](i);
      if (i >= Math.min(WARMUP, 100)) samples[name].push(sample);
    }
  }
  const ttft = (s: StreamSample[]) => s.map((x) => x.ttft);
  const gaps = (s: StreamSample[]) => s.flatMap((x) => x.gaps);
  return {
    apiTtft: added(ttft(samples.direct), ttft(samples.api)),
    callableTtft: added(ttft(samples.direct), ttft(samples.callable)),
    gaps: {
      direct: summarize(gaps(samples.direct)),
      api: summarize(gaps(samples.api)),
      callable: summarize(gaps(samples.callable)),
    },
  };
}

async function concurrencySuite(n: number, tokens: string[]) {
  const host = await startHost("memory");
  const model = "local-mini+deltas=64,interval=20,numbered=1";
  const expected = Array.from({ length: 64 }, (_, i) => `t${i}${i < 63 ? " " : ""}`);
  const run = async (url: string, headers: Record<string, string>) => {
    const clock = streamClock();
    const texts: string[] = [];
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model, messages, stream: true }),
    });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    await readSse(response, (data) => {
      if (data === "[DONE]") return;
      const text = (JSON.parse(data) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content;
      if (text) {
        clock.delta();
        texts.push(text);
      }
    });
    return { sample: clock.sample, ok: texts.length === expected.length && texts.every((t, i) => t === expected[i]), lost: expected.length - texts.length };
  };
  const wave = async (url: string, headersFor: (i: number) => Record<string, string>) => {
    const outcomes = await Promise.allSettled(Array.from({ length: n }, (_, i) => run(url, headersFor(i))));
    const done = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    return {
      errors: outcomes.length - done.length,
      badSequences: done.filter((d) => !d.ok).length,
      lostDeltas: done.reduce((sum, d) => sum + Math.max(0, d.lost), 0),
      gaps: summarize(done.flatMap((d) => d.sample.gaps)),
    };
  };
  const direct = await wave(`${providerUrl}/chat/completions`, () => ({}));
  const ours = await wave(`${host.url}/api/v1/chat/completions`, (i) => ({ authorization: `Bearer ${tokens[i % tokens.length]}` }));
  const { peakRss } = await host.stats();
  await host.stop();
  return { n, direct, ours, addedGapP99: ours.gaps.p99 - direct.gaps.p99, peakRssMiB: peakRss / 1024 / 1024 };
}

/**
 * Sustained throughput: 32 closed-loop clients for 10 s, non-streamed, each sending its next
 * request when its last answer arrives; requests a second, and the CPU time each serving
 * process spent per 1,000 requests (process.cpuUsage deltas, read through /__bench).
 */
async function throughputSuite(targets: { name: string; url: string; headers: (i: number) => Record<string, string>; cpuMicros?: () => Promise<number> }[]) {
  const CLIENTS = 32;
  const SECONDS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 10);
  const body = JSON.stringify({ model: "local-mini", messages });
  const out: { name: string; requestsPerSecond: number; errors: number; cpuSecondsPer1000?: number }[] = [];
  for (const target of targets) {
    // Warm-up: connections and JIT.
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => fetch(`${target.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...target.headers(i) }, body }).then((r) => r.text())));
    const cpuBefore = await target.cpuMicros?.();
    let done = 0;
    let errors = 0;
    const until = performance.now() + SECONDS * 1_000;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        while (performance.now() < until) {
          const response = await fetch(`${target.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", ...target.headers(i) }, body });
          await response.text();
          if (response.ok) done++;
          else errors++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1_000;
    const cpuAfter = await target.cpuMicros?.();
    out.push({
      name: target.name,
      requestsPerSecond: done / seconds,
      errors,
      ...(cpuBefore !== undefined && cpuAfter !== undefined ? { cpuSecondsPer1000: ((cpuAfter - cpuBefore) / 1e6 / Math.max(1, done)) * 1_000 } : {}),
    });
  }
  return out;
}

/** What the host's Firestore counters moved by, per execution. */
function perExecution(before: FirestoreCounters, after: FirestoreCounters, executions: number): FirestoreCounters {
  const per = (key: keyof FirestoreCounters) => (after[key] - before[key]) / executions;
  return { getAlls: per("getAlls"), docsRead: per("docsRead"), queries: per("queries"), queryDocsRead: per("queryDocsRead"), commits: per("commits"), docsWritten: per("docsWritten") };
}

const uidOf = (token: string) => (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { sub: string }).sub;

/**
 * A turn on a conversation of CONVERSATION_MESSAGES stored messages (~200 characters each)
 * against a plain request, through the callable on the Firestore-mode instance, interleaved:
 * what loading and windowing the history adds to latency and to time to first token, and
 * what it costs in Firestore reads. Each turn gets a conversation of its own, written
 * beforehand, so that every one sees exactly CONVERSATION_MESSAGES stored messages.
 */
async function conversationSuite(host: Host, tokens: string[]) {
  const { initializeApp, getApps } = await import("firebase-admin/app");
  const { getFirestore } = await import("firebase-admin/firestore");
  // Written as the backend writes them: its paths, its byte count.
  const { conversationPaths } = await import("../../functions/src/adapters/conversations-repo.js");
  const { storedBytes } = await import("../../functions/src/core/conversation.js");
  const app = getApps().find((a) => a.name === "bench") ?? initializeApp({ projectId: need("GCLOUD_PROJECT") }, "bench");
  const db = getFirestore(app);
  const run = `b${Date.now().toString(36)}`;
  const counted = 20;
  const total = Math.min(WARMUP, 50) + CONVERSATION_ROUNDS + counted;
  const text = (seq: number) => `message ${seq}: ${"the quick brown fox jumps over the lazy dog ".repeat(4)}`.slice(0, 200);
  const conversationOf = (i: number, kind: string) => ({ uid: uidOf(tokens[i % tokens.length]!), id: `${run}-${kind}-${i}` });
  // Every conversation the suite uses, written directly: the document and its messages (as turns would have).
  let batch = db.batch();
  let writes = 0;
  for (let i = 0; i < total; i++) {
    for (const kind of ["whole", "stream"]) {
      const { uid, id } = conversationOf(i, kind);
      const now = new Date();
      const messages = Array.from({ length: CONVERSATION_MESSAGES }, (_, seq) => ({ role: seq % 2 === 0 ? ("user" as const) : ("assistant" as const), content: text(seq) }));
      batch.set(db.doc(conversationPaths.conversation(uid, id)), {
        title: "bench", model: "local-mini", createdAt: now, updatedAt: now, messageCount: CONVERSATION_MESSAGES, lastExecutionId: "bench",
        historyBytes: messages.reduce((sum, m) => sum + storedBytes(m), 0), nextSeq: CONVERSATION_MESSAGES, system: null, expireAt: new Date(Date.now() + 86_400_000),
      });
      messages.forEach((message, seq) => {
        batch.set(db.doc(conversationPaths.message(uid, id, seq)), { ...message, seq, executionId: "bench", createdAt: now });
      });
      writes += 1 + CONVERSATION_MESSAGES;
      if (writes >= 450) {
        await batch.commit();
        batch = db.batch();
        writes = 0;
      }
    }
  }
  if (writes > 0) await batch.commit();

  const call = async (i: number, conversationId: string | undefined, model: string, stream: boolean): Promise<number> => {
    const start = performance.now();
    const response = await fetch(`${host.url}/executePrompt`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${tokens[i % tokens.length]}`, ...(stream ? { accept: "text/event-stream" } : {}) },
      body: JSON.stringify({ data: { model, messages, ...(conversationId ? { conversationId } : {}) } }),
    });
    if (!stream) {
      const body = (await response.json()) as { result?: unknown };
      if (!body.result) throw new Error(`callable failed: ${JSON.stringify(body)}`);
      return performance.now() - start;
    }
    let ttft = Number.NaN;
    await readSse(response, (data) => {
      if (Number.isNaN(ttft) && data.startsWith('{"message":{"type":"delta"')) ttft = performance.now() - start;
    });
    if (Number.isNaN(ttft)) throw new Error("stream without a delta");
    return ttft;
  };
  const series = { plain: [] as number[], conversation: [] as number[], plainTtft: [] as number[], conversationTtft: [] as number[] };
  const runs: Record<keyof typeof series, (i: number) => Promise<number>> = {
    plain: (i) => call(i, undefined, "local-mini", false),
    conversation: (i) => call(i, conversationOf(i, "whole").id, "local-mini", false),
    plainTtft: (i) => call(i, undefined, "local-mini+deltas=2", true),
    conversationTtft: (i) => call(i, conversationOf(i, "stream").id, "local-mini+deltas=2", true),
  };
  const warmup = Math.min(WARMUP, 50);
  for (let i = 0; i < warmup + CONVERSATION_ROUNDS; i++) {
    for (const name of shuffle(Object.keys(runs) as (keyof typeof series)[])) {
      const elapsed = await runs[name](i);
      if (i >= warmup) series[name].push(elapsed);
    }
  }
  // Firestore per execution, each kind alone.
  const firestorePer = async (work: (i: number) => Promise<number>) => {
    const before = (await host.stats()).firestore;
    for (let i = warmup + CONVERSATION_ROUNDS; i < total; i++) await work(i);
    return perExecution(before, (await host.stats()).firestore, counted);
  };
  return {
    storedMessages: CONVERSATION_MESSAGES,
    latency: added(series.plain, series.conversation),
    ttft: added(series.plainTtft, series.conversationTtft),
    firestorePerExecution: { plain: await firestorePer(runs.plain), conversation: await firestorePer(runs.conversation) },
  };
}

function conversationLines(c: Awaited<ReturnType<typeof conversationSuite>>): string[] {
  const reads = (f: FirestoreCounters) =>
    `${f.getAlls.toFixed(2)} batched reads (${f.docsRead.toFixed(2)} documents), ${f.queries.toFixed(2)} queries (${f.queryDocsRead.toFixed(2)} documents), ${f.commits.toFixed(2)} commits (${f.docsWritten.toFixed(2)} document writes)`;
  return [
    `A conversation's turn (${c.storedMessages} stored messages) against a plain request, executePrompt callable, Firestore emulator`,
    "| series | paired p50 | paired p99 | Δp50 | Δp99 | plain p50 / p99 |",
    "| --- | --- | --- | --- | --- | --- |",
    row("added latency, non-streamed", c.latency),
    row("added TTFT, streamed", c.ttft),
    `Firestore per plain request: ${reads(c.firestorePerExecution.plain)}`,
    `Firestore per conversation turn: ${reads(c.firestorePerExecution.conversation)}`,
  ];
}

function coldStart(mode: "baseline" | "entry", token: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["scripts/bench/cold-start.mjs", mode], {
      cwd: ROOT,
      env: { ...process.env, BENCH_TOKEN: token },
      stdio: ["ignore", "pipe", "ignore"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.once("exit", () => {
      const line = out.split("\n").find((l) => l.startsWith('{"importMs"'));
      if (line) resolve(JSON.parse(line) as Record<string, number>);
      else reject(new Error(`cold-start ${mode} printed: ${out}`));
    });
  });
}

async function coldStartSuite(token: string) {
  const baseline: number[] = [];
  const entry: Record<string, number>[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    baseline.push((await coldStart("baseline", token)).importMs!);
    entry.push(await coldStart("entry", token));
  }
  const median = (xs: number[]) => percentile(xs, 50);
  const base = median(baseline);
  return {
    firebaseFunctionsImportMs: base,
    entryImportMs: median(entry.map((e) => e.importMs!)),
    firstHealthMs: median(entry.map((e) => e.healthMs!)),
    firstExecuteMs: median(entry.map((e) => e.executeMs!)),
    importRatio: median(entry.map((e) => e.importMs!)) / base,
    allOk: entry.every((e) => e.healthStatus === 200 && (e.executeOk as unknown) === true),
  };
}

function row(label: string, a: Added): string {
  return `| ${label} | ${ms(a.pairedP50)} | ${ms(a.pairedP99)} | ${ms(a.p50)} | ${ms(a.p99)} | ${ms(a.baseline.p50)} / ${ms(a.baseline.p99)} |`;
}

const started = performance.now();
log(`bench: ${CALLS} calls per non-streamed series, ${STREAMS} per streamed series, warm-up ${WARMUP}`);
const tokens = await Promise.all(Array.from({ length: USERS }, signUp));
const results: Record<string, unknown> = { machine: { cpus: (await import("node:os")).cpus().length, node: process.version }, calls: CALLS, streams: STREAMS };

if (ONLY === "conversation") {
  log(`bench: conversation turns only (${CONVERSATION_ROUNDS} rounds)`);
  const host = await startHost("firestore");
  const conversation = await conversationSuite(host, tokens);
  await host.stop();
  console.log(["", ...conversationLines(conversation)].join("\n"));
  mkdirSync(`${ROOT}/bench`, { recursive: true });
  writeFileSync(`${ROOT}/bench/results-conversation.json`, JSON.stringify({ ...results, conversation }, null, 2));
  process.exit(0);
}

const relay = await startRelay();
for (const stores of ["memory", "firestore"] as const) {
  log(`bench: ${stores} stores: non-streamed`);
  const host = await startHost(stores);
  const latency = await latencySuite(host, tokens, relay.url);
  log(`bench: ${stores} stores: streamed`);
  const streaming =
    stores === "memory"
      ? await streamingSuite(host, tokens, "deltas=8,interval=5", STREAMS)
      : await streamingSuite(host, tokens, "deltas=2", Math.ceil(STREAMS / 2));
  // A provider that takes 30 ms to its first token (real ones take hundreds): the speculative
  // start hides admission's round trips behind it, which a provider answering in 1 ms cannot.
  log(`bench: ${stores} stores: streamed, provider with 30 ms to first token`);
  const speculationBefore = (await host.stats()).speculation;
  const slowStart = await streamingSuite(host, tokens, "deltas=2,latency=30", SLOW_START_ROUNDS);
  const speculationAfter = (await host.stats()).speculation;
  const speculation = speculationBefore && speculationAfter ? diffSpeculation(speculationBefore, speculationAfter) : undefined;
  let conversation: Awaited<ReturnType<typeof conversationSuite>> | undefined;
  if (stores === "firestore") {
    log("bench: Firestore stores: conversation turns");
    conversation = await conversationSuite(host, tokens);
  }
  let throughput: Awaited<ReturnType<typeof throughputSuite>> | undefined;
  if (stores === "memory") {
    log("bench: sustained throughput, 32 clients");
    throughput = await throughputSuite([
      { name: "direct (local provider)", url: providerUrl, headers: () => ({}) },
      { name: "bare Node relay", url: `${relay.url}/v1`, headers: () => ({}), cpuMicros: relay.cpuMicros },
      { name: "ours: /v1, in-memory stores", url: `${host.url}/api/v1`, headers: (i) => ({ authorization: `Bearer ${tokens[i % tokens.length]}` }), cpuMicros: async () => (await host.stats()).cpuMicros },
    ]);
  }
  await host.stop();
  results[stores] = { latency, streaming, slowStart, ...(speculation ? { speculation } : {}), ...(throughput ? { throughput } : {}), ...(conversation ? { conversation } : {}) };
}
await relay.stop();
results.concurrency = [];
for (const n of CONCURRENCY) {
  log(`bench: ${n} concurrent streams`);
  (results.concurrency as unknown[]).push(await concurrencySuite(n, tokens));
}
log("bench: cold start");
// A fresh user: the benchmark users are past the default per-minute limit the cold process enforces.
results.coldStart = await coldStartSuite(await signUp());
results.durationS = (performance.now() - started) / 1000;

type Suite = {
  latency: Awaited<ReturnType<typeof latencySuite>>;
  streaming: Awaited<ReturnType<typeof streamingSuite>>;
  slowStart: Awaited<ReturnType<typeof streamingSuite>>;
  speculation?: SpeculationStats;
  throughput?: Awaited<ReturnType<typeof throughputSuite>>;
  conversation?: Awaited<ReturnType<typeof conversationSuite>>;
};
const memory = results.memory as Suite;
const firestoreSuite = results.firestore as Suite;
const cold = results.coldStart as Awaited<ReturnType<typeof coldStartSuite>>;
const lines = [
  "",
  "Added latency (ours − direct call of the same local provider; interleaved, after warm-up)",
  "| series | paired p50 | paired p99 | Δp50 | Δp99 | direct p50 / p99 |",
  "| --- | --- | --- | --- | --- | --- |",
  row("bare Node relay (the floor)", memory.latency.relay),
  row("/v1/chat/completions, in-memory stores", memory.latency.api),
  row("/v1 over the bare relay, in-memory", memory.latency.apiOverRelay),
  row("executePrompt callable, in-memory stores", memory.latency.callable),
  row("/v1/chat/completions, Firestore emulator", firestoreSuite.latency.api),
  row("executePrompt callable, Firestore emulator", firestoreSuite.latency.callable),
  row("TTFT /v1 stream, in-memory", memory.streaming.apiTtft),
  row("TTFT callable stream, in-memory", memory.streaming.callableTtft),
  row("TTFT /v1 stream, Firestore emulator", firestoreSuite.streaming.apiTtft),
  row("TTFT callable stream, Firestore emulator", firestoreSuite.streaming.callableTtft),
  "",
  `TTFT p50 added with the Firestore emulator over in-memory, provider answering at once: /v1 ${ms(firestoreSuite.streaming.apiTtft.pairedP50 - memory.streaming.apiTtft.pairedP50)}, callable ${ms(firestoreSuite.streaming.callableTtft.pairedP50 - memory.streaming.callableTtft.pairedP50)}`,
  "",
  "Added time to first token with a provider that takes 30 ms to its first token (the speculative start hides admission behind it)",
  "| series | paired p50 | paired p99 | Δp50 | Δp99 | direct p50 / p99 |",
  "| --- | --- | --- | --- | --- | --- |",
  row("TTFT /v1 stream, in-memory", memory.slowStart.apiTtft),
  row("TTFT callable stream, in-memory", memory.slowStart.callableTtft),
  row("TTFT /v1 stream, Firestore emulator", firestoreSuite.slowStart.apiTtft),
  row("TTFT callable stream, Firestore emulator", firestoreSuite.slowStart.callableTtft),
  `TTFT p50 added with the Firestore emulator over in-memory: /v1 ${ms(firestoreSuite.slowStart.apiTtft.pairedP50 - memory.slowStart.apiTtft.pairedP50)}, callable ${ms(firestoreSuite.slowStart.callableTtft.pairedP50 - memory.slowStart.callableTtft.pairedP50)}`,
  ...(firestoreSuite.speculation
    ? [
        `Speculative starts in that Firestore series: ${firestoreSuite.speculation.started} started, ${firestoreSuite.speculation.released} released, ${firestoreSuite.speculation.aborted} aborted (${firestoreSuite.speculation.abortedMicros} µ$ recorded for them)`,
      ]
    : []),
  "",
  "Sustained throughput, non-streamed, 32 closed-loop clients (same machine as everything else)",
  "| target | requests/s | errors | CPU-seconds per 1,000 requests (serving process) |",
  "| --- | --- | --- | --- |",
  ...(memory.throughput ?? []).map((t) => `| ${t.name} | ${t.requestsPerSecond.toFixed(0)} | ${t.errors} | ${t.cpuSecondsPer1000 === undefined ? "-" : t.cpuSecondsPer1000.toFixed(2)} |`),
  "",
  `Inter-delta gap p99 (provider every 5 ms): direct ${ms(memory.streaming.gaps.direct.p99)}, /v1 ${ms(memory.streaming.gaps.api.p99)} (+${ms(memory.streaming.gaps.api.p99 - memory.streaming.gaps.direct.p99)}), callable ${ms(memory.streaming.gaps.callable.p99)} (+${ms(memory.streaming.gaps.callable.p99 - memory.streaming.gaps.direct.p99)})`,
  `Firestore per execution: ${firestoreSuite.latency.firestorePerExecution.getAlls.toFixed(2)} batched reads (${firestoreSuite.latency.firestorePerExecution.docsRead.toFixed(2)} documents), ${firestoreSuite.latency.firestorePerExecution.commits.toFixed(2)} commits (${firestoreSuite.latency.firestorePerExecution.docsWritten.toFixed(2)} document writes)`,
  "",
  ...conversationLines(firestoreSuite.conversation!),
  "",
  "Concurrent streams through one instance (64 deltas every 20 ms each, in-memory stores)",
  "| streams | errors | lost or reordered | direct gap p99 | our gap p99 | added p99 | peak RSS |",
  "| --- | --- | --- | --- | --- | --- | --- |",
  ...(results.concurrency as Awaited<ReturnType<typeof concurrencySuite>>[]).map(
    (c) =>
      `| ${c.n} | ${c.ours.errors} | ${c.ours.badSequences} streams, ${c.ours.lostDeltas} deltas | ${ms(c.direct.gaps.p99)} | ${ms(c.ours.gaps.p99)} | ${ms(c.addedGapP99)} | ${c.peakRssMiB.toFixed(0)} MiB |`,
  ),
  "",
  `Cold start (median of ${COLD_RUNS}): import firebase-functions ${ms(cold.firebaseFunctionsImportMs, 0)}; import our entry ${ms(cold.entryImportMs, 0)} (×${cold.importRatio.toFixed(2)}); first /health answered at ${ms(cold.firstHealthMs, 0)}; first executePrompt at ${ms(cold.firstExecuteMs, 0)}${cold.allOk ? "" : " (SOME CALLS FAILED)"}`,
  `Total ${(results.durationS as number).toFixed(0)} s.`,
];
console.log(lines.join("\n"));
mkdirSync(`${ROOT}/bench`, { recursive: true });
writeFileSync(`${ROOT}/bench/results.json`, JSON.stringify(results, null, 2));
process.exit(0);
