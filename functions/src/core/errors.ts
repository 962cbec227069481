/**
 * One taxonomy for every failure (API.md, "Errors"). Each category has exactly one wire
 * code (Firebase's FunctionsErrorCode), HTTP status and default retryability; adapters
 * turn an ExecutionError into an HttpsError or an OpenAI-style body from this table only.
 */
export type ErrorCategory =
  | "validation"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "context_length_exceeded"
  | "content_filtered"
  | "rate_limited"
  | "budget_exceeded"
  | "provider_rate_limited"
  | "provider_unavailable"
  | "network"
  | "timeout"
  | "invalid_output"
  | "provider_auth"
  | "provider_quota_exhausted"
  | "idempotency_conflict"
  | "in_progress"
  | "cancelled"
  | "internal";

/** The subset of Firebase's FunctionsErrorCode we answer with. */
export type ErrorCode =
  | "invalid-argument"
  | "unauthenticated"
  | "permission-denied"
  | "not-found"
  | "resource-exhausted"
  | "unavailable"
  | "deadline-exceeded"
  | "failed-precondition"
  | "already-exists"
  | "aborted"
  | "cancelled"
  | "internal";

export interface CategoryInfo {
  code: ErrorCode;
  httpStatus: number;
  retryable: boolean;
  /** What the client is told when nothing more specific is known. */
  message: string;
}

export const CATEGORIES: Record<ErrorCategory, CategoryInfo> = {
  validation: { code: "invalid-argument", httpStatus: 400, retryable: false, message: "The request is invalid." },
  unauthenticated: { code: "unauthenticated", httpStatus: 401, retryable: false, message: "Sign in first: no valid ID token was sent." },
  permission_denied: { code: "permission-denied", httpStatus: 403, retryable: false, message: "This caller is not allowed to do that." },
  not_found: { code: "not-found", httpStatus: 404, retryable: false, message: "Not found." },
  context_length_exceeded: {
    code: "invalid-argument",
    httpStatus: 400,
    retryable: false,
    message: "The prompt is too long for the model's context window.",
  },
  content_filtered: { code: "invalid-argument", httpStatus: 400, retryable: false, message: "The provider refused this content." },
  rate_limited: { code: "resource-exhausted", httpStatus: 429, retryable: true, message: "Too many requests; retry later." },
  budget_exceeded: { code: "resource-exhausted", httpStatus: 429, retryable: false, message: "The budget for this period is spent." },
  provider_rate_limited: {
    code: "unavailable",
    httpStatus: 503,
    retryable: true,
    message: "The model provider is rate limiting us; retry later.",
  },
  provider_unavailable: { code: "unavailable", httpStatus: 503, retryable: true, message: "The model provider is unavailable; retry later." },
  network: { code: "unavailable", httpStatus: 503, retryable: true, message: "Could not reach the model provider; retry later." },
  timeout: { code: "deadline-exceeded", httpStatus: 504, retryable: true, message: "The model did not answer in time." },
  invalid_output: {
    code: "unavailable",
    httpStatus: 502,
    retryable: true,
    message: "The model's answer was not valid JSON for the requested schema.",
  },
  provider_auth: {
    code: "failed-precondition",
    httpStatus: 400,
    retryable: false,
    message: "The server's key for this model provider is missing, invalid or revoked.",
  },
  provider_quota_exhausted: {
    code: "failed-precondition",
    httpStatus: 400,
    retryable: false,
    message: "The model provider account is out of credit.",
  },
  idempotency_conflict: {
    code: "already-exists",
    httpStatus: 409,
    retryable: false,
    message: "This requestId was already used for a different request.",
  },
  in_progress: { code: "aborted", httpStatus: 409, retryable: true, message: "A request with this requestId is still running." },
  cancelled: { code: "cancelled", httpStatus: 499, retryable: false, message: "The request was cancelled." },
  internal: { code: "internal", httpStatus: 500, retryable: false, message: "Internal error." },
};

/** What clients receive as `HttpsError.details` (API.md). */
export interface ErrorDetails {
  category: ErrorCategory;
  retryable: boolean;
  retryAfterMs?: number;
  executionId?: string;
  model?: string;
  provider?: string;
}

export interface ExecutionErrorOptions {
  retryable?: boolean;
  retryAfterMs?: number;
  /** Status the provider answered with, kept for the execution record's attempts. */
  upstreamStatus?: number;
  cause?: unknown;
}

export class ExecutionError extends Error {
  override name = "ExecutionError";
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly upstreamStatus?: number;
  executionId?: string;
  model?: string;
  provider?: string;

  constructor(category: ErrorCategory, message?: string, options: ExecutionErrorOptions = {}) {
    super(message ?? CATEGORIES[category].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.category = category;
    this.retryable = options.retryable ?? CATEGORIES[category].retryable;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = Math.max(0, Math.round(options.retryAfterMs));
    if (options.upstreamStatus !== undefined) this.upstreamStatus = options.upstreamStatus;
  }

  get code(): ErrorCode {
    return CATEGORIES[this.category].code;
  }

  toDetails(): ErrorDetails {
    return {
      category: this.category,
      retryable: this.retryable,
      ...(this.retryAfterMs !== undefined ? { retryAfterMs: this.retryAfterMs } : {}),
      ...(this.executionId ? { executionId: this.executionId } : {}),
      ...(this.model ? { model: this.model } : {}),
      ...(this.provider ? { provider: this.provider } : {}),
    };
  }
}

interface HeadersLike {
  get(name: string): string | null;
}

/** Duck-typed view of the openai SDK's APIError (instanceof breaks across package copies). */
interface ApiErrorLike {
  status?: number;
  headers?: HeadersLike;
  code?: string | null;
  type?: string | null;
  error?: { code?: unknown; type?: unknown; message?: unknown } | null;
  message?: string;
}

/** `retry-after-ms` first (milliseconds), then `retry-after` (seconds or an HTTP date), as openai-node reads them. */
export function parseRetryAfter(headers: HeadersLike | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = Number.parseFloat(headers.get("retry-after-ms") ?? "");
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers.get("retry-after");
  if (raw === null || raw.trim() === "") return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

/** The first Node/undici error code in the cause chain (fetch wraps them in `TypeError: fetch failed`). */
function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && typeof e === "object" && depth < 6; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (NETWORK_CODES.has(code) || code === "ETIMEDOUT")) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function lower(value: unknown): string {
  return typeof value === "string" ? value.toLowerCase() : "";
}

function classifyStatus(error: ApiErrorLike, status: number, now: number): ExecutionError {
  const code = lower(error.code ?? error.error?.code);
  const type = lower(error.type ?? error.error?.type);
  const text = lower(error.error?.message ?? error.message);
  const retryAfterMs = parseRetryAfter(error.headers, now);
  const opts = { upstreamStatus: status, cause: error, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };

  if (code === "insufficient_quota" || type === "insufficient_quota" || status === 402) {
    return new ExecutionError("provider_quota_exhausted", undefined, { upstreamStatus: status, cause: error });
  }
  if (status === 429) return new ExecutionError("provider_rate_limited", undefined, opts);
  if (status === 401 || status === 403) {
    return new ExecutionError("provider_auth", `${CATEGORIES.provider_auth.message} (provider answered HTTP ${status})`, opts);
  }
  if (code === "context_length_exceeded" || /context length|context window|maximum context|too many tokens|prompt is too long/.test(text)) {
    return new ExecutionError("context_length_exceeded", undefined, opts);
  }
  if (code === "content_filter" || code === "content_policy_violation" || /content (management )?policy|safety system|was filtered/.test(text)) {
    return new ExecutionError("content_filtered", undefined, opts);
  }
  if (status === 404) return new ExecutionError("not_found", "The provider does not offer this model.", opts);
  if (status === 408) return new ExecutionError("timeout", "The model provider timed out.", opts);
  if (status === 409 || status >= 500) {
    return new ExecutionError("provider_unavailable", `${CATEGORIES.provider_unavailable.message} (HTTP ${status})`, opts);
  }
  if (status === 400 || status === 422) {
    return new ExecutionError("validation", "The model provider rejected the request as invalid.", opts);
  }
  return new ExecutionError("internal", `The model provider answered HTTP ${status}.`, { upstreamStatus: status, cause: error });
}

/**
 * Turns anything thrown while executing into an ExecutionError. The messages are ours,
 * never the provider's body (which can echo key fragments or prompt text); the original
 * stays in `cause` for logs that redact it.
 */
export function classifyError(error: unknown, now: number = Date.now()): ExecutionError {
  if (error instanceof ExecutionError) return error;
  const e = (error ?? {}) as ApiErrorLike & { name?: string };
  // The openai SDK's error classes keep `name === "Error"`: their class name is the reliable tag.
  const className = (error as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? "";
  const name = className.startsWith("API") ? className : typeof e.name === "string" ? e.name : "";

  if (name === "APIConnectionTimeoutError" || name === "TimeoutError") {
    return new ExecutionError("timeout", "The model provider did not answer in time.", { cause: error });
  }
  if (name === "AbortError" || name === "APIUserAbortError") {
    return new ExecutionError("cancelled", undefined, { cause: error });
  }
  if (typeof e.status === "number") return classifyStatus(e, e.status, now);
  if (name === "APIError" && e.error) {
    // An error event inside an otherwise successful stream.
    return new ExecutionError("provider_unavailable", "The model provider reported an error mid-stream.", { cause: error });
  }
  if (error instanceof SyntaxError) {
    return new ExecutionError("provider_unavailable", "The model provider sent a malformed response.", { cause: error });
  }
  const code = networkCode(error);
  if (code === "ETIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return new ExecutionError("timeout", "The connection to the model provider timed out.", { cause: error });
  }
  if (code) return new ExecutionError("network", `Could not reach the model provider (${code}).`, { cause: error });
  if (name === "APIConnectionError" || (error instanceof TypeError && /fetch failed|terminated|network/i.test(error.message))) {
    return new ExecutionError("network", "The connection to the model provider failed.", { cause: error });
  }
  return new ExecutionError("internal", undefined, { cause: error });
}

/** Provider failures after which another model may succeed. Client-side problems would fail the same everywhere. */
export function canFallBack(error: ExecutionError): boolean {
  return !["validation", "content_filtered", "cancelled", "internal", "unauthenticated", "permission_denied", "budget_exceeded", "rate_limited"].includes(
    error.category,
  );
}
