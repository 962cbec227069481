import type { Response } from "express";
import type { Request } from "firebase-functions/https";
import { ExecutionError } from "../core/errors.js";
import { parseChatCompletionRequest, toExecuteRequest } from "../core/openai-request.js";
import { chatCompletion, chunkWriter, errorResponse, SSE_DONE, sseEvent } from "../core/openai-wire.js";
import { executePrompt, type PipelineDeps } from "../core/pipeline.js";
import { sendError } from "./api-responses.js";
import { trackExecution } from "./in-flight.js";

/** Larger bodies are refused before parsing; the request limits (docs/api.md) fit well inside. */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;

export interface OpenAIApiOptions {
  deps: () => PipelineDeps;
  enforceAppCheck: () => boolean;
  verifyBearer: (authorization: string | undefined) => Promise<{ uid: string }>;
  verifyAppCheck: (token: string | undefined) => Promise<boolean>;
}

/**
 * The body as the platform left it: parsed JSON for `application/json`, a Buffer or a
 * string otherwise. (Malformed JSON declared as `application/json` never reaches us: the
 * Cloud Functions framework answers 400 itself, see docs/api.md.)
 */
function bodyOf(req: Request): unknown {
  const raw = req.rawBody as Buffer | undefined;
  const length = raw?.length ?? Number(req.headers["content-length"] ?? 0);
  if (length > MAX_BODY_BYTES) {
    throw Object.assign(new ExecutionError("validation", `The request body is larger than ${MAX_BODY_BYTES} bytes.`), { status: 413 });
  }
  if (req.is("application/json") && req.body !== null && typeof req.body === "object" && !Buffer.isBuffer(req.body)) {
    return req.body;
  }
  // Other content types arrive as a Buffer, a string or url-encoded fields: read the bytes as JSON.
  return parseJson(raw?.toString("utf8") ?? (typeof req.body === "string" ? req.body : ""));
}

function parseJson(text: string): unknown {
  if (text.trim() === "") throw new ExecutionError("validation", "The request body is empty; send a JSON object.");
  try {
    return JSON.parse(text);
  } catch {
    throw new ExecutionError("validation", "The request body is not valid JSON.");
  }
}

/**
 * Writes an SSE event, coalescing the events of one event-loop turn into one socket write:
 * an upstream read often carries several deltas, and a syscall each would cost more than
 * the wait (none: the flush is queued right behind the current callback).
 */
function writeCoalesced(res: Response, event: string): void {
  if (res.writableCorked === 0) {
    res.cork();
    process.nextTick(() => res.uncork());
  }
  res.write(event);
}

/** Aborts when the client closes the connection before the response is finished. */
function clientGone(res: Response): AbortSignal {
  const controller = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) controller.abort(new ExecutionError("cancelled", "The client went away."));
  });
  return controller.signal;
}

/** `POST /v1/chat/completions`: OpenAI's protocol over the same pipeline, limits and history as `executePrompt`. */
export async function chatCompletions(req: Request, res: Response, options: OpenAIApiOptions): Promise<void> {
  let streaming = false;
  let headersSent = false;
  try {
    const body = bodyOf(req);
    const { uid } = await options.verifyBearer(req.headers.authorization);
    if (options.enforceAppCheck() && !(await options.verifyAppCheck(req.header("x-firebase-appcheck")))) {
      throw new ExecutionError("permission_denied", "A valid App Check token is required (X-Firebase-AppCheck).");
    }
    const request = parseChatCompletionRequest(body);
    const input = toExecuteRequest(request, {
      ...(req.header("idempotency-key") !== undefined ? { idempotencyKey: req.header("idempotency-key")! } : {}),
      ...(req.header("x-timeout-ms") !== undefined ? { timeoutMs: req.header("x-timeout-ms")! } : {}),
    });
    streaming = request.stream === true;
    const created = Math.floor(Date.now() / 1000);
    const signal = clientGone(res);

    if (!streaming) {
      const result = await trackExecution(signal, (s) => executePrompt(options.deps(), input, { uid, signal: s }));
      res.set("x-execution-id", result.executionId).status(200).json(chatCompletion(result, created));
      return;
    }

    let writer: ReturnType<typeof chunkWriter> | undefined;
    const result = await trackExecution(signal, (s) =>
      executePrompt(options.deps(), input, {
        uid,
        signal: s,
        onAdmitted: (executionId) => {
          res.writeHead(200, {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache, no-transform",
            "x-accel-buffering": "no",
            "x-execution-id": executionId,
          });
          res.flushHeaders();
          headersSent = true;
        },
        onStart: ({ executionId, model }) => {
          writer = chunkWriter(executionId, model, created);
          writeCoalesced(res, writer.role());
        },
        onDelta: (text) => writeCoalesced(res, writer!.delta(text)),
      }),
    );
    writer ??= chunkWriter(result.executionId, result.model, created);
    res.write(writer.finish(result.finishReason));
    if (request.stream_options?.include_usage) res.write(writer.usage(result.usage));
    res.end(SSE_DONE);
  } catch (error) {
    if (res.writableEnded || res.destroyed) return;
    if (streaming && headersSent) {
      // The status line is gone: the error travels as one event, then the stream closes.
      res.end(sseEvent(errorResponse(error).body));
      return;
    }
    const status = (error as { status?: unknown }).status;
    if (status === 413) {
      res.status(413).json(errorResponse(error).body);
      return;
    }
    sendError(res, error);
  }
}
