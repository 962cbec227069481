import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * The Functions emulator asks for every declared param that has no value in functions/.env*
 * ("Prompting for parameters for codebase default:" and a line per param) and then writes the
 * answers to functions/.env.local. The launcher writes the same file first, with each missing
 * param's declared default, so a first `npm start` is quiet and a new param never prompts.
 * Values already in the file are the developer's and are kept.
 */

interface ParamSpec {
  name: string;
  type: string;
  default?: unknown;
}

/** The params functions/lib declares (it must be built), secrets excluded. */
export async function declaredParams(functionsDir: string): Promise<ParamSpec[]> {
  await import(pathToFileURL(join(functionsDir, "lib", "config", "params.js")).href);
  const params = (await import("firebase-functions/params")) as unknown as { declaredParams: { toSpec(): ParamSpec }[] };
  return params.declaredParams.map((p) => p.toSpec()).filter((spec) => spec.type !== "secret");
}

/** Names with a value in a dotenv file's text. */
export function dotenvNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line);
    if (match) names.add(match[1]!);
  }
  return names;
}

/**
 * Appends to functions/.env.local the default of every param that no file the emulator reads
 * sets (.env, .env.<project>, .env.local); returns the names it added. A value set in .env
 * keeps applying: firebase-tools reads .env.local last, so a default written there would win.
 */
export function writeMissingParams(functionsDir: string, params: ParamSpec[], project?: string): string[] {
  const file = join(functionsDir, ".env.local");
  const read = (name: string) => (existsSync(join(functionsDir, name)) ? readFileSync(join(functionsDir, name), "utf8") : "");
  const existing = read(".env.local");
  const have = new Set([...dotenvNames(read(".env")), ...(project ? dotenvNames(read(`.env.${project}`)) : []), ...dotenvNames(existing)]);
  const missing = params.filter((p) => !have.has(p.name));
  if (missing.length === 0) return [];
  const lines = missing.map((p) => `${p.name}=${p.default === undefined ? "" : String(p.default)}`);
  const header = existing === "" ? "# Local values of the functions' params (npm start wrote the defaults; edit to change them).\n" : "";
  const separator = existing === "" || existing.endsWith("\n") ? "" : "\n";
  writeFileSync(file, `${existing}${separator}${header}${lines.join("\n")}\n`);
  return missing.map((p) => p.name);
}
