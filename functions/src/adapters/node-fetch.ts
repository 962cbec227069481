import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

/**
 * The openai SDK's transport: a `fetch` over Node's own http/https modules with keep-alive
 * agents, handing the SDK a small Response whose body is the Node stream itself (the SDK
 * iterates any async iterable). Measured (docs/benchmarks.md): undici's fetch and the WHATWG
 * streams it builds per request were ~13% of an instance's CPU per request; this does the same
 * work without them. Only what the SDK uses is implemented: status, ok, headers, body, text(),
 * json(), and aborting through `signal`.
 */

const agents = {
  "http:": new HttpAgent({ keepAlive: true, maxSockets: 512 }),
  "https:": new HttpsAgent({ keepAlive: true, maxSockets: 512 }),
};

class NodeResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly statusText: string;
  readonly headers: Headers;
  readonly body: IncomingMessage;
  readonly redirected = false;
  readonly type = "basic";

  constructor(
    readonly url: string,
    message: IncomingMessage,
  ) {
    this.status = message.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.statusText = message.statusMessage ?? "";
    const headers = new Headers();
    const raw = message.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
    this.headers = headers;
    this.body = message;
  }

  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  get bodyUsed(): boolean {
    return this.body.readableEnded;
  }
}

function headerRecord(headers: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  new Headers(headers).forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

/** `via` replaces the shared keep-alive agents (the media fetcher's connects to public addresses only). */
export function nodeFetch(input: string | URL | Request, init: RequestInit = {}, via?: { http?: HttpAgent; https?: HttpsAgent }): Promise<Response> {
  const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
  const secure = url.protocol === "https:";
  const body = init.body;
  if (body !== undefined && body !== null && typeof body !== "string") {
    // Never around `via`: the platform's fetch would connect without its checks.
    if (via) return Promise.reject(new TypeError("nodeFetch sends only string bodies through its own agents"));
    // The SDK sends JSON strings for chat completions; anything else goes through the platform's fetch.
    return fetch(input, init);
  }
  return new Promise((resolve, reject) => {
    const options = {
      method: init.method ?? "GET",
      headers: { ...headerRecord(init.headers), ...(body ? { "content-length": String(Buffer.byteLength(body)) } : {}) },
      agent: (secure ? via?.https : via?.http) ?? agents[secure ? "https:" : "http:"],
      ...(init.signal ? { signal: init.signal } : {}),
    };
    const request = (secure ? httpsRequest : httpRequest)(url, options, (message) => {
      try {
        resolve(new NodeResponse(url.href, message) as unknown as Response);
      } catch (error) {
        // A header `Headers` refuses: the request fails, the process does not.
        message.destroy();
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    request.on("error", reject);
    request.end(body ?? undefined);
  });
}
