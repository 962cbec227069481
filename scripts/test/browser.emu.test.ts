import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startWebApp, type WebApp } from "../stack/web-app.js";
import { launchChromium } from "./support/chromium.js";

/**
 * The example app (examples/web) in headless Chromium against the stack: what a user sees.
 * Everything asserted is read from the page: the answer's text at every DOM mutation, the
 * history rows' status texts, the error box, the stored messages.
 */

// Installed before the app's own scripts on every page: a record of every text the answer showed
// and of every status each history row showed, in the order the DOM changed.
const RECORDERS = `
window.__answers = [];
window.__statuses = {};
document.addEventListener("DOMContentLoaded", () => {
  const answer = document.querySelector("#answer");
  new MutationObserver(() => window.__answers.push(answer.textContent)).observe(answer, { childList: true, characterData: true, subtree: true });
  const history = document.querySelector("#history");
  new MutationObserver(() => {
    for (const row of history.querySelectorAll("li[data-execution-id]")) {
      const seen = (window.__statuses[row.dataset.executionId] ??= []);
      const status = row.querySelector(".status").textContent;
      if (seen.at(-1) !== status) seen.push(status);
    }
  }).observe(history, { childList: true, characterData: true, subtree: true });
});
`;

// A 1×1 PNG.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");

let browser: Browser | undefined;
let app: WebApp | undefined;
let context: BrowserContext | undefined;
let pageErrors: string[] = [];

beforeAll(async () => {
  browser = await launchChromium(); // fails with what to install when there is no Chromium
  app = await startWebApp(
    {
      FUNCTIONS_BASE_URL: process.env.FUNCTIONS_BASE_URL!,
      FIREBASE_AUTH_EMULATOR_HOST: process.env.FIREBASE_AUTH_EMULATOR_HOST!,
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST!,
    },
    { port: 0 },
  );
});

afterEach(async () => {
  await context?.close();
  context = undefined;
  expect(pageErrors, "uncaught errors in the page").toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

/** A fresh browser profile (so a new user) on the app. */
async function openApp(): Promise<Page> {
  context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.addInitScript(RECORDERS);
  await page.goto(app!.url);
  return page;
}

function text(page: Page, selector: string): Promise<string> {
  return page.locator(selector).first().textContent({ timeout: 1_000 }).then((t) => t ?? "", () => "");
}

/** Waits until the element's text matches, failing with the text it last had. */
async function until(page: Page, selector: string, expected: RegExp | string, timeout = 45_000): Promise<void> {
  const poll = expect.poll(() => text(page, selector), { timeout, message: `text of ${selector}` });
  await (typeof expected === "string" ? poll.toBe(expected) : poll.toMatch(expected));
}

async function signInAnonymously(page: Page): Promise<void> {
  await page.click("#sign-in-anonymous");
  await until(page, "#who", /^Signed in anonymously/);
}

/** Picks the first model whose id starts with `prefix` (scenario ids carry a per-page counter key). */
async function send(page: Page, prompt: string, modelPrefix: string): Promise<void> {
  const model = await page.locator(`#model option[value^="${modelPrefix}"]`).first().getAttribute("value");
  await page.selectOption("#model", model!);
  await page.fill("#prompt", prompt);
  await page.click("#send");
}

const statusesOf = (page: Page, executionId: string) =>
  page.evaluate(`window.__statuses[${JSON.stringify(executionId)}] ?? []`) as Promise<string[]>;
const rowStatus = (id: string) => `#history li[data-execution-id="${id}"] .status`;

// A function's first call starts its worker in the Functions emulator: seconds on a busy machine.
describe("the example web app in Chromium", { timeout: 120_000 }, () => {
  it("signs in, streams an answer whose deltas arrive in order, the history row goes running → succeeded, usage counts it", async () => {
    const page = await openApp();
    await signInAnonymously(page);
    const words = "one two three four five six seven eight nine ten eleven twelve".split(" ");
    await send(page, words.join(" "), "local-mini+interval=150"); // the local provider's echo, a word every 150 ms
    await until(page, "#status", "Done.");

    const expected = ["Echo:", ...words];
    const prefixes = expected.map((_, i) => expected.slice(0, i + 1).join(" ") + (i < expected.length - 1 ? " " : ""));
    expect(await text(page, "#answer")).toBe(prefixes.at(-1));
    const shown = (await page.evaluate("window.__answers")) as string[];
    const states = shown.filter((t, i) => t !== "" && t !== shown[i - 1]);
    // Every text the page showed is a prefix of the answer, each one longer than the one before:
    // deltas appended in order, none lost or repeated; and they came one by one, not all at the end.
    expect(states).toEqual(prefixes.filter((p) => states.includes(p)));
    expect(states.at(-1)).toBe(prefixes.at(-1));
    expect(states.length).toBeGreaterThanOrEqual(expected.length / 2);

    expect(await text(page, "#answer-meta .tokens")).toMatch(new RegExp(`^\\d+ in · ${expected.length} out tokens$`));
    expect(await text(page, "#answer-meta .cost")).toMatch(/^\$0\.0000\d\d$/);

    const id = (await page.getAttribute("#answer", "data-execution-id"))!;
    await until(page, rowStatus(id), "succeeded");
    expect(await statusesOf(page, id)).toEqual(["running", "succeeded"]);
    expect(await text(page, `#history li[data-execution-id="${id}"] .output`)).toBe(prefixes.at(-1));
    await until(page, "#usage-day .requests", "1");
    await until(page, "#usage-month .requests", "1");
    expect(await text(page, "#usage-limits")).toMatch(/^Budget: \$\d+\.\d+ left of \$\d+\.\d+ this month\./);

    // Past executions, after a reload: the user is still signed in and the history is read again.
    await page.reload();
    await until(page, rowStatus(id), "succeeded");
  });

  it("a failing scenario shows its error category; a non-retryable one offers no Retry", async () => {
    const page = await openApp();
    await signInAnonymously(page);
    await send(page, "something the provider refuses", "local-mini+fail=content_filter");
    await until(page, "#error-category", "content_filtered");
    expect(await page.isVisible("#retry")).toBe(false);
    expect(await text(page, "#status")).toBe("Failed.");
    await until(page, "#history li .status", "failed");
    expect(await text(page, "#history li .error-text")).toMatch(/^content_filtered: /);

    // Refused before anything is recorded: a text-only model and an image.
    await page.setInputFiles("#image", { name: "dot.png", mimeType: "image/png", buffer: PNG });
    await until(page, "#attachment", /dot\.png/);
    await send(page, "what is this", "local-text");
    await until(page, "#error-category", "validation");
    expect(await text(page, "#error-message")).toMatch(/does not take images/);
    expect(await page.isVisible("#retry")).toBe(false);
  });

  it("a retryable error shows Retry, and Retry repeats the same request until it answers", async () => {
    const page = await openApp();
    await signInAnonymously(page);
    // Fails the first 4 provider calls: the backend's first attempt and its 3 retries.
    await send(page, "Are you there?", "local-mini+fail=server,times=4");
    await until(page, "#error-category", "provider_unavailable");
    expect(await text(page, "#error-message")).toMatch(/\(retryable\)$/);
    expect(await page.isVisible("#retry")).toBe(true);
    await until(page, "#history li .status", "failed");

    await page.click("#retry");
    await until(page, "#status", "Done.");
    expect(await text(page, "#answer")).toBe("Echo: Are you there?");
    expect(await page.isVisible("#error")).toBe(false);
    // The same requestId: one record (rq_…), which went from failed to succeeded.
    const id = (await page.getAttribute("#answer", "data-execution-id"))!;
    expect(id).toMatch(/^rq_/);
    await until(page, rowStatus(id), "succeeded");
    expect(await page.locator("#history li[data-execution-id]").count()).toBe(1);
    const statuses = await statusesOf(page, id);
    expect(statuses.slice(0, 2)).toEqual(["running", "failed"]);
    expect(statuses.at(-1)).toBe("succeeded");
  });

  it("Stop aborts the stream and cancels the execution: its record ends cancelled with the partial answer", async () => {
    const page = await openApp();
    await signInAnonymously(page);
    await send(page, "Tell me a long story", "local-mini+deltas=500,interval=100"); // 50 s of words
    await until(page, "#answer", /^alpha bravo charlie delta /);
    await page.click("#stop");
    await until(page, "#status", "Stopped: the execution ended cancelled.");

    const id = (await page.getAttribute("#answer", "data-execution-id"))!;
    await until(page, rowStatus(id), "cancelled");
    expect(await statusesOf(page, id)).toEqual(["running", "cancelled"]);
    const stored = await text(page, `#history li[data-execution-id="${id}"] .output`);
    const words = stored.split(" ").length;
    expect(words).toBeGreaterThanOrEqual(4);
    expect(words).toBeLessThan(600);
    expect(stored.startsWith(await text(page, "#answer"))).toBe(true);
    expect(await page.isVisible("#error")).toBe(false);
    expect(await page.isDisabled("#stop")).toBe(true);
  });

  it("Stop before the first token cancels the execution by its requestId", async () => {
    const page = await openApp();
    await signInAnonymously(page);
    await send(page, "Anyone there?", "local-mini+latency=15000"); // no start chunk, so no executionId, for 15 s
    await until(page, "#history li .status", "running");
    await page.click("#stop");
    await until(page, "#status", "Stopped: the execution ended cancelled.");
    await until(page, "#history li .status", "cancelled");
    expect(await page.getAttribute("#history li", "data-execution-id")).toMatch(/^rq_/);
    expect(await text(page, "#answer")).toBe("");
  });

  it("an attached image reaches the provider as an image part", async () => {
    const page = await openApp();
    await signInAnonymously(page);
    await page.setInputFiles("#image", { name: "dot.png", mimeType: "image/png", buffer: PNG });
    await until(page, "#attachment", /dot\.png/);
    await send(page, "what is this", "local-mini");
    await until(page, "#status", "Done.");
    // The local provider's echo names the parts the last user message carried.
    expect(await text(page, "#answer")).toBe("Echo: what is this [1 image]");
    expect(await text(page, "#attachment")).toBe("");
    // The record keeps the image by reference only: its type and size.
    await until(page, "#history li .question", /^what is this \[image image\/png, 1 KB\]$/);
  });

  it("signs in with email, continues a conversation over a second turn, and deletes it", async () => {
    const page = await openApp();
    const email = `ada-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
    await page.fill("#email", email);
    await page.fill("#password", "correct-horse");
    await page.click("#sign-in-email button");
    await until(page, "#who", `Signed in as ${email}`);

    await page.selectOption("#conversation", "new");
    // This scenario answers with the number of messages the provider received.
    await send(page, "My name is Ada", "local-mini+report=messages");
    await until(page, "#status", "Done.");
    await send(page, "What is my name?", "local-mini+report=messages");
    await until(page, "#status", "Done.");
    // The second turn reached the provider with the stored history before it: 3 messages.
    const transcript = ["user My name is Ada", "assistant messages=1", "user What is my name?", "assistant messages=3"];
    await expect.poll(() => page.locator("#messages li").allTextContents(), { timeout: 15_000 }).toEqual(transcript);
    await until(page, "#conversation option:checked", "My name is Ada (4 messages)");

    await page.click("#delete-conversation");
    await until(page, "#conversation-status", "Deleted, with its 4 messages.");
    expect(await page.locator("#messages li").count()).toBe(0);
    expect(await page.locator("#conversation option", { hasText: "My name is Ada" }).count()).toBe(0);
  });
});
