import { execFile, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { BUILT_IN_PROVIDERS } from "../../functions/src/config/catalog.js";
import { checkDeploy, declaredDeployParams, formatDefault, paramNamesInSource, paramsTableOf, ROOT, ttlPolicies, type DeployParam } from "../check-deploy.js";

/**
 * docs/deploy.md (and the commands of docs/clients.md) as a test, with no network and no emulator:
 * - the params table has every param functions/src/config/params.ts declares, with its default;
 * - every `sh offline` block runs as written and exits 0;
 * - every `npx firebase …` command and flag exists in the installed firebase-tools, every
 *   `npm run` script in package.json, every `gcloud` command and flag in the Google Cloud CLI
 *   (when it is installed; only its offline `--help` is used).
 * Commands in plain `sh` blocks (login, deploy) are only checked, never run.
 */

const run = promisify(execFile);
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const deployMd = read("docs/deploy.md");
const pages = ["docs/deploy.md", "docs/clients.md"].filter((p) => existsSync(join(ROOT, p))).map((p) => ({ path: p, text: read(p) }));

interface Fence {
  info: string;
  code: string;
}

/** Fenced blocks, also those indented in list items. */
function fences(markdown: string): Fence[] {
  const found: Fence[] = [];
  for (const m of markdown.matchAll(/^( *)```([^\n`]*)\n([\s\S]*?)^\1```/gm)) {
    const indent = m[1]!.length;
    found.push({ info: m[2]!.trim(), code: m[3]!.split("\n").map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join("\n") });
  }
  return found;
}

/** Shell command lines of a page: every line of its sh blocks, and its inline code spans. */
function commandLines(markdown: string): string[] {
  const lines: string[] = [];
  for (const f of fences(markdown)) if (/^(sh|bash)\b/.test(f.info)) lines.push(...f.code.replace(/\\\n/g, " ").split("\n"));
  const prose = markdown.replace(/^( *)```[^\n]*\n[\s\S]*?^\1```/gm, "");
  for (const m of prose.matchAll(/`([^`\n]+)`/g)) lines.push(m[1]!);
  return lines;
}

/** The words after `<tool> ` up to the end of that command (a pipe, `&&`, `;`, `)`, or a comment). */
function invocations(lines: string[], tool: RegExp): string[][] {
  const found: string[][] = [];
  for (const line of lines) {
    for (const m of line.matchAll(tool)) {
      const rest = line
        .slice(m.index! + m[0].length)
        .replace(/"[^"]*"|'[^']*'/g, "ARG")
        .split(/\s#|\||&&|;|\)/)[0]!;
      found.push(rest.trim().split(/\s+/).filter((w) => w !== ""));
    }
  }
  return found;
}

const flagName = (word: string) => word.split("=")[0]!;
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

describe("docs/deploy.md: params", () => {
  let params: DeployParam[];
  beforeAll(async () => {
    params = await declaredDeployParams();
  });

  it("names every param params.ts declares, with its declared default", () => {
    const table = paramsTableOf(deployMd);
    const plain = params.filter((p) => p.type !== "secret");
    expect(plain.length).toBeGreaterThan(10);
    for (const p of plain) {
      expect(table.has(p.name), `${p.name} is missing from the params table of docs/deploy.md`).toBe(true);
      expect(table.get(p.name), `${p.name}'s default in docs/deploy.md`).toBe(formatDefault(p.default));
    }
    expect([...table.keys()].filter((name) => !plain.some((p) => p.name === name))).toEqual([]);
  });

  it("reads the same names from the source of params.ts as firebase-functions declares", () => {
    const declared = params.filter((p) => p.type !== "secret").map((p) => p.name).sort();
    expect(paramNamesInSource(read("functions/src/config/params.ts"))).toEqual(declared);
  });

  it("documents every built-in provider secret, each declared as a secret", () => {
    const secrets = BUILT_IN_PROVIDERS.flatMap((p) => (p.apiKeySecret ? [p.apiKeySecret] : []));
    expect(secrets.length).toBeGreaterThan(0);
    for (const name of secrets) {
      expect(deployMd).toContain(`| \`${name}\` |`);
      expect(deployMd).toContain(`functions:secrets:set ${name}`);
      expect(params.find((p) => p.name === name)?.type).toBe("secret");
    }
  });

  it("scripts/check-deploy.ts finds nothing wrong", async () => {
    const result = await checkDeploy();
    expect(result.lines.filter((l) => l.startsWith("PROBLEM"))).toEqual([]);
    expect(result.ok).toBe(true);
  });
});

describe("docs/deploy.md: every offline block runs as written", () => {
  const offline = fences(deployMd).filter((f) => f.info === "sh offline");
  const env = { ...process.env };
  // The provider keys of whoever runs the tests stay out of it (verify-keys reads the environment first).
  for (const p of BUILT_IN_PROVIDERS) if (p.apiKeySecret) delete env[p.apiKeySecret];

  it("there are offline blocks", () => {
    expect(offline.length).toBeGreaterThanOrEqual(5);
  });

  offline.forEach((block, i) => {
    it(`block ${i + 1}: ${block.code.split("\n")[0]!.slice(0, 70)}`, { timeout: 120_000 }, async () => {
      const { stdout } = await run("bash", ["-c", `set -euo pipefail\n${block.code}`], { cwd: ROOT, env, maxBuffer: 10_000_000, timeout: 110_000 });
      expect(stdout.trim().length).toBeGreaterThan(0);
      if (block.code.includes('require("./firestore.indexes.json")')) {
        expect(stdout.trim().split("\n")).toEqual(ttlPolicies(read("firestore.indexes.json")).map((t) => `${t.collectionGroup}.${t.fieldPath}`));
      }
      if (block.code.includes("npx firebase --version")) {
        expect(stdout).toContain(JSON.parse(read("node_modules/firebase-tools/package.json")).version);
      }
      if (block.code.includes("scripts/check-deploy.ts env")) {
        expect(stdout).toMatch(/^REGION=us-central1$/m);
      }
    });
  });
});

describe("commands in docs/deploy.md and docs/clients.md exist as written", () => {
  const lines = pages.flatMap((p) => commandLines(p.text));

  it("every `npx firebase` command and flag is in the installed firebase-tools", { timeout: 60_000 }, async () => {
    // (Prose like "every `npx firebase …` command" names no command.)
    const calls = invocations(lines, /\bnpx firebase\s+/g).filter((words) => words[0] !== "…");
    expect(calls.length).toBeGreaterThan(10);
    const names = [...new Set(calls.map((words) => words.find((w) => !w.startsWith("-")) ?? ""))];
    // firebase-tools' own command table, read in a child process (it is CommonJS and loads a lot).
    const script = `
      const client = require("firebase-tools");
      const { VALID_DEPLOY_TARGETS } = require("firebase-tools/lib/deploy");
      const flags = (c) => c.options.flatMap((o) => [o.long, o.short].filter(Boolean));
      const out = { global: [...flags(client.cli), "--help", "-h"], targets: VALID_DEPLOY_TARGETS, commands: {} };
      for (const name of ${JSON.stringify(names)}) { const c = name ? client.getCommand(name) : client.cli; out.commands[name] = c ? flags(c) : null; }
      console.log(JSON.stringify(out));`;
    const { stdout } = await run(process.execPath, ["-e", script], { cwd: ROOT, maxBuffer: 10_000_000 });
    const known = JSON.parse(stdout) as { global: string[]; targets: string[]; commands: Record<string, string[] | null> };
    const exported = [...read("functions/src/index.ts").matchAll(/^export const (\w+) =/gm)].map((m) => m[1]!);
    const problems: string[] = [];
    for (const words of calls) {
      const name = words.find((w) => !w.startsWith("-")) ?? "";
      const allowed = known.commands[name];
      if (!allowed) {
        problems.push(`firebase ${name}: no such command`);
        continue;
      }
      for (const word of words.filter((w) => w.startsWith("-"))) {
        if (!allowed.includes(flagName(word)) && !known.global.includes(flagName(word))) problems.push(`firebase ${name}: no flag ${flagName(word)}`);
      }
      const only = words.indexOf("--only");
      if (name === "deploy" && only >= 0) {
        for (const target of words[only + 1]!.split(",")) {
          const [base, sub] = target.split(":");
          if (!known.targets.includes(base!)) problems.push(`firebase deploy --only ${target}: no target ${base}`);
          if (base === "firestore" && sub && !["rules", "indexes"].includes(sub)) problems.push(`firebase deploy --only ${target}`);
          if (base === "functions" && sub && !exported.includes(sub)) problems.push(`firebase deploy --only ${target}: functions/src/index.ts exports no ${sub}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("every `npm run` script exists, and verify-keys takes the flags shown", () => {
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    const verifyFlags = [...read("scripts/verify-keys.ts").matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]!);
    expect(verifyFlags).toContain("--offline");
    const calls = invocations(lines, /\bnpm run\s+/g);
    expect(calls.length).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const [name, ...rest] of calls) {
      if (!scripts[name!]) problems.push(`npm run ${name}: no such script`);
      if (name === "verify-keys") for (const w of rest.filter((w) => w.startsWith("--") && w !== "--")) if (!verifyFlags.includes(flagName(w))) problems.push(`verify-keys: no flag ${w}`);
    }
    expect(problems).toEqual([]);
  });

  it("every file given to `npx tsx` exists", () => {
    const files = invocations(lines, /\bnpx tsx\s+/g).map((words) => words[0]!);
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((f) => !existsSync(join(ROOT, f)))).toEqual([]);
  });

  const gcloud = spawnSync("gcloud", ["--version"], { encoding: "utf8", timeout: 30_000 }).status === 0;
  it.skipIf(!gcloud)("every `gcloud` command and flag is in the installed Google Cloud CLI (offline --help)", { timeout: 120_000 }, async () => {
    const calls = invocations(lines, /\bgcloud\s+/g).filter((words) => words.length > 0 && !words[0]!.startsWith("-"));
    expect(calls.length).toBeGreaterThan(0);
    const pathOf = (words: string[]) => {
      const end = words.findIndex((w) => !/^[a-z][a-z-]*$/.test(w));
      return (end === -1 ? words : words.slice(0, end)).join(" ");
    };
    const paths = [...new Set(calls.map(pathOf))];
    const helps = new Map(
      await Promise.all(
        paths.map(async (path) => {
          const { stdout } = await run("gcloud", [...path.split(" "), "--help"], { env: { ...process.env, CLOUDSDK_CORE_DISABLE_PROMPTS: "1" }, maxBuffer: 10_000_000, timeout: 60_000 }).catch(
            () => ({ stdout: "" }),
          );
          return [path, stdout.replace(ANSI, "")] as const;
        }),
      ),
    );
    const problems: string[] = [];
    for (const words of calls) {
      const path = pathOf(words);
      const help = helps.get(path)!;
      if (!help.includes(`gcloud ${path}`)) problems.push(`gcloud ${path}: no such command`);
      // The whole flag, not a prefix of a longer one (--project is not --project-number).
      const hasFlag = (flag: string) => new RegExp(`${flag.replace(/[-]/g, "\\-")}(?![\\w-])`).test(help);
      for (const word of words.filter((w) => w.startsWith("--"))) if (!hasFlag(flagName(word))) problems.push(`gcloud ${path}: no flag ${flagName(word)}`);
    }
    expect(problems).toEqual([]);
  });
});
