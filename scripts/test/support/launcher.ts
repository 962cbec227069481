import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export interface LauncherRun {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts scripts/stack.ts directly under node (no tsx relay process), so that its pid is the launcher's. */
export function runLauncher(args: string[], env: NodeJS.ProcessEnv = {}): LauncherRun {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/stack.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return { child, output: () => output, exited };
}

/** Every descendant of `pid`, from `ps`. */
export function descendants(pid: number): number[] {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid="], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of rows) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const state = execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" }).trim();
    return state !== "" && !state.startsWith("Z");
  } catch {
    return false;
  }
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      // A free port in the ephemeral range can be handed to this very socket as its source
      // port, and TCP then "connects" to itself: that is no listener.
      const selfConnect = socket.localPort === port;
      socket.destroy();
      resolve(!selfConnect);
    });
    socket.once("error", () => resolve(false));
  });
}

/** What listens on `port`, for a failure message. */
function listener(port: number): string {
  try {
    return execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" }).trim();
  } catch {
    return "(ss unavailable)";
  }
}

/** Every one of `pids` has exited, and nothing listens on any of `ports` any more. */
export async function expectNothingLeft(pids: number[], ports: Record<string, number>): Promise<void> {
  // Generous: on a loaded machine the emulators take their time to exit.
  await expect.poll(() => pids.filter(alive), { timeout: 45_000, interval: 250 }).toEqual([]);
  for (const [name, port] of Object.entries(ports)) {
    expect(await portOpen(port), `${name} port ${port} still open: ${listener(port)}`).toBe(false);
  }
}
