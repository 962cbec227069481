import { ExecutionError } from "../core/errors.js";
import { adminApp } from "./admin-app.js";

/** Verifies `Authorization: Bearer <Firebase ID token>` with the Admin SDK (the Auth emulator's tokens when it runs). */
export async function verifyBearer(header: string | undefined): Promise<{ uid: string }> {
  const token = /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];
  if (!token) throw new ExecutionError("unauthenticated", "Send a Firebase ID token as `Authorization: Bearer <token>`.");
  const [{ getAuth }, app] = await Promise.all([import("firebase-admin/auth"), adminApp()]);
  try {
    const decoded = await getAuth(app).verifyIdToken(token);
    return { uid: decoded.uid };
  } catch {
    throw new ExecutionError("unauthenticated", "The ID token is invalid or expired.");
  }
}

/** True when an `X-Firebase-AppCheck` token is present and valid. */
export async function verifyAppCheck(token: string | undefined): Promise<boolean> {
  if (!token) return false;
  const [{ getAppCheck }, app] = await Promise.all([import("firebase-admin/app-check"), adminApp()]);
  try {
    await getAppCheck(app).verifyToken(token);
    return true;
  } catch {
    return false;
  }
}
