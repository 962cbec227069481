import { describe, expect, it } from "vitest";
import { conversationTitle, storedTurn } from "../../src/core/conversation.js";
import { capInput, capOutput, capToolCalls, RECORD_LIMITS } from "../../src/core/execution.js";
import type { Message } from "../../src/core/messages.js";
import { truncate } from "../../src/core/truncate.js";

const EMOJI = "😀"; // one code point, two UTF-16 code units
const wellFormed = (text: string) => text.isWellFormed() && !text.includes("\ufffd");

describe("truncate", () => {
  it("cuts at the limit, or one unit before it when the cut would split a surrogate pair", () => {
    expect(truncate("abcdef", 3)).toBe("abc");
    expect(truncate("abcdef", 10)).toBe("abcdef");
    expect(truncate(`ab${EMOJI}cd`, 3)).toBe("ab");
    expect(truncate(`ab${EMOJI}cd`, 4)).toBe(`ab${EMOJI}`);
    expect(truncate(`${EMOJI}`, 1)).toBe("");
    expect(truncate("abc", 0)).toBe("");
    expect(truncate("abc", -5)).toBe("");
  });
});

describe("records keep well-formed text when they cap it", () => {
  it("capInput: 49,990 a's, \"ok\", then a message whose cut falls inside an emoji", () => {
    const messages: Message[] = [
      { role: "user", content: "a".repeat(49_990) },
      { role: "assistant", content: "ok" },
      { role: "user", content: `abcdefg${EMOJI}xyz` },
    ];
    const { input, inputTruncated } = capInput(messages);
    expect(inputTruncated).toBe(true);
    expect(input[2]).toEqual({ role: "user", content: "abcdefg" });
    for (const m of input) expect(wellFormed(m.content as string)).toBe(true);
  });

  it("capInput: a long text cut inside a pair keeps no half of it, and nothing after the cut", () => {
    const { input } = capInput([
      { role: "user", content: [{ type: "text", text: `${"a".repeat(RECORD_LIMITS.inputChars - 1)}${EMOJI}` }, { type: "text", text: "more" }] },
    ]);
    const parts = input[0]!.content as { text: string }[];
    expect(parts[0]!.text).toBe("a".repeat(RECORD_LIMITS.inputChars - 1));
    expect(parts[1]!.text).toBe("");
  });

  it("capToolCalls: arguments cut inside a pair keep no half of it, and the calls after are emptied", () => {
    const calls = [
      { id: "c1", name: "f", arguments: `{"s":"${EMOJI}${EMOJI}"}` },
      { id: "c2", name: "g", arguments: "{}" },
    ];
    // 6 units are left: `{"s":"` is 6, so the cut falls before the first emoji; 7 would split it.
    const { toolCalls, truncated } = capToolCalls(calls, RECORD_LIMITS.outputChars - 7);
    expect(truncated).toBe(true);
    expect(toolCalls.map((c) => c.arguments)).toEqual(['{"s":"', ""]);
    for (const c of toolCalls) expect(wellFormed(c.arguments)).toBe(true);
  });

  it("capOutput: an output cut inside a pair", () => {
    const output = `${"b".repeat(RECORD_LIMITS.outputChars - 1)}${EMOJI}tail`;
    const capped = capOutput(output);
    expect(capped).toEqual({ output: "b".repeat(RECORD_LIMITS.outputChars - 1), outputTruncated: true });
  });

  it("conversationTitle: a title cut inside a pair", () => {
    const title = conversationTitle([{ role: "user", content: `${"c".repeat(78)}${EMOJI} and more` }]);
    expect(title).toBe(`${"c".repeat(78)}…`);
    expect(wellFormed(title)).toBe(true);
  });

  it("storedTurn: a stored message cut inside a pair", () => {
    const [stored] = storedTurn([{ role: "user", content: `${"d".repeat(RECORD_LIMITS.inputChars - 1)}${EMOJI}` }], { text: "fine" });
    expect(wellFormed(stored!.content as string)).toBe(true);
  });
});
