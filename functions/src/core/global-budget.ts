import { ExecutionError } from "./errors.js";
import type { Clock } from "./ports.js";

/**
 * The global monthly budget without a global document on the per-request path
 * (docs/scaling.md). Every admission adds its reservation to one of many ledger shards (an
 * increment: no read, no contention) and settlement turns it into cost on the same shard.
 * Instances check a cached total of all shards (one aggregation query, refreshed in the
 * background about once a second) plus what they admitted themselves since it was read.
 *
 * Overspend bound: an admission cannot see what other instances admitted after the total it
 * uses was read (or committed while it was being read), so the budget can be passed by at most
 *   (admissions per second of the other instances) × (staleness) × (the largest reservation),
 * where staleness is the refresh interval (1 s) while the budget is far, and one read plus one
 * commit (tens of milliseconds) near it: within NEAR_FRACTION of it, or within what the pace of
 * admissions seen over the last refreshes could add in two intervals. docs/scaling.md.
 * A request that would be refused is decided again on a fresh total first: nothing that fits
 * in what is left overall is refused because a figure was stale.
 */

export interface GlobalTotals {
  /** Settled cost this month, all shards. */
  spentMicros: number;
  /** Reservations of running executions, all shards. */
  reservedMicros: number;
}

export interface GlobalTotalsSource {
  /** Sums the month's shards (one aggregation query in Firestore). */
  read(month: string): Promise<GlobalTotals>;
}

interface Snapshot {
  month: string;
  totals: GlobalTotals;
  /** When the read started: admissions of this instance after it may not be in it. */
  readFrom: number;
}

/** A reservation this instance counts locally until a total read after its commit includes it. */
interface Held {
  month: string;
  micros: number;
  /** Epoch ms its admission committed; undefined while it has not. */
  committedAt?: number;
}

export interface GlobalHold {
  /** The admission committed: the shard holds it from now on. */
  committed(): void;
  /** The admission did not commit: forget it. */
  release(): void;
}

export const GLOBAL_REFRESH_MS = 1_000;
/** Within this fraction of the budget, every admission decides on a fresh total. */
export const NEAR_FRACTION = 0.1;

export class GlobalBudgetGate {
  private snapshot?: Snapshot;
  private refreshing?: Promise<Snapshot>;
  private held: Held[] = [];
  /** Micros a millisecond the total has been growing by (smoothed): how much can arrive unseen. */
  private inflow = 0;

  constructor(
    private readonly source: GlobalTotalsSource,
    private readonly clock: Clock,
    private readonly refreshMs = GLOBAL_REFRESH_MS,
  ) {}

  /**
   * Resolves once there is a total for `month` to decide on. Awaited alongside admission's
   * reads, so it costs no round trip of its own. Far from the budget a stale total is
   * refreshed in the background; near it (within NEAR_FRACTION, or within what the recent pace
   * of admissions could add unseen in two refresh intervals) every admission reads a fresh one
   * (still alongside its other reads), which shrinks the window of the bound to one read and
   * one commit when it matters.
   */
  ready(month: string, budgetMicros: number): Promise<void> {
    const current = this.snapshot;
    if (current?.month !== month) return this.refresh(month).then(() => undefined);
    // Near: less is left than could arrive unseen in two refresh intervals at the current pace.
    const near = Math.max(budgetMicros * NEAR_FRACTION, 2 * this.inflow * this.refreshMs);
    if (budgetMicros - this.total(month) < near) return this.refresh(month).then(() => undefined);
    if (this.clock.now() - current.readFrom >= this.refreshMs) void this.refresh(month).catch(() => {});
    return Promise.resolve();
  }

  /** Reads the totals now (one read at a time; callers share it). */
  refresh(month: string): Promise<Snapshot> {
    this.refreshing ??= (async () => {
      const readFrom = this.clock.now();
      try {
        const totals = await this.source.read(month);
        const previous = this.snapshot;
        if (previous?.month === month && readFrom > previous.readFrom) {
          const grew = totals.spentMicros + totals.reservedMicros - previous.totals.spentMicros - previous.totals.reservedMicros;
          this.inflow = 0.5 * this.inflow + 0.5 * Math.max(0, grew / (readFrom - previous.readFrom));
        }
        this.snapshot = { month, totals, readFrom };
        // What the new total surely includes (committed before the read began) is no longer counted locally.
        this.held = this.held.filter((h) => h.month === month && (h.committedAt === undefined || h.committedAt >= readFrom));
        return this.snapshot;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** Spent and reserved in all shards, as last read, plus what this instance holds beyond that. */
  total(month: string): number {
    const snapshot = this.snapshot;
    const base = snapshot?.month === month ? snapshot.totals.spentMicros + snapshot.totals.reservedMicros : 0;
    return base + this.held.filter((h) => h.month === month).reduce((sum, h) => sum + h.micros, 0);
  }

  /**
   * Holds `micros` of the month's budget for one admission, or throws `budget_exceeded`, after
   * deciding again on a fresh total when the cached one says no. Returns a release for an
   * admission that did not commit.
   */
  async hold(month: string, budgetMicros: number, micros: number): Promise<GlobalHold> {
    if (this.total(month) + micros > budgetMicros) {
      await this.refresh(month);
      if (this.total(month) + micros > budgetMicros) {
        throw new ExecutionError("budget_exceeded", "The service's monthly budget is spent; try again next month.");
      }
    }
    const held: Held = { month, micros };
    this.held.push(held);
    return {
      committed: () => {
        held.committedAt = this.clock.now();
      },
      release: () => {
        this.held = this.held.filter((h) => h !== held);
      },
    };
  }
}
