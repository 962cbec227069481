import { afterEach, describe, expect, it } from "vitest";
import { catalog } from "../../src/config/catalog.js";
import { configuredProviders, providerConnection, resolveDefaultModelId } from "../../src/config/providers.js";

const openai = catalog.provider("openai")!;
const local = catalog.provider("local")!;

afterEach(() => {
  delete process.env.DEFAULT_MODEL;
});

describe("provider configuration", () => {
  it("a keyed provider is configured by its secret, a keyless one by its URL", () => {
    expect(providerConnection(openai, {})).toBeUndefined();
    expect(providerConnection(openai, { OPENAI_API_KEY: "  " })).toBeUndefined();
    expect(providerConnection(openai, { OPENAI_API_KEY: " sk-test-key " })).toEqual({ baseUrl: "https://api.openai.com/v1", apiKey: "sk-test-key" });
    expect(providerConnection(local, {})).toBeUndefined();
    expect(providerConnection(local, { LOCAL_PROVIDER_URL: "http://127.0.0.1:8787/v1/" })).toEqual({ baseUrl: "http://127.0.0.1:8787/v1", apiKey: "" });
  });

  it("the default model is the first of the first configured provider: the local one alone, a real one once its key is set", () => {
    expect(resolveDefaultModelId({ LOCAL_PROVIDER_URL: "http://x/v1" })).toBe("local-mini");
    expect(resolveDefaultModelId({ LOCAL_PROVIDER_URL: "http://x/v1", OPENAI_API_KEY: "sk-test-key" })).toBe("gpt-4o-mini");
    expect(resolveDefaultModelId({ GEMINI_API_KEY: "AIza-test" })).toBe("gemini-2.5-flash");
    expect(resolveDefaultModelId({})).toBeUndefined();
    expect(configuredProviders({ OPENROUTER_API_KEY: "k", LOCAL_PROVIDER_URL: "u" }).map((p) => p.id)).toEqual(["openrouter", "local"]);
  });

  it("DEFAULT_MODEL wins when set", () => {
    process.env.DEFAULT_MODEL = "local-pro";
    expect(resolveDefaultModelId({ OPENAI_API_KEY: "sk-test-key" })).toBe("local-pro");
  });
});

describe("catalog", () => {
  it("accepts scenario suffixes on the local provider's models only", () => {
    expect(catalog.resolve("local-mini+fail=auth")).toMatchObject({ id: "local-mini+fail=auth", upstreamId: "local-mini+fail=auth" });
    expect(catalog.resolve("gpt-4o-mini+fail=auth")).toBeUndefined();
    expect(catalog.resolve("nope")).toBeUndefined();
  });

  it("merges per-model timeouts over the provider's", () => {
    expect(catalog.resolve("o4-mini")!.timeouts).toEqual({ totalMs: 240_000, firstTokenMs: 120_000, idleMs: 20_000 });
  });
});
