// Panels and HTML charts every page uses: a titled panel, a ranked bar list, the server's
// calendar. Built from elements and text only (see dom.ts); sizes are set through the CSSOM,
// which the CSP allows, never through style attributes.

import Papa from "papaparse";
import { el } from "./dom";

export const DAY = 86400;

/** A titled panel of the page grid. */
export function panel(title: string, ...body: (Node | null)[]): HTMLElement {
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

/** The server's local time of `epoch`, as the day keys see it: "YYYY-MM-DD HH:MM:SS". */
export function serverTime(epoch: number, offset: number): string {
  return new Date((epoch + offset) * 1000).toISOString().slice(0, 19).replace("T", " ");
}

/** The server's calendar day of `epoch` as YYYY-MM-DD. */
export function serverDay(epoch: number, offset: number): string {
  return serverTime(epoch, offset).slice(0, 10);
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

/** A panel's data as a table, for the CSV export. */
export interface Table {
  header: string[];
  rows: (string | number | null)[][];
}

export interface Exports {
  /** The chart, when the panel draws one (PNG export). */
  png?: () => string | null;
  table?: () => Table;
  /** The data as the API gave it (JSON export); the table's rows otherwise. */
  json?: () => unknown;
}

function download(name: string, href: string): void {
  const a = el("a", { href });
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}

function downloadBlob(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  download(name, url);
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A file name from a panel title: lower case, dashes. */
function slug(title: string): string {
  return title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60) || "panel";
}

/** Four corners pointing out: the fullscreen symbol, drawn (no icon font is bundled). */
function fullscreenIcon(): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "12");
  svg.setAttribute("height", "12");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  svg.append(path);
  return svg;
}

/** Adds the panel's tools to its title: fullscreen, and PNG / CSV / JSON of what it shows.
 * CSV cells that a spreadsheet would run as a formula are quoted (papaparse escapeFormulae):
 * the values come from MISP. */
export function tools(section: HTMLElement, exports: Exports = {}): void {
  const h2 = section.querySelector("h2");
  if (!h2) return;
  const title = section.getAttribute("aria-label") ?? h2.textContent ?? "panel";
  const name = slug(title);
  const bar = el("span", { class: "tools" });
  const button = (label: string | Node, aria: string, act: () => void): void => {
    const b = el("button", { type: "button", "aria-label": `${aria}: ${title}`, title: aria }, label);
    b.addEventListener("click", act);
    bar.append(b);
  };
  button(fullscreenIcon(), "Fullscreen", () => {
    if (document.fullscreenElement === section) void document.exitFullscreen();
    else void section.requestFullscreen();
  });
  const { png, table, json } = exports;
  if (png) {
    button("PNG", "Save the chart as PNG", () => {
      const url = png();
      if (url) download(`${name}.png`, url);
    });
  }
  if (table) {
    button("CSV", "Save the data as CSV", () => {
      const t = table();
      downloadBlob(`${name}.csv`, "text/csv", Papa.unparse({ fields: t.header, data: t.rows }, { escapeFormulae: true }));
    });
  }
  if (json || table) {
    button("JSON", "Save the data as JSON", () => {
      const data: unknown = json ? json() : table ? table().rows : null;
      downloadBlob(`${name}.json`, "application/json", JSON.stringify(data, null, 2));
    });
  }
  h2.append(bar);
}

/** The time from `epoch` in the server's zone, "YYYY-MM-DD HH:MM". */
export function serverMinute(epoch: number, offset: number): string {
  return serverTime(epoch, offset).slice(0, 16);
}

/** A visible countdown to the next refresh of a page's historical panels, with a pause:
 * `run` is called every `seconds` unless paused. Returns the element for the toolbar. */
export function refresher(seconds: number, run: () => Promise<void>): HTMLElement {
  const label = el("span", { class: "hint", "aria-live": "off" });
  const pause = el("button", { type: "button", "aria-pressed": "false" }, "Pause refresh");
  let paused = false;
  let left = seconds;
  let busy = false;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume refresh" : "Pause refresh";
    show();
  });
  const show = (): void => {
    label.textContent = paused ? "refresh paused" : `refresh in ${left} s`;
  };
  window.setInterval(() => {
    if (paused || busy) return;
    left -= 1;
    if (left <= 0) {
      busy = true;
      label.textContent = "refreshing…";
      void run().finally(() => {
        busy = false;
        left = seconds;
        show();
      });
      return;
    }
    show();
  }, 1000);
  show();
  return el("span", { class: "refresh" }, label, " ", pause);
}

/** How often a page's historical panels refresh: `?refresh=N` seconds (at least 10) when the
 * URL says, else `[GEO] updateFrequency`. */
export function refreshSeconds(u: { geo: { update_frequency_minutes: number } }): number {
  const asked = Number(new URLSearchParams(window.location.search).get("refresh"));
  if (Number.isFinite(asked) && asked >= 10) return Math.round(asked);
  return Math.max(1, u.geo.update_frequency_minutes) * 60;
}

/** Sets a form's field by name (inputs and selects). */
export function setField(form: HTMLFormElement, name: string, value: string): void {
  const input = form.elements.namedItem(name);
  if (input instanceof HTMLInputElement || input instanceof HTMLSelectElement) input.value = value;
}

/** The form's quick-range buttons (`data-days`): the range ending on the server's `today`,
 * then the form is sent. */
export function quickRanges(form: HTMLFormElement, today: string): void {
  for (const b of form.querySelectorAll<HTMLButtonElement>("button[data-days]")) {
    b.addEventListener("click", () => {
      setField(form, "to", today);
      setField(form, "from", serverDay(noonOf(today, 0) - (Number(b.dataset.days) - 1) * DAY, 0));
      form.requestSubmit();
    });
  }
}
