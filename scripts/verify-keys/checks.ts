export { liveCheck, type KeyStatus, type LiveOutcome, type ProviderToCheck } from "../../functions/src/core/provider-check.js";

const PLACEHOLDER = /^(?:sk-(?:or-v1-)?)?(?:x+|\.+|\*+|your[-_ ]?(?:api[-_ ]?)?key.*|api[-_ ]?key|changeme|change[-_ ]?me|replace[-_ ]?me|todo|placeholder|dummy|fake|test|none|null|<.*>|\$\{.*\}|\.\.\.)$/i;

/** Why a key cannot be right without asking anyone, or undefined when it may be. */
export function offlineProblem(value: string, pattern?: string): string | undefined {
  if (/["'`]/.test(value)) return "contains quote characters";
  if (/\s/.test(value)) return "contains whitespace";
  if (PLACEHOLDER.test(value)) return "is a placeholder";
  if (pattern && !new RegExp(pattern).test(value)) return "does not look like this provider's keys";
  return undefined;
}

/** `sk-…abcd`: never more than the first 3 and the last 4 characters, and nothing of short keys. */
export function maskKey(value: string): string {
  return value.length >= 16 ? `${value.slice(0, 3)}…${value.slice(-4)}` : "…";
}

