import { fileURLToPath } from "node:url";
import { assertPortFree } from "./ports.js";
import { StackError } from "./processes.js";

/** The example chat app (examples/web), served by Vite's dev server against one stack's emulators. */

const WEB_ROOT = fileURLToPath(new URL("../../examples/web", import.meta.url));

/** Where `npm start` serves it (Vite's usual port); WEB_PORT overrides. */
export const WEB_APP_PORT = 5173;

/** The port `npm start` serves the app on, checked free before anything starts. */
export async function webAppPort(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const port = Number(env.WEB_PORT ?? WEB_APP_PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) throw new StackError(`WEB_PORT=${env.WEB_PORT} is not a port number.`);
  await assertPortFree(port, "web app").catch((error: unknown) => {
    throw new StackError(`${error instanceof Error ? error.message : String(error)} For the web app: \`WEB_PORT=<port> npm start\`.`);
  });
  return port;
}

/** The part of the stack's environment the app needs. */
export type WebAppEnv = Record<"FUNCTIONS_BASE_URL" | "FIREBASE_AUTH_EMULATOR_HOST" | "FIRESTORE_EMULATOR_HOST", string>;

export interface WebApp {
  url: string;
  close(): Promise<void>;
}

function hostPort(value: string): { host: string; port: number } {
  const url = new URL(`http://${value}`);
  return { host: url.hostname, port: Number(url.port) };
}

/** What examples/web/src/config.ts receives as `__EMULATORS__`. */
export function emulatorConfig(env: WebAppEnv) {
  const functions = new URL(env.FUNCTIONS_BASE_URL);
  const [projectId, region] = functions.pathname.split("/").filter(Boolean);
  if (!projectId || !region) throw new StackError(`FUNCTIONS_BASE_URL=${env.FUNCTIONS_BASE_URL} is not http://host:port/<project>/<region>.`);
  return {
    projectId,
    region,
    functions: { host: functions.hostname, port: Number(functions.port) },
    auth: hostPort(env.FIREBASE_AUTH_EMULATOR_HOST),
    firestore: hostPort(env.FIRESTORE_EMULATOR_HOST),
  };
}

/** Starts Vite on 127.0.0.1:`port` (0: any free port). Vite loads on first use, so `exec` never pays for it. */
export async function startWebApp(env: WebAppEnv, options: { port: number }): Promise<WebApp> {
  const { createServer } = await import("vite");
  const server = await createServer({
    configFile: false,
    root: WEB_ROOT,
    logLevel: "warn",
    clearScreen: false,
    define: { __EMULATORS__: JSON.stringify(emulatorConfig(env)) },
    server: { host: "127.0.0.1", port: options.port, strictPort: true },
    // Pre-bundled at start, so that the first page load does not find new dependencies and reload.
    optimizeDeps: { include: ["firebase/app", "firebase/auth", "firebase/firestore", "firebase/functions"] },
  });
  try {
    await server.listen();
  } catch (error) {
    await server.close();
    throw new StackError(`The web app could not listen on 127.0.0.1:${options.port}: ${String(error)}. Set WEB_PORT to another port.`);
  }
  const address = server.httpServer?.address();
  if (!address || typeof address === "string") throw new StackError("Vite's dev server has no address.");
  return { url: `http://127.0.0.1:${address.port}/`, close: () => server.close() };
}
