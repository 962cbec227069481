import { describe, expect, it } from "vitest";
import { createServer, type AddressInfo } from "node:net";
import { createMediaFetcher, isPublicAddress, publicOnlyLookup } from "../../src/adapters/media-fetcher.js";
import { ExecutionError } from "../../src/core/errors.js";
import { urlRefusal } from "../../src/core/media.js";

/**
 * The server fetches media only for providers that need bytes, and must not become an open
 * proxy. The transport is faked at its boundary (`fetch`), as openai-node's tests do: what
 * is tested is the policy, hop by hop.
 */

const ALLOWED = "https://firebasestorage.googleapis.com/v0/b/app/o/cat.png?alt=media";
const policy = () => ({ allowedHosts: ["firebasestorage.googleapis.com", "*.example-cdn.com"] });

/** A fake remote: a map from URL to the response it gives; records every URL asked for. */
function remote(routes: Record<string, () => Response>) {
  const asked: string[] = [];
  const fetchFn = (async (input: string | URL | Request) => {
    const url = String(input);
    asked.push(url);
    const route = routes[url];
    if (!route) throw new TypeError("fetch failed");
    return route();
  }) as typeof fetch;
  return { asked, fetcher: createMediaFetcher({ policy, fetch: fetchFn, maxBytes: 1_000, timeoutMs: 200 }) };
}

const png = (bytes = 10, headers: Record<string, string> = {}) => () =>
  new Response(new Uint8Array(bytes).fill(7), { headers: { "content-type": "image/png", ...headers } });

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ExecutionError);
    expect((error as ExecutionError).category).toBe("validation");
    return (error as Error).message;
  }
  throw new Error("expected a refusal");
}

const signal = new AbortController().signal;

describe("media fetcher", () => {
  it("fetches an allowed https URL as a data URL", async () => {
    const { fetcher } = remote({ [ALLOWED]: png(3) });
    expect(await fetcher.fetchAsDataUrl(ALLOWED, "image", signal)).toBe(`data:image/png;base64,${Buffer.from([7, 7, 7]).toString("base64")}`);
  });

  it.each([
    ["https://127.0.0.1/a.png", "the host 127.0.0.1 is not allowed"],
    ["https://[::1]/a.png", "is not allowed"],
    ["https://localhost/a.png", "the host localhost is not allowed"],
    ["https://169.254.169.254/computeMetadata/v1/", "is not allowed"],
    ["https://evil.example.org/a.png", "the host evil.example.org is not in the allowed list"],
    ["http://firebasestorage.googleapis.com/a.png", "only https URLs are fetched"],
    ["https://example-cdn.com/a.png", "not in the allowed list"],
  ])("refuses %s without fetching it", async (url, message) => {
    const { fetcher, asked } = remote({});
    expect(await refusal(fetcher.fetchAsDataUrl(url, "image", signal))).toContain(message);
    expect(asked).toEqual([]);
  });

  it("allows subdomains of a *. pattern", () => {
    expect(urlRefusal("https://a.example-cdn.com/x.png", policy())).toBeUndefined();
  });

  it("follows a redirect to an allowed host, and refuses one to a host that is not", async () => {
    const hop = "https://x.example-cdn.com/cat.png";
    const ok = remote({ [ALLOWED]: () => new Response(null, { status: 302, headers: { location: hop } }), [hop]: png() });
    expect(await ok.fetcher.fetchAsDataUrl(ALLOWED, "image", signal)).toMatch(/^data:image\/png;base64,/);

    const bad = remote({ [ALLOWED]: () => new Response(null, { status: 301, headers: { location: "https://127.0.0.1/latest/meta-data" } }) });
    expect(await refusal(bad.fetcher.fetchAsDataUrl(ALLOWED, "image", signal))).toContain("redirected to a URL that is not allowed");
    expect(bad.asked).toEqual([ALLOWED]);
  });

  it("gives up after three redirects", async () => {
    const loop = remote({ [ALLOWED]: () => new Response(null, { status: 307, headers: { location: ALLOWED } }) });
    expect(await refusal(loop.fetcher.fetchAsDataUrl(ALLOWED, "image", signal))).toContain("redirected more than 3 times");
    expect(loop.asked).toHaveLength(4);
  });

  it("refuses a body over the limit, whether Content-Length says so or not", async () => {
    const declared = remote({ [ALLOWED]: png(2_000, { "content-length": "2000" }) });
    expect(await refusal(declared.fetcher.fetchAsDataUrl(ALLOWED, "image", signal))).toContain("larger than 1000 bytes");
    const lying = remote({ [ALLOWED]: png(2_000, { "content-length": "10" }) });
    expect(await refusal(lying.fetcher.fetchAsDataUrl(ALLOWED, "image", signal))).toContain("larger than 1000 bytes");
  });

  it("refuses a content type that is not of the expected kind", async () => {
    const html = remote({ [ALLOWED]: () => new Response("<html>", { headers: { "content-type": "text/html" } }) });
    expect(await refusal(html.fetcher.fetchAsDataUrl(ALLOWED, "image", signal))).toContain('content type "text/html" is not an accepted image type');
    const pdf = remote({ [ALLOWED]: () => new Response("%PDF", { headers: { "content-type": "application/pdf" } }) });
    expect(await pdf.fetcher.fetchAsDataUrl(ALLOWED, "file", signal)).toMatch(/^data:application\/pdf;base64,/);
  });

  it("refuses an error status and a URL that does not answer in time", async () => {
    const gone = remote({ [ALLOWED]: () => new Response("no", { status: 404 }) });
    expect(await refusal(gone.fetcher.fetchAsDataUrl(ALLOWED, "image", signal))).toContain("answered HTTP 404");
    const slowFetch = ((_url: string, init?: RequestInit) =>
      new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))))) as typeof fetch;
    const slow = createMediaFetcher({ policy, fetch: slowFetch, timeoutMs: 50 });
    expect(await refusal(slow.fetchAsDataUrl(ALLOWED, "image", signal))).toContain("did not answer within 50 ms");
  });
});

describe("media fetcher: where it may connect", () => {
  it.each([
    ["127.0.0.1", false],
    ["10.1.2.3", false],
    ["172.16.5.4", false],
    ["192.168.1.1", false],
    ["169.254.169.254", false],
    ["100.64.0.1", false],
    ["0.0.0.0", false],
    ["::1", false],
    ["fe80::1", false],
    ["fd00::1", false],
    ["::ffff:127.0.0.1", false],
    ["::ffff:10.0.0.1", false],
    ["8.8.8.8", true],
    ["142.250.74.110", true],
    ["2607:f8b0:4004:800::200e", true],
    ["::ffff:8.8.8.8", true],
  ])("%s is public: %s", (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  const resolver = (answers: Record<string, string[]>) => (hostname: string, callback: (error: Error | null, addresses: { address: string; family: number }[]) => void) =>
    callback(null, (answers[hostname] ?? []).map((address) => ({ address, family: address.includes(":") ? 6 : 4 })));

  it("a lookup refuses a host when any of its addresses is not public, and gives the public one otherwise", async () => {
    const lookup = publicOnlyLookup(resolver({ "cdn.example-cdn.com": ["93.184.216.34"], "mixed.example-cdn.com": ["93.184.216.34", "10.0.0.7"] }));
    const ask = (host: string, all: boolean) =>
      new Promise<{ error: Error | null; address: unknown }>((resolve) => lookup(host, { all } as never, (error, address) => resolve({ error, address })));
    expect(await ask("cdn.example-cdn.com", false)).toEqual({ error: null, address: "93.184.216.34" });
    expect((await ask("cdn.example-cdn.com", true)).address).toEqual([{ address: "93.184.216.34", family: 4 }]);
    expect((await ask("mixed.example-cdn.com", false)).error).toMatchObject({ code: "ENOTPUBLIC" });
  });

  it("never connects to an allowed host whose name resolves to a private address", async () => {
    // Something listening where the name points: it must see no connection at all.
    const connections: number[] = [];
    const server = createServer((socket) => {
      connections.push(1);
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const fetcher = createMediaFetcher({ policy, resolve: resolver({ "internal.example-cdn.com": ["127.0.0.1"] }), timeoutMs: 2_000 });
      const message = await refusal(fetcher.fetchAsDataUrl(`https://internal.example-cdn.com:${port}/cat.png`, "image", signal));
      expect(message).toBe("the host internal.example-cdn.com resolves to an address that is not public");
      expect(connections).toEqual([]);
    } finally {
      server.close();
    }
  });

  it("refuses a URL with credentials in it, saying so, without fetching it", async () => {
    const { fetcher, asked } = remote({});
    expect(await refusal(fetcher.fetchAsDataUrl("https://user:pw@firebasestorage.googleapis.com/a.png", "image", signal))).toBe(
      "URLs with credentials (user:password@) are not fetched",
    );
    expect(asked).toEqual([]);
  });
});
