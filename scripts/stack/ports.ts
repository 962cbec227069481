import { createServer } from "node:net";
import { StackError } from "./processes.js";

export type PortName = "provider" | "firestore" | "functions" | "auth" | "hub" | "logging" | "eventarc" | "tasks";

export type Ports = Record<PortName, number>;

/** Where `npm start` listens, so that the URLs it prints stay the same from run to run. */
// eventarc and tasks: firebase-tools starts both beside the Functions emulator, on these defaults.
export const FIXED_PORTS: Ports = { provider: 8787, firestore: 8085, functions: 5001, auth: 9099, hub: 4400, logging: 4500, eventarc: 9299, tasks: 9499 };

/** Environment variables that override one port, e.g. FUNCTIONS_PORT=5002. */
export const PORT_ENV: Record<PortName, string> = {
  provider: "LOCAL_PROVIDER_PORT",
  firestore: "FIRESTORE_PORT",
  functions: "FUNCTIONS_PORT",
  auth: "AUTH_PORT",
  hub: "HUB_PORT",
  logging: "LOGGING_PORT",
  eventarc: "EVENTARC_PORT",
  tasks: "TASKS_PORT",
};

function listenOn(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(port, host, () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve(bound));
    });
  });
}

export async function assertPortFree(port: number, what: string, host = "127.0.0.1"): Promise<void> {
  try {
    await listenOn(port, host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StackError(
      code === "EADDRINUSE"
        ? `Port ${port} (${what}) is already in use. Stop whatever listens there (\`lsof -i :${port}\`), or set ${what === "local model provider" ? PORT_ENV.provider : "another port"}.`
        : `Cannot listen on ${host}:${port} (${what}): ${code ?? String(error)}`,
    );
  }
}

/**
 * Chooses the ports of one stack. `fixed` uses FIXED_PORTS; `free` asks the OS for unused
 * ones, so that a test run can start beside `npm start`. Either way an *_PORT variable
 * wins, and every chosen port is checked before anything starts.
 */
export async function choosePorts(mode: "fixed" | "free", env: NodeJS.ProcessEnv = process.env): Promise<Ports> {
  const ports = { ...FIXED_PORTS };
  for (const name of Object.keys(ports) as PortName[]) {
    const override = env[PORT_ENV[name]];
    if (override) {
      const port = Number(override);
      if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
        throw new StackError(`${PORT_ENV[name]}=${override} is not a port number.`);
      }
      ports[name] = port;
    } else if (mode === "free") {
      ports[name] = await listenOn(0, "127.0.0.1");
    }
  }
  const labels: Record<PortName, string> = {
    provider: "local model provider",
    firestore: "Firestore emulator",
    functions: "Functions emulator",
    auth: "Auth emulator",
    hub: "emulator hub",
    logging: "emulator logging",
    eventarc: "Eventarc emulator",
    tasks: "Cloud Tasks emulator",
  };
  for (const name of Object.keys(ports) as PortName[]) await assertPortFree(ports[name], labels[name]);
  return ports;
}

/**
 * firebase.json's `emulators` block for these ports: the Functions emulator and what
 * firebase-tools starts beside it, Auth and Firestore when this config runs them.
 */
export function emulatorsConfig(ports: Ports, run: { auth: boolean; firestore: boolean }): Record<string, unknown> {
  const host = "127.0.0.1";
  return {
    functions: { host, port: ports.functions },
    ...(run.auth ? { auth: { host, port: ports.auth } } : {}),
    ...(run.firestore ? { firestore: { host, port: ports.firestore } } : {}),
    hub: { host, port: ports.hub },
    logging: { host, port: ports.logging },
    eventarc: { host, port: ports.eventarc },
    tasks: { host, port: ports.tasks },
    ui: { enabled: false },
    singleProjectMode: true,
  };
}
