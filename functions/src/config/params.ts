import { readFileSync } from "node:fs";
import { defineBoolean, defineInt, defineSecret, defineString } from "firebase-functions/params";
import { ledgerShardsFor } from "../core/global-budget.js";
import { PROVIDER_SECRET_NAMES } from "./catalog.js";

/**
 * Deploy-time configuration. Values are read with `.value()` inside handlers only, never at
 * import. Set them in `functions/.env` (all projects), `functions/.env.<project>`, or at the
 * deploy prompt.
 *
 * The firebase CLI resolves defaults into the environment when it deploys or emulates, but
 * `param.value()` alone reads only the environment (an unset int reads 0). `Tunable.value()`
 * falls back to the declared default, so that the same handlers behave identically when
 * mounted by tests or benchmarks outside the Functions runtime.
 */
export interface Tunable<T> {
  readonly name: string;
  value(): T;
}

function tunable<T extends string | number | boolean>(
  name: string,
  fallback: T,
  param: { value(): T },
): Tunable<T> {
  return { name, value: () => (process.env[name] === undefined ? fallback : param.value()) };
}

const int = (name: string, fallback: number, description?: string) =>
  tunable(name, fallback, defineInt(name, { default: fallback, ...(description ? { description } : {}) }));
const string = (name: string, fallback: string, description?: string) =>
  tunable(name, fallback, defineString(name, { default: fallback, ...(description ? { description } : {}) }));
const boolean = (name: string, fallback: boolean, description?: string) =>
  tunable(name, fallback, defineBoolean(name, { default: fallback, ...(description ? { description } : {}) }));

const providerSecrets = PROVIDER_SECRET_NAMES.map((name) => defineSecret(name));

/**
 * The provider secrets bound to the functions that call providers: all of them when deployed.
 * In the Functions emulator, only those with a value in functions/.secret.local: the emulator
 * asks Secret Manager for every other bound secret at each worker start, which offline costs
 * ~2 s and three error lines, and a provider without a key is simply not configured anyway.
 * (Read when firebase-tools loads the functions to list them, in the functions directory.)
 */
export function providerSecretsToBind(): typeof providerSecrets {
  if (process.env.FUNCTIONS_EMULATOR !== "true") return providerSecrets;
  let local = "";
  try {
    local = readFileSync(".secret.local", "utf8");
  } catch {
    // No local secrets: no provider but the keyless ones.
  }
  const withValue = new Set([...local.matchAll(/^\s*([A-Z0-9_]+)\s*=\s*["']?([^"'\s#][^\n]*)$/gm)].map((m) => m[1]));
  return providerSecrets.filter((secret) => withValue.has(secret.name));
}

/**
 * Where the functions are deployed (API.md: us-central1 by default, configurable). A raw
 * param: `setGlobalOptions` takes it as an expression, resolved at deploy. Clients must use
 * the same region (`getFunctions(app, region)`, the /v1 base URL).
 */
export const region = defineString("REGION", {
  default: "us-central1",
  description: "Cloud Functions region of every function (clients use the same one).",
});

export const defaultModel = string(
  "DEFAULT_MODEL",
  "",
  "Model used when a request names none; empty = first model of the first configured provider.",
);
export const defaultFallbackModels = string("DEFAULT_FALLBACK_MODELS", "", "Comma-separated models tried after a request's own fallbackModels.");
export const maxRequestTimeoutMs = int("MAX_REQUEST_TIMEOUT_MS", 240_000, "Server maximum for one execution, all retries and fallbacks included.");
export const retryMaxRetries = int("RETRY_MAX_RETRIES", 3, "Retries of one model after its first attempt.");
export const retryBaseDelayMs = int("RETRY_BASE_DELAY_MS", 500, "Base of the exponential backoff (full jitter).");
export const retryMaxDelayMs = int("RETRY_MAX_DELAY_MS", 8_000, "Cap of one backoff wait (Retry-After from the provider wins).");
export const enforceAppCheck = boolean("ENFORCE_APP_CHECK", false, "Reject calls without a valid App Check token.");
/**
 * Replay protection: App Check tokens are consumed (limited-use tokens, one call each) on
 * executePrompt and every /v1 route (chat and cancel).
 */
const appCheckReplayProtectionParam = defineBoolean("APP_CHECK_REPLAY_PROTECTION", {
  default: false,
  description: "Consume App Check tokens (limited-use tokens) on executePrompt and /v1: a replayed token is refused.",
});
export const appCheckReplayProtection = tunable("APP_CHECK_REPLAY_PROTECTION", false, appCheckReplayProtectionParam);
/**
 * The same, for the callable's options, which are read when the runtime loads the module: a
 * plain environment read, since a param's `.value()` there would also run (with a warning)
 * when firebase-tools loads the functions to list them.
 */
export const appCheckReplayProtectionAtLoad = (): boolean => process.env.APP_CHECK_REPLAY_PROTECTION === "true";
export const readinessPublic = boolean(
  "READINESS_PUBLIC",
  false,
  "Let anyone call GET /health/ready (else admins only); provider answers are cached for a minute either way.",
);
export const logPrompts = boolean("LOG_PROMPTS", false, "Include prompt and output text in logs. Leave off in production.");
export const speculativeStart = boolean(
  "SPECULATIVE_START",
  true,
  "Call the provider while admission's Firestore round trips run, for users this instance knows to have room; output waits for admission (docs/benchmarks.md).",
);
export const conversationTtlDays = int(
  "CONVERSATION_TTL_DAYS",
  90,
  "Days after its last turn before a conversation is deleted by TTL (each message: days after it was written).",
);
export const historyTtlDays = int("HISTORY_TTL_DAYS", 90, "Days before an execution record's expireAt (Firestore TTL deletes it after that).");

const mediaUrlHostsParam = string(
  "MEDIA_URL_HOSTS",
  "firebasestorage.googleapis.com",
  "Hosts the server may fetch media URLs from for providers that need bytes (comma-separated; *.example.com for subdomains).",
);

/** Allowed hosts of media URLs the server fetches itself (docs/api.md, "Content parts"). */
export const mediaUrlHosts = {
  value: (): string[] =>
    mediaUrlHostsParam
      .value()
      .split(",")
      .map((h) => h.trim())
      .filter((h) => h !== ""),
};

/** "" or "none" means no limit. */
function dollarsOrNone(raw: string, name: string): number | null {
  const text = raw.trim().toLowerCase();
  if (text === "" || text === "none") return null;
  const dollars = Number(text);
  if (!Number.isFinite(dollars) || dollars < 0) throw new Error(`${name} must be a number of US dollars, "" or "none"; got "${raw}"`);
  return dollars;
}

export const rateLimitPerMinute = int("RATE_LIMIT_PER_MINUTE", 30, "Executions one user may start per minute.");
export const maxConcurrentExecutions = int("MAX_CONCURRENT_EXECUTIONS", 4, "Executions one user may have running at once.");
const defaultUserBudget = string(
  "DEFAULT_USER_MONTHLY_BUDGET_USD",
  "5",
  'Monthly budget of a user without an override (setUserBudget); "none" = no limit.',
);
const globalBudget = string("GLOBAL_MONTHLY_BUDGET_USD", "none", 'Monthly budget of all users together; "none" = no limit.');
export const reservationGraceMs = int(
  "RESERVATION_GRACE_MS",
  90_000,
  "Added to an execution's time limit before its budget reservation is presumed abandoned and reclaimed.",
);

/**
 * timeoutSeconds of the functions that call providers: room past MAX_REQUEST_TIMEOUT_MS
 * (240 s) for settlement, which is retried until shortly before this (a Firestore outage
 * of a minute after the answer loses nothing).
 */
export const PROVIDER_FUNCTION_TIMEOUT_SECONDS = 300;

/**
 * Executions one instance of executePrompt or api runs at once. I/O bound: measured (docs/
 * benchmarks.md) 256 concurrent streams in 171–181 MiB and 512 in 197–208 MiB with nothing lost, on
 * 2 shared cores; 160 leaves half of the 512 MiB and of one vCPU to spare.
 */
export const PROVIDER_CONCURRENCY = 160;

/**
 * Instances of each provider-calling function at most (a raw param: the platform reads it at
 * deploy). Capacity = instances × PROVIDER_CONCURRENCY concurrent executions; the default,
 * 100 × 160 = 16,000, holds 1,000 executions a second of up to 16 s each (docs/scaling.md).
 */
export const maxInstances = defineInt("MAX_INSTANCES", {
  default: 100,
  description: "Instances of executePrompt and api at most; × 160 concurrent executions each.",
});

const peakExecutionsPerSecond = int(
  "PEAK_EXECUTIONS_PER_SECOND",
  10,
  "The deployment's peak rate: sizes the global ledger so that no shard is written more than once a second (docs/scaling.md).",
);

/**
 * Shards of the global ledger, from the peak rate (ledgerShardsFor). Changing it is safe at any
 * time: the budget and the totals are sums over whatever shards exist.
 */
export const globalLedgerShards = { value: (): number => ledgerShardsFor(peakExecutionsPerSecond.value()) };

export const defaultUserBudgetUsd = { value: () => dollarsOrNone(defaultUserBudget.value(), defaultUserBudget.name) };
export const globalBudgetUsd = { value: () => dollarsOrNone(globalBudget.value(), globalBudget.name) };

const corsOriginsParam = string(
  "CORS_ORIGINS",
  "",
  'Origins allowed to call the api function from browsers, comma-separated; "*" = any. Empty = none (any in the emulator).',
);

/** Allowed browser origins of the `api` function: a list, or "*" for any. */
export const corsOrigins = {
  value: (): string[] | "*" => {
    const raw = corsOriginsParam.value().trim();
    if (raw === "*" || (raw === "" && process.env.FUNCTIONS_EMULATOR === "true")) return "*";
    return raw
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== "");
  },
};
