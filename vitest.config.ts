import { defineConfig } from "vitest/config";

// Two projects: `unit` needs nothing running; `emulator` (files named *.emu.test.ts)
// needs the stack that `npm test` starts through scripts/stack.ts.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["functions/test/**/*.test.ts", "scripts/test/**/*.test.ts"],
          exclude: ["**/*.emu.test.ts", "**/node_modules/**"],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: "emulator",
          include: ["functions/test/**/*.emu.test.ts", "scripts/test/**/*.emu.test.ts"],
          exclude: ["**/node_modules/**"],
          globalSetup: ["scripts/test/emulator-env.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
