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
} catch (error) {
  console.error(error instanceof CatalogFileError ? `catalog: ${error.message}` : error);
  process.exit(1);
}
