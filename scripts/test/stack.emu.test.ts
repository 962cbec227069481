import { afterAll, describe, it, type ExpectStatic } from "vitest";
import { alive, descendants, portOpen, runLauncher } from "./support/launcher.js";

/**
 * Starts a second, complete stack on free ports beside the one running the tests,
 * and checks that the launcher leaves nothing behind however it ends.
 */

const PORT_VARS = ["FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "FIREBASE_EMULATOR_HUB", "LOCAL_PROVIDER_URL", "FUNCTIONS_BASE_URL"];
const printEnv = `node -e "console.log('READY ' + JSON.stringify(process.env)); setInterval(() => {}, 1000)"`;

function portsOf(env: Record<string, string>): Record<string, number> {
  return Object.fromEntries(PORT_VARS.map((name) => [name, Number(/:(\d+)/.exec(env[name] ?? "")?.[1])]));
}

const launched: ReturnType<typeof runLauncher>[] = [];
afterAll(() => {
  // Whatever happened in the tests, do not leave a stack running.
  for (const run of launched) if (run.child.exitCode === null) run.child.kill("SIGKILL");
});

function launch(args: string[]) {
  const run = runLauncher(args);
  launched.push(run);
  return run;
}

async function untilReady(expect: ExpectStatic, run: ReturnType<typeof runLauncher>): Promise<Record<string, string>> {
  const readyLine = () => run.output().split("\n").find((l) => l.startsWith("READY {"));
  await expect.poll(readyLine, { timeout: 120_000, interval: 250 }).toBeDefined();
  const line = readyLine()!;
  return JSON.parse(line.slice("READY ".length)) as Record<string, string>;
}

async function expectNothingLeft(expect: ExpectStatic, pids: number[]): Promise<void> {
  // Generous: on a loaded machine the emulators take their time to exit.
  await expect.poll(() => pids.filter(alive), { timeout: 45_000 }).toEqual([]);
  // No port check beyond that: every port of the stack belongs to one of these processes, and a
  // port they freed may at once be handed to another stack started on free ports meanwhile.
}

// Each test starts a whole stack of its own on free ports: they run at the same time.
describe.concurrent("scripts/stack.ts teardown", () => {
  it("SIGTERM while the command runs stops the command, the emulators, java and the provider", { timeout: 240_000 }, async ({ expect }) => {
    const run = launch(["exec", printEnv]);
    const env = await untilReady(expect, run);
    const pids = descendants(run.child.pid!);
    expect(pids.length).toBeGreaterThanOrEqual(3); // firebase-tools, java, the command, function workers
    const ports = portsOf(env);
    for (const port of Object.values(ports)) expect(await portOpen(port)).toBe(true);

    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(143);
    await expectNothingLeft(expect, pids);
  });

  it("SIGKILL of the launcher itself still stops everything (the reaper)", { timeout: 240_000 }, async ({ expect }) => {
    const run = launch(["exec", printEnv]);
    await untilReady(expect, run);
    const pids = descendants(run.child.pid!);
    run.child.kill("SIGKILL");
    await run.exited;
    await expectNothingLeft(expect, pids);
  });

  it("a failing command ends the stack and passes its exit code on", { timeout: 240_000 }, async ({ expect }) => {
    const run = launch(["exec", `${printEnv.replace("setInterval(() => {}, 1000)", "process.exit(7)")}`]);
    await untilReady(expect, run);
    const pids = descendants(run.child.pid!);
    expect(await run.exited).toBe(7);
    await expectNothingLeft(expect, pids);
  });
});
