import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { callableWireProblem } from "../../src/adapters/callable-wire.js";

const INT64 = "type.googleapis.com/google.protobuf.Int64Value";
const UINT64 = "type.googleapis.com/google.protobuf.UInt64Value";

/**
 * The framework's own decoder (firebase-functions, common/providers/https.ts `decode`), loaded by
 * file path: the package's exports do not name it. What it does is what the guard must predict.
 */
const require = createRequire(import.meta.url);
const frameworkLib = require.resolve("firebase-functions").replace(/lib[/\\].*$/, "lib/");
const { decode: frameworkDecode } = require(`${frameworkLib}common/providers/https.js`) as { decode(data: unknown): unknown };
const { UNPATCHED_CONSOLE: frameworkConsole } = require(`${frameworkLib}logger/common.js`) as { UNPATCHED_CONSOLE: Record<string, unknown> };
const decodes = (data: unknown): boolean => {
  const error = frameworkConsole.error;
  frameworkConsole.error = () => {}; // it logs every refusal
  try {
    frameworkDecode(data);
    return true;
  } catch {
    return false;
  } finally {
    frameworkConsole.error = error;
  }
};

describe("callableWireProblem", () => {
  it("lets through what the framework decodes: plain JSON and well-formed 64-bit integers", () => {
    expect(callableWireProblem({ a: [1, "x", null, { b: true }], n: { "@type": INT64, value: "42" } })).toBeUndefined();
    expect(callableWireProblem(null)).toBeUndefined();
  });

  it.each([
    [{ timeoutMs: { "@type": INT64, value: "NaN" } }, 'timeoutMs: "NaN" is not a number'],
    [{ a: [{ "@type": "type.googleapis.com/google.protobuf.Struct" }] }, 'a[0]: a key "@type" cannot be sent to a callable function'],
    [{ "@type": 5 }, 'data: a key "@type" cannot be sent to a callable function: the callable protocol reserves it for encoded 64-bit numbers, and 5 is not one'],
  ])("names what the framework would choke on: %j", (data, message) => {
    expect(callableWireProblem(data)).toContain(message);
  });

  it("says what to do about a \"@type\" key (JSON-LD in a tool's JSON Schema): rename it, or use /v1", () => {
    const tools = [{ name: "person", parameters: { type: "object", properties: { "@type": { type: "string" }, name: { type: "string" } } } }];
    const problem = callableWireProblem({ tools });
    expect(problem).toContain('tools[0].parameters.properties: a key "@type" cannot be sent to a callable function');
    expect(problem).toContain("Rename the key, or send the request to POST /v1/chat/completions");
    expect(decodes({ tools })).toBe(false);
  });

  it("matches the framework's decoder exactly: refuses what it throws on, and nothing else", () => {
    const samples: unknown[] = [
      { "@type": 0 },
      { "@type": "" },
      { "@type": false },
      { "@type": null },
      { "@type": "x" },
      { "@type": true },
      { "@type": {} },
      { "@type": [] },
      { "@type": INT64, value: "Infinity" },
      { "@type": INT64, value: "12abc" },
      { "@type": INT64, value: 7 },
      { "@type": INT64 },
      { "@type": UINT64, value: "-1" },
      { "@type": UINT64, value: "" },
      { "@type": INT64, value: { n: 1 } },
      { "@type": INT64, value: ["3"] },
      [{ "@type": "x" }],
      { deep: { "@type": 0, value: "x" } },
    ];
    for (const sample of samples) expect([sample, callableWireProblem(sample) === undefined]).toEqual([sample, decodes(sample)]);
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
