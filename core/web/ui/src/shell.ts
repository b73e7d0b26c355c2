// What every page shares: the header with the page links, a freshness light per MISP feed,
// the login state and the theme toggle; and the server's clock, which pages use for "now".

import { el, fill } from "./dom";
import { status, type Feed, type Status } from "./api";
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

export function applyStoredTheme(): void {
  const t = localStorage.getItem(THEME_KEY);
  document.documentElement.dataset.theme = t === "light" ? "light" : "dark";
}


/** How a feed looks in the header: its state and the words that say why. */
export function feedState(f: Feed, now: number): { state: "ok" | "quiet" | "down"; text: string } {
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

/** Builds the header into `document.body` and starts the status polling. */
export function mountShell(current: string): Shell {
  applyStoredTheme();
  const feeds = el("div", { class: "feeds", "aria-live": "polite", "aria-label": "MISP feeds" });
  const who = el("span", { class: "who" });
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
    feeds,
    who,
    theme,
  );
  document.body.prepend(header);
  kiosk(current, header);

  const listeners: ((s: Status) => void)[] = [];
  const refresh = async (): Promise<void> => {
    try {
      const s = await status();
      const lights = (s.feeds ?? []).map((f) => {
        const { state, text } = feedState(f, s.now);
        return el("span", { class: "light", "data-state": state, title: `${f.name}: ${text}` }, `${f.name}: ${text}`);
      });
      fill(feeds, ...(lights.length > 0 ? lights : [el("span", { class: "light", "data-state": "quiet" }, "no feed")]));
      if (s.auth.enabled) {
        fill(who, s.auth.user ?? "", " ", el("a", { href: "/logout" }, "Log out"));
      } else {
        fill(who);
      }
      for (const l of listeners) l(s);
    } catch (e) {
      fill(feeds, el("span", { class: "light", "data-state": "down" }, `status unavailable: ${String(e)}`));
    }
  };
  void refresh();
  window.setInterval(() => void refresh(), 5000);
  return {
    onStatus(listener) {
      listeners.push(listener);
    },
  };
}

/** Mounts the shell and runs `start` once, with the first status: the pages need the
 * server's clock before they ask for anything. */
export function startPage(current: string, start: (s: Status) => void): void {
  let started = false;
  mountShell(current).onStatus((s) => {
    if (started) return;
    started = true;
    start(s);
  });
}
