import { ExecutionError } from "./errors.js";

export type VariableValue = string | number | boolean;
export type VariableType = "string" | "number" | "boolean";

export interface VariableSpec {
  type: VariableType;
  required?: boolean;
  default?: VariableValue;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** A saved prompt, `users/{uid}/prompts/{promptId}` (API.md). */
export interface PromptTemplate {
  name: string;
  messages: ChatMessage[];
  variables?: Record<string, VariableSpec>;
  model?: string;
  params?: { temperature?: number; maxTokens?: number; topP?: number; stop?: string[] };
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

function invalid(message: string): ExecutionError {
  return new ExecutionError("validation", message);
}

/** Names used as `{{name}}` in the template's messages, in order of first use. */
export function placeholders(template: Pick<PromptTemplate, "messages">): string[] {
  const names = new Set<string>();
  for (const message of template.messages) for (const match of message.content.matchAll(PLACEHOLDER)) names.add(match[1]!);
  return [...names];
}

/**
 * Renders a saved prompt. Substitution is a single pass over the template text, so a value
 * containing `{{other}}` stays literal text; nothing is evaluated. Every placeholder needs a
 * value (given, or the declared default); given values must be declared (when the template
 * declares any) and of the declared type.
 */
export function renderTemplate(template: PromptTemplate, variables: Record<string, VariableValue> = {}): ChatMessage[] {
  const declared = template.variables;
  const values = new Map<string, VariableValue>();
  if (declared) {
    // Own properties only: `constructor` or `toString` must not count as declared or given.
    for (const name of Object.keys(variables)) {
      if (!Object.hasOwn(declared, name)) throw invalid(`variables.${name}: the prompt "${template.name}" declares no such variable.`);
    }
    for (const [name, spec] of Object.entries(declared)) {
      const value = (Object.hasOwn(variables, name) ? variables[name] : undefined) ?? spec.default;
      if (value === undefined) {
        if (spec.required) throw invalid(`variables.${name}: required by the prompt "${template.name}".`);
        continue;
      }
      if (typeof value !== spec.type) throw invalid(`variables.${name}: expected a ${spec.type}, got a ${typeof value}.`);
      values.set(name, value);
    }
  } else {
    for (const [name, value] of Object.entries(variables)) values.set(name, value);
  }
  for (const name of placeholders(template)) {
    if (!values.has(name)) throw invalid(`variables.${name}: the prompt "${template.name}" uses {{${name}}} but no value was given.`);
  }
  return template.messages.map((message) => ({
    role: message.role,
    content: message.content.replace(PLACEHOLDER, (_, name: string) => String(values.get(name))),
  }));
}
