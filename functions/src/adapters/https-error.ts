import { HttpsError } from "firebase-functions/https";
import { classifyError, type ExecutionError } from "../core/errors.js";

/** The one place an ExecutionError becomes an HttpsError: code from the category, details per API.md. */
export function toHttpsError(error: unknown): HttpsError {
  const failure: ExecutionError = classifyError(error);
  const message = failure.category === "internal" ? "Internal error." : failure.message;
  return new HttpsError(failure.code, message, failure.toDetails());
}
