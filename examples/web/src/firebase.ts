import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";
import type { ConversationSummary, ExecutePromptRequest, ExecutionResult, StreamChunk, UsageResult } from "./api";
import { emulatorConfig } from "./config";

const config = emulatorConfig();
const app = initializeApp({ projectId: config.projectId, apiKey: "demo-key" });

export const auth = getAuth(app);
connectAuthEmulator(auth, `http://${config.auth.host}:${config.auth.port}`, { disableWarnings: true });
export const db = getFirestore(app);
connectFirestoreEmulator(db, config.firestore.host, config.firestore.port);
const functions = getFunctions(app, config.region);
connectFunctionsEmulator(functions, config.functions.host, config.functions.port);

/** `GET /v1/models` of the `api` function. */
export const modelsUrl = `http://${config.functions.host}:${config.functions.port}/${config.projectId}/${config.region}/api/v1/models`;

export const executePrompt = httpsCallable<ExecutePromptRequest, ExecutionResult, StreamChunk>(functions, "executePrompt", { timeout: 300_000 });
export const cancelExecution = httpsCallable<{ executionId: string }, { executionId: string; status: string }>(functions, "cancelExecution");
export const getUsage = httpsCallable<Record<string, never>, UsageResult>(functions, "getUsage");
export const listConversations = httpsCallable<{ limit?: number }, { conversations: ConversationSummary[] }>(functions, "listConversations");
export const deleteConversation = httpsCallable<{ conversationId: string }, { conversationId: string; deletedMessages: number }>(
  functions,
  "deleteConversation",
);
