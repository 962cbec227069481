import express, { type RequestHandler } from "express";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/**
 * Mounts the deployed handlers (functions/lib/index.js, exactly what `firebase deploy`
 * ships) on a local HTTP server, where the Functions emulator's proxy would get in the way:
 * client disconnects, SIGTERM, benchmarks. Two of them:
 * - `startFunctionsHost`: plain Express (JSON bodies parsed with `rawBody`, the function name
 *   stripped from the path), light enough for benchmarks;
 * - `startFrameworkHost`: @google-cloud/functions-framework, what Cloud Functions (2nd gen)
 *   runs on Cloud Run around each function (its body parsers, its middleware, its server),
 *   one framework server per function behind a router that strips the function name, as the
 *   cloudfunctions.net URL does. Disconnects are measured on this one (docs/api.md).
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
  return listening(createServer(app), options.port);
}

/** Listens on 127.0.0.1; `close` also ends kept-alive connections, which `server.close` alone waits for. */
async function listening(server: Server, port = 0): Promise<FunctionsHost> {
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

let frameworkHosts = 0;

/**
 * The handlers inside the real functions framework: each function registered with its `http()`
 * and served by the framework's own server (`getTestServer`: `getServer`, as its `main` builds it,
 * without the process-wide signal handlers `main` installs, which a test process must not get).
 */
export async function startFrameworkHost(options: { port?: number; functions?: HostedFunctions } = {}): Promise<FunctionsHost> {
  const entry = options.functions ?? (await deployedFunctions());
  const framework = await import("@google-cloud/functions-framework");
  const { getTestServer } = await import("@google-cloud/functions-framework/testing");
  const id = ++frameworkHosts;
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  for (const name of ["executePrompt", "api"] as const) {
    framework.http(`${name}-${id}`, entry[name] as Parameters<typeof framework.http>[1]);
    routes.set(name, getTestServer(`${name}-${id}`).listeners("request")[0] as (req: IncomingMessage, res: ServerResponse) => void);
  }
  const server = createServer((req, res) => {
    const [, name = "", ...rest] = (req.url ?? "/").split("/");
    const [fn, query] = name.split("?");
    const route = routes.get(fn!);
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    req.url = `/${rest.join("/")}${query !== undefined ? `?${query}` : ""}`;
    route(req, res);
  });
  return listening(server, options.port);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "0" } } });
  const host = await startFunctionsHost({ port: Number(values.port) });
  // The line tests wait for; the process stays up until signalled.
  console.log(`functions host listening on ${host.url}`);
}
