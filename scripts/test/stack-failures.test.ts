import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { runLauncher } from "./support/launcher.js";

/** Each misconfiguration gives one clear message and a non-zero exit before anything starts. */

let blocker: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve())));

function occupyPort(): Promise<number> {
  return new Promise((resolve) => {
    blocker = createServer();
    blocker.listen(0, "127.0.0.1", () => resolve((blocker!.address() as { port: number }).port));
  });
}

describe("scripts/stack.ts refuses clearly", () => {
  it("when there is no Java", async () => {
    const run = runLauncher(["exec", "true"], { STACK_JAVA: "/nonexistent/bin/java" });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/Java was not found.*install JDK 21/s);
  });

  it("when Java is older than 21 and the Cloud SDK jar is missing", async () => {
    const run = runLauncher(["exec", "true"], { STACK_FIRESTORE: "jar", FIRESTORE_EMULATOR_JAR: "/nonexistent/emulator.jar" });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/FIRESTORE_EMULATOR_JAR=\/nonexistent\/emulator.jar does not exist.*gcloud components install cloud-firestore-emulator/s);
  });

  it("when a port it needs is taken", async () => {
    const port = await occupyPort();
    const run = runLauncher(["exec", "true"], { LOCAL_PROVIDER_PORT: String(port) });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain(`Port ${port} (local model provider) is already in use`);
  });

  it("when asked for something it does not do", async () => {
    const run = runLauncher(["frobnicate"]);
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain("usage: stack.ts start");
  });
});
