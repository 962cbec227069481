import { DEFAULT_IMAGE_TOKENS, type ResolvedModel } from "../catalog.js";
import { canFallBack, classifyError, ExecutionError } from "../errors.js";
import type { AttemptRecord } from "../execution.js";
import { parseJsonOutput } from "../json-output.js";
import type { ToolCall } from "../messages.js";
import type { Clock, ModelClient, ToolCallDelta } from "../ports.js";
import type { GenerationParams } from "../request.js";
import { retry } from "../retry.js";
import { AttemptWatchdog, childController } from "../timeout.js";
import { estimateUsage, normalizeUsage, ZERO_USAGE, type ProviderUsage, type Usage } from "../usage.js";
import { mediaInliner } from "./media.js";
import { isStreaming, type Candidate, type ExecuteOptions, type PipelineDeps, type Plan } from "./types.js";

/** What one call to a model produced, finished or not. */
export interface AttemptOutput {
  model: ResolvedModel;
  text: string;
  toolCalls: ToolCall[];
  finishReason?: string;
  /** What the provider billed: reported, else estimated from what was produced (zero when nothing was). */
  usage: Usage;
  /** Epoch ms of its first output. */
  firstOutputAt?: number;
}

export interface Outcome {
  attempts: AttemptRecord[];
  /** Every attempt's output, one per entry of `attempts` and in the same order: each is billed. */
  outputs: AttemptOutput[];
  /** The output the execution ends with: the one that succeeded, else the one the client saw, else the last. */
  final?: AttemptOutput;
  failure?: ExecutionError;
  /** With a response format, the final output parsed. */
  json?: unknown;
  /** Epoch ms when output first reached a streaming client. */
  committedAt?: number;
}

/** Accumulates one attempt's stream. */
class AttemptState {
  private readonly text: string[] = [];
  private readonly calls = new Map<number, ToolCall>();
  finishReason?: string;
  rawUsage?: ProviderUsage;
  firstOutputAt?: number;

  constructor(readonly candidate: Candidate) {}

  get hasOutput(): boolean {
    return this.firstOutputAt !== undefined;
  }

  addText(text: string, now: number): void {
    this.firstOutputAt ??= now;
    this.text.push(text);
  }

  addToolCall(delta: ToolCallDelta, now: number): void {
    this.firstOutputAt ??= now;
    const call = this.calls.get(delta.index) ?? { id: "", name: "", arguments: "" };
    if (delta.id) call.id = delta.id;
    if (delta.name) call.name += delta.name;
    call.arguments += delta.argumentsDelta;
    this.calls.set(delta.index, call);
  }

  output(): AttemptOutput {
    const text = this.text.join("");
    const toolCalls = [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
    const { model, messages } = this.candidate;
    const produced = text + toolCalls.map((c) => c.name + c.arguments).join("");
    const usage = this.rawUsage
      ? normalizeUsage(this.rawUsage)
      : this.hasOutput || this.finishReason !== undefined
        ? estimateUsage(messages, produced, model.spec.imageTokens ?? DEFAULT_IMAGE_TOKENS)
        : ZERO_USAGE;
    return {
      model,
      text,
      toolCalls,
      ...(this.finishReason !== undefined ? { finishReason: this.finishReason } : {}),
      usage,
      ...(this.firstOutputAt !== undefined ? { firstOutputAt: this.firstOutputAt } : {}),
    };
  }
}

/** Output parameters per model: maxTokens never above what the model can produce; reasoning effort only where it means something. */
function paramsFor(model: ResolvedModel, params: GenerationParams): GenerationParams {
  const { reasoningEffort, ...rest } = params;
  const out: GenerationParams = model.capabilities.reasoning && reasoningEffort !== undefined ? { ...rest, reasoningEffort } : rest;
  return out.maxTokens === undefined ? out : { ...out, maxTokens: Math.min(out.maxTokens, model.spec.maxOutputTokens) };
}

/**
 * Attempts: each candidate model in turn, each with retries (retry.ts), each attempt under
 * its first-token, idle and total timeouts (timeout.ts), all under the execution's deadline
 * and signal. Output reaches a streaming client as it comes, and from its first piece on
 * nothing is retried or replaced (the client has it). A client that waits for the whole
 * answer has seen nothing, so a failure mid-answer is retried and falls back like one before
 * it; what the failed attempt produced is still billed.
 */
export async function runAttempts(
  deps: PipelineDeps,
  plan: Plan,
  run: {
    executionId: string;
    startedAt: number;
    clock: Clock;
    signal: AbortSignal;
    options: ExecuteOptions;
    /**
     * A speculative start (speculation.ts): output is held until this resolves, and reaches
     * the client only when it resolves true (admission committed); false (refused) drops it.
     * Held output has reached no one, so an attempt that fails before the release is retried
     * as if it had produced nothing visible.
     */
    release?: Promise<boolean>;
  },
): Promise<Outcome> {
  const { clock, options } = run;
  const streaming = isStreaming(options);
  const execution = childController(run.signal);
  const deadline = run.startedAt + plan.timeLimitMs;
  const deadlineTimer = Number.isFinite(plan.timeLimitMs)
    ? setTimeout(() => execution.controller.abort(new ExecutionError("timeout", "The request's time limit ran out.")), plan.timeLimitMs)
    : undefined;

  const outcome: Outcome = { attempts: [], outputs: [] };
  let committed: AttemptState | undefined;
  let last: AttemptState | undefined;

  const commit = (state: AttemptState) => {
    committed = state;
    outcome.committedAt = clock.now();
    const { model } = state.candidate;
    options.onStart?.({ executionId: run.executionId, model: model.id, provider: model.provider.id });
  };

  // Output of a speculative start waits here, per attempt, until the release.
  let released = run.release === undefined;
  let holding: { state: AttemptState; sends: (() => void)[] } | undefined;
  const emit = (state: AttemptState, send: () => void) => {
    if (committed) {
      if (committed === state) send();
      return;
    }
    if (discarded) return;
    if (released) {
      commit(state);
      send();
      return;
    }
    if (holding?.state !== state) holding = { state, sends: [] };
    holding.sends.push(send);
  };
  const dropHeld = (state: AttemptState) => {
    if (holding?.state === state) holding = undefined;
  };
  let discarded = false;
  void run.release?.then((admitted) => {
    released = true;
    if (!admitted) {
      discarded = true;
      holding = undefined;
      return;
    }
    if (!holding || committed) return;
    const { state, sends } = holding;
    holding = undefined;
    commit(state);
    for (const send of sends) send();
  });

  async function attempt(candidate: Candidate, client: ModelClient): Promise<AttemptState> {
    const { model } = candidate;
    const attemptStart = clock.now();
    const { controller, dispose } = childController(execution.controller.signal);
    const watchdog = new AttemptWatchdog(controller, { ...model.timeouts, totalMs: Math.min(model.timeouts.totalMs, deadline - attemptStart) });
    const state = new AttemptState(candidate);
    last = state;
    const record = (fields: Omit<AttemptRecord, "model" | "provider" | "latencyMs">) => {
      const { usage } = state.output();
      outcome.attempts.push({
        model: model.id,
        provider: model.provider.id,
        ...fields,
        latencyMs: clock.now() - attemptStart,
        ...(usage.totalTokens > 0 ? { usage } : {}),
      });
    };
    watchdog.start();
    try {
      const stream = client.stream({
        model,
        messages: candidate.messages,
        ...(plan.tools ? { tools: plan.tools } : {}),
        ...(plan.toolChoice ? { toolChoice: plan.toolChoice } : {}),
        ...(plan.responseFormat ? { responseFormat: plan.responseFormat } : {}),
        params: paramsFor(model, plan.params),
        signal: controller.signal,
      });
      for await (const chunk of stream) {
        if (chunk.type === "delta") {
          if (chunk.text === "") continue;
          watchdog.onDelta();
          state.addText(chunk.text, clock.now());
          if (streaming) {
            const text = chunk.text;
            emit(state, () => options.onDelta?.(text));
          }
        } else if (chunk.type === "tool_call") {
          watchdog.onDelta();
          const { type: _type, ...delta } = chunk;
          state.addToolCall(delta, clock.now());
          if (streaming) emit(state, () => options.onToolCall?.(delta));
        } else if (chunk.type === "finish") {
          state.finishReason = chunk.reason;
        } else {
          state.rawUsage = chunk.usage;
        }
      }
      if (controller.signal.aborted) throw controller.signal.reason;
      if (state.finishReason === undefined) {
        throw new ExecutionError("provider_unavailable", "The model provider's stream ended before the answer was finished.");
      }
      if (plan.responseFormat && state.output().toolCalls.length === 0) {
        outcome.json = await parseJsonOutput(state.output().text, plan.responseFormat);
      }
      record({ outcome: "succeeded" });
      return state;
    } catch (error) {
      // What this attempt held back reached no one: the next attempt starts clean.
      dropHeld(state);
      const classified = classifyError(controller.signal.aborted ? controller.signal.reason : error, clock.now());
      record({
        outcome: "failed",
        category: classified.category,
        ...(classified.upstreamStatus !== undefined ? { httpStatus: classified.upstreamStatus } : {}),
      });
      throw classified;
    } finally {
      outcome.outputs.push(state.output());
      watchdog.dispose();
      dispose();
    }
  }

  let succeeded: AttemptState | undefined;
  const inline = mediaInliner(deps, execution.controller.signal, run.executionId);
  try {
    for (const [index, planned] of plan.candidates.entries()) {
      const client = deps.modelClient(planned.model.provider)!;
      const next = plan.candidates[index + 1];
      let candidate: Candidate;
      const preparedAt = clock.now();
      try {
        candidate = { ...planned, messages: await inline(planned) };
      } catch (error) {
        // Media this model's provider needs as bytes could not be fetched: the next model may not need them.
        outcome.failure = classifyError(error);
        outcome.attempts.push({ model: planned.model.id, provider: planned.model.provider.id, outcome: "failed", category: outcome.failure.category, latencyMs: clock.now() - preparedAt });
        outcome.outputs.push({ model: planned.model, text: "", toolCalls: [], usage: ZERO_USAGE }); // one per attempt: costs pair with attempts by index
        if (execution.controller.signal.aborted || !next) break;
        deps.logger.info("execution.fallback", { executionId: run.executionId, from: planned.model.id, to: next.model.id, category: outcome.failure.category });
        continue;
      }
      try {
        succeeded = await retry(() => attempt(candidate, client), {
          policy: plan.settings.retry,
          signal: execution.controller.signal,
          deadline,
          now: () => clock.now(),
          ...(deps.random ? { random: deps.random } : {}),
          canRetry: () => !committed,
          onRetry: (error, attemptNumber, delayMs) =>
            deps.logger.info("execution.retry", { executionId: run.executionId, model: candidate.model.id, category: error.category, attemptNumber, delayMs }),
        });
        outcome.failure = undefined;
        break;
      } catch (error) {
        outcome.failure = classifyError(error);
        if (committed || execution.controller.signal.aborted || !canFallBack(outcome.failure) || !next) break;
        deps.logger.info("execution.fallback", { executionId: run.executionId, from: candidate.model.id, to: next.model.id, category: outcome.failure.category });
      }
    }
  } catch (error) {
    // A bug of ours: the record is still finished, and the client told nothing more than "internal".
    outcome.failure = new ExecutionError("internal", undefined, { cause: error });
  } finally {
    clearTimeout(deadlineTimer);
    execution.dispose();
  }

  // A speculative start's output is released only after admission: the caller waits for that
  // before settling, so here the answer is complete, and still held when admission is slow.
  // (The release's own handler, registered first, has already passed on what was held.)
  if (!released) await run.release;
  const finalState = succeeded ?? committed ?? last;
  // An answer with no output still gets its start chunk, from the model that gave it.
  if (succeeded && streaming && !committed && !discarded) commit(succeeded);
  if (finalState) outcome.final = finalState.output();
  return outcome;
}
