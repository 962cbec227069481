/**
 * How one request to the local provider should behave. A scenario is written as
 * `key=value` pairs separated by commas, and can reach the server three ways:
 * a model id suffix (`local-mini+fail=rate_limit,times=1`), the `x-mock-scenario`
 * header, or a path prefix (`/_scenario/fail=auth/v1/models`). See docs/local-provider.md.
 */
export type FailureKind =
  | "rate_limit"
  | "quota"
  | "auth"
  | "forbidden"
  | "not_found"
  | "context_length"
  | "content_filter"
  | "bad_request"
  | "server"
  | "bad_gateway"
  | "unavailable"
  | "reset"
  | "hang"
  | "cut"
  | "malformed"
  | "cut_tool"
  | "invalid_json";

export const FAILURE_KINDS: readonly FailureKind[] = [
  "rate_limit",
  "quota",
  "auth",
  "forbidden",
  "not_found",
  "context_length",
  "content_filter",
  "bad_request",
  "server",
  "bad_gateway",
  "unavailable",
  "reset",
  "hang",
  "cut",
  "malformed",
  "cut_tool",
  "invalid_json",
];

export interface Scenario {
  /** Delay before the response headers, in ms. */
  latencyMs: number;
  /** Number of content deltas; when unset the reply echoes the last user message, a word per delta. */
  deltas?: number;
  /** Pause between deltas, in ms. */
  intervalMs: number;
  fail?: FailureKind;
  /** Overrides the HTTP status of `fail`. */
  status?: number;
  retryAfterSeconds?: number;
  retryAfterMs?: number;
  /** Fail only the first `times` requests of this scenario's `key`, then succeed. */
  times?: number;
  /** Counter key for `times` and for `/_stats`; defaults to the scenario text. */
  key: string;
  /** For `cut` and `malformed`: how many deltas go out first. */
  after: number;
  /** `false` models a provider that never reports usage. */
  usage: boolean;
  cachedTokens: number;
  reasoningTokens: number;
  /** Model ids listed by `GET /v1/models`; defaults to the built-in list. */
  models?: string[];
  /** Deltas are `t0 t1 t2 …`, so a client can detect a lost or reordered one. */
  numbered: boolean;
  /** Remaining credit `GET /v1/key` reports (OpenRouter's key-info endpoint), in USD; absent = no limit. */
  creditUsd?: number;
  /** `report=messages`: the reply is `messages=<n>`, the number of messages the request carried. */
  report?: "messages";
}

export class ScenarioError extends Error {
  override name = "ScenarioError";
}

const DEFAULTS: Omit<Scenario, "key"> = {
  latencyMs: 0,
  intervalMs: 0,
  after: 2,
  usage: true,
  numbered: false,
  cachedTokens: 0,
  reasoningTokens: 0,
};

function toCount(name: string, value: string, max = 1_000_000): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new ScenarioError(`scenario: "${name}" must be a whole number from 0 to ${max}, got "${value}"`);
  }
  return n;
}

/** Parses `fail=rate_limit,times=2`; an empty text is the plain success scenario. */
export function parseScenario(text: string): Scenario {
  const scenario: Scenario = { ...DEFAULTS, key: text };
  for (const pair of text.split(",")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    const value = eq < 0 ? "" : pair.slice(eq + 1).trim();
    switch (name) {
      case "latency":
        scenario.latencyMs = toCount(name, value);
        break;
      case "deltas":
        scenario.deltas = toCount(name, value, 100_000);
        break;
      case "interval":
        scenario.intervalMs = toCount(name, value);
        break;
      case "fail":
        if (!(FAILURE_KINDS as readonly string[]).includes(value)) {
          throw new ScenarioError(`scenario: unknown fail "${value}"; one of ${FAILURE_KINDS.join(", ")}`);
        }
        scenario.fail = value as FailureKind;
        break;
      case "status":
        scenario.status = toCount(name, value, 599);
        break;
      case "retry-after":
        scenario.retryAfterSeconds = toCount(name, value);
        break;
      case "retry-after-ms":
        scenario.retryAfterMs = toCount(name, value);
        break;
      case "times":
        scenario.times = toCount(name, value);
        break;
      case "key":
        scenario.key = value;
        break;
      case "after":
        scenario.after = toCount(name, value);
        break;
      case "usage":
        scenario.usage = value !== "0" && value !== "false";
        break;
      case "numbered":
        scenario.numbered = value !== "0" && value !== "false";
        break;
      case "cached":
        scenario.cachedTokens = toCount(name, value);
        break;
      case "reasoning":
        scenario.reasoningTokens = toCount(name, value);
        break;
      case "credit": {
        const usd = Number(value);
        if (!Number.isFinite(usd)) throw new ScenarioError(`scenario: "credit" must be a number of dollars, got "${value}"`);
        scenario.creditUsd = usd;
        break;
      }
      case "report":
        if (value !== "messages") throw new ScenarioError(`scenario: "report" can only be "messages", got "${value}"`);
        scenario.report = "messages";
        break;
      case "models":
        scenario.models = value === "" ? [] : value.split("|");
        break;
      default:
        throw new ScenarioError(`scenario: unknown setting "${name}"`);
    }
  }
  return scenario;
}

/** Splits `local-mini+fail=cut` into the model id and its scenario text. */
export function splitModelScenario(model: string): { model: string; scenario: string } {
  const plus = model.indexOf("+");
  return plus < 0 ? { model, scenario: "" } : { model: model.slice(0, plus), scenario: model.slice(plus + 1) };
}
