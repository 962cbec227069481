import { afterEach, describe, expect, it, vi } from "vitest";
import { cloudLogger } from "../../src/adapters/logger.js";

describe("cloudLogger", () => {
  afterEach(() => vi.restoreAllMocks());

  const lines = (stream: NodeJS.WriteStream) => {
    const written: string[] = [];
    vi.spyOn(stream, "write").mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    return written;
  };

  it("writes one JSON line with severity and message, warnings to stderr", () => {
    const out = lines(process.stdout);
    const err = lines(process.stderr);
    cloudLogger.info("execution.finished", { executionId: "e1" });
    cloudLogger.warn("execution.retry", { attemptNumber: 2 });
    expect(out.map((l) => JSON.parse(l))).toEqual([{ executionId: "e1", severity: "INFO", message: "execution.finished" }]);
    expect(err.map((l) => JSON.parse(l))).toEqual([{ attemptNumber: 2, severity: "WARNING", message: "execution.retry" }]);
  });

  it("never throws on a field JSON cannot write: the entry is kept with a note in its place", () => {
    const err = lines(process.stderr);
    const cause: Record<string, unknown> = { name: "loop" };
    cause.self = cause;
    expect(() => cloudLogger.error("execution.unsettled", { executionId: "e2", cause, tokens: 12n })).not.toThrow();
    expect(JSON.parse(err[0]!)).toEqual({ executionId: "e2", cause: { name: "loop", self: "[circular]" }, tokens: "12", severity: "ERROR", message: "execution.unsettled" });
  });
});
