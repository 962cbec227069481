import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { StackError } from "./processes.js";

/**
 * firebase-tools 14+ refuses Java < 21 and downloads its Firestore emulator jar, so on
 * machines with Java 17 and no internet we run the Google Cloud CLI's jar ourselves and
 * let firebase-tools use it through FIRESTORE_EMULATOR_HOST.
 */
export type FirestorePlan = { kind: "firebase-tools"; javaVersion: number } | { kind: "jar"; java: string; jar: string; javaVersion: number };

const JAR_IN_SDK = join("platform", "cloud-firestore-emulator", "cloud-firestore-emulator.jar");
const COMMON_SDK_ROOTS = ["/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk", join(homedir(), "google-cloud-sdk")];

/** The major version `java -version` reports, or undefined when there is no such binary. */
export function javaMajorVersion(java: string): number | undefined {
  const result = spawnSync(java, ["-version"], { encoding: "utf8", timeout: 15_000 });
  if (result.error || result.status !== 0) return undefined;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${result.stderr}${result.stdout}`);
  if (!match) return undefined;
  const major = Number(match[1]);
  return major === 1 ? Number(match[2]) : major; // "1.8.0" is Java 8
}

function sdkRootFromGcloud(): string | undefined {
  const result = spawnSync("gcloud", ["info", "--format=value(installation.sdk_root)"], { encoding: "utf8", timeout: 30_000 });
  if (result.error || result.status !== 0) return undefined;
  return result.stdout.trim() || undefined;
}

export function findFirestoreJar(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FIRESTORE_EMULATOR_JAR) return existsSync(env.FIRESTORE_EMULATOR_JAR) ? env.FIRESTORE_EMULATOR_JAR : undefined;
  for (const root of COMMON_SDK_ROOTS) {
    if (existsSync(join(root, JAR_IN_SDK))) return join(root, JAR_IN_SDK);
  }
  const root = sdkRootFromGcloud();
  return root && existsSync(join(root, JAR_IN_SDK)) ? join(root, JAR_IN_SDK) : undefined;
}

/**
 * Java ≥ 21 → firebase-tools runs Firestore as usual; otherwise the installed jar on
 * whatever Java there is; neither → a message that says how to get one. STACK_FIRESTORE
 * (`jar` or `firebase-tools`) forces a path; STACK_JAVA names the java binary.
 */
export function planFirestore(env: NodeJS.ProcessEnv = process.env): FirestorePlan {
  const java = env.STACK_JAVA ?? (env.JAVA_HOME ? join(env.JAVA_HOME, "bin", "java") : "java");
  const javaVersion = javaMajorVersion(java);
  if (javaVersion === undefined) {
    throw new StackError(
      `Java was not found (tried \`${java} -version\`). The Firestore emulator needs Java: install JDK 21 ` +
        `(e.g. \`apt-get install openjdk-21-jre-headless\`), or Java 11+ together with the Google Cloud CLI's ` +
        `emulator (\`gcloud components install cloud-firestore-emulator\`).`,
    );
  }
  const forced = env.STACK_FIRESTORE;
  if (forced !== undefined && forced !== "jar" && forced !== "firebase-tools") {
    throw new StackError(`STACK_FIRESTORE must be "jar" or "firebase-tools", not "${forced}".`);
  }
  if (forced === "firebase-tools" || (forced === undefined && javaVersion >= 21)) {
    return { kind: "firebase-tools", javaVersion };
  }
  const jar = findFirestoreJar(env);
  if (!jar) {
    const where = env.FIRESTORE_EMULATOR_JAR ? `FIRESTORE_EMULATOR_JAR=${env.FIRESTORE_EMULATOR_JAR} does not exist` : "no Google Cloud CLI Firestore emulator jar was found";
    throw new StackError(
      `Java ${javaVersion} is too old for firebase-tools' Firestore emulator (it needs 21), and ${where}. ` +
        `Install JDK 21, or run \`gcloud components install cloud-firestore-emulator\` ` +
        `(or point FIRESTORE_EMULATOR_JAR at cloud-firestore-emulator.jar).`,
    );
  }
  return { kind: "jar", java, jar, javaVersion };
}
