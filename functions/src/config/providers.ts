import type { ProviderSpec } from "../core/catalog.js";
import { catalog } from "./catalog.js";
import { defaultModel } from "./params.js";

/** Where and how to reach a provider, once its URL and key are known at runtime. */
export interface ProviderConnection {
  baseUrl: string;
  /** Empty for keyless endpoints (the openai SDK is given a placeholder). */
  apiKey: string;
}

/**
 * The connection for a provider, or undefined when it is not configured here: no key
 * in its secret, or no URL in its environment variable. Secrets bound to a function
 * appear as environment variables of the same name, which is what `secret.value()` reads.
 */
export function providerConnection(provider: ProviderSpec, env: NodeJS.ProcessEnv = process.env): ProviderConnection | undefined {
  const baseUrl = typeof provider.baseUrl === "string" ? provider.baseUrl : env[provider.baseUrl.env]?.trim();
  if (!baseUrl) return undefined;
  const apiKey = provider.apiKeySecret ? (env[provider.apiKeySecret]?.trim() ?? "") : "";
  if (provider.apiKeySecret && apiKey === "") return undefined;
  return { baseUrl: baseUrl.replace(/\/+$/, ""), apiKey };
}

export function configuredProviders(env: NodeJS.ProcessEnv = process.env): ProviderSpec[] {
  return catalog.providers.filter((p) => providerConnection(p, env) !== undefined);
}

/** DEFAULT_MODEL when set, else the first model of the first configured provider. */
export function resolveDefaultModelId(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const configured = defaultModel.value().trim();
  if (configured !== "") return configured;
  return configuredProviders(env)[0]?.models[0]?.id;
}
