// Panels and the page scaffolding every page uses: a titled panel, a ranked bar list, a failure
// line, the refresh countdown, forms' fields and quick ranges, and `Rendering`, which rebuilds
// a page's panels in place without keeping the old ones. Built from elements and text only
// (see dom.ts); sizes are set through the CSSOM, which the CSP allows, never through style
// attributes.

import { el, fill } from "./dom";
import { Scope } from "./charts";
import { addDays, type ServerClock } from "./time";

/** A titled panel of the page grid. */
export function panel(title: string, ...body: (Node | null)[]): HTMLElement {
  return el("section", { class: "panel", "aria-label": title }, el("h2", {}, title), ...body);
}

/** A panel across the whole grid. */
export function widePanel(title: string, ...body: (Node | null)[]): HTMLElement {
  const p = panel(title, ...body);
  p.classList.add("wide");
  return p;
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

/** The words of an error, for a person. */
export function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A page's panels, rebuilt in place. The first build replaces the page's placeholder; a
 * later one replaces the panels only when it succeeded (a wall screen keeps showing the last
 * good panels while the server restarts, and says that the refresh failed). Each build has its
 * own scope: the previous one's charts and timers are disposed of once the new panels are in. */
export class Rendering {
  private scope: Scope | null = null;
  private built = false;

  constructor(
    private readonly main: HTMLElement,
    /** What the page shows, for the failure line: "the trendings". */
    private readonly what: string,
    private readonly build: (scope: Scope) => Promise<Node[]>,
  ) {}

  /** Builds the panels; resolves with the failure's words, or null. */
  async run(): Promise<string | null> {
    const scope = new Scope();
    try {
      const parts = await this.build(scope);
      fill(this.main, ...parts);
      this.main.setAttribute("aria-busy", "false");
      this.scope?.dispose();
      this.scope = scope;
      this.built = true;
      return null;
    } catch (e) {
      scope.dispose();
      if (!this.built) {
        this.main.setAttribute("aria-busy", "false");
        fill(this.main, el("p", { class: "error", role: "alert" }, `Cannot load ${this.what}: ${reason(e)}`));
      }
      return reason(e);
    }
  }
}

/** A visible countdown to the next refresh of a page's historical panels, with a pause and a
 * "refresh now": `run` is called every `seconds` unless paused; a failed refresh is said and
 * tried again at the next turn. Returns the element for the toolbar. */
export function refresher(seconds: number, run: () => Promise<string | null>, clock: ServerClock): HTMLElement {
  const label = el("span", { class: "hint", "aria-live": "off" });
  const failure = el("span", { class: "error", role: "status" });
  const pause = el("button", { type: "button", "aria-pressed": "false" }, "Pause refresh");
  const now = el("button", { type: "button" }, "Refresh now");
  let paused = false;
  let left = seconds;
  let busy = false;
  let failing: string | null = null;
  const show = (): void => {
    label.textContent = busy ? "refreshing…" : paused ? "refresh paused" : `refresh in ${left} s`;
  };
  const go = (): void => {
    if (busy) return;
    busy = true;
    show();
    void run().then((failed) => {
      busy = false;
      left = seconds;
      // Said once when refreshes start failing (with the time of the first failure) and once
      // when they work again: a live region that changed at every refresh would be noise.
      if (failed && failing === null) {
        failing = clock.clockTime(clock.now());
        failure.textContent = `refreshes failing since ${failing}: ${failed}`;
      } else if (!failed && failing !== null) {
        failing = null;
        failure.textContent = "";
      }
      show();
    });
  };
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume refresh" : "Pause refresh";
    show();
  });
  now.addEventListener("click", go);
  window.setInterval(() => {
    if (paused || busy) return;
    left -= 1;
    if (left <= 0) go();
    else show();
  }, 1000);
  show();
  return el("span", { class: "refresh" }, label, " ", pause, " ", now, " ", failure);
}

/** How often a page's historical panels refresh: `?refresh=N` seconds (at least 10) when the
 * URL says, else `[GEO] updateFrequency`. */
export function refreshSeconds(q: URLSearchParams, updateFrequencyMinutes: number): number {
  const asked = Number(q.get("refresh"));
  if (Number.isFinite(asked) && asked >= 10) return Math.round(asked);
  return Math.max(1, updateFrequencyMinutes) * 60;
}

/** Sets a form's field by name (inputs and selects). */
export function setField(form: HTMLFormElement, name: string, value: string): void {
  const input = form.elements.namedItem(name);
  if (input instanceof HTMLInputElement || input instanceof HTMLSelectElement) input.value = value;
}

/** A form field's text value. */
export function fieldText(data: FormData, name: string): string {
  const v = data.get(name);
  return typeof v === "string" ? v.trim() : "";
}

/** The form's quick-range buttons (`data-days`): the range ending on the server's today,
 * then the form is sent. */
export function quickRanges(form: HTMLFormElement, clock: ServerClock): void {
  for (const b of form.querySelectorAll<HTMLButtonElement>("button[data-days]")) {
    b.addEventListener("click", () => {
      const today = clock.today();
      setField(form, "to", today);
      setField(form, "from", addDays(today, -(Number(b.dataset.days) - 1)));
      form.requestSubmit();
    });
  }
}
