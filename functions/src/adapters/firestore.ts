import type { Firestore } from "firebase-admin/firestore";

let db: Promise<Firestore> | undefined;

/**
 * The Admin SDK's Firestore, created on first use so that functions that never touch
 * Firestore (and cold starts of those that do) do not pay for loading it. In the
 * emulator the SDK finds FIRESTORE_EMULATOR_HOST by itself.
 */
export function firestore(): Promise<Firestore> {
  db ??= (async () => {
    const [{ getApps, initializeApp }, { getFirestore }] = await Promise.all([
      import("firebase-admin/app"),
      import("firebase-admin/firestore"),
    ]);
    const app = getApps()[0] ?? initializeApp();
    const instance = getFirestore(app);
    // Not `preferRest`: it cannot reach the emulator without real credentials
    // (googleapis/nodejs-firestore#1811), and tests must run the transport production runs.
    instance.settings({ ignoreUndefinedProperties: true });
    return instance;
  })();
  return db;
}
