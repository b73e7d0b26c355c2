// The live log: what MISP publishes, newest first, as it streams. The history comes from
// /_logs as JSON, then the stream (/_logs as Server-Sent Events) adds rows; EventSource
// reconnects by itself after a restart or a network drop and sends Last-Event-ID, so the
// server resends what was missed and nothing is lost or shown twice.

import { el, fill } from "./dom";
import { getJson } from "./api";
import { mountShell } from "./shell";
import { safeColour } from "./tags";

/** At most this many rows are kept: a wall screen runs for weeks. */
const MAX_ROWS = 300;
/** The original's default `[Dashboard] char_separator`, between a composite column's parts. */
const SEPARATOR = "||";

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

function row(ev: LogEvent, header: string[]): HTMLTableRowElement | null {
  if (ev.name !== "Attribute" && ev.name !== "ObjectAttribute") return null;
  if (Array.isArray(ev.log)) return null;
  const log = ev.log;
  const tr = el("tr", ev.name === "ObjectAttribute" ? { class: "object", title: "an attribute of a MISP object" } : {});
  header.forEach((h, i) => tr.append(el("td", {}, cell(log[String(i)], h.includes(" | ")))));
  tr.append(el("td", {}, ev.name === "ObjectAttribute" ? "object" : "attribute"), el("td", {}, ev.zmqName));
  return tr;
}

async function start(): Promise<void> {
  const table = document.getElementById("log");
  const pause = document.getElementById("pause");
  const count = document.getElementById("count");
  const main = document.getElementById("live");
  if (!(table instanceof HTMLTableElement) || !pause || !count || !main) return;
  const body = table.tBodies[0] ?? table.createTBody();
  const [header, history] = await Promise.all([getJson<string[]>("/_get_log_head"), getJson<LogEvent[]>("/_logs")]);
  fill(table.tHead ?? table.createTHead(), el("tr", {}, ...header.map((h) => el("th", {}, h.replace(/^Attribute\./, "").replaceAll(" | Attribute.", " | "))), el("th", {}, "Kind"), el("th", {}, "Feed")));
  const trim = (): void => {
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    count.textContent = `${body.rows.length} row(s)`;
  };
  for (const ev of history) {
    const tr = row(ev, header);
    if (tr) body.append(tr);
  }
  trim();
  main.setAttribute("aria-busy", "false");

  let paused = false;
  let held: LogEvent[] = [];
  const show = (ev: LogEvent): void => {
    const tr = row(ev, header);
    if (!tr) return;
    tr.classList.add("new");
    body.prepend(tr);
    trim();
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
    if (paused) {
      held.push(ev);
      if (held.length > MAX_ROWS) held = held.slice(-MAX_ROWS);
      pause.textContent = `Resume (${held.length} new)`;
      return;
    }
    show(ev);
  };
}

mountShell("/");
start().catch((e: unknown) => {
  const main = document.getElementById("live");
  if (main) fill(main, el("p", { class: "error" }, `Cannot load the live log: ${String(e)}`));
});
