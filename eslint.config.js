import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "functions/lib/**", ".emulators/**", "bench/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ["**/*.mjs", "**/*.js"], languageOptions: { globals: globals.node } },
  { files: ["examples/web/**/*.ts"], languageOptions: { globals: globals.browser } },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    // The pure core must not know Firebase, Express or the provider SDK: those live in adapters/.
    files: ["functions/src/core/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["firebase-functions", "firebase-functions/*", "firebase-admin", "firebase-admin/*", "openai", "openai/*", "express", "../adapters/*", "../config/*"],
              message: "core/ is pure: put Firebase, Express and openai code in adapters/ and pass it in through a port.",
            },
          ],
        },
      ],
    },
  },
);
