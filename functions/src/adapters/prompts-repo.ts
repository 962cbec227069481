import type { Firestore } from "firebase-admin/firestore";
import { z } from "zod";
import { ExecutionError } from "../core/errors.js";
import type { PromptStore } from "../core/ports.js";
import { chatMessageSchema, generationParamsSchema } from "../core/request.js";
import type { PromptTemplate } from "../core/templates.js";

const variableValue = z.union([z.string(), z.number(), z.boolean()]);

/** The shape firestore.rules enforces on writes, checked again on read: documents may predate the rules. */
export const promptTemplateSchema = z.object({
  name: z.string().min(1).max(200),
  messages: z.array(chatMessageSchema).min(1).max(100),
  variables: z
    .record(
      z.string(),
      z.object({ type: z.enum(["string", "number", "boolean"]), required: z.boolean().optional(), default: variableValue.optional() }),
    )
    .optional(),
  model: z.string().min(1).max(200).optional(),
  params: generationParamsSchema.optional(),
});

export function firestorePromptStore(db: () => Promise<Firestore>): PromptStore {
  return {
    async get(uid, promptId) {
      const snapshot = await (await db()).doc(`users/${uid}/prompts/${promptId}`).get();
      if (!snapshot.exists) return undefined;
      const parsed = promptTemplateSchema.safeParse(snapshot.data());
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ExecutionError("validation", `promptId: the saved prompt "${promptId}" is malformed at ${issue.path.join(".") || "its root"}.`);
      }
      return parsed.data as PromptTemplate;
    },
  };
}
