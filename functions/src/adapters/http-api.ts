import type { Request } from "firebase-functions/https";
import type { Response } from "express";
import { catalog } from "../config/catalog.js";
import { providerConnection } from "../config/providers.js";
import { firestore } from "./firestore.js";
import { checkHealth } from "./health.js";

const HEALTH_FIRESTORE_TIMEOUT_MS = 2_000;

async function health(_req: Request, res: Response): Promise<void> {
  const report = await checkHealth({
    pingFirestore: async () => {
      await (await firestore()).doc("_health/probe").get();
    },
    providers: catalog.providers,
    isConfigured: (p) => providerConnection(p) !== undefined,
    timeoutMs: HEALTH_FIRESTORE_TIMEOUT_MS,
  });
  res.status(report.status === "ok" ? 200 : 503).set("cache-control", "no-store").json(report);
}

/** The `api` HTTPS function: a small router over the paths of API.md. */
export async function handleApiRequest(req: Request, res: Response): Promise<void> {
  if (req.path === "/health" && (req.method === "GET" || req.method === "HEAD")) return health(req, res);
  res.status(404).json({ error: { message: `No route for ${req.method} ${req.path}`, type: "not_found", code: "not-found" } });
}
