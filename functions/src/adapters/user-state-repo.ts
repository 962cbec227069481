import type { DocumentData, DocumentSnapshot } from "firebase-admin/firestore";
import type { UsageTotals } from "../core/ledger.js";
import { lanesFor, MAX_LANES, mergeLanes, type AccountState, type LaneState, type Reservation } from "../core/limits.js";

/**
 * A user's admission state and ledger in Firestore, split over lanes (docs/scaling.md):
 *   users/{uid}/limits/current          lane 0, and the user's overrides (budget, limits)
 *   users/{uid}/limits/lane-{k}         lanes 1… of a user whose limits were raised
 *   users/{uid}/usage/{YYYY-MM[-DD]}    lane 0's ledger (a one-lane user's whole ledger, as API.md says)
 *   users/{uid}/usage/{period}~{k}      lane k's ledger; the user's totals are the sum
 * Every user has one lane unless an admin raised their limits (`setUserLimits`): then each
 * execution writes one lane, so that no document is written more than once a second.
 */
export const userPaths = {
  lane: (uid: string, lane: number) => (lane === 0 ? `users/${uid}/limits/current` : `users/${uid}/limits/lane-${lane}`),
  usage: (uid: string, period: string, lane = 0) => (lane === 0 ? `users/${uid}/usage/${period}` : `users/${uid}/usage/${period}~${lane}`),
};

export function number(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

export function reservationsOf(data: DocumentData | undefined): Record<string, Reservation> {
  const raw = (data?.reservations ?? {}) as Record<string, Partial<Reservation>>;
  const out: Record<string, Reservation> = {};
  for (const [id, r] of Object.entries(raw)) {
    out[id] = { micros: number(r.micros), expireAt: number(r.expireAt), ...(typeof r.globalShard === "number" ? { globalShard: r.globalShard } : {}) };
  }
  return out;
}

export function laneFromSnapshot(snapshot: DocumentSnapshot): LaneState {
  const data = snapshot.data();
  return {
    reservations: reservationsOf(data),
    recent: Array.isArray(data?.recent) ? (data.recent as unknown[]).filter((t): t is number => typeof t === "number") : [],
  };
}

/** The overrides kept on lane 0. */
export function overridesOf(lane0: DocumentSnapshot): Pick<AccountState, "monthlyBudgetUsd" | "perMinute" | "maxConcurrent"> {
  const data = lane0.data();
  const budget = data?.monthlyBudgetUsd;
  const positive = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : undefined);
  const perMinute = positive(data?.perMinute);
  const maxConcurrent = positive(data?.maxConcurrent);
  return {
    ...(budget === null || typeof budget === "number" ? { monthlyBudgetUsd: budget } : {}),
    ...(perMinute !== undefined ? { perMinute } : {}),
    ...(maxConcurrent !== undefined ? { maxConcurrent } : {}),
  };
}

/** How many lanes lane 0's overrides call for: the lanes admissions write. */
export function laneCountOf(lane0: DocumentSnapshot): number {
  return lanesFor(overridesOf(lane0));
}

/** What lane 0 remembers of a month's lanes (`setLimits` writes it): the most the user had that month. */
export interface LanesUsed {
  month: string;
  lanes: number;
}

export function lanesUsedOf(lane0: DocumentSnapshot): LanesUsed | undefined {
  const used = lane0.data()?.lanesUsed as Partial<LanesUsed> | undefined;
  if (typeof used?.month !== "string" || typeof used.lanes !== "number" || !Number.isInteger(used.lanes) || used.lanes < 1) return undefined;
  return { month: used.month, lanes: Math.min(used.lanes, MAX_LANES) };
}

/** `YYYY-MM` of the month before. */
export function previousMonth(month: string): string {
  const [year, m] = month.split("-").map(Number) as [number, number];
  return m === 1 ? `${year - 1}-12` : `${year}-${String(m - 1).padStart(2, "0")}`;
}

/**
 * How many lanes to read in `month`: those the limits call for, or more when the user had more
 * lanes this month or the last one. Lowering a user's limits leaves their month's spend (and, for
 * a while, reservations and admission times) on the lanes they were admitted on, and an execution
 * admitted at the end of a month settles on its lane in the next; all of it stays counted.
 */
export function lanesToRead(lane0: DocumentSnapshot, month: string): number {
  const lanes = laneCountOf(lane0);
  const used = lanesUsedOf(lane0);
  return used && (used.month === month || used.month === previousMonth(month)) ? Math.max(lanes, used.lanes) : lanes;
}

/** The whole account from its lanes and their month ledgers (same order, lane 0 first). */
export function accountFromLanes(lanes: readonly DocumentSnapshot[], months: readonly DocumentSnapshot[]): AccountState {
  const spentMicros = months.reduce((sum, m) => sum + number(m.data()?.costMicros), 0);
  return mergeLanes({ ...overridesOf(lanes[0]!), spentMicros }, lanes.map(laneFromSnapshot));
}

/** For getUsage: a one-lane account from its documents. */
export function accountFromSnapshots(limits: DocumentSnapshot, month: DocumentSnapshot): AccountState {
  return accountFromLanes([limits], [month]);
}

export function totalsOf(data: DocumentData | undefined): UsageTotals {
  return {
    requests: number(data?.requests),
    succeeded: number(data?.succeeded),
    failed: number(data?.failed),
    inputTokens: number(data?.inputTokens),
    outputTokens: number(data?.outputTokens),
    costMicros: number(data?.costMicros),
  };
}

export function addTotals(a: UsageTotals, b: UsageTotals): UsageTotals {
  return {
    requests: a.requests + b.requests,
    succeeded: a.succeeded + b.succeeded,
    failed: a.failed + b.failed,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    costMicros: a.costMicros + b.costMicros,
  };
}

/**
 * A small cache of lane counts per user, so that admission reads every lane in its one round trip,
 * and where each user's admissions on this instance go next.
 */
export class LaneCounts {
  private readonly counts = new Map<string, number>();
  private readonly cursors = new Map<string, number>();
  constructor(private readonly max = 10_000) {}
  get(uid: string): number {
    return this.counts.get(uid) ?? 1;
  }
  set(uid: string, lanes: number): void {
    if (this.counts.size >= this.max) this.counts.delete(this.counts.keys().next().value!);
    if (lanes === 1) this.counts.delete(uid);
    else this.counts.set(uid, lanes);
  }
  /**
   * The lane of this instance's next admission of a user: round-robin from a random start, so that
   * every lane takes an even share of them (a random choice would leave some lanes busier than the
   * average; docs/scaling.md).
   */
  nextLane(uid: string, lanes: number): number {
    const previous = this.cursors.get(uid) ?? Math.floor(Math.random() * lanes);
    if (this.cursors.size >= this.max && !this.cursors.has(uid)) this.cursors.delete(this.cursors.keys().next().value!);
    const next = (previous + 1) % lanes;
    this.cursors.set(uid, next);
    return next;
  }
}
