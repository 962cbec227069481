import { SAMPLING_PARAMS, type ResolvedModel, type SamplingParam } from "../catalog.js";
import { ExecutionError } from "../errors.js";
import { runningExecution, type Execution } from "../execution.js";
import { requestFingerprint } from "../idempotency.js";
import { schemaProblem } from "../json-output.js";
import { planMedia } from "./media.js";
import { mediaKind, type InputKind, type Message } from "../messages.js";
import { executeRequestSchema, LIMITS, parseOrThrow, utf8Bytes, type ExecuteRequest, type GenerationParams } from "../request.js";
import { renderTemplate } from "../templates.js";
import type { PipelineDeps, Plan } from "./types.js";

/**
 * Plan: validate the request and decide what to call, before anything is recorded. Every
 * error thrown here is the client's to fix (or the operator's, for missing keys), and costs
 * nothing: no record, no reservation, no provider call.
 */
export async function planExecution(deps: PipelineDeps, input: unknown, uid: string): Promise<Plan> {
  const request = parseOrThrow(executeRequestSchema, input);
  const bytes = utf8Bytes(request);
  if (bytes > LIMITS.requestBytes) throw new ExecutionError("validation", `request: at most ${LIMITS.requestBytes} bytes in all, got ${bytes}.`);
  const settings = deps.settings();
  let messages: Message[] = request.messages ?? [];
  let templateModel: string | undefined;
  let params: GenerationParams = request.params ?? {};
  if (request.promptId !== undefined) {
    const template = await deps.prompts.get(uid, request.promptId);
    if (!template) throw new ExecutionError("not_found", `promptId: there is no saved prompt "${request.promptId}".`);
    messages = renderTemplate(template, request.variables);
    templateModel = template.model;
    params = { ...template.params, ...request.params };
  }
  await checkSchemas(request);

  const modelId = request.model ?? templateModel ?? settings.defaultModel;
  if (!modelId) throw new ExecutionError("provider_auth", "No model provider is configured on the server.");
  const primary = deps.catalog.resolve(modelId);
  if (!primary) throw new ExecutionError("not_found", `model: "${modelId}" is not in the catalog (GET /v1/models lists it).`);
  const needs = requiredCapabilities(request, messages, params);
  const lacking = missingCapability(primary, needs);
  if (lacking) throw new ExecutionError("validation", `${lacking.field}: model "${primary.id}" ${lacking.what}.`);
  if (params.maxTokens !== undefined && params.maxTokens > primary.spec.maxOutputTokens) {
    throw new ExecutionError("validation", `params.maxTokens: at most ${primary.spec.maxOutputTokens} for model "${primary.id}".`);
  }

  // Every model that may answer, in order: the primary, the request's fallbacks, the
  // configured ones. Models that lack a capability the request needs, or whose provider has
  // no key here, are skipped; the request is refused only when none is left.
  const models: ResolvedModel[] = [primary];
  (request.fallbackModels ?? []).forEach((id, index) => {
    const model = deps.catalog.resolve(id);
    if (!model) throw new ExecutionError("not_found", `fallbackModels[${index}]: "${id}" is not in the catalog.`);
    models.push(model);
  });
  for (const id of settings.defaultFallbackModels) {
    const model = deps.catalog.resolve(id);
    if (model) models.push(model);
  }
  const callable = models.filter(
    (model, i) => models.findIndex((m) => m.id === model.id) === i && !missingCapability(model, needs) && deps.modelClient(model.provider) !== undefined,
  );
  if (callable.length === 0) {
    throw new ExecutionError("provider_auth", `model: the server has no key for provider "${primary.provider.id}", and no fallback model can be called.`);
  }
  const candidates = planMedia(deps, callable, messages, primary);
  const timeLimitMs = Math.min(settings.maxTimeoutMs, request.timeoutMs ?? Number.POSITIVE_INFINITY);
  return {
    request,
    messages,
    ...(request.tools ? { tools: request.tools } : {}),
    ...(request.toolChoice ? { toolChoice: request.toolChoice } : {}),
    ...(request.responseFormat ? { responseFormat: request.responseFormat } : {}),
    params,
    candidates,
    settings,
    timeLimitMs,
  };
}

/** Tool parameters and response schemas must be JSON Schemas a validator can use. */
async function checkSchemas(request: ExecuteRequest): Promise<void> {
  for (const [i, tool] of (request.tools ?? []).entries()) {
    const problem = await schemaProblem(tool.parameters);
    if (problem) throw new ExecutionError("validation", `tools[${i}].parameters: not a usable JSON Schema (${problem}).`);
  }
  if (request.responseFormat?.type === "json_schema") {
    const problem = await schemaProblem(request.responseFormat.schema);
    if (problem) throw new ExecutionError("validation", `responseFormat.schema: not a usable JSON Schema (${problem}).`);
  }
}

interface Needs {
  /** Each media kind used, with the field of its first use. */
  input: Map<Exclude<InputKind, "text">, string>;
  /** Generation params the request sets that not every model takes. */
  params: SamplingParam[];
  tools?: string;
  structuredOutput?: string;
}

function requiredCapabilities(request: ExecuteRequest, messages: readonly Message[], params: GenerationParams): Needs {
  const needs: Needs = { input: new Map(), params: SAMPLING_PARAMS.filter((name) => params[name] !== undefined) };
  messages.forEach((message, i) => {
    if (message.role === "tool") needs.tools ??= `messages[${i}]`;
    if (message.role === "assistant" && message.toolCalls) needs.tools ??= `messages[${i}].toolCalls`;
    if (typeof message.content === "string" || message.content === null) return;
    message.content.forEach((part, j) => {
      if (part.type === "text") return;
      const kind = mediaKind(part);
      if (!needs.input.has(kind)) needs.input.set(kind, `messages[${i}].content[${j}]`);
    });
  });
  if (request.tools) needs.tools = "tools";
  if (request.responseFormat) needs.structuredOutput = "responseFormat";
  return needs;
}

const PLURAL: Record<Exclude<InputKind, "text">, string> = { image: "images", file: "files", audio: "audio" };

function missingCapability(model: ResolvedModel, needs: Needs): { field: string; what: string } | undefined {
  for (const [kind, field] of needs.input) {
    if (!model.capabilities.input.includes(kind)) return { field, what: `does not take ${PLURAL[kind]}` };
  }
  if (needs.tools && !model.capabilities.tools) return { field: needs.tools, what: "does not support tool calling" };
  if (needs.structuredOutput && !model.capabilities.structuredOutput) return { field: needs.structuredOutput, what: "does not support structured output" };
  const refused = needs.params.find((name) => model.capabilities.unsupportedParams?.includes(name));
  if (refused) return { field: `params.${refused}`, what: "does not take this parameter" };
  return undefined;
}

/**
 * The `running` record of an execution of this plan: what admission writes, and what a
 * speculative start that admission refused is recorded from (settle.ts settleUnadmitted).
 */
export function runningRecord(plan: Plan, run: { id: string; startedAt: number; instance?: string }): Execution {
  const { request, candidates, settings } = plan;
  const first = candidates[0]!.model;
  return runningExecution({
    id: run.id,
    model: first.id,
    provider: first.provider.id,
    messages: plan.messages,
    createdAt: run.startedAt,
    ttlDays: settings.historyTtlDays,
    ...(request.requestId ? { requestId: request.requestId, requestFingerprint: requestFingerprint(request) } : {}),
    ...(request.promptId ? { promptId: request.promptId } : {}),
    ...(run.instance ? { instance: run.instance } : {}),
    ...(plan.tools ? { tools: plan.tools } : {}),
    ...(plan.responseFormat ? { responseFormat: plan.responseFormat } : {}),
  });
}
