import { ExecutionError } from "./errors.js";
import type { ModelTimeouts } from "./catalog.js";

/** A sleep that ends early, rejecting with the signal's reason, when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** An AbortController that also aborts when `parent` does, with the parent's reason. Dispose it to detach. */
export function childController(parent: AbortSignal): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, dispose: () => {} };
  }
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener("abort", onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener("abort", onAbort) };
}

/**
 * Guards one upstream attempt: aborts it with a `timeout` ExecutionError when the first
 * delta is late, when deltas stop for too long, or when the attempt's total time (already
 * capped by the execution's deadline) runs out. Every timer is cleared by `dispose()`.
 */
export class AttemptWatchdog {
  private firstToken?: NodeJS.Timeout;
  private idle?: NodeJS.Timeout;
  private total?: NodeJS.Timeout;
  private sawDelta = false;

  constructor(
    private readonly controller: AbortController,
    private readonly timeouts: ModelTimeouts,
  ) {}

  start(): void {
    this.total = setTimeout(() => this.fire("The model did not finish in time."), Math.max(0, this.timeouts.totalMs));
    this.firstToken = setTimeout(() => this.fire("The model did not start answering in time."), this.timeouts.firstTokenMs);
  }

  onDelta(): void {
    if (!this.sawDelta) {
      this.sawDelta = true;
      clearTimeout(this.firstToken);
    }
    // Re-arming one timer per delta costs far less than a Firestore write and keeps idle detection exact.
    if (this.idle) this.idle.refresh();
    else this.idle = setTimeout(() => this.fire("The model stopped answering mid-stream."), this.timeouts.idleMs);
  }

  dispose(): void {
    clearTimeout(this.firstToken);
    clearTimeout(this.idle);
    clearTimeout(this.total);
  }

  private fire(message: string): void {
    this.dispose();
    this.controller.abort(new ExecutionError("timeout", message));
  }
}
