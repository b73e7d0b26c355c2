// One HTML page per dashboard page, each with its own small module; the build goes to dist/,
// which the mispdash binary embeds (core/build.rs). Names carry a content hash, so the server
// can let browsers keep assets for a year.
import { defineConfig } from "vite";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "ui");

export default defineConfig({
  root,
  base: "/",
  publicDir: false,
  build: {
    outDir: resolve(import.meta.dirname, "dist"),
    emptyOutDir: true,
    assetsDir: "assets",
    // No inline script anywhere: the server's CSP forbids it.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    rollupOptions: {
      input: {
        index: resolve(root, "index.html"),
        status: resolve(root, "status.html"),
        trendings: resolve(root, "trendings.html"),
        users: resolve(root, "users.html"),
      },
    },
  },
});
