import { describe, expect, it } from "vitest";
import { placeholders, renderTemplate, type PromptTemplate } from "../../src/core/templates.js";

const template: PromptTemplate = {
  name: "translate",
  messages: [
    { role: "system", content: "Translate into {{language}}. Formal: {{ formal }}." },
    { role: "user", content: "{{text}}" },
  ],
  variables: {
    language: { type: "string", default: "French" },
    formal: { type: "boolean", default: false },
    text: { type: "string", required: true },
  },
};

describe("renderTemplate", () => {
  it("substitutes values and defaults, whitespace inside braces allowed", () => {
    expect(renderTemplate(template, { text: "Good morning", formal: true })).toEqual([
      { role: "system", content: "Translate into French. Formal: true." },
      { role: "user", content: "Good morning" },
    ]);
  });

  it("never substitutes inside a substituted value, and evaluates nothing", () => {
    const [, user] = renderTemplate(template, { text: "{{language}} ${process.exit()} {{constructor}}" });
    expect(user!.content).toBe("{{language}} ${process.exit()} {{constructor}}");
  });

  it("requires required variables, naming them", () => {
    expect(() => renderTemplate(template, {})).toThrow(/variables\.text: required/);
  });

  it("checks types against the declaration", () => {
    expect(() => renderTemplate(template, { text: "x", formal: "yes" })).toThrow(/variables\.formal: expected a boolean, got a string/);
    expect(() => renderTemplate(template, { text: 42 })).toThrow(/variables\.text: expected a string, got a number/);
  });

  it("rejects variables the prompt does not declare", () => {
    expect(() => renderTemplate(template, { text: "x", tone: "dry" })).toThrow(/variables\.tone: .*declares no such variable/);
  });

  it("looks declarations up as own properties only: built-in names are not declared", () => {
    for (const name of ["constructor", "toString", "hasOwnProperty", "valueOf"]) {
      expect(() => renderTemplate(template, { text: "x", [name]: "2" })).toThrow(new RegExp(`variables\\.${name}: .*declares no such variable`));
    }
  });

  it("requires a value for a placeholder even when undeclared", () => {
    const loose: PromptTemplate = { name: "loose", messages: [{ role: "user", content: "Hi {{name}}, {{name}}!" }] };
    expect(renderTemplate(loose, { name: "Ada" })[0]!.content).toBe("Hi Ada, Ada!");
    expect(() => renderTemplate(loose, {})).toThrow(/variables\.name: .*uses \{\{name\}\}/);
  });

  it("rejects a declared, optional variable without default that a placeholder needs", () => {
    const t: PromptTemplate = { name: "t", messages: [{ role: "user", content: "{{x}}" }], variables: { x: { type: "number" } } };
    expect(() => renderTemplate(t, {})).toThrow(/variables\.x/);
    expect(renderTemplate(t, { x: 3.5 })[0]!.content).toBe("3.5");
  });

  it("lists placeholders once, in order", () => {
    expect(placeholders(template)).toEqual(["language", "formal", "text"]);
  });
});
