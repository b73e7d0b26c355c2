// /trendings: the most active events, categories and tags over a date range (top N, tag
// colours, tag include/exclude patterns such as "tlp:*" or "misp-galaxy:*"), each with its
// counts per day; sightings and false positives, and discussions, per day; and the timeline of
// when each event, category or tag was active, linked to MISP's search. The range, the top N,
// the patterns and the timeline's subject live in the URL (bookmarkable); "today" is the
// server's day.

import { el } from "./dom";
import { getJson, getNoted, uiSettings, type UiSettings } from "./api";
import { tagPatterns } from "./narrow";
import { Chart, tipNode, token, tooltip, type Scope } from "./charts";
import { tools, type Table } from "./export";
import { bars, panel, quickRanges, refreshSeconds, refresher, Rendering, setField, widePanel } from "./panels";
import { startPage } from "./shell";
import { safeColour } from "./tags";
import { addDays, DAY, type ServerClock } from "./time";
import { dayParam, go, params } from "./urlstate";

type Ranked = [string, number][];
type PerDay<T> = [number, T][];
interface Tag {
  name: string;
  colour?: string;
}
interface Segment {
  name: string;
  start: number;
  end: number;
}
type Subject = "events" | "categs" | "tags";

/** Sums each label's counts over the days, most first (ties: first seen first). */
function totals<T>(days: PerDay<[T, number][]>, key: (t: T) => string): { label: string; item: T; count: number }[] {
  const acc = new Map<string, { label: string; item: T; count: number }>();
  for (const [, items] of days) {
    for (const [item, n] of items) {
      const label = key(item);
      const e = acc.get(label) ?? { label, item, count: 0 };
      e.count += n;
      acc.set(label, e);
    }
  }
  return [...acc.values()].sort((a, b) => b.count - a.count);
}

interface View {
  from: string;
  to: string;
  top: number;
  include: string;
  exclude: string;
  subject: Subject;
}

/** Tag patterns: space- or comma-separated globs ("tlp:*"), matched whole and without case. */
export function tagMatcher(include: string, exclude: string): (name: string) => boolean {
  const compile = (text: string): RegExp[] =>
    text
      .split(/[\s,]+/)
      .filter((p) => p !== "")
      .map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")}$`, "i"));
  const inc = compile(include);
  const exc = compile(exclude);
  return (name) => (inc.length === 0 || inc.some((r) => r.test(name))) && !exc.some((r) => r.test(name));
}

/** What the URL asks for; without dates, the week to the server's today (read again at every
 * refresh, so that a wall screen moves on with the days). */
function readView(clock: ServerClock): View {
  const q = params();
  const to = dayParam(q, "to") ?? clock.today();
  const from = dayParam(q, "from") ?? addDays(to, -7);
  // `maxNum` is what the original page used in its links.
  const top = Number(q.get("top") ?? q.get("maxNum"));
  const subject = q.get("timeline");
  return {
    from,
    to,
    top: [5, 10, 15, 20].includes(top) ? top : 10,
    include: q.get("tags") ?? "",
    exclude: q.get("notags") ?? "",
    subject: subject === "categs" || subject === "tags" ? subject : "events",
  };
}

/** A tag's colour for lines and stripes, if it stands out enough from the panel's
 * background (a white tag on the light theme does not): else the chart's own colours. */
function readable(colour: string | null): string | null {
  if (!colour) return null;
  const lum = (hex: string): number => {
    const [r, g, b] = [1, 3, 5]
      .map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * (r ?? 0) + 0.7152 * (g ?? 0) + 0.0722 * (b ?? 0);
  };
  const bg = token("--panel");
  if (!/^#[0-9a-fA-F]{6}$/.test(bg)) return colour;
  const [a, b] = [lum(colour), lum(bg)].sort((x, y) => y - x);
  return ((a ?? 0) + 0.05) / ((b ?? 0) + 0.05) >= 1.8 ? colour : null;
}

/** A tag member of the timeline is the tag's JSON: its name, or the text as it is. */
function tagName(member: string): string {
  try {
    const t = JSON.parse(member) as { name?: unknown };
    return typeof t.name === "string" ? t.name : member;
  } catch {
    return member;
  }
}

/** A link to MISP's search for this event title or tag (URL-encoded), when MISP's address
 * is configured. */
function mispLink(u: UiSettings, subject: Subject, name: string): Node {
  if (!u.misp_web_url || subject === "categs") return document.createTextNode(name);
  const base = u.misp_web_url.replace(/\/+$/, "");
  const path = subject === "tags" ? "tags/index/searchall:" : "events/index/searchall:";
  const a = el("a", { href: `${base}/${path}${encodeURIComponent(name)}`, title: `Search MISP for ${name}` }, name);
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

/** One line per item over the days, as a chart. */
function perDayChart(
  scope: Scope,
  host: HTMLElement,
  days: number[],
  clock: ServerClock,
  items: { label: string; colour?: string | null; counts: number[] }[],
  empty: string,
): Chart | null {
  if (items.length === 0) {
    host.replaceWith(el("p", { class: "empty" }, empty));
    return null;
  }
  const chart = new Chart(host, scope);
  chart.set({
    grid: { left: 36, right: 12, top: 28, bottom: 24 },
    legend: { type: "scroll", top: 0 },
    tooltip: tooltip((p) => {
      const list = p as { axisValueLabel?: string; seriesName?: string; value?: number }[];
      return tipNode(
        list[0]?.axisValueLabel ?? "",
        ...list.filter((i) => (i.value ?? 0) !== 0).map((i): [string, number] => [i.seriesName ?? "", i.value ?? 0]),
      );
    }, "axis"),
    xAxis: { type: "category", data: days.map((d) => clock.day(d).slice(5)) },
    yAxis: { type: "value", minInterval: 1 },
    series: items.map((i) => ({
      name: i.label,
      type: "line",
      data: i.counts,
      showSymbol: days.length < 40,
      ...(i.colour ? { itemStyle: { color: i.colour }, lineStyle: { color: i.colour } } : {}),
    })),
  });
  return chart;
}

interface Ranking {
  title: string;
  rows: { label: string; count: number; colour?: string | null }[];
  perDay: Map<string, Map<number, number>>;
}

function rankingPanel(
  scope: Scope,
  r: Ranking,
  days: number[],
  clock: ServerClock,
  top: number,
  nothing: string,
  badge: boolean,
): HTMLElement {
  const shown = r.rows.slice(0, top);
  const list = bars(
    shown.map((row) => {
      if (!badge) return { label: row.label, count: row.count };
      const b = el("span", { class: "tag" }, row.label);
      if (row.colour) b.style.setProperty("--tag", row.colour);
      return { label: b, count: row.count };
    }),
    nothing,
  );
  const host = el("div", { class: "chart", role: "img", "aria-label": `${r.title} per day` });
  const p = panel(r.title, list, host);
  const chart = perDayChart(
    scope,
    host,
    days,
    clock,
    shown.map((row) => ({ label: row.label, colour: row.colour ?? null, counts: days.map((d) => r.perDay.get(row.label)?.get(d) ?? 0) })),
    nothing,
  );
  tools(p, {
    ...(chart ? { png: () => chart.png() } : {}),
    table: (): Table => ({
      header: ["name", "total", ...days.map((d) => clock.day(d))],
      rows: shown.map((row) => [row.label, row.count, ...days.map((d) => r.perDay.get(row.label)?.get(d) ?? 0)]),
    }),
  });
  return p;
}

function perDayOf<T>(days: PerDay<[T, number][]>, key: (t: T) => string): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const [d, items] of days) {
    for (const [item, n] of items) {
      const m = out.get(key(item)) ?? new Map<number, number>();
      m.set(d, (m.get(d) ?? 0) + n);
      out.set(key(item), m);
    }
  }
  return out;
}

/** When each item was active: one row per item, its segments on the range's days. */
function timelinePanel(
  u: UiSettings,
  v: View,
  segs: Segment[],
  first: number,
  last: number,
  clock: ServerClock,
  keepTag: (n: string) => boolean,
): HTMLElement {
  const names = v.subject === "tags" ? segs.map((s) => ({ ...s, name: tagName(s.name) })).filter((s) => keepTag(s.name)) : segs;
  const byName = new Map<string, Segment[]>();
  for (const s of names) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  const span = Math.max(DAY, last + DAY - first);
  const rows = [...byName.entries()].sort(
    (a, b) => Math.min(...a[1].map((s) => s.start)) - Math.min(...b[1].map((s) => s.start)) || a[0].localeCompare(b[0]),
  );
  const body = el("tbody");
  for (const [name, list] of rows.slice(0, 200)) {
    const track = el("div", { class: "track" });
    for (const s of list) {
      const seg = el("span", { class: "seg", title: `${name}: ${clock.day(s.start)} to ${clock.day(s.end - DAY)}` });
      seg.style.left = `${(100 * Math.max(0, s.start - first)) / span}%`;
      seg.style.width = `${Math.max(0.5, (100 * (Math.min(s.end, last + DAY) - Math.max(s.start, first))) / span)}%`;
      track.append(seg);
    }
    body.append(el("tr", {}, el("th", { class: "name" }, mispLink(u, v.subject, name)), el("td", {}, track)));
  }
  const choose = el("form", { class: "filters", "aria-label": "Timeline subject" });
  const select = el(
    "select",
    { name: "timeline", "aria-label": "Show the timeline of" },
    el("option", { value: "events" }, "events"),
    el("option", { value: "categs" }, "categories"),
    el("option", { value: "tags" }, "tags"),
  );
  select.value = v.subject;
  select.addEventListener("change", () => go({ timeline: select.value }));
  choose.append(el("label", {}, "Show ", select));
  const p = widePanel(
    "Timeline",
    choose,
    rows.length === 0
      ? el("p", { class: "empty" }, `Nothing from ${v.from} to ${v.to}.`)
      : el(
          "div",
          { class: "scroll short", tabindex: "0" },
          el(
            "table",
            { class: "timeline" },
            el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, `${v.from} … ${v.to}`))),
            body,
          ),
        ),
    u.misp_web_url || v.subject === "categs"
      ? null
      : el("p", { class: "hint" }, "Set [RedisGlobal] misp_web_url to link these to MISP's search."),
  );
  tools(p, {
    table: () => ({ header: ["name", "start", "end"], rows: names.map((s) => [s.name, clock.day(s.start), clock.day(s.end - DAY)]) }),
    json: () => names,
  });
  return p;
}

async function render(scope: Scope, clock: ServerClock, u: UiSettings): Promise<Node[]> {
  const v = readView(clock);
  // The routes rank with a decay over all the days: ask for enough to filter tags after.
  const q = { dateS: String(clock.noonOf(v.from)), dateE: String(clock.noonOf(v.to)), topNum: String(v.top) };
  const range = { dateS: q.dateS, dateE: q.dateE };
  const [eventsNoted, categs, tags, sightings, disc, timeline] = await Promise.all([
    // The events whose tags (the event's own) pass the patterns; the server names the days
    // that predate the records this reads.
    getNoted<PerDay<Ranked>>("/_getTrendingEvents", { ...q, ...tagPatterns(v) }),
    getJson<PerDay<Ranked>>("/_getTrendingCategs", q),
    // The server applies the tag patterns (`tags`, `not_tags`); it ranks the whole day.
    getJson<PerDay<[Tag, number][]>>("/_getTrendingTags", { ...q, topNum: "1000", ...tagPatterns(v) }),
    getJson<PerDay<{ sightings: number; false_positive: number }>>("/_getTrendingSightings", range),
    getJson<PerDay<Ranked>>("/_getTrendingDisc", range),
    getJson<Segment[]>("/_getGenericTrendingOvertime", { ...range, choice: v.subject }),
  ]);
  const events = eventsNoted.data;
  const span = v.from === v.to ? v.from : `${v.from} to ${v.to}`;
  const nothing = `No data from ${span}.`;
  const days = [...new Set([...sightings, ...events].map(([d]) => d))].sort((a, b) => a - b);
  // The timeline's tags are filtered here: its route takes no patterns.
  const keepTag = tagMatcher(v.include, v.exclude);
  const tagDays: PerDay<[Tag, number][]> = tags.map(([d, list]) => [d, list.filter(([t]) => typeof t.name === "string")]);
  const tagRanking: Ranking = {
    title: `Most popular tags, ${span}`,
    rows: totals(tagDays, (t) => t.name).map((t) => ({ label: t.label, count: t.count, colour: readable(safeColour(t.item.colour)) })),
    perDay: perDayOf(tagDays, (t) => t.name),
  };
  const patterns =
    v.include || v.exclude
      ? el("p", { class: "hint" }, `Tags${v.include ? ` matching ${v.include}` : ""}${v.exclude ? ` except ${v.exclude}` : ""}.`)
      : null;

  const sightHost = el("div", { class: "chart", role: "img", "aria-label": "Sightings and false positives per day" });
  const sightPanel = panel(`Sightings and false positives, ${span}`, sightHost);
  const sorted = [...sightings].sort((a, b) => a[0] - b[0]);
  const sightChart = sorted.every(([, x]) => x.sightings === 0 && x.false_positive === 0)
    ? (sightHost.replaceWith(el("p", { class: "empty" }, nothing)), null)
    : new Chart(sightHost, scope);
  sightChart?.set({
    grid: { left: 40, right: 12, top: 28, bottom: 24 },
    legend: { top: 0 },
    tooltip: tooltip((p) => {
      const list = p as { axisValueLabel?: string; seriesName?: string; value?: number }[];
      return tipNode(list[0]?.axisValueLabel ?? "", ...list.map((i): [string, number] => [i.seriesName ?? "", Math.abs(i.value ?? 0)]));
    }, "axis"),
    xAxis: { type: "category", data: sorted.map(([d]) => clock.day(d).slice(5)) },
    yAxis: { type: "value", minInterval: 1 },
    // False positives below the axis, as the original drew them.
    series: [
      { name: "sightings", type: "bar", stack: "s", data: sorted.map(([, x]) => x.sightings), itemStyle: { color: token("--ok") } },
      {
        name: "false positives",
        type: "bar",
        stack: "s",
        data: sorted.map(([, x]) => -x.false_positive),
        itemStyle: { color: token("--bad") },
      },
    ],
  });
  tools(sightPanel, {
    ...(sightChart ? { png: () => sightChart.png() } : {}),
    table: () => ({
      header: ["day", "sightings", "false positives"],
      rows: sorted.map(([d, x]) => [clock.day(d), x.sightings, x.false_positive]),
    }),
  });

  const discSorted = [...disc].sort((a, b) => a[0] - b[0]).map(([d, items]): [number, number] => [d, items.reduce((a, [, n]) => a + n, 0)]);
  const discHost = el("div", { class: "chart", role: "img", "aria-label": "Discussions per day" });
  const discPanel = panel(`Discussions, ${span}`, discHost);
  const discChart = discSorted.every(([, n]) => n === 0)
    ? (discHost.replaceWith(el("p", { class: "empty" }, `No discussion from ${span}.`)), null)
    : new Chart(discHost, scope);
  discChart?.set({
    grid: { left: 40, right: 12, top: 16, bottom: 24 },
    tooltip: tooltip((p) => {
      const list = p as { axisValueLabel?: string; value?: number }[];
      return tipNode(list[0]?.axisValueLabel ?? "", ["posts", list[0]?.value ?? 0]);
    }, "axis"),
    xAxis: { type: "category", data: discSorted.map(([d]) => clock.day(d).slice(5)) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: "posts", type: "line", areaStyle: { opacity: 0.2 }, data: discSorted.map(([, n]) => n) }],
  });
  tools(discPanel, {
    ...(discChart ? { png: () => discChart.png() } : {}),
    table: () => ({ header: ["day", "posts"], rows: discSorted.map(([d, n]) => [clock.day(d), n]) }),
  });

  const tagPanel = rankingPanel(
    scope,
    tagRanking,
    days,
    clock,
    v.top,
    v.include || v.exclude ? `No tag matching these patterns from ${span}.` : nothing,
    true,
  );
  if (patterns) tagPanel.querySelector("h2")?.after(patterns);
  const eventPanel = rankingPanel(
    scope,
    {
      title: `Most active events, ${span}`,
      rows: totals(events, (e) => e).map((e) => ({ label: e.label, count: e.count })),
      perDay: perDayOf(events, (e) => e),
    },
    days,
    clock,
    v.top,
    v.include || v.exclude ? `No event tagged as these patterns ask from ${span}.` : nothing,
    false,
  );
  const eventNotes = [
    patterns
      ? el("p", { class: "hint" }, `Events${v.include ? ` tagged ${v.include}` : ""}${v.exclude ? `, none tagged ${v.exclude}` : ""}.`)
      : null,
    eventsNoted.note ? el("p", { class: "note filter-note", role: "note" }, eventsNoted.note) : null,
  ].filter((n): n is HTMLParagraphElement => n !== null);
  eventPanel.querySelector("h2")?.after(...eventNotes);
  return [
    eventPanel,
    rankingPanel(
      scope,
      {
        title: `Most active categories, ${span}`,
        rows: totals(categs, (c) => c).map((c) => ({ label: c.label, count: c.count })),
        perDay: perDayOf(categs, (c) => c),
      },
      days,
      clock,
      v.top,
      nothing,
      false,
    ),
    tagPanel,
    sightPanel,
    discPanel,
    timelinePanel(u, v, timeline, days[0] ?? clock.noonOf(v.from), days[days.length - 1] ?? clock.noonOf(v.to), clock, keepTag),
  ];
}

const main = document.getElementById("trendings");
const form = document.getElementById("range");
startPage("/trendings", ({ clock }) => {
  if (!(main instanceof HTMLElement) || !(form instanceof HTMLFormElement)) return;
  const v = readView(clock);
  setField(form, "from", v.from);
  setField(form, "to", v.to);
  setField(form, "top", String(v.top));
  setField(form, "tags", v.include);
  setField(form, "notags", v.exclude);
  setField(form, "timeline", v.subject);
  quickRanges(form, clock);
  // Submitting navigates to the same page with the range in the URL (bookmarkable); the
  // browser does it, no script needed.
  void uiSettings().then((u) => {
    const rendering = new Rendering(main, "the trendings", (scope) => render(scope, clock, u));
    void rendering.run();
    form.append(refresher(refreshSeconds(params(), u.geo.update_frequency_minutes), () => rendering.run(), clock));
  });
});
