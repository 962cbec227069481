import { ExecutionError } from "./errors.js";

/**
 * Checks that apply to every value a client sends, whatever its schema, before any schema
 * sees it:
 * - no `__proto__` key and no object whose prototype is not a plain object's: a decoder
 *   that assigns `obj["__proto__"] = …` turns a key into a prototype, and a schema would then
 *   read "inherited" fields the client smuggled in;
 * - every string and key is well-formed UTF-16: a lone surrogate cannot be stored in
 *   Firestore (the commit fails) nor sent as UTF-8 to a provider without being altered;
 * - nesting is bounded, so that a hostile body cannot exhaust the stack.
 */
export const MAX_INPUT_DEPTH = 64;

function fail(path: string, message: string): never {
  throw new ExecutionError("validation", `${path}: ${message}`);
}

function child(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

/** Throws a `validation` ExecutionError naming the first offending field. */
export function checkSafeInput(value: unknown, path = ""): void {
  walk(value, path, 0);
}

function walk(value: unknown, path: string, depth: number): void {
  if (typeof value === "string") {
    if (!value.isWellFormed()) fail(path || "request", "contains an unpaired surrogate (ill-formed UTF-16)");
    return;
  }
  if (value === null || typeof value !== "object") return;
  if (depth >= MAX_INPUT_DEPTH) fail(path || "request", `nested more than ${MAX_INPUT_DEPTH} levels deep`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) walk(value[i], child(path, i), depth + 1);
    return;
  }
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) fail(path || "request", 'a "__proto__" key is not allowed');
  for (const key of Object.keys(value)) {
    if (key === "__proto__") fail(child(path, key), 'a "__proto__" key is not allowed');
    if (!key.isWellFormed()) fail(path || "request", "a key contains an unpaired surrogate (ill-formed UTF-16)");
    walk((value as Record<string, unknown>)[key], child(path, key), depth + 1);
  }
}
