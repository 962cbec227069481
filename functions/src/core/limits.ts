import { DEFAULT_IMAGE_TOKENS, type ResolvedModel } from "./catalog.js";
import { computeCost } from "./cost.js";
import { ExecutionError } from "./errors.js";
import { mediaKind, type Message, type ResponseFormat, type ToolSpec } from "./messages.js";

/**
 * Admission: the per-user rate limit, concurrency limit and budgets, decided from state
 * that the stores read and write atomically (a Firestore transaction, or a lock in memory).
 * Nothing here lives in process memory, so limits hold across instances.
 */

/** Money held back for one running execution, released when it settles. */
export interface Reservation {
  micros: number;
  /** Epoch ms after which the execution is presumed dead and the reservation reclaimed. */
  expireAt: number;
  /** The global-ledger shard whose `reservedMicros` holds the same amount, when a global budget is set. */
  globalShard?: number;
}

export interface LimitSettings {
  perMinute: number;
  maxConcurrent: number;
  /** USD per user per month when the user has no override; null = no limit. */
  defaultMonthlyBudgetUsd: number | null;
  /** USD for everyone together per month; null = no limit. */
  globalMonthlyBudgetUsd: number | null;
  /** Shards of the global ledger: enough that each is written at most once a second at the peak rate. */
  globalShards: number;
  /** Added to an execution's time limit before its reservation counts as abandoned. */
  reservationGraceMs: number;
}

/** What admission needs to know about one user (all lanes together). */
export interface AccountState {
  /** The override set by `setUserBudget`: a number, null (no limit), or undefined (use the default). */
  monthlyBudgetUsd?: number | null;
  /** Overrides set by `setUserLimits` (undefined: the params). */
  perMinute?: number;
  maxConcurrent?: number;
  /** Settled cost this month (the usage ledger). */
  spentMicros: number;
  reservations: Record<string, Reservation>;
  /** Admission times within the last minute, oldest first. */
  recent: number[];
}

/** One lane's own state: what its document holds and an admission on it rewrites. */
export interface LaneState {
  reservations: Record<string, Reservation>;
  recent: number[];
}

export interface AdmissionDecision {
  /** The lane's new reservations and rate window. */
  reservations: Record<string, Reservation>;
  recent: number[];
  /** Executions of this lane whose reservations expired: presumed dead, to be finished as failed. */
  expired: string[];
}

export const RATE_WINDOW_MS = 60_000;
/** How long a client should wait before asking again when all its slots are busy. */
export const CONCURRENCY_RETRY_MS = 1_000;
/** Firestore's guidance: about one sustained write a second per document. */
export const WRITES_PER_DOCUMENT_PER_SECOND = 1;
export const MAX_LANES = 32;

const usd = (micros: number) => `$${(micros / 1_000_000).toFixed(2)}`;
const toMicros = (dollars: number) => Math.round(dollars * 1_000_000);

export function effectiveBudgetMicros(account: Pick<AccountState, "monthlyBudgetUsd">, settings: LimitSettings): number | null {
  const dollars = account.monthlyBudgetUsd === undefined ? settings.defaultMonthlyBudgetUsd : account.monthlyBudgetUsd;
  return dollars === null ? null : toMicros(dollars);
}

/** The user's limits: their overrides, else the params. */
export function effectiveLimits(account: Pick<AccountState, "perMinute" | "maxConcurrent">, settings: LimitSettings): { perMinute: number; maxConcurrent: number } {
  return { perMinute: account.perMinute ?? settings.perMinute, maxConcurrent: account.maxConcurrent ?? settings.maxConcurrent };
}

/**
 * What a lane is sized for at the user's peak, below Firestore's one write a second: each instance
 * spreads its admissions evenly over the lanes (round-robin), but instances do not coordinate, and
 * a lost race or a reclaim can add a write; the rest is headroom for that.
 */
export const LANE_WRITES_PER_SECOND = 0.8;

/**
 * How many lanes a user's state is split over (docs/scaling.md). Each execution writes its
 * lane's document twice (admission, settlement): a user allowed `perMinute` writes 2 · perMinute
 * / 60 times a second at their peak. Up to one write a second fits one lane, as for every user at
 * the default limits (30 a minute), with exact limits; above it, lanes of LANE_WRITES_PER_SECOND
 * each. Only an override (`setUserLimits`) raises it.
 */
export function lanesFor(account: Pick<AccountState, "perMinute">): number {
  if (account.perMinute === undefined) return 1;
  const writesPerSecond = (2 * account.perMinute) / 60;
  if (writesPerSecond <= WRITES_PER_DOCUMENT_PER_SECOND) return 1;
  return Math.min(MAX_LANES, Math.ceil(writesPerSecond / LANE_WRITES_PER_SECOND));
}

/** Splits reservations into live ones and expired ones (executions presumed dead). */
export function partitionReservations(reservations: Record<string, Reservation>, now: number) {
  const live: Record<string, Reservation> = {};
  const expired: string[] = [];
  let reservedMicros = 0;
  for (const [id, reservation] of Object.entries(reservations)) {
    if (reservation.expireAt <= now) {
      expired.push(id);
    } else {
      live[id] = reservation;
      reservedMicros += reservation.micros;
    }
  }
  return { live, expired, reservedMicros };
}

/** The admission times still inside the window. Stored oldest first, so the cut is one scan, no sort. */
export function recentWithinWindow(recent: readonly number[], now: number): number[] {
  const cutoff = now - RATE_WINDOW_MS;
  let first = 0;
  while (first < recent.length && recent[first]! <= cutoff) first++;
  return recent.slice(first);
}

/** Remaining budget in micros after settled spending and live reservations; null = no limit. */
export function remainingMicros(account: AccountState, settings: LimitSettings, now: number): number | null {
  const budget = effectiveBudgetMicros(account, settings);
  if (budget === null) return null;
  return budget - account.spentMicros - partitionReservations(account.reservations, now).reservedMicros;
}

/** All of a user's lanes as one account, for the checks. */
export function mergeLanes(base: Omit<AccountState, "reservations" | "recent">, lanes: readonly LaneState[]): AccountState {
  const reservations: Record<string, Reservation> = {};
  const recent: number[] = [];
  for (const lane of lanes) {
    Object.assign(reservations, lane.reservations);
    recent.push(...lane.recent);
  }
  return { ...base, reservations, recent: lanes.length > 1 ? recent.sort((a, b) => a - b) : recent };
}

/**
 * Decides whether one more execution may start, in this order: requests per minute,
 * concurrent executions, the user's monthly budget. The checks see the whole account (all
 * lanes); the decision rewrites one lane (for a one-lane user, the account itself). The
 * amount reserved is the execution's worst-case cost, so concurrent requests can never
 * together spend more than the budget (beyond what an estimate can miss). Expired
 * reservations of the lane are reclaimed on the way. Throws `rate_limited` (with an honest
 * retryAfterMs) or `budget_exceeded`. The global budget is checked apart (global-budget.ts).
 */
export function decideAdmission(input: {
  executionId: string;
  now: number;
  reserveMicros: number;
  expireAt: number;
  account: AccountState;
  /** The lane written; absent for a one-lane user (the account is the lane). */
  lane?: LaneState;
  settings: LimitSettings;
}): AdmissionDecision {
  const { now, settings, account } = input;
  const limits = effectiveLimits(account, settings);
  const recent = recentWithinWindow(account.recent, now);
  if (recent.length >= limits.perMinute) {
    throw new ExecutionError("rate_limited", `At most ${limits.perMinute} requests a minute; retry later.`, {
      // Clamped: a concurrent admission may carry a timestamp a little later than `now`.
      retryAfterMs: Math.min(RATE_WINDOW_MS, Math.max(0, recent[recent.length - limits.perMinute]! + RATE_WINDOW_MS - now)),
    });
  }
  const { live, reservedMicros } = partitionReservations(account.reservations, now);
  if (Object.keys(live).length >= limits.maxConcurrent) {
    throw new ExecutionError("rate_limited", `At most ${limits.maxConcurrent} executions at once; retry when one finishes.`, {
      retryAfterMs: CONCURRENCY_RETRY_MS,
    });
  }
  const budget = effectiveBudgetMicros(account, settings);
  if (budget !== null && account.spentMicros + reservedMicros + input.reserveMicros > budget) {
    const left = Math.max(0, budget - account.spentMicros - reservedMicros);
    throw new ExecutionError(
      "budget_exceeded",
      `This month's budget of ${usd(budget)} cannot cover this request (${usd(left)} left, up to ${usd(input.reserveMicros)} needed).`,
    );
  }
  const lane = input.lane ?? account;
  const own = partitionReservations(lane.reservations, now);
  const laneRecent = recentWithinWindow(lane.recent, now);
  return {
    reservations: { ...own.live, [input.executionId]: { micros: input.reserveMicros, expireAt: input.expireAt } },
    // Concurrent admissions may land slightly out of order; keep the list sorted for the next cut.
    recent: laneRecent.length > 0 && laneRecent[laneRecent.length - 1]! > now ? [...laneRecent, now].sort((a, b) => a - b) : [...laneRecent, now],
    expired: own.expired,
  };
}

/** What an execution sends a model, for bounding its input tokens. */
export interface ModelInput {
  messages: readonly Message[];
  /** Stored conversation history sent too, as a bound of its tokens (conversation.ts renders it). */
  historyTokens?: number;
  tools?: readonly ToolSpec[];
  responseFormat?: ResponseFormat;
}

const FRAMING_TOKENS = 4;

/**
 * A true upper bound of the input tokens of a request on one model: every tokenizer in use
 * (byte-level BPE, SentencePiece with byte fallback) spends at least one UTF-8 byte per
 * token, so text counts its bytes (CJK text is 3 bytes a character, and can be a token per
 * character); each image the model's `imageTokens`; a file or audio part can be as large as
 * the model takes, so with one the bound is the context window, which caps everything.
 */
export function inputTokensBound(input: ModelInput, model: ResolvedModel): number {
  let tokens = input.historyTokens ?? 0;
  let unbounded = false;
  for (const message of input.messages) {
    tokens += FRAMING_TOKENS;
    if (typeof message.content === "string") tokens += Buffer.byteLength(message.content, "utf8");
    else if (message.content !== null) {
      for (const part of message.content) {
        if (part.type === "text") tokens += Buffer.byteLength(part.text, "utf8");
        else if (part.type === "image") tokens += model.spec.imageTokens ?? DEFAULT_IMAGE_TOKENS;
        else unbounded = true;
      }
    }
    if (message.role === "assistant") {
      for (const call of message.toolCalls ?? []) tokens += FRAMING_TOKENS + Buffer.byteLength(call.id + call.name + call.arguments, "utf8");
    }
    if (message.role === "tool") tokens += Buffer.byteLength(message.toolCallId, "utf8");
  }
  if (input.tools) tokens += Buffer.byteLength(JSON.stringify(input.tools), "utf8");
  if (input.responseFormat) tokens += Buffer.byteLength(JSON.stringify(input.responseFormat), "utf8");
  return unbounded ? model.spec.contextWindow : Math.min(tokens, model.spec.contextWindow);
}

/**
 * The most an execution can cost: inputTokensBound plus `maxTokens` (or the model's maximum)
 * of output, on the most expensive of the models it may fall back to.
 */
export function worstCaseMicros(input: ModelInput, candidates: readonly ResolvedModel[], maxTokens?: number): number {
  let worst = 0;
  for (const model of candidates) {
    const inputTokens = inputTokensBound(input, model);
    const outputTokens = Math.min(maxTokens ?? model.spec.maxOutputTokens, model.spec.maxOutputTokens);
    // With audio in it, any input token may be an audio one, which some providers price higher.
    const { price } = model.spec;
    const inputPrice = hasAudio(input) ? Math.max(price.inputPerMTokUsd, price.audioInputPerMTokUsd ?? 0) : price.inputPerMTokUsd;
    const cost = computeCost(
      { inputTokens, outputTokens, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: inputTokens + outputTokens, estimated: true },
      { ...price, inputPerMTokUsd: inputPrice },
    );
    worst = Math.max(worst, cost.micros);
  }
  return worst;
}

function hasAudio(input: ModelInput): boolean {
  return input.messages.some((m) => typeof m.content !== "string" && m.content !== null && m.content.some((p) => p.type !== "text" && mediaKind(p) === "audio"));
}

/** UTC periods of the usage ledger: `YYYY-MM-DD` and `YYYY-MM`. */
export function usagePeriods(at: number): { day: string; month: string } {
  // Periods change only on a whole second: the last one is kept (it is asked several times a request).
  const second = Math.floor(at / 1_000);
  if (second === lastPeriods.second) return lastPeriods.periods;
  const iso = new Date(at).toISOString();
  lastPeriods = { second, periods: { day: iso.slice(0, 10), month: iso.slice(0, 7) } };
  return lastPeriods.periods;
}

let lastPeriods: { second: number; periods: { day: string; month: string } } = { second: Number.NaN, periods: { day: "", month: "" } };

/**
 * What was left for a user right after one of their admissions: this instance's basis for
 * starting that user's next request before its admission has committed
 * (pipeline/speculation.ts). Approximate by nature (other instances admit too); admission
 * itself stays the only decision.
 */
export interface Headroom {
  /** Admissions still allowed in the rate window. */
  requests: number;
  /** Executions that may still start while the live ones run. */
  concurrent: number;
  /** Budget left after settled spending and live reservations; null = no limit. */
  budgetMicros: number | null;
  /** The global budget left, as this instance last saw it; null = no global budget. */
  globalMicros: number | null;
}

/** The headroom after admitting `reserveMicros` for a user whose state (before it) was `account`. */
export function headroomAfter(account: AccountState, settings: LimitSettings, now: number, reserveMicros: number, globalMicros: number | null): Headroom {
  const limits = effectiveLimits(account, settings);
  const { live, reservedMicros } = partitionReservations(account.reservations, now);
  const budget = effectiveBudgetMicros(account, settings);
  return {
    requests: limits.perMinute - recentWithinWindow(account.recent, now).length - 1,
    concurrent: limits.maxConcurrent - Object.keys(live).length - 1,
    budgetMicros: budget === null ? null : budget - account.spentMicros - reservedMicros - reserveMicros,
    globalMicros,
  };
}
