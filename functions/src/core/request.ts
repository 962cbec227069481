import { z } from "zod";
import { ExecutionError } from "./errors.js";

/**
 * Limits on what one request may carry. A callable body is capped at 10 MB by the
 * platform; ours are far below that, sized for chat prompts, and documented in docs/api.md.
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
} as const;

const modelId = z.string().min(1).max(200);

export const chatMessageSchema = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string().max(LIMITS.messageChars),
});

export const generationParamsSchema = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: z.number().int().min(1).optional(),
  topP: z.number().gt(0).max(1).optional(),
  stop: z.array(z.string().min(1).max(LIMITS.stopChars)).max(LIMITS.stopSequences).optional(),
});

export const executeRequestSchema = z
  .strictObject({
    requestId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{8,128}$/, "must be 8-128 characters of A-Z, a-z, 0-9, _ or -")
      .optional(),
    model: modelId.optional(),
    messages: z.array(chatMessageSchema).min(1).max(LIMITS.messages).optional(),
    promptId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "must be 1-128 characters of A-Z, a-z, 0-9, _ or -").optional(),
    variables: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.union([z.string().max(LIMITS.variableChars), z.number(), z.boolean()]))
      .refine((v) => Object.keys(v).length <= LIMITS.variables, `at most ${LIMITS.variables} variables`)
      .optional(),
    params: generationParamsSchema.optional(),
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
    const total = request.messages?.reduce((sum, m) => sum + m.content.length, 0) ?? 0;
    if (total > LIMITS.totalChars) {
      ctx.addIssue({ code: "custom", path: ["messages"], message: `at most ${LIMITS.totalChars} characters in all, got ${total}` });
    }
    if (request.messages && !request.messages.some((m) => m.role === "user")) {
      ctx.addIssue({ code: "custom", path: ["messages"], message: "needs at least one user message" });
    }
  });

export type ExecuteRequest = z.infer<typeof executeRequestSchema>;
export type GenerationParams = z.infer<typeof generationParamsSchema>;

/** `messages[0].content` style paths, which is how clients name fields. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  return out === "" ? "request" : out;
}

/** Parses with a schema, or throws a `validation` ExecutionError whose message names the first bad field. */
export function parseOrThrow<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const message =
    issue.code === "unrecognized_keys"
      ? `${formatPath(issue.path)}: unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`
      : `${formatPath(issue.path)}: ${issue.message}`;
  return (() => {
    throw new ExecutionError("validation", message);
  })();
}
