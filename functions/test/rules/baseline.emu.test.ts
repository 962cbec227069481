import { readFileSync } from "node:fs";
import { assertFails, initializeTestEnvironment, type RulesTestEnvironment } from "@firebase/rules-unit-testing";
import { doc, getDoc, setDoc } from "firebase/firestore";
import { afterAll, beforeAll, describe, it } from "vitest";
import { stackEnv } from "../support/stack.js";

let env: RulesTestEnvironment;

beforeAll(async () => {
  const [host, port] = stackEnv().firestoreHost.split(":");
  env = await initializeTestEnvironment({
    projectId: "demo-rules-baseline",
    firestore: { host: host!, port: Number(port), rules: readFileSync(new URL("../../../firestore.rules", import.meta.url), "utf8") },
  });
});
afterAll(() => env.cleanup());

describe("firestore.rules baseline", () => {
  it("denies reads and writes of an unlisted path to signed-in and anonymous clients", async () => {
    const alice = env.authenticatedContext("alice").firestore();
    const nobody = env.unauthenticatedContext().firestore();
    for (const db of [alice, nobody]) {
      await assertFails(getDoc(doc(db, "anything/at-all")));
      await assertFails(setDoc(doc(db, "anything/at-all"), { x: 1 }));
      await assertFails(getDoc(doc(db, "_health/probe")));
    }
  });
});
