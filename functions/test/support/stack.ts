/** Where the stack started by scripts/stack.ts listens, from the environment it exports. */
export function stackEnv() {
  const need = (name: string): string => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: run emulator tests through npm test`);
    return value;
  };
  return {
    project: need("GCLOUD_PROJECT"),
    firestoreHost: need("FIRESTORE_EMULATOR_HOST"),
    authHost: need("FIREBASE_AUTH_EMULATOR_HOST"),
    functionsBaseUrl: need("FUNCTIONS_BASE_URL"),
    providerUrl: need("LOCAL_PROVIDER_URL"),
  };
}

export function functionUrl(name: string, path = ""): string {
  return `${stackEnv().functionsBaseUrl}/${name}${path}`;
}
