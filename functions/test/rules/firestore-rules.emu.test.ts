import { readFileSync } from "node:fs";
import { assertFails, assertSucceeds, initializeTestEnvironment, type RulesTestEnvironment } from "@firebase/rules-unit-testing";
import { deleteDoc, doc, getDoc, getDocs, collection, setDoc, updateDoc, type Firestore } from "firebase/firestore";
import { afterAll, beforeAll, beforeEach, describe, it } from "vitest";
import { stackEnv } from "../support/stack.js";

let env: RulesTestEnvironment;
let alice: Firestore; // the owner
let bob: Firestore; // another user
let nobody: Firestore; // not signed in
let admin: Firestore; // another user with the admin claim

const prompt = {
  name: "Translate",
  messages: [
    { role: "system", content: "Translate into {{language}}." },
    { role: "user", content: "{{text}}" },
  ],
  variables: { language: { type: "string", default: "French" }, text: { type: "string", required: true } },
  model: "local-mini",
  params: { temperature: 0.3, maxTokens: 200, topP: 1, stop: ["\n\n"] },
};

const backendPaths = [
  "users/alice/executions/e1",
  "users/alice/usage/2026-11",
  "users/alice/usage/2026-11-22",
  "users/alice/limits/current",
  "users/alice/conversations/conv-0001",
  "users/alice/conversations/conv-0001/messages/0000000000",
];

beforeAll(async () => {
  const [host, port] = stackEnv().firestoreHost.split(":");
  env = await initializeTestEnvironment({
    projectId: "demo-rules",
    firestore: { host: host!, port: Number(port), rules: readFileSync(new URL("../../../firestore.rules", import.meta.url), "utf8") },
  });
  // rules-unit-testing types its handle as the compat Firestore; at runtime it is the modular one.
  const modular = (context: { firestore(): unknown }) => context.firestore() as Firestore;
  alice = modular(env.authenticatedContext("alice"));
  bob = modular(env.authenticatedContext("bob"));
  nobody = modular(env.unauthenticatedContext());
  admin = modular(env.authenticatedContext("carol", { admin: true }));
});
afterAll(() => env.cleanup());

beforeEach(async () => {
  await env.clearFirestore();
  await env.withSecurityRulesDisabled(async (context) => {
    const db = context.firestore() as unknown as Firestore;
    await setDoc(doc(db, "users/alice/executions/e1"), { status: "succeeded", output: "hi" });
    await setDoc(doc(db, "users/alice/usage/2026-11"), { requests: 1, costMicros: 5 });
    await setDoc(doc(db, "users/alice/usage/2026-11-22"), { requests: 1, costMicros: 5 });
    await setDoc(doc(db, "users/alice/limits/current"), { monthlyBudgetUsd: 5, reservations: {}, recent: [] });
    await setDoc(doc(db, "users/alice/prompts/p1"), prompt);
    await setDoc(doc(db, "users/alice/conversations/conv-0001"), { title: "hi", messageCount: 2, nextSeq: 2 });
    await setDoc(doc(db, "users/alice/conversations/conv-0001/messages/0000000000"), { role: "user", content: "hi", seq: 0 });
    await setDoc(doc(db, "instances/i1/cancels/alice:e1"), { uid: "alice", executionId: "e1" });
    await setDoc(doc(db, "globalUsage/2026-11/shards/0"), { requests: 1, costMicros: 5 });
    await setDoc(doc(db, "_health/probe"), { ok: true });
  });
});

describe("backend-written documents: executions, usage, limits, conversations and their messages", () => {
  it.each(backendPaths)("%s: the owner reads it", async (path) => {
    await assertSucceeds(getDoc(doc(alice, path)));
  });

  it.each(backendPaths)("%s: other users, admins and the signed-out read nothing", async (path) => {
    for (const db of [bob, admin, nobody]) await assertFails(getDoc(doc(db, path)));
  });

  it.each(backendPaths)("%s: nobody writes it, not even its owner or an admin", async (path) => {
    for (const db of [alice, bob, admin, nobody]) {
      await assertFails(setDoc(doc(db, path), { status: "succeeded" }));
      await assertFails(updateDoc(doc(db, path), { costMicros: 0 }));
      await assertFails(deleteDoc(doc(db, path)));
    }
  });

  it("a user cannot raise their own budget or clear their reservations", async () => {
    await assertFails(updateDoc(doc(alice, "users/alice/limits/current"), { monthlyBudgetUsd: 1_000_000 }));
    await assertFails(setDoc(doc(alice, "users/alice/limits/current"), { reservations: {} }, { merge: true }));
  });

  it("nobody creates an execution or a ledger entry for themselves", async () => {
    await assertFails(setDoc(doc(alice, "users/alice/executions/forged"), { status: "succeeded" }));
    await assertFails(setDoc(doc(alice, "users/alice/usage/2030-01"), { costMicros: 0 }));
  });

  it.each(["users/alice/executions", "users/alice/conversations", "users/alice/conversations/conv-0001/messages"])(
    "the owner lists %s (a chat screen listens to it); others and the signed-out cannot",
    async (path) => {
      await assertSucceeds(getDocs(collection(alice, path)));
      for (const db of [bob, admin, nobody]) await assertFails(getDocs(collection(db, path)));
    },
  );

  it("nobody appends to a conversation, not even its owner: the assistant's words are the backend's", async () => {
    await assertFails(setDoc(doc(alice, "users/alice/conversations/conv-0001/messages/0000000002"), { role: "assistant", content: "I agree to pay", seq: 2 }));
    await assertFails(setDoc(doc(alice, "users/alice/conversations/forged-01"), { title: "x" }));
  });
});

describe("saved prompts", () => {
  it("the owner creates, reads, updates and deletes well-formed prompts", async () => {
    await assertSucceeds(setDoc(doc(alice, "users/alice/prompts/p2"), prompt));
    await assertSucceeds(setDoc(doc(alice, "users/alice/prompts/minimal"), { name: "m", messages: [{ role: "user", content: "hi" }] }));
    await assertSucceeds(getDoc(doc(alice, "users/alice/prompts/p2")));
    await assertSucceeds(updateDoc(doc(alice, "users/alice/prompts/p2"), { name: "Renamed" }));
    await assertSucceeds(deleteDoc(doc(alice, "users/alice/prompts/p2")));
  });

  it("other users, admins and the signed-out can neither read nor write them", async () => {
    for (const db of [bob, admin, nobody]) {
      await assertFails(getDoc(doc(db, "users/alice/prompts/p1")));
      await assertFails(setDoc(doc(db, "users/alice/prompts/p1"), prompt));
      await assertFails(deleteDoc(doc(db, "users/alice/prompts/p1")));
    }
  });

  it.each([
    ["an extra field", { ...prompt, owner: "bob" }],
    ["no name", { messages: prompt.messages }],
    ["an empty name", { ...prompt, name: "" }],
    ["a name too long", { ...prompt, name: "x".repeat(201) }],
    ["no messages", { name: "n", messages: [] }],
    ["messages that are not a list", { name: "n", messages: "hi" }],
    ["more than 20 messages", { name: "n", messages: Array.from({ length: 21 }, () => ({ role: "user", content: "x" })) }],
    ["an unknown role", { name: "n", messages: [{ role: "tool", content: "x" }] }],
    ["a message with an extra field", { name: "n", messages: [{ role: "user", content: "x", name: "y" }] }],
    ["a 20th message that is malformed", { name: "n", messages: [...Array.from({ length: 19 }, () => ({ role: "user", content: "x" })), { role: "user" }] }],
    ["content that is not text", { name: "n", messages: [{ role: "user", content: 42 }] }],
    ["content too long", { name: "n", messages: [{ role: "user", content: "x".repeat(20_001) }] }],
    ["variables that are not a map", { ...prompt, variables: ["x"] }],
    ["a model that is not text", { ...prompt, model: 3 }],
    ["an unknown param", { ...prompt, params: { seed: 1 } }],
    ["a temperature out of range", { ...prompt, params: { temperature: 3 } }],
    ["a fractional maxTokens", { ...prompt, params: { maxTokens: 1.5 } }],
    ["too many stop sequences", { ...prompt, params: { stop: ["a", "b", "c", "d", "e"] } }],
  ])("refuses %s", async (_, data) => {
    await assertFails(setDoc(doc(alice, "users/alice/prompts/bad"), data));
    await assertFails(setDoc(doc(alice, "users/alice/prompts/p1"), data));
  });
});

describe("everything else is closed", () => {
  it.each(["globalUsage/2026-11/shards/0", "_health/probe", "users/alice", "instances/i1/cancels/alice:e1", "anything/else"])("%s", async (path) => {
    for (const db of [alice, bob, admin, nobody]) {
      await assertFails(getDoc(doc(db, path)));
      await assertFails(setDoc(doc(db, path), { x: 1 }));
    }
  });
});
