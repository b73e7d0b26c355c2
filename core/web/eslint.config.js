// The front end's linter: ESLint's and typescript-eslint's recommended rules, type-aware.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "eslint.config.js"] },
  js.configs.recommended,
  {
    files: ["e2e/**/*.mjs"],
    languageOptions: {
      globals: {
        console: "readonly",
        process: "readonly",
        URL: "readonly",
        URLSearchParams: "readonly",
        localStorage: "readonly",
        document: "readonly",
        window: "readonly",
        getComputedStyle: "readonly",
        globalThis: "readonly",
        PerformanceObserver: "readonly",
        performance: "readonly",
      },
    },
  },
  {
    files: ["**/*.ts"],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Everything from MISP is text: never build HTML from strings.
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: "use textContent / the el() helper" },
        { property: "outerHTML", message: "use textContent / the el() helper" },
        { property: "insertAdjacentHTML", message: "use the el() helper" },
      ],
    },
  },
);
