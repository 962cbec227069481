import { mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWebApp } from "./stack/web-app.js";
import { launchChromium } from "./test/support/chromium.js";

/**
 * Makes docs/images/web-app.png: the example app after a few prompts (a streamed answer with its
 * tokens and cost, the history, usage). Runs inside the stack: `npm run screenshot`.
 */

const OUT = join(fileURLToPath(new URL("..", import.meta.url)), "docs", "images", "web-app.png");
const env = {
  FUNCTIONS_BASE_URL: process.env.FUNCTIONS_BASE_URL ?? "",
  FIREBASE_AUTH_EMULATOR_HOST: process.env.FIREBASE_AUTH_EMULATOR_HOST ?? "",
  FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? "",
};
if (!env.FUNCTIONS_BASE_URL) throw new Error('Run it inside the stack: npm run screenshot (or stack.ts exec "tsx scripts/screenshot.ts").');

const app = await startWebApp(env, { port: 0 });
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 600 } });
  await page.goto(app.url);
  await page.fill("#email", "ada@example.com");
  await page.fill("#password", "correct-horse");
  await page.click("#sign-in-email button");
  await page.locator("#who", { hasText: "Signed in as" }).waitFor();

  const ask = async (prompt: string, model: string, outcome: RegExp) => {
    await page.locator(`#model option[value="${model}"]`).waitFor({ state: "attached" });
    await page.selectOption("#model", model);
    await page.fill("#prompt", prompt);
    await page.click("#send");
    await page.locator("#status", { hasText: outcome }).waitFor({ timeout: 60_000 });
  };
  await ask("Plan a weekend in Rome", "local-mini", /^Done\.$/);
  await ask("Something the provider refuses", "local-mini+fail=content_filter", /^Failed\.$/);
  await ask("Write a haiku about autumn rain on a tin roof", "local-pro", /^Done\.$/);
  await page.locator("#usage-day .requests", { hasText: "3" }).waitFor();
  await page.locator("#history li .status.succeeded").nth(1).waitFor();

  mkdirSync(dirname(OUT), { recursive: true });
  await page.screenshot({ path: OUT });
  console.log(`${OUT}: ${Math.round(statSync(OUT).size / 1024)} KB`);
} finally {
  await browser.close();
  await app.close();
}
