// One HTML page per dashboard page, each with its own small module; the build goes to dist/,
// which the mispdash binary embeds (core/build.rs). Names carry a content hash, so the server
// can let browsers keep assets for a year.
import { defineConfig, type Plugin } from "vite";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import countries from "i18n-iso-countries";

const root = resolve(import.meta.dirname, "ui");
const require = createRequire(import.meta.url);

/** Natural Earth's countries without an ISO number in world-atlas, named as GeoIP names them
 * (Kosovo is XK there; Northern Cyprus and Somaliland are counted in CY and SO). */
const HAND_CODES: Record<string, string> = { Kosovo: "XK", "N. Cyprus": "CY", Somaliland: "SO" };

interface Geometry {
  id?: string;
  properties?: { name?: string };
}

/** `virtual:world`: world-atlas's 110m countries (TopoJSON, public domain) with every country
 * keyed by the ISO alpha-2 code that `GEO_COUNTRY` keys use, done once at build time so the
 * page carries no ISO table. */
function world(): Plugin {
  const id = "virtual:world";
  return {
    name: "mispdash-world",
    resolveId: (source) => (source === id ? `\0${id}` : null),
    load(source) {
      if (source !== `\0${id}`) return null;
      const file = require.resolve("world-atlas/countries-110m.json");
      const topo = JSON.parse(readFileSync(file, "utf8")) as {
        objects: { countries: { geometries: Geometry[] } };
      };
      for (const g of topo.objects.countries.geometries) {
        const name = g.properties?.name ?? "";
        const code = (g.id !== undefined ? countries.numericToAlpha2(g.id) : undefined) ?? HAND_CODES[name];
        if (code === undefined) throw new Error(`world-atlas: no ISO code for ${name} (${String(g.id)})`);
        g.id = code;
        g.properties = { name };
      }
      return `export default ${JSON.stringify(topo)};`;
    },
  };
}

export default defineConfig({
  root,
  base: "/",
  publicDir: false,
  plugins: [world()],
  build: {
    outDir: resolve(import.meta.dirname, "dist"),
    emptyOutDir: true,
    assetsDir: "assets",
    // No inline script anywhere: the server's CSP forbids it.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      input: {
        index: resolve(root, "index.html"),
        geo: resolve(root, "geo.html"),
        contrib: resolve(root, "contrib.html"),
        status: resolve(root, "status.html"),
        trendings: resolve(root, "trendings.html"),
        users: resolve(root, "users.html"),
      },
    },
  },
});
