import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startLocalProvider, type LocalProvider } from "../local-provider/server.js";
import { parseScenario } from "../local-provider/scenario.js";

let provider: LocalProvider;
let client: OpenAI;
const silent = { logLevel: "off" as const };

beforeAll(async () => {
  provider = await startLocalProvider();
  client = new OpenAI({ baseURL: provider.url, apiKey: "local-test-key", maxRetries: 0, timeout: 5_000, ...silent });
});
afterAll(() => provider.close());
beforeEach(() => provider.reset());

const ask = (model: string, content = "hello there world") => ({ model, messages: [{ role: "user" as const, content }] });

async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  const texts: string[] = [];
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    const text = chunk.choices[0]?.delta.content;
    if (text) texts.push(text);
  }
  return { texts, chunks };
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the request to fail");
}

describe("local provider: successful completions", () => {
  it("echoes the last user message with usage, deterministically", async () => {
    const first = await client.chat.completions.create(ask("local-mini"));
    const second = await client.chat.completions.create(ask("local-mini"));
    expect(first.choices[0]?.message.content).toBe("Echo: hello there world");
    expect(first.choices[0]?.finish_reason).toBe("stop");
    expect(first.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
    expect({ ...second, id: first.id }).toEqual(first);
  });

  it("streams one word per delta and a final usage chunk with include_usage", async () => {
    const stream = await client.chat.completions.create({
      ...ask("local-mini"),
      stream: true,
      stream_options: { include_usage: true },
    });
    const { texts, chunks } = await collect(stream);
    expect(texts).toEqual(["Echo: ", "hello ", "there ", "world"]);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 4 });
  });

  it("sends no usage chunk without include_usage, and none at all with usage=0", async () => {
    const plain = await collect(await client.chat.completions.create({ ...ask("local-mini"), stream: true }));
    expect(plain.chunks.some((c) => c.usage)).toBe(false);
    const none = await client.chat.completions.create(ask("local-mini+usage=0"));
    expect(none.usage).toBeUndefined();
  });

  it("produces the requested number of deltas and stops at max_tokens with finish_reason length", async () => {
    const many = await collect(await client.chat.completions.create({ ...ask("local-pro+deltas=20,interval=1"), stream: true }));
    expect(many.texts).toHaveLength(20);
    const capped = await client.chat.completions.create({ ...ask("local-pro+deltas=20"), max_tokens: 3 });
    expect(capped.choices[0]?.message.content).toBe("alpha bravo charlie");
    expect(capped.choices[0]?.finish_reason).toBe("length");
  });

  it("reports cached and reasoning tokens when asked", async () => {
    const completion = await client.chat.completions.create(ask("local-pro+cached=3,reasoning=7"));
    expect(completion.usage?.prompt_tokens_details?.cached_tokens).toBe(3);
    expect(completion.usage?.completion_tokens_details?.reasoning_tokens).toBe(7);
    expect(completion.usage?.completion_tokens).toBe(4 + 7);
  });

  it("lists its models, or the list a scenario asks for", async () => {
    const all = await client.models.list();
    expect(all.data.map((m) => m.id)).toEqual(["local-mini", "local-pro", "local-text"]);
    const partial = new OpenAI({ baseURL: provider.url.replace("/v1", "/_scenario/models=local-mini/v1"), apiKey: "k", ...silent });
    expect((await partial.models.list()).data.map((m) => m.id)).toEqual(["local-mini"]);
  });

  it("takes a scenario from the x-mock-scenario header", async () => {
    const error = await failureOf(
      client.chat.completions.create(ask("local-mini"), { headers: { "x-mock-scenario": "fail=auth" } }),
    );
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe("local provider: HTTP failures in OpenAI's format", () => {
  it("answers 429 with retry-after and retry-after-ms", async () => {
    const error = await failureOf(client.chat.completions.create(ask("local-mini+fail=rate_limit,retry-after-ms=250")));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rate = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rate.headers.get("retry-after-ms")).toBe("250");
    expect(rate.headers.get("retry-after")).toBe("1");
    expect(rate.code).toBe("rate_limit_exceeded");
  });

  it.each([
    ["auth", OpenAI.AuthenticationError, 401, "invalid_api_key"],
    ["forbidden", OpenAI.PermissionDeniedError, 403, "unsupported_country_region_territory"],
    ["not_found", OpenAI.NotFoundError, 404, "model_not_found"],
    ["context_length", OpenAI.BadRequestError, 400, "context_length_exceeded"],
    ["content_filter", OpenAI.BadRequestError, 400, "content_filter"],
    ["quota", OpenAI.RateLimitError, 429, "insufficient_quota"],
    ["server", OpenAI.InternalServerError, 500, null],
    ["unavailable", OpenAI.InternalServerError, 503, "overloaded"],
  ] as const)("fail=%s → %s %i (%s)", async (fail, errorClass, status, code) => {
    const error = await failureOf(client.chat.completions.create(ask(`local-mini+fail=${fail}`)));
    expect(error).toBeInstanceOf(errorClass);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe(code);
  });

  it("answers 502 with an HTML body, as gateways do", async () => {
    const error = await failureOf(client.chat.completions.create(ask("local-mini+fail=bad_gateway")));
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
  });

  it("fails N times, then succeeds, counting per key", async () => {
    const model = "local-mini+fail=server,times=2,key=flaky";
    await expect(client.chat.completions.create(ask(model))).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await expect(client.chat.completions.create(ask(model))).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    const ok = await client.chat.completions.create(ask(model));
    expect(ok.choices[0]?.message.content).toBe("Echo: hello there world");
    expect(provider.stats().byKey.flaky).toBe(3);
  });

  it("rejects an unknown scenario setting with a 400 that names it", async () => {
    const error = await failureOf(client.chat.completions.create(ask("local-mini+bogus=1")));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toContain("bogus");
  });
});

describe("local provider: connection-level faults", () => {
  it("resets the connection before headers", async () => {
    const error = await failureOf(client.chat.completions.create(ask("local-mini+fail=reset")));
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it("hangs until the client gives up", async () => {
    const error = await failureOf(client.chat.completions.create(ask("local-mini+fail=hang"), { timeout: 200 }));
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
  });

  it("waits `latency` before headers (a client timeout shorter than it fires)", async () => {
    const error = await failureOf(client.chat.completions.create(ask("local-mini+latency=3000"), { timeout: 100 }));
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
  });

  it("cuts a stream after `after` deltas, with no usage and no [DONE]", async () => {
    const stream = await client.chat.completions.create({
      ...ask("local-mini+fail=cut,after=2"),
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts: string[] = [];
    const error = await failureOf(
      (async () => {
        for await (const chunk of stream) {
          const text = chunk.choices[0]?.delta.content;
          if (text) texts.push(text);
          expect(chunk.usage ?? undefined).toBeUndefined();
        }
      })(),
    );
    expect(texts).toEqual(["Echo: ", "hello "]);
    expect(error).toBeInstanceOf(Error);
  });

  it("sends a malformed SSE line after `after` deltas", async () => {
    const stream = await client.chat.completions.create({ ...ask("local-mini+fail=malformed,after=1"), stream: true });
    const texts: string[] = [];
    const error = await failureOf(
      (async () => {
        for await (const chunk of stream) {
          const text = chunk.choices[0]?.delta.content;
          if (text) texts.push(text);
        }
      })(),
    );
    expect(texts).toEqual(["Echo: "]);
    expect(error).toBeInstanceOf(SyntaxError);
  });

  it("counts a client that goes away mid-stream as aborted", async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { ...ask("local-mini+deltas=50,interval=20"), stream: true },
      { signal: controller.signal },
    );
    let seen = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content && ++seen === 2) controller.abort();
    }
    await expect.poll(() => provider.stats().aborted).toBe(1);
  });
});

describe("parseScenario", () => {
  it("reads every setting and defaults the key to the text", () => {
    expect(parseScenario("fail=rate_limit,retry-after=2,times=1")).toMatchObject({
      fail: "rate_limit",
      retryAfterSeconds: 2,
      times: 1,
      key: "fail=rate_limit,retry-after=2,times=1",
    });
  });

  it("rejects unknown failures and non-numeric counts", () => {
    expect(() => parseScenario("fail=explode")).toThrow(/unknown fail/);
    expect(() => parseScenario("deltas=many")).toThrow(/whole number/);
  });
});
