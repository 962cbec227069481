import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { Ajv2020, ValidateFunction } from "ajv/dist/2020.js";
import { ExecutionError } from "./errors.js";
import type { ResponseFormat } from "./messages.js";
import { truncate } from "./truncate.js";

/**
 * JSON Schema work, with ajv (draft 2020-12, which also reads draft-07 schemas as clients
 * send them), loaded on first use: requests without tools or a response format never pay
 * for it. Compiled validators are kept per schema, since apps send the same few schemas.
 */

type AjvInstance = Ajv2020;
let ajv: Promise<AjvInstance> | undefined;

async function loadAjv(): Promise<AjvInstance> {
  ajv ??= import("ajv/dist/2020.js").then((module) => {
    // A CommonJS module: its class is `default` (or `default.default`, depending on the loader).
    const exported = module.default as unknown as { default?: unknown };
    const Ajv2020 = (typeof exported === "function" ? exported : exported.default) as new (options: object) => AjvInstance;
    // Formats are not validated (no ajv-formats): providers treat them as hints too.
    return new Ajv2020({ strict: false, allErrors: false, validateFormats: false, logger: false });
  });
  return ajv;
}

const MAX_CACHED = 200;
/** Per schema (by its JSON): the compiled validator, whether it has patterns, and its JSON for a worker. */
interface Compiled {
  validate: ValidateFunction;
  hasPatterns: boolean;
  json: string;
}
const validators = new Map<string, Compiled>();

/** `$schema` names a meta-schema ajv may not have loaded; the keywords are what matter. */
function withoutMetaSchema(schema: Record<string, unknown>): Record<string, unknown> {
  if (!("$schema" in schema) && !("$id" in schema)) return schema;
  const { $schema: _meta, $id: _id, ...rest } = schema;
  return rest;
}

async function validatorFor(schema: Record<string, unknown>): Promise<Compiled> {
  const key = JSON.stringify(schema);
  const cached = validators.get(key);
  if (cached) return cached;
  const usable = withoutMetaSchema(schema);
  const compiled = { validate: (await loadAjv()).compile(usable), hasPatterns: usesPatterns(schema), json: JSON.stringify(usable) };
  if (validators.size >= MAX_CACHED) validators.delete(validators.keys().next().value!);
  validators.set(key, compiled);
  return compiled;
}

/** Why a schema cannot be used (ajv's own words, trimmed), or undefined when it can. */
export async function schemaProblem(schema: Record<string, unknown>): Promise<string | undefined> {
  try {
    await validatorFor(schema);
    return undefined;
  } catch (error) {
    return truncate(error instanceof Error ? error.message : String(error), 200);
  }
}

/**
 * Parses a model's final output under a response format, and validates it against the
 * schema when there is one. Throws `invalid_output` (retryable: a model often gets it right
 * the next time) with the first problem, never the output itself.
 */
export async function parseJsonOutput(output: string, format: ResponseFormat): Promise<unknown> {
  let value: unknown;
  try {
    value = JSON.parse(output);
  } catch {
    throw new ExecutionError("invalid_output", "The model's answer was not valid JSON.");
  }
  if (format.type === "json_object") {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new ExecutionError("invalid_output", "The model's answer was JSON but not an object.");
    }
    return value;
  }
  // Compiled on the main thread (no pattern runs while compiling); checked in a worker when patterns would run.
  const compiled = await validatorFor(format.schema);
  const problem = compiled.hasPatterns ? await validateInWorker(compiled.json, value) : firstProblem(compiled.validate, value);
  if (problem !== undefined) throw new ExecutionError("invalid_output", `The model's answer does not match the schema "${format.name}": ${problem}.`);
  return value;
}

function firstProblem(validate: ValidateFunction, value: unknown): string | undefined {
  if (validate(value)) return undefined;
  const first = validate.errors?.[0];
  return first ? `${first.instancePath || "/"} ${first.message ?? "is invalid"}` : "does not match";
}

/** Whether a schema has a regular expression (`pattern`, `patternProperties`) anywhere. */
export function usesPatterns(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(usesPatterns);
  if (schema === null || typeof schema !== "object") return false;
  return Object.entries(schema).some(([key, value]) => ((key === "pattern" && typeof value === "string") || key === "patternProperties" ? true : usesPatterns(value)));
}

/**
 * How long checking one answer against a schema with regular expressions may take. The
 * schema is the client's, and a backtracking `pattern` such as `^(a+)+$` can take minutes on
 * a short string while holding the instance's only thread (every other request stalls, and no
 * timer fires). So such schemas are checked in a worker thread that is terminated when it
 * runs over; what runs over is refused as the client's to fix.
 */
export const PATTERN_CHECK_MS = 1_000;
/** Compiling a schema runs no pattern, but is not free on a loaded instance: timed apart, generously. */
const COMPILE_MS = 10_000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const loaded = require(workerData.ajvPath);
const Ajv2020 = loaded.default ?? loaded;
const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: false, logger: false });
const validators = new Map();
parentPort.postMessage("ready");
parentPort.on("message", ({ schema, value }) => {
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile(JSON.parse(schema));
    if (validators.size >= 100) validators.delete(validators.keys().next().value);
    validators.set(schema, validate);
  }
  parentPort.postMessage("compiled");
  const ok = validate(value);
  const first = ok ? undefined : validate.errors && validate.errors[0];
  parentPort.postMessage({ problem: ok ? undefined : first ? (first.instancePath || "/") + " " + (first.message || "is invalid") : "does not match" });
});
`;

/**
 * Worker threads, each running one check at a time (its time limit starts when it gets the
 * check, not while waiting behind another). Idle ones are kept for the next checks; one that
 * runs over is terminated, and a new one started when needed.
 */
const MAX_WORKERS = 4;
const idle: Worker[] = [];
let busy = 0;
const waiting: { resolve: (worker: Worker) => void; reject: (error: unknown) => void }[] = [];

/** A worker, once it has loaded ajv (its start-up is not counted against a check's time). */
function newWorker(): Promise<Worker> {
  const ajvPath = createRequire(import.meta.url).resolve("ajv/dist/2020.js");
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ajvPath } });
  worker.unref();
  return new Promise((resolve, reject) => {
    worker.once("message", () => resolve(worker));
    worker.once("error", reject);
  });
}

async function takeWorker(): Promise<Worker> {
  const ready = idle.pop();
  if (ready) return ready;
  if (busy <= MAX_WORKERS) return newWorker();
  return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
}

/** Hands this check's slot (and its worker, if still usable) to the next waiting check, or frees it. */
function releaseWorker(worker: Worker | undefined): void {
  const next = waiting.shift();
  if (next) {
    if (worker) next.resolve(worker);
    else newWorker().then(next.resolve, next.reject); // a waiter that gets no worker frees its slot in turn
    return;
  }
  busy--;
  if (worker) idle.push(worker);
}

async function validateInWorker(schemaJson: string, value: unknown): Promise<string | undefined> {
  busy++;
  let worker: Worker;
  try {
    worker = await takeWorker();
  } catch (error) {
    releaseWorker(undefined); // a worker that failed to start must not keep its slot
    throw error;
  }
  const outcome = await new Promise<{ problem?: string } | "failed">((resolve) => {
    const finish = (result: { problem?: string } | "failed") => {
      clearTimeout(timer);
      worker.off("message", onMessage);
      worker.off("error", onError);
      resolve(result);
    };
    const onMessage = (message: "compiled" | { problem?: string }) => {
      if (message === "compiled") {
        // From here on only the patterns run: this is the time limit that matters.
        clearTimeout(timer);
        timer = setTimeout(() => finish("failed"), PATTERN_CHECK_MS);
        return;
      }
      finish(message.problem === undefined ? {} : { problem: message.problem });
    };
    const onError = () => finish("failed");
    let timer = setTimeout(() => finish("failed"), COMPILE_MS);
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.postMessage({ schema: schemaJson, value });
  });
  if (outcome === "failed") {
    // The only way to stop a regular expression that backtracks.
    void worker.terminate();
    releaseWorker(undefined);
    throw new ExecutionError(
      "validation",
      `responseFormat.schema: checking the answer against its patterns took over ${PATTERN_CHECK_MS} ms (a pattern that backtracks, such as "(a+)+"); simplify the pattern.`,
    );
  }
  releaseWorker(worker);
  return outcome.problem;
}
