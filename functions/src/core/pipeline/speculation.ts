import type { Headroom } from "../limits.js";
import type { Plan } from "./types.js";

/**
 * The speculative start: for a user this instance has just admitted with room to spare, the
 * provider is called while admission's Firestore round trips run, and its output is held
 * until admission commits (attempts.ts `release`). Admission stays the only decision: when it
 * refuses, the upstream call is aborted before anything reaches the client, and what it may
 * have cost is recorded as an execution of its own (`speculative: true`) in the user's ledger.
 *
 * When to speculate is decided from what this instance already knows: the headroom the
 * user's last admission here left (rate window, concurrency, budget, global budget), fresh
 * enough, minus the speculative starts of that user still in flight here. The worst case is
 * bounded in docs/benchmarks.md: a start is wasted only when other instances used the room
 * meanwhile, at most `maxInFlight` at a time, each costing at most its input.
 */

export interface SpeculationOptions {
  /** Speculative starts in flight on this instance at most. */
  maxInFlight: number;
  /** How long what a user's admission left counts as known. */
  freshMs: number;
  /** After a refusal, how long this user gets no speculative start. */
  coolDownMs: number;
  /** Users remembered (least recently admitted forgotten first). */
  maxUsers: number;
}

export const DEFAULT_SPECULATION: SpeculationOptions = { maxInFlight: 64, freshMs: 30_000, coolDownMs: 60_000, maxUsers: 10_000 };

interface Known {
  headroom: Headroom;
  at: number;
  inFlight: number;
  quietUntil: number;
}

export interface SpeculationStats {
  /** Speculative starts made. */
  started: number;
  /** Starts whose admission committed: their output was released. */
  released: number;
  /** Starts aborted because admission refused (or found a finished repeat). */
  aborted: number;
  /** What the aborted ones cost, as recorded. */
  abortedMicros: number;
}

export class SpeculationGate {
  readonly stats: SpeculationStats = { started: 0, released: 0, aborted: 0, abortedMicros: 0 };
  private readonly users = new Map<string, Known>();
  private readonly requestIds = new Set<string>();
  private inFlight = 0;

  constructor(
    private readonly options: SpeculationOptions = DEFAULT_SPECULATION,
    private readonly enabled: () => boolean = () => true,
  ) {}

  /**
   * Whether to call the provider for this request before its admission; when true, a slot is
   * taken and `end` must follow. Never for a conversation turn (its history comes with
   * admission), media the server would fetch for any of its models (nothing is fetched before
   * admission, and a fallback may run before admission has answered), a
   * requestId seen here before (a repeat is answered from its record), or a user whose room
   * this instance does not know.
   */
  begin(uid: string, plan: Plan, reserveMicros: number, now: number): boolean {
    if (!this.enabled() || this.inFlight >= this.options.maxInFlight) return false;
    if (plan.request.conversationId !== undefined || plan.candidates.some((c) => c.inline)) return false;
    const requestId = plan.request.requestId;
    if (requestId !== undefined && this.requestIds.has(requestId)) return false;
    const known = this.users.get(uid);
    if (!known || now - known.at > this.options.freshMs || now < known.quietUntil) return false;
    const n = known.inFlight + 1;
    const room = known.headroom;
    if (room.requests < n || room.concurrent < n) return false;
    if (room.budgetMicros !== null && room.budgetMicros < n * reserveMicros) return false;
    if (room.globalMicros !== null && room.globalMicros < n * reserveMicros) return false;
    known.inFlight += 1;
    this.inFlight += 1;
    this.stats.started += 1;
    if (requestId !== undefined) this.remember(requestId);
    return true;
  }

  /** A speculative start is over (released, or aborted). */
  end(uid: string, outcome: { released: true } | { released: false; costMicros: number }): void {
    const known = this.users.get(uid);
    if (known) known.inFlight = Math.max(0, known.inFlight - 1);
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (outcome.released) {
      this.stats.released += 1;
    } else {
      this.stats.aborted += 1;
      this.stats.abortedMicros += outcome.costMicros;
    }
  }

  /** Any admission of this user here (speculative or not): what it left is now known. */
  admitted(uid: string, headroom: Headroom | undefined, now: number, requestId?: string): void {
    if (requestId !== undefined) this.remember(requestId);
    if (!headroom) return;
    const known = this.users.get(uid);
    this.users.delete(uid); // re-inserted last: the map's order is least recently admitted first
    this.users.set(uid, { headroom, at: now, inFlight: known?.inFlight ?? 0, quietUntil: known?.quietUntil ?? 0 });
    if (this.users.size > this.options.maxUsers) this.users.delete(this.users.keys().next().value!);
  }

  /** Admission refused this user: no speculative start for a while. */
  refused(uid: string, now: number): void {
    const known = this.users.get(uid);
    if (known) known.quietUntil = now + this.options.coolDownMs;
  }

  private remember(requestId: string): void {
    this.requestIds.add(requestId);
    if (this.requestIds.size > this.options.maxUsers) this.requestIds.delete(this.requestIds.values().next().value!);
  }
}
