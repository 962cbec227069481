import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executionRecord, signedInClient } from "../support/firebase.js";
import { stackEnv } from "../support/stack.js";

/**
 * Adding models and an OpenAI-compatible provider by configuration (functions/catalog.json),
 * without editing TypeScript: the deployed handlers (functions/lib) load a catalog file given
 * by CATALOG_FILE, in a child process, as a deployed instance loads functions/catalog.json.
 */
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "catalog-config-"));
let host: ReturnType<typeof spawn> | undefined;
let url = "";

beforeAll(async () => {
  const file = join(dir, "catalog.json");
  writeFileSync(
    file,
    JSON.stringify({
      providers: [
        // A model added to a built-in provider.
        { id: "local", models: [{ id: "local-custom", upstreamId: "local-mini", contextWindow: 16_000, maxOutputTokens: 1_000, price: { inputPerMTokUsd: 2, outputPerMTokUsd: 8 } }] },
        // A company's own OpenAI-compatible endpoint, keyless, its URL from an environment variable
        // (here the local provider stands in for it).
        {
          id: "acme",
          name: "ACME LLM",
          baseUrl: { env: "ACME_LLM_URL" },
          models: [
            {
              id: "acme-chat",
              upstreamId: "acme-chat-v2",
              contextWindow: 8_000,
              maxOutputTokens: 500,
              price: { inputPerMTokUsd: 3, outputPerMTokUsd: 9, priceVersion: "acme-2026-11" },
              capabilities: { input: ["text"], tools: true, structuredOutput: false },
            },
          ],
        },
      ],
    }),
  );
  host = spawn(process.execPath, ["--import", "tsx", "scripts/functions-host.ts"], {
    cwd: ROOT,
    env: { ...process.env, CATALOG_FILE: file, ACME_LLM_URL: stackEnv().providerUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  host.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  for (let started = Date.now(); !/listening on (\S+)/.test(out); ) {
    if (Date.now() - started > 30_000) throw new Error(`the host did not start: ${out}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  url = /listening on (\S+)/.exec(out)![1]!;
});
afterAll(() => {
  host?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("models and providers added by configuration", () => {
  it("are listed by /v1/models with their prices and capabilities", async () => {
    const body = (await (await fetch(`${url}/api/v1/models`)).json()) as { data: { id: string; owned_by: string }[] };
    expect(body.data.find((m) => m.id === "local-custom")).toMatchObject({ owned_by: "local", pricing: { inputPerMTokUsd: 2, cachedInputPerMTokUsd: 2 } });
    expect(body.data.find((m) => m.id === "acme-chat")).toMatchObject({ owned_by: "acme", capabilities: { input: ["text"], tools: true, structuredOutput: false } });
  });

  it("are called, under their upstream ids, and priced at their configured prices", async () => {
    const user = await signedInClient();
    const openai = new OpenAI({ baseURL: `${url}/api/v1`, apiKey: user.idToken, maxRetries: 0 });
    const { data, response } = await openai.chat.completions.create({ model: "acme-chat", messages: [{ role: "user", content: "hi acme" }] }).withResponse();
    expect(data.choices[0]!.message.content).toBe("Echo: hi acme");
    expect(data.model).toBe("acme-chat");
    const received = (await (await fetch(`${stackEnv().providerUrl.replace(/\/v1$/, "")}/_requests`)).json()) as { requests: { model: string }[] };
    expect(received.requests.some((r) => r.model === "acme-chat-v2")).toBe(true);
    const record = await executionRecord(user.uid, response.headers.get("x-execution-id")!);
    // 2 input tokens × $3 + 3 output tokens × $9 per million = 33 µ$.
    expect(record).toMatchObject({ model: "acme-chat", provider: "acme", cost: { micros: 33, priceVersion: "acme-2026-11" } });
  });
});
