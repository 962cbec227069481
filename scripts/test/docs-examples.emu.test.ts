import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

/**
 * Every example in docs/ marked runnable runs as written against `npm start`. Here the stack
 * is on free ports, so `npm start`'s fixed ones in the examples are swapped for the stack's;
 * nothing else is changed. `sh runnable` blocks of one page run in one bash, in order (later
 * blocks use the variables of earlier ones); `ts runnable` blocks are whole programs, run with tsx.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

function stackPorts(): Record<string, string> {
  const functions = new URL(process.env.FUNCTIONS_BASE_URL!);
  return {
    "127.0.0.1:5001": functions.host,
    "127.0.0.1:9099": process.env.FIREBASE_AUTH_EMULATOR_HOST!,
    "127.0.0.1:8085": process.env.FIRESTORE_EMULATOR_HOST!,
    '"127.0.0.1", 5001': `"${functions.hostname}", ${functions.port}`,
    '"127.0.0.1", 8085': `"${process.env.FIRESTORE_EMULATOR_HOST!.split(":")[0]}", ${process.env.FIRESTORE_EMULATOR_HOST!.split(":")[1]}`,
    "127.0.0.1:8787": new URL(process.env.LOCAL_PROVIDER_URL!).host,
  };
}

function onStack(code: string): string {
  let out = code;
  for (const [fixed, actual] of Object.entries(stackPorts())) out = out.replaceAll(fixed, actual);
  return out;
}

function blocks(markdown: string, tag: string): string[] {
  const found: string[] = [];
  const fence = new RegExp("^```" + tag + " runnable\\n([\\s\\S]*?)^```", "gm");
  for (const match of markdown.matchAll(fence)) found.push(match[1]!);
  return found;
}

const pages = readdirSync(join(ROOT, "docs"))
  .filter((f) => f.endsWith(".md"))
  .map((file) => ({ file, text: readFileSync(join(ROOT, "docs", file), "utf8") }));

describe("docs examples run as written", () => {
  it("there are runnable examples to run", () => {
    expect(pages.flatMap((p) => [...blocks(p.text, "sh"), ...blocks(p.text, "ts")]).length).toBeGreaterThan(3);
  });

  for (const page of pages) {
    const shell = blocks(page.text, "sh");
    if (shell.length > 0) {
      it(`${page.file}: its shell examples`, async () => {
        const script = `set -euo pipefail\n${onStack(shell.join("\n"))}`;
        const { stdout } = await run("bash", ["-c", script], { cwd: ROOT, maxBuffer: 10_000_000, timeout: 120_000 });
        expect(stdout).not.toMatch(/"error"\s*:/);
        expect(stdout.length).toBeGreaterThan(0);
      });
    }
    blocks(page.text, "ts").forEach((code, i) => {
      it(`${page.file}: TypeScript example ${i + 1}`, async () => {
        mkdirSync(join(ROOT, ".emulators"), { recursive: true });
        const dir = mkdtempSync(join(ROOT, ".emulators", "docs-example-"));
        const file = join(dir, "example.mts");
        try {
          writeFileSync(file, onStack(code));
          const { stdout } = await run(process.execPath, ["--import", "tsx", file], { cwd: ROOT, maxBuffer: 10_000_000, timeout: 120_000 });
          expect(stdout.length).toBeGreaterThan(0);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    });
  }
});
