import { randomBytes } from "node:crypto";
import { ExecutionError } from "../core/errors.js";

/**
 * Executions running on this instance: the one place that can stop them. Three things do:
 * - the client going away (the platform's signal, where it reports one: docs/api.md);
 * - `cancelExecution` from any instance (cancellation.ts delivers it here by executionId);
 * - SIGTERM: Cloud Run gives ~10 s before SIGKILL. Executions that finish within the grace
 *   period finish normally; what still runs near its end is aborted and recorded
 *   `cancelled` (retryable), the instance waits for those final writes, then exits.
 */
const running = new Map<AbortController, Promise<unknown>>();
/** By `uid/executionId`: an id derived from a requestId is only unique per user. */
const byExecution = new Map<string, AbortController>();
/** Cancels that arrived before their execution was registered here (a race of milliseconds). */
const early = new Map<string, number>();
const EARLY_CANCEL_MS = 60_000;
const key = (uid: string, executionId: string) => `${uid}/${executionId}`;
let installed = false;

/** Cloud Run's grace period between SIGTERM and SIGKILL. */
const GRACE_MS = 10_000;
/** Before the end of the grace period, what still runs is aborted, leaving this for final writes. */
const SETTLE_MARGIN_MS = 2_500;

/** This instance, as running records name it so that a cancel can find the instance to ask. */
export const INSTANCE_ID = randomBytes(9).toString("base64url");

export function shutdownError(): ExecutionError {
  return new ExecutionError("cancelled", "The server instance shut down before the execution finished; retry the request.", {
    retryable: true,
  });
}

export function cancelledByRequest(): ExecutionError {
  return new ExecutionError("cancelled", "The execution was cancelled (cancelExecution).");
}

/**
 * Lets running executions finish until `abortAfterMs`, aborts what is left, then waits for
 * their final writes until `giveUpAfterMs`. Exported for tests with shorter periods.
 */
export async function drain(abortAfterMs = GRACE_MS - SETTLE_MARGIN_MS, giveUpAfterMs = GRACE_MS - 500): Promise<void> {
  const all = () => Promise.allSettled([...running.values()]);
  const timers: NodeJS.Timeout[] = [];
  const after = (ms: number) => new Promise<void>((resolve) => timers.push(setTimeout(resolve, ms)));
  try {
    await Promise.race([all(), after(abortAfterMs)]);
    for (const controller of running.keys()) controller.abort(shutdownError());
    await Promise.race([all(), after(Math.max(0, giveUpAfterMs - abortAfterMs))]);
  } finally {
    for (const timer of timers) clearTimeout(timer);
  }
}

function onSigterm(): void {
  void drain().then(() => {
    // Someone else (the functions framework) may own shutdown; if not, end as SIGTERM would have.
    if (process.listenerCount("SIGTERM") === 0) process.kill(process.pid, "SIGTERM");
  });
}

/** Stops an execution running on this instance; false when none runs here under that id (yet). */
export function abortLocal(uid: string, executionId: string, reason: ExecutionError = cancelledByRequest()): boolean {
  const controller = byExecution.get(key(uid, executionId));
  if (!controller) {
    const now = Date.now();
    for (const [k, at] of early) if (at < now - EARLY_CANCEL_MS) early.delete(k);
    early.set(key(uid, executionId), now);
    return false;
  }
  controller.abort(reason);
  return true;
}

export interface Tracked {
  signal: AbortSignal;
  /** Call once the executionId is known (admission): from then on a cancel can reach it. */
  admitted(executionId: string): void;
}

/** Runs `work` for `uid` with a signal that SIGTERM, a cancel and the client's `signal` abort. */
export async function trackExecution<T>(uid: string, signal: AbortSignal | undefined, work: (tracked: Tracked) => Promise<T>): Promise<T> {
  if (!installed) {
    installed = true;
    process.once("SIGTERM", onSigterm);
  }
  const controller = new AbortController();
  const onClientGone = () => controller.abort(new ExecutionError("cancelled", "The client went away."));
  if (signal?.aborted) onClientGone();
  else signal?.addEventListener("abort", onClientGone, { once: true });
  let registered: string | undefined;
  const promise = work({
    signal: controller.signal,
    admitted: (executionId) => {
      registered = key(uid, executionId);
      byExecution.set(registered, controller);
      if (early.delete(registered)) controller.abort(cancelledByRequest());
    },
  });
  running.set(controller, promise);
  try {
    return await promise;
  } finally {
    running.delete(controller);
    if (registered !== undefined && byExecution.get(registered) === controller) byExecution.delete(registered);
    signal?.removeEventListener("abort", onClientGone);
  }
}
