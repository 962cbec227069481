import type { App } from "firebase-admin/app";

let app: Promise<App> | undefined;

/** The Admin SDK's default app, initialized on first use (it finds the emulators from the environment). */
export function adminApp(): Promise<App> {
  app ??= import("firebase-admin/app").then(({ getApps, initializeApp }) => getApps()[0] ?? initializeApp());
  return app;
}
