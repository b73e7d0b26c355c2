// Panel tools: fullscreen, and the panel's data as PNG, CSV or JSON. CSV cells that a
// spreadsheet would run as a formula are quoted (papaparse's escapeFormulae): the values come
// from MISP.

import Papa from "papaparse";
import { el } from "./dom";

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

/** A table as CSV text, formulas neutralised. */
export function csvText(t: Table): string {
  return Papa.unparse({ fields: t.header, data: t.rows }, { escapeFormulae: true });
}

/** A file name from a panel title: lower case, dashes. */
export function slug(title: string): string {
  return (
    title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "")
      .slice(0, 60) || "panel"
  );
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

/** Adds the panel's tools to its title: fullscreen, and PNG / CSV / JSON of what it shows. */
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
    button("CSV", "Save the data as CSV", () => downloadBlob(`${name}.csv`, "text/csv", csvText(table())));
  }
  if (json || table) {
    button("JSON", "Save the data as JSON", () => {
      const data: unknown = json ? json() : table ? table().rows : null;
      downloadBlob(`${name}.json`, "application/json", JSON.stringify(data, null, 2));
    });
  }
  h2.append(bar);
}
