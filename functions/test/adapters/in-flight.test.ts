import { describe, expect, it } from "vitest";
import { abortLocal, deliverCancel, trackExecution, type Tracked } from "../../src/adapters/in-flight.js";

/** Starts a tracked execution that runs until its signal aborts; `admit` registers it as the pipeline would. */
function start(uid: string, executionId: string, run: number) {
  let tracked!: Tracked;
  const done = trackExecution(uid, undefined, (t) => {
    tracked = t;
    return new Promise<string>((resolve) => {
      if (t.signal.aborted) resolve("aborted");
      t.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
    });
  });
  return { done, admit: () => tracked.admitted(executionId, run), signal: () => tracked.signal };
}

describe("in-flight cancels", () => {
  it("a cancel asked by an instance that does not run the execution leaves nothing behind for a later run", async () => {
    expect(abortLocal("u1", "rq_a", 1_000)).toBe(false);
    const rerun = start("u1", "rq_a", 2_000);
    rerun.admit();
    expect(rerun.signal().aborted).toBe(false);
    expect(abortLocal("u1", "rq_a", 2_000)).toBe(true);
    expect(await rerun.done).toBe("aborted");
  });

  it("a cancel delivered before its run registered stops that run when it does, and never another run", async () => {
    deliverCancel("u2", "rq_b", 1_000);
    const other = start("u2", "rq_b", 2_000);
    other.admit();
    expect(other.signal().aborted).toBe(false);
    expect(abortLocal("u2", "rq_b", 1_000)).toBe(false); // not the run running here
    expect(abortLocal("u2", "rq_b", 2_000)).toBe(true);
    await other.done;

    deliverCancel("u2", "rq_c", 3_000);
    const meant = start("u2", "rq_c", 3_000);
    meant.admit();
    expect(meant.signal().aborted).toBe(true);
    expect(await meant.done).toBe("aborted");
    // Consumed: the same run time again (impossible in practice) is not stopped a second time.
    const after = start("u2", "rq_c", 3_000);
    after.admit();
    expect(after.signal().aborted).toBe(false);
    abortLocal("u2", "rq_c");
    await after.done;
  });
});
