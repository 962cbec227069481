import { ExecutionError } from "../core/errors.js";

/**
 * Executions running on this instance. On SIGTERM (Cloud Run gives ~10 s before SIGKILL)
 * each is aborted so that the pipeline writes its final record, the instance waits for
 * those writes, then lets the signal take its default course.
 */
const running = new Map<AbortController, Promise<unknown>>();
let installed = false;
const DRAIN_MS = 8_000;

export function shutdownError(): ExecutionError {
  return new ExecutionError("cancelled", "The server instance shut down before the execution finished; retry the request.", {
    retryable: true,
  });
}

async function drain(): Promise<void> {
  for (const controller of running.keys()) controller.abort(shutdownError());
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(running.values()),
    new Promise((resolve) => {
      timer = setTimeout(resolve, DRAIN_MS);
    }),
  ]);
  clearTimeout(timer);
}

function onSigterm(): void {
  void drain().then(() => {
    // Someone else (the functions framework) may own shutdown; if not, end as SIGTERM would have.
    if (process.listenerCount("SIGTERM") === 0) process.kill(process.pid, "SIGTERM");
  });
}

/** Runs `work` with a controller that SIGTERM aborts; the controller also follows `signal` (the client). */
export async function trackExecution<T>(signal: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (!installed) {
    installed = true;
    process.once("SIGTERM", onSigterm);
  }
  const controller = new AbortController();
  const onClientGone = () => controller.abort(new ExecutionError("cancelled", "The client went away."));
  if (signal?.aborted) onClientGone();
  else signal?.addEventListener("abort", onClientGone, { once: true });
  const promise = work(controller.signal);
  running.set(controller, promise);
  try {
    return await promise;
  } finally {
    running.delete(controller);
    signal?.removeEventListener("abort", onClientGone);
  }
}
