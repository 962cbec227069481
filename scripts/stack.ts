import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLocalProvider, type LocalProvider } from "./local-provider/server.js";
import { planFirestore, type FirestorePlan } from "./stack/firestore.js";
import { ancestors, watchAncestors } from "./stack/lifeline.js";
import { declaredParams, writeMissingParams } from "./stack/local-params.js";
import { quietOutput } from "./stack/quiet-output.js";
import { choosePorts, emulatorsConfig, type Ports } from "./stack/ports.js";
import { StackError, startProcess, startReaper, waitUntil, type ManagedProcess } from "./stack/processes.js";
import { startWebApp, webAppPort } from "./stack/web-app.js";

/**
 * One launcher for the local stack: the local model provider, the Firestore emulator
 * (firebase-tools on Java ≥ 21, else the Cloud SDK's jar), and firebase-tools' Functions
 * and Auth emulators. Every process is stopped, children included, on exit, Ctrl-C,
 * SIGTERM or failure.
 *
 *   tsx scripts/stack.ts start                         (npm start)
 *   tsx scripts/stack.ts exec [--if-needed] "<cmd>"    (npm run emulators:exec -- "<cmd>")
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PROJECT = "demo-llm-gateway";
const REGION = "us-central1";
const STATE_FILE = join(ROOT, ".emulators", "stack.json");
/** The children's temporary directory (sockets of function workers…), removed with the stack. */
const TEMP_PREFIX = "llm-gateway-stack-";
const READY_TIMEOUT_MS = Number(process.env.STACK_READY_TIMEOUT_MS ?? 120_000);

/** What a command run inside the stack finds in its environment. */
export interface StackEnv {
  GCLOUD_PROJECT: string;
  FIRESTORE_EMULATOR_HOST: string;
  FIREBASE_AUTH_EMULATOR_HOST: string;
  FIREBASE_EMULATOR_HUB: string;
  LOCAL_PROVIDER_URL: string;
  /** `http://127.0.0.1:<port>/<project>/<region>`: append a function name. */
  FUNCTIONS_BASE_URL: string;
  [name: string]: string;
}

// A reader that went away (a killed test runner) must not turn logging into a crash that skips teardown.
process.stdout.on("error", () => {});
process.stderr.on("error", () => {});
const log = (message: string) => process.stderr.write(`stack: ${message}\n`);

const reaper = startReaper();

let cleanups: (() => Promise<void>)[] = [async () => reaper.release()];
let stopping: Promise<void> | undefined;

/** Runs every registered cleanup once, newest first. */
function teardown(): Promise<void> {
  stopping ??= (async () => {
    const pending = cleanups.reverse();
    cleanups = [];
    for (const cleanup of pending) await cleanup().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
  })();
  return stopping;
}

async function exit(code: number): Promise<never> {
  await teardown();
  process.exit(code);
}

function generatedConfig(ports: Ports, plan: FirestorePlan): string {
  const base = JSON.parse(readFileSync(join(ROOT, "firebase.json"), "utf8")) as Record<string, unknown>;
  const config = { ...base, emulators: emulatorsConfig(ports, { auth: true, firestore: plan.kind === "firebase-tools" }) };
  // firebase-tools only accepts a config file in the project directory.
  const path = join(ROOT, `firebase.local.${process.pid}.json`);
  writeFileSync(path, JSON.stringify(config, null, 2));
  cleanups.push(async () => rmSync(path, { force: true }));
  return path;
}

async function httpOk(url: string, accept: (status: number, body: string) => boolean = (s) => s === 200): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return accept(response.status, await response.text());
}

async function startFirestoreJar(plan: Extract<FirestorePlan, { kind: "jar" }>, port: number, logDir: string): Promise<ManagedProcess> {
  const firestore = startProcess(
    "Firestore emulator",
    plan.java,
    [
      "-Duser.language=en",
      // No hsperfdata_<user> folder left in /tmp.
      "-XX:-UsePerfData",
      "-cp",
      plan.jar,
      "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--rules",
      join(ROOT, "firestore.rules"),
    ],
    { logFile: join(logDir, "firestore.log"), reaper },
  );
  cleanups.push(() => firestore.stop(5_000));
  await waitUntil(`the Firestore emulator answered on port ${port}`, () => httpOk(`http://127.0.0.1:${port}/`), {
    timeoutMs: READY_TIMEOUT_MS,
    process: firestore,
  });
  return firestore;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes the config and log folder of launchers that were killed before they could clean up. */
function sweepStaleFiles(): void {
  for (const name of readdirSync(ROOT)) {
    const pid = /^firebase\.local\.(\d+)\.json$/.exec(name)?.[1];
    if (pid && !isRunning(Number(pid))) rmSync(join(ROOT, name), { force: true });
  }
  for (const name of readdirSync(tmpdir())) {
    const pid = name.startsWith(TEMP_PREFIX) ? name.slice(TEMP_PREFIX.length) : undefined;
    if (pid && /^\d+$/.test(pid) && !isRunning(Number(pid))) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  const logs = join(ROOT, ".emulators");
  if (!existsSync(logs)) return;
  for (const name of readdirSync(logs)) {
    if (/^\d+$/.test(name) && !isRunning(Number(name))) rmSync(join(logs, name), { recursive: true, force: true });
  }
}

export interface Stack {
  env: StackEnv;
  ports: Ports;
  plan: FirestorePlan;
  provider: LocalProvider;
}

async function startStack(options: { ports: "fixed" | "free"; echo: boolean }): Promise<Stack> {
  const plan = planFirestore();
  sweepStaleFiles();
  const ports = await choosePorts(options.ports);
  const logDir = join(ROOT, ".emulators", String(process.pid));
  mkdirSync(logDir, { recursive: true });
  // firebase-tools puts a socket per function worker in the temporary directory and leaves them.
  const tempDir = join(tmpdir(), `${TEMP_PREFIX}${process.pid}`);
  mkdirSync(tempDir, { recursive: true });
  cleanups.push(async () => rmSync(tempDir, { recursive: true, force: true }));
  const added = writeMissingParams(join(ROOT, "functions"), await declaredParams(join(ROOT, "functions")), PROJECT);
  if (added.length > 0) log(`wrote the defaults of ${added.length} params to functions/.env.local (edit them there)`);

  const provider = await startLocalProvider({ port: ports.provider }).catch((error: unknown) => {
    throw new StackError(`The local model provider could not start on port ${ports.provider}: ${String(error)}`);
  });
  cleanups.push(() => provider.close());

  if (plan.kind === "jar") await startFirestoreJar(plan, ports.firestore, logDir);

  const env: StackEnv = {
    GCLOUD_PROJECT: PROJECT,
    FIRESTORE_EMULATOR_HOST: `127.0.0.1:${ports.firestore}`,
    FIREBASE_AUTH_EMULATOR_HOST: `127.0.0.1:${ports.auth}`,
    FIREBASE_EMULATOR_HUB: `127.0.0.1:${ports.hub}`,
    LOCAL_PROVIDER_URL: provider.url,
    FUNCTIONS_BASE_URL: `http://127.0.0.1:${ports.functions}/${PROJECT}/${REGION}`,
  };
  const config = generatedConfig(ports, plan);
  const only = plan.kind === "firebase-tools" ? "functions,auth,firestore" : "functions,auth";
  const firebaseBin = createRequire(import.meta.url).resolve("firebase-tools/lib/bin/firebase.js");
  const quiet = quietOutput();
  const firebase = startProcess(
    "firebase-tools",
    process.execPath,
    [firebaseBin, "emulators:start", "--project", PROJECT, "--config", config, "--only", only],
    {
      cwd: ROOT,
      // NODE_ENV=production as on Cloud Functions: the runtime's Express then answers framework
      // errors (malformed JSON) without a stack trace, as the deployed service does.
      env: { ...process.env, ...env, NODE_ENV: "production", FIREBASE_CLI_DISABLE_UPDATE_CHECK: "true", TMPDIR: tempDir },
      logFile: join(logDir, "firebase.log"),
      echo: options.echo ? (line) => quiet.line(line) : false,
      stopSignal: "SIGINT",
      reaper,
    },
  );
  cleanups.push(() => firebase.stop(10_000));
  cleanups.push(async () => rmSync(logDir, { recursive: true, force: true }));

  const health = `${env.FUNCTIONS_BASE_URL}/api/health`;
  await waitUntil(
    "the Functions emulator served /health",
    async () =>
      (await httpOk(`http://${env.FIREBASE_AUTH_EMULATOR_HOST}/`)) &&
      (plan.kind === "jar" || (await httpOk(`http://${env.FIRESTORE_EMULATOR_HOST}/`))) &&
      (await httpOk(health)),
    { timeoutMs: READY_TIMEOUT_MS, process: firebase },
  );
  const notices = quiet.notices();
  if (options.echo && notices) log(`${notices} (full output: .emulators/${process.pid}/firebase.log)`);
  return { env, ports, plan, provider };
}

/** The environment of a stack that is already up (this process's, or `npm start`'s), if any answers. */
async function runningStackEnv(): Promise<StackEnv | undefined> {
  const candidates: Partial<StackEnv>[] = [process.env as Partial<StackEnv>];
  if (existsSync(STATE_FILE)) candidates.push(JSON.parse(readFileSync(STATE_FILE, "utf8")) as Partial<StackEnv>);
  for (const env of candidates) {
    if (!env.FUNCTIONS_BASE_URL || !env.FIRESTORE_EMULATOR_HOST || !env.LOCAL_PROVIDER_URL) continue;
    const up = await httpOk(`${env.FUNCTIONS_BASE_URL}/api/health`).catch(() => false);
    if (up) return env as StackEnv;
  }
  return undefined;
}

function runCommand(command: string, env: StackEnv): Promise<number> {
  const child = spawn(command, { shell: true, stdio: "inherit", env: { ...process.env, ...env }, detached: true });
  reaper.watch(child.pid);
  const forward = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      forward("SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, 3_000).unref());
    }
    forward("SIGKILL");
  });
  return new Promise((resolve) => {
    child.once("error", () => resolve(127));
    child.once("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 1)));
  });
}

function printWelcome(stack: Stack, webAppUrl: string): void {
  const fn = stack.env.FUNCTIONS_BASE_URL;
  const auth = stack.env.FIREBASE_AUTH_EMULATOR_HOST;
  const firestore = stack.plan.kind === "jar" ? `Cloud SDK jar on Java ${stack.plan.javaVersion}` : `firebase-tools on Java ${stack.plan.javaVersion}`;
  const signUp =
    `TOKEN=$(curl -s -X POST 'http://${auth}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any' ` +
    `-H 'content-type: application/json' -d '{"returnSecureToken":true}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).idToken')`;
  process.stdout.write(
    [
      "",
      `Local backend is up (project ${PROJECT}).`,
      `  Web app          ${webAppUrl}   (examples/web: the example chat app)`,
      `  Callable         ${fn}/executePrompt   (firebase SDK: connectFunctionsEmulator(functions, "127.0.0.1", ${stack.ports.functions}))`,
      `  HTTPS api        ${fn}/api   (GET /health)`,
      `  Local provider   ${stack.env.LOCAL_PROVIDER_URL}   (OpenAI-compatible, no key needed)`,
      `  Firestore        ${stack.env.FIRESTORE_EMULATOR_HOST}   (${firestore})`,
      `  Auth             ${auth}`,
      "",
      "Try it:",
      `  curl -s ${fn}/api/health`,
      `  ${signUp}`,
      `  curl -s ${fn}/executePrompt -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\`,
      `    -d '{"data":{"messages":[{"role":"user","content":"Hello"}]}}'`,
      "",
      "Press Ctrl-C to stop everything.",
      "",
    ].join("\n"),
  );
}

async function main(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv;
  if (mode === "start") {
    const webPort = await webAppPort();
    const stack = await startStack({ ports: "fixed", echo: true });
    if (stopping) await new Promise(() => {}); // stopped while starting: the teardown exits
    mkdirSync(join(ROOT, ".emulators"), { recursive: true });
    writeFileSync(STATE_FILE, JSON.stringify(stack.env, null, 2));
    cleanups.push(async () => rmSync(STATE_FILE, { force: true }));
    const webApp = await startWebApp(stack.env, { port: webPort });
    cleanups.push(() => webApp.close());
    printWelcome(stack, webApp.url);
    await new Promise(() => {}); // until a signal arrives
  }
  if (mode === "exec") {
    const ifNeeded = rest[0] === "--if-needed";
    const command = (ifNeeded ? rest.slice(1) : rest).join(" ").trim();
    if (command === "") throw new StackError('usage: stack.ts exec [--if-needed] "<command>"');
    const existing = ifNeeded ? await runningStackEnv() : undefined;
    if (existing) {
      log(`using the stack already running at ${existing.FUNCTIONS_BASE_URL}`);
      return runCommand(command, existing);
    }
    const started = Date.now();
    const stack = await startStack({ ports: "free", echo: false });
    log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s (Firestore: ${stack.plan.kind}); running: ${command}`);
    return runCommand(command, stack.env);
  }
  throw new StackError('usage: stack.ts start | stack.ts exec [--if-needed] "<command>"');
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
for (const signal of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) {
  process.on(signal, () => {
    log(`${signal} received, stopping everything`);
    void exit(SIGNAL_EXIT[signal]!);
  });
}
// Stop everything when a process that started us goes away without passing its signal on.
watchAncestors(ancestors(), (gone) => {
  log(`${gone.command} (pid ${gone.pid}), which started the launcher, is gone: stopping everything`);
  void exit(129);
});
process.on("uncaughtException", (error) => {
  log(`unexpected error: ${error.stack ?? String(error)}`);
  void exit(1);
});

main(process.argv.slice(2)).then(
  (code) => exit(code),
  (error: unknown) => {
    log(error instanceof StackError ? error.message : `failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return exit(1);
  },
);
