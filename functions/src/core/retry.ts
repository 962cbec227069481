import pRetry from "p-retry";
import { classifyError, type ExecutionError } from "./errors.js";
import { sleep } from "./timeout.js";

export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxRetries: 3, baseDelayMs: 500, maxDelayMs: 8_000 };

export interface RetryOptions {
  policy: RetryPolicy;
  signal: AbortSignal;
  /** Epoch ms after which nothing may be waited for; a wait that would pass it gives up at once. */
  deadline: number;
  now?: () => number;
  random?: () => number;
  /** Checked after each failure: false once output has reached the client, when retrying would duplicate it. */
  canRetry?: () => boolean;
  onRetry?: (error: ExecutionError, attemptNumber: number, delayMs: number) => void;
}

/** "Full jitter": uniformly random in [0, min(cap, base·2^(n-1))], which spreads a herd of retrying clients best. */
export function backoffDelay(retryNumber: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retryNumber - 1));
  return Math.round(random() * ceiling);
}

/**
 * Runs `attempt` until it succeeds, a failure is not retryable, retries run out, or the
 * next wait would pass the deadline. p-retry counts and stops; the wait is ours, because
 * it must honour the provider's Retry-After and the deadline, which p-retry's own backoff cannot.
 * Whatever is thrown comes out as an ExecutionError.
 */
export async function retry<T>(attempt: (attemptNumber: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const now = options.now ?? Date.now;
  const allowed = (error: unknown) => (error as ExecutionError).retryable && (options.canRetry?.() ?? true);
  try {
    return await pRetry(
      async (attemptNumber) => {
        try {
          return await attempt(attemptNumber);
        } catch (error) {
          throw options.signal.aborted ? classifyError(options.signal.reason) : classifyError(error);
        }
      },
      {
        retries: options.policy.maxRetries,
        minTimeout: 0,
        maxTimeout: 0,
        signal: options.signal,
        shouldRetry: ({ error }) => allowed(error),
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (retriesLeft <= 0 || !allowed(error)) return;
          const failure = error as ExecutionError;
          const delay = failure.retryAfterMs ?? backoffDelay(attemptNumber, options.policy, options.random);
          // Waiting past the deadline would only end in a timeout: answer now with the real cause.
          if (now() + delay >= options.deadline) throw failure;
          options.onRetry?.(failure, attemptNumber, delay);
          await sleep(delay, options.signal);
        },
      },
    );
  } catch (error) {
    throw options.signal.aborted ? classifyError(options.signal.reason) : classifyError(error);
  }
}
