import { initializeApp } from "firebase-admin/app";
import { getFirestore } from "firebase-admin/firestore";
import { conversationPaths } from "../../functions/src/adapters/conversations-repo.js";

/**
 * How the Firestore emulator answers the query a conversation turn makes (its newest stored
 * messages), as other conversations' messages pile up in the database: what docs/benchmarks.md
 * explains the conversation series with. Production Firestore serves the query from an index
 * (its cost follows the documents returned); the emulator's grows with every document of the
 * collection group. `npm run emulators:exec -- "tsx scripts/bench/emulator-queries.ts"`.
 */
const db = getFirestore(initializeApp({ projectId: process.env.GCLOUD_PROJECT }, "emulator-queries"));
const uid = `emulator-queries-${Date.now().toString(36)}`;

async function seed(conversation: string, messages: number): Promise<void> {
  let batch = db.batch();
  let writes = 0;
  for (let seq = 0; seq < messages; seq++) {
    batch.set(db.doc(conversationPaths.message(uid, conversation, seq)), { seq, role: "user", content: "x".repeat(200) });
    if (++writes >= 450) {
      await batch.commit();
      batch = db.batch();
      writes = 0;
    }
  }
  if (writes > 0) await batch.commit();
}

async function median(work: () => Promise<unknown>, runs = 21): Promise<string> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await work();
    times.push(performance.now() - started);
  }
  return `${times.sort((a, b) => a - b)[Math.floor(runs / 2)]!.toFixed(1)} ms`;
}

const newest = () => db.collection(conversationPaths.messages(uid, "c0")).orderBy("seq", "desc").limit(200).get();
const oneDocument = () => db.getAll(db.doc(conversationPaths.message(uid, "c0", 1)));
await seed("c0", 50);
console.log(`the query of 50 messages, alone in the database: ${await median(newest)}; a batched read of one document: ${await median(oneDocument)}`);
let others = 0;
for (const total of [10_000, 30_000]) {
  while (others < total) {
    await seed(`c${1 + others / 100}`, 100);
    others += 100;
  }
  console.log(`the same query with ${total.toLocaleString("en")} messages of other conversations in the database: ${await median(newest)}`);
}
process.exit(0);
