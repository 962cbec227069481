import { onRequest } from "firebase-functions/https";
import { setGlobalOptions } from "firebase-functions/options";
import { providerSecrets } from "./config/params.js";
import { handleApiRequest } from "./adapters/http-api.js";

setGlobalOptions({ region: "us-central1" });

/** OpenAI-compatible HTTPS API and health check (API.md, "HTTPS function api"). */
export const api = onRequest({ secrets: providerSecrets, invoker: "public" }, handleApiRequest);
