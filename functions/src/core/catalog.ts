import type { InputKind } from "./messages.js";

/** Prices in US dollars per million tokens, as providers publish them. */
export interface ModelPrice {
  inputPerMTokUsd: number;
  cachedInputPerMTokUsd: number;
  outputPerMTokUsd: number;
  /** Audio input tokens, when the provider prices them apart (else the input price). */
  audioInputPerMTokUsd?: number;
  /** Date the figures were checked; stored on every execution's cost so old records stay explainable. */
  priceVersion: string;
}

export interface ModelTimeouts {
  /** Whole request, first byte to last delta. */
  totalMs: number;
  /** Until the first content delta (or the whole response when not streaming). */
  firstTokenMs: number;
  /** Longest silence allowed between two deltas. */
  idleMs: number;
}

/** What a model can take and do (API.md, "Catalog"); requests needing more are refused or skip it. */
export interface ModelCapabilities {
  input: InputKind[];
  tools: boolean;
  structuredOutput: boolean;
  /** Takes `reasoningEffort` (forwarded only to such models). */
  reasoning?: boolean;
  /**
   * Generation params the model refuses (reasoning models refuse sampling controls): a request
   * setting one is refused naming it, and a fallback model that refuses it is skipped.
   */
  unsupportedParams?: SamplingParam[];
}

/** Generation params that some models do not take. */
export const SAMPLING_PARAMS = ["temperature", "topP", "stop", "seed", "presencePenalty", "frequencyPenalty"] as const;
export type SamplingParam = (typeof SAMPLING_PARAMS)[number];

/** A param's name as OpenAI's request spells it (`presencePenalty` → `presence_penalty`). */
export function openAIParamName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export const TEXT_ONLY: ModelCapabilities = { input: ["text"], tools: false, structuredOutput: false };

/** Upper bound of input tokens one image costs, when the model does not say (docs/api.md, "Budgets"). */
export const DEFAULT_IMAGE_TOKENS = 2_000;

export interface ModelSpec {
  /** Our id, unique across providers; what clients send as `model`. */
  id: string;
  /** The id the provider expects. */
  upstreamId: string;
  contextWindow: number;
  maxOutputTokens: number;
  price: ModelPrice;
  /** Absent: text only, no tools, no structured output. */
  capabilities?: ModelCapabilities;
  /** Upper bound of the input tokens of one image, for budget reservations; default DEFAULT_IMAGE_TOKENS. */
  imageTokens?: number;
  /** Overrides of the provider's timeouts. */
  timeouts?: Partial<ModelTimeouts>;
}

export interface ProviderSpec {
  id: string;
  name: string;
  /** A fixed URL, or the name of an environment variable holding it (for local endpoints). */
  baseUrl: string | { env: string };
  /** Name of the Secret Manager secret holding the API key; absent for keyless endpoints. */
  apiKeySecret?: string;
  /**
   * Whether model ids may carry a `+scenario` suffix that is passed upstream. Only the
   * local provider sets this: it is how tests choose a fault through `executePrompt`.
   */
  acceptsScenarioSuffix?: boolean;
  /**
   * Media kinds the provider fetches itself from an https URL. Parts of other kinds that
   * come as https URLs are fetched by us (from allowed hosts only) and sent as data URLs.
   */
  fetchesUrls?: InputKind[];
  timeouts: ModelTimeouts;
  models: ModelSpec[];
  /** What `npm run verify-keys` needs to know about the provider's keys. */
  keyCheck?: {
    /** A regular expression a real key matches (a cheap offline check). */
    pattern: string;
    /** A free endpoint, relative to baseUrl, that tells whether the key has credit left (OpenRouter's `/key`). */
    creditPath?: string;
  };
}

/** A model as the pipeline uses it: its spec, its provider, and the effective timeouts. */
export interface ResolvedModel {
  id: string;
  upstreamId: string;
  provider: ProviderSpec;
  spec: ModelSpec;
  timeouts: ModelTimeouts;
  capabilities: ModelCapabilities;
}

export class Catalog {
  private readonly byId = new Map<string, { provider: ProviderSpec; spec: ModelSpec }>();

  constructor(readonly providers: readonly ProviderSpec[]) {
    for (const provider of providers) {
      for (const spec of provider.models) {
        if (this.byId.has(spec.id)) throw new Error(`catalog: model id "${spec.id}" is declared twice`);
        this.byId.set(spec.id, { provider, spec });
      }
    }
  }

  /** The model for a client-sent id, or undefined when the catalog has none. */
  resolve(id: string): ResolvedModel | undefined {
    const exact = this.byId.get(id);
    if (exact) return this.toResolved(id, exact.provider, exact.spec, exact.spec.upstreamId);
    const plus = id.indexOf("+");
    if (plus <= 0) return undefined;
    const base = this.byId.get(id.slice(0, plus));
    if (!base?.provider.acceptsScenarioSuffix) return undefined;
    return this.toResolved(id, base.provider, base.spec, base.spec.upstreamId + id.slice(plus));
  }

  provider(id: string): ProviderSpec | undefined {
    return this.providers.find((p) => p.id === id);
  }

  models(): { provider: ProviderSpec; spec: ModelSpec }[] {
    return [...this.byId.values()];
  }

  private toResolved(id: string, provider: ProviderSpec, spec: ModelSpec, upstreamId: string): ResolvedModel {
    return { id, upstreamId, provider, spec, timeouts: { ...provider.timeouts, ...spec.timeouts }, capabilities: spec.capabilities ?? TEXT_ONLY };
  }
}
