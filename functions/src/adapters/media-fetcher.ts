import { ExecutionError } from "../core/errors.js";
import { MEDIA_LIMITS, MIME_TYPES, normalizeMimeType, urlRefusal, type UrlPolicy } from "../core/media.js";
import type { InputKind } from "../core/messages.js";
import type { MediaFetcher } from "../core/ports.js";

export interface MediaFetcherOptions {
  /** Read per fetch, so that the param is evaluated at runtime. */
  policy: () => UrlPolicy;
  timeoutMs?: number;
  maxRedirects?: number;
  maxBytes?: number;
  /** The transport; tests pass their own, as openai-node's tests do. */
  fetch?: typeof fetch;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function refuse(message: string): never {
  throw new ExecutionError("validation", message);
}

/**
 * Fetches media from an https URL for providers that need the bytes, without becoming an
 * open proxy: https only, hosts from the allow-list only (checked again on every redirect,
 * which we follow ourselves), a few redirects at most, a size and a time limit, and a
 * Content-Type of the expected kind. Every refusal is a `validation` error naming why.
 */
export function createMediaFetcher(options: MediaFetcherOptions): MediaFetcher {
  const transport = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxRedirects = options.maxRedirects ?? 3;
  const maxBytes = options.maxBytes ?? MEDIA_LIMITS.bytes;

  return {
    async fetchAsDataUrl(url: string, kind: Exclude<InputKind, "text">, signal: AbortSignal): Promise<string> {
      const timeout = AbortSignal.timeout(timeoutMs);
      const combined = AbortSignal.any([signal, timeout]);
      let current = url;
      for (let hop = 0; hop <= maxRedirects; hop++) {
        const refusal = urlRefusal(current, options.policy());
        if (refusal) refuse(hop === 0 ? refusal : `redirected to a URL that is not allowed (${refusal})`);
        let response: Response;
        try {
          response = await transport(current, { redirect: "manual", signal: combined, headers: { accept: MIME_TYPES[kind].join(", ") } });
        } catch {
          refuse(timeout.aborted ? `the URL did not answer within ${timeoutMs} ms` : "the URL could not be fetched");
        }
        if (REDIRECTS.has(response.status)) {
          const location = response.headers.get("location");
          await response.body?.cancel();
          if (!location) refuse(`the URL redirected (HTTP ${response.status}) without a Location`);
          current = new URL(location, current).href;
          continue;
        }
        if (!response.ok) {
          await response.body?.cancel();
          refuse(`the URL answered HTTP ${response.status}`);
        }
        const mimeType = normalizeMimeType(response.headers.get("content-type") ?? "");
        if (!MIME_TYPES[kind].includes(mimeType)) {
          await response.body?.cancel();
          refuse(`the URL's content type "${mimeType || "none"}" is not an accepted ${kind} type (${MIME_TYPES[kind].join(", ")})`);
        }
        const declared = Number(response.headers.get("content-length") ?? "0");
        if (declared > maxBytes) {
          await response.body?.cancel();
          refuse(`the URL's content is larger than ${maxBytes} bytes`);
        }
        const bytes = await readAtMost(response, maxBytes, () => timeout.aborted, timeoutMs);
        return `data:${mimeType};base64,${bytes.toString("base64")}`;
      }
      return refuse(`the URL redirected more than ${maxRedirects} times`);
    },
  };
}

/** Reads a body, giving up as soon as it passes `maxBytes` (a missing or lying Content-Length changes nothing). */
async function readAtMost(response: Response, maxBytes: number, timedOut: () => boolean, timeoutMs: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  if (!reader) return Buffer.alloc(0);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        refuse(`the URL's content is larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof ExecutionError) throw error;
    refuse(timedOut() ? `the URL did not answer within ${timeoutMs} ms` : "the URL's content could not be read");
  }
  return Buffer.concat(chunks);
}
