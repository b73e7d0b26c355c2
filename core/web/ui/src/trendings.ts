// /trendings: the most active events, categories and tags over a date range, with sightings
// and discussions per day. The range and the number shown live in the URL (bookmarkable);
// "today" is the server's day, not the browser's.

import { el, fill } from "./dom";
import { getJson, type Status } from "./api";
import { mountShell } from "./shell";
import { safeColour } from "./tags";
import { bars, dateParam, DAY, noonOf, panel, serverDay } from "./widgets";

type Ranked = [string, number][];
type PerDay<T> = [number, T][];
interface Tag {
  name: string;
  colour?: string;
}

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

interface Range {
  from: string;
  to: string;
  top: number;
}

function readRange(s: Status): Range {
  const q = new URLSearchParams(window.location.search);
  const today = serverDay(s.now, s.utc_offset_seconds);
  const to = dateParam(q, "to") ?? today;
  const from = dateParam(q, "from") ?? serverDay(noonOf(to, 0) - 7 * DAY, 0);
  // `maxNum` is what the original page used in its links.
  const top = Number(q.get("top") ?? q.get("maxNum"));
  return { from, to, top: [5, 10, 15, 20].includes(top) ? top : 10 };
}

async function render(main: HTMLElement, s: Status, r: Range): Promise<void> {
  const off = s.utc_offset_seconds;
  const params = { dateS: String(noonOf(r.from, off)), dateE: String(noonOf(r.to, off)), topNum: String(r.top) };
  const range = { dateS: params.dateS, dateE: params.dateE };
  const [events, categs, tags, sightings, disc] = await Promise.all([
    getJson<PerDay<Ranked>>("/_getTrendingEvents", params),
    getJson<PerDay<Ranked>>("/_getTrendingCategs", params),
    getJson<PerDay<[Tag, number][]>>("/_getTrendingTags", params),
    getJson<PerDay<{ sightings: number; false_positive: number }>>("/_getTrendingSightings", range),
    getJson<PerDay<Ranked>>("/_getTrendingDisc", range),
  ]);
  const span = `${r.from} to ${r.to}`;
  const nothing = `No data from ${span}.`;
  const tagRows = totals(tags, (t) => t.name)
    .slice(0, r.top)
    .map((t) => {
      const badge = el("span", { class: "tag" }, t.label);
      const colour = safeColour(t.item.colour);
      if (colour) badge.style.setProperty("--tag", colour);
      return { label: badge, count: t.count };
    });
  const perDay = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Day"), el("th", { class: "num" }, "Sightings"), el("th", { class: "num" }, "False positives"), el("th", { class: "num" }, "Discussions"))));
  const discByDay = new Map(disc.map(([t, items]) => [t, items.reduce((a, [, n]) => a + n, 0)]));
  const body = el("tbody");
  for (const [t, v] of [...sightings].sort((a, b) => a[0] - b[0])) {
    body.append(el("tr", {}, el("td", {}, serverDay(t, off)), el("td", { class: "num" }, v.sightings), el("td", { class: "num" }, v.false_positive), el("td", { class: "num" }, discByDay.get(t) ?? 0)));
  }
  perDay.append(body);
  main.setAttribute("aria-busy", "false");
  fill(
    main,
    panel(`Most active events, ${span}`, bars(totals(events, (e) => e).slice(0, r.top).map((e) => ({ label: e.label, count: e.count })), nothing)),
    panel(`Most active categories, ${span}`, bars(totals(categs, (c) => c).slice(0, r.top).map((c) => ({ label: c.label, count: c.count })), nothing)),
    panel(`Most popular tags, ${span}`, bars(tagRows, nothing)),
    panel(`Sightings and discussions per day`, sightings.length > 0 ? perDay : el("p", { class: "empty" }, nothing)),
  );
}

const main = document.getElementById("trendings");
const form = document.getElementById("range");
const shell = mountShell("/trendings");
let started = false;
shell.onStatus((s) => {
  if (started || !(main instanceof HTMLElement) || !(form instanceof HTMLFormElement)) return;
  started = true;
  const r = readRange(s);
  const set = (name: string, v: string): void => {
    const input = form.elements.namedItem(name);
    if (input instanceof HTMLInputElement || input instanceof HTMLSelectElement) input.value = v;
  };
  set("from", r.from);
  set("to", r.to);
  set("top", String(r.top));
  const today = serverDay(s.now, s.utc_offset_seconds);
  for (const b of form.querySelectorAll<HTMLButtonElement>("button[data-days]")) {
    b.addEventListener("click", () => {
      const days = Number(b.dataset.days);
      set("to", today);
      set("from", serverDay(noonOf(today, 0) - (days - 1) * DAY, 0));
      form.requestSubmit();
    });
  }
  // Submitting navigates to the same page with the range in the URL (bookmarkable); the
  // browser does it, no script needed.
  render(main, s, r).catch((e: unknown) => {
    main.setAttribute("aria-busy", "false");
    fill(main, el("p", { class: "error" }, `Cannot load the trendings: ${String(e)}`));
  });
});
