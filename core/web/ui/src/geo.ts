// /geo: where the attributes of a period come from. A world choropleth of hits per country
// (click a country for its points), the top locations, and the radius query (drag a circle
// on the map, or type a centre and a radius). Range, filters, the circle and the chosen
// country live in the URL; "today" is the server's day. The server applies the category (the
// routes' `categ`), the attribute types (`type`), the tag patterns (`tags`, `not_tags`) and the
// region's countries to the hit map (`country`); points are kept to the region's outline here,
// which the routes (a `bbox` at most) cannot draw. Type and tag filters read records the server
// writes from its version on: the days before are named on the page.

import { geoCentroid, geoCircle, geoContains, geoDistance, geoBounds } from "d3-geo";
import { el, fill } from "./dom";
import { getJson, getNoted, uiSettings } from "./api";
import { pointFilters, uncountedText } from "./narrow";
import { Chart, tipNode, token, tooltip, type Option, type Scope } from "./charts";
import { tools, type Table } from "./export";
import { fieldText, panel, quickRanges, refreshSeconds, refresher, Rendering, setField } from "./panels";
import { startPage } from "./shell";
import { daysBetween, type ServerClock } from "./time";
import { dayParam, go, params, urlWith } from "./urlstate";
import { COUNTRIES, COUNTRY_NAMES, PROJECTION } from "./worldmap";

const EARTH_KM = 6371;
/** A longer range would send one request per day for too many days. */
const MAX_DAYS = 62;

interface Place {
  lat: number;
  lon: number;
  categ: string | null;
  value: string | null;
}

interface Cluster {
  lon: number;
  lat: number;
  items: { categ: string | null; value: string | null }[];
}

interface View {
  from: string;
  to: string;
  categ: string;
  /** Attribute types, and tag patterns to include and to exclude, as the routes take them. */
  types: string;
  tags: string;
  notags: string;
  region: Set<string>;
  country: string | null;
  circle: { lat: number; lon: number; km: number } | null;
}

function num(v: unknown): number {
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : NaN;
}

/** A member of GEO_COORD / GEO_RAD: JSON that MISP's data filled; anything odd is skipped. */
function parsePlace(member: string): Place | null {
  try {
    const o = JSON.parse(member) as Record<string, unknown>;
    const lat = num(o.lat);
    const lon = num(o.lon);
    if (Number.isNaN(lat) || Number.isNaN(lon)) return null;
    return {
      lat,
      lon,
      categ: typeof o.categ === "string" ? o.categ : null,
      value: typeof o.value === "string" ? o.value : o.value == null ? null : JSON.stringify(o.value),
    };
  } catch {
    return null;
  }
}

function parseItem(member: string): { categ: string | null; value: string | null } {
  const p = parsePlace(`{"lat":0,"lon":0,${member.trim().replace(/^\{/, "")}`);
  return p ? { categ: p.categ, value: p.value } : { categ: null, value: member };
}

/** What the URL asks for; without dates, the server's today (read again at every refresh, so
 * that a wall screen moves on with the days). */
function readView(clock: ServerClock): View {
  const q = params();
  const today = clock.today();
  const to = dayParam(q, "to") ?? today;
  let from = dayParam(q, "from") ?? to;
  if (from > to) from = to;
  const lat = num(q.get("lat"));
  const lon = num(q.get("lon"));
  const km = num(q.get("km"));
  const circle =
    [lat, lon, km].some(Number.isNaN) || Math.abs(lat) > 90 || Math.abs(lon) > 180 || km <= 0
      ? null
      : { lat, lon, km: Math.min(km, 20_000) };
  const region = new Set(
    (q.get("region") ?? "")
      .toUpperCase()
      .split(/[\s,;]+/)
      .filter((c) => COUNTRIES.has(c)),
  );
  const country = q.get("country")?.toUpperCase() ?? null;
  return {
    from,
    to,
    categ: q.get("categ") ?? "",
    types: q.get("type") ?? "",
    tags: q.get("tags") ?? "",
    notags: q.get("notags") ?? "",
    region,
    country: country && COUNTRIES.has(country) ? country : null,
    circle,
  };
}

/** Noon of each day of the range (the API names a day by any time in it). */
function days(v: View, clock: ServerClock): number[] {
  return daysBetween(v.from, v.to, MAX_DAYS).map((d) => clock.noonOf(d));
}

function inRegion(v: View, lon: number, lat: number): boolean {
  if (v.region.size === 0) return true;
  for (const c of v.region) {
    const f = COUNTRIES.get(c);
    if (f && geoContains(f, [lon, lat])) return true;
  }
  return false;
}

/** A circle on the map as a closed line of [lon, lat] points. */
function ring(lat: number, lon: number, km: number): number[][] {
  const poly = geoCircle()
    .center([lon, lat])
    .radius((km / EARTH_KM) * (180 / Math.PI))();
  return poly.coordinates[0] ?? [];
}

const geoBase = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  map: "world",
  projection: PROJECTION,
  nameProperty: "name",
  roam: true,
  scaleLimit: { min: 1, max: 60 },
  top: 4,
  bottom: 4,
  left: 4,
  right: 4,
  emphasis: { label: { show: false }, itemStyle: { areaColor: token("--muted") } },
  select: { disabled: true },
  ...extra,
});

function placeLabel(p: { categ: string | null; value: string | null }): string {
  if (p.value === null) return "phone numbers of this country";
  return p.categ ? `${p.categ}: ${p.value}` : p.value;
}

async function render(scope: Scope, clock: ServerClock): Promise<Node[]> {
  const v = readView(clock);
  const span = v.from === v.to ? v.from : `${v.from} to ${v.to}`;
  const list = days(v, clock);
  // The server applies the category (top locations) and, for the hit map, the region's
  // countries; a region's outline is the page's own, so points are kept to it here.
  const countries = v.region.size > 0 && v.region.size <= 64 ? { country: [...v.region].join(",") } : {};
  const typed = pointFilters(v);
  const categ = { ...(v.categ ? { categ: v.categ } : {}), ...typed };
  const [hitsNoted, tops, unfiltered] = await Promise.all([
    Promise.all(list.map((d) => getNoted<[string, number][]>("/_getHitMap", { date: String(d), ...countries, ...typed }))),
    Promise.all(list.map((d) => getJson<[string, number][]>("/_getTopCoord", { date: String(d), ...categ }))),
    // The category list offers every category of the days' top locations.
    v.categ ? Promise.all(list.map((d) => getJson<[string, number][]>("/_getTopCoord", { date: String(d) }))) : null,
  ]);

  const hits = hitsNoted.map((h) => h.data);
  // The days the server said predate the records the type and tag filters read.
  const uncounted = uncountedText(
    list.map((d) => clock.day(d)),
    hitsNoted.map((h) => h.note !== null),
  );

  // Hits per country over the range, limited to the region.
  const perCountry = new Map<string, number>();
  for (const day of hits)
    for (const [c, n] of day) if (v.region.size === 0 || v.region.has(c)) perCountry.set(c, (perCountry.get(c) ?? 0) + n);
  const ranked = [...perCountry.entries()].sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...perCountry.values());

  // Top locations: the days' top six, summed, filtered.
  const perPlace = new Map<string, { p: Place; n: number }>();
  for (const day of tops) {
    for (const [member, n] of day) {
      const p = parsePlace(member);
      if (!p || !inRegion(v, p.lon, p.lat)) continue;
      const e = perPlace.get(member) ?? { p, n: 0 };
      e.n += n;
      perPlace.set(member, e);
    }
  }
  const top = [...perPlace.values()].sort((a, b) => b.n - a.n).slice(0, 6);
  const categs = new Set<string>();
  for (const day of unfiltered ?? tops)
    for (const [m] of day) {
      const c = parsePlace(m)?.categ;
      if (c) categs.add(c);
    }
  fillCategories(categs, v.categ);

  // Hit map.
  const hitHost = el("div", { class: "chart map", role: "img", "aria-label": `Hits per country, ${span}` });
  const hitPanel = panel(`Hits per country, ${span}`, hitHost, hitLegend(ranked, span, v));
  const hitChart = new Chart(hitHost, scope);
  const hitOption: Option = {
    tooltip: tooltip((p) => {
      const name = (p as { name?: string }).name ?? "";
      return tipNode(COUNTRY_NAMES.get(name) ?? name, ["hits", perCountry.get(name) ?? 0]);
    }),
    // Countries without a hit are out of the range: the map's plain colour, not the scale's.
    visualMap: {
      type: "continuous",
      min: 1,
      max: Math.max(2, max),
      calculable: false,
      left: "left",
      bottom: 0,
      text: [String(max), "1"],
      inRange: { color: ["#1d3b5c", token("--accent"), "#ffd166", "#ef5b5b"] },
      outOfRange: { color: token("--panel-edge") },
      textStyle: { color: token("--muted") },
    },
    series: [
      {
        type: "map",
        ...geoBase(),
        // A country without a hit has no value, so it keeps the map's plain colour: a value of
        // 0 would be drawn in the scale's lowest colour, as if it had hits.
        itemStyle: { areaColor: token("--panel-edge"), borderColor: token("--panel") },
        data: [...perCountry.entries()].map(([c, n]) => ({ name: c, value: n })),
      },
    ],
  };
  hitChart.set(hitOption);
  hitChart.on("click", (p) => {
    const name = (p as { name?: string }).name;
    if (name) go({ country: name });
  });
  tools(hitPanel, {
    png: () => hitChart.png(),
    table: (): Table => ({ header: ["country", "name", "hits"], rows: ranked.map(([c, n]) => [c, COUNTRY_NAMES.get(c) ?? c, n]) }),
  });

  // Top locations.
  const topHost = el("div", { class: "chart small-map", role: "img", "aria-label": `Top locations, ${span}` });
  const topList =
    top.length === 0
      ? el("p", { class: "empty" }, `No location for ${span}${v.categ ? ` in ${v.categ}` : ""}.`)
      : el(
          "ol",
          { class: "places" },
          ...top.map((t) =>
            el("li", {}, el("span", { class: "label" }, placeLabel(t.p)), " ", el("span", { class: "num" }, `${t.n} hit(s)`)),
          ),
        );
  const topPanel = panel(`Top locations, ${span}`, topHost, topList);
  const topChart = new Chart(topHost, scope);
  topChart.set({
    geo: geoBase({ roam: false }),
    tooltip: tooltip((p) => {
      const i = (p as { dataIndex?: number }).dataIndex ?? 0;
      const t = top[i];
      return t ? tipNode(`${i + 1}. ${placeLabel(t.p)}`, ["hits", t.n]) : "";
    }),
    series: [
      {
        type: "effectScatter",
        coordinateSystem: "geo",
        symbolSize: 12,
        rippleEffect: { scale: 3 },
        label: { show: true, formatter: (p: { dataIndex: number }) => String(p.dataIndex + 1), color: token("--text") },
        data: top.map((t) => [t.p.lon, t.p.lat, t.n]),
      },
    ],
  });
  tools(topPanel, {
    png: () => topChart.png(),
    table: () => ({
      header: ["rank", "category", "value", "latitude", "longitude", "hits"],
      rows: top.map((t, i) => [i + 1, t.p.categ, t.p.value, t.p.lat, t.p.lon, t.n]),
    }),
  });

  const radius = radiusPanel(scope, v, span, list);
  const parts: HTMLElement[] = [];
  if (uncounted) parts.push(el("p", { class: "note filter-note", role: "note" }, uncounted));
  parts.push(hitPanel);
  if (v.country) parts.push(await countryPanel(v, list));
  parts.push(topPanel, radius);
  return parts;
}

function hitLegend(ranked: [string, number][], span: string, v: View): HTMLElement {
  if (ranked.length === 0) {
    return el("p", { class: "empty" }, `No hit for ${span}${v.region.size > 0 ? " in this region" : ""}.`);
  }
  const total = ranked.reduce((a, [, n]) => a + n, 0);
  return el(
    "p",
    { class: "hint" },
    `${total} hit(s) in ${ranked.length} ${ranked.length === 1 ? "country" : "countries"}; most: `,
    ...ranked
      .slice(0, 5)
      .flatMap(([c, n], i) => [
        i > 0 ? ", " : "",
        el("a", { href: urlWith({ country: c }) }, `${COUNTRY_NAMES.get(c) ?? c} (${c})`),
        ` ${n}`,
      ]),
    v.categ ? ". The hit map counts every category." : ".",
  );
}

/** The points of the chosen country: a radius query around it, kept to its shape. */
async function countryPanel(v: View, list: number[]): Promise<HTMLElement> {
  const code = v.country ?? "";
  const f = COUNTRIES.get(code);
  const name = COUNTRY_NAMES.get(code) ?? code;
  const close = el("a", { href: urlWith({ country: null }) }, "close");
  if (!f) return panel(name, el("p", { class: "empty" }, "Unknown country."));
  const [lon, lat] = geoCentroid(f);
  const [[w, so], [e, n]] = geoBounds(f);
  const km = Math.min(
    20_000,
    Math.ceil(
      EARTH_KM *
        Math.max(
          ...[
            [w, so],
            [e, n],
            [w, n],
            [e, so],
          ].map((c) => geoDistance([lon, lat], c as [number, number])),
        ),
    ),
  );
  const clusters = await radiusQuery(list, lat, lon, km, v);
  const inside = clusters.filter((c) => geoContains(f, [c.lon, c.lat])).sort((a, b) => b.items.length - a.items.length);
  const body = inside.length === 0 ? el("p", { class: "empty" }, `No located attribute in ${name} for this range.`) : clusterTable(inside);
  const p = panel(`${name} (${code}): top coordinates and values`, el("p", { class: "hint" }, close), body);
  tools(p, { table: () => clusterRows(inside) });
  return p;
}

function clusterRows(cs: Cluster[]): Table {
  return {
    header: ["latitude", "longitude", "category", "value"],
    rows: cs.flatMap((c) => c.items.map((i) => [c.lat, c.lon, i.categ, i.value])),
  };
}

function clusterTable(cs: Cluster[]): HTMLElement {
  const body = el("tbody");
  for (const c of cs.slice(0, 200)) {
    body.append(
      el(
        "tr",
        {},
        el("td", { class: "num" }, `${c.lat.toFixed(3)}, ${c.lon.toFixed(3)}`),
        el("td", { class: "num" }, c.items.length),
        el(
          "td",
          {},
          el(
            "span",
            { class: "parts" },
            ...c.items.slice(0, 20).map((i) => el("div", {}, placeLabel(i))),
            c.items.length > 20 ? el("div", {}, `… ${c.items.length - 20} more`) : null,
          ),
        ),
      ),
    );
  }
  return el(
    "div",
    { class: "scroll short", tabindex: "0" },
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, el("th", {}, "Coordinates"), el("th", { class: "num" }, "Values"), el("th", {}, "Category: value"))),
      body,
    ),
  );
}

async function radiusQuery(list: number[], lat: number, lon: number, km: number, v: View): Promise<Cluster[]> {
  const first = list[0];
  const last = list[list.length - 1];
  if (first === undefined || last === undefined) return [];
  const raw = await getJson<[string[], [number, number]][]>("/_getCoordsByRadius", {
    dateStart: String(first),
    dateEnd: String(last),
    centerLat: lat.toFixed(6),
    centerLon: lon.toFixed(6),
    radius: String(km),
    ...(v.categ ? { categ: v.categ } : {}),
    ...pointFilters(v),
  });
  return raw.map(([members, [clon, clat]]) => ({ lon: clon, lat: clat, items: members.map(parseItem) }));
}

function radiusPanel(scope: Scope, v: View, span: string, list: number[]): HTMLElement {
  const host = el("div", { class: "chart map", role: "img", "aria-label": "Radius query map: drag to draw a circle" });
  const form = el(
    "form",
    { class: "filters", "aria-label": "Radius query" },
    el("label", {}, "Latitude ", el("input", { name: "lat", type: "number", value: String(v.circle?.lat ?? 50), placeholder: "50" })),
    el("label", {}, "Longitude ", el("input", { name: "lon", type: "number", value: String(v.circle?.lon ?? 10), placeholder: "10" })),
    el("label", {}, "Radius (km) ", el("input", { name: "km", type: "number", value: String(v.circle?.km ?? 500), placeholder: "500" })),
    el("button", { type: "submit" }, "Query"),
    el("span", { class: "hint" }, "or drag on the map from a centre outwards"),
  );
  for (const i of form.querySelectorAll("input")) {
    i.step = "any";
    i.required = true;
  }
  const result = el(
    "div",
    { "aria-live": "polite" },
    v.circle
      ? el("p", { class: "hint" }, "Querying…")
      : el("p", { class: "empty" }, `Draw or type a circle to list what was located in it, ${span}.`),
  );
  const p = panel(`Radius query, ${span}`, form, host, result);
  const chart = new Chart(host, scope);
  let clusters: Cluster[] = [];
  const draw = (c: View["circle"]): void => {
    // A circle is shown at a zoom where it fills about a third of the map's width.
    const focus = c ? { center: PROJECTION.project([c.lon, c.lat]), zoom: Math.min(60, Math.max(1, 6_000 / c.km)) } : {};
    chart.set({
      geo: geoBase({ roam: "scale", ...focus }),
      tooltip: tooltip((x) => {
        const cl = clusters[(x as { dataIndex?: number }).dataIndex ?? -1];
        return cl
          ? tipNode(
              `${cl.lat.toFixed(3)}, ${cl.lon.toFixed(3)}`,
              ...cl.items.slice(0, 8).map((i): [string, string] => [i.categ ?? "phone", i.value ?? ""]),
            )
          : "";
      }),
      series: [
        {
          type: "lines",
          coordinateSystem: "geo",
          polyline: true,
          silent: true,
          lineStyle: { color: token("--bad"), width: 2 },
          data: c ? [{ coords: ring(c.lat, c.lon, c.km) }] : [],
        },
        {
          type: "scatter",
          coordinateSystem: "geo",
          symbolSize: (d: number[]) => Math.min(24, 6 + 2 * (d[2] ?? 1)),
          itemStyle: { color: token("--warn") },
          data: clusters.map((cl) => [cl.lon, cl.lat, cl.items.length]),
        },
      ],
    });
  };
  // Dragging draws the circle: press at the centre, release at the radius.
  let start: number[] | null = null;
  host.addEventListener("pointerdown", (e) => {
    const g = chart.fromPixel({ geoIndex: 0 }, [e.offsetX, e.offsetY]);
    if (!g || g.some((x) => !Number.isFinite(x))) return;
    start = g;
    host.setPointerCapture(e.pointerId);
  });
  host.addEventListener("pointermove", (e) => {
    if (!start) return;
    const g = chart.fromPixel({ geoIndex: 0 }, [e.offsetX, e.offsetY]);
    if (!g) return;
    draw({
      lon: start[0] ?? 0,
      lat: start[1] ?? 0,
      km: Math.max(1, Math.round(EARTH_KM * geoDistance([start[0] ?? 0, start[1] ?? 0], [g[0] ?? 0, g[1] ?? 0]))),
    });
  });
  host.addEventListener("pointerup", (e) => {
    if (!start) return;
    const g = chart.fromPixel({ geoIndex: 0 }, [e.offsetX, e.offsetY]);
    const c = start;
    start = null;
    if (!g) return;
    const km = Math.round(EARTH_KM * geoDistance([c[0] ?? 0, c[1] ?? 0], [g[0] ?? 0, g[1] ?? 0]));
    if (km < 1) return;
    go({ lat: (c[1] ?? 0).toFixed(4), lon: (c[0] ?? 0).toFixed(4), km: String(km) });
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const d = new FormData(form);
    go({ lat: fieldText(d, "lat"), lon: fieldText(d, "lon"), km: fieldText(d, "km") });
  });
  draw(v.circle);
  tools(p, { png: () => chart.png(), table: () => clusterRows(clusters) });
  const c = v.circle;
  if (c) {
    radiusQuery(list, c.lat, c.lon, c.km, v)
      .then((cs) => {
        clusters = cs.filter((cl) => inRegion(v, cl.lon, cl.lat));
        const n = clusters.reduce((a, cl) => a + cl.items.length, 0);
        fill(
          result,
          el("p", { class: "hint" }, `${n} value(s) at ${clusters.length} place(s) within ${c.km} km of ${c.lat}, ${c.lon}.`),
          clusters.length > 0 ? clusterTable(clusters) : null,
        );
        draw(c);
      })
      .catch((e: unknown) => fill(result, el("p", { class: "error" }, `The radius query failed: ${String(e)}`)));
  }
  return p;
}

function fillCategories(categs: Set<string>, current: string): void {
  const select = document.querySelector<HTMLSelectElement>("#range select[name=categ]");
  if (!select) return;
  const all = new Set(categs);
  if (current) all.add(current);
  fill(select, el("option", { value: "" }, "all"), ...[...all].sort().map((c) => el("option", { value: c }, c)));
  select.value = current;
}

const main = document.getElementById("geo");
const form = document.getElementById("range");
startPage("/geo", ({ clock }) => {
  if (!(main instanceof HTMLElement) || !(form instanceof HTMLFormElement)) return;
  const v = readView(clock);
  setField(form, "from", v.from);
  setField(form, "to", v.to);
  setField(form, "region", [...v.region].join(" "));
  setField(form, "type", v.types);
  setField(form, "tags", v.tags);
  setField(form, "notags", v.notags);
  const codes = document.getElementById("codes");
  if (codes) fill(codes, ...[...countriesByName()].map(([c, n]) => el("option", { value: c }, n)));
  quickRanges(form, clock);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const d = new FormData(form);
    go({
      from: fieldText(d, "from"),
      to: fieldText(d, "to"),
      categ: fieldText(d, "categ"),
      region: fieldText(d, "region").toUpperCase(),
      type: fieldText(d, "type"),
      tags: fieldText(d, "tags"),
      notags: fieldText(d, "notags"),
    });
  });
  const rendering = new Rendering(main, "the geolocation data", (scope) => render(scope, clock));
  void rendering.run();
  void uiSettings().then((u) =>
    form.append(refresher(refreshSeconds(params(), u.geo.update_frequency_minutes), () => rendering.run(), clock)),
  );
});

/** Every country of the map, code and name, by name (the region field's suggestions). */
function countriesByName(): [string, string][] {
  return [...COUNTRY_NAMES.entries()].sort((a, b) => a[1].localeCompare(b[1]));
}
