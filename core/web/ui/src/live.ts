// The live log: what MISP publishes, newest first, as it streams. The history comes from
// /_logs as JSON, then the stream (/_logs as Server-Sent Events) adds rows; EventSource
// reconnects by itself after a restart or a network drop and sends Last-Event-ID, so the
// server resends what was missed and nothing is lost or shown twice.

import { el, fill } from "./dom";
import { getJson, uiSettings, type Status, type UiSettings } from "./api";
import { ItemChart } from "./itemchart";
import { LiveMap, type MapEvent } from "./livemap";
import { liveLists, type Award, type Contributor } from "./ranks";
import { startPage } from "./shell";
import { safeColour } from "./tags";
import { tools } from "./widgets";

/** At most this many rows are kept: a wall screen runs for weeks. */
const MAX_ROWS = 300;
/** `[Dashboard] char_separator`, between a composite column's parts (the original's default
 * until the settings arrive). */
let SEPARATOR = "||";

interface LogEvent {
  log: Record<string, unknown> | unknown[];
  name: string;
  zmqName: string;
}

interface Tag {
  name?: unknown;
  colour?: unknown;
}

function tagBadges(data: unknown): Node {
  let tags: unknown;
  try {
    tags = typeof data === "string" ? JSON.parse(data) : data;
  } catch {
    return el("span", {}, "");
  }
  const out = el("span", { class: "tags" });
  if (!Array.isArray(tags)) return out;
  for (const t of tags as Tag[]) {
    const badge = el("span", { class: "tag" }, typeof t.name === "string" ? t.name : "");
    const colour = safeColour(t.colour);
    if (colour) badge.style.setProperty("--tag", colour);
    out.append(badge);
  }
  return out;
}

function cell(value: unknown, composite: boolean): Node {
  if (value === null || value === undefined || value === "") return el("span", {}, "");
  if (typeof value === "object" && !Array.isArray(value) && (value as { name?: unknown }).name === "Tag") {
    return tagBadges((value as { data?: unknown }).data);
  }
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (composite) {
    const parts = text.split(SEPARATOR).filter((p) => p !== "");
    return el("span", { class: "parts" }, ...parts.map((p) => el("span", {}, p)));
  }
  return el("span", {}, text);
}

/** A filter of the live log, as kept in the URL: `?f=<path>~<eq|ne|has>~<value>`. */
interface Filter {
  path: string;
  op: "eq" | "ne" | "has";
  value: string;
}

export function readFilters(q: URLSearchParams): Filter[] {
  const out: Filter[] = [];
  for (const f of q.getAll("f")) {
    const [path, op, ...rest] = f.split("~");
    const value = rest.join("~");
    if (path && (op === "eq" || op === "ne" || op === "has") && value !== "") out.push({ path, op, value });
  }
  return out;
}

/** The `filters` cookie the server applies to /_logs (the original's format: a field path to a
 * value, or to a list of values, "!" meaning "is not"). "contains" is applied in the page. */
function writeCookie(filters: Filter[]): void {
  const obj: Record<string, string[]> = {};
  for (const f of filters) {
    if (f.op === "has") continue;
    (obj[f.path] ??= []).push(f.op === "ne" ? `!${f.value}` : f.value);
  }
  const flat: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(obj)) flat[k] = v.length === 1 ? (v[0] as string) : v;
  const value = Object.keys(flat).length === 0 ? "" : encodeURIComponent(JSON.stringify(flat));
  document.cookie = `filters=${value}; path=/; SameSite=Strict${value === "" ? "; max-age=0" : ""}`;
}

/** The columns a path is shown in (a composite column shows several paths). */
function columnOf(path: string, header: string[]): number {
  return header.findIndex((h) => h.split(" | ").includes(path));
}

function row(ev: LogEvent, header: string[]): HTMLTableRowElement | null {
  if (ev.name !== "Attribute" && ev.name !== "ObjectAttribute") return null;
  if (Array.isArray(ev.log)) return null;
  const log = ev.log;
  const tr = el("tr", ev.name === "ObjectAttribute" ? { class: "object", title: "an attribute of a MISP object" } : {});
  header.forEach((h, i) => tr.append(el("td", {}, cell(log[String(i)], h.includes(" | ")))));
  tr.append(el("td", {}, ev.name === "ObjectAttribute" ? "object" : "attribute"), el("td", {}, ev.zmqName));
  return tr;
}

function filterBar(header: string[], filters: Filter[]): void {
  const form = document.getElementById("filters");
  const active = document.getElementById("active");
  if (!(form instanceof HTMLFormElement) || !active) return;
  const field = form.elements.namedItem("field");
  if (field instanceof HTMLSelectElement) {
    fill(field, ...header.flatMap((h) => h.split(" | ")).map((p) => el("option", {}, p)));
  }
  const go = (next: Filter[]): void => {
    const q = new URLSearchParams(window.location.search);
    q.delete("f");
    for (const f of next) q.append("f", `${f.path}~${f.op}~${f.value}`);
    window.location.assign(`${window.location.pathname}?${q.toString()}`);
  };
  const words = { eq: "=", ne: "≠", has: "contains" };
  fill(
    active,
    ...filters.map((f, i) => {
      const remove = el("button", { type: "button", "aria-label": `Remove the filter ${f.path} ${words[f.op]} ${f.value}` }, "×");
      remove.addEventListener("click", () => go(filters.filter((_, j) => j !== i)));
      return el("span", { class: "chip" }, `${f.path} ${words[f.op]} ${f.value} `, remove);
    }),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const text = (name: string): string => {
      const v = data.get(name);
      return typeof v === "string" ? v : "";
    };
    const op = text("op");
    const f: Filter = {
      path: text("field"),
      op: op === "ne" || op === "has" ? op : "eq",
      value: text("value").trim(),
    };
    if (f.value !== "") go([...filters, f]);
  });
}

/** A log row's cell text by column. */
function cellText(ev: LogEvent, col: number): string {
  if (Array.isArray(ev.log) || col < 0) return "";
  const v = ev.log[String(col)];
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : "";
}

/** "YYYY-MM-DD HH:MM:SS" in the server's zone, as the log shows times, to an epoch. */
function logTime(text: string, offset: number): number | undefined {
  const t = Date.parse(`${text.replace(" ", "T")}Z`);
  return Number.isNaN(t) ? undefined : t / 1000 - offset;
}

/** The map, the item chart, and the last contributors and awards. */
async function sidePanels(u: UiSettings, s: Status): Promise<{ plot: ItemChart; itemCol: (h: string[]) => number }> {
  const mapHost = document.getElementById("map");
  const mapNow = document.getElementById("map-now");
  const plotHost = document.getElementById("plot");
  const plotTitle = document.getElementById("plot-title");
  const people = document.getElementById("people");
  if (!mapHost || !mapNow || !plotHost || !plotTitle || !people) throw new Error("the page is incomplete");
  const d = u.dashboard;
  const map = new LiveMap(mapHost, mapNow, d.rotation_wait_time, d.max_img_rotation);
  const mapPanel = mapHost.closest("section");
  if (mapPanel) {
    tools(mapPanel, {
      png: () => map.png(),
      table: () => ({ header: ["longitude", "latitude", "what", "place"], rows: map.snapshot().points.map((p) => [p.lon, p.lat, p.label, p.place]) }),
      json: () => map.snapshot(),
    });
  }
  const skew = s.now - Date.now() / 1000;
  const bare = d.item_to_plot.replace(/^(Attribute|Event)\./, "");
  const item = bare.charAt(0).toUpperCase() + bare.slice(1);
  plotTitle.textContent = `${item} per hour, last ${d.hours_spanned} h`;
  plotTitle.closest("section")?.setAttribute("aria-label", `${item} per hour`);
  const plot = new ItemChart(plotHost, d.hours_spanned, skew, s.utc_offset_seconds);
  const plotPanel = plotHost.closest("section");
  if (plotPanel) {
    tools(plotPanel, {
      png: () => plot.png(),
      table: () => {
        const t = plot.table();
        return { header: ["hour (epoch)", ...t.series.map(([n]) => n)], rows: t.hours.map((h, i) => [h, ...t.series.map(([, v]) => v[i] ?? 0)]) };
      },
    });
  }

  const [maps, last, awards] = await Promise.all([
    getJson<MapEvent[]>("/_maps"),
    getJson<Contributor[]>("/_getLastContributors"),
    getJson<Award[]>("/_getLatestAwards"),
  ]);
  // The history is newest first: the oldest goes in first and fades first.
  const life = Math.max(30, d.rotation_wait_time * Math.max(1, d.max_img_rotation));
  [...maps].reverse().forEach((m, i, all) => map.add(m, (life * (all.length - i)) / (all.length + 1)));
  const mapStream = new EventSource("/_maps");
  mapStream.onmessage = (m: MessageEvent<string>) => {
    try {
      map.add(JSON.parse(m.data) as MapEvent);
    } catch {
      // A malformed point is skipped; the stream goes on.
    }
  };
  map.flush();
  fill(people, ...liveLists(u, s.utc_offset_seconds, last.slice(0, 10), awards.slice(0, 20)));
  const itemCol = (header: string[]): number => header.findIndex((h) => h.split(" | ").includes(d.item_to_plot));
  return { plot, itemCol };
}

async function start(s: Status): Promise<void> {
  const table = document.getElementById("log");
  const pause = document.getElementById("pause");
  const count = document.getElementById("count");
  const main = document.getElementById("live");
  if (!(table instanceof HTMLTableElement) || !pause || !count || !main) return;
  const body = table.tBodies[0] ?? table.createTBody();
  // The URL's filters go to the cookie first: the server filters the history and the stream.
  const filters = readFilters(new URLSearchParams(window.location.search));
  writeCookie(filters);
  const u = await uiSettings();
  SEPARATOR = u.dashboard.char_separator || SEPARATOR;
  const [header, history, side] = await Promise.all([getJson<string[]>("/_get_log_head"), getJson<LogEvent[]>("/_logs"), sidePanels(u, s)]);
  const plotCol = side.itemCol(header);
  const timeCol = header.indexOf("Attribute.timestamp");
  const plotRow = (ev: LogEvent): void => {
    if (ev.name !== "Attribute" && ev.name !== "ObjectAttribute") return;
    side.plot.add(cellText(ev, plotCol), timeCol >= 0 ? logTime(cellText(ev, timeCol), s.utc_offset_seconds) : undefined);
  };
  history.forEach(plotRow);
  side.plot.flush();
  filterBar(header, filters);
  const contains = filters
    .filter((f) => f.op === "has")
    .map((f) => ({ col: columnOf(f.path, header), text: f.value.toLowerCase() }))
    .filter((f) => f.col >= 0);
  const passes = (tr: HTMLTableRowElement): boolean =>
    contains.every((f) => (tr.cells[f.col]?.textContent ?? "").toLowerCase().includes(f.text));
  fill(table.tHead ?? table.createTHead(), el("tr", {}, ...header.map((h) => el("th", {}, h.replace(/^Attribute\./, "").replaceAll(" | Attribute.", " | "))), el("th", {}, "Kind"), el("th", {}, "Feed")));
  const logPanel = table.closest("section");
  if (logPanel) {
    tools(logPanel, {
      table: () => ({
        header: [...header, "kind", "feed"],
        rows: [...body.rows].map((r) => [...r.cells].map((c) => c.textContent ?? "")),
      }),
    });
  }
  const trim = (): void => {
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    count.textContent = `${body.rows.length} row(s)`;
  };
  for (const ev of history) {
    const tr = row(ev, header);
    if (tr && passes(tr)) body.append(tr);
  }
  trim();
  main.setAttribute("aria-busy", "false");

  let paused = false;
  let held: LogEvent[] = [];
  // Rows that arrive within one frame go in together, and only the newest MAX_ROWS of them:
  // at a hundred messages a second the table is laid out once a frame, not a hundred times.
  let queued: LogEvent[] = [];
  const flushRows = (): void => {
    const batch = queued.slice(-MAX_ROWS);
    queued = [];
    const frag = document.createDocumentFragment();
    for (let i = batch.length - 1; i >= 0; i--) {
      const ev = batch[i];
      const tr = ev ? row(ev, header) : null;
      if (!tr || !passes(tr)) continue;
      // The arrival highlight only when rows come slowly enough to be read one by one.
      if (batch.length <= 3) tr.classList.add("new");
      frag.append(tr);
    }
    body.prepend(frag);
    trim();
  };
  const show = (ev: LogEvent): void => {
    if (queued.length === 0) window.requestAnimationFrame(flushRows);
    queued.push(ev);
  };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      for (const ev of held) show(ev);
      held = [];
    }
    pause.textContent = paused ? "Resume" : "Pause";
  });
  const stream = new EventSource("/_logs");
  stream.onmessage = (m: MessageEvent<string>) => {
    let ev: LogEvent;
    try {
      ev = JSON.parse(m.data) as LogEvent;
    } catch {
      return;
    }
    plotRow(ev);
    if (paused) {
      held.push(ev);
      if (held.length > MAX_ROWS) held = held.slice(-MAX_ROWS);
      pause.textContent = `Resume (${held.length} new)`;
      return;
    }
    show(ev);
  };
}

startPage("/", (s) => {
  start(s).catch((e: unknown) => {
    const main = document.getElementById("live");
    if (main) {
      main.setAttribute("aria-busy", "false");
      fill(main, el("p", { class: "error" }, `Cannot load the live page: ${String(e)}`));
    }
  });
});
