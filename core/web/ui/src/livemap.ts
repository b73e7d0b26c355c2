// The live map: where the attributes MISP publishes come from, as they arrive. Points fade
// out over the rotation's span ([Dashboard] rotation_wait_time x max_img_rotation), the map
// cycles through the latest distinct ones every rotation_wait_time seconds (the current one
// pulses and is named in the panel title), and countries colour up with their hits since the
// page opened. Redrawn at most once a second, whatever the message rate; the points kept are
// bounded.

import { LiveChart, reducedMotion, tipNode, token, tooltip, type Scope } from "./charts";
import { COUNTRY_NAMES, PROJECTION } from "./worldmap";

export interface MapEvent {
  coord?: { lat?: unknown; lon?: unknown };
  categ?: unknown;
  value?: unknown;
  country?: unknown;
  specifName?: unknown;
  cityName?: unknown;
  regionCode?: unknown;
}

interface Point {
  /** The event's identity (its JSON), for aligning with the server's newest points. */
  key: string;
  lon: number;
  lat: number;
  label: string;
  place: string;
  at: number;
}

/** At most this many points are on the map. */
const MAX_POINTS = 100;

const text = (v: unknown): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");

export class LiveMap extends LiveChart {
  private points: Point[] = [];
  private readonly hits = new Map<string, number>();
  /** The latest distinct events the map cycles through, newest first. */
  private rotation: Point[] = [];
  private current = 0;
  /** The keys of the points added, newest first (bounded like the points). */
  private recent: string[] = [];
  private readonly rotator: number;

  constructor(
    private readonly host: HTMLElement,
    private readonly title: HTMLElement,
    private readonly rotateSeconds: number,
    private readonly keep: number,
    scope: Scope,
  ) {
    super(host, 1000, scope);
    this.rotator =
      rotateSeconds > 0
        ? window.setInterval(() => {
            if (this.rotation.length === 0) return;
            this.current = (this.current + 1) % this.rotation.length;
            this.dirty = true;
          }, rotateSeconds * 1000)
        : 0;
  }

  override dispose(): void {
    window.clearInterval(this.rotator);
    super.dispose();
  }

  /** The keys of the latest points, newest first. */
  keys(): string[] {
    return [...this.recent];
  }

  /** How long a point stays, in seconds. */
  private get lifetime(): number {
    return Math.max(30, this.rotateSeconds * Math.max(1, this.keep));
  }

  /** Adds an event; `ageSeconds` places history in the past so that it fades first. */
  add(e: MapEvent, key: string, ageSeconds = 0): void {
    this.recent = [key, ...this.recent].slice(0, MAX_POINTS);
    const lat = Number(e.coord?.lat);
    const lon = Number(e.coord?.lon);
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return;
    const label = [text(e.categ), text(e.value)].filter((x) => x !== "").join(": ");
    const place = [text(e.cityName), text(e.specifName), text(e.country)].filter((x) => x !== "").join(", ");
    const p: Point = { key, lon, lat, label, place, at: Date.now() / 1000 - ageSeconds };
    this.points.push(p);
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
    const code = text(e.regionCode).toUpperCase();
    if (code !== "") this.hits.set(code, (this.hits.get(code) ?? 0) + 1);
    // History comes oldest first, so the rotation ends up newest first either way.
    this.rotation = [p, ...this.rotation.filter((r) => r.label !== label)].slice(0, Math.max(1, this.keep) + 1);
    this.current = 0;
    this.dirty = true;
  }

  /** Points and hits, for the exports. */
  snapshot(): { points: Point[]; hits: [string, number][] } {
    return { points: [...this.points], hits: [...this.hits.entries()].sort((a, b) => b[1] - a[1]) };
  }

  protected draw(): void {
    const now = Date.now() / 1000;
    const life = this.lifetime;
    const before = this.points.length;
    this.points = this.points.filter((p) => now - p.at < life);
    if (!this.dirty && before === this.points.length && this.points.length === 0) return;
    this.dirty = false;
    // How many points are drawn, for the endurance benchmark (bench/ui_endurance.sh).
    this.host.dataset.points = String(this.points.length);
    const cur = this.rotation[this.current];
    this.title.textContent = cur ? `${cur.label}${cur.place ? ` (${cur.place})` : ""}` : "waiting for located attributes";
    const max = Math.max(2, ...this.hits.values());
    const points = this.points;
    // Without motion (prefers-reduced-motion): no fading, and the current point is marked
    // without a pulse.
    const still = reducedMotion();
    // Only the data changes from one second to the next: merged, not rebuilt. The pulse has
    // its own canvas layer (zlevel), so its animation does not repaint the map.
    const series = [
      { data: [...this.hits.entries()].map(([name, value]) => ({ name, value })) },
      {
        data: points.map((p) => ({ value: [p.lon, p.lat], itemStyle: { opacity: still ? 0.9 : Math.max(0.08, 1 - (now - p.at) / life) } })),
      },
      { data: cur ? [[cur.lon, cur.lat]] : [] },
    ];
    if (!this.full) {
      this.chart.update({ visualMap: { max }, series });
      return;
    }
    this.full = false;
    this.chart.set({
      animation: false,
      tooltip: tooltip((p) => {
        const x = p as { seriesType?: string; seriesIndex?: number; name?: string; dataIndex?: number };
        if (x.seriesType === "map")
          return tipNode(COUNTRY_NAMES.get(x.name ?? "") ?? x.name ?? "", ["hits since the page opened", this.hits.get(x.name ?? "") ?? 0]);
        const pt = x.seriesIndex === 2 ? this.rotation[this.current] : this.points[x.dataIndex ?? -1];
        return pt ? tipNode(pt.label, ["place", pt.place || "unknown"]) : "";
      }),
      visualMap: {
        show: false,
        type: "continuous",
        min: 1,
        max,
        seriesIndex: 0,
        inRange: { color: ["#1d3b5c", token("--accent"), "#ffd166", "#ef5b5b"] },
        outOfRange: { color: token("--panel-edge") },
      },
      geo: {
        map: "world",
        projection: PROJECTION,
        roam: false,
        silent: false,
        top: 4,
        bottom: 4,
        left: 4,
        right: 4,
        itemStyle: { areaColor: token("--panel-edge"), borderColor: token("--panel") },
        emphasis: { disabled: true },
      },
      series: [
        { type: "map", geoIndex: 0, ...series[0] },
        { type: "scatter", coordinateSystem: "geo", symbolSize: 7, itemStyle: { color: token("--warn") }, ...series[1] },
        still
          ? {
              type: "scatter",
              coordinateSystem: "geo",
              zlevel: 1,
              symbolSize: 16,
              symbol: "diamond",
              itemStyle: { color: token("--bad") },
              ...series[2],
            }
          : {
              type: "effectScatter",
              coordinateSystem: "geo",
              zlevel: 1,
              symbolSize: 12,
              rippleEffect: { scale: 4, brushType: "stroke" },
              itemStyle: { color: token("--bad") },
              ...series[2],
            },
      ],
    });
  }
}
