import type { Response } from "express";
import type { Request } from "firebase-functions/https";
import { ExecutionError } from "../core/errors.js";
import { catalog } from "../config/catalog.js";
import { providerConnection } from "../config/providers.js";
import { firestore } from "./firestore.js";
import { liveCheck } from "../core/provider-check.js";
import { checkHealth, checkReadiness } from "./health.js";
import { listModels, sendError } from "./api-responses.js";

const HEALTH_FIRESTORE_TIMEOUT_MS = 2_000;

async function health(_req: Request, res: Response): Promise<void> {
  const report = await checkHealth({
    pingFirestore: async () => {
      await (await firestore()).doc("_health/probe").get();
    },
    providers: catalog.providers,
    isConfigured: (p) => providerConnection(p) !== undefined,
    timeoutMs: HEALTH_FIRESTORE_TIMEOUT_MS,
  });
  res.status(report.status === "ok" ? 200 : 503).set("cache-control", "no-store").json(report);
}

const PROVIDER_CHECK_TIMEOUT_MS = 5_000;

/**
 * `GET /health/ready`: the deep check for operators (every configured provider reachable and
 * its key accepted), for an admin ID token, or anyone when READINESS_PUBLIC is on.
 */
async function readiness(req: Request, res: Response, options: ApiOptions): Promise<void> {
  try {
    if (!options.readinessPublic()) {
      const caller = await options.verifyBearer(req.headers.authorization);
      if (!caller.admin) throw new ExecutionError("permission_denied", "The readiness check needs an admin's ID token (custom claim admin: true).");
    }
    const report = await checkReadiness({
      pingFirestore: async () => {
        await (await firestore()).doc("_health/probe").get();
      },
      providers: catalog.providers,
      timeoutMs: HEALTH_FIRESTORE_TIMEOUT_MS,
      check: (provider) => {
        const connection = providerConnection(provider);
        if (!connection) return undefined;
        const models = provider.models.map((m) => m.upstreamId);
        const target = { id: provider.id, baseUrl: connection.baseUrl, models, ...(provider.keyCheck ? { keyCheck: provider.keyCheck } : {}) };
        return liveCheck(target, connection.apiKey || undefined, PROVIDER_CHECK_TIMEOUT_MS);
      },
    });
    res.status(report.status === "ok" ? 200 : 503).set("cache-control", "no-store").json(report);
  } catch (error) {
    sendError(res, error);
  }
}

/**
 * CORS for browsers: allowed origins from CORS_ORIGINS (any in the emulator). Returns true
 * when the request was a preflight and has been answered.
 */
export function applyCors(req: Request, res: Response, allowed: string[] | "*"): boolean {
  const origin = req.headers.origin;
  const permitted = typeof origin === "string" && (allowed === "*" || allowed.includes(origin));
  if (permitted) {
    res.set("access-control-allow-origin", origin);
    // x-should-retry: the openai SDK in a browser reads it to decide whether to retry.
    res.set("access-control-expose-headers", "x-execution-id, retry-after, retry-after-ms, x-should-retry");
  }
  res.vary("origin");
  if (req.method !== "OPTIONS") return false;
  if (permitted) {
    res.set("access-control-allow-methods", "GET, POST, OPTIONS");
    // Echo what the browser asks for: the openai SDK sends a dozen x-stainless-* headers.
    res.set("access-control-allow-headers", req.header("access-control-request-headers") ?? "authorization, content-type");
    res.set("access-control-max-age", "600");
  }
  res.status(204).end();
  return true;
}

export interface ApiOptions {
  /** `POST /v1/chat/completions` (adapters/openai-api.ts), passed in so that it can be loaded on first use. */
  chatCompletions: (req: Request, res: Response) => Promise<void>;
  /** `POST /v1/executions/{executionId}/cancel` (adapters/openai-api.ts), loaded on first use too. */
  cancelExecution: (req: Request, res: Response, executionId: string) => Promise<void>;
  corsOrigins: () => string[] | "*";
  /** For the readiness check's admin requirement. */
  verifyBearer: (authorization: string | undefined) => Promise<{ uid: string; admin: boolean }>;
  /** READINESS_PUBLIC: anyone may ask for the readiness check (cached, so it cannot become load on providers). */
  readinessPublic: () => boolean;
}

/** A path segment percent-decoded, or undefined when it is not valid percent-encoding (decodeURIComponent throws). */
function decodedSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** The `api` HTTPS function: a small router over the paths of API.md. */
export function createApiHandler(options: ApiOptions) {
  return async (req: Request, res: Response): Promise<void> => {
    if (req.path === "/health" && (req.method === "GET" || req.method === "HEAD")) return health(req, res);
    if (req.path === "/health/ready" && req.method === "GET") return readiness(req, res, options);
    if (req.path.startsWith("/v1/")) {
      if (applyCors(req, res, options.corsOrigins())) return;
      if (req.path === "/v1/chat/completions" && req.method === "POST") return options.chatCompletions(req, res);
      const cancel = /^\/v1\/executions\/([^/]+)\/cancel$/.exec(req.path);
      if (cancel && req.method === "POST") {
        const executionId = decodedSegment(cancel[1]!);
        if (executionId === undefined) return sendError(res, new ExecutionError("validation", "executionId: the path is not valid percent-encoding."));
        return options.cancelExecution(req, res, executionId);
      }
      if (req.path === "/v1/models" && req.method === "GET") {
        return listModels(res, catalog, (id) => providerConnection(catalog.provider(id)!) !== undefined);
      }
    }
    sendError(res, new ExecutionError("not_found", `No route for ${req.method} ${req.path}.`));
  };
}
