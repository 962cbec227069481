import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { choosePorts, PORT_ENV, type PortName } from "../stack/ports.js";
import { alive, descendants, expectNothingLeft, ROOT } from "./support/launcher.js";

/**
 * `npm start` as a user runs it: npm → sh → tsx → the launcher, here on free ports. What it
 * prints until it is ready, and that killing npm by its pid (the way an IDE, a process
 * manager or `kill` stops it) leaves no process and no port behind, whether npm forwards
 * the signal (SIGTERM) or cannot (SIGKILL).
 */

let npm: ChildProcess | undefined;
afterEach(() => {
  if (npm?.pid && alive(npm.pid)) npm.kill("SIGKILL");
});

async function startThroughNpm() {
  const ports = await choosePorts("free");
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(ports) as PortName[]) env[PORT_ENV[name]] = String(ports[name]);
  // `npm start` without its build step: the build already ran before the tests.
  npm = spawn("npm", ["exec", "--no", "--", "tsx", "scripts/stack.ts", "start"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  npm.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await expect.poll(() => output, { timeout: 120_000, interval: 250 }).toContain("Press Ctrl-C to stop everything.");
  return { npm, ports, output: () => output };
}

/** The temporary folders of these processes' launcher (one, named after its pid). */
const tempDirsOf = (pids: number[]) => readdirSync(tmpdir()).filter((name) => pids.some((pid) => name === `llm-gateway-stack-${pid}`));

describe("npm start, stopped by killing npm", () => {
  // A whole stack starts and stops in each: minutes on a loaded machine.
  it("starts quietly, and SIGTERM to npm's pid stops the launcher, the emulators and java", { timeout: 240_000 }, async () => {
    const run = await startThroughNpm();
    const pids = descendants(run.npm.pid!);
    expect(pids.length).toBeGreaterThanOrEqual(5); // sh, tsx, the launcher, the reaper, java, firebase-tools, workers
    // The function workers' sockets go in the launcher's own temporary folder, not loose in /tmp.
    const [tempDir] = tempDirsOf(pids);
    expect(tempDir).toBeDefined();
    expect(readdirSync(join(tmpdir(), tempDir!)).some((name) => name.startsWith("fire_emu_"))).toBe(true);

    const shown = run.output();
    for (const noise of ["Prompting for parameters", "Secret Manager", "Trying to access secret", "doesn't match your global version", "MOTD", "invoked during function deployment", "All emulators ready"]) {
      expect(shown).not.toContain(noise);
    }
    // The expected warnings are one line, and the welcome names what a newcomer needs.
    expect(shown.split("\n").filter((line) => line.includes("expected here, and harmless"))).toHaveLength(1);
    expect(shown).toContain("Local backend is up");
    expect(shown).toContain(`http://127.0.0.1:${run.ports.functions}/demo-llm-gateway/us-central1/executePrompt`);

    process.kill(run.npm.pid!, "SIGTERM");
    await expectNothingLeft(pids, run.ports);
    expect(tempDirsOf(pids)).toEqual([]);
  });

  it("SIGKILL to npm's pid (no signal passed on) still stops everything", { timeout: 240_000 }, async () => {
    const run = await startThroughNpm();
    const pids = descendants(run.npm.pid!);
    process.kill(run.npm.pid!, "SIGKILL");
    await expectNothingLeft(pids, run.ports);
  });
});
