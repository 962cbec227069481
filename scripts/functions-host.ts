import express, { type RequestHandler } from "express";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/**
 * Mounts the deployed handlers (functions/lib/index.js, exactly what `firebase deploy`
 * ships) on a plain Node HTTP server, the way the Cloud Functions framework does: JSON
 * bodies parsed, the function name stripped from the path. Used where the Functions
 * emulator's proxy would get in the way: client disconnects, SIGTERM, benchmarks.
 * Needs FIREBASE_AUTH_EMULATOR_HOST (ID tokens) and FIRESTORE_EMULATOR_HOST in the environment.
 */
export interface FunctionsHost {
  url: string;
  close(): Promise<void>;
}

const ENTRY = fileURLToPath(new URL("../functions/lib/index.js", import.meta.url));

/** Exported functions, which the platform calls with Express requests (`rawBody` set by the JSON parser below). */
export interface HostedFunctions {
  executePrompt: unknown;
  api: unknown;
}

/** The deployed entry's exports, as the Cloud Functions framework would load them. */
export async function deployedFunctions(): Promise<HostedFunctions> {
  return (await import(pathToFileURL(ENTRY).href)) as HostedFunctions;
}

export async function startFunctionsHost(
  options: { port?: number; functions?: HostedFunctions; extraRoutes?: (app: express.Express) => void } = {},
): Promise<FunctionsHost> {
  const entry = options.functions ?? (await deployedFunctions());
  const app = express();
  app.disable("x-powered-by");
  app.use(
    express.json({
      limit: "32mb",
      verify: (req, _res, buf) => {
        (req as unknown as { rawBody: Buffer }).rawBody = buf;
      },
    }),
  );
  options.extraRoutes?.(app);
  app.post("/executePrompt", entry.executePrompt as RequestHandler);
  app.use("/api", entry.api as RequestHandler);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(options.port ?? 0, "127.0.0.1", () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "0" } } });
  const host = await startFunctionsHost({ port: Number(values.port) });
  // The line tests wait for; the process stays up until signalled.
  console.log(`functions host listening on ${host.url}`);
}
