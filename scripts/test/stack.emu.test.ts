import { afterEach, describe, expect, it } from "vitest";
import { descendants, expectNothingLeft, portOpen, runLauncher } from "./support/launcher.js";

/**
 * Starts a second, complete stack on free ports beside the one running the tests,
 * and checks that the launcher leaves nothing behind however it ends.
 */

const PORT_VARS = ["FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "FIREBASE_EMULATOR_HUB", "LOCAL_PROVIDER_URL", "FUNCTIONS_BASE_URL"];
const printEnv = `node -e "console.log('READY ' + JSON.stringify(process.env)); setInterval(() => {}, 1000)"`;

function portsOf(env: Record<string, string>): Record<string, number> {
  return Object.fromEntries(PORT_VARS.map((name) => [name, Number(/:(\d+)/.exec(env[name] ?? "")?.[1])]));
}

let current: ReturnType<typeof runLauncher> | undefined;
afterEach(() => {
  // Whatever happened in the test, do not leave a stack running.
  if (current?.child.exitCode === null) current.child.kill("SIGKILL");
});

function launch(args: string[]) {
  current = runLauncher(args);
  return current;
}

async function untilReady(run: ReturnType<typeof runLauncher>): Promise<Record<string, string>> {
  const readyLine = () => run.output().split("\n").find((l) => l.startsWith("READY {"));
  // Stops at once, with what the launcher printed, when it ends before READY.
  const readyOrEnded = () => readyLine() ?? (run.child.exitCode !== null || run.child.signalCode !== null ? "ended" : undefined);
  await expect
    .poll(readyOrEnded, { timeout: 120_000, interval: 250 })
    .toBeDefined()
    .catch(() => undefined);
  const line = readyLine();
  if (line === undefined) throw new Error(`no READY from the launcher (exit ${run.child.exitCode ?? run.child.signalCode ?? "not yet"}); it printed:\n${run.output().slice(-4000)}`);
  return JSON.parse(line.slice("READY ".length)) as Record<string, string>;
}

describe("scripts/stack.ts teardown", () => {
  it("SIGTERM while the command runs stops the command, the emulators, java and the provider", { timeout: 240_000 }, async () => {
    const run = launch(["exec", printEnv]);
    const env = await untilReady(run);
    const pids = descendants(run.child.pid!);
    expect(pids.length).toBeGreaterThanOrEqual(3); // firebase-tools, java, the command, function workers
    const ports = portsOf(env);
    for (const port of Object.values(ports)) expect(await portOpen(port)).toBe(true);

    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(143);
    await expectNothingLeft(pids, ports);
  });

  it("SIGKILL of the launcher itself still stops everything (the reaper)", { timeout: 240_000 }, async () => {
    const run = launch(["exec", printEnv]);
    const env = await untilReady(run);
    const pids = descendants(run.child.pid!);
    run.child.kill("SIGKILL");
    await run.exited;
    await expectNothingLeft(pids, portsOf(env));
  });

  it("a failing command ends the stack and passes its exit code on", { timeout: 240_000 }, async () => {
    const run = launch(["exec", `${printEnv.replace("setInterval(() => {}, 1000)", "process.exit(7)")}`]);
    const env = await untilReady(run);
    const pids = descendants(run.child.pid!);
    expect(await run.exited).toBe(7);
    await expectNothingLeft(pids, portsOf(env));
  });
});
