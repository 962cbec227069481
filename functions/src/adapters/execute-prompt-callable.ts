import type { CallableRequest, CallableResponse } from "firebase-functions/https";
import type { ExecutionResult } from "../core/execution.js";
import { executePrompt, type PipelineDeps } from "../core/pipeline/index.js";
import { requireCaller } from "./caller.js";
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
