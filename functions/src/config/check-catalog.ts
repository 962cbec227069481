import { CatalogFileError } from "./catalog-file.js";

/**
 * Run by `npm run build` (and so before every deploy): loads the catalog with
 * functions/catalog.json merged in, and stops the build with the file's problem, by field,
 * rather than letting a deploy fail later or a function fail at its first call.
 */
try {
  const { catalog } = await import("./catalog.js");
  const added = catalog.models().length;
  console.log(`catalog: ${added} models from ${catalog.providers.length} providers`);
  // The budget reservation bounds an image by imageTokens; without it, a guess (docs/api.md, "Budgets").
  const { DEFAULT_IMAGE_TOKENS } = await import("../core/catalog.js");
  for (const { spec } of catalog.models()) {
    if (spec.capabilities?.input.includes("image") && spec.imageTokens === undefined) {
      console.warn(`catalog: warning: model "${spec.id}" takes images but has no imageTokens; reservations assume ${DEFAULT_IMAGE_TOKENS} tokens an image`);
    }
  }
} catch (error) {
  console.error(error instanceof CatalogFileError ? `catalog: ${error.message}` : error);
  process.exit(1);
}
