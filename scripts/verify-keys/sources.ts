import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** A value found for a name, and where: "environment", "functions/.secret.local", "functions/.env"… */
export interface Found {
  value: string;
  source: string;
}

/** Minimal dotenv: `NAME=value`, optional `export`, quotes, `#` comments. Values keep inner whitespace. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    if (!match) continue;
    let value = match[2]!;
    const trimmed = value.trim();
    const quote = trimmed[0];
    if ((quote === '"' || quote === "'") && trimmed.length >= 2 && trimmed.endsWith(quote)) {
      value = trimmed.slice(1, -1);
    } else {
      const comment = value.search(/\s#/);
      if (comment >= 0) value = value.slice(0, comment);
      // Unquoted values lose surrounding spaces, as dotenv does; what remains is checked as is.
      value = value.replace(/^[ \t]+|[ \t]+$/g, "");
    }
    out[match[1]!] = value;
  }
  return out;
}

/**
 * The files a value may come from, in precedence order after the environment:
 * `.secret.local` (what the Functions emulator reads for secrets), `.env.local`,
 * `.env.<project or alias>`, then `.env`.
 */
export function candidateFiles(functionsDir: string): string[] {
  if (!existsSync(functionsDir)) return [];
  const names = readdirSync(functionsDir);
  const projectFiles = names.filter((n) => n.startsWith(".env.") && n !== ".env.local").sort();
  return [".secret.local", ".env.local", ...projectFiles, ".env"].filter((n) => names.includes(n));
}

export function findValue(name: string, options: { env: NodeJS.ProcessEnv; functionsDir: string; label: string }): Found | undefined {
  const fromEnv = options.env[name];
  if (fromEnv !== undefined && fromEnv !== "") return { value: fromEnv, source: "environment" };
  for (const file of candidateFiles(options.functionsDir)) {
    const value = parseDotenv(readFileSync(join(options.functionsDir, file), "utf8"))[name];
    if (value !== undefined && value !== "") return { value, source: `${options.label}/${file}` };
  }
  return undefined;
}
