import { readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PROVIDERS } from "../functions/src/config/catalog.js";
import type { ProviderSpec } from "../functions/src/core/catalog.js";
import { liveCheck, maskKey, offlineProblem, type ProviderToCheck } from "./verify-keys/checks.js";
import { renderTable, type CheckResult, type Report } from "./verify-keys/report.js";
import { findValue } from "./verify-keys/sources.js";

/**
 * `npm run verify-keys`: does every configured provider key work, and if not, why? Costs
 * no tokens, prints keys only masked, sends each key only to its own provider's base URL.
 * Exit 0 when every required provider is ok, 1 when one is not, 2 on bad usage.
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const USAGE = `usage: npm run verify-keys -- [--provider ID] [--require ID[,ID…]] [--offline] [--json] [--timeout-ms N] [--functions-dir DIR] [--catalog FILE]

  --provider ID       check only this provider (it is then required)
  --require IDS       these providers must be ok (default: every provider whose key is found)
  --offline           format checks only, no network
  --json              machine-readable output
  --timeout-ms N      per request (default 5000), with one retry on network errors
  --functions-dir D   where .secret.local and .env* live (default functions/)
  --catalog FILE      providers as JSON instead of the built-in catalog`;

class UsageError extends Error {}

function toCheck(spec: ProviderSpec, env: NodeJS.ProcessEnv, functionsDir: string, label: string): ProviderToCheck {
  const url = typeof spec.baseUrl === "string" ? { value: spec.baseUrl, source: undefined } : findValue(spec.baseUrl.env, { env, functionsDir, label });
  return {
    id: spec.id,
    ...(url ? { baseUrl: url.value } : {}),
    ...(url?.source ? { baseUrlSource: url.source } : {}),
    ...(spec.apiKeySecret ? { apiKeySecret: spec.apiKeySecret } : {}),
    ...(spec.keyCheck ? { keyCheck: spec.keyCheck } : {}),
    models: spec.models.map((m) => m.upstreamId),
  };
}

async function check(provider: ProviderToCheck, options: { env: NodeJS.ProcessEnv; functionsDir: string; label: string; offline: boolean; timeoutMs: number }) {
  const base: Omit<CheckResult, "status" | "detail" | "required"> = { provider: provider.id, source: null, key: null };
  if (!provider.apiKeySecret) {
    // A keyless endpoint (Ollama, the local provider): configured by its URL.
    if (!provider.baseUrl) return { ...base, status: "missing" as const, detail: "no URL configured (keyless provider)" };
    const withSource = { ...base, source: provider.baseUrlSource ?? "catalog" };
    if (options.offline) return { ...withSource, status: "ok" as const, detail: "URL configured; not checked live" };
    return { ...withSource, ...(await liveCheck(provider, undefined, options.timeoutMs)) };
  }
  const found = findValue(provider.apiKeySecret, options);
  if (!found) return { ...base, status: "missing" as const, detail: `${provider.apiKeySecret} is not set` };
  const withKey = { ...base, source: found.source, key: maskKey(found.value) };
  const problem = offlineProblem(found.value, provider.keyCheck?.pattern);
  if (problem) return { ...withKey, status: "malformed" as const, detail: `${provider.apiKeySecret} ${problem}` };
  if (options.offline) return { ...withKey, status: "ok" as const, detail: "format plausible; not checked live" };
  if (!provider.baseUrl) return { ...withKey, status: "unreachable" as const, detail: "no base URL configured" };
  return { ...withKey, ...(await liveCheck(provider, found.value, options.timeoutMs)) };
}

export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        provider: { type: "string" },
        require: { type: "string" },
        offline: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        "timeout-ms": { type: "string", default: "5000" },
        "functions-dir": { type: "string", default: join(ROOT, "functions") },
        catalog: { type: "string" },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return { code: 0, output: USAGE };
  const timeoutMs = Number(values["timeout-ms"]);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError("--timeout-ms must be a positive whole number");

  let specs: ProviderSpec[] = [...PROVIDERS];
  if (values.catalog) {
    try {
      specs = JSON.parse(readFileSync(values.catalog, "utf8")) as ProviderSpec[];
    } catch (error) {
      throw new UsageError(`cannot read --catalog ${values.catalog}: ${(error as Error).message}`);
    }
  }
  const known = new Set(specs.map((s) => s.id));
  const required = new Set((values.require ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""));
  if (values.provider) {
    if (!known.has(values.provider)) throw new UsageError(`unknown provider "${values.provider}" (known: ${[...known].join(", ")})`);
    specs = specs.filter((s) => s.id === values.provider);
    required.add(values.provider);
  }
  for (const id of required) if (!known.has(id)) throw new UsageError(`unknown provider "${id}" in --require`);

  const functionsDir = resolve(values["functions-dir"]);
  const label = relative(process.cwd(), functionsDir) || ".";
  const results: CheckResult[] = await Promise.all(
    specs.map(async (spec) => {
      const outcome = await check(toCheck(spec, env, functionsDir, label), { env, functionsDir, label, offline: values.offline, timeoutMs });
      // By default a provider is required once something is configured for it: a bad key must fail CI.
      const isRequired = required.has(spec.id) || (required.size === 0 && !values.provider && outcome.status !== "missing");
      return { ...outcome, required: isRequired };
    }),
  );
  const report: Report = { ok: results.every((r) => !r.required || r.status === "ok"), offline: values.offline, results };
  return { code: report.ok ? 0 : 1, output: values.json ? JSON.stringify(report, null, 2) : renderTable(report) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  run(process.argv.slice(2), process.env).then(
    ({ code, output }) => {
      process.stdout.write(`${output}\n`);
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof UsageError) {
        process.stderr.write(`verify-keys: ${error.message}\n\n${USAGE}\n`);
        process.exitCode = 2;
      } else {
        process.stderr.write(`verify-keys: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
