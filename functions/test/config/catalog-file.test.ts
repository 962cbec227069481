import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CatalogFileError, mergeCatalog, readCatalogFile } from "../../src/config/catalog-file.js";
import { BUILT_IN_PROVIDERS } from "../../src/config/catalog.js";
import { Catalog } from "../../src/core/catalog.js";

const dir = mkdtempSync(join(tmpdir(), "catalog-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (content: unknown) => {
  const path = join(dir, `catalog-${++n}.json`);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
};
const model = { id: "ollama/qwen2.5", upstreamId: "qwen2.5", contextWindow: 32_768, maxOutputTokens: 8_192, price: { inputPerMTokUsd: 0, outputPerMTokUsd: 0 } };

describe("functions/catalog.json", () => {
  it("adds a model to a built-in provider, and a new OpenAI-compatible provider, merged with the built-in catalog", () => {
    const config = readCatalogFile(
      file({
        providers: [
          { id: "ollama", models: [{ ...model, capabilities: { input: ["text"], tools: true, structuredOutput: true } }] },
          {
            id: "acme",
            name: "ACME's own endpoint",
            baseUrl: { env: "ACME_LLM_URL" },
            apiKeySecret: "ACME_API_KEY",
            models: [{ id: "acme-chat", contextWindow: 8_000, maxOutputTokens: 1_000, price: { inputPerMTokUsd: 0.2, outputPerMTokUsd: 0.8, priceVersion: "acme-2026-11" } }],
          },
        ],
      }),
    );
    const catalog = new Catalog(mergeCatalog(BUILT_IN_PROVIDERS, config));
    expect(catalog.resolve("ollama/qwen2.5")).toMatchObject({ upstreamId: "qwen2.5", provider: { id: "ollama" }, capabilities: { tools: true } });
    expect(catalog.resolve("ollama/llama3.2")).toBeDefined(); // the built-in one stays
    expect(catalog.resolve("acme-chat")).toMatchObject({
      upstreamId: "acme-chat",
      provider: { id: "acme", baseUrl: { env: "ACME_LLM_URL" }, apiKeySecret: "ACME_API_KEY", timeouts: { totalMs: 120_000 } },
      // Missing cached price: the input price; capabilities: text only.
      spec: { price: { cachedInputPerMTokUsd: 0.2, priceVersion: "acme-2026-11" } },
      capabilities: { input: ["text"], tools: false },
    });
  });

  it("replaces a built-in model's figures by id (a price update without a code change)", () => {
    const merged = mergeCatalog(BUILT_IN_PROVIDERS, readCatalogFile(file({ providers: [{ id: "openai", models: [{ ...model, id: "gpt-4o-mini", upstreamId: "gpt-4o-mini", price: { inputPerMTokUsd: 0.1, outputPerMTokUsd: 0.5 } }] }] })));
    expect(new Catalog(merged).resolve("gpt-4o-mini")!.spec.price).toMatchObject({ inputPerMTokUsd: 0.1, priceVersion: "catalog.json" });
    expect(merged.find((p) => p.id === "openai")!.models.filter((m) => m.id === "gpt-4o-mini")).toHaveLength(1);
  });

  it.each([
    ["{ not json", "not valid JSON"],
    [{ providers: [{ id: "local", models: [{ ...model, contextWindow: "big" }] }] }, "providers[0].models[0].contextWindow"],
    [{ providers: [{ id: "Bad Id", models: [] }] }, "providers[0].id"],
    [{ providers: [{ id: "x", baseUrl: "ftp://example.com", models: [] }] }, "providers[0].baseUrl"],
    [{ providers: [{ id: "x", models: [{ ...model, extra: 1 }] }] }, "providers[0].models[0]"],
    [{ models: [] }, "providers: Invalid input: expected array"],
  ])("refuses an invalid file, naming the field: %j", (content, where) => {
    expect(() => readCatalogFile(file(content))).toThrow(CatalogFileError);
    expect(() => readCatalogFile(file(content))).toThrow(where);
  });

  it("refuses a new provider without a URL, and a model id declared twice", () => {
    expect(() => mergeCatalog(BUILT_IN_PROVIDERS, readCatalogFile(file({ providers: [{ id: "nourl", models: [model] }] })))).toThrow("providers[0].baseUrl");
    const twice = mergeCatalog(BUILT_IN_PROVIDERS, readCatalogFile(file({ providers: [{ id: "other", baseUrl: "https://x.example", models: [{ ...model, id: "local-mini" }] }] })));
    expect(() => new Catalog(twice)).toThrow('model id "local-mini" is declared twice');
  });

  it("is optional: without a file the built-in catalog is used as it is", () => {
    expect(readCatalogFile(join(dir, "missing.json"))).toBeUndefined();
    expect(mergeCatalog(BUILT_IN_PROVIDERS, undefined)).toEqual(BUILT_IN_PROVIDERS);
  });
});
