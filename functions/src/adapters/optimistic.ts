/**
 * Optimistic concurrency on Firestore: read, decide, then commit with a precondition on what
 * was read (`lastUpdateTime`, or `create` for a document that was absent). Another writer that
 * got there first makes the commit fail, and the round is simply run again on a fresh read.
 * Cheaper than a transaction under contention (no locks, no ≥ 1 s backoff: docs/benchmarks.md).
 */

/** Rounds of read-then-commit before giving up; a burst of one user's requests settles well within this. */
export const OPTIMISTIC_ATTEMPTS = 50;

/** gRPC codes of a commit whose precondition another writer invalidated: FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED. */
export function lostRace(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 9 || code === 6 || code === 10;
}

/** Thrown inside a round when what it read is known to be incomplete: read again at once, with no wait. */
export class ReadAgain extends Error {
  readonly code = 10;
}

/**
 * Runs `round` (read, decide, commit with preconditions) until a commit goes through, reading
 * again after a few jittered milliseconds whenever another writer got there first.
 */
export async function untilCommitted<T>(round: () => Promise<T>, attempts = OPTIMISTIC_ATTEMPTS): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await round();
    } catch (error) {
      if (!lostRace(error) || attempt >= attempts) throw error;
      if (!(error instanceof ReadAgain)) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));
    }
  }
}
