import { calcPrice } from "@pydantic/genai-prices";
import { BUILT_IN_PROVIDERS } from "../functions/src/config/catalog.js";

/**
 * `npm run prices`: the built-in models' prices in the maintained price database
 * (@pydantic/genai-prices) next to the catalog's, to update functions/src/config/catalog.ts
 * after bumping the package. functions/test/config/prices.test.ts fails until they agree.
 */
const DATABASE_PROVIDER: Record<string, string> = { openai: "openai", gemini: "google", openrouter: "openrouter" };
const rows: string[][] = [["model", "field", "catalog", "database"]];
for (const provider of BUILT_IN_PROVIDERS) {
  const providerId = DATABASE_PROVIDER[provider.id];
  if (!providerId) continue;
  for (const model of provider.models) {
    const found = calcPrice({ input_tokens: 1_000_000, output_tokens: 0 }, model.upstreamId, { providerId });
    if (!found) {
      rows.push([model.id, "-", "-", "not in the database"]);
      continue;
    }
    const db = found.model_price;
    const pairs: [string, number | undefined, unknown][] = [
      ["input", model.price.inputPerMTokUsd, db.input_mtok],
      ["output", model.price.outputPerMTokUsd, db.output_mtok],
      ["cached input", model.price.cachedInputPerMTokUsd, db.cache_read_mtok],
      ["audio input", model.price.audioInputPerMTokUsd, db.input_audio_mtok],
    ];
    for (const [field, ours, theirs] of pairs) {
      if (theirs === undefined && ours === undefined) continue;
      const mark = typeof theirs === "number" && ours !== theirs ? "  ← differs" : "";
      rows.push([model.id, field, String(ours ?? "-"), `${String(theirs ?? "-")}${mark}`]);
    }
  }
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
