import { defineBoolean, defineInt, defineSecret, defineString } from "firebase-functions/params";
import { PROVIDER_SECRET_NAMES } from "./catalog.js";

/**
 * Deploy-time configuration. Values are read with `.value()` inside handlers only,
 * never at import, so the deploy-time discovery and cold starts stay cheap. Set them in
 * `functions/.env` (all projects), `functions/.env.<project>`, or at the deploy prompt.
 */
export const providerSecrets = PROVIDER_SECRET_NAMES.map((name) => defineSecret(name));

export const defaultModel = defineString("DEFAULT_MODEL", {
  default: "",
  description: "Model used when a request names none; empty = first model of the first configured provider.",
});
export const defaultFallbackModels = defineString("DEFAULT_FALLBACK_MODELS", {
  default: "",
  description: "Comma-separated models tried after a request's own fallbackModels.",
});
export const maxRequestTimeoutMs = defineInt("MAX_REQUEST_TIMEOUT_MS", {
  default: 240_000,
  description: "Server maximum for one execution, all retries and fallbacks included.",
});
export const retryMaxRetries = defineInt("RETRY_MAX_RETRIES", { default: 3 });
export const retryBaseDelayMs = defineInt("RETRY_BASE_DELAY_MS", { default: 500 });
export const retryMaxDelayMs = defineInt("RETRY_MAX_DELAY_MS", { default: 8_000 });
export const enforceAppCheck = defineBoolean("ENFORCE_APP_CHECK", {
  default: false,
  description: "Reject calls without a valid App Check token (callables and the api function).",
});
export const logPrompts = defineBoolean("LOG_PROMPTS", {
  default: false,
  description: "Include prompt and output text in logs. Leave off in production.",
});
export const historyTtlDays = defineInt("HISTORY_TTL_DAYS", {
  default: 90,
  description: "Days before an execution record's expireAt (Firestore TTL deletes it after that).",
});
