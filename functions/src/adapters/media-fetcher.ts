import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from "node:dns";
import { Agent } from "node:https";
import { BlockList, isIP } from "node:net";
import { ExecutionError } from "../core/errors.js";
import { MEDIA_LIMITS, MIME_TYPES, normalizeMimeType, urlRefusal, type UrlPolicy } from "../core/media.js";
import type { InputKind } from "../core/messages.js";
import type { MediaFetcher } from "../core/ports.js";
import { nodeFetch } from "./node-fetch.js";

export interface MediaFetcherOptions {
  /** Read per fetch, so that the param is evaluated at runtime. */
  policy: () => UrlPolicy;
  timeoutMs?: number;
  maxRedirects?: number;
  maxBytes?: number;
  /** The transport; tests pass their own, as openai-node's tests do. Default: https that connects to public addresses only. */
  fetch?: typeof fetch;
  /** The DNS resolver of the default transport (the system's); tests pass their own. */
  resolve?: Resolve;
}

type Resolve = (hostname: string, callback: (error: Error | null, addresses: LookupAddress[]) => void) => void;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function refuse(message: string): never {
  throw new ExecutionError("validation", message);
}

/**
 * Fetches media from an https URL for providers that need the bytes, without becoming an
 * open proxy: https only, hosts from the allow-list only (checked again on every redirect,
 * which we follow ourselves), only to public addresses (the address connected to is checked,
 * so a DNS answer that changes after a check cannot reach a private one), a few redirects at
 * most, a size and a time limit, and a Content-Type of the expected kind. Every refusal is a
 * `validation` error naming why.
 */
export function createMediaFetcher(options: MediaFetcherOptions): MediaFetcher {
  const transport = options.fetch ?? (options.resolve ? publicHttpsFetch(options.resolve) : defaultTransport());
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxRedirects = options.maxRedirects ?? 3;
  const maxBytes = options.maxBytes ?? MEDIA_LIMITS.bytes;

  return {
    refusal: (url) => urlRefusal(url, options.policy()),
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
        } catch (error) {
          if (isNotPublic(error)) refuse(`the host ${new URL(current).hostname} resolves to an address that is not public`);
          refuse(timeout.aborted ? `the URL did not answer within ${timeoutMs} ms` : "the URL could not be fetched");
        }
        if (REDIRECTS.has(response.status)) {
          const location = response.headers.get("location");
          discard(response);
          if (!location) refuse(`the URL redirected (HTTP ${response.status}) without a Location`);
          current = new URL(location, current).href;
          continue;
        }
        if (!response.ok) {
          discard(response);
          refuse(`the URL answered HTTP ${response.status}`);
        }
        const mimeType = normalizeMimeType(response.headers.get("content-type") ?? "");
        if (!MIME_TYPES[kind].includes(mimeType)) {
          discard(response);
          refuse(`the URL's content type "${mimeType || "none"}" is not an accepted ${kind} type (${MIME_TYPES[kind].join(", ")})`);
        }
        const declared = Number(response.headers.get("content-length") ?? "0");
        if (declared > maxBytes) {
          discard(response);
          refuse(`the URL's content is larger than ${maxBytes} bytes`);
        }
        const bytes = await readAtMost(response, maxBytes, () => timeout.aborted, timeoutMs);
        return `data:${mimeType};base64,${bytes.toString("base64")}`;
      }
      return refuse(`the URL redirected more than ${maxRedirects} times`);
    },
  };
}

/** Stops reading a body we will not use: a web stream is cancelled, a Node stream destroyed. */
function discard(response: Response): void {
  const body = response.body as unknown as { cancel?: () => Promise<void>; destroy?: () => void } | null;
  if (body?.cancel) void body.cancel().catch(() => {});
  else body?.destroy?.();
}

/** Reads a body, giving up as soon as it passes `maxBytes` (a missing or lying Content-Length changes nothing). */
async function readAtMost(response: Response, maxBytes: number, timedOut: () => boolean, timeoutMs: number): Promise<Buffer> {
  const body = response.body as unknown as AsyncIterable<Uint8Array> | null;
  if (!body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      total += chunk.byteLength;
      if (total > maxBytes) {
        discard(response);
        refuse(`the URL's content is larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof ExecutionError) throw error;
    refuse(timedOut() ? `the URL did not answer within ${timeoutMs} ms` : "the URL's content could not be read");
  }
  return Buffer.concat(chunks);
}

/** Addresses no fetch of ours may connect to: loopback, private, link-local (metadata servers), shared, multicast, reserved. */
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, "ipv6");
}

/** Whether an address is one a server-side fetch may connect to. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6) {
    // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    if (mapped) return isPublicAddress(mapped);
    return !NOT_PUBLIC.check(address, "ipv6");
  }
  return !NOT_PUBLIC.check(address, "ipv4");
}

class NotPublicError extends Error {
  readonly code = "ENOTPUBLIC";
}

function isNotPublic(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) if ((e as { code?: string }).code === "ENOTPUBLIC") return true;
  return false;
}

type Lookup = (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void) => void;

/**
 * A DNS lookup for sockets that refuses a host when any of its addresses is not public, so
 * that the address checked is the one connected to. `resolve` is the system resolver.
 */
export function publicOnlyLookup(resolve: Resolve): Lookup {
  return (hostname, options, callback) => {
    resolve(hostname, (error, addresses) => {
      if (error) return callback(error, []);
      const refused = addresses.find((a) => !isPublicAddress(a.address));
      if (refused || addresses.length === 0) return callback(new NotPublicError(`${hostname} resolves to ${refused?.address ?? "nothing"}`), []);
      if ((options as LookupAllOptions).all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

const systemResolve: Resolve = (hostname, callback) => dnsLookup(hostname, { all: true }, (error, addresses) => callback(error, addresses ?? []));

/** https to public addresses only: Node's https, its sockets connected through the checking lookup above. */
function publicHttpsFetch(resolve: Resolve): typeof fetch {
  // The lookup is a socket option the agent passes to every connection it makes.
  const agent = new Agent({ keepAlive: true, maxSockets: 64, lookup: publicOnlyLookup(resolve) as never });
  return ((input: string | URL | Request, init?: RequestInit) => nodeFetch(input, init, { https: agent })) as typeof fetch;
}

let shared: typeof fetch | undefined;
const defaultTransport = () => (shared ??= publicHttpsFetch(systemResolve));
