import type { Firestore } from "firebase-admin/firestore";
import type { Execution } from "../core/execution.js";
import type { ExecutionStore } from "../core/ports.js";

/** Executions live at `users/{uid}/executions/{executionId}`; the id field is the document id, not stored twice. */
export function firestoreExecutionStore(db: () => Promise<Firestore>): ExecutionStore {
  const ref = async (uid: string, id: string) => (await db()).doc(`users/${uid}/executions/${id}`);
  const toDoc = ({ id: _id, ...execution }: Execution) => execution;
  return {
    async create(uid, execution) {
      await (await ref(uid, execution.id)).create(toDoc(execution));
    },
    async finish(uid, execution) {
      await (await ref(uid, execution.id)).set(toDoc(execution));
    },
  };
}
