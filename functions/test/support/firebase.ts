import { initializeApp as initializeAdmin, getApps as getAdminApps, type App } from "firebase-admin/app";
import { getFirestore } from "firebase-admin/firestore";
import { initializeApp, type FirebaseApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInAnonymously, type User } from "firebase/auth";
import { connectFunctionsEmulator, getFunctions, httpsCallable, type Functions, type FunctionsError } from "firebase/functions";
import { stackEnv } from "./stack.js";

let apps = 0;

/** A fresh anonymous user on the Auth emulator, with the firebase web SDK pointed at the Functions emulator. */
export async function signedInClient(): Promise<{ app: FirebaseApp; uid: string; idToken: string; functions: Functions; user: User }> {
  const env = stackEnv();
  const app = initializeApp({ projectId: env.project, apiKey: "fake-api-key" }, `client-${process.pid}-${++apps}`);
  const auth = getAuth(app);
  connectAuthEmulator(auth, `http://${env.authHost}`, { disableWarnings: true });
  const { user } = await signInAnonymously(auth);
  const functions = getFunctions(app, "us-central1");
  const origin = new URL(env.functionsBaseUrl);
  connectFunctionsEmulator(functions, origin.hostname, Number(origin.port));
  return { app, uid: user.uid, idToken: await user.getIdToken(), functions, user };
}

/** A client without a signed-in user. */
export function anonymousFunctions(): Functions {
  const env = stackEnv();
  const app = initializeApp({ projectId: env.project, apiKey: "fake-api-key" }, `anon-${process.pid}-${++apps}`);
  const functions = getFunctions(app, "us-central1");
  const origin = new URL(env.functionsBaseUrl);
  connectFunctionsEmulator(functions, origin.hostname, Number(origin.port));
  return functions;
}

export function callable<Req = unknown, Res = unknown, Chunk = unknown>(functions: Functions, name: string) {
  return httpsCallable<Req, Res, Chunk>(functions, name, { timeout: 120_000 });
}

/** The Admin SDK on the emulator's Firestore, to read what the backend wrote (rules do not apply). */
export function adminDb() {
  const app: App = getAdminApps().find((a) => a.name === "test-admin") ?? initializeAdmin({ projectId: stackEnv().project }, "test-admin");
  return getFirestore(app);
}

/** Gives a user the `admin` custom claim on the Auth emulator; the client must refresh its token after. */
export async function makeAdmin(uid: string): Promise<void> {
  const { getAuth: adminAuth } = await import("firebase-admin/auth");
  adminDb(); // initializes the named admin app
  await adminAuth(getAdminApps().find((a) => a.name === "test-admin")).setCustomUserClaims(uid, { admin: true });
}

export async function executionRecord(uid: string, executionId: string) {
  const snapshot = await adminDb().doc(`users/${uid}/executions/${executionId}`).get();
  return snapshot.data();
}

interface ProviderStats {
  byKey: Record<string, number>;
  abortedByKey: Record<string, number>;
}

async function providerStats(): Promise<ProviderStats> {
  return (await (await fetch(`${stackEnv().providerUrl.replace(/\/v1$/, "")}/_stats`)).json()) as ProviderStats;
}

/** How many chat requests the local provider saw for a scenario key. */
export async function providerCount(key: string): Promise<number> {
  return (await providerStats()).byKey[key] ?? 0;
}

/** How many of them the client (our backend) abandoned before the end. */
export async function providerAborts(key: string): Promise<number> {
  return (await providerStats()).abortedByKey[key] ?? 0;
}

/** The error a callable (or any promise) rejects with; fails the test when it resolves. */
export async function rejection<E = FunctionsError>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (error) {
    return error as E;
  }
  throw new Error("expected the call to fail");
}
