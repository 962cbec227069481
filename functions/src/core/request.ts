import { z } from "zod";
import { ExecutionError } from "./errors.js";
import { MEDIA_LIMITS, mediaPartProblem } from "./media.js";
import type { Message, ResponseFormat, ToolChoice, ToolSpec } from "./messages.js";
import { checkSafeInput } from "./safe-input.js";

/**
 * Limits on what one request may carry. A callable body is capped at 10 MB by the
 * platform; ours are sized for chat prompts and documented in docs/api.md.
 */
export const LIMITS = {
  messages: 100,
  messageChars: 100_000,
  totalChars: 400_000,
  variables: 50,
  variableChars: 20_000,
  stopSequences: 4,
  stopChars: 256,
  fallbackModels: 3,
  minTimeoutMs: 1_000,
  tools: 64,
  toolCalls: 64,
  /** Characters of one tool's or one response format's JSON Schema, serialized. */
  schemaChars: 50_000,
  toolArgumentsChars: 100_000,
  /** All strings of a request together, in UTF-8 bytes (data URLs included). */
  requestBytes: 10 * 1024 * 1024,
} as const;

const modelId = z.string().min(1).max(200);
const identifier = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 characters of A-Z, a-z, 0-9, _ or -");
const detail = z.enum(["auto", "low", "high"]);

const textPart = z.strictObject({ type: z.literal("text"), text: z.string().max(LIMITS.messageChars) });
const imagePart = z.strictObject({ type: z.literal("image"), url: z.string().min(1), detail: detail.optional() });
const filePart = z.strictObject({
  type: z.literal("file"),
  url: z.string().min(1),
  mimeType: z.string().min(1).max(100),
  name: z.string().max(256).optional(),
});
const partSchema = z.discriminatedUnion("type", [textPart, imagePart, filePart]);

const jsonSchemaObject = z
  .record(z.string(), z.unknown())
  .refine((schema) => JSON.stringify(schema).length <= LIMITS.schemaChars, `at most ${LIMITS.schemaChars} characters of JSON Schema`);

export const toolCallSchema = z.strictObject({
  id: z.string().min(1).max(256),
  name: identifier,
  arguments: z.string().max(LIMITS.toolArgumentsChars),
});

const content = z.union([z.string().max(LIMITS.messageChars), z.array(partSchema).min(1)]);
const textContent = z.union([z.string().max(LIMITS.messageChars), z.array(textPart).min(1)]);

export const messageSchema = z.discriminatedUnion("role", [
  z.strictObject({ role: z.literal("system"), content: textContent }),
  z.strictObject({ role: z.literal("user"), content }),
  z.strictObject({
    role: z.literal("assistant"),
    content: textContent.nullable(),
    toolCalls: z.array(toolCallSchema).min(1).max(LIMITS.toolCalls).optional(),
  }),
  z.strictObject({ role: z.literal("tool"), toolCallId: z.string().min(1).max(256), content: z.string().max(LIMITS.messageChars) }),
]);

/** Messages of saved prompts: text only (firestore.rules checks the same shape). */
export const chatMessageSchema = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string().max(LIMITS.messageChars),
});

export const toolSpecSchema = z.strictObject({
  name: identifier,
  description: z.string().max(1_024).optional(),
  parameters: jsonSchemaObject,
  strict: z.boolean().optional(),
});

export const toolChoiceSchema = z.union([z.enum(["auto", "none", "required"]), z.strictObject({ name: identifier })]);

export const responseFormatSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    name: identifier,
    schema: jsonSchemaObject,
    strict: z.boolean().optional(),
    description: z.string().max(1_024).optional(),
  }),
]);

export const generationParamsSchema = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().min(1).optional(),
  topP: z.number().gt(0).max(1).optional(),
  stop: z.array(z.string().min(1).max(LIMITS.stopChars)).max(LIMITS.stopSequences).optional(),
  /** Extensions beyond API.md's four, forwarded where the model takes them. */
  seed: z.number().int().optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  reasoningEffort: z.enum(["none", "minimal", "low", "medium", "high"]).optional(),
  parallelToolCalls: z.boolean().optional(),
});

export const executeRequestSchema = z
  .strictObject({
    requestId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{8,128}$/, "must be 8-128 characters of A-Z, a-z, 0-9, _ or -")
      .optional(),
    model: modelId.optional(),
    messages: z.array(messageSchema).min(1).max(LIMITS.messages).optional(),
    promptId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "must be 1-128 characters of A-Z, a-z, 0-9, _ or -").optional(),
    /** A server-side conversation: `messages` is only the new turn; the stored history goes in front. */
    conversationId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{8,128}$/, "must be 8-128 characters of A-Z, a-z, 0-9, _ or -")
      .optional(),
    variables: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.union([z.string().max(LIMITS.variableChars), z.number(), z.boolean()]))
      .refine((v) => Object.keys(v).length <= LIMITS.variables, `at most ${LIMITS.variables} variables`)
      .optional(),
    params: generationParamsSchema.optional(),
    tools: z.array(toolSpecSchema).min(1).max(LIMITS.tools).optional(),
    toolChoice: toolChoiceSchema.optional(),
    responseFormat: responseFormatSchema.optional(),
    fallbackModels: z.array(modelId).max(LIMITS.fallbackModels).optional(),
    timeoutMs: z.number().int().min(LIMITS.minTimeoutMs).optional(),
  })
  .superRefine((request, ctx) => {
    if ((request.messages === undefined) === (request.promptId === undefined)) {
      ctx.addIssue({ code: "custom", path: ["messages"], message: "send exactly one of messages or promptId" });
    }
    if (request.variables !== undefined && request.promptId === undefined) {
      ctx.addIssue({ code: "custom", path: ["variables"], message: "only allowed with promptId" });
    }
    if (request.toolChoice !== undefined && request.tools === undefined && request.toolChoice !== "none") {
      ctx.addIssue({ code: "custom", path: ["toolChoice"], message: "needs tools" });
    }
    if (typeof request.toolChoice === "object" && !request.tools?.some((t) => t.name === (request.toolChoice as { name: string }).name)) {
      ctx.addIssue({ code: "custom", path: ["toolChoice", "name"], message: `"${request.toolChoice.name}" is not one of the tools` });
    }
    const names = new Set<string>();
    request.tools?.forEach((tool, i) => {
      if (names.has(tool.name)) ctx.addIssue({ code: "custom", path: ["tools", i, "name"], message: `"${tool.name}" is declared twice` });
      names.add(tool.name);
    });
    if (request.conversationId !== undefined && request.promptId !== undefined) {
      ctx.addIssue({ code: "custom", path: ["conversationId"], message: "not with promptId" });
    }
    if (request.messages) checkMessages(request.messages as Message[], ctx, request.conversationId !== undefined);
  });

/** Rules across messages that no single message's schema can see. */
function checkMessages(messages: Message[], ctx: z.RefinementCtx, conversation: boolean): void {
  let chars = 0;
  let parts = 0;
  let media = 0;
  let openCalls = new Set<string>();
  messages.forEach((message, i) => {
    if (conversation && message.role === "assistant") {
      // The server keeps what the assistant said; a client cannot write it into the history.
      ctx.addIssue({ code: "custom", path: ["messages", i, "role"], message: "with conversationId, send only the new turn (user messages or tool results)" });
    }
    if (message.role === "assistant") openCalls = new Set(message.toolCalls?.map((c) => c.id));
    else if (message.role === "tool") {
      // In a conversation the call it answers is in the stored history.
      if (!conversation && !openCalls.has(message.toolCallId)) {
        ctx.addIssue({
          code: "custom",
          path: ["messages", i, "toolCallId"],
          message: `"${message.toolCallId}" answers no tool call of the assistant message before it`,
        });
      }
    } else openCalls = new Set();
    if (typeof message.content === "string") chars += message.content.length;
    else if (message.content !== null) {
      message.content.forEach((part, j) => {
        parts += 1;
        if (part.type === "text") chars += part.text.length;
        else {
          media += 1;
          const problem = mediaPartProblem(part);
          if (problem) ctx.addIssue({ code: "custom", path: ["messages", i, "content", j, ...(problem.field ? [problem.field] : [])], message: problem.message });
        }
      });
    }
  });
  if (chars > LIMITS.totalChars) ctx.addIssue({ code: "custom", path: ["messages"], message: `at most ${LIMITS.totalChars} characters in all, got ${chars}` });
  if (parts > MEDIA_LIMITS.parts) ctx.addIssue({ code: "custom", path: ["messages"], message: `at most ${MEDIA_LIMITS.parts} content parts in all, got ${parts}` });
  if (media > MEDIA_LIMITS.mediaParts) {
    ctx.addIssue({ code: "custom", path: ["messages"], message: `at most ${MEDIA_LIMITS.mediaParts} images, files or audio in all, got ${media}` });
  }
  const toolResults = conversation && messages.some((m) => m.role === "tool");
  if (!toolResults && !messages.some((m) => m.role === "user")) ctx.addIssue({ code: "custom", path: ["messages"], message: "needs at least one user message" });
}

export type ExecuteRequest = z.infer<typeof executeRequestSchema>;

const conversationIdSchema = z.string().regex(/^[A-Za-z0-9_-]{8,128}$/, "must be 8-128 characters of A-Z, a-z, 0-9, _ or -");

/** `listConversations({ limit?, startAfter? })` and `deleteConversation({ conversationId })` (API.md, "Conversations"). */
export const listConversationsSchema = z.strictObject({
  limit: z.number().int().min(1).max(100).optional(),
  startAfter: conversationIdSchema.optional(),
});
export const deleteConversationSchema = z.strictObject({ conversationId: conversationIdSchema });

/** `cancelExecution({ executionId })` (API.md, "Cancelling"). */
export const cancelRequestSchema = z.strictObject({
  executionId: z.string().regex(/^[A-Za-z0-9_-]{1,160}$/, "must be an executionId (letters, digits, _ or -)"),
});

// The schema's types are the core's own message types (a compile-time check).
type Assert<T extends true> = T;
export type _SchemaMatchesTypes = Assert<
  ExecuteRequest["messages"] extends Message[] | undefined
    ? ExecuteRequest["tools"] extends ToolSpec[] | undefined
      ? ExecuteRequest["toolChoice"] extends ToolChoice | undefined
        ? ExecuteRequest["responseFormat"] extends ResponseFormat | undefined
          ? true
          : false
        : false
      : false
    : false
>;
export type GenerationParams = z.infer<typeof generationParamsSchema>;

/** `messages[0].content` style paths, which is how clients name fields. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  return out === "" ? "request" : out;
}

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  errors?: Issue[][];
}

/**
 * The issue to show: for a union (content as a string or parts, a message by role) the one
 * from the branch that got furthest, so that the client reads "messages[0].content[1].url: …"
 * rather than "Invalid input".
 */
export function mostSpecificIssue(issue: Issue): Issue {
  if (issue.code !== "invalid_union" || !issue.errors || issue.errors.length === 0) return issue;
  let best: Issue | undefined;
  for (const branch of issue.errors) {
    const first = branch[0];
    if (first && (!best || first.path.length > best.path.length)) best = first;
  }
  if (!best || best.path.length === 0) return issue;
  const inner = mostSpecificIssue(best);
  return { ...inner, path: [...issue.path, ...inner.path] };
}

/** The text of a zod issue as we show it: `path: message`. */
export function describeIssue(raw: Issue): string {
  const issue = mostSpecificIssue(raw);
  return issue.code === "unrecognized_keys" && issue.keys
    ? `${formatPath(issue.path)}: unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`
    : `${formatPath(issue.path)}: ${issue.message}`;
}

/**
 * Parses with a schema, or throws a `validation` ExecutionError whose message names the
 * first bad field. Every value goes through checkSafeInput first (prototype keys, lone
 * surrogates, depth), whatever the schema.
 */
export function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown): T {
  checkSafeInput(input ?? {});
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ExecutionError("validation", describeIssue(result.error.issues[0] as unknown as Issue));
}

/** Total UTF-8 bytes of every string in a value: what counts against LIMITS.requestBytes. */
export function utf8Bytes(value: unknown): number {
  if (typeof value === "string") return Buffer.byteLength(value, "utf8");
  if (Array.isArray(value)) return value.reduce((sum: number, v) => sum + utf8Bytes(v), 0);
  if (value && typeof value === "object") {
    let sum = 0;
    for (const [k, v] of Object.entries(value)) sum += k.length + utf8Bytes(v);
    return sum;
  }
  return 0;
}
