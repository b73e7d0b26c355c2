// The build-time world map (vite.config.ts): world-atlas's TopoJSON keyed by ISO alpha-2.
declare module "virtual:world" {
  import type { Topology, GeometryCollection } from "topojson-specification";
  const world: Topology<{ countries: GeometryCollection<{ name: string }> }>;
  export default world;
}
