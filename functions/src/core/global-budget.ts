import { ExecutionError } from "./errors.js";
import type { Clock } from "./ports.js";

/**
 * The global monthly budget without a global document on the per-request path
 * (docs/scaling.md). Every admission adds its reservation to one of many ledger shards (an
 * increment: no read, no contention) and settlement turns it into cost on the same shard.
 * Instances decide on a total of all shards (one aggregation query) plus what they admitted
 * themselves that the total does not include yet (told apart by the server's read and commit
 * times: nothing is counted twice or missed).
 *
 * Each admission decides one of two ways:
 * - on the cached total (read in the background about once a refresh interval, never used once
 *   two intervals old), as it begins, when it fits there with at least NEAR_FRACTION of the budget
 *   left over and this instance has admitted on cached totals less than its allowance
 *   A = ALLOWANCE_FRACTION × budget within the last refresh interval;
 * - otherwise on a fresh total: this instance's fresh-total admissions go one at a time, each on a
 *   total read after the previous one committed (and after it arrived). Near the budget (less than
 *   NEAR_FRACTION of it left after the request) every admission is decided so.
 * Only a fresh total refuses: nothing that fits in what is left overall is refused because a
 * figure was stale.
 *
 * Overspend bound, with N instances admitting, r the largest reservation:
 *   overspend ≤ (N − 1) × (r + 3 × A)
 * An admission is blind only to what other instances decided on totals read no later than its own
 * and committed after it was read: at most one fresh-total admission each (≤ r), and what they
 * admitted on cached totals in the window such a total can still be used in (two intervals, plus
 * an admission's read and commit, taken to be under one: at most three intervals' allowance,
 * ≤ 3A). Once every instance's total shows the budget near (within an interval of the total
 * crossing into its last tenth), only the (N − 1) × r remains. docs/scaling.md.
 */

export interface GlobalTotals {
  /** Settled cost this month, all shards. */
  spentMicros: number;
  /** Reservations of running executions, all shards. */
  reservedMicros: number;
  /** The server time (µs) the totals were read at: commits at or before it are in them. Absent when unknown. */
  readTime?: number;
}

export interface GlobalTotalsSource {
  /** Sums the month's shards (one aggregation query in Firestore). */
  read(month: string): Promise<GlobalTotals>;
}

interface Snapshot {
  month: string;
  totals: GlobalTotals;
  /** Local ms when the read started: what committed before it is surely in it. */
  readFrom: number;
}

/** A reservation this instance counts locally until a total that includes its commit is read. */
interface Held {
  month: string;
  micros: number;
  /** Its entry in the allowance, when it was decided on a cached total. */
  onCache: { at: number; micros: number } | undefined;
  /** Server time (µs) of its admission's commit; undefined while it has not committed or it is unknown. */
  writeTime?: number;
  /** Local ms its admission committed. */
  committedAt?: number;
  /** Resolves when it committed or was forgotten. */
  settled: Promise<void>;
  settle(): void;
}

/** One admission's use of the gate: `ready` alongside the admission's reads, `hold`, then `committed` if it did, and always `end`. */
export interface GlobalAdmission {
  /** Resolves once there is a total to decide on: the cached one, or a fresh one (near the budget, always). */
  readonly ready: Promise<void>;
  /**
   * Holds `micros` of the budget, or throws `budget_exceeded`. Up to the `upTo` the admission
   * began with, as decided at `ready`; more is decided again on a fresh total (a read more).
   */
  hold(micros: number): Promise<void>;
  /** The admission committed, at `writeTime` (the server's commit time in µs, when known). */
  committed(writeTime?: number): void;
  /** Ends the admission: a hold that did not commit is forgotten, and the next fresh-total admission goes. */
  end(): void;
}

export const GLOBAL_REFRESH_MS = 1_000;

/**
 * Shards of the global ledger for a peak rate: each execution writes one shard twice with a
 * global budget (reserve, settle), so 2 × the peak keeps every shard at ≤ 1 write a second.
 */
export function ledgerShardsFor(peakExecutionsPerSecond: number): number {
  return Math.max(1, Math.ceil(2 * peakExecutionsPerSecond));
}
/** Within this fraction of the budget, every admission decides on a fresh total. */
export const NEAR_FRACTION = 0.1;
/**
 * What one instance may admit on cached totals within one refresh interval, as a fraction of the
 * budget (A): 0.01% of a month's budget a second ($1 a second of $10,000) is more than an instance
 * spends, so it binds only for small budgets, large reservations and surges; beyond it, admissions
 * decide on fresh totals. It is what bounds the admissions another instance cannot see.
 */
export const ALLOWANCE_FRACTION = 0.0001;

export class GlobalBudgetGate {
  private snapshot?: Snapshot;
  private background?: Promise<void>;
  private held: Held[] = [];
  /** Admissions on cached totals within the last refresh interval: when, and how much. */
  private cached: { at: number; micros: number }[] = [];
  /** Fresh-total admissions go one at a time: whether one is going, and who waits. */
  private freshBusy = false;
  private readonly freshQueue: (() => void)[] = [];

  constructor(
    private readonly source: GlobalTotalsSource,
    private readonly clock: Clock,
    private readonly refreshMs = GLOBAL_REFRESH_MS,
  ) {}

  /** Spent and reserved in all shards, as last read, plus what this instance holds that the read does not include. */
  total(month: string): number {
    const snapshot = this.snapshot;
    const base = snapshot?.month === month ? snapshot.totals.spentMicros + snapshot.totals.reservedMicros : 0;
    return base + this.held.filter((h) => h.month === month).reduce((sum, h) => sum + h.micros, 0);
  }

  /** Reads the totals now. */
  async refresh(month: string): Promise<void> {
    const readFrom = this.clock.now();
    const totals = await this.source.read(month);
    this.accept(month, totals, readFrom);
  }

  /**
   * Begins one admission that may reserve up to `upToMicros` of `budgetMicros` for `month`. Far
   * from the budget, within the allowance, it decides on the cached total (refreshed in the
   * background once a refresh interval old); otherwise it waits for this instance's earlier
   * fresh-total admissions to commit and reads a fresh total.
   */
  admission(month: string, budgetMicros: number, upToMicros: number): GlobalAdmission {
    let hold: Held | undefined;
    let state: "cached" | "waiting" | "fresh" | "ended" = "cached";
    let wake: (() => void) | undefined;
    const current = () => state; // read through a call: it changes while `fresh` awaits
    const fresh = async (): Promise<void> => {
      state = "waiting";
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (!this.freshBusy) {
          this.freshBusy = true;
          resolve();
        } else this.freshQueue.push(resolve);
      });
      if (current() === "ended") return this.nextFresh(); // ended while queued: pass the turn on
      state = "fresh";
      await this.refresh(month);
    };
    const take = (micros: number, onCache?: { at: number; micros: number }) => {
      let settle!: () => void;
      const settled = new Promise<void>((resolve) => (settle = resolve));
      if (onCache) this.cached.push(onCache);
      hold = { month, micros, onCache, settled, settle };
      this.held.push(hold);
    };
    /** A hold that did not commit: forgotten, and given back to the allowance. */
    const forget = () => {
      const forgotten = hold;
      if (!forgotten) return;
      this.held = this.held.filter((h) => h !== forgotten);
      this.cached = this.cached.filter((c) => c !== forgotten.onCache);
      forgotten.settle();
      hold = undefined;
    };
    let ready: Promise<void>;
    if (this.cachedWillDo(month, budgetMicros, upToMicros)) {
      // Decided now, on the cached total: `upTo` is held at once (so that this instance's other
      // admissions see it), and lowered to what is reserved at `hold`; no read, no second look.
      take(upToMicros, { at: this.clock.now(), micros: upToMicros });
      ready = Promise.resolve();
    } else ready = fresh();
    return {
      ready,
      hold: async (micros: number) => {
        if (state === "cached" && micros <= upToMicros) {
          hold!.micros = micros;
          hold!.onCache!.micros = micros;
          return;
        }
        if (state === "cached") {
          forget(); // more than it began with: decided again, on a fresh total
          await fresh();
        }
        await this.decideFresh(month, budgetMicros, micros);
        take(micros);
      },
      committed: (writeTime?: number) => {
        if (!hold) return;
        hold.committedAt = this.clock.now();
        if (writeTime !== undefined) hold.writeTime = writeTime;
        hold.settle();
        const snapshot = this.snapshot;
        if (snapshot && this.includes(snapshot, hold)) this.held = this.held.filter((h) => h !== hold);
        hold = undefined;
      },
      end: () => {
        forget();
        const was = state;
        state = "ended";
        if (was === "fresh") this.nextFresh();
        else if (was === "waiting") {
          // Still queued: leave the queue (or, if woken already, pass the turn on when it runs).
          const index = wake ? this.freshQueue.indexOf(wake) : -1;
          if (index >= 0) this.freshQueue.splice(index, 1);
        }
      },
    };
  }

  /** Whether an admission of up to `micros` may decide on the cached total (module comment). */
  private cachedWillDo(month: string, budgetMicros: number, micros: number): boolean {
    const snapshot = this.snapshot;
    if (snapshot?.month !== month) return false;
    const age = this.clock.now() - snapshot.readFrom;
    if (age >= 2 * this.refreshMs) return false;
    if (age >= this.refreshMs) this.refreshInBackground(month);
    if (budgetMicros - this.total(month) - micros < budgetMicros * NEAR_FRACTION) return false;
    return this.cachedRecently() + micros <= budgetMicros * ALLOWANCE_FRACTION;
  }

  /** What this instance admitted on cached totals within the last refresh interval. */
  private cachedRecently(): number {
    const since = this.clock.now() - this.refreshMs;
    this.cached = this.cached.filter((c) => c.at > since);
    return this.cached.reduce((sum, c) => sum + c.micros, 0);
  }

  /** On the fresh total just read: refuses only what does not fit in it. */
  private async decideFresh(month: string, budgetMicros: number, micros: number): Promise<void> {
    if (this.total(month) + micros <= budgetMicros) return;
    // Admissions of this instance still committing may be in the total already: learn which first.
    const pending = this.held.filter((h) => h.month === month && h.committedAt === undefined);
    if (pending.length > 0) {
      await Promise.all(pending.map((h) => h.settled));
      if (this.total(month) + micros <= budgetMicros) return;
    }
    throw new ExecutionError("budget_exceeded", "The service's monthly budget is spent; try again next month.");
  }

  private refreshInBackground(month: string): void {
    this.background ??= this.refresh(month)
      .catch(() => {})
      .finally(() => (this.background = undefined));
  }

  private nextFresh(): void {
    const next = this.freshQueue.shift();
    if (next) next();
    else this.freshBusy = false;
  }

  /** A read of the totals arrived: the newest one is kept, and what it includes is no longer counted locally. */
  private accept(month: string, totals: GlobalTotals, readFrom: number): void {
    const previous = this.snapshot;
    if (previous?.month === month) {
      // An older read that finished later is dropped.
      const older = totals.readTime !== undefined && previous.totals.readTime !== undefined ? totals.readTime < previous.totals.readTime : readFrom < previous.readFrom;
      if (older) return;
    }
    const snapshot: Snapshot = { month, totals, readFrom };
    this.snapshot = snapshot;
    this.held = this.held.filter((h) => h.month === month && !this.includes(snapshot, h));
  }

  /** Whether a read includes a held reservation's commit: by the server's times when both are known, else conservatively. */
  private includes(snapshot: Snapshot, held: Held): boolean {
    if (held.committedAt === undefined) return false;
    if (snapshot.totals.readTime !== undefined && held.writeTime !== undefined) return held.writeTime <= snapshot.totals.readTime;
    return held.committedAt < snapshot.readFrom;
  }
}
