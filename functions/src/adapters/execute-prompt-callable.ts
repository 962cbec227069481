import type { CallableRequest, CallableResponse } from "firebase-functions/https";
import { ExecutionError } from "../core/errors.js";
import type { ExecutionResult } from "../core/execution.js";
import { executePrompt, type PipelineDeps } from "../core/pipeline/index.js";
import { toHttpsError } from "./https-error.js";
import type { CancelChannel } from "./cancellation.js";
import { INSTANCE_ID, trackExecution } from "./in-flight.js";

/** What `.stream()` clients receive before the result (API.md). */
export type ExecuteChunk =
  | { type: "start"; executionId: string; model: string }
  | { type: "delta"; text: string }
  | { type: "tool_call"; index: number; id?: string; name?: string; argumentsDelta: string };

export interface CallableOptions {
  deps: () => PipelineDeps;
  enforceAppCheck: () => boolean;
  /** How cancelExecution reaches this instance; absent where nothing can cancel (benchmarks). */
  cancels?: () => CancelChannel;
}

/** Caller identity and App Check, shared by every callable. */
export function requireCaller(request: CallableRequest<unknown>, enforceAppCheck: boolean): string {
  // A non-empty uid, not just an auth object: anything less must never name a user's documents.
  const uid = request.auth?.uid;
  if (typeof uid !== "string" || uid === "" || uid.includes("/")) throw new ExecutionError("unauthenticated");
  if (enforceAppCheck && !request.app) throw new ExecutionError("permission_denied", "A valid App Check token is required.");
  // Set only with replay protection on (APP_CHECK_REPLAY_PROTECTION): a limited-use token seen before.
  if (request.app?.alreadyConsumed === true) {
    throw new ExecutionError("permission_denied", "This App Check token was already used; limited-use tokens are good for one call.");
  }
  return uid;
}

const ignore = () => {};

/** The `executePrompt` callable: auth, then the pipeline, with deltas as stream chunks when the client streams. */
export function createExecutePromptHandler(options: CallableOptions) {
  return async (request: CallableRequest<unknown>, response?: CallableResponse<ExecuteChunk>): Promise<ExecutionResult> => {
    try {
      const uid = requireCaller(request, options.enforceAppCheck());
      const stream = request.acceptsStreaming && response ? response : undefined;
      return await trackExecution(uid, response?.signal, ({ signal, admitted }) =>
        executePrompt(options.deps(), request.data, {
          uid,
          signal,
          instance: INSTANCE_ID,
          onAdmitted: (executionId, run) => {
            admitted(executionId, run);
            options.cancels?.().listen();
          },
          ...(stream
            ? {
                // Not awaited: a slow client must not slow the upstream read; writes stay ordered.
                onStart: ({ executionId, model }) => void stream.sendChunk({ type: "start", executionId, model }).catch(ignore),
                onDelta: (text) => void stream.sendChunk({ type: "delta", text }).catch(ignore),
                onToolCall: (delta) => void stream.sendChunk({ type: "tool_call", ...delta }).catch(ignore),
              }
            : {}),
        }),
      );
    } catch (error) {
      throw toHttpsError(error);
    }
  };
}
