import { execFileSync } from "node:child_process";

/**
 * The launcher runs under a chain of relays (`npm start` → sh → tsx → node). A relay that is
 * killed does not always pass the signal on: npm forwards SIGTERM to its shell, the shell dies
 * without forwarding it to tsx, and the launcher would keep the emulators running, orphaned,
 * holding the ports the next `npm start` needs. So the launcher watches the chain itself and
 * stops everything as soon as one of them is gone.
 */

export interface Ancestor {
  pid: number;
  command: string;
}

/** Processes that only relay a command: watched, and walked through. */
const RELAY = new Set(["node", "tsx", "sh", "dash", "bash"]);
/** npm and npx are watched and end the walk: above them is the user's own shell or CI. */
const TOP = new Set(["npm", "npx"]);

function describe(pid: number): { ppid: number; command: string } | undefined {
  try {
    const line = execFileSync("ps", ["-o", "ppid=,comm=", "-p", String(pid)], { encoding: "utf8" }).trim();
    const match = /^(\d+)\s+(.*)$/.exec(line);
    if (!match) return undefined;
    // Linux shows npm's title ("npm start"), macOS a path: keep the program's name.
    const command = match[2]!.split(/\s+/)[0]!.split("/").pop()!;
    return { ppid: Number(match[1]), command };
  } catch {
    return undefined;
  }
}

/** This process's parent, and above it every relay up to and including the nearest npm or npx. */
export function ancestors(start = process.ppid): Ancestor[] {
  const found: Ancestor[] = [];
  let pid = start;
  for (let depth = 0; depth < 16 && pid > 1; depth++) {
    const info = describe(pid);
    if (!info) break;
    // The direct parent is watched whatever it is: it started us.
    if (depth > 0 && !RELAY.has(info.command) && !TOP.has(info.command)) break;
    found.push({ pid, command: info.command });
    if (TOP.has(info.command)) break;
    pid = info.ppid;
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Calls `onGone` once, with the first watched process found gone. Returns a function that stops watching. */
export function watchAncestors(watched: Ancestor[], onGone: (gone: Ancestor) => void, intervalMs = 300): () => void {
  let done = false;
  const timer = setInterval(() => {
    const gone = watched.find((a) => !alive(a.pid));
    if (gone && !done) {
      done = true;
      clearInterval(timer);
      onGone(gone);
    }
  }, intervalMs);
  timer.unref();
  return () => {
    done = true;
    clearInterval(timer);
  };
}
