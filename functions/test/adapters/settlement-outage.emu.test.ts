import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { choosePorts } from "../../../scripts/stack/ports.js";
import { findFirestoreJar } from "../../../scripts/stack/firestore.js";

/**
 * A Firestore outage of 60 seconds during settlement loses nothing. The test runs a private
 * Firestore emulator (so the rest of the suite keeps its own), an "instance" in a child
 * process that uses it, and freezes the emulator (SIGSTOP) right after the two executions
 * are admitted, for 60 s: A, whose function may run 300 s, settles once Firestore is back;
 * B, whose function has only 25 s, logs `execution.unsettled`, and the settle script
 * (docs/operations.md) settles it from that log entry. Nothing is charged twice.
 */

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const OUTAGE_MS = 60_000;
let firestore: ChildProcess | undefined;
let host = "";

/** The Cloud SDK's jar, or the one firebase-tools downloaded (machines with Java 21). */
function emulatorJar(): string {
  const found = findFirestoreJar();
  if (found) return found;
  const cache = join(homedir(), ".cache", "firebase", "emulators");
  const downloaded = existsSync(cache) ? readdirSync(cache).find((f) => /^cloud-firestore-emulator.*\.jar$/.test(f)) : undefined;
  if (!downloaded) throw new Error("No Firestore emulator jar found (gcloud components install cloud-firestore-emulator, or run npm start once with Java 21).");
  return join(cache, downloaded);
}

beforeAll(async () => {
  const { firestore: port } = await choosePorts("free");
  host = `127.0.0.1:${port}`;
  firestore = spawn("java", ["-Duser.language=en", "-cp", emulatorJar(), "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "--host", "127.0.0.1", "--port", String(port)], {
    stdio: "ignore",
  });
  for (let started = Date.now(); !(await fetch(`http://${host}/`).then((r) => r.ok, () => false)); ) {
    if (Date.now() - started > 60_000) throw new Error("the private Firestore emulator did not start");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}, 90_000);

afterAll(() => {
  firestore?.kill("SIGCONT");
  firestore?.kill("SIGKILL");
});

/** Runs the child; resolves with its JSON events; `onEvent` sees each as it comes. */
function child(args: string[], onEvent: (event: Record<string, unknown>) => void = () => {}, stdin?: string): Promise<Record<string, unknown>[]> {
  const proc = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: ROOT,
    env: { ...process.env, FIRESTORE_EMULATOR_HOST: host },
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (stdin !== undefined) proc.stdin.end(stdin);
  else proc.stdin.end();
  const events: Record<string, unknown>[] = [];
  let buffer = "";
  let errors = "";
  proc.stderr.on("data", (b: Buffer) => (errors += b.toString()));
  proc.stdout.on("data", (b: Buffer) => {
    buffer += b.toString();
    for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith("{")) continue;
      const event = JSON.parse(line) as Record<string, unknown>;
      events.push(event);
      onEvent(event);
    }
  });
  return new Promise((resolve, reject) =>
    proc.once("exit", (code) => (code === 0 ? resolve(events) : reject(new Error(`child exited ${code}: ${errors.slice(-2_000)}`)))),
  );
}

describe("a 60-second Firestore outage during settlement", () => {
  it("loses nothing: settlement is retried through it, or settled later from the log, and counted once", async () => {
    const uid = `outage-${randomUUID().slice(0, 8)}`;
    let admitted = 0;
    let resumed: Promise<void> | undefined;
    const events = await child(["functions/test/support/outage-child.ts", "run", uid], (event) => {
      if (event.event === "admitted" && ++admitted === 2) {
        firestore!.kill("SIGSTOP"); // the provider keeps streaming; settlement meets a frozen Firestore
        resumed = new Promise((resolve) => setTimeout(resolve, OUTAGE_MS)).then(() => void firestore!.kill("SIGCONT"));
      }
    });
    await resumed;

    const results = Object.fromEntries(events.filter((e) => e.event === "result").map((e) => [e.name, e]));
    // Both clients got their answers: the outage came after the provider's.
    expect(results.A).toMatchObject({ costMicros: expect.any(Number) });
    expect(results.B).toMatchObject({ costMicros: expect.any(Number) });
    const logs = events.filter((e) => e.event === "log");
    expect(logs.some((e) => e.message === "execution.settle_retry")).toBe(true);
    const unsettled = logs.filter((e) => e.message === "execution.unsettled").map((e) => e.fields as { executionId: string });
    expect(unsettled.map((f) => f.executionId)).toEqual([results.B!.executionId]);

    // B settles from its log entry, with the script operators run (twice: it is idempotent).
    const entry = `${JSON.stringify({ message: "execution.unsettled", ...unsettled[0] })}\n`;
    await child(["scripts/settle-unsettled.ts"], () => {}, entry);
    await child(["scripts/settle-unsettled.ts"], () => {}, entry);

    const [state] = (await child(["functions/test/support/outage-child.ts", "inspect", uid])).filter((e) => e.event === "state") as {
      records: { id: string; status: string; costMicros: number }[];
      ledger: { requests: number; succeeded: number; costMicros: number };
      reservations: string[];
    }[];
    expect(state!.records.map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
    const total = (results.A!.costMicros as number) + (results.B!.costMicros as number);
    expect(state!.records.reduce((sum, r) => sum + r.costMicros, 0)).toBe(total);
    expect(state!.ledger).toMatchObject({ requests: 2, succeeded: 2, costMicros: total });
    expect(state!.reservations).toEqual([]);
  }, 150_000);
});
