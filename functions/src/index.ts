import { onCall, onRequest } from "firebase-functions/https";
import { onSchedule } from "firebase-functions/scheduler";
import { setGlobalOptions } from "firebase-functions/options";
import { corsOrigins, enforceAppCheck, maxRequestTimeoutMs, providerSecrets, reservationGraceMs } from "./config/params.js";
import { verifyAppCheck, verifyBearer } from "./adapters/auth.js";
import { createExecutePromptHandler } from "./adapters/execute-prompt-callable.js";
import { firestore } from "./adapters/firestore.js";
import { createApiHandler } from "./adapters/http-api.js";
import { cloudLogger } from "./adapters/logger.js";
import { limitsFromParams, productionDeps, productionStore } from "./adapters/pipeline-deps.js";
import { sweepAbandonedExecutions } from "./adapters/sweeper.js";
import { createGetUsageHandler, createSetUserBudgetHandler } from "./adapters/usage-callables.js";
import { firestoreUsageRepo } from "./adapters/usage-repo.js";

setGlobalOptions({ region: "us-central1" });

/**
 * Sizing for functions that mostly wait on a provider: one vCPU serves many concurrent
 * executions (I/O bound; concurrency > 1 needs a whole vCPU), 512 MiB is ample for
 * buffered outputs, and the timeout leaves room past MAX_REQUEST_TIMEOUT_MS (240 s)
 * for the final Firestore write.
 */
const providerCalling = { secrets: providerSecrets, cpu: 1, memory: "512MiB", concurrency: 80, timeoutSeconds: 300 } as const;
/** Small reads and writes: little memory; a whole vCPU only because concurrency > 1 requires one. */
const bookkeeping = { cpu: 1, memory: "256MiB", concurrency: 80, timeoutSeconds: 30 } as const;

const appCheck = () => enforceAppCheck.value();
const usageOptions = { repo: () => firestoreUsageRepo(firestore), limits: limitsFromParams, enforceAppCheck: appCheck };

/** OpenAI-compatible HTTPS API and health check (API.md, "HTTPS function api"). */
export const api = onRequest(
  { ...providerCalling, invoker: "public" },
  createApiHandler({ deps: productionDeps, enforceAppCheck: appCheck, corsOrigins: () => corsOrigins.value(), verifyBearer, verifyAppCheck }),
);

/** Executes a prompt; streams with `.stream()` (API.md, "executePrompt"). */
export const executePrompt = onCall(providerCalling, createExecutePromptHandler({ deps: productionDeps, enforceAppCheck: appCheck }));

/** The caller's usage, budget and rate-limit headroom (API.md, "getUsage"). */
export const getUsage = onCall(bookkeeping, createGetUsageHandler(usageOptions));

/** Admins set a user's monthly budget (API.md, "setUserBudget"). */
export const setUserBudget = onCall(bookkeeping, createSetUserBudgetHandler(usageOptions));

/** Closes executions whose instance died, for users who send nothing more (docs/operations.md). */
export const sweepAbandoned = onSchedule({ schedule: "every 10 minutes", ...bookkeeping, timeoutSeconds: 300 }, async () => {
  await sweepAbandonedExecutions(firestore, productionStore(), {
    now: Date.now(),
    olderThanMs: maxRequestTimeoutMs.value() + reservationGraceMs.value(),
    logger: cloudLogger,
  });
});
