// The world map of the live and geo pages: Natural Earth's countries (world-atlas, keyed by
// ISO alpha-2 at build time, see vite.config.ts) registered once with ECharts, and the d3-geo
// projection that draws them.

import * as echarts from "echarts/core";
import { geoNaturalEarth1 } from "d3-geo";
import { feature } from "topojson-client";
import world from "virtual:world";

/** Country names by ISO alpha-2 code, from the map's own data. */
export const COUNTRY_NAMES = new Map<string, string>();

let mapRegistered = false;
/** Registers "world" once: countries named by their alpha-2 code (what GEO_COUNTRY holds). */
export function registerWorld(): void {
  if (mapRegistered) return;
  const fc = feature(world, world.objects.countries);
  for (const f of fc.features) {
    const code = String(f.id);
    COUNTRY_NAMES.set(code, f.properties.name);
    f.properties = { name: code, label: f.properties.name } as typeof f.properties;
  }
  echarts.registerMap("world", fc as unknown as Parameters<typeof echarts.registerMap>[1]);
  mapRegistered = true;
}

/** Natural Earth projection from d3-geo; its stream cuts shapes at the date line, which
 * ECharts' own projection does not (Russia and Fiji would draw bands across the map). */
const projection = geoNaturalEarth1();
export const PROJECTION = {
  project: (p: number[]): number[] => projection([p[0] ?? 0, p[1] ?? 0]) ?? [0, 0],
  unproject: (p: number[]): number[] => projection.invert?.([p[0] ?? 0, p[1] ?? 0]) ?? [0, 0],
  stream: projection.stream.bind(projection),
};

