import type { Auth } from "firebase-admin/auth";
import type { AppCheck } from "firebase-admin/app-check";
import { ExecutionError } from "../core/errors.js";
import { adminApp } from "./admin-app.js";

// Loaded once, on first use: a module import per request is not free (and cold starts of
// functions that never verify anything should not pay for loading the SDK's auth at all).
let auth: Promise<Auth> | undefined;
let appCheck: Promise<AppCheck> | undefined;
const authService = () => (auth ??= Promise.all([import("firebase-admin/auth"), adminApp()]).then(([m, app]) => m.getAuth(app)));
const appCheckService = () => (appCheck ??= Promise.all([import("firebase-admin/app-check"), adminApp()]).then(([m, app]) => m.getAppCheck(app)));

/**
 * Tokens already verified, until they expire: clients send the same ID token for up to an
 * hour, and verifying its RS256 signature again each time was measured as a visible part of
 * a request's CPU. Revocation is not checked by verification either (no `checkRevoked`), so
 * this changes nothing of what a token allows.
 */
const verified = new Map<string, { uid: string; admin: boolean; expiresAt: number }>();
const VERIFIED_MAX = 10_000;

/** Verifies `Authorization: Bearer <Firebase ID token>` with the Admin SDK (the Auth emulator's tokens when it runs). */
export async function verifyBearer(header: string | undefined): Promise<{ uid: string; admin: boolean }> {
  const token = /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];
  if (!token) throw new ExecutionError("unauthenticated", "Send a Firebase ID token as `Authorization: Bearer <token>`.");
  const known = verified.get(token);
  if (known && known.expiresAt > Date.now()) return { uid: known.uid, admin: known.admin };
  try {
    const decoded = await (await authService()).verifyIdToken(token);
    // A non-empty uid that can name a document path, or nobody.
    if (typeof decoded.uid !== "string" || decoded.uid === "" || decoded.uid.includes("/")) throw new Error("no uid");
    const caller = { uid: decoded.uid, admin: decoded.admin === true };
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
    verified.set(token, { ...caller, expiresAt: decoded.exp * 1_000 });
    return caller;
  } catch {
    verified.delete(token);
    throw new ExecutionError("unauthenticated", "The ID token is invalid or expired.");
  }
}

/**
 * True when an `X-Firebase-AppCheck` token is present and valid. With `consume`, the token
 * is spent (a limited-use token): one seen before is refused, so it cannot be replayed.
 */
export async function verifyAppCheck(token: string | undefined, consume = false): Promise<boolean> {
  if (!token) return false;
  try {
    const result = await (await appCheckService()).verifyToken(token, consume ? { consume: true } : undefined);
    return result.alreadyConsumed !== true;
  } catch {
    return false;
  }
}
