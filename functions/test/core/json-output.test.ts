import { describe, expect, it } from "vitest";
import { ExecutionError } from "../../src/core/errors.js";
import { parseJsonOutput, usesPatterns } from "../../src/core/json-output.js";
import type { ResponseFormat } from "../../src/core/messages.js";

const format = (schema: Record<string, unknown>): ResponseFormat => ({ type: "json_schema", name: "reply", schema });

async function rejection(promise: Promise<unknown>): Promise<ExecutionError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ExecutionError);
  return error as ExecutionError;
}

describe("parseJsonOutput", () => {
  const schema = { type: "object", properties: { code: { type: "string", pattern: "^[A-Z]{3}-\\d+$" } }, required: ["code"], additionalProperties: false };

  it("returns the parsed answer when it matches the schema, patterns included", async () => {
    expect(await parseJsonOutput('{"code":"ABC-12"}', format(schema))).toEqual({ code: "ABC-12" });
  });

  it("refuses an answer that breaks a pattern as invalid_output (retryable), naming where", async () => {
    const error = await rejection(parseJsonOutput('{"code":"abc"}', format(schema)));
    expect(error.category).toBe("invalid_output");
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('/code must match pattern "^[A-Z]{3}-\\d+$"');
  });

  it("refuses an answer that is not JSON, or not an object for json_object", async () => {
    expect((await rejection(parseJsonOutput("{not json", format(schema)))).category).toBe("invalid_output");
    expect((await rejection(parseJsonOutput("[1]", { type: "json_object" }))).message).toBe("The model's answer was JSON but not an object.");
  });

  it("stops a pattern that backtracks without end, and the thread stays free meanwhile", async () => {
    // ^(a+)+$ on 40 a's and a "!" takes hours with a backtracking engine.
    const evil = { type: "object", properties: { s: { type: "string", pattern: "^(a+)+$" } } };
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    try {
      const error = await rejection(parseJsonOutput(JSON.stringify({ s: `${"a".repeat(40)}!` }), format(evil)));
      expect(error.category).toBe("validation");
      expect(error.message).toContain("responseFormat.schema: checking the answer against its patterns took over");
      // Timers ran while the worker was stuck: the instance's own thread was never blocked.
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(ticker);
    }
  });

  it("a check that shares the worker with a runaway one still gets its answer", async () => {
    const evil = format({ type: "object", properties: { s: { type: "string", pattern: "^(a+)+$" } } });
    const [slow, fine] = await Promise.allSettled([parseJsonOutput(JSON.stringify({ s: `${"a".repeat(40)}!` }), evil), parseJsonOutput('{"code":"XYZ-9"}', format(schema))]);
    expect(slow.status).toBe("rejected");
    expect(fine).toEqual({ status: "fulfilled", value: { code: "XYZ-9" } });
  });
});

describe("usesPatterns", () => {
  it("finds pattern and patternProperties at any depth, and not a property named pattern", () => {
    expect(usesPatterns({ type: "object", properties: { a: { type: "array", items: { type: "string", pattern: "x" } } } })).toBe(true);
    expect(usesPatterns({ type: "object", patternProperties: { "^x": { type: "string" } } })).toBe(true);
    expect(usesPatterns({ anyOf: [{ type: "string" }, { type: "string", pattern: "y" }] })).toBe(true);
    expect(usesPatterns({ type: "object", properties: { pattern: { type: "string" } } })).toBe(false);
  });
});
