import type { Ajv2020, ValidateFunction } from "ajv/dist/2020.js";
import { ExecutionError } from "./errors.js";
import type { ResponseFormat } from "./messages.js";

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
const validators = new Map<string, ValidateFunction>();

/** `$schema` names a meta-schema ajv may not have loaded; the keywords are what matter. */
function withoutMetaSchema(schema: Record<string, unknown>): Record<string, unknown> {
  if (!("$schema" in schema) && !("$id" in schema)) return schema;
  const { $schema: _meta, $id: _id, ...rest } = schema;
  return rest;
}

async function validatorFor(schema: Record<string, unknown>): Promise<ValidateFunction> {
  const key = JSON.stringify(schema);
  const cached = validators.get(key);
  if (cached) return cached;
  const validate = (await loadAjv()).compile(withoutMetaSchema(schema));
  if (validators.size >= MAX_CACHED) validators.delete(validators.keys().next().value!);
  validators.set(key, validate);
  return validate;
}

/** Why a schema cannot be used (ajv's own words, trimmed), or undefined when it can. */
export async function schemaProblem(schema: Record<string, unknown>): Promise<string | undefined> {
  try {
    await validatorFor(schema);
    return undefined;
  } catch (error) {
    return (error instanceof Error ? error.message : String(error)).slice(0, 200);
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
  const validate = await validatorFor(format.schema);
  if (!validate(value)) {
    const first = validate.errors?.[0];
    const where = first ? `${first.instancePath || "/"} ${first.message ?? "is invalid"}` : "does not match";
    throw new ExecutionError("invalid_output", `The model's answer does not match the schema "${format.name}": ${where}.`);
  }
  return value;
}
