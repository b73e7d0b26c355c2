// Rewinding the live view: a time slider over the last `[mispdash] rewind_hours`. Dragged back,
// the log and the map show the view as it was at that moment (the rows up to then, newest
// first, as the live log showed them; the points still fading then); played forward at 1x to
// 60x, the rows and points of each second arrive as they did; "Back to live" (or reaching
// now) returns to the live view, which went on arriving underneath. The moments are the
// server's clock in its zone (time.ts), never the browser's. Rows and points come from
// `/_mispdash/rewind` (api.ts), filtered there by the live log's filters and, with access
// control on, by what the signed-in user may see.

import { rewindCsvUrl, rewindWindow, type RewindPoint, type RewindRow, type RewindWindow } from "./api";
import { el } from "./dom";
import type { ServerClock } from "./time";

/** The speeds offered, in times real time. */
export const SPEEDS = [1, 2, 5, 10, 30, 60] as const;
/** How often playing moves forward (wall clock, milliseconds). */
const TICK_MS = 1000;
/** How long a drag waits for the slider to rest before asking the server. */
const SETTLE_MS = 150;
/** The windows the CSV export offers, ending at the moment shown (seconds). */
export const CSV_SPANS: [number, string][] = [
  [900, "15 min"],
  [3600, "1 h"],
  [6 * 3600, "6 h"],
  [24 * 3600, "24 h"],
];

/** "45 s ago", "12 min ago", "2 h 05 min ago". */
export function agoText(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min ago`;
}

/** Where a key moves the slider from `at` (seconds; `null`: a key the slider leaves alone).
 * Arrows a minute (ten seconds with Shift), Page keys a quarter of an hour, Home the oldest
 * moment, End now. */
export function keyStep(key: string, shift: boolean, at: number, min: number, max: number): number | null {
  const by: Record<string, number> = {
    ArrowLeft: -60,
    ArrowDown: -60,
    ArrowRight: 60,
    ArrowUp: 60,
    PageDown: -900,
    PageUp: 900,
  };
  if (key === "Home") return min;
  if (key === "End") return max;
  const d = by[key];
  if (d === undefined) return null;
  return Math.min(max, Math.max(min, at + (shift ? Math.sign(d) * 10 : d)));
}

/** How often the page asks what the oldest kept moment is (milliseconds). */
const OLDEST_EVERY_MS = 5 * 60 * 1000;

/** The slider's range at `now`: the last `hours`, from the oldest moment the server still
 * keeps when that is later (the stream is also bounded in bytes, so it may keep less than the
 * hours; dragging into the part it dropped would show an empty log). */
export function rangeAt(now: number, hours: number, oldest: number | null): { min: number; max: number } {
  const max = Math.floor(now);
  const byHours = max - hours * 3600;
  const min = oldest === null ? byHours : Math.min(max, Math.max(byHours, Math.floor(oldest)));
  return { min, max };
}

/** Where a moment played forward at `speed` is after `wallSeconds`; `live` once it reaches
 * `now`. */
export function played(at: number, speed: number, wallSeconds: number, now: number): { at: number; live: boolean } {
  const next = at + speed * Math.max(0, wallSeconds);
  return next >= now ? { at: now, live: true } : { at: next, live: false };
}

/** A window's rows as the log takes them: oldest first, keyed by their stream id (never the
 * same as a live row's key). */
export function rowsOf(w: RewindWindow): { key: string; ev: RewindRow }[] {
  return [...w.rows].reverse().map((r) => ({ key: `rewind:${r.id}`, ev: r }));
}

/** A window's points as the map takes them: oldest first, with when they arrived. */
export function pointsOf(w: RewindWindow): { e: RewindPoint["point"]; key: string; at: number }[] {
  return [...w.points].reverse().map((p) => ({ e: p.point, key: `rewind:${p.id}`, at: p.at }));
}

/** What the live page does with what the slider shows. */
export interface RewindTarget {
  /** A moment's view: every row and point replaced. */
  show(w: RewindWindow, at: number): void;
  /** Playing forward: the rows and points since the last call, added on top. */
  more(w: RewindWindow, at: number): void;
  /** Back to the live view. */
  live(): void;
  /** Words for screen readers (changes of state only). */
  announce(text: string): void;
  /** Something went wrong asking the server. */
  failed(why: string): void;
}

export interface RewindOptions {
  clock: ServerClock;
  /** `[mispdash] rewind_hours`. */
  hours: number;
  /** The live log's filters, as in the page's URL (`f`): the server applies them. */
  filters: readonly string[];
  /** How long a map point stays (seconds), for the points of a moment. */
  pointLife: number;
  /** The rows the log keeps. */
  rows: number;
  /** The points the map keeps. */
  points: number;
}

/** The slider, its buttons and what they ask of the server. */
export class RewindBar {
  readonly element: HTMLElement;
  private readonly slider: HTMLInputElement;
  private readonly playButton: HTMLButtonElement;
  private readonly liveButton: HTMLButtonElement;
  private readonly speedSelect: HTMLSelectElement;
  private readonly when: HTMLElement;
  private readonly csv: HTMLAnchorElement;
  private readonly csvSpan: HTMLSelectElement;
  /** The moment shown; null while live. */
  private at: number | null = null;
  /** Up to when the rows and points are shown (while playing, the last answer's end). */
  private shownTo = 0;
  private playing = false;
  private lastTick = 0;
  /** Answers to older questions are dropped. */
  private asked = 0;
  private busy = false;
  private settle = 0;
  private readonly timer: number;
  /** The oldest moment the server keeps (from its answers), and when it was last asked. */
  private oldest: number | null = null;
  private oldestAsked = -Infinity;

  constructor(
    private readonly o: RewindOptions,
    private readonly target: RewindTarget,
  ) {
    this.slider = el("input", {
      type: "range",
      id: "rewind-at",
      class: "rewind-slider",
      "aria-label": "Moment shown: drag back to rewind the log and the map",
    });
    this.slider.step = "1";
    this.playButton = el("button", { type: "button", id: "rewind-play", "aria-pressed": "false" }, "Play");
    this.liveButton = el("button", { type: "button", id: "rewind-live", "aria-label": "Back to live", title: "Back to live" }, "Live");
    this.speedSelect = el(
      "select",
      { id: "rewind-speed", name: "speed", title: "Speed of play" },
      ...SPEEDS.map((s) => el("option", { value: String(s) }, `${s}×`)),
    );
    this.when = el("output", { id: "rewind-when", class: "rewind-when", "aria-live": "off", for: "rewind-at" });
    this.csvSpan = el("select", {
      id: "rewind-csv-span",
      name: "span",
      "aria-label": "Window of the CSV export, up to the moment shown",
    });
    for (const [secs, words] of CSV_SPANS) this.csvSpan.append(el("option", { value: String(secs) }, words));
    this.csvSpan.value = "3600";
    this.csv = el("a", { id: "rewind-csv", class: "button", href: "#" }, "CSV");
    this.csv.download = "mispdash-rewind.csv";
    this.element = el(
      "div",
      { class: "rewind", id: "rewind", role: "group", "aria-label": "Rewind the live view" },
      this.when,
      this.slider,
      this.playButton,
      el("label", {}, el("span", { class: "sr-only" }, "Speed "), this.speedSelect),
      this.liveButton,
      el("span", { class: "rewind-csv" }, this.csv, " ", this.csvSpan),
    );
    this.slider.addEventListener("input", () => this.dragged());
    this.slider.addEventListener("keydown", (e) => this.key(e));
    this.playButton.addEventListener("click", () => this.togglePlay());
    this.liveButton.addEventListener("click", () => this.toLive(true));
    this.csvSpan.addEventListener("change", () => this.render());
    this.timer = window.setInterval(() => this.tick(), TICK_MS);
    void this.learnOldest();
    this.render();
  }

  dispose(): void {
    window.clearInterval(this.timer);
    window.clearTimeout(this.settle);
  }

  /** Whether a past moment is shown. */
  get rewound(): boolean {
    return this.at !== null;
  }

  /** The moment the map's points fade by: the moment shown, or now. */
  readonly now = (): number => this.at ?? this.o.clock.now();

  private bounds(): { min: number; max: number } {
    return rangeAt(this.o.clock.now(), this.o.hours, this.oldest);
  }

  /** Asks the server for the oldest moment it keeps (an answer with no rows or points). */
  private async learnOldest(): Promise<void> {
    this.oldestAsked = performance.now();
    try {
      const w = await rewindWindow({ to: this.o.clock.now(), limit: 0, points: 0 });
      this.noteOldest(w);
    } catch {
      // Asked again later; the range meanwhile is the configured hours.
    }
  }

  private noteOldest(w: RewindWindow): void {
    this.oldest = typeof w.oldest === "number" ? w.oldest : null;
  }

  /** Goes to a moment (`at` seconds, the server's clock): asks for its view. */
  goTo(at: number): void {
    const { min, max } = this.bounds();
    if (at >= max) {
      this.toLive(true);
      return;
    }
    const was = this.at;
    this.at = Math.max(min, at);
    if (was === null)
      this.target.announce(`Rewound: the log and the map show ${this.o.clock.time(this.at)}. End or "Back to live" returns.`);
    this.render();
    void this.load();
  }

  private dragged(): void {
    const v = Number(this.slider.value);
    if (!Number.isFinite(v)) return;
    window.clearTimeout(this.settle);
    const { max } = this.bounds();
    if (v >= max) {
      this.toLive(true);
      return;
    }
    this.at = v;
    this.render();
    this.settle = window.setTimeout(() => this.goTo(v), SETTLE_MS);
  }

  private key(e: KeyboardEvent): void {
    const { min, max } = this.bounds();
    const next = keyStep(e.key, e.shiftKey, this.at ?? max, min, max);
    if (next === null) return;
    e.preventDefault();
    this.goTo(next);
  }

  private togglePlay(): void {
    if (this.at === null) return;
    this.playing = !this.playing;
    this.lastTick = performance.now();
    this.target.announce(this.playing ? `Playing forward at ${this.speed()}×` : "Paused");
    this.render();
  }

  private speed(): number {
    const s = Number(this.speedSelect.value);
    return Number.isFinite(s) && s > 0 ? s : 1;
  }

  private toLive(say: boolean): void {
    window.clearTimeout(this.settle);
    const was = this.at;
    this.at = null;
    this.playing = false;
    this.asked += 1;
    this.render();
    if (was !== null) {
      this.target.live();
      if (say) this.target.announce("Back to the live view");
    }
  }

  private tick(): void {
    const t = performance.now();
    if (t - this.oldestAsked > OLDEST_EVERY_MS) void this.learnOldest();
    const wall = (t - this.lastTick) / 1000;
    if (this.at !== null && this.playing && !this.busy) {
      this.lastTick = t;
      const next = played(this.at, this.speed(), wall, this.o.clock.now());
      if (next.live) {
        this.toLive(true);
        return;
      }
      this.at = next.at;
      void this.loadMore();
    }
    this.render();
  }

  /** The moment's view: the newest rows up to it, and the points still on the map then. */
  private async load(): Promise<void> {
    const at = this.at;
    if (at === null) return;
    const n = ++this.asked;
    this.busy = true;
    try {
      const w = await rewindWindow({
        to: at,
        from: at - this.o.hours * 3600,
        limit: this.o.rows,
        points: this.o.points,
        pointsFrom: at - this.o.pointLife,
        filters: this.o.filters,
      });
      this.noteOldest(w);
      if (n !== this.asked || this.at === null) return;
      this.shownTo = at;
      this.lastTick = performance.now();
      this.target.show(w, at);
    } catch (e) {
      if (n === this.asked) this.target.failed(e instanceof Error ? e.message : String(e));
    } finally {
      if (n === this.asked) this.busy = false;
    }
  }

  /** Playing: what arrived since the rows shown. */
  private async loadMore(): Promise<void> {
    const at = this.at;
    if (at === null || at <= this.shownTo) return;
    const n = ++this.asked;
    this.busy = true;
    const from = this.shownTo + 0.001;
    try {
      const w = await rewindWindow({ to: at, from, limit: this.o.rows, points: this.o.points, filters: this.o.filters });
      if (n !== this.asked || this.at === null) return;
      this.shownTo = at;
      this.target.more(w, at);
    } catch (e) {
      if (n === this.asked) this.target.failed(e instanceof Error ? e.message : String(e));
    } finally {
      if (n === this.asked) this.busy = false;
    }
  }

  /** The slider, the words and the buttons as the state is. */
  private render(): void {
    const { min, max } = this.bounds();
    const at = this.at ?? max;
    this.slider.min = String(min);
    this.slider.max = String(max);
    this.slider.value = String(Math.round(at));
    const clock = this.o.clock;
    const zone = clock.zoneName(at);
    const full = `${clock.time(at)} ${zone}`;
    // The day only when it is not today (on the server's calendar).
    const short = clock.day(at) === clock.today() ? clock.time(at).slice(11) : clock.time(at).slice(5);
    const words = this.at === null ? `live, now ${full}` : `${full}, ${agoText(max - at)}`;
    this.slider.setAttribute("aria-valuetext", words);
    this.slider.title = words;
    const shown = this.at === null ? "● Live" : `⏪ ${short} ${zone} · ${agoText(max - at)}${this.playing ? ` · ${this.speed()}×` : ""}`;
    if (this.when.textContent !== shown) this.when.textContent = shown;
    this.when.title = words;
    this.element.classList.toggle("rewound", this.at !== null);
    this.playButton.disabled = this.at === null;
    this.playButton.textContent = this.playing ? "Pause" : "Play";
    this.playButton.setAttribute("aria-pressed", String(this.playing));
    this.liveButton.disabled = this.at === null;
    const span = Number(this.csvSpan.value) || 3600;
    const end = this.at ?? this.o.clock.now();
    const href = rewindCsvUrl({ from: end - span, to: end, filters: this.o.filters });
    if (this.csv.getAttribute("href") !== href) this.csv.setAttribute("href", href);
    this.csv.title = `The rows of the ${CSV_SPANS.find(([s]) => s === span)?.[1] ?? "window"} up to ${this.o.clock.time(end)}, as CSV`;
  }
}
