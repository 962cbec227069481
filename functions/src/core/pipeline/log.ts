import { truncate } from "../truncate.js";

/** A cause for logs: class and message only, trimmed, with anything key-shaped masked. */
export function describeCause(cause: unknown): string {
  const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return truncate(redactSecrets(text), 500);
}

export function redactSecrets(text: string): string {
  return text.replace(/\b(sk-[A-Za-z0-9_-]{2})[A-Za-z0-9_-]{8,}/g, "$1…").replace(/\bAIza[0-9A-Za-z_-]{10,}/g, "AIza…");
}
