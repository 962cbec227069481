/** Where the emulators are: supplied by the launcher when it serves the app (scripts/stack/web-app.ts). */
export interface EmulatorConfig {
  projectId: string;
  region: string;
  functions: { host: string; port: number };
  auth: { host: string; port: number };
  firestore: { host: string; port: number };
}

// Replaced by Vite's `define` at serve time; undefined when the page was not served by the launcher.
declare const __EMULATORS__: EmulatorConfig | undefined;

export function emulatorConfig(): EmulatorConfig {
  if (typeof __EMULATORS__ === "undefined") {
    throw new Error("No emulator configuration: serve this app with `npm start` (see examples/web/README.md).");
  }
  return __EMULATORS__;
}
