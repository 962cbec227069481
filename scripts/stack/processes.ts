import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** A child started in its own process group, so that stopping it stops its children too (java, function workers). */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code (or 128 + signal number) once the process has exited. */
  exited: Promise<number>;
  /** The last lines it printed, for error messages. */
  tail(): string;
  stop(graceMs?: number): Promise<void>;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions & {
    logFile?: string;
    /** Show the output: all of it, or each line that the function returns (undefined hides it). */
    echo?: boolean | ((line: string) => string | undefined);
    stopSignal?: NodeJS.Signals;
    reaper?: Reaper;
  } = {},
): ManagedProcess {
  const { logFile, echo, stopSignal = "SIGTERM", reaper, ...spawnOptions } = options;
  const child = spawn(command, args, { ...spawnOptions, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  reaper?.watch(child.pid);
  const log: WriteStream | undefined = logFile ? createWriteStream(logFile, { flags: "a" }) : undefined;
  const lines: string[] = [];
  let partial = "";
  const collect = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    log?.write(text);
    if (echo === true) process.stdout.write(text);
    const complete = (partial + text).split("\n");
    partial = complete.pop()!;
    if (typeof echo === "function") {
      for (const line of complete) {
        const shown = echo(line);
        if (shown !== undefined) process.stdout.write(`${shown}\n`);
      }
    }
    lines.push(...complete.filter((l) => l.trim() !== ""));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number>((resolve) => {
    child.once("error", (error) => {
      lines.push(`${name}: could not start ${command}: ${error.message}`);
      resolve(127);
    });
    child.once("exit", (code, signal) => {
      log?.end();
      resolve(code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 0) : 0));
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 10_000) => {
    stopping ??= (async () => {
      const pid = child.pid;
      if (pid === undefined || child.exitCode !== null || child.signalCode !== null) {
        // The leader is gone, but its group may not be (a forked java): sweep it.
        if (pid !== undefined) killGroup(pid, "SIGKILL");
        return;
      }
      killGroup(pid, stopSignal);
      const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
      // The leader exiting does not mean its children did: always sweep the group.
      killGroup(pid, "SIGKILL");
      if (!done) await exited;
    })();
    return stopping;
  };

  return { name, child, exited, tail: () => [...lines, ...(partial.trim() ? [partial] : [])].slice(-15).join("\n"), stop };
}

/** Polls `check` until it returns true; fails early when `process` exits, or after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; process?: ManagedProcess; intervalMs?: number },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let exitCode: number | undefined;
  void options.process?.exited.then((code) => (exitCode = code));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new StackError(
        `${options.process?.name} exited (code ${exitCode}) before ${what}. Its last output:\n${options.process?.tail()}`,
      );
    }
    if (await check().catch(() => false)) return;
    await sleep(options.intervalMs ?? 150);
  }
  const tail = options.process ? ` Its last output:\n${options.process.tail()}` : "";
  throw new StackError(`${what} did not happen within ${Math.round(options.timeoutMs / 1000)} s.${tail}`);
}

/** A failure with a message meant for the person running the command, printed without a stack. */
export class StackError extends Error {
  override name = "StackError";
}

/**
 * A watchdog for the one case no handler can cover: the launcher killed with SIGKILL or
 * dying with its pipes. The reaper reads process-group ids on its stdin; when that pipe
 * closes without a "release" line (the launcher is gone), it kills every group it was given.
 */
const REAPER = `
let groups = [], released = false, buffer = "";
process.stdin.on("data", (d) => {
  buffer += d;
  let i;
  while ((i = buffer.indexOf("\\n")) >= 0) {
    const line = buffer.slice(0, i); buffer = buffer.slice(i + 1);
    if (line === "release") released = true; else groups.push(Number(line));
  }
});
process.stdin.on("end", () => {
  if (!released) for (const g of groups) { try { process.kill(-g, "SIGKILL"); } catch {} }
  process.exit(0);
});
`;

export interface Reaper {
  watch(pid: number | undefined): void;
  /** Called after a clean teardown: the reaper exits without killing anything. */
  release(): void;
}

export function startReaper(): Reaper {
  const reaper = spawn(process.execPath, ["-e", REAPER], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
  reaper.unref();
  const stdin = reaper.stdin!;
  stdin.on("error", () => {});
  (stdin as unknown as { unref?: () => void }).unref?.();
  return {
    watch: (pid) => {
      if (pid !== undefined) stdin.write(`${pid}\n`);
    },
    release: () => {
      stdin.end("release\n");
    },
  };
}
