// The live log as a wall screen needs it: one line per row, so that a screenful of rows reads
// from across the room. Long values are cut in the middle (a hash keeps its start and its
// end), the whole value shows on hover and when the row has the focus; tags are one-line chips
// with "+N"; the comment is muted, after the value; the kind and feed columns show only when
// they vary. A row opens a detail view with every field, its tags and, when MISP's address is
// configured, a link to the event. Keyboard: arrows, Home, End and Page keys move through the
// rows, Enter opens the detail, Escape closes it.

import { el, fill } from "./dom";
import { safeColour } from "./tags";
import type { ServerClock } from "./time";

/** At most this many rows are kept: a wall screen runs for weeks. */
export const MAX_ROWS = 300;
/** Tags shown in a row before "+N". */
const ROW_TAGS = 2;

export interface LogEvent {
  log: Record<string, unknown> | unknown[];
  name: string;
  zmqName: string;
}

interface Tag {
  name: string;
  colour: string | null;
}

/** What one column shows, from its path in `[Dashboard] fieldname_order`. */
type ColumnKind = "time" | "tags" | "composite" | "value" | "id" | "text";

interface Column {
  header: string;
  paths: string[];
  kind: ColumnKind;
}

/** A row as the log keeps it. */
interface Row {
  key: string;
  ev: LogEvent;
  tr: HTMLTableRowElement;
}

/** Whether an event is a log row (an attribute or an object's attribute). */
export function isRow(ev: LogEvent): boolean {
  return (ev.name === "Attribute" || ev.name === "ObjectAttribute") && !Array.isArray(ev.log);
}

export function columnsOf(header: readonly string[]): Column[] {
  return header.map((h) => {
    const paths = h.split(" | ");
    const last = (paths[0] ?? "").split(".").pop() ?? "";
    const kind: ColumnKind =
      paths.length > 1
        ? "composite"
        : last === "timestamp"
          ? "time"
          : last === "Tag" || last === "Tags"
            ? "tags"
            : last === "value"
              ? "value"
              : last === "id" || last === "uuid"
                ? "id"
                : "text";
    return { header: h, paths, kind };
  });
}

/** A cell's value as text (composites joined as the server joined them). */
function text(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

/** The tags of a tag cell (`{"name": "Tag", "data": "<JSON list>"}`), colours validated. */
export function tagsOf(v: unknown): Tag[] | null {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  if ((v as { name?: unknown }).name === undefined) return null;
  const data = (v as { data?: unknown }).data;
  let list: unknown;
  try {
    list = typeof data === "string" ? JSON.parse(data) : data;
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list.map((t: unknown) => {
    const o = (typeof t === "object" && t !== null ? t : {}) as { name?: unknown; colour?: unknown };
    return { name: typeof o.name === "string" ? o.name : "", colour: safeColour(o.colour) };
  });
}

/** A cell's whole text (tags by name), for filters, exports and the hover title. */
export function cellText(ev: LogEvent, col: number): string {
  if (Array.isArray(ev.log)) return "";
  const v = ev.log[String(col)];
  const tags = tagsOf(v);
  return tags ? tags.map((t) => t.name).join(", ") : text(v);
}

/** "YYYY-MM-DD HH:MM:SS" as the log spells times (UTC), to an epoch. */
export function logEpoch(t: string): number | undefined {
  const ms = Date.parse(`${t.replace(" ", "T")}Z`);
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

/** The text cut in the middle when it does not fit: the start shrinks with an ellipsis, the end
 * (up to 8 characters) stays. */
function middleCut(value: string, cls = "cut-mid"): HTMLElement {
  const tailLen = value.length > 16 ? Math.min(8, Math.floor(value.length / 3)) : 0;
  if (tailLen === 0) return el("span", { class: cls }, value);
  const cut = el("span", { class: cls }, el("span", { class: "head" }, value.slice(0, -tailLen)), value.slice(-tailLen));
  cut.style.setProperty("--tail", `${tailLen + 0.5}ch`);
  return cut;
}

function chip(t: Tag): HTMLElement {
  const c = el("span", { class: "tag", title: t.name }, t.name);
  if (t.colour) c.style.setProperty("--tag", t.colour);
  return c;
}

export interface LiveLogOptions {
  table: HTMLTableElement;
  header: string[];
  separator: string;
  clock: ServerClock;
  /** `[RedisGlobal] misp_web_url`, for the link to an event. */
  mispWebUrl: string | null;
  /** The page-side filters, on a row's cell texts. */
  passes: (cells: readonly string[]) => boolean;
  /** Called with the row count after each change (while the log is shown). */
  counted: (n: number) => void;
  /** The table body the rows go in (the table's first by default): a table can hold two
   * logs, the live one and a rewound one (rewind.ts), one shown at a time. */
  body?: HTMLTableSectionElement;
  /** Starts hidden (see [`LiveLog.setShown`]). */
  hidden?: boolean;
}

export class LiveLog {
  private readonly columns: Column[];
  private readonly body: HTMLTableSectionElement;
  /** Newest first. */
  private rows: Row[] = [];
  private readonly feeds = new Map<string, number>();
  private readonly kinds = new Map<string, number>();
  private readonly dialog: HTMLDialogElement;
  private readonly eventCol: number;
  /** Whether this log's rows are the ones shown (it keeps them up to date either way). */
  private shown: boolean;

  constructor(private readonly o: LiveLogOptions) {
    this.columns = columnsOf(o.header);
    this.eventCol = o.header.indexOf("Event.id");
    this.shown = o.hidden !== true;
    const t = o.table;
    this.body = o.body ?? t.tBodies[0] ?? t.createTBody();
    this.body.hidden = !this.shown;
    fill(
      t.tHead ?? t.createTHead(),
      el(
        "tr",
        {},
        ...this.columns.map((c) =>
          el("th", { class: `col-${c.kind}`, title: c.header }, c.header.replace(/^Attribute\./, "").replaceAll(" | Attribute.", " | ")),
        ),
        el("th", { class: "col-kind" }, "Kind"),
        el("th", { class: "col-feed" }, "Feed"),
      ),
    );
    this.dialog = el("dialog", { class: "row-detail", "aria-label": "Log row" });
    this.dialog.addEventListener("close", () => this.dialog.replaceChildren());
    document.body.append(this.dialog);
    this.body.addEventListener("keydown", (e) => this.key(e));
    this.body.addEventListener("click", (e) => {
      const tr = (e.target as Element | null)?.closest("tr");
      if (tr && this.body.contains(tr)) this.open(tr);
    });
    this.body.addEventListener("focusin", (e) => {
      const tr = (e.target as Element | null)?.closest("tr");
      if (tr) this.makeCurrent(tr);
    });
    this.columnsShown();
  }

  /** Shows this log's rows, or hides them (they keep arriving). */
  setShown(shown: boolean): void {
    this.shown = shown;
    this.body.hidden = !shown;
    if (shown) {
      this.columnsShown();
      this.o.counted(this.rows.length);
    }
  }

  /** The rows' keys, newest first (what the stream's snapshot is aligned with). */
  keys(): string[] {
    return this.rows.map((r) => r.key);
  }

  get size(): number {
    return this.rows.length;
  }

  /** The cell texts of the rows, newest first (the CSV export). */
  table(): { header: string[]; rows: string[][] } {
    return {
      header: [...this.o.header, "kind", "feed"],
      rows: this.rows.map((r) => [
        ...this.columns.map((_, i) => cellText(r.ev, i)),
        r.ev.name === "ObjectAttribute" ? "object" : "attribute",
        r.ev.zmqName,
      ]),
    };
  }

  /** Adds rows on top; `batch` is oldest first. Rows that arrive slowly enough to be read one
   * by one are highlighted. */
  add(batch: readonly { key: string; ev: LogEvent }[], highlight: boolean): void {
    const fresh: Row[] = [];
    for (const { key, ev } of batch.slice(-MAX_ROWS)) {
      if (!isRow(ev)) continue;
      const cells = this.columns.map((_, i) => cellText(ev, i));
      if (!this.o.passes(cells)) continue;
      const tr = this.render(ev);
      if (highlight && batch.length <= 3) tr.classList.add("new");
      fresh.push({ key, ev, tr });
    }
    if (fresh.length === 0) return;
    fresh.reverse();
    const frag = document.createDocumentFragment();
    for (const r of fresh) {
      frag.append(r.tr);
      this.count(r.ev, 1);
    }
    this.body.prepend(frag);
    this.rows = [...fresh, ...this.rows];
    this.trim();
  }

  /** Replaces every row (oldest first). */
  replace(batch: readonly { key: string; ev: LogEvent }[]): void {
    this.rows = [];
    this.feeds.clear();
    this.kinds.clear();
    this.body.replaceChildren();
    this.add(batch, false);
    this.columnsShown();
    if (this.shown) this.o.counted(this.rows.length);
  }

  private trim(): void {
    const focused = document.activeElement;
    while (this.rows.length > MAX_ROWS) {
      const r = this.rows.pop();
      if (!r) break;
      this.count(r.ev, -1);
      r.tr.remove();
    }
    if (focused instanceof HTMLTableRowElement && !focused.isConnected) this.rows[0]?.tr.focus();
    if (!this.body.querySelector("tr[tabindex='0']") && this.rows[0]) this.rows[0].tr.tabIndex = 0;
    this.columnsShown();
    if (this.shown) this.o.counted(this.rows.length);
  }

  private count(ev: LogEvent, by: number): void {
    for (const [m, k] of [
      [this.feeds, ev.zmqName],
      [this.kinds, ev.name],
    ] as const) {
      const n = (m.get(k) ?? 0) + by;
      if (n <= 0) m.delete(k);
      else m.set(k, n);
    }
  }

  /** The kind and feed columns only when they vary. */
  private columnsShown(): void {
    if (!this.shown) return;
    this.o.table.classList.toggle("one-kind", this.kinds.size <= 1);
    this.o.table.classList.toggle("one-feed", this.feeds.size <= 1);
  }

  private render(ev: LogEvent): HTMLTableRowElement {
    const object = ev.name === "ObjectAttribute";
    const tr = el("tr", { tabindex: "-1", class: object ? "object" : "" });
    this.columns.forEach((c, i) => tr.append(this.cell(ev, c, i)));
    tr.append(
      el("td", { class: "col-kind" }, object ? "object" : "attribute"),
      el("td", { class: "col-feed", title: ev.zmqName }, ev.zmqName),
    );
    return tr;
  }

  private cell(ev: LogEvent, c: Column, i: number): HTMLTableCellElement {
    const v = Array.isArray(ev.log) ? undefined : ev.log[String(i)];
    const whole = cellText(ev, i);
    const td = el("td", { class: `col-${c.kind}` });
    const tags = tagsOf(v);
    if (tags) {
      if (tags.length > 0) td.title = whole;
      const shown = tags.slice(0, ROW_TAGS);
      td.append(
        el(
          "span",
          { class: "tags" },
          ...shown.map(chip),
          tags.length > shown.length
            ? el("span", { class: "more", "aria-label": `${tags.length - shown.length} more tag(s)` }, `+${tags.length - shown.length}`)
            : null,
        ),
      );
      return td;
    }
    if (whole === "") return td;
    td.title = whole;
    if (c.kind === "time") {
      const t = logEpoch(whole);
      if (t === undefined) td.append(whole);
      else {
        const local = this.o.clock.time(t);
        // Today's rows by their time; older ones with their date.
        td.append(this.o.clock.day(t) === this.o.clock.today() ? local.slice(11) : local.slice(5, 16));
        td.title = `${local} (${this.o.clock.zoneName(t)})`;
      }
    } else if (c.kind === "composite") {
      const [first = "", ...rest] = whole.split(this.o.separator);
      const others = rest.filter((p) => p !== "" && p !== "None");
      td.append(
        el(
          "span",
          { class: "line" },
          middleCut(first),
          others.length > 0 ? el("span", { class: "muted cut-end" }, others.join(" · ")) : null,
        ),
      );
    } else if (c.kind === "value") {
      td.append(middleCut(whole));
    } else {
      td.append(el("span", { class: "cut-end" }, whole));
    }
    return td;
  }

  private rowOf(tr: Element): Row | undefined {
    return this.rows.find((r) => r.tr === tr);
  }

  private makeCurrent(tr: HTMLTableRowElement): void {
    for (const r of this.body.querySelectorAll<HTMLTableRowElement>("tr[tabindex='0']")) if (r !== tr) r.tabIndex = -1;
    tr.tabIndex = 0;
  }

  private key(e: KeyboardEvent): void {
    const tr = (e.target as Element | null)?.closest("tr");
    if (!(tr instanceof HTMLTableRowElement)) return;
    const list = this.rows.map((r) => r.tr);
    const at = list.indexOf(tr);
    const page = Math.max(1, Math.floor((this.o.table.parentElement?.clientHeight ?? 300) / Math.max(1, tr.offsetHeight)) - 1);
    const to: Record<string, number> = {
      ArrowDown: at + 1,
      ArrowUp: at - 1,
      Home: 0,
      End: list.length - 1,
      PageDown: at + page,
      PageUp: at - page,
    };
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      this.open(tr);
      return;
    }
    const next = to[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const target = list[Math.max(0, Math.min(list.length - 1, next))];
    if (target) {
      this.makeCurrent(target);
      target.focus();
    }
  }

  /** The detail view of a row: every field in full, the tags, the kind and feed, and the event
   * in MISP. */
  private open(tr: HTMLTableRowElement): void {
    const r = this.rowOf(tr);
    if (!r) return;
    const ev = r.ev;
    const facts = el("dl", { class: "facts" });
    this.columns.forEach((c, i) => {
      const v = Array.isArray(ev.log) ? undefined : ev.log[String(i)];
      const tags = tagsOf(v);
      if (tags) {
        facts.append(
          el("dt", {}, c.header),
          el("dd", {}, tags.length === 0 ? "no tag" : el("span", { class: "tags wrap" }, ...tags.map(chip))),
        );
        return;
      }
      const whole = cellText(ev, i);
      // What MISP left empty (or the original's "None" of a missing part) says so.
      const shown = (t: string | undefined): string => (t === undefined || t === "" || t === "None" ? "–" : t);
      if (c.kind === "composite") {
        const parts = whole.split(this.o.separator);
        c.paths.forEach((p, k) => facts.append(el("dt", {}, p), el("dd", { class: "value" }, shown(parts[k]))));
      } else if (c.kind === "time") {
        const t = logEpoch(whole);
        const local = t === undefined ? whole : `${this.o.clock.time(t)} ${this.o.clock.zoneName(t)}`;
        facts.append(
          el("dt", {}, c.header),
          el("dd", {}, t !== undefined && this.o.clock.offsetAt(t) !== 0 ? `${local} (${whole} UTC)` : local),
        );
      } else {
        facts.append(el("dt", {}, c.header), el("dd", { class: c.kind === "text" ? "" : "value" }, shown(whole)));
      }
    });
    facts.append(
      el("dt", {}, "Kind"),
      el("dd", {}, ev.name === "ObjectAttribute" ? "an attribute of a MISP object" : "an attribute"),
      el("dt", {}, "Feed"),
      el("dd", {}, ev.zmqName),
    );
    const eventId = this.eventCol >= 0 ? cellText(ev, this.eventCol) : "";
    let link: HTMLElement | null = null;
    if (this.o.mispWebUrl && /^\d+$/.test(eventId)) {
      const a = el("a", { href: `${this.o.mispWebUrl.replace(/\/+$/, "")}/events/view/${eventId}` }, `Open event ${eventId} in MISP`);
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      link = el("p", {}, a);
    }
    const close = el("button", { type: "button", class: "close" }, "Close");
    close.addEventListener("click", () => this.dialog.close());
    fill(
      this.dialog,
      el("h2", {}, eventId ? `Attribute of event ${eventId}` : "Attribute"),
      facts,
      link,
      el("p", { class: "hint" }, close, " Escape closes."),
    );
    this.dialog.addEventListener("close", () => tr.isConnected && tr.focus(), { once: true });
    this.dialog.showModal();
    close.focus();
  }
}
