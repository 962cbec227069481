import { readFileSync } from "node:fs";
import type { ProviderSpec } from "../core/catalog.js";
import type { LiveOutcome } from "../core/provider-check.js";

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

export interface ProviderReadiness {
  configured: boolean;
  /** For configured providers: whether it answered and took the key. */
  ok?: boolean;
  status?: LiveOutcome["status"];
  detail?: string;
  checkedAt?: string;
}

export interface ReadinessReport {
  status: "ok" | "degraded";
  checks: { firestore: HealthReport["checks"]["firestore"]; providers: Record<string, ProviderReadiness> };
  version: string;
}

export interface ReadinessDeps extends Omit<HealthDeps, "isConfigured"> {
  /** Asks the provider at no cost whether its key works (core/provider-check.ts), or undefined when it is not configured. */
  check: (provider: ProviderSpec) => Promise<LiveOutcome> | undefined;
  /** Epoch ms, for the cache. */
  clock?: () => number;
}

/** Each provider's answer is kept this long: a readiness probe must not become load on providers. */
export const READINESS_CACHE_MS = 60_000;
const cache = new Map<string, { at: number; outcome: Promise<LiveOutcome> }>();

/**
 * Readiness for operators: Firestore answers, and every configured provider is reachable
 * and takes its key (a free call, cached for a minute), without spending tokens. Degraded
 * when any configured provider is not ok.
 */
export async function checkReadiness(deps: ReadinessDeps): Promise<ReadinessReport> {
  const clock = deps.clock ?? Date.now;
  const [base, entries] = await Promise.all([
    checkHealth({ ...deps, isConfigured: () => true }),
    Promise.all(
      deps.providers.map(async (provider): Promise<[string, ProviderReadiness]> => {
        const now = clock();
        let cached = cache.get(provider.id);
        if (!cached || now - cached.at > READINESS_CACHE_MS) {
          const outcome = deps.check(provider);
          if (!outcome) return [provider.id, { configured: false }];
          cached = { at: now, outcome: outcome.catch((error: unknown) => ({ status: "unexpected" as const, detail: String(error).slice(0, 100) })) };
          cache.set(provider.id, cached);
        }
        const outcome = await cached.outcome;
        return [provider.id, { configured: true, ok: outcome.status === "ok", status: outcome.status, detail: outcome.detail, checkedAt: new Date(cached.at).toISOString() }];
      }),
    ),
  ]);
  const providers = Object.fromEntries(entries);
  const configured = Object.values(providers).filter((p) => p.configured);
  const ok = base.checks.firestore.ok && configured.length > 0 && configured.every((p) => p.ok);
  return { status: ok ? "ok" : "degraded", checks: { firestore: base.checks.firestore, providers }, version: base.version };
}

/** Forgets cached provider answers (tests). */
export function clearReadinessCache(): void {
  cache.clear();
}
