/**
 * The one message type the pipeline, the stores and the provider client share. The
 * callable's contract shapes (API.md v1.1) are used as they are; `/v1/chat/completions`
 * converts OpenAI's shapes to these at its edge (openai-request.ts), and the provider
 * client converts them back to OpenAI's wire shapes (adapters/openai-model-client.ts).
 */

export type TextPart = { type: "text"; text: string };
export type ImagePart = { type: "image"; url: string; detail?: "auto" | "low" | "high" };
/** PDFs, plain text, audio…: anything that is not an image. `url` is https or a data URL. */
export type FilePart = { type: "file"; url: string; mimeType: string; name?: string };
export type Part = TextPart | ImagePart | FilePart;
export type MediaPart = ImagePart | FilePart;

/** A function call the model asked for; `arguments` is JSON text, as providers send it. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export type SystemMessage = { role: "system"; content: string | Part[] };
export type UserMessage = { role: "user"; content: string | Part[] };
export type AssistantMessage = { role: "assistant"; content: string | Part[] | null; toolCalls?: ToolCall[] };
export type ToolMessage = { role: "tool"; toolCallId: string; content: string };
export type Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage;

/** A function the model may call. `parameters` is a JSON Schema object. */
export interface ToolSpec {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
  strict?: boolean;
}

export type ToolChoice = "auto" | "none" | "required" | { name: string };

export type ResponseFormat =
  | { type: "json_object" }
  | { type: "json_schema"; name: string; schema: Record<string, unknown>; strict?: boolean; description?: string };

/** What a model must be able to take for a request: the catalog's capabilities use the same words. */
export type InputKind = "text" | "image" | "file" | "audio";

export function mediaKind(part: MediaPart): Exclude<InputKind, "text"> {
  if (part.type === "image") return "image";
  return part.mimeType.startsWith("audio/") ? "audio" : "file";
}

/** The parts of a content value, a plain string being one text part. */
export function partsOf(content: string | Part[] | null): Part[] {
  if (content === null) return [];
  return typeof content === "string" ? [{ type: "text", text: content }] : content;
}

/** The text of a message, media left out. */
export function textOf(message: Message): string {
  const { content } = message;
  if (content === null) return "";
  if (typeof content === "string") return content;
  let text = "";
  for (const part of content) if (part.type === "text") text += part.text;
  return text;
}

/** Every media part of a list of messages, in order. */
export function mediaParts(messages: readonly Message[]): MediaPart[] {
  const out: MediaPart[] = [];
  for (const message of messages) {
    if (typeof message.content === "string" || message.content === null) continue;
    for (const part of message.content) if (part.type !== "text") out.push(part);
  }
  return out;
}

/** Replaces the URL of media parts (e.g. an https URL by the data URL fetched for it). */
export function mapMediaUrls(messages: readonly Message[], replace: (part: MediaPart) => string): Message[] {
  return messages.map((message) => {
    if (typeof message.content === "string" || message.content === null || message.role === "tool") return message;
    const content = message.content.map((part) => (part.type === "text" ? part : { ...part, url: replace(part) }));
    return { ...message, content } as Message;
  });
}
