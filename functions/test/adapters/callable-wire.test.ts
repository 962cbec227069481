import { describe, expect, it } from "vitest";
import { callableWireProblem } from "../../src/adapters/callable-wire.js";

const INT64 = "type.googleapis.com/google.protobuf.Int64Value";

describe("callableWireProblem", () => {
  it("lets through what the framework decodes: plain JSON and well-formed 64-bit integers", () => {
    expect(callableWireProblem({ a: [1, "x", null, { b: true }], n: { "@type": INT64, value: "42" } })).toBeUndefined();
    expect(callableWireProblem(null)).toBeUndefined();
  });

  it.each([
    [{ timeoutMs: { "@type": INT64, value: "NaN" } }, 'timeoutMs: "NaN" is not a number'],
    [{ a: [{ "@type": "type.googleapis.com/google.protobuf.Struct" }] }, "a[0]: unknown encoded type"],
    [{ "@type": 5 }, "data: unknown encoded type 5"],
  ])("names what the framework would choke on: %j", (data, message) => {
    expect(callableWireProblem(data)).toContain(message);
  });

  it.each([
    ['{"__proto__":null,"model":"m"}', '__proto__: a "__proto__" key is not allowed'],
    ['{"__proto__":"x"}', '__proto__: a "__proto__" key is not allowed'],
    ['{"params":{"__proto__":null}}', 'params.__proto__: a "__proto__" key is not allowed'],
    ['{"messages":[{"__proto__":{"role":"system"},"content":"hi"}]}', 'messages[0].__proto__: a "__proto__" key is not allowed'],
  ])("refuses a __proto__ key at any depth, whatever its value: %s", (json, message) => {
    // JSON.parse (express.json) keeps "__proto__" as an ordinary own key, as the guard sees the body.
    expect(callableWireProblem(JSON.parse(json))).toBe(message);
  });

  it("stops at 64 levels instead of recursing 100,000 deep", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(callableWireProblem(deep)).toContain("nested more than 64 levels deep");
  });
});
