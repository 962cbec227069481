import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { chromium, type Browser } from "playwright-core";

/** Flags that work for Debian's Chromium headless on these machines (/work/shared/ENVIRONMENT.md). */
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

const INSTALL =
  "install it with `apt-get install -y chromium` (Debian; `.ci/run` does this), or set CHROMIUM_PATH to a Chromium or Chrome binary. " +
  "(`npx playwright install` cannot download browsers here.)";

/** CHROMIUM_PATH, else `chromium` (Debian) or `chromium-browser` on the PATH; a clear error when there is none. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CHROMIUM_PATH) {
    if (!existsSync(env.CHROMIUM_PATH)) throw new Error(`CHROMIUM_PATH=${env.CHROMIUM_PATH} does not exist: ${INSTALL}`);
    return env.CHROMIUM_PATH;
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    for (const name of ["chromium", "chromium-browser"]) if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`The browser tests need Chromium and found none on the PATH: ${INSTALL}`);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: ARGS });
}
