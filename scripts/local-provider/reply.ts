import { minimalInstance } from "./json-instance.js";
import type { Scenario } from "./scenario.js";

/**
 * What the local provider answers, decided from the request alone (deterministic): an echo
 * of the last user message, a tool call, a tool result acknowledged, or structured output.
 * docs/local-provider.md describes the rules.
 */

/** Prompt tokens each non-text part counts, whatever its size (documented). */
export const PART_TOKENS = { image: 85, file: 258, audio: 100 } as const;

/** The words a `deltas=N` answer cycles through, in order. */
export const VOCABULARY = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];

export interface ChatMessage {
  role?: unknown;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: unknown;
}

export interface ChatRequest {
  model?: unknown;
  messages?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
  tools?: unknown;
  tool_choice?: unknown;
  parallel_tool_calls?: unknown;
  response_format?: unknown;
}

export interface ToolCallReply {
  id: string;
  name: string;
  /** JSON text, sent in at least two pieces when streamed. */
  argumentPieces: string[];
}

export interface Reply {
  /** Text deltas (one per word for the echo, pieces of the JSON for structured output). */
  deltas: string[];
  toolCalls: ToolCallReply[];
  finishReason: "stop" | "length" | "tool_calls";
  promptTokens: number;
  imageParts: number;
  audioParts: number;
}

/** A request the provider refuses as OpenAI would: 400 `invalid_request_error` naming the field. */
export class InvalidRequest extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

function countTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

export function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part: unknown) => (part && typeof part === "object" && "text" in part && typeof part.text === "string" ? part.text : "")).join("");
  }
  return "";
}

interface Media {
  images: number;
  files: number;
  audio: number;
}

/** Counts the media parts of a message's content, refusing shapes OpenAI refuses. */
function mediaOf(content: unknown, path: string): Media {
  const media = { images: 0, files: 0, audio: 0 };
  if (!Array.isArray(content)) return media;
  content.forEach((raw: unknown, j) => {
    const part = (raw ?? {}) as { type?: unknown; image_url?: { url?: unknown }; file?: unknown; input_audio?: unknown };
    const at = `${path}.content[${j}]`;
    switch (part.type) {
      case "text":
      case "refusal":
        return;
      case "image_url": {
        const url = part.image_url?.url;
        if (typeof url !== "string" || !(url.startsWith("https://") || /^data:image\/[a-z+.-]+;base64,/.test(url))) {
          throw new InvalidRequest(`Invalid image URL at '${at}.image_url.url': expected an https URL or a base64 data URL.`, `${at}.image_url.url`);
        }
        media.images += 1;
        return;
      }
      case "file":
        media.files += 1;
        return;
      case "input_audio":
        media.audio += 1;
        return;
      default:
        throw new InvalidRequest(`Invalid value: '${String(part.type)}'. Supported values are: 'text', 'image_url', 'file' and 'input_audio'.`, `${at}.type`);
    }
  });
  return media;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `[2 images, 1 file, 1 audio]`: what the last user message carried besides text. */
function mediaNote(media: Media): string {
  const parts = [
    media.images ? plural(media.images, "image", "images") : "",
    media.files ? plural(media.files, "file", "files") : "",
    media.audio ? `${media.audio} audio` : "",
  ].filter((p) => p !== "");
  return parts.length > 0 ? `[${parts.join(", ")}]` : "";
}

interface Tool {
  name: string;
  parameters: unknown;
}

function toolsOf(body: ChatRequest): Tool[] {
  if (!Array.isArray(body.tools)) return [];
  return body.tools.flatMap((t: unknown) => {
    const fn = (t as { function?: { name?: unknown; parameters?: unknown } } | null)?.function;
    return typeof fn?.name === "string" ? [{ name: fn.name, parameters: fn.parameters ?? {} }] : [];
  });
}

/** Splits JSON text into two or more pieces, as providers stream arguments. */
function pieces(text: string, count = 3): string[] {
  if (text.length < 2) return [text, ""];
  const size = Math.max(1, Math.ceil(text.length / count));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length >= 2 ? out : [text.slice(0, 1), text.slice(1)];
}

/** Which tools to call, by the rules of docs/local-provider.md; none means a text answer. */
function toolsToCall(body: ChatRequest, tools: Tool[], messages: ChatMessage[], lastUserText: string): Tool[] {
  if (tools.length === 0) return [];
  const choice = body.tool_choice;
  if (choice === "none") return [];
  if (choice && typeof choice === "object") {
    const name = (choice as { function?: { name?: unknown } }).function?.name;
    const tool = tools.find((t) => t.name === name);
    if (!tool) throw new InvalidRequest(`Invalid value for 'tool_choice': no tool named '${String(name)}'.`, "tool_choice");
    return [tool];
  }
  if (choice === "required") return [tools[0]!];
  // "auto": after a tool result, answer in text; otherwise call every tool the user named.
  if (messages.at(-1)?.role === "tool") return [];
  const words = new Set(lastUserText.split(/[^A-Za-z0-9_-]+/).filter((w) => w !== ""));
  const named = tools.filter((t) => words.has(t.name));
  return body.parallel_tool_calls === false ? named.slice(0, 1) : named;
}

/** `Echo: tool <name> returned <content>` for the tool results at the end of the conversation. */
function toolResultsText(messages: ChatMessage[]): string | undefined {
  const results: ChatMessage[] = [];
  for (let i = messages.length - 1; i >= 0 && messages[i]!.role === "tool"; i--) results.unshift(messages[i]!);
  if (results.length === 0) return undefined;
  const names = new Map<string, string>();
  for (const m of messages) {
    if (m.role !== "assistant" || !Array.isArray(m.tool_calls)) continue;
    for (const call of m.tool_calls as { id?: unknown; function?: { name?: unknown } }[]) {
      if (typeof call.id === "string" && typeof call.function?.name === "string") names.set(call.id, call.function.name);
    }
  }
  return results.map((m) => `tool ${names.get(String(m.tool_call_id)) ?? "unknown"} returned ${messageText(m.content)}`).join("; ");
}

export function buildReply(body: ChatRequest, scenario: Scenario): Reply {
  const messages = Array.isArray(body.messages) ? (body.messages as ChatMessage[]) : [];
  let textForTokens = "";
  const total: Media = { images: 0, files: 0, audio: 0 };
  let lastUserMedia: Media = { images: 0, files: 0, audio: 0 };
  messages.forEach((m, i) => {
    textForTokens += messageText(m.content);
    if (Array.isArray(m.tool_calls)) textForTokens += JSON.stringify(m.tool_calls);
    const media = mediaOf(m.content, `messages[${i}]`);
    total.images += media.images;
    total.files += media.files;
    total.audio += media.audio;
    if (m.role === "user") lastUserMedia = media;
  });
  const promptTokens =
    countTokens(textForTokens) + total.images * PART_TOKENS.image + total.files * PART_TOKENS.file + total.audio * PART_TOKENS.audio;
  const base = { promptTokens, imageParts: total.images, audioParts: total.audio };
  const lastUser = [...messages].reverse().find((m) => m.role === "user");
  const said = messageText(lastUser?.content).trim();

  const calls = toolsToCall(body, toolsOf(body), messages, said);
  if (calls.length > 0) {
    return {
      ...base,
      deltas: [],
      finishReason: "tool_calls",
      toolCalls: calls.map((tool, index) => ({
        id: `call_${messages.length}_${index}`,
        name: tool.name,
        argumentPieces: pieces(JSON.stringify(minimalInstance(tool.parameters))),
      })),
    };
  }

  let deltas: string[];
  const format = body.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  const afterTools = toolResultsText(messages);
  if (scenario.report === "messages") {
    deltas = [`messages=${messages.length}`];
  } else if (format?.type === "json_schema") {
    deltas = pieces(JSON.stringify(minimalInstance(format.json_schema?.schema ?? {}, said)));
  } else if (format?.type === "json_object") {
    deltas = pieces(JSON.stringify({ echo: said }));
  } else {
    let words: string[];
    if (scenario.numbered) words = Array.from({ length: scenario.deltas ?? 8 }, (_, i) => `t${i}`);
    else if (scenario.deltas !== undefined) words = Array.from({ length: scenario.deltas }, (_, i) => VOCABULARY[i % VOCABULARY.length]!);
    else {
      const note = afterTools ? "" : mediaNote(lastUserMedia);
      const text = afterTools ?? (said === "" ? "(nothing)" : said);
      words = ["Echo:", ...text.split(/\s+/), ...(note ? note.split(" ") : [])];
    }
    // One word a delta, a space after each but the last.
    deltas = words.map((w, i) => (i < words.length - 1 ? `${w} ` : w));
  }
  if (scenario.fail === "invalid_json") {
    const text = deltas.join("");
    deltas = [text.slice(0, Math.floor(text.length / 2))];
  }
  const limit = typeof body.max_completion_tokens === "number" ? body.max_completion_tokens : body.max_tokens;
  if (typeof limit === "number" && limit >= 0 && deltas.length > limit) {
    const kept = deltas.slice(0, limit);
    if (kept.length > 0) kept[kept.length - 1] = kept[kept.length - 1]!.trimEnd();
    return { ...base, deltas: kept, toolCalls: [], finishReason: "length" };
  }
  return { ...base, deltas, toolCalls: [], finishReason: "stop" };
}

export function usageOf(reply: Reply, scenario: Scenario) {
  const output = reply.deltas.length + reply.toolCalls.reduce((sum, c) => sum + c.argumentPieces.length, 0);
  const completion = output + scenario.reasoningTokens;
  return {
    prompt_tokens: reply.promptTokens,
    completion_tokens: completion,
    total_tokens: reply.promptTokens + completion,
    prompt_tokens_details: {
      cached_tokens: Math.min(scenario.cachedTokens, reply.promptTokens),
      audio_tokens: reply.audioParts * PART_TOKENS.audio,
      image_tokens: reply.imageParts * PART_TOKENS.image,
    },
    completion_tokens_details: { reasoning_tokens: scenario.reasoningTokens },
  };
}
