import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type * as zod from "zod";
import { SAMPLING_PARAMS, type ModelSpec, type ProviderSpec } from "../core/catalog.js";

/**
 * `functions/catalog.json`: models and OpenAI-compatible providers added (or changed) by
 * configuration, merged with the built-in catalog (catalog.ts) without editing TypeScript.
 * It is read once when the functions load, validated with zod, and an invalid file stops the
 * build (`npm run build` runs lib/config/check-catalog.js) and the deploy with a message that
 * names the field. docs/operations.md ("Adding models and providers") has the format.
 */

/** The file next to functions/package.json; CATALOG_FILE points elsewhere (tests, tools). */
export function catalogFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.CATALOG_FILE ?? fileURLToPath(new URL("../../catalog.json", import.meta.url));
}

export class CatalogFileError extends Error {
  override name = "CatalogFileError";
}

type Zod = typeof zod;

/** The file's schema. Built on first use: zod loads only when there is a file to check. */
function schemaOf({ z }: Zod) {
  const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$/, "letters, digits and . _ / : - (1-128)");
  const usd = z.number().min(0).max(10_000);
  const timeouts = z.strictObject({ totalMs: z.number().int().min(1_000), firstTokenMs: z.number().int().min(100), idleMs: z.number().int().min(100) });
  const model = z.strictObject({
    id,
    upstreamId: z.string().min(1).max(200).optional(),
    contextWindow: z.number().int().min(256),
    maxOutputTokens: z.number().int().min(1),
    price: z.strictObject({
      inputPerMTokUsd: usd,
      outputPerMTokUsd: usd,
      cachedInputPerMTokUsd: usd.optional(),
      audioInputPerMTokUsd: usd.optional(),
      priceVersion: z.string().min(1).max(64).optional(),
    }),
    capabilities: z
      .strictObject({
        input: z.array(z.enum(["text", "image", "file", "audio"])).min(1),
        tools: z.boolean(),
        structuredOutput: z.boolean(),
        reasoning: z.boolean().optional(),
        unsupportedParams: z.array(z.enum(SAMPLING_PARAMS)).optional(),
      })
      .optional(),
    imageTokens: z.number().int().min(1).optional(),
    timeouts: timeouts.partial().optional(),
  });
  const provider = z.strictObject({
    id: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, "lowercase letters, digits and - (1-32), starting with a letter"),
    name: z.string().min(1).max(100).optional(),
    baseUrl: z
      .union([z.url({ protocol: /^https?$/ }), z.strictObject({ env: z.string().regex(/^[A-Z][A-Z0-9_]*$/, "an environment variable name") })])
      .optional(),
    apiKeySecret: z.string().regex(/^[A-Z][A-Z0-9_]*$/, "a secret name: A-Z, 0-9 and _").optional(),
    fetchesUrls: z.array(z.enum(["image", "file", "audio"])).optional(),
    timeouts: timeouts.optional(),
    models: z.array(model).default([]),
  });
  return z.strictObject({ $schema: z.string().optional(), providers: z.array(provider) });
}

export interface CatalogFile {
  providers: {
    id: string;
    name?: string;
    baseUrl?: string | { env: string };
    apiKeySecret?: string;
    fetchesUrls?: ("image" | "file" | "audio")[];
    timeouts?: ProviderSpec["timeouts"];
    models: (Omit<ModelSpec, "upstreamId" | "price"> & {
      upstreamId?: string;
      price: { inputPerMTokUsd: number; outputPerMTokUsd: number; cachedInputPerMTokUsd?: number; audioInputPerMTokUsd?: number; priceVersion?: string };
    })[];
  }[];
}

/** Reads and validates the file; undefined when there is none. Throws CatalogFileError naming the field. */
export function readCatalogFile(path = catalogFilePath()): CatalogFile | undefined {
  if (!existsSync(path)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new CatalogFileError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const zod = createRequire(import.meta.url)("zod") as Zod;
  const result = schemaOf(zod).safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
    throw new CatalogFileError(`${path}: ${where || "the file"}: ${issue.message}`);
  }
  return result.data as CatalogFile;
}

const DEFAULT_TIMEOUTS = { totalMs: 120_000, firstTokenMs: 30_000, idleMs: 20_000 };

/**
 * The built-in providers with the file's merged in: a provider of the file with a built-in id
 * changes that provider's settings and adds or replaces models by id; a new id adds a
 * provider (it needs a baseUrl). Model ids stay unique across providers (Catalog checks).
 */
export function mergeCatalog(builtIn: readonly ProviderSpec[], file: CatalogFile | undefined, source = "catalog.json"): ProviderSpec[] {
  if (!file) return [...builtIn];
  const merged = builtIn.map((p) => ({ ...p, models: [...p.models] }));
  for (const [i, entry] of file.providers.entries()) {
    const models: ModelSpec[] = entry.models.map((m) => ({
      ...m,
      upstreamId: m.upstreamId ?? m.id,
      price: {
        inputPerMTokUsd: m.price.inputPerMTokUsd,
        outputPerMTokUsd: m.price.outputPerMTokUsd,
        cachedInputPerMTokUsd: m.price.cachedInputPerMTokUsd ?? m.price.inputPerMTokUsd,
        ...(m.price.audioInputPerMTokUsd !== undefined ? { audioInputPerMTokUsd: m.price.audioInputPerMTokUsd } : {}),
        priceVersion: m.price.priceVersion ?? source,
      },
    }));
    const existing = merged.find((p) => p.id === entry.id);
    const { models: _models, ...settings } = entry;
    if (existing) {
      Object.assign(existing, settings, { timeouts: entry.timeouts ?? existing.timeouts });
      for (const model of models) {
        const at = existing.models.findIndex((m) => m.id === model.id);
        if (at >= 0) existing.models[at] = model;
        else existing.models.push(model);
      }
      continue;
    }
    if (!entry.baseUrl) throw new CatalogFileError(`${source}: providers[${i}].baseUrl: a new provider ("${entry.id}") needs a baseUrl (a URL, or { "env": "NAME" }).`);
    merged.push({ ...settings, id: entry.id, name: entry.name ?? entry.id, baseUrl: entry.baseUrl, timeouts: entry.timeouts ?? DEFAULT_TIMEOUTS, models });
  }
  return merged;
}
