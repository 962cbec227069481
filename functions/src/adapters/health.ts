import { readFileSync } from "node:fs";
import type { ProviderSpec } from "../core/catalog.js";

export interface HealthReport {
  status: "ok" | "degraded";
  checks: {
    firestore: { ok: boolean; latencyMs: number; error?: string };
    providers: Record<string, { configured: boolean }>;
  };
  version: string;
}

export interface HealthDeps {
  /** Resolves when Firestore answered a read. */
  pingFirestore: () => Promise<void>;
  providers: readonly ProviderSpec[];
  isConfigured: (provider: ProviderSpec) => boolean;
  timeoutMs: number;
  now?: () => number;
}

let version: string | undefined;

/** The functions package version, read once from the deployed package.json. */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  return version;
}

async function withTimeout(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Degraded when Firestore does not answer in time or no provider has a key; never reveals a key. */
export async function checkHealth(deps: HealthDeps): Promise<HealthReport> {
  const now = deps.now ?? (() => performance.now());
  const started = now();
  let firestore: HealthReport["checks"]["firestore"];
  try {
    await withTimeout(deps.pingFirestore(), deps.timeoutMs);
    firestore = { ok: true, latencyMs: Math.round(now() - started) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : "unreachable";
    firestore = { ok: false, latencyMs: Math.round(now() - started), error: reason.slice(0, 200) };
  }
  const providers = Object.fromEntries(deps.providers.map((p) => [p.id, { configured: deps.isConfigured(p) }]));
  const anyProvider = Object.values(providers).some((p) => p.configured);
  return {
    status: firestore.ok && anyProvider ? "ok" : "degraded",
    checks: { firestore, providers },
    version: packageVersion(),
  };
}
