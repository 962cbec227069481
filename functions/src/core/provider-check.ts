/**
 * Asking a provider, at no cost, whether its key works: list its models (and, for
 * OpenRouter, the key's remaining credit). Shared by `npm run verify-keys` and the
 * readiness check of `/health` (adapters/health.ts). Nothing here spends tokens.
 */
import { setTimeout as sleep } from "node:timers/promises";

export type KeyStatus =
  | "ok"
  | "missing"
  | "malformed"
  | "invalid"
  | "forbidden"
  | "no_credit"
  | "rate_limited"
  | "model_unavailable"
  | "unreachable"
  | "unexpected";

/** A provider as the checks see it: where it is, which secret holds its key, what its models are called upstream. */
export interface ProviderToCheck {
  id: string;
  baseUrl?: string;
  /** Where baseUrl came from, when it is not fixed in the catalog. */
  baseUrlSource?: string;
  apiKeySecret?: string;
  keyCheck?: { pattern: string; creditPath?: string };
  models: string[];
}

export interface LiveOutcome {
  status: KeyStatus;
  detail: string;
  httpStatus?: number;
  retryAfterSeconds?: number;
  missingModels?: string[];
  creditUsd?: number | null;
}

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

class Unreachable extends Error {}

/**
 * One GET with a short timeout and one retry on network errors. Redirects are refused, so
 * the key never follows a redirect to another host; only our own detail strings leave here,
 * never the provider's body (which can echo key fragments).
 */
async function get(url: string, key: string | undefined, timeoutMs: number): Promise<Answer> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(url, {
        headers: { accept: "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        redirect: "error",
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: response.status, body, headers: response.headers };
    } catch (error) {
      if (attempt >= 2) {
        const name = (error as Error).name;
        throw new Unreachable(name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : "connection failed");
      }
      await sleep(200);
    }
  }
}

function errorText(body: unknown): { code: string; message: string } {
  const first = Array.isArray(body) ? body[0] : body;
  const error = (first as { error?: { code?: unknown; type?: unknown; message?: unknown; status?: unknown } } | undefined)?.error;
  return {
    code: `${String(error?.code ?? "")} ${String(error?.type ?? "")} ${String(error?.status ?? "")}`.toLowerCase(),
    message: String(error?.message ?? "").toLowerCase(),
  };
}

function classifyFailure(answer: Answer): LiveOutcome {
  const { code, message } = errorText(answer.body);
  const httpStatus = answer.status;
  if (httpStatus === 401) return { status: "invalid", detail: "the provider rejected the key (401)", httpStatus };
  if (httpStatus === 400 && /api key|api_key_invalid/.test(`${message} ${code}`)) {
    return { status: "invalid", detail: "the provider rejected the key (400, API key not valid)", httpStatus };
  }
  if (httpStatus === 403) return { status: "forbidden", detail: "the key may not use this API (403)", httpStatus };
  if (httpStatus === 402 || code.includes("insufficient_quota")) {
    return { status: "no_credit", detail: `the account has no credit left (${httpStatus})`, httpStatus };
  }
  if (httpStatus === 429) {
    const retry = Number(answer.headers.get("retry-after"));
    return {
      status: "rate_limited",
      detail: `rate limited (429)${Number.isFinite(retry) && retry > 0 ? `, retry after ${retry} s` : ""}`,
      httpStatus,
      ...(Number.isFinite(retry) && retry > 0 ? { retryAfterSeconds: retry } : {}),
    };
  }
  return { status: "unexpected", detail: `unexpected HTTP ${httpStatus}`, httpStatus };
}

/**
 * Asks the provider, at no cost: list models (and, for OpenRouter, the key's remaining
 * credit). Every catalog model must be offered.
 */
export async function liveCheck(provider: ProviderToCheck, key: string | undefined, timeoutMs: number): Promise<LiveOutcome> {
  const base = provider.baseUrl!.replace(/\/+$/, "");
  try {
    if (provider.keyCheck?.creditPath) {
      const credit = await get(`${base}${provider.keyCheck.creditPath}`, key, timeoutMs);
      if (credit.status !== 200) return classifyFailure(credit);
      const remaining = (credit.body as { data?: { limit_remaining?: number | null } } | undefined)?.data?.limit_remaining;
      if (typeof remaining === "number" && remaining <= 0) {
        return { status: "no_credit", detail: "the key's credit is used up", creditUsd: remaining };
      }
      const models = await modelsCheck(provider, base, key, timeoutMs);
      return { ...models, creditUsd: typeof remaining === "number" ? remaining : null };
    }
    return await modelsCheck(provider, base, key, timeoutMs);
  } catch (error) {
    if (error instanceof Unreachable) return { status: "unreachable", detail: error.message };
    throw error;
  }
}

async function modelsCheck(provider: ProviderToCheck, base: string, key: string | undefined, timeoutMs: number): Promise<LiveOutcome> {
  const answer = await get(`${base}/models`, key, timeoutMs);
  if (answer.status !== 200) return classifyFailure(answer);
  const data = (answer.body as { data?: { id?: unknown }[] } | undefined)?.data;
  if (!Array.isArray(data)) return { status: "unexpected", detail: "the model list is not in OpenAI's format", httpStatus: 200 };
  // Gemini's compatible endpoint names models "models/<id>".
  const offered = new Set(data.map((m) => String(m.id ?? "").replace(/^models\//, "")));
  const missingModels = provider.models.filter((m) => !offered.has(m));
  if (missingModels.length > 0) {
    return { status: "model_unavailable", detail: `not offered to this key: ${missingModels.join(", ")}`, missingModels };
  }
  return { status: "ok", detail: `${provider.models.length} catalog model(s) available` };
}
