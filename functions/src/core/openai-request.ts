import { z } from "zod";
import { openAIParamName } from "./catalog.js";
import { ExecutionError } from "./errors.js";
import { normalizeMimeType, parseDataUrl } from "./media.js";
import type { Message, Part, ResponseFormat, ToolChoice, ToolSpec } from "./messages.js";
import { LIMITS, mostSpecificIssue } from "./request.js";
import { checkSafeInput } from "./safe-input.js";

/**
 * The request side of OpenAI's chat completions protocol: OpenAI's shapes, validated, and
 * converted to the pipeline's request (the callable's shapes, messages.ts). Every message
 * this endpoint returns is accepted back, and every field the official clients send by
 * default is accepted; a field we cannot honour is refused by name, never silently ignored.
 * The response side is in openai-wire.ts.
 */

/** Fields we cannot honour, with why, refused when present with a value that asks for them. */
const UNSUPPORTED: Record<string, (value: unknown) => boolean> = {
  functions: () => true,
  function_call: () => true,
  logit_bias: () => true,
  prediction: () => true,
  audio: () => true,
  web_search_options: () => true,
  logprobs: (v) => v === true,
  top_logprobs: (v) => typeof v === "number" && v > 0,
  // Asking providers to keep the completion would leak it to a place our records do not cover.
  store: (v) => v === true,
  modalities: (v) => Array.isArray(v) && v.some((m) => m !== "text"),
};

const text = z.string().max(LIMITS.messageChars);
const textPart = z.object({ type: z.literal("text"), text }).passthrough();
const refusalPart = z.object({ type: z.literal("refusal"), refusal: text }).passthrough();
const imageUrlPart = z.strictObject({
  type: z.literal("image_url"),
  image_url: z.strictObject({ url: z.string().min(1), detail: z.enum(["auto", "low", "high"]).optional() }),
});
const filePart = z.strictObject({
  type: z.literal("file"),
  file: z.strictObject({ file_data: z.string().min(1).optional(), file_id: z.string().optional(), filename: z.string().max(256).optional() }),
});
const audioPart = z.strictObject({
  type: z.literal("input_audio"),
  input_audio: z.strictObject({ data: z.string().min(1), format: z.enum(["wav", "mp3"]) }),
});
const userPart = z.discriminatedUnion("type", [textPart, imageUrlPart, filePart, audioPart]);

const toolCall = z.object({
  id: z.string().min(1).max(256),
  type: z.literal("function"),
  function: z.object({ name: z.string().min(1).max(64), arguments: z.string().max(LIMITS.toolArgumentsChars) }).passthrough(),
});

const name = z.string().max(256).optional();
const messageSchema = z.discriminatedUnion("role", [
  z.strictObject({ role: z.literal("system"), content: z.union([text, z.array(textPart).min(1)]), name }),
  z.strictObject({ role: z.literal("developer"), content: z.union([text, z.array(textPart).min(1)]), name }),
  z.strictObject({ role: z.literal("user"), content: z.union([text, z.array(userPart).min(1)]), name }),
  z.strictObject({
    role: z.literal("assistant"),
    content: z.union([text, z.array(z.discriminatedUnion("type", [textPart, refusalPart]))]).nullable().optional(),
    refusal: text.nullable().optional(),
    tool_calls: z.array(toolCall).max(LIMITS.toolCalls).nullable().optional(),
    // What the SDKs echo back from a response (OpenAI adds `annotations`, `audio: null`; the
    // openai SDK's stream and parse helpers add `parsed`).
    annotations: z.array(z.unknown()).optional(),
    parsed: z.unknown().optional(),
    audio: z.null().optional(),
    function_call: z.null().optional(),
    name,
  }),
  z.strictObject({ role: z.literal("tool"), tool_call_id: z.string().min(1).max(256), content: z.union([text, z.array(textPart).min(1)]) }),
]);

const functionTool = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({
    name: z.string().min(1).max(64),
    description: z.string().max(1_024).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const responseFormat = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    json_schema: z.strictObject({
      name: z.string().min(1).max(64),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullable().optional(),
      description: z.string().max(1_024).optional(),
    }),
  }),
]);

export const chatCompletionRequestSchema = z.strictObject({
  model: z.string().min(1).max(200),
  messages: z.array(messageSchema).min(1).max(LIMITS.messages),
  stream: z.boolean().nullable().optional(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional() }).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(LIMITS.stopSequences)]).nullable().optional(),
  n: z.literal(1, "only 1 is supported").nullable().optional(),
  seed: z.number().int().nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  reasoning_effort: z.enum(["none", "minimal", "low", "medium", "high"]).nullable().optional(),
  tools: z.array(functionTool).max(LIMITS.tools).optional(),
  tool_choice: z
    .union([z.enum(["none", "auto", "required"]), z.strictObject({ type: z.literal("function"), function: z.strictObject({ name: z.string() }) })])
    .optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  response_format: responseFormat.optional(),
  // Accepted and not forwarded: the uid identifies the caller, and metadata is OpenAI's dashboard's.
  user: z.string().max(256).optional(),
  metadata: z.record(z.string(), z.string().max(512)).nullable().optional(),
  service_tier: z.enum(["auto", "default"], "only auto or default").nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().nullable().optional(),
  store: z.boolean().nullable().optional(),
  modalities: z.array(z.string()).nullable().optional(),
  /** Extension: models tried in order when `model` keeps failing. */
  fallback_models: z.array(z.string().min(1).max(200)).max(LIMITS.fallbackModels).optional(),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** Validates an OpenAI request body; errors name the field, as `invalid_request_error`s do. */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new ExecutionError("validation", "The request body must be a JSON object.");
  }
  checkSafeInput(body);
  for (const [field, asks] of Object.entries(UNSUPPORTED)) {
    const value = Object.hasOwn(body, field) ? (body as Record<string, unknown>)[field] : undefined;
    if (value != null && asks(value)) throw new ExecutionError("validation", `Unsupported parameter: '${field}' is not supported by this endpoint.`);
  }
  const result = chatCompletionRequestSchema.safeParse(body);
  if (result.success) return result.data;
  const issue = mostSpecificIssue(result.error.issues[0] as Parameters<typeof mostSpecificIssue>[0]);
  if (issue.code === "unrecognized_keys") {
    throw new ExecutionError("validation", `Unrecognized request argument: '${[formatDotted(issue.path), issue.keys?.[0]].filter((p) => p !== "").join(".")}'.`);
  }
  throw new ExecutionError("validation", `Invalid value for '${formatDotted(issue.path)}': ${issue.message}`);
}

function formatDotted(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  return out;
}

/** The pipeline's field names (the callable's) that differ in OpenAI's request, first match wins. */
const OPENAI_FIELDS: [RegExp, (...groups: string[]) => string][] = [
  [/^params\.([A-Za-z]+)/, (name) => openAIParamName(name)],
  [/^responseFormat\.schema/, () => "response_format.json_schema.schema"],
  [/^responseFormat/, () => "response_format"],
  [/^toolChoice/, () => "tool_choice"],
  [/^fallbackModels/, () => "fallback_models"],
  [/^tools\[(\d+)\]\.(name|description|parameters|strict)/, (i, field) => `tools[${i}].function.${field}`],
  [/^messages\[(\d+)\]\.toolCalls/, (i) => `messages[${i}].tool_calls`],
  [/^messages\[(\d+)\]\.toolCallId/, (i) => `messages[${i}].tool_call_id`],
  [/^requestId/, () => "Idempotency-Key (header)"],
  [/^timeoutMs/, () => "X-Timeout-Ms (header)"],
  [/^conversationId/, () => "X-Conversation-Id (header)"],
];

/**
 * A validation message from the pipeline ("params.maxTokens: at most …") with the field as an
 * OpenAI client knows it ("max_tokens: at most …"). Messages start with the field they name.
 */
export function inOpenAITerms(message: string): string {
  for (const [pattern, rename] of OPENAI_FIELDS) {
    const match = pattern.exec(message);
    if (match) return rename(...match.slice(1)) + message.slice(match[0].length);
  }
  return message;
}

/** Values that OpenAI's body has no field for, taken from headers: `Idempotency-Key`, `X-Timeout-Ms`. */
export interface RequestHeaders {
  idempotencyKey?: string;
  timeoutMs?: string;
  /** `X-Conversation-Id`: a server-side conversation; `messages` is then only the new turn. */
  conversationId?: string;
}

type OpenAIMessage = ChatCompletionRequest["messages"][number];
type UserPart = z.infer<typeof userPart>;

function joinText(content: string | { text: string }[]): string {
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}

function toPart(part: UserPart, path: string): Part {
  switch (part.type) {
    case "text":
      return { type: "text", text: part.text };
    case "image_url":
      return { type: "image", url: part.image_url.url, ...(part.image_url.detail ? { detail: part.image_url.detail } : {}) };
    case "input_audio": {
      const mimeType = part.input_audio.format === "mp3" ? "audio/mpeg" : "audio/wav";
      return { type: "file", url: `data:${mimeType};base64,${part.input_audio.data}`, mimeType };
    }
    case "file": {
      const { file_data: data, file_id: fileId, filename } = part.file;
      if (data === undefined) {
        throw new ExecutionError("validation", `${path}.file: ${fileId ? "'file_id' is not supported; send 'file_data'" : "'file_data' is required"}.`);
      }
      // OpenAI takes file_data as a data URL; bare base64 is a PDF by its convention.
      const url = data.startsWith("data:") || data.startsWith("https:") ? data : `data:application/pdf;base64,${data}`;
      const mimeType = normalizeMimeType(parseDataUrl(url)?.mimeType ?? "application/pdf");
      return { type: "file", url, mimeType, ...(filename ? { name: filename } : {}) };
    }
  }
}

function toMessage(message: OpenAIMessage, index: number): Message {
  switch (message.role) {
    case "system":
    case "developer":
      return { role: "system", content: joinText(message.content) };
    case "user":
      return {
        role: "user",
        content: typeof message.content === "string" ? message.content : message.content.map((p, j) => toPart(p, `messages[${index}].content[${j}]`)),
      };
    case "assistant": {
      // A refusal the endpoint returned comes back as the assistant's text: it is what was said.
      const content = message.content == null ? null : typeof message.content === "string" ? message.content : message.content.map((p) => (p.type === "text" ? p.text : p.refusal)).join("");
      const said = content ?? message.refusal ?? null;
      const toolCalls = message.tool_calls?.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
      return { role: "assistant", content: said, ...(toolCalls && toolCalls.length > 0 ? { toolCalls } : {}) };
    }
    case "tool":
      return { role: "tool", toolCallId: message.tool_call_id, content: joinText(message.content) };
  }
}

function toTools(request: ChatCompletionRequest): ToolSpec[] | undefined {
  if (!request.tools || request.tools.length === 0) return undefined;
  return request.tools.map(({ function: f }) => ({
    name: f.name,
    ...(f.description !== undefined ? { description: f.description } : {}),
    // OpenAI treats a missing schema as "no parameters".
    parameters: f.parameters ?? { type: "object", properties: {} },
    ...(f.strict != null ? { strict: f.strict } : {}),
  }));
}

function toToolChoice(choice: ChatCompletionRequest["tool_choice"]): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  return typeof choice === "string" ? choice : { name: choice.function.name };
}

function toResponseFormat(format: ChatCompletionRequest["response_format"]): ResponseFormat | undefined {
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_object") return { type: "json_object" };
  const { name, schema, strict, description } = format.json_schema;
  return {
    type: "json_schema",
    name,
    schema: schema ?? {},
    ...(strict != null ? { strict } : {}),
    ...(description !== undefined ? { description } : {}),
  };
}

/** The pipeline's request for an OpenAI one (the pipeline validates it again, naming fields). */
export function toExecuteRequest(request: ChatCompletionRequest, headers: RequestHeaders = {}): Record<string, unknown> {
  const requestId = headers.idempotencyKey;
  const timeoutMs = headers.timeoutMs === undefined ? undefined : Number(headers.timeoutMs);
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  const tools = toTools(request);
  const toolChoice = toToolChoice(request.tool_choice);
  const format = toResponseFormat(request.response_format);
  const params = {
    ...(request.temperature != null ? { temperature: request.temperature } : {}),
    ...(request.top_p != null ? { topP: request.top_p } : {}),
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(request.stop != null ? { stop: typeof request.stop === "string" ? [request.stop] : request.stop } : {}),
    ...(request.seed != null ? { seed: request.seed } : {}),
    ...(request.presence_penalty != null ? { presencePenalty: request.presence_penalty } : {}),
    ...(request.frequency_penalty != null ? { frequencyPenalty: request.frequency_penalty } : {}),
    ...(request.reasoning_effort != null ? { reasoningEffort: request.reasoning_effort } : {}),
    ...(tools && request.parallel_tool_calls != null ? { parallelToolCalls: request.parallel_tool_calls } : {}),
  };
  return {
    ...(requestId !== undefined ? { requestId } : {}),
    model: request.model,
    messages: request.messages.map(toMessage),
    ...(Object.keys(params).length > 0 ? { params } : {}),
    ...(tools ? { tools } : {}),
    // "none" without tools is what some clients send by default: nothing to ask for.
    ...(toolChoice && (tools || toolChoice !== "none") ? { toolChoice } : {}),
    ...(format ? { responseFormat: format } : {}),
    ...(request.fallback_models ? { fallbackModels: request.fallback_models } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(headers.conversationId !== undefined ? { conversationId: headers.conversationId } : {}),
  };
}
