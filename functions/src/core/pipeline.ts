import type { Catalog, ProviderSpec, ResolvedModel } from "./catalog.js";
import { computeCost, type Cost } from "./cost.js";
import { canFallBack, classifyError, ExecutionError } from "./errors.js";
import { capOutput, finalStatus, runningExecution, type AttemptRecord, type Execution, type ExecutionResult } from "./execution.js";
import type { Clock, ExecutionStore, Logger, ModelClient, PromptStore } from "./ports.js";
import { systemClock } from "./ports.js";
import { executionIdFor, replayOf, requestFingerprint } from "./idempotency.js";
import { worstCaseMicros, type LimitSettings } from "./limits.js";
import type { AdmissionTicket } from "./ports.js";
import { executeRequestSchema, parseOrThrow, type ExecuteRequest, type GenerationParams } from "./request.js";
import { retry, type RetryPolicy } from "./retry.js";
import { renderTemplate, type ChatMessage } from "./templates.js";
import { AttemptWatchdog, childController } from "./timeout.js";
import { estimateUsage, normalizeUsage, type ProviderUsage, type Usage } from "./usage.js";

export interface PipelineSettings {
  /** Used when neither the request nor the saved prompt names a model. */
  defaultModel?: string;
  /** Tried after the request's own fallbackModels. */
  defaultFallbackModels: string[];
  /** Ceiling for one execution, retries and fallbacks included; the client's timeoutMs can only lower it. */
  maxTimeoutMs: number;
  retry: RetryPolicy;
  historyTtlDays: number;
  /** Put prompt and output text in logs (off in production). */
  logPrompts: boolean;
  limits: LimitSettings;
}

export interface PipelineDeps {
  catalog: Catalog;
  /** The client for a provider, or undefined when the provider has no key or URL here. */
  modelClient(provider: ProviderSpec): ModelClient | undefined;
  executions: ExecutionStore;
  prompts: PromptStore;
  /** Read per request, so that params are only evaluated at runtime. */
  settings(): PipelineSettings;
  newId(): string;
  logger: Logger;
  clock?: Clock;
  random?: () => number;
}

export interface ExecuteOptions {
  uid: string;
  /** Aborts the execution; its reason (an ExecutionError: cancelled, shutdown) becomes the outcome. */
  signal?: AbortSignal;
  /** Called once the request is admitted (or found to be a repeat), before the provider is called. */
  onAdmitted?(executionId: string): void;
  /**
   * Called once, right before the first delta. Nothing reaches the client before output
   * exists, so that a failure before the first token can still be retried or fall back.
   */
  onStart?(info: { executionId: string; model: string; provider: string }): void;
  onDelta?(text: string): void;
}

interface Plan {
  request: ExecuteRequest;
  messages: ChatMessage[];
  params: GenerationParams;
  candidates: ResolvedModel[];
  settings: PipelineSettings;
  timeLimitMs: number;
}

const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: 0, estimated: false };

/** Validates the request and decides what to call, before anything is recorded. Throws client-facing errors. */
async function plan(deps: PipelineDeps, input: unknown, uid: string): Promise<Plan> {
  const request = parseOrThrow(executeRequestSchema, input);
  const settings = deps.settings();
  let messages = request.messages ?? [];
  let templateModel: string | undefined;
  let params: GenerationParams = request.params ?? {};
  if (request.promptId !== undefined) {
    const template = await deps.prompts.get(uid, request.promptId);
    if (!template) throw new ExecutionError("not_found", `promptId: there is no saved prompt "${request.promptId}".`);
    messages = renderTemplate(template, request.variables);
    templateModel = template.model;
    params = { ...template.params, ...request.params };
  }

  const modelId = request.model ?? templateModel ?? settings.defaultModel;
  if (!modelId) throw new ExecutionError("provider_auth", "No model provider is configured on the server.");
  const primary = deps.catalog.resolve(modelId);
  if (!primary) throw new ExecutionError("not_found", `model: "${modelId}" is not in the catalog (GET /v1/models lists it).`);
  if (!deps.modelClient(primary.provider)) {
    throw new ExecutionError("provider_auth", `model: the server has no key for provider "${primary.provider.id}".`);
  }
  if (params.maxTokens !== undefined && params.maxTokens > primary.spec.maxOutputTokens) {
    throw new ExecutionError("validation", `params.maxTokens: at most ${primary.spec.maxOutputTokens} for model "${primary.id}".`);
  }

  const candidates = [primary];
  (request.fallbackModels ?? []).forEach((id, index) => {
    const model = deps.catalog.resolve(id);
    if (!model) throw new ExecutionError("not_found", `fallbackModels[${index}]: "${id}" is not in the catalog.`);
    if (deps.modelClient(model.provider) && !candidates.some((c) => c.id === model.id)) candidates.push(model);
  });
  for (const id of settings.defaultFallbackModels) {
    const model = deps.catalog.resolve(id);
    if (model && deps.modelClient(model.provider) && !candidates.some((c) => c.id === model.id)) candidates.push(model);
  }

  const timeLimitMs = Math.min(settings.maxTimeoutMs, request.timeoutMs ?? Number.POSITIVE_INFINITY);
  return { request, messages, params, candidates, settings, timeLimitMs };
}

/** Output parameters per model: maxTokens never above what the model can produce. */
function paramsFor(model: ResolvedModel, params: GenerationParams): GenerationParams {
  return params.maxTokens === undefined ? params : { ...params, maxTokens: Math.min(params.maxTokens, model.spec.maxOutputTokens) };
}

/**
 * Executes one prompt: plan, record `running`, call the model with retries, timeouts and
 * fallbacks (streaming deltas to the caller once the first one exists), then record the
 * final state, usage and cost. Every request that passes planning ends with exactly one
 * finished record, whatever fails; the thrown error is an ExecutionError carrying the
 * executionId.
 */
export async function executePrompt(deps: PipelineDeps, input: unknown, options: ExecuteOptions): Promise<ExecutionResult> {
  const clock = deps.clock ?? systemClock;
  const { request, messages, params, candidates, settings, timeLimitMs } = await plan(deps, input, options.uid);
  const startedAt = clock.now();
  const id = request.requestId ? executionIdFor(request.requestId) : deps.newId();
  const primary = candidates[0]!;
  const running = runningExecution({
    id,
    model: primary.id,
    provider: primary.provider.id,
    messages,
    createdAt: startedAt,
    ttlDays: settings.historyTtlDays,
    ...(request.requestId ? { requestId: request.requestId, requestFingerprint: requestFingerprint(request) } : {}),
    ...(request.promptId ? { promptId: request.promptId } : {}),
  });
  // The one awaited step before the provider: limits, reservation and the running record, atomically.
  const admission = await deps.executions
    .admit({
      uid: options.uid,
      execution: running,
      reserveMicros: worstCaseMicros(messages, candidates, params.maxTokens),
      expireAt: startedAt + timeLimitMs + settings.limits.reservationGraceMs,
      limits: settings.limits,
      now: startedAt,
    })
    .catch((error: unknown) => {
      if (error instanceof ExecutionError) throw error;
      deps.logger.error("execution.admission_failed", { executionId: id, uid: options.uid, cause: describeCause(error) });
      throw new ExecutionError("internal", undefined, { cause: error });
    });
  options.onAdmitted?.(id);
  if (admission.kind === "replay") return replay(admission.execution, options);
  const ticket: AdmissionTicket = admission.ticket;

  const execution = childController(options.signal ?? new AbortController().signal);
  const deadline = startedAt + timeLimitMs;
  const deadlineTimer = Number.isFinite(timeLimitMs)
    ? setTimeout(() => execution.controller.abort(new ExecutionError("timeout", "The request's time limit ran out.")), timeLimitMs)
    : undefined;

  const attempts: AttemptRecord[] = [];
  const parts: string[] = [];
  let committed = false;
  let answeredBy: ResolvedModel = primary;
  let finishReason: string | undefined;
  let rawUsage: ProviderUsage | undefined;
  let ttftMs: number | undefined;
  let failure: ExecutionError | undefined;

  const commit = (model: ResolvedModel) => {
    committed = true;
    answeredBy = model;
    ttftMs = clock.now() - startedAt;
    options.onStart?.({ executionId: id, model: model.id, provider: model.provider.id });
  };

  async function attempt(model: ResolvedModel, client: ModelClient): Promise<void> {
    const attemptStart = clock.now();
    const { controller, dispose } = childController(execution.controller.signal);
    const watchdog = new AttemptWatchdog(controller, {
      ...model.timeouts,
      totalMs: Math.min(model.timeouts.totalMs, deadline - attemptStart),
    });
    finishReason = undefined;
    rawUsage = undefined;
    watchdog.start();
    try {
      const stream = client.stream({ model, messages, params: paramsFor(model, params), signal: controller.signal });
      for await (const chunk of stream) {
        if (chunk.type === "delta") {
          if (chunk.text === "") continue;
          watchdog.onDelta();
          if (!committed) commit(model);
          parts.push(chunk.text);
          options.onDelta?.(chunk.text);
        } else if (chunk.type === "finish") {
          finishReason = chunk.reason;
        } else {
          rawUsage = chunk.usage;
        }
      }
      if (controller.signal.aborted) throw controller.signal.reason;
      if (finishReason === undefined) {
        throw new ExecutionError("provider_unavailable", "The model provider's stream ended before the answer was finished.");
      }
      attempts.push({ model: model.id, provider: model.provider.id, outcome: "succeeded", latencyMs: clock.now() - attemptStart });
    } catch (error) {
      const classified = classifyError(controller.signal.aborted ? controller.signal.reason : error, clock.now());
      attempts.push({
        model: model.id,
        provider: model.provider.id,
        outcome: "failed",
        category: classified.category,
        ...(classified.upstreamStatus !== undefined ? { httpStatus: classified.upstreamStatus } : {}),
        latencyMs: clock.now() - attemptStart,
      });
      throw classified;
    } finally {
      watchdog.dispose();
      dispose();
    }
  }

  try {
    for (const [index, model] of candidates.entries()) {
      const client = deps.modelClient(model.provider)!;
      try {
        await retry(() => attempt(model, client), {
          policy: settings.retry,
          signal: execution.controller.signal,
          deadline,
          now: () => clock.now(),
          ...(deps.random ? { random: deps.random } : {}),
          canRetry: () => !committed,
          onRetry: (error, attemptNumber, delayMs) =>
            deps.logger.info("execution.retry", { executionId: id, model: model.id, category: error.category, attemptNumber, delayMs }),
        });
        failure = undefined;
        break;
      } catch (error) {
        failure = classifyError(error);
        const next = candidates[index + 1];
        if (committed || execution.controller.signal.aborted || !canFallBack(failure) || !next) break;
        deps.logger.info("execution.fallback", { executionId: id, from: model.id, to: next.id, category: failure.category });
      }
    }
  } catch (error) {
    // A bug of ours: still finish the record, and tell the client nothing more than "internal".
    failure = new ExecutionError("internal", undefined, { cause: error });
  } finally {
    clearTimeout(deadlineTimer);
    execution.dispose();
  }

  if (!failure && !committed) commit(answeredBy); // an empty answer still gets its start chunk
  const completedAt = clock.now();
  const output = parts.join("");
  const usage = rawUsage ? normalizeUsage(rawUsage) : output !== "" || !failure ? estimateUsage(messages, output) : ZERO_USAGE;
  const lastTried = committed ? answeredBy : (candidates.find((c) => c.id === attempts.at(-1)?.model) ?? primary);
  const cost: Cost = computeCost(usage, lastTried.spec.price);
  const final: Execution = {
    ...running,
    status: failure ? finalStatus(failure.category) : "succeeded",
    model: lastTried.id,
    provider: lastTried.provider.id,
    ...capOutput(output),
    finishReason: failure ? (finishReason ?? null) : (finishReason ?? "stop"),
    usage,
    cost,
    attempts,
    ...(failure ? { error: { category: failure.category, message: failure.message } } : {}),
    completedAt: new Date(completedAt),
    latencyMs: completedAt - startedAt,
    ttftMs: ttftMs ?? null,
  };

  await recordFinal(deps, options.uid, final, ticket);
  const logFields = {
    executionId: id,
    uid: options.uid,
    status: final.status,
    model: final.model,
    provider: final.provider,
    attempts: attempts.length,
    latencyMs: final.latencyMs,
    ttftMs: final.ttftMs,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    usageEstimated: usage.estimated,
    costMicros: cost.micros,
    ...(failure ? { category: failure.category } : {}),
    ...(settings.logPrompts ? { input: messages, output } : {}),
  };
  if (failure) {
    deps.logger[failure.category === "internal" ? "error" : "warn"]("execution.failed", {
      ...logFields,
      ...(failure.category === "internal" ? { cause: describeCause(failure.cause) } : {}),
    });
    failure.executionId = id;
    failure.model = final.model;
    failure.provider = final.provider;
    throw failure;
  }
  deps.logger.info("execution.succeeded", logFields);
  return {
    executionId: id,
    model: final.model,
    provider: final.provider,
    output,
    finishReason: final.finishReason ?? "stop",
    usage,
    cost: { usd: cost.usd, micros: cost.micros },
    latencyMs: final.latencyMs!,
    ...(ttftMs !== undefined ? { ttftMs } : {}),
    attempts: attempts.length,
  };
}

/** A finished request repeated under its requestId: its stored outcome, without calling the provider or charging again. */
function replay(record: Execution, options: ExecuteOptions): ExecutionResult {
  const result = replayOf(record);
  options.onStart?.({ executionId: record.id, model: record.model, provider: record.provider });
  if (result.output !== "") options.onDelta?.(result.output);
  return result;
}

/** Writes the final record with its ledger and releases; one retry, then an error log (never an unhandled rejection). */
async function recordFinal(deps: PipelineDeps, uid: string, final: Execution, ticket: AdmissionTicket): Promise<void> {
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      await deps.executions.finish(uid, final, ticket);
      return;
    } catch (error) {
      if (attempt === 2) deps.logger.error("execution.finish_failed", { executionId: final.id, error: describeCause(error) });
    }
  }
}

/** A cause for logs: class and message only, trimmed, with anything key-shaped masked. */
export function describeCause(cause: unknown): string {
  const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return redactSecrets(text).slice(0, 500);
}

export function redactSecrets(text: string): string {
  return text.replace(/\b(sk-[A-Za-z0-9_-]{2})[A-Za-z0-9_-]{8,}/g, "$1…").replace(/\bAIza[0-9A-Za-z_-]{10,}/g, "AIza…");
}
