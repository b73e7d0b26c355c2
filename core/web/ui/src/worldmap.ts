// The world map of the live and geo pages: Natural Earth's countries (world-atlas, keyed by
// ISO alpha-2 at build time, see vite.config.ts), registered with ECharts, and the d3-geo
// projection that draws them. Everything here is built once when the module loads and never
// changes.

import * as echarts from "echarts/core";
import { geoNaturalEarth1 } from "d3-geo";
import type { Feature, Geometry } from "geojson";
import { feature } from "topojson-client";
import world from "virtual:world";

const collection = feature(world, world.objects.countries);

/** Every country's shape by ISO alpha-2 code. */
export const COUNTRIES: ReadonlyMap<string, Feature<Geometry>> = new Map(
  collection.features.map((f) => [String(f.id), f as Feature<Geometry>]),
);

/** Country names by ISO alpha-2 code, from the map's own data. */
export const COUNTRY_NAMES: ReadonlyMap<string, string> = new Map(
  collection.features.map((f) => [String(f.id), (f.properties as { name?: string } | null)?.name ?? String(f.id)]),
);

// ECharts finds countries by a `name` property: the code, which is what GEO_COUNTRY holds.
echarts.registerMap("world", {
  type: "FeatureCollection",
  features: collection.features.map((f) => ({ ...f, properties: { name: String(f.id) } })),
} as unknown as Parameters<typeof echarts.registerMap>[1]);

/** Natural Earth projection from d3-geo; its stream cuts shapes at the date line, which
 * ECharts' own projection does not (Russia and Fiji would draw bands across the map). */
const projection = geoNaturalEarth1();
export const PROJECTION = {
  project: (p: number[]): number[] => projection([p[0] ?? 0, p[1] ?? 0]) ?? [0, 0],
  unproject: (p: number[]): number[] => projection.invert?.([p[0] ?? 0, p[1] ?? 0]) ?? [0, 0],
  stream: projection.stream.bind(projection),
};
