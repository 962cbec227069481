/** Global setup of the `emulator` test project: fail at once, with the fix, when no stack is running. */
export default function setup(): void {
  const missing = ["FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "FUNCTIONS_BASE_URL", "LOCAL_PROVIDER_URL"].filter(
    (name) => !process.env[name],
  );
  if (missing.length > 0) {
    throw new Error(
      `The emulator tests need the local stack (missing ${missing.join(", ")}). ` +
        `Run them with \`npm test\`, or \`npm run emulators:exec -- "npx vitest run --project emulator"\`.`,
    );
  }
}
