import type { CallableRequest } from "firebase-functions/https";
import { ExecutionError } from "../core/errors.js";

/** Caller identity and App Check, shared by every callable. */
export function requireCaller(request: CallableRequest<unknown>, enforceAppCheck: boolean): string {
  // A non-empty uid, not just an auth object: anything less must never name a user's documents.
  const uid = request.auth?.uid;
  if (typeof uid !== "string" || uid === "" || uid.includes("/")) throw new ExecutionError("unauthenticated");
  if (enforceAppCheck && !request.app) throw new ExecutionError("permission_denied", "A valid App Check token is required.");
  // Set only with replay protection on (APP_CHECK_REPLAY_PROTECTION): a limited-use token seen before.
  if (request.app?.alreadyConsumed === true) {
    throw new ExecutionError("permission_denied", "This App Check token was already used; limited-use tokens are good for one call.");
  }
  return uid;
}
