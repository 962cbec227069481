import type { Firestore } from "firebase-admin/firestore";
import { adminApp } from "./admin-app.js";

let db: Promise<Firestore> | undefined;

/**
 * The Admin SDK's Firestore, created on first use so that functions that never touch
 * Firestore (and cold starts of those that do) do not pay for loading it. In the
 * emulator the SDK finds FIRESTORE_EMULATOR_HOST by itself.
 */
export function firestore(): Promise<Firestore> {
  db ??= (async () => {
    const [app, { getFirestore }] = await Promise.all([adminApp(), import("firebase-admin/firestore")]);
    const instance = getFirestore(app);
    // Not `preferRest`: it cannot reach the emulator without real credentials
    // (googleapis/nodejs-firestore#1811), and tests must run the transport production runs.
    instance.settings({ ignoreUndefinedProperties: true });
    return instance;
  })();
  return db;
}
