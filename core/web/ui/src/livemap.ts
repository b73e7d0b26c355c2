// The live map: where the attributes MISP publishes come from, as they arrive. Points fade
// out over the rotation's span ([Dashboard] rotation_wait_time x max_img_rotation), the map
// cycles through the latest distinct ones every rotation_wait_time seconds (the current one
// pulses and is named in the panel title), and countries colour up with their hits since the
// page opened. Redrawn at most once a second, whatever the message rate; the points kept are
// bounded. Rewound (rewind.ts), it shows the points of a past moment instead, fading by that
// moment's clock, while the live points go on arriving underneath for the return to live.

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

/** What the map shows: its points, the countries' hits, the rotation, and the clock its
 * points fade by. */
class Layer {
  points: Point[] = [];
  readonly hits = new Map<string, number>();
  /** The latest distinct events the map cycles through, newest first. */
  rotation: Point[] = [];
  current = 0;
  /** The keys of the points added, newest first (bounded like the points). */
  recent: string[] = [];
  constructor(readonly now: () => number) {}
}

const wallClock = (): number => Date.now() / 1000;

export class LiveMap extends LiveChart {
  /** What arrives live. */
  private readonly live = new Layer(wallClock);
  /** What is drawn: the live layer, or a past moment's. */
  private shown: Layer = this.live;
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
            const l = this.shown;
            if (l.rotation.length === 0) return;
            l.current = (l.current + 1) % l.rotation.length;
            this.dirty = true;
          }, rotateSeconds * 1000)
        : 0;
  }

  override dispose(): void {
    window.clearInterval(this.rotator);
    super.dispose();
  }

  /** The keys of the latest live points, newest first. */
  keys(): string[] {
    return [...this.live.recent];
  }

  /** Shows the points of a past moment (oldest first, each with when it arrived), fading by
   * `now` (that moment's clock as it plays forward). */
  rewind(points: readonly { e: MapEvent; key: string; at: number }[], now: () => number): void {
    this.shown = new Layer(now);
    this.more(points);
  }

  /** Adds points to the past moment shown (oldest first). */
  more(points: readonly { e: MapEvent; key: string; at: number }[]): void {
    if (this.shown === this.live) return;
    for (const p of points) this.put(this.shown, p.e, p.key, p.at);
    this.dirty = true;
  }

  /** Back to the live points. */
  toLive(): void {
    this.shown = this.live;
    this.dirty = true;
  }

  /** How long a point stays, in seconds. */
  private get lifetime(): number {
    return Math.max(30, this.rotateSeconds * Math.max(1, this.keep));
  }

  /** Adds an event; `ageSeconds` places history in the past so that it fades first. */
  add(e: MapEvent, key: string, ageSeconds = 0): void {
    this.put(this.live, e, key, wallClock() - ageSeconds);
    if (this.shown === this.live) this.dirty = true;
  }

  private put(l: Layer, e: MapEvent, key: string, at: number): void {
    l.recent = [key, ...l.recent].slice(0, MAX_POINTS);
    const lat = Number(e.coord?.lat);
    const lon = Number(e.coord?.lon);
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return;
    const label = [text(e.categ), text(e.value)].filter((x) => x !== "").join(": ");
    const place = [text(e.cityName), text(e.specifName), text(e.country)].filter((x) => x !== "").join(", ");
    const p: Point = { key, lon, lat, label, place, at };
    l.points.push(p);
    if (l.points.length > MAX_POINTS) l.points.splice(0, l.points.length - MAX_POINTS);
    const code = text(e.regionCode).toUpperCase();
    if (code !== "") l.hits.set(code, (l.hits.get(code) ?? 0) + 1);
    // History comes oldest first, so the rotation ends up newest first either way.
    l.rotation = [p, ...l.rotation.filter((r) => r.label !== label)].slice(0, Math.max(1, this.keep) + 1);
    l.current = 0;
  }

  /** Points and hits shown, for the exports. */
  snapshot(): { points: Point[]; hits: [string, number][] } {
    const l = this.shown;
    return { points: [...l.points], hits: [...l.hits.entries()].sort((a, b) => b[1] - a[1]) };
  }

  protected draw(): void {
    const life = this.lifetime;
    // The live points fade while the map shows another moment too.
    if (this.shown !== this.live) this.live.points = this.live.points.filter((p) => wallClock() - p.at < life);
    const l = this.shown;
    const now = l.now();
    const before = l.points.length;
    l.points = l.points.filter((p) => now - p.at < life && p.at <= now);
    if (!this.dirty && before === l.points.length && l.points.length === 0) return;
    this.dirty = false;
    // How many points are drawn, for the endurance benchmark (bench/ui_endurance.sh).
    this.host.dataset.points = String(l.points.length);
    const cur = l.rotation[l.current];
    this.title.textContent = cur ? `${cur.label}${cur.place ? ` (${cur.place})` : ""}` : "waiting for located attributes";
    const max = Math.max(2, ...l.hits.values());
    const points = l.points;
    // Without motion (prefers-reduced-motion): no fading, and the current point is marked
    // without a pulse.
    const still = reducedMotion();
    // Only the data changes from one second to the next: merged, not rebuilt. The pulse has
    // its own canvas layer (zlevel), so its animation does not repaint the map.
    const series = [
      { data: [...l.hits.entries()].map(([name, value]) => ({ name, value })) },
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
          return tipNode(COUNTRY_NAMES.get(x.name ?? "") ?? x.name ?? "", [
            this.shown === this.live ? "hits since the page opened" : "hits shown",
            this.shown.hits.get(x.name ?? "") ?? 0,
          ]);
        const pt = x.seriesIndex === 2 ? this.shown.rotation[this.shown.current] : this.shown.points[x.dataIndex ?? -1];
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
