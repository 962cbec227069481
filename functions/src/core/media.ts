import { mediaKind, type InputKind, type MediaPart } from "./messages.js";

/**
 * Images, files and audio in prompts: which types we take, how big, and where from.
 * Documented in docs/api.md ("Content parts"); every limit here is one a client can hit.
 */
export const MEDIA_LIMITS = {
  /** Media parts (images, files, audio) in one request, all messages together. */
  mediaParts: 16,
  /** Parts of every kind in one request. */
  parts: 64,
  /** Decoded bytes of one data URL, and of one URL we fetch ourselves. */
  bytes: 5 * 1024 * 1024,
  /** Characters of an https URL. */
  urlChars: 4_096,
  /** Decoded bytes the server fetches for one execution, all URLs together (each at most `bytes`). */
  fetchedBytes: 20 * 1024 * 1024,
} as const;

/** MIME types accepted per kind. Anything else is refused with `validation`. */
export const MIME_TYPES: Record<Exclude<InputKind, "text">, readonly string[]> = {
  image: ["image/png", "image/jpeg", "image/webp", "image/gif"],
  file: ["application/pdf", "text/plain", "text/markdown", "text/csv"],
  audio: ["audio/wav", "audio/mpeg"],
};

export interface DataUrl {
  mimeType: string;
  /** Decoded size. */
  bytes: number;
  /** The base64 payload, as sent. */
  base64: string;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Parses `data:<mime>;base64,<payload>`, or returns undefined when it is not one. */
export function parseDataUrl(url: string): DataUrl | undefined {
  if (!url.startsWith("data:")) return undefined;
  const comma = url.indexOf(",");
  if (comma < 0) return undefined;
  const header = url.slice(5, comma).toLowerCase();
  if (!header.endsWith(";base64")) return undefined;
  const mimeType = header.slice(0, -";base64".length).split(";")[0]!.trim();
  const base64 = url.slice(comma + 1);
  if (base64.length % 4 !== 0 || !BASE64.test(base64)) return undefined;
  const padding = base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0;
  return { mimeType, bytes: (base64.length / 4) * 3 - padding, base64 };
}

/** https URLs only, no credentials in them; whether we may fetch one is the allow-list's business. */
export function isHttpsUrl(url: string): boolean {
  if (url.length > MEDIA_LIMITS.urlChars) return false;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" && parsed.username === "" && parsed.password === "" && parsed.hostname !== "";
  } catch {
    return false;
  }
}

/** Aliases clients use for the same types. */
const MIME_ALIASES: Record<string, string> = { "image/jpg": "image/jpeg", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/mp3": "audio/mpeg" };

export function normalizeMimeType(mimeType: string): string {
  const base = mimeType.split(";")[0]!.trim().toLowerCase();
  return MIME_ALIASES[base] ?? base;
}

/** What is wrong with a media part, and in which of its fields ("" for the part itself). */
export interface MediaProblem {
  field: "url" | "mimeType" | "";
  message: string;
}

/** Checks one media part: an https or base64 data URL, an accepted MIME type for its kind, the size limit. */
export function mediaPartProblem(part: MediaPart): MediaProblem | undefined {
  const data = parseDataUrl(part.url);
  const kind = mediaKind(part);
  if (!data && !isHttpsUrl(part.url)) return { field: "url", message: "must be an https URL or a base64 data URL (data:<type>;base64,…)" };
  const declared = part.type === "file" ? normalizeMimeType(part.mimeType) : undefined;
  const mimeType = data ? normalizeMimeType(data.mimeType) : declared;
  if (mimeType !== undefined && !MIME_TYPES[kind].includes(mimeType)) {
    return { field: "", message: `type "${mimeType}" is not accepted for ${kind === "audio" ? "audio" : `${kind}s`} (one of ${MIME_TYPES[kind].join(", ")})` };
  }
  if (data && declared !== undefined && normalizeMimeType(data.mimeType) !== declared) {
    return { field: "mimeType", message: `"${declared}" does not match the data URL's "${data.mimeType}"` };
  }
  if (data && data.bytes > MEDIA_LIMITS.bytes) return { field: "url", message: `at most ${MEDIA_LIMITS.bytes} bytes per data URL, got ${data.bytes}` };
  return undefined;
}

/** Where a URL may be fetched from by the server itself (see adapters/media-fetcher.ts). */
export interface UrlPolicy {
  /** Host names; `*.example.com` matches subdomains of example.com (not example.com itself). */
  allowedHosts: readonly string[];
}

const IP_LITERAL = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/i;

/**
 * Whether the server may fetch this URL: https only, no IP literals (so no 127.0.0.1,
 * metadata servers or private ranges by address), and a host from the allow-list.
 * Returns the reason when it may not.
 */
export function urlRefusal(url: string, policy: UrlPolicy): string | undefined {
  if (!isHttpsUrl(url)) {
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    return parsed?.protocol === "https:" && (parsed.username !== "" || parsed.password !== "") ? "URLs with credentials (user:password@) are not fetched" : "only https URLs are fetched";
  }
  const host = new URL(url).hostname.toLowerCase();
  if (IP_LITERAL.test(host) || host === "localhost" || host.endsWith(".localhost")) return `the host ${host} is not allowed`;
  const allowed = policy.allowedHosts.some((pattern) => {
    const p = pattern.trim().toLowerCase();
    return p.startsWith("*.") ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p;
  });
  return allowed ? undefined : `the host ${host} is not in the allowed list (MEDIA_URL_HOSTS)`;
}

/** How a media part is kept in records and conversations: by reference, never the bytes of a data URL. */
export interface MediaReference {
  type: "image" | "file";
  /** The https URL, when it came as one. */
  url?: string;
  mimeType?: string;
  /** Decoded size, when known (data URLs). */
  bytes?: number;
  name?: string;
  detail?: "auto" | "low" | "high";
}

export function mediaReference(part: MediaPart): MediaReference {
  const data = parseDataUrl(part.url);
  const mimeType = part.type === "file" ? normalizeMimeType(part.mimeType) : data ? normalizeMimeType(data.mimeType) : undefined;
  return {
    type: part.type,
    ...(data ? { bytes: data.bytes } : { url: part.url }),
    ...(mimeType ? { mimeType } : {}),
    ...(part.type === "file" && part.name !== undefined ? { name: part.name } : {}),
    ...(part.type === "image" && part.detail !== undefined ? { detail: part.detail } : {}),
  };
}
