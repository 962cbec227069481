import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Offline helpers behind docs/deploy.md (no network, no credentials, nothing written):
 *
 *   npx tsx scripts/check-deploy.ts          is this checkout deployable as the guide says?
 *   npx tsx scripts/check-deploy.ts env      every param with its default, as a dotenv file
 *                                            (the start of functions/.env.<projectId>)
 *   npx tsx scripts/check-deploy.ts params   the params as Markdown table rows (name, default, description)
 *
 * The params are what functions/src/config/params.ts declares, read the way firebase-tools reads
 * them: by loading the module and listing firebase-functions' declared params.
 */

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface DeployParam {
  name: string;
  type: "string" | "int" | "boolean" | "secret" | string;
  default?: string | number | boolean;
  description?: string;
}

/** Every param and secret params.ts declares (and the secrets of functions/catalog.json providers). */
export async function declaredDeployParams(): Promise<DeployParam[]> {
  await import("../functions/src/config/params.js");
  const { declaredParams } = await import("firebase-functions/params");
  const seen = new Map<string, DeployParam>();
  for (const param of declaredParams as unknown as { toSpec(): DeployParam }[]) {
    const spec = param.toSpec();
    if (!seen.has(spec.name)) seen.set(spec.name, spec);
  }
  return [...seen.values()];
}

/**
 * The param names params.ts declares, read from its source: `defineString("NAME"`, … and the
 * file's own `int("NAME"` / `string(` / `boolean(` / `tunable(` helpers. Secrets are declared
 * from the catalog's names, not literally, so they are not in this list.
 */
export function paramNamesInSource(source: string): string[] {
  const names = new Set<string>();
  const pattern = /\b(?:define(?:String|Int|Boolean|Float|List|Secret|JsonSecret)|int|string|boolean|tunable)\(\s*"([A-Z][A-Z0-9_]*)"/g;
  for (const match of source.matchAll(pattern)) names.add(match[1]!);
  return [...names].sort();
}

/** How a default is written in docs/deploy.md's table: in backticks, `""` for an empty string. */
export function formatDefault(value: DeployParam["default"]): string {
  return value === "" || value === undefined ? '""' : String(value);
}

/** The rows of docs/deploy.md's params table: `| \`NAME\` | \`default\` | …`. */
export function paramsTableOf(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const match of markdown.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| `([^`]*)` \|/gm)) rows.set(match[1]!, match[2]!);
  return rows;
}

/** One dotenv line the way firebase-tools reads it back (values with spaces or quotes quoted). */
export function dotenvLine(name: string, value: DeployParam["default"]): string {
  const text = value === undefined ? "" : String(value);
  return /^[A-Za-z0-9_.,:/*@+-]*$/.test(text) ? `${name}=${text}` : `${name}=${JSON.stringify(text)}`;
}

interface FieldOverride {
  collectionGroup: string;
  fieldPath: string;
  ttl?: boolean;
  indexes?: unknown[];
}

/** The TTL policies `firebase deploy --only firestore:indexes` creates: field overrides with `ttl: true`. */
export function ttlPolicies(indexesJson: string): { collectionGroup: string; fieldPath: string }[] {
  const parsed = JSON.parse(indexesJson) as { fieldOverrides?: FieldOverride[] };
  return (parsed.fieldOverrides ?? []).filter((o) => o.ttl === true).map(({ collectionGroup, fieldPath }) => ({ collectionGroup, fieldPath }));
}

export interface CheckResult {
  ok: boolean;
  lines: string[];
}

/** The whole pre-deploy check. Everything is read from `root`; nothing is written or sent. */
export async function checkDeploy(root = ROOT): Promise<CheckResult> {
  const lines: string[] = [];
  const problems: string[] = [];
  const read = (path: string) => readFileSync(join(root, path), "utf8");

  // firebase.json: what `firebase deploy` deploys.
  const firebaseJson = JSON.parse(read("firebase.json")) as {
    functions?: { source?: string; runtime?: string; predeploy?: string[] }[];
    firestore?: { rules?: string; indexes?: string };
  };
  const fn = firebaseJson.functions?.[0];
  if (!fn?.source || !existsSync(join(root, fn.source, "package.json"))) problems.push("firebase.json: functions[0].source has no package.json");
  if (!fn?.predeploy?.some((step) => step.includes("run build"))) problems.push("firebase.json: functions[0].predeploy does not build the functions");
  for (const key of ["rules", "indexes"] as const) {
    const file = firebaseJson.firestore?.[key];
    if (!file || !existsSync(join(root, file))) problems.push(`firebase.json: firestore.${key} names no file`);
  }
  lines.push(`firebase.json: functions from ${fn?.source}/ on ${fn?.runtime}, built before deploy; rules ${firebaseJson.firestore?.rules}, indexes ${firebaseJson.firestore?.indexes}`);

  // .firebaserc: the default alias is the local demo project, so a deploy needs `firebase use`.
  const rc = JSON.parse(read(".firebaserc")) as { projects?: Record<string, string> };
  const aliases = Object.entries(rc.projects ?? {}).map(([alias, id]) => `${alias} → ${id}`);
  lines.push(`.firebaserc: ${aliases.join(", ") || "no aliases"}`);
  if (!rc.projects?.default?.startsWith("demo-")) lines.push("  note: the default alias is not a demo- project; `npm start` still uses its own demo project");

  // Params: what params.ts declares, and what docs/deploy.md documents.
  const params = await declaredDeployParams();
  const secrets = params.filter((p) => p.type === "secret").map((p) => p.name);
  const plain = params.filter((p) => p.type !== "secret");
  const fromSource = paramNamesInSource(read("functions/src/config/params.ts"));
  const declared = plain.map((p) => p.name).sort();
  if (JSON.stringify(fromSource) !== JSON.stringify(declared)) {
    problems.push(`params.ts: names in the source (${fromSource.join(", ")}) differ from the declared params (${declared.join(", ")})`);
  }
  lines.push(`params: ${plain.length} params and ${secrets.length} secrets (${secrets.join(", ")})`);
  const guide = join(root, "docs/deploy.md");
  if (existsSync(guide)) {
    const table = paramsTableOf(readFileSync(guide, "utf8"));
    for (const p of plain) {
      if (!table.has(p.name)) problems.push(`docs/deploy.md: param ${p.name} is not in the params table`);
      else if (table.get(p.name) !== formatDefault(p.default)) problems.push(`docs/deploy.md: ${p.name} default is \`${table.get(p.name)}\`, params.ts says \`${formatDefault(p.default)}\``);
    }
    for (const name of table.keys()) if (!plain.some((p) => p.name === name)) problems.push(`docs/deploy.md: the params table lists ${name}, which params.ts does not declare`);
    lines.push(`docs/deploy.md: the params table matches params.ts (${table.size} rows)`);
  }

  // firestore.indexes.json: valid, and its TTL policies on expireAt, not indexed.
  const ttl = ttlPolicies(read(firebaseJson.firestore?.indexes ?? "firestore.indexes.json"));
  const overrides = (JSON.parse(read(firebaseJson.firestore?.indexes ?? "firestore.indexes.json")) as { fieldOverrides?: FieldOverride[] }).fieldOverrides ?? [];
  for (const o of overrides.filter((x) => x.ttl === true)) {
    if (o.fieldPath !== "expireAt") problems.push(`firestore.indexes.json: TTL on ${o.collectionGroup}.${o.fieldPath}, not expireAt`);
    if (!Array.isArray(o.indexes) || o.indexes.length > 0) problems.push(`firestore.indexes.json: ${o.collectionGroup}.expireAt should not be indexed ("indexes": [])`);
  }
  if (ttl.length === 0) problems.push("firestore.indexes.json: no TTL field override");
  lines.push(`TTL policies: ${ttl.map((t) => `${t.collectionGroup}.${t.fieldPath}`).join(", ")}`);

  // The catalog, with functions/catalog.json merged in (an invalid file throws, naming the field).
  try {
    const { catalog, BUILT_IN_PROVIDERS } = await import("../functions/src/config/catalog.js");
    const builtIn = new Set(BUILT_IN_PROVIDERS.flatMap((p) => (p.apiKeySecret ? [p.apiKeySecret] : [])));
    const extra = secrets.filter((s) => !builtIn.has(s));
    lines.push(`catalog: ${catalog.models().length} models from ${catalog.providers.length} providers${existsSync(join(root, "functions/catalog.json")) ? " (functions/catalog.json merged in)" : ""}`);
    if (extra.length > 0) lines.push(`  functions/catalog.json adds secrets to set before deploying: ${extra.join(", ")}`);
  } catch (error) {
    problems.push(`catalog: ${(error as Error).message}`);
  }

  for (const problem of problems) lines.push(`PROBLEM ${problem}`);
  lines.push(problems.length === 0 ? "deploy check: ok" : `deploy check: ${problems.length} problem(s)`);
  return { ok: problems.length === 0, lines };
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? "check";
  if (command === "check") {
    const { ok, lines } = await checkDeploy();
    process.stdout.write(`${lines.join("\n")}\n`);
    return ok ? 0 : 1;
  }
  if (command === "env") {
    const params = (await declaredDeployParams()).filter((p) => p.type !== "secret");
    process.stdout.write(
      ["# Every param of functions/src/config/params.ts with its default (docs/deploy.md, \"Params\").", ...params.map((p) => dotenvLine(p.name, p.default))].join("\n") + "\n",
    );
    return 0;
  }
  if (command === "params") {
    const params = (await declaredDeployParams()).filter((p) => p.type !== "secret");
    process.stdout.write(params.map((p) => `| \`${p.name}\` | \`${formatDefault(p.default)}\` | ${p.description ?? ""} |`).join("\n") + "\n");
    return 0;
  }
  process.stderr.write("usage: npx tsx scripts/check-deploy.ts [check | env | params]\n");
  return 2;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`check-deploy: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
