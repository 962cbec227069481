import type { Firestore } from "firebase-admin/firestore";
import type { CallableRequest } from "firebase-functions/https";
import { deleteConversationSchema, listConversationsSchema, parseOrThrow } from "../core/request.js";
import { deleteConversation, listConversations } from "./conversations-repo.js";
import { requireCaller } from "./caller.js";
import { toHttpsError } from "./https-error.js";

export interface ConversationCallableOptions {
  db: () => Promise<Firestore>;
  enforceAppCheck: () => boolean;
}

/** `listConversations({ limit?, startAfter? })`: the caller's conversations, newest first. */
export function createListConversationsHandler(options: ConversationCallableOptions) {
  return async (request: CallableRequest<unknown>) => {
    try {
      const uid = requireCaller(request, options.enforceAppCheck());
      const { limit, startAfter } = parseOrThrow(listConversationsSchema, request.data);
      return await listConversations(await options.db(), uid, { ...(limit ? { limit } : {}), ...(startAfter ? { startAfter } : {}) });
    } catch (error) {
      throw toHttpsError(error);
    }
  };
}

/** `deleteConversation({ conversationId })`: the conversation and all its messages. */
export function createDeleteConversationHandler(options: ConversationCallableOptions) {
  return async (request: CallableRequest<unknown>) => {
    try {
      const uid = requireCaller(request, options.enforceAppCheck());
      const { conversationId } = parseOrThrow(deleteConversationSchema, request.data);
      return await deleteConversation(await options.db(), uid, conversationId);
    } catch (error) {
      throw toHttpsError(error);
    }
  };
}
