import { FunctionsError } from "firebase/functions";
import type { ErrorDetails } from "./api";

export interface ShownError extends ErrorDetails {
  message: string;
}

/** What the UI shows of a failure: the backend's category and retryable flag (docs/errors.md). */
export function describeError(error: unknown): ShownError {
  if (error instanceof FunctionsError) {
    const details = error.details as Partial<ErrorDetails> | undefined;
    return {
      category: details?.category ?? error.code.replace(/^functions\//, ""),
      retryable: details?.retryable ?? false,
      message: error.message,
      ...(details?.retryAfterMs !== undefined ? { retryAfterMs: details.retryAfterMs } : {}),
      ...(details?.executionId !== undefined ? { executionId: details.executionId } : {}),
    };
  }
  return { category: "client", retryable: false, message: error instanceof Error ? error.message : String(error) };
}
