import type { Logger } from "../core/ports.js";

/**
 * Structured logs for Cloud Logging: one JSON line per entry, `severity` and `message` plus
 * the fields (they become `jsonPayload`), which is what the firebase-functions logger writes
 * too; written directly, because that logger's deep copy of every entry was measured as a
 * visible part of a request's CPU. Warnings and errors go to stderr, the rest to stdout.
 */
function write(severity: "INFO" | "WARNING" | "ERROR", message: string, fields: Record<string, unknown>): void {
  const line = `${JSON.stringify({ ...fields, severity, message })}\n`;
  if (severity === "INFO") process.stdout.write(line);
  else process.stderr.write(line);
}

export const cloudLogger: Logger = {
  info: (message, fields) => write("INFO", message, fields),
  warn: (message, fields) => write("WARNING", message, fields),
  error: (message, fields) => write("ERROR", message, fields),
};
