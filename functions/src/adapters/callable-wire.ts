import type { Request } from "firebase-functions/https";
import type { Response } from "express";
import { MAX_INPUT_DEPTH } from "../core/safe-input.js";

/**
 * The callable protocol encodes 64-bit integers as `{ "@type": ".../Int64Value", value }`,
 * and firebase-functions decodes `data` before any code of ours runs: an unknown `@type`, a
 * value that is not a number, or nesting deep enough to overflow its recursion is a 500
 * from inside the framework (firebase/firebase-functions, common/providers/https.ts
 * `decode`, firebase/firebase-functions#331), and a `__proto__` key is turned into a
 * prototype. This guard answers those as the protocol's INVALID_ARGUMENT, with our details,
 * before the framework decodes anything (docs/errors.md, "Before our code runs").
 */
const NUMBER_TYPES = new Set(["type.googleapis.com/google.protobuf.Int64Value", "type.googleapis.com/google.protobuf.UInt64Value"]);

function child(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

/**
 * What the framework's decoder would choke on or silently change, named by field; undefined
 * when it decodes `data` as it is.
 */
export function callableWireProblem(data: unknown, path = "", depth = 0): string | undefined {
  if (data === null || typeof data !== "object") return undefined;
  const where = path || "data";
  if (depth >= MAX_INPUT_DEPTH) return `${where}: nested more than ${MAX_INPUT_DEPTH} levels deep`;
  // The decoder's own condition, exactly: `if (data["@type"])` (so {"@type": 0} or "" decode as
  // plain objects), then `isNaN(parseFloat(data.value))` for the two number types.
  const { "@type": type, value: encoded } = data as { "@type"?: unknown; value?: unknown };
  if (type) {
    if (typeof type !== "string" || !NUMBER_TYPES.has(type)) {
      return (
        `${where}: a key "@type" cannot be sent to a callable function: the callable protocol reserves it for encoded 64-bit numbers, ` +
        `and ${JSON.stringify(type)} is not one (any "@type" other than "", 0, false or null is read so). Rename the key, ` +
        "or send the request to POST /v1/chat/completions, which takes any JSON"
      );
    }
    if (Number.isNaN(Number.parseFloat(encoded as string))) return `${where}: ${JSON.stringify(encoded)} is not a number`;
    return undefined;
  }
  // The decoder copies keys with `obj[k] = …`: a "__proto__" key would become the object's
  // prototype (an object or null) or vanish (anything else), so it never reaches our checks as a key.
  if (Object.hasOwn(data, "__proto__")) return `${child(path, "__proto__")}: a "__proto__" key is not allowed`;
  const entries: [string | number, unknown][] = Array.isArray(data) ? data.map((v, i) => [i, v]) : Object.entries(data);
  for (const [key, value] of entries) {
    const problem = callableWireProblem(value, child(path, key), depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

type Handler = (req: Request, res: Response) => unknown;

/**
 * Wraps a function made by `onCall`, keeping what the platform reads from it (its endpoint
 * metadata); requests whose `data` the framework cannot decode are answered here.
 */
export function guardCallableWire<F extends Handler>(callable: F): F {
  const guarded = (req: Request, res: Response) => {
    const body = req.body as { data?: unknown } | undefined;
    const problem = req.method === "POST" && body && typeof body === "object" ? callableWireProblem(body.data) : undefined;
    if (!problem) return callable(req, res);
    const origin = req.headers.origin;
    if (typeof origin === "string") res.set("access-control-allow-origin", origin).vary("origin");
    res.status(400).json({ error: { status: "INVALID_ARGUMENT", message: problem, details: { category: "validation", retryable: false } } });
    return undefined;
  };
  // Everything the platform and the CLI read (__endpoint, __trigger, run, stream), getters included.
  const { length: _length, name: _name, prototype: _prototype, ...metadata } = Object.getOwnPropertyDescriptors(callable);
  return Object.defineProperties(guarded, metadata) as unknown as F;
}
