import type { DocumentReference, Firestore } from "firebase-admin/firestore";
import type { CallableRequest } from "firebase-functions/https";
import { ExecutionError } from "../core/errors.js";
import { cancelRequestSchema, parseOrThrow } from "../core/request.js";
import type { ExecutionStatus } from "../core/execution.js";
import type { Logger } from "../core/ports.js";
import { paths } from "./executions-repo.js";
import { requireCaller } from "./caller.js";
import { toHttpsError } from "./https-error.js";
import { abortLocal, deliverCancel, INSTANCE_ID } from "./in-flight.js";

/**
 * Cancelling an execution from any device or instance (API.md, "Cancelling"). Every
 * `running` record names the instance that runs it; `cancelExecution` writes a request to
 * `instances/{instance}/cancels/{uid}:{executionId}:{run}` (run: the record's createdAt in ms), and each instance listens to its own
 * requests with one Firestore listener (started on its first execution, not one per
 * execution), and aborts the execution: the upstream request stops and the pipeline records
 * `cancelled` with what was produced, its usage and cost.
 */
export interface CancelChannel {
  /** Asks `instance` to stop one run of the execution (`run`: its record's `createdAt`, ms). */
  request(instance: string, uid: string, executionId: string, run?: number): Promise<void>;
  /** Starts delivering this instance's requests to in-flight.ts (once; cheap to call again). */
  listen(): void;
}

const CANCEL_TTL_MS = 3_600_000;
const cancelKey = (uid: string, executionId: string, run?: number) => `${uid}:${executionId}${run === undefined ? "" : `:${run}`}`;

export function firestoreCancelChannel(db: () => Promise<Firestore>, logger: Logger): CancelChannel {
  let listening = false;
  return {
    async request(instance, uid, executionId, run) {
      const firestore = await db();
      await firestore.doc(`instances/${instance}/cancels/${cancelKey(uid, executionId, run)}`).set({
        uid,
        executionId,
        ...(run !== undefined ? { run } : {}),
        requestedAt: new Date(),
        expireAt: new Date(Date.now() + CANCEL_TTL_MS),
      });
    },
    listen() {
      if (listening) return;
      listening = true;
      void db().then((firestore) => {
        const unsubscribe = firestore.collection(`instances/${INSTANCE_ID}/cancels`).onSnapshot(
          (snapshot) => {
            for (const change of snapshot.docChanges()) {
              if (change.type !== "added") continue;
              const { uid, executionId, run } = change.doc.data() as { uid?: unknown; executionId?: unknown; run?: unknown };
              if (typeof uid === "string" && typeof executionId === "string") deliverCancel(uid, executionId, typeof run === "number" ? run : undefined);
              void change.doc.ref.delete().catch(() => {});
            }
          },
          (error) => {
            // Listen again on the next execution rather than never again.
            logger.warn("cancel.listener_failed", { instance: INSTANCE_ID, error: error.message });
            listening = false;
            unsubscribe();
          },
        );
      });
    },
  };
}

/** Resolves with the record's status once it is no longer `running`, or the last status seen when `ms` pass. */
function settledStatus(ref: DocumentReference, ms: number): Promise<ExecutionStatus | undefined> {
  return new Promise((resolve) => {
    let last: ExecutionStatus | undefined;
    const done = () => {
      clearTimeout(timer);
      unsubscribe();
      resolve(last);
    };
    const timer = setTimeout(done, ms);
    const unsubscribe = ref.onSnapshot(
      (snapshot) => {
        last = snapshot.get("status") as ExecutionStatus | undefined;
        if (last !== "running") done();
      },
      () => done(),
    );
  });
}

export interface CancelDeps {
  db: () => Promise<Firestore>;
  channel: CancelChannel;
  /** Closes the execution when its instance is gone (reservation expired). */
  reclaimAbandoned(uid: string, now: number, ids: readonly string[]): Promise<string[]>;
  /** How long to wait for the record to end before answering with what it is. */
  waitMs?: number;
}

/**
 * Stops one of the caller's running executions. Answers its status once it ended (normally
 * `cancelled` within a second; `succeeded` etc. when it finished first). An execution that
 * is not the caller's is `not_found`, as if it did not exist.
 */
export async function cancelExecution(deps: CancelDeps, uid: string, executionId: string): Promise<{ executionId: string; status: ExecutionStatus }> {
  const firestore = await deps.db();
  const ref = firestore.doc(paths.execution(uid, executionId));
  const snapshot = await ref.get();
  if (!snapshot.exists) throw new ExecutionError("not_found", `executionId: you have no execution "${executionId}".`);
  const status = snapshot.get("status") as ExecutionStatus;
  if (status !== "running") return { executionId, status };
  const instance = snapshot.get("instance") as unknown;
  // This run (a rerun of the same requestId is another): what the cancel may stop, and nothing later.
  const createdAt = snapshot.get("createdAt") as { toMillis?: () => number } | undefined;
  const run = typeof createdAt?.toMillis === "function" ? createdAt.toMillis() : undefined;
  if (!abortLocal(uid, executionId, run) && typeof instance === "string") await deps.channel.request(instance, uid, executionId, run);
  let ended = await settledStatus(ref, deps.waitMs ?? 5_000);
  if (ended === "running" && (await deps.reclaimAbandoned(uid, Date.now(), [executionId])).length > 0) ended = "failed";
  return { executionId, status: ended ?? "running" };
}

/** The `cancelExecution` callable. */
export function createCancelExecutionHandler(options: { deps: () => CancelDeps; enforceAppCheck: () => boolean }) {
  return async (request: CallableRequest<unknown>): Promise<{ executionId: string; status: ExecutionStatus }> => {
    try {
      const uid = requireCaller(request, options.enforceAppCheck());
      const { executionId } = parseOrThrow(cancelRequestSchema, request.data);
      return await cancelExecution(options.deps(), uid, executionId);
    } catch (error) {
      throw toHttpsError(error);
    }
  };
}
