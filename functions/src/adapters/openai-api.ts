import type { Response } from "express";
import type { Request } from "firebase-functions/https";
import { ExecutionError } from "../core/errors.js";
import { inOpenAITerms, parseChatCompletionRequest, toExecuteRequest } from "../core/openai-request.js";
import { chatCompletion, chunkWriter, errorResponse, SSE_DONE, sseEvent } from "../core/openai-wire.js";
import { executePrompt, type PipelineDeps } from "../core/pipeline/index.js";
import { sendError } from "./api-responses.js";
import { cancelExecution, type CancelChannel, type CancelDeps } from "./cancellation.js";
import { cancelRequestSchema, parseOrThrow } from "../core/request.js";
import { INSTANCE_ID, trackExecution } from "./in-flight.js";

/** Larger bodies are refused before parsing; the request limits (docs/api.md: 10 MiB with data URLs) fit inside. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface OpenAIApiOptions {
  deps: () => PipelineDeps;
  enforceAppCheck: () => boolean;
  verifyBearer: (authorization: string | undefined) => Promise<{ uid: string }>;
  verifyAppCheck: (token: string | undefined, consume?: boolean) => Promise<boolean>;
  /** Spend App Check tokens (replay protection); off when absent. */
  consumeAppCheck?: () => boolean;
  /** How cancelExecution reaches this instance; absent where nothing can cancel (benchmarks). */
  cancels?: () => CancelChannel;
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
  // Without a Content-Type no parser reads the body: say so, rather than that it is empty.
  const hasBody = length > 0 || req.headers["transfer-encoding"] !== undefined;
  if (raw === undefined && hasBody && !req.headers["content-type"]) {
    throw new ExecutionError("validation", "The request has a body but no Content-Type header; send it with Content-Type: application/json.");
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
    const uid = await authenticate(req, options);
    const request = parseChatCompletionRequest(body);
    const input = toExecuteRequest(request, {
      ...(req.header("idempotency-key") !== undefined ? { idempotencyKey: req.header("idempotency-key")! } : {}),
      ...(req.header("x-timeout-ms") !== undefined ? { timeoutMs: req.header("x-timeout-ms")! } : {}),
      ...(req.header("x-conversation-id") !== undefined ? { conversationId: req.header("x-conversation-id")! } : {}),
    });
    streaming = request.stream === true;
    const created = Math.floor(Date.now() / 1000);
    const signal = clientGone(res);
    const cancellable = (admitted: (executionId: string, run?: number) => void) => (executionId: string, run?: number) => {
      admitted(executionId, run);
      options.cancels?.().listen();
    };

    if (!streaming) {
      const result = await trackExecution(uid, signal, ({ signal: s, admitted }) =>
        executePrompt(options.deps(), input, { uid, signal: s, instance: INSTANCE_ID, onAdmitted: cancellable(admitted) }),
      );
      res.set("x-execution-id", result.executionId).status(200).json(chatCompletion(result, created));
      return;
    }

    let writer: ReturnType<typeof chunkWriter> | undefined;
    const result = await trackExecution(uid, signal, ({ signal: s, admitted }) =>
      executePrompt(options.deps(), input, {
        uid,
        signal: s,
        instance: INSTANCE_ID,
        onAdmitted: (executionId, run) => {
          cancellable(admitted)(executionId, run);
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
        onToolCall: (delta) => writeCoalesced(res, writer!.toolCall(delta)),
      }),
    );
    writer ??= chunkWriter(result.executionId, result.model, created);
    res.write(writer.finish(result.finishReason));
    if (request.stream_options?.include_usage) res.write(writer.usage(result.usage));
    res.end(SSE_DONE);
  } catch (thrown) {
    if (res.writableEnded || res.destroyed) return;
    const error = namedAsOpenAI(thrown);
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

/** A validation error from the pipeline, naming the field as OpenAI's request does. */
function namedAsOpenAI(error: unknown): unknown {
  if (!(error instanceof ExecutionError) || error.category !== "validation") return error;
  const message = inOpenAITerms(error.message);
  if (message === error.message) return error;
  const renamed = new ExecutionError("validation", message, { cause: error });
  Object.assign(renamed, { executionId: error.executionId, model: error.model, provider: error.provider });
  return renamed;
}

/** Caller and App Check for every authenticated route of the `api` function. */
async function authenticate(
  req: Request,
  options: Pick<OpenAIApiOptions, "verifyBearer" | "verifyAppCheck" | "enforceAppCheck" | "consumeAppCheck">,
): Promise<string> {
  const { uid } = await options.verifyBearer(req.headers.authorization);
  const token = req.header("x-firebase-appcheck");
  const consume = options.consumeAppCheck?.() ?? false;
  // With replay protection on, a token that is sent is spent even when not enforced.
  if ((options.enforceAppCheck() || (consume && token)) && !(await options.verifyAppCheck(token, consume))) {
    throw new ExecutionError("permission_denied", "A valid, unused App Check token is required (X-Firebase-AppCheck).");
  }
  return uid;
}

/** `POST /v1/executions/{executionId}/cancel`: cancelExecution over HTTPS, answering `{ executionId, status }`. */
export async function cancelOverHttp(
  req: Request,
  res: Response,
  executionId: string,
  options: Pick<OpenAIApiOptions, "verifyBearer" | "verifyAppCheck" | "enforceAppCheck" | "consumeAppCheck"> & { cancelDeps: () => CancelDeps },
): Promise<void> {
  try {
    const uid = await authenticate(req, options);
    parseOrThrow(cancelRequestSchema, { executionId });
    res.status(200).json(await cancelExecution(options.cancelDeps(), uid, executionId));
  } catch (error) {
    sendError(res, error);
  }
}
