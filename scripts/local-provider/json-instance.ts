/**
 * The smallest value that is valid against a JSON Schema, as the local provider answers
 * tool calls and structured output with: deterministic, and valid for the schemas clients
 * really send (zod's toJSONSchema, OpenAI strict schemas, the Vercel AI SDK's and
 * LangChain's). Not handled: `pattern` (a string of the minimum length is given),
 * `not`, `if/then/else`, `dependentSchemas`, `patternProperties`, `uniqueItems` of
 * identical minimal items, remote `$ref`s.
 */
type Schema = Record<string, unknown> | boolean;

const FORMATS: Record<string, string> = {
  "date-time": "1970-01-01T00:00:00Z",
  date: "1970-01-01",
  time: "00:00:00Z",
  email: "a@example.com",
  uri: "https://example.com",
  url: "https://example.com",
  uuid: "00000000-0000-4000-8000-000000000000",
  hostname: "example.com",
  ipv4: "192.0.2.1",
  ipv6: "2001:db8::1",
};

/** A deterministic string value, optionally seeded (e.g. with the user's words), of the right length and format. */
function stringValue(schema: Record<string, unknown>, seed: string): string {
  const format = typeof schema.format === "string" ? FORMATS[schema.format] : undefined;
  if (format) return format;
  const min = typeof schema.minLength === "number" ? schema.minLength : 0;
  const max = typeof schema.maxLength === "number" ? schema.maxLength : Number.POSITIVE_INFINITY;
  let value = seed.slice(0, max);
  while (value.length < min) value += "a";
  return value;
}

function numberValue(schema: Record<string, unknown>, integer: boolean): number {
  const step = typeof schema.multipleOf === "number" && schema.multipleOf > 0 ? schema.multipleOf : integer ? 1 : 0;
  let value = 0;
  if (typeof schema.minimum === "number") value = schema.minimum;
  if (typeof schema.exclusiveMinimum === "number") value = schema.exclusiveMinimum + (step || (integer ? 1 : 0.5));
  if (typeof schema.maximum === "number" && value > schema.maximum) value = schema.maximum;
  if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) value = schema.exclusiveMaximum - (step || (integer ? 1 : 0.5));
  if (step) value = Math.ceil(value / step) * step;
  return integer ? Math.ceil(value) : value;
}

function resolveRef(ref: string, root: Record<string, unknown>): Schema | undefined {
  if (!ref.startsWith("#")) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(1).split("/").filter((p) => p !== "")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    node = node && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined;
  }
  return node as Schema | undefined;
}

function firstType(type: unknown): string | undefined {
  if (typeof type === "string") return type;
  if (Array.isArray(type)) return (type.find((t) => t !== "null") ?? type[0]) as string | undefined;
  return undefined;
}

function instance(schema: Schema | undefined, root: Record<string, unknown>, seed: string, depth: number, seen: Set<string>): unknown {
  if (schema === undefined || schema === true || depth > 32) return {};
  if (schema === false) return null;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if (typeof schema.$ref === "string") {
    if (seen.has(schema.$ref)) return null; // a cycle: the shortest way out
    return instance(resolveRef(schema.$ref, root), root, seed, depth + 1, new Set([...seen, schema.$ref]));
  }
  if (Array.isArray(schema.allOf)) {
    const merged: Record<string, unknown> = { ...schema, allOf: undefined };
    for (const part of schema.allOf as Record<string, unknown>[]) {
      for (const [k, v] of Object.entries(part)) {
        if (k === "properties") merged.properties = { ...(merged.properties as object), ...(v as object) };
        else if (k === "required") merged.required = [...((merged.required as string[]) ?? []), ...(v as string[])];
        else merged[k] = v;
      }
    }
    delete merged.allOf;
    return instance(merged, root, seed, depth + 1, seen);
  }
  const branches = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (Array.isArray(branches) && branches.length > 0) {
    const nonNull = branches.find((b) => typeof b !== "object" || b.type !== "null") ?? branches[0];
    return instance(nonNull, root, seed, depth + 1, seen);
  }
  const type = firstType(schema.type) ?? (schema.properties ? "object" : schema.items ? "array" : undefined);
  switch (type) {
    case "string":
      return stringValue(schema, seed);
    case "number":
      return numberValue(schema, false);
    case "integer":
      return numberValue(schema, true);
    case "boolean":
      return false;
    case "null":
      return null;
    case "array": {
      const min = typeof schema.minItems === "number" ? schema.minItems : 0;
      const prefix = Array.isArray(schema.prefixItems) ? (schema.prefixItems as Schema[]) : [];
      const items: unknown[] = [];
      for (let i = 0; i < Math.max(min, prefix.length); i++) items.push(instance(prefix[i] ?? (schema.items as Schema), root, seed, depth + 1, seen));
      return items;
    }
    case "object": {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
      const out: Record<string, unknown> = {};
      for (const name of required) out[name] = instance(properties[name] ?? true, root, seed, depth + 1, seen);
      const min = typeof schema.minProperties === "number" ? schema.minProperties : 0;
      for (const name of Object.keys(properties)) {
        if (Object.keys(out).length >= min) break;
        out[name] ??= instance(properties[name], root, seed, depth + 1, seen);
      }
      return out;
    }
    default:
      return {};
  }
}

/**
 * A minimal valid instance of `schema`; strings get `seed` (trimmed to fit) so that a client
 * can see its own words come back through the structured answer.
 */
export function minimalInstance(schema: unknown, seed = ""): unknown {
  const root = schema && typeof schema === "object" ? (schema as Record<string, unknown>) : {};
  return instance(schema as Schema | undefined, root, seed, 0, new Set());
}
