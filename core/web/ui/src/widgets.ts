// Panels and HTML charts every page uses: a titled panel, a ranked bar list, the server's
// calendar. Built from elements and text only (see dom.ts); sizes are set through the CSSOM,
// which the CSP allows, never through style attributes.

import { el } from "./dom";

export const DAY = 86400;

/** A titled panel of the page grid. */
export function panel(title: string, ...body: Node[]): HTMLElement {
  return el("section", { class: "panel", "aria-label": title }, el("h2", {}, title), ...body);
}

/** A ranked list: label, bar proportional to the largest, count. */
export function bars(rows: { label: Node | string; count: number; shown?: string }[], empty: string): HTMLElement {
  if (rows.length === 0) return el("p", { class: "empty" }, empty);
  const max = Math.max(...rows.map((r) => Math.abs(r.count)), 1);
  const list = el("ol", { class: "bars" });
  for (const r of rows) {
    const bar = el("span", { class: "bar" });
    bar.style.width = `${(100 * Math.max(r.count, 0)) / max}%`;
    // The full text on hover: long names are cut to the column.
    const title = typeof r.label === "string" ? r.label : (r.label.textContent ?? "");
    list.append(
      el(
        "li",
        {},
        el("span", { class: "label", title }, r.label),
        el("span", { class: "track" }, bar),
        el("span", { class: "num" }, r.shown ?? String(Math.round(r.count))),
      ),
    );
  }
  return list;
}

/** The server's calendar day of `epoch` as YYYY-MM-DD. */
export function serverDay(epoch: number, offset: number): string {
  return new Date((epoch + offset) * 1000).toISOString().slice(0, 10);
}

/** Noon of a server-local day, as the epoch the API takes (any time of the day names it). */
export function noonOf(day: string, offset: number): number {
  return Date.parse(`${day}T12:00:00Z`) / 1000 - offset;
}

/** A YYYY-MM-DD date from the URL, if it is one. */
export function dateParam(q: URLSearchParams, name: string): string | null {
  const v = q.get(name);
  return v !== null && /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(v)) ? v : null;
}
