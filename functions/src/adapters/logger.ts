import type { Logger } from "../core/ports.js";

/**
 * Structured logs for Cloud Logging: one JSON line per entry, `severity` and `message` plus
 * the fields (they become `jsonPayload`), which is what the firebase-functions logger writes
 * too; written directly, because that logger's deep copy of every entry was measured as a
 * visible part of a request's CPU. Warnings and errors go to stderr, the rest to stdout.
 */
function write(severity: "INFO" | "WARNING" | "ERROR", message: string, fields: Record<string, unknown>): void {
  const line = `${serialized({ ...fields, severity, message })}\n`;
  if (severity === "INFO") process.stdout.write(line);
  else process.stderr.write(line);
}

export const cloudLogger: Logger = {
  info: (message, fields) => write("INFO", message, fields),
  warn: (message, fields) => write("WARNING", message, fields),
  error: (message, fields) => write("ERROR", message, fields),
};

/**
 * A log call must never throw (it runs inside settlement): a field JSON cannot write (a
 * cycle, a BigInt) is replaced by a note rather than losing the entry.
 */
function serialized(entry: Record<string, unknown>): string {
  try {
    return JSON.stringify(entry);
  } catch {
    const seen = new WeakSet<object>();
    return JSON.stringify(entry, (_key, value: unknown) => {
      if (typeof value === "bigint") return value.toString();
      if (value !== null && typeof value === "object") {
        if (seen.has(value)) return "[circular]";
        seen.add(value);
      }
      return value;
    });
  }
}
