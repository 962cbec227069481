import { describe, expect, it } from "vitest";
import { ExecutionError } from "../../src/core/errors.js";
import { chunkWriter, errorResponse } from "../../src/core/openai-wire.js";

describe("chunkWriter", () => {
  it("writes the same JSON as serialising OpenAI's chunk objects", () => {
    const w = chunkWriter("e1", "m", 7);
    const head = { id: "chatcmpl-e1", object: "chat.completion.chunk", created: 7, model: "m" };
    const parse = (event: string) => JSON.parse(event.slice("data: ".length));
    expect(parse(w.delta('say "hi"\n'))).toEqual({ ...head, choices: [{ index: 0, delta: { content: 'say "hi"\n' }, finish_reason: null }] });
    expect(parse(w.finish("length"))).toEqual({ ...head, choices: [{ index: 0, delta: {}, finish_reason: "length" }] });
    expect(w.delta("x").endsWith("}\n\n")).toBe(true);
    expect(w.delta("a\nb").split("\n").length).toBe(3); // one data line, then the blank line
  });
});

describe("errorResponse", () => {
  it("uses the category's status and API.md's body", () => {
    const error = new ExecutionError("provider_rate_limited", undefined, { retryAfterMs: 2500 });
    error.executionId = "e9";
    expect(errorResponse(error)).toEqual({
      status: 503,
      retryAfterMs: 2500,
      body: {
        error: {
          message: "The model provider is rate limiting us; retry later.",
          type: "provider_rate_limited",
          code: "unavailable",
          param: null,
          retryable: true,
          retry_after_ms: 2500,
          execution_id: "e9",
        },
      },
    });
    expect(errorResponse(new Error("boom at /srv/x.js:1")).body.error.message).toBe("Internal error.");
  });
});
