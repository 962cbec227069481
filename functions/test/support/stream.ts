import { expect } from "vitest";
import { VOCABULARY } from "../../../scripts/local-provider/reply.js";

/** The local provider's words, in order. */
export const WORDS = VOCABULARY;

/**
 * Reads a response body until `until(text)` holds, and returns the text read. Throws when the
 * stream ends first, instead of reading an ended stream for ever.
 */
export async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, until: (text: string) => boolean): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  while (!until(text)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the stream ended before the expected text; it sent:\n${text.slice(-2_000)}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

/** The complete `data:` events of server-sent events read so far, parsed (a partial last line is left out). */
export function sseEvents(text: string): unknown[] {
  const lines = text.split("\n");
  lines.pop(); // what follows the last newline: empty, or a line not fully read yet
  return lines.filter((line) => line.startsWith("data: ") && line !== "data: [DONE]").map((line) => JSON.parse(line.slice("data: ".length)) as unknown);
}

/** The text of the delta chunks of a streamed callable (`{ message: { type: "delta", text } }` events). */
export function callableDeltaText(text: string): string {
  return sseEvents(text)
    .map((event) => (event as { message?: { type?: string; text?: string } }).message)
    .filter((message) => message?.type === "delta")
    .map((message) => message!.text ?? "")
    .join("");
}

/** The text of the chunks of a streamed /v1 chat completion. */
export function chatDeltaText(text: string): string {
  return sseEvents(text)
    .map((event) => (event as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content ?? "")
    .join("");
}

/**
 * The record of an execution stopped partway kept the output produced so far, and only that: a
 * prefix of the provider's words, far fewer than the `deltas` it would have sent, and not empty.
 * `received`: what the client had been sent, which the record's output must start with (then at
 * least two words); without it (a whole-answer request), at least one word.
 */
export function expectPartwayOutput(record: { output?: unknown; usage?: { outputTokens?: number } } | undefined, deltas: number, received?: string): void {
  expect(typeof record?.output).toBe("string");
  const output = record!.output as string;
  const words = output.split(" ").filter((w) => w !== "");
  words.forEach((word, i) => expect(word).toBe(WORDS[i % WORDS.length]));
  expect(words.length).toBeLessThan(deltas / 2);
  if (received === undefined) {
    expect(words.length).toBeGreaterThanOrEqual(1);
  } else {
    const had = received.split(" ").filter((w) => w !== "");
    expect(had.length).toBeGreaterThanOrEqual(2);
    expect(output.startsWith(received.trimEnd())).toBe(true);
    expect(words.length).toBeGreaterThanOrEqual(had.length);
  }
  expect(record!.usage?.outputTokens).toBeGreaterThan(0);
}
