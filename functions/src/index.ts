import { onCall, onRequest } from "firebase-functions/https";
import { onSchedule } from "firebase-functions/scheduler";
import { setGlobalOptions } from "firebase-functions/options";
import {
  appCheckReplayProtection,
  appCheckReplayProtectionAtLoad,
  corsOrigins,
  enforceAppCheck,
  maxRequestTimeoutMs,
  maxInstances,
  PROVIDER_CONCURRENCY,
  PROVIDER_FUNCTION_TIMEOUT_SECONDS,
  providerSecretsToBind,
  readinessPublic,
  region,
  reservationGraceMs,
} from "./config/params.js";
import { verifyAppCheck, verifyBearer } from "./adapters/auth.js";
import { firestore } from "./adapters/firestore.js";
import { guardCallableWire } from "./adapters/callable-wire.js";
import { createApiHandler } from "./adapters/http-api.js";

setGlobalOptions({ region });

/**
 * Sizing for functions that mostly wait on a provider: one vCPU serves many concurrent
 * executions (I/O bound; concurrency > 1 needs a whole vCPU), 512 MiB is ample for
 * buffered outputs (PROVIDER_CONCURRENCY and MAX_INSTANCES: docs/scaling.md), and the
 * timeout leaves room past MAX_REQUEST_TIMEOUT_MS (240 s) for the final Firestore write
 * (retried through short outages).
 */
const providerCalling = {
  secrets: providerSecretsToBind(),
  cpu: 1,
  memory: "512MiB",
  concurrency: PROVIDER_CONCURRENCY,
  maxInstances,
  timeoutSeconds: PROVIDER_FUNCTION_TIMEOUT_SECONDS,
} as const;
/** Small reads and writes: little memory; a whole vCPU only because concurrency > 1 requires one. */
const bookkeeping = { cpu: 1, memory: "256MiB", concurrency: 80, timeoutSeconds: 30 } as const;

const appCheck = () => enforceAppCheck.value();

/**
 * Every deployed function loads this whole module, so each handler's own code (the
 * pipeline, validation schemas, repositories) loads on that function's first call:
 * a cold start pays for its own function only.
 */
function loadOnFirstCall<A extends unknown[], R>(load: () => Promise<(...args: A) => Promise<R>>): (...args: A) => Promise<R> {
  let handler: Promise<(...args: A) => Promise<R>> | undefined;
  return async (...args: A) => (await (handler ??= load()))(...args);
}

const pipelineDeps = () => import("./adapters/pipeline-deps.js");

/** OpenAI-compatible HTTPS API and health check (API.md, "HTTPS function api"). */
export const api = onRequest(
  { ...providerCalling, invoker: "public" },
  createApiHandler({
    corsOrigins: () => corsOrigins.value(),
    verifyBearer,
    readinessPublic: () => readinessPublic.value(),
    chatCompletions: loadOnFirstCall(async () => {
      const [{ chatCompletions }, { productionDeps, productionCancels }] = await Promise.all([import("./adapters/openai-api.js"), pipelineDeps()]);
      const options = {
        deps: productionDeps,
        enforceAppCheck: appCheck,
        consumeAppCheck: () => appCheckReplayProtection.value(),
        verifyBearer,
        verifyAppCheck,
        cancels: productionCancels,
      };
      return (req: Parameters<typeof chatCompletions>[0], res: Parameters<typeof chatCompletions>[1]) => chatCompletions(req, res, options);
    }),
    cancelExecution: loadOnFirstCall(async () => {
      const [{ cancelOverHttp }, { productionCancelDeps }] = await Promise.all([import("./adapters/openai-api.js"), pipelineDeps()]);
      // Replay protection as for every /v1 route: a token sent with it is spent (docs/operations.md).
      const options = { cancelDeps: productionCancelDeps, enforceAppCheck: appCheck, consumeAppCheck: () => appCheckReplayProtection.value(), verifyBearer, verifyAppCheck };
      return (req: Parameters<typeof cancelOverHttp>[0], res: Parameters<typeof cancelOverHttp>[1], id: string) => cancelOverHttp(req, res, id, options);
    }),
  }),
);

/** Executes a prompt; streams with `.stream()` (API.md, "executePrompt"). */
export const executePrompt = guardCallableWire(
  onCall(
    { ...providerCalling, consumeAppCheckToken: appCheckReplayProtectionAtLoad() },
    loadOnFirstCall(async () => {
      const [{ createExecutePromptHandler }, { productionDeps, productionCancels }] = await Promise.all([
        import("./adapters/execute-prompt-callable.js"),
        pipelineDeps(),
      ]);
      return createExecutePromptHandler({ deps: productionDeps, enforceAppCheck: appCheck, cancels: productionCancels });
    }),
  ),
);

/** The owner stops one of its running executions, from any device (API.md, "Cancelling"). */
export const cancelExecution = guardCallableWire(
  onCall(
    bookkeeping,
    loadOnFirstCall(async () => {
      const [{ createCancelExecutionHandler }, { productionCancelDeps }] = await Promise.all([import("./adapters/cancellation.js"), pipelineDeps()]);
      return createCancelExecutionHandler({ deps: productionCancelDeps, enforceAppCheck: appCheck });
    }),
  ),
);

const conversationHandlers = async () => ({
  callables: await import("./adapters/conversation-callables.js"),
  options: { db: firestore, enforceAppCheck: appCheck },
});

/** The caller's conversations, newest first, paginated (API.md, "Conversations"). */
export const listConversations = guardCallableWire(
  onCall(
    bookkeeping,
    loadOnFirstCall(async () => {
      const { callables, options } = await conversationHandlers();
      return callables.createListConversationsHandler(options);
    }),
  ),
);

/** Deletes one of the caller's conversations and all its messages. */
export const deleteConversation = guardCallableWire(
  onCall(
    { ...bookkeeping, timeoutSeconds: 120 },
    loadOnFirstCall(async () => {
      const { callables, options } = await conversationHandlers();
      return callables.createDeleteConversationHandler(options);
    }),
  ),
);

const usageHandlers = async () => {
  const [callables, { firestoreUsageRepo }, { limitsFromParams }] = await Promise.all([
    import("./adapters/usage-callables.js"),
    import("./adapters/usage-repo.js"),
    import("./config/limits.js"),
  ]);
  return { callables, options: { repo: () => firestoreUsageRepo(firestore), limits: limitsFromParams, enforceAppCheck: appCheck } };
};

/** The caller's usage, budget and rate-limit headroom (API.md, "getUsage"). */
export const getUsage = guardCallableWire(
  onCall(
    bookkeeping,
    loadOnFirstCall(async () => {
      const { callables, options } = await usageHandlers();
      return callables.createGetUsageHandler(options);
    }),
  ),
);

/** Admins set a user's monthly budget (API.md, "setUserBudget"). */
export const setUserBudget = guardCallableWire(
  onCall(
    bookkeeping,
    loadOnFirstCall(async () => {
      const { callables, options } = await usageHandlers();
      return callables.createSetUserBudgetHandler(options);
    }),
  ),
);

/** Admins set one user's rate and concurrency limits (docs/operations.md, docs/scaling.md). */
export const setUserLimits = guardCallableWire(
  onCall(
    bookkeeping,
    loadOnFirstCall(async () => {
      const { callables, options } = await usageHandlers();
      return callables.createSetUserLimitsHandler(options);
    }),
  ),
);

/** Closes executions whose instance died, for users who send nothing more (docs/operations.md). */
export const sweepAbandoned = onSchedule({ schedule: "every 10 minutes", ...bookkeeping, timeoutSeconds: 300 }, async () => {
  const [{ sweepAbandonedExecutions }, { productionStore }, { cloudLogger }, { reservationLifetimeMs }] = await Promise.all([
    import("./adapters/sweeper.js"),
    pipelineDeps(),
    import("./adapters/logger.js"),
    import("./core/pipeline/settle.js"),
  ]);
  await sweepAbandonedExecutions(firestore, productionStore(), {
    now: Date.now(),
    // Older than the longest a reservation lasts (the longest request's, core/pipeline/admit.ts).
    olderThanMs: reservationLifetimeMs(maxRequestTimeoutMs.value(), PROVIDER_FUNCTION_TIMEOUT_SECONDS * 1_000, reservationGraceMs.value()),
    logger: cloudLogger,
  });
});
