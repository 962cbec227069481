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
/**
 * By `uid/executionId`: an id derived from a requestId is only unique per user. `run` is when
 * that run was admitted (the record's `createdAt`): a rerun of a requestId has the same id.
 */
const byExecution = new Map<string, { controller: AbortController; run: number | undefined }>();
/**
 * Cancels delivered to this instance (the one named on the running record) before their run was
 * registered here: a race of milliseconds between the admission commit and the listener. Keyed
 * by run, so that they can only stop the run they were meant for; dropped when it ends.
 */
const early = new Map<string, number>();
const EARLY_CANCEL_MS = 60_000;
const key = (uid: string, executionId: string) => `${uid}/${executionId}`;
const runKey = (uid: string, executionId: string, run: number) => `${key(uid, executionId)}@${run}`;
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

/**
 * Takes SIGTERM over from whoever listened before us, and hands it back after the drain. On
 * Cloud Run the functions framework's `main` listens from startup, and its handler ends the
 * process at once (`process.exit()`, invoker.ts `ErrorHandler.register`): measured, it would
 * kill every execution in flight (functions/test/adapters/in-flight.emu.test.ts). So its
 * handlers run once ours has drained; with nobody else listening, we end as SIGTERM would have.
 */
function installShutdown(): void {
  const before = process.listeners("SIGTERM");
  for (const listener of before) process.removeListener("SIGTERM", listener);
  process.once("SIGTERM", () => {
    void drain().then(() => {
      if (before.length > 0) for (const listener of before) listener("SIGTERM");
      else if (process.listenerCount("SIGTERM") === 0) process.kill(process.pid, "SIGTERM");
    });
  });
}

/**
 * Stops an execution running on this instance; false when none runs here under that id (or
 * not that run of it, when `run` is given). Records nothing: an instance that merely asks
 * (cancelExecution runs on any instance) must not leave a cancel behind for a later rerun.
 */
export function abortLocal(uid: string, executionId: string, run?: number, reason: ExecutionError = cancelledByRequest()): boolean {
  const entry = byExecution.get(key(uid, executionId));
  if (!entry || (run !== undefined && entry.run !== undefined && entry.run !== run)) return false;
  entry.controller.abort(reason);
  return true;
}

/**
 * A cancel delivered to this instance, the one its running record names: stops the run, or,
 * when that run is not registered here yet, stops it the moment it is (for a minute at most).
 */
export function deliverCancel(uid: string, executionId: string, run: number | undefined): void {
  if (abortLocal(uid, executionId, run) || run === undefined) return;
  const now = Date.now();
  for (const [k, at] of early) if (at < now - EARLY_CANCEL_MS) early.delete(k);
  early.set(runKey(uid, executionId, run), now);
}

export interface Tracked {
  signal: AbortSignal;
  /** Call once the executionId is known (admission), with the run's admission time: from then on a cancel can reach it. */
  admitted(executionId: string, run?: number): void;
}

/** Runs `work` for `uid` with a signal that SIGTERM, a cancel and the client's `signal` abort. */
export async function trackExecution<T>(uid: string, signal: AbortSignal | undefined, work: (tracked: Tracked) => Promise<T>): Promise<T> {
  if (!installed) {
    installed = true;
    installShutdown();
  }
  const controller = new AbortController();
  const onClientGone = () => controller.abort(new ExecutionError("cancelled", "The client went away."));
  if (signal?.aborted) onClientGone();
  else signal?.addEventListener("abort", onClientGone, { once: true });
  let registered: string | undefined;
  let registeredRun: string | undefined;
  const promise = work({
    signal: controller.signal,
    admitted: (executionId, run) => {
      registered = key(uid, executionId);
      byExecution.set(registered, { controller, run });
      if (run === undefined) return;
      registeredRun = runKey(uid, executionId, run);
      if (early.delete(registeredRun)) controller.abort(cancelledByRequest());
    },
  });
  running.set(controller, promise);
  try {
    return await promise;
  } finally {
    running.delete(controller);
    if (registered !== undefined && byExecution.get(registered)?.controller === controller) byExecution.delete(registered);
    if (registeredRun !== undefined) early.delete(registeredRun);
    signal?.removeEventListener("abort", onClientGone);
  }
}
