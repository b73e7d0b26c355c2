// What every page shares: the header with the page links, a freshness light per MISP feed and
// one for the page's live stream, the login state and the theme toggle; and the server's clock,
// which pages use for "now". Screen readers hear changes of state only (a feed going quiet, the
// stream lost or back), not the countdowns that change every second.

import { el, fill } from "./dom";
import { status, type Feed, type Status } from "./api";
import { ServerClock } from "./time";
import "./theme.css";

const PAGES: [string, string][] = [
  ["/", "Live"],
  ["/geo", "Geo"],
  ["/contrib", "Contributors"],
  ["/users", "Users"],
  ["/trendings", "Trendings"],
  ["/status", "Status"],
];

/** A feed that sent neither data nor a keepalive for this long is shown as quiet. */
const QUIET_AFTER_S = 15;
const THEME_KEY = "mispdash-theme";
const STATUS_EVERY_MS = 5000;

export type LightState = "ok" | "quiet" | "down";

export function applyStoredTheme(): void {
  const t = localStorage.getItem(THEME_KEY);
  document.documentElement.dataset.theme = t === "light" ? "light" : "dark";
}

/** How a feed looks in the header: its state and the words that say why. */
export function feedState(f: Feed, now: number): { state: LightState; text: string } {
  if (!f.subscriber_running) return { state: "down", text: "subscriber not running" };
  if (!f.connected) return { state: "down", text: "disconnected" };
  const last = Math.max(f.last_message ?? 0, f.last_keepalive ?? 0);
  if (last === 0) return { state: "quiet", text: "nothing received yet" };
  const age = Math.max(0, Math.round(now - last));
  if (age > QUIET_AFTER_S) return { state: "quiet", text: `quiet for ${age} s` };
  return { state: "ok", text: "live" };
}

export interface Shell {
  /** The latest /status, refreshed every few seconds. */
  onStatus(listener: (s: Status) => void): void;
  /** Shows the page's live stream in the header: its state and the words that say why. */
  streamLight(state: LightState, text: string, announce: string | null): void;
  /** Says something to screen readers (a change of state). */
  announce(text: string): void;
}

/** The pages a wall screen cycles through in kiosk mode. */
const KIOSK_PAGES = ["/", "/geo", "/contrib", "/users", "/trendings"];

/** `?kiosk=1`: no navigation, and the next page after `every` seconds (default 60, at
 * least 3), in a loop, keeping the kiosk parameters; what is left is shown in the header. */
function kiosk(current: string, header: HTMLElement): void {
  const q = new URLSearchParams(window.location.search);
  if (q.get("kiosk") !== "1") return;
  document.body.classList.add("kiosk");
  const every = Math.max(3, Number(q.get("every")) || 60);
  const at = KIOSK_PAGES.indexOf(current);
  const next = KIOSK_PAGES[(at + 1) % KIOSK_PAGES.length] ?? "/";
  const left = el("span", { class: "hint", "aria-live": "off" });
  header.append(left);
  const until = Date.now() + every * 1000;
  const tick = (): void => {
    const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    left.textContent = `next page in ${s} s`;
    if (s === 0) {
      window.location.assign(`${next}?kiosk=1&every=${every}`);
      return;
    }
    window.setTimeout(tick, 1000);
  };
  tick();
}

/** A light: a shape and a colour for its state, and words. */
function light(state: LightState, text: string, title = text): HTMLElement {
  return el("span", { class: "light", "data-state": state, title }, text);
}

/** What every page says of the data it shows: the live views filtered for the user (with
 * access control on), and what the statistics count (every event, unless a threshold is set).
 * Empty when neither applies. */
export function scopeText(s: Status): string {
  const acl = s.auth.enabled && s.access_control?.enabled === true;
  const counted = s.access_control?.statistics_count ?? "every event";
  if (acl) return `live views follow your MISP permissions; statistics count ${counted}`;
  if (s.access_control?.statistics_threshold === true) return `statistics count ${counted}`;
  return "";
}
const ACL_SCOPE_LONG =
  "The live log and map show what MISP shows you (your organisation's events, others' by distribution and sharing group). " +
  "The geolocation, contributor and trending statistics are the same for every user: they count what this note says.";

/** Builds the header into `document.body` and starts the status polling. */
export function mountShell(current: string): Shell {
  applyStoredTheme();
  const feeds = el("div", { class: "feeds", "aria-label": "MISP feeds" });
  const stream = el("span", { class: "stream-light" });
  stream.hidden = true;
  const said = el("span", { class: "sr-only", "aria-live": "polite" });
  const who = el("span", { class: "who" });
  // Which data the page shows: the live views filtered for this user, the statistics not.
  const scope = el("span", { class: "acl-scope" });
  scope.hidden = true;
  const theme = el("button", { type: "button", "aria-label": "Theme: switch between dark and light" }, "Theme");
  theme.addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "light" ? "dark" : "light";
    localStorage.setItem(THEME_KEY, next);
    applyStoredTheme();
    // Charts take their colours from the CSS tokens: they redraw (charts.ts).
    document.dispatchEvent(new Event("mispdash-theme"));
  });
  const nav = el("nav", { "aria-label": "Pages" });
  for (const [href, label] of PAGES) {
    const a = el("a", { href }, label);
    if (href === current) a.setAttribute("aria-current", "page");
    nav.append(a);
  }
  const header = el(
    "header",
    { class: "shell" },
    el("span", { class: "brand" }, "mispdash"),
    nav,
    el("span", { class: "spacer" }),
    stream,
    feeds,
    scope,
    who,
    theme,
    said,
  );
  document.body.prepend(header);
  kiosk(current, header);

  const announce = (text: string): void => {
    said.textContent = text;
  };
  const listeners: ((s: Status) => void)[] = [];
  // The feeds' states as last said, so that only a change is announced.
  let lastStates = "";
  let lastWho = "";
  const refresh = async (): Promise<void> => {
    try {
      const s = await status();
      const shown = (s.feeds ?? []).map((f) => ({ name: f.name, ...feedState(f, s.now) }));
      fill(feeds, ...(shown.length > 0 ? shown.map((f) => light(f.state, `${f.name}: ${f.text}`)) : [light("quiet", "no feed")]));
      const states = shown.map((f) => `${f.name}: ${f.state === "ok" ? "live" : f.state === "quiet" ? "quiet" : f.text}`).join("; ");
      if (lastStates !== "" && states !== lastStates) announce(`MISP feeds: ${states || "none"}`);
      lastStates = states || "none";
      const user = s.auth.enabled ? (s.auth.user ?? "") : "";
      if (user !== lastWho || (s.auth.enabled && who.childElementCount === 0)) {
        fill(who, ...(s.auth.enabled ? [user, " ", el("a", { href: "/logout" }, "Log out")] : []));
        lastWho = user;
      }
      const said = scopeText(s);
      if (said !== scope.textContent) {
        scope.hidden = said === "";
        scope.textContent = said;
        scope.title = said === "" ? "" : ACL_SCOPE_LONG;
      }
      for (const l of listeners) l(s);
    } catch (e) {
      fill(feeds, light("down", "status unavailable", `status unavailable: ${String(e)}`));
      if (lastStates !== "unavailable") announce("The dashboard's status is unavailable.");
      lastStates = "unavailable";
    }
  };
  void refresh();
  window.setInterval(() => void refresh(), STATUS_EVERY_MS);
  return {
    onStatus(listener) {
      listeners.push(listener);
    },
    streamLight(state, text, words) {
      stream.hidden = false;
      // Called every second: the light is redrawn only when it changes.
      const shown = stream.firstElementChild;
      if (!(shown instanceof HTMLElement) || shown.dataset.state !== state || shown.textContent !== text) fill(stream, light(state, text));
      if (words) announce(words);
    },
    announce,
  };
}

/** What a page starts with: the first status, the server's clock (kept in step with every
 * status), and the shell. */
export interface PageStart {
  status: Status;
  clock: ServerClock;
  shell: Shell;
}

/** The clock of a status. */
export function clockOf(s: Status): ServerClock {
  return new ServerClock(s.now, s.time_zone ?? null, s.utc_offset_seconds);
}

/** Mounts the shell and runs `start` once, with the first status: the pages need the
 * server's clock before they ask for anything. */
export function startPage(current: string, start: (p: PageStart) => void): void {
  let clock: ServerClock | null = null;
  const shell = mountShell(current);
  shell.onStatus((s) => {
    if (clock) {
      clock.sync(s.now);
      return;
    }
    clock = clockOf(s);
    start({ status: s, clock, shell });
  });
}
