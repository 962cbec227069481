import type { StoredMessage } from "./api";

/** Dollars with enough digits for the local models' tiny costs. */
export function formatUsd(usd: number): string {
  return `$${usd.toFixed(usd !== 0 && Math.abs(usd) < 0.01 ? 6 : 2)}`;
}

/** The text of a stored message, media by reference (`[image image/png, 2 KB]`). */
export function contentText(content: StoredMessage["content"] | undefined): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content
    .map((part) => (part.type === "text" ? (part.text ?? "") : `[${part.type}${part.mimeType ? ` ${part.mimeType}` : ""}${part.bytes ? `, ${Math.ceil(part.bytes / 1024)} KB` : ""}]`))
    .join(" ");
}
