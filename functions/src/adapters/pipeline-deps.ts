import { randomBytes } from "node:crypto";
import type { ProviderSpec } from "../core/catalog.js";
import type { PipelineDeps, PipelineSettings } from "../core/pipeline/index.js";
import { SpeculationGate } from "../core/pipeline/speculation.js";
import type { ModelClient } from "../core/ports.js";
import { catalog } from "../config/catalog.js";
import {
  defaultFallbackModels,
  globalLedgerShards,
  historyTtlDays,
  conversationTtlDays,
  logPrompts,
  maxRequestTimeoutMs,
  mediaUrlHosts,
  PROVIDER_FUNCTION_TIMEOUT_SECONDS,
  retryBaseDelayMs,
  retryMaxDelayMs,
  retryMaxRetries,
  speculativeStart,
} from "../config/params.js";
import { limitsFromParams } from "../config/limits.js";
import { providerConnection, resolveDefaultModelId } from "../config/providers.js";
import { firestoreCancelChannel, type CancelChannel, type CancelDeps } from "./cancellation.js";
import { firestoreExecutionStore, type FirestoreExecutionStore } from "./executions-repo.js";
import { firestore } from "./firestore.js";
import { cloudLogger } from "./logger.js";
import { openAIModelClient } from "./openai-model-client.js";
import { createMediaFetcher } from "./media-fetcher.js";
import { firestorePromptStore } from "./prompts-repo.js";

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** 20 random base-62 characters, like Firestore's auto ids (~119 bits). */
// Random bytes drawn 4 KiB at a time: one system call per ~200 ids instead of one per id (measured).
let pool = Buffer.alloc(0);
let offset = 0;

export function newExecutionId(): string {
  if (offset + 20 > pool.length) {
    pool = randomBytes(4_096);
    offset = 0;
  }
  let id = "";
  for (let i = offset; i < offset + 20; i++) id += ID_ALPHABET[pool[i]! % 62];
  offset += 20;
  return id;
}

/**
 * `read`, called again at most once a second. Params and keys come from the environment, which
 * changes only where a test sets process.env; reading and parsing them on every request was
 * measured, so an instance reads them once a second instead.
 */
function everySecond<T>(read: () => T): () => T {
  let at = Number.NEGATIVE_INFINITY;
  let value: T;
  return () => {
    const now = Date.now();
    if (now - at >= 1_000) {
      value = read();
      at = now;
    }
    return value;
  };
}

/** The pipeline's settings from the params (read once a second). */
export const settingsFromParams: () => PipelineSettings = everySecond(() => readSettings());

function readSettings(): PipelineSettings {
  const defaultModel = resolveDefaultModelId();
  return {
    ...(defaultModel ? { defaultModel } : {}),
    defaultFallbackModels: defaultFallbackModels
      .value()
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
    maxTimeoutMs: maxRequestTimeoutMs.value(),
    functionTimeoutMs: PROVIDER_FUNCTION_TIMEOUT_SECONDS * 1_000,
    retry: { maxRetries: retryMaxRetries.value(), baseDelayMs: retryBaseDelayMs.value(), maxDelayMs: retryMaxDelayMs.value() },
    historyTtlDays: historyTtlDays.value(),
    conversationTtlDays: conversationTtlDays.value(),
    logPrompts: logPrompts.value(),
    limits: limitsFromParams(),
  };
}

/** Clients per provider, remade only when its URL or key changes (both read once a second). */
function modelClients(): (provider: ProviderSpec) => ModelClient | undefined {
  const cache = new Map<string, { signature: string; client: ModelClient }>();
  const connections = new Map<string, () => ReturnType<typeof providerConnection>>();
  return (provider) => {
    let connectionOf = connections.get(provider.id);
    if (!connectionOf) connections.set(provider.id, (connectionOf = everySecond(() => providerConnection(provider))));
    const connection = connectionOf();
    if (!connection) return undefined;
    const signature = `${connection.baseUrl}\n${connection.apiKey}`;
    const cached = cache.get(provider.id);
    if (cached?.signature === signature) return cached.client;
    const client = openAIModelClient(provider, connection);
    cache.set(provider.id, { signature, client });
    return client;
  };
}

let store: FirestoreExecutionStore | undefined;

export function productionStore(): FirestoreExecutionStore {
  store ??= firestoreExecutionStore(firestore, { globalShards: globalLedgerShards.value() });
  return store;
}

let deps: PipelineDeps | undefined;

/** The pipeline wired to Firestore, the openai SDK and deploy-time params; built on first use. */
export function productionDeps(): PipelineDeps {
  deps ??= {
    catalog,
    modelClient: modelClients(),
    executions: productionStore(),
    prompts: firestorePromptStore(firestore),
    media: createMediaFetcher({ policy: everySecond(() => ({ allowedHosts: mediaUrlHosts.value() })) }),
    settings: settingsFromParams,
    newId: newExecutionId,
    logger: cloudLogger,
    // One per instance: what this instance knows about its users' room (core/pipeline/speculation.ts).
    speculation: new SpeculationGate(undefined, everySecond(() => speculativeStart.value())),
  };
  return deps;
}

let cancels: CancelChannel | undefined;

/** How cancelExecution reaches the instance running an execution (one Firestore listener per instance). */
export function productionCancels(): CancelChannel {
  cancels ??= firestoreCancelChannel(firestore, cloudLogger);
  return cancels;
}

export function productionCancelDeps(): CancelDeps {
  return {
    db: firestore,
    channel: productionCancels(),
    reclaimAbandoned: (uid, now, ids) => productionStore().reclaimAbandoned(uid, now, ids),
  };
}
