import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { buildReply, InvalidRequest, usageOf, type ChatRequest } from "./reply.js";
import { parseScenario, ScenarioError, splitModelScenario, type FailureKind, type Scenario } from "./scenario.js";

/**
 * An OpenAI-compatible chat completions server with deterministic output and
 * injectable faults. It is the zero-key provider of `npm start` and the fault
 * source of the tests, so it does as little work per request as it can.
 */

export const LOCAL_MODELS = ["local-mini", "local-pro", "local-text"] as const;
/** Bodies of the last chat requests, for tests that check what reached the provider. */
const KEPT_REQUESTS = 100;
const CREATED = 1_767_225_600; // fixed so that responses are byte-for-byte reproducible

export interface LocalProviderStats {
  /** Chat completion requests received, in all. */
  requests: number;
  /** Chat completion requests per scenario key (the scenario text unless `key=` is given). */
  byKey: Record<string, number>;
  /** Requests whose client went away before the response ended. */
  aborted: number;
  abortedByKey: Record<string, number>;
}

export interface LocalProvider {
  /** Base URL ending in `/v1`, as the openai SDK's `baseURL` wants it. */
  url: string;
  port: number;
  stats(): LocalProviderStats;
  /** Bodies of the last chat requests (with this scenario key), data URLs shortened; oldest first. */
  requests(key?: string): unknown[];
  reset(): void;
  close(): Promise<void>;
}

interface FailureResponse {
  status: number;
  type: string;
  code: string | null;
  message: string;
  param?: string;
}

type Fault = "reset" | "hang" | "cut" | "malformed" | "cut_tool" | "invalid_json";
const FAULTS: readonly FailureKind[] = ["reset", "hang", "cut", "malformed", "cut_tool", "invalid_json"];

const FAILURES: Record<Exclude<FailureKind, Fault>, FailureResponse> = {
  rate_limit: {
    status: 429,
    type: "requests",
    code: "rate_limit_exceeded",
    message: "Rate limit reached for requests. Please try again later.",
  },
  quota: {
    status: 429,
    type: "insufficient_quota",
    code: "insufficient_quota",
    message: "You exceeded your current quota, please check your plan and billing details.",
  },
  auth: {
    status: 401,
    type: "invalid_request_error",
    code: "invalid_api_key",
    message: "Incorrect API key provided. You can find your API key in your account settings.",
  },
  forbidden: {
    status: 403,
    type: "invalid_request_error",
    code: "unsupported_country_region_territory",
    message: "Country, region, or territory not supported.",
  },
  not_found: {
    status: 404,
    type: "invalid_request_error",
    code: "model_not_found",
    message: "The model does not exist or you do not have access to it.",
  },
  context_length: {
    status: 400,
    type: "invalid_request_error",
    code: "context_length_exceeded",
    param: "messages",
    message: "This model's maximum context length is 32768 tokens. Please reduce the length of the messages.",
  },
  content_filter: {
    status: 400,
    type: "invalid_request_error",
    code: "content_filter",
    param: "prompt",
    message: "The response was filtered due to the prompt triggering the content management policy.",
  },
  bad_request: {
    status: 400,
    type: "invalid_request_error",
    code: null,
    message: "Invalid request.",
  },
  server: { status: 500, type: "server_error", code: null, message: "The server had an error while processing your request." },
  bad_gateway: { status: 502, type: "server_error", code: null, message: "Bad gateway." },
  unavailable: { status: 503, type: "server_error", code: "overloaded", message: "The engine is currently overloaded." },
};

/** A request body as kept for `/_requests`: data URLs cut to 32 characters, so that memory stays small. */
function shortened(value: unknown): unknown {
  if (typeof value === "string") return value.startsWith("data:") && value.length > 32 ? `${value.slice(0, 32)}…` : value;
  if (Array.isArray(value)) return value.map(shortened);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shortened(v)]));
  return value;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendFailure(res: ServerResponse, kind: keyof typeof FAILURES, scenario: Scenario): void {
  const failure = FAILURES[kind];
  const status = scenario.status ?? failure.status;
  const headers: Record<string, string> = {};
  if (status === 429 && kind !== "quota") {
    headers["retry-after"] = String(scenario.retryAfterSeconds ?? 1);
    headers["retry-after-ms"] = String(scenario.retryAfterMs ?? (scenario.retryAfterSeconds ?? 0.1) * 1000);
  } else {
    if (scenario.retryAfterSeconds !== undefined) headers["retry-after"] = String(scenario.retryAfterSeconds);
    if (scenario.retryAfterMs !== undefined) headers["retry-after-ms"] = String(scenario.retryAfterMs);
  }
  if (kind === "bad_gateway") {
    // Real gateways answer 502 with an HTML page, not OpenAI's JSON.
    res.writeHead(status, { "content-type": "text/html", ...headers });
    res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
    return;
  }
  sendJson(
    res,
    status,
    { error: { message: failure.message, type: failure.type, param: failure.param ?? null, code: failure.code } },
    headers,
  );
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Scenario text from the path prefix and header; the model suffix is added once the body is read. */
function routeOf(req: IncomingMessage): { path: string; scenario: string } {
  const url = req.url ?? "/";
  const pathOnly = url.split("?")[0]!;
  const prefix = /^\/_scenario\/([^/]*)(\/.*)$/.exec(pathOnly);
  const header = req.headers["x-mock-scenario"];
  const parts = [prefix ? decodeURIComponent(prefix[1]!) : "", typeof header === "string" ? header : ""];
  return { path: prefix ? prefix[2]! : pathOnly, scenario: parts.filter((p) => p !== "").join(",") };
}

export async function startLocalProvider(options: { port?: number; host?: string } = {}): Promise<LocalProvider> {
  const host = options.host ?? "127.0.0.1";
  const emptyStats = (): LocalProviderStats => ({ requests: 0, byKey: {}, aborted: 0, abortedByKey: {} });
  let stats = emptyStats();
  let kept: { key: string; body: unknown }[] = [];

  async function chat(req: IncomingMessage, res: ServerResponse, routeScenario: string): Promise<void> {
    let body: ChatRequest;
    try {
      body = JSON.parse(await readBody(req)) as ChatRequest;
    } catch {
      sendJson(res, 400, {
        error: { message: "We could not parse the JSON body of your request.", type: "invalid_request_error", param: null, code: null },
      });
      return;
    }
    const { model, scenario: modelScenario } = splitModelScenario(typeof body.model === "string" ? body.model : "");
    const text = [routeScenario, modelScenario].filter((p) => p !== "").join(",");
    const scenario = parseScenario(text);
    stats.requests += 1;
    kept.push({ key: scenario.key, body: shortened(body) });
    if (kept.length > KEPT_REQUESTS) kept = kept.slice(-KEPT_REQUESTS);
    const seen = (stats.byKey[scenario.key] ?? 0) + 1;
    stats.byKey[scenario.key] = seen;

    const closed = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) {
        stats.aborted += 1;
        stats.abortedByKey[scenario.key] = (stats.abortedByKey[scenario.key] ?? 0) + 1;
        closed.abort();
      }
    });
    const wait = (ms: number) => (ms > 0 ? sleep(ms, undefined, { signal: closed.signal }) : Promise.resolve());

    await wait(scenario.latencyMs);
    const failing = scenario.fail !== undefined && (scenario.times === undefined || seen <= scenario.times);
    const fail = failing ? scenario.fail : undefined;

    if (fail === "hang") return; // the socket stays open until the client or the server closes it
    if (fail === "reset") {
      req.socket.destroy();
      return;
    }
    if (fail && !FAULTS.includes(fail)) {
      sendFailure(res, fail as Exclude<FailureKind, Fault>, scenario);
      return;
    }

    let reply: ReturnType<typeof buildReply>;
    try {
      reply = buildReply(body, { ...scenario, ...(fail === "invalid_json" ? {} : { fail: undefined }) });
    } catch (error) {
      if (!(error instanceof InvalidRequest)) throw error;
      sendJson(res, 400, { error: { message: error.message, type: "invalid_request_error", param: error.param, code: null } });
      return;
    }
    const id = `chatcmpl-local-${stats.requests}`;
    const usage = scenario.usage ? usageOf(reply, scenario) : undefined;
    if (body.stream !== true) {
      const completion = {
        id,
        object: "chat.completion",
        created: CREATED,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: reply.toolCalls.length > 0 ? null : reply.deltas.join(""),
              refusal: null,
              ...(reply.toolCalls.length > 0
                ? { tool_calls: reply.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.argumentPieces.join("") } })) }
                : {}),
            },
            finish_reason: reply.finishReason,
            logprobs: null,
          },
        ],
        ...(usage ? { usage } : {}),
      };
      if (fail === "cut" || fail === "malformed" || fail === "cut_tool") {
        const text = JSON.stringify(completion);
        res.writeHead(200, { "content-type": "application/json" });
        res.write(text.slice(0, Math.floor(text.length / 2)));
        if (fail !== "malformed") res.socket?.end();
        else res.end();
        return;
      }
      sendJson(res, 200, completion);
      return;
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    res.flushHeaders();
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: CREATED, model, choices, ...extra })}\n\n`;
    const calls = reply.toolCalls;
    res.write(chunk([{ index: 0, delta: { role: "assistant", content: calls.length > 0 ? null : "" }, finish_reason: null }]));
    // Tool calls as OpenAI streams them: per call, its id and name first, then its arguments in pieces.
    for (const [index, call] of calls.entries()) {
      const head = { index, id: call.id, type: "function", function: { name: call.name, arguments: "" } };
      res.write(chunk([{ index: 0, delta: { tool_calls: [head] }, finish_reason: null }]));
      for (const [p, piece] of call.argumentPieces.entries()) {
        if (fail === "cut_tool" && index === 0 && p === 1) {
          res.socket?.end(); // mid-arguments: the pieces already written reach the client first
          return;
        }
        await wait(scenario.intervalMs);
        if (closed.signal.aborted) return;
        res.write(chunk([{ index: 0, delta: { tool_calls: [{ index, function: { arguments: piece } }] }, finish_reason: null }]));
      }
    }
    const deltas = reply.deltas;
    for (let i = 0; i < deltas.length; i++) {
      if ((fail === "cut" || fail === "malformed") && i === scenario.after) {
        if (fail === "malformed") {
          res.write('data: {"id":"broken", "choices": [\n\n');
          res.end();
        } else {
          // end() rather than destroy(): the deltas already written must reach the client first.
          res.socket?.end();
        }
        return;
      }
      if (i > 0) await wait(scenario.intervalMs);
      if (closed.signal.aborted) return;
      res.write(chunk([{ index: 0, delta: { content: deltas[i] }, finish_reason: null }]));
    }
    res.write(chunk([{ index: 0, delta: {}, finish_reason: reply.finishReason }]));
    const includeUsage = body.stream_options?.include_usage === true;
    if (usage && includeUsage) res.write(chunk([], { usage }));
    res.end("data: [DONE]\n\n");
  }

  function models(res: ServerResponse, scenario: Scenario): void {
    const ids = scenario.models ?? [...LOCAL_MODELS];
    sendJson(res, 200, {
      object: "list",
      data: ids.map((id) => ({ id, object: "model", created: CREATED, owned_by: "local" })),
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = routeOf(req);
    try {
      if (req.method === "POST" && route.path === "/v1/chat/completions") return await chat(req, res, route.scenario);
      const scenario = parseScenario(route.scenario);
      if (req.method === "GET" && route.path === "/v1/models") {
        await sleep(scenario.latencyMs);
        if (scenario.fail === "hang") return;
        if (scenario.fail === "reset") return void req.socket.destroy();
        if (scenario.fail && !FAULTS.includes(scenario.fail)) return sendFailure(res, scenario.fail as Exclude<FailureKind, Fault>, scenario);
        return models(res, scenario);
      }
      if (req.method === "GET" && route.path === "/v1/key") {
        // OpenRouter's key-info endpoint: what verify-keys asks for remaining credit.
        if (scenario.fail === "hang") return;
        if (scenario.fail && !FAULTS.includes(scenario.fail)) return sendFailure(res, scenario.fail as Exclude<FailureKind, Fault>, scenario);
        const limit = scenario.creditUsd === undefined ? null : Math.max(scenario.creditUsd, 0) + 1;
        return sendJson(res, 200, {
          data: { label: "local", usage: 1, limit, limit_remaining: scenario.creditUsd ?? null, is_free_tier: false },
        });
      }
      if (req.method === "GET" && route.path === "/_stats") return sendJson(res, 200, stats);
      if (req.method === "GET" && route.path === "/_requests") {
        const key = new URL(req.url ?? "/", "http://local").searchParams.get("key");
        return sendJson(res, 200, { requests: kept.filter((r) => key === null || r.key === key).map((r) => r.body) });
      }
      if (req.method === "POST" && route.path === "/_reset") {
        stats = emptyStats();
        kept = [];
        return sendJson(res, 200, stats);
      }
      if (req.method === "GET" && route.path === "/") return sendJson(res, 200, { status: "ok" });
      sendJson(res, 404, { error: { message: `No route ${req.method} ${route.path}`, type: "invalid_request_error", param: null, code: null } });
    } catch (error) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = error instanceof ScenarioError ? 400 : 500;
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof Error && error.name === "AbortError") return;
      sendJson(res, status, { error: { message, type: "invalid_request_error", param: null, code: "bad_scenario" } });
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/v1`,
    port,
    stats: () => structuredClone(stats),
    requests: (key?: string) => structuredClone(kept.filter((r) => key === undefined || r.key === key).map((r) => r.body)),
    reset: () => {
      stats = emptyStats();
      kept = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
