// /status in a browser: what the status JSON says, as panels an admin reads at a glance.

import { el, fill } from "./dom";
import type { Feed, Status } from "./api";
import { feedState, mountShell } from "./shell";
import { serverTime, tools } from "./widgets";

function when(epoch: number | null, s: Status): string {
  if (epoch === null) return "never";
  const age = Math.max(0, Math.round(s.now - epoch));
  return `${serverTime(epoch, s.utc_offset_seconds)} (${age} s ago)`;
}

function facts(rows: [string, string | Node][]): HTMLDListElement {
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", {}, v));
  return dl;
}

function panel(title: string, wide: boolean, ...body: (Node | string)[]): HTMLElement {
  return el("section", { class: wide ? "panel wide" : "panel", "aria-label": title }, el("h2", {}, title), ...body);
}

function feedsPanel(s: Status): HTMLElement {
  const feeds: Feed[] = s.feeds ?? [];
  if (s.feeds_error) return panel("MISP feeds", true, el("p", { class: "error" }, s.feeds_error));
  if (feeds.length === 0) {
    return panel(
      "MISP feeds",
      true,
      el(
        "p",
        { class: "empty" },
        "No feed has reported yet: is a subscriber running? ",
        el("code", {}, "mispdash run"),
        " starts one per [RedisGlobal] misp_instances.",
      ),
    );
  }
  const head = el(
    "tr",
    {},
    ...["Feed", "State", "Endpoint", "Last message", "Last keepalive", "Messages", "Per minute", "Connects", "Disconnected since"].map((h) =>
      el("th", { class: ["Messages", "Per minute", "Connects"].includes(h) ? "num" : "" }, h),
    ),
  );
  const rows = feeds.map((f) => {
    const { state, text } = feedState(f, s.now);
    return el(
      "tr",
      {},
      el("td", {}, f.name),
      el("td", {}, el("span", { class: "light", "data-state": state }, text)),
      el("td", {}, el("code", {}, f.endpoint ?? "")),
      el("td", {}, when(f.last_message, s)),
      el("td", {}, when(f.last_keepalive, s)),
      el("td", { class: "num" }, f.messages),
      el("td", { class: "num" }, f.messages_per_minute === null ? "–" : f.messages_per_minute),
      el("td", { class: "num" }, f.connects ?? "–"),
      el("td", {}, f.disconnected_since === null ? "–" : when(f.disconnected_since, s)),
    );
  });
  return panel("MISP feeds", true, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function bufferPanel(s: Status): HTMLElement {
  if (s.buffer_error) return panel("Buffer", false, el("p", { class: "error" }, s.buffer_error));
  const b = s.buffer;
  if (!b) return panel("Buffer", false, el("p", { class: "empty" }, "Redis is not reachable"));
  const lease = b.dispatcher_lease;
  return panel(
    "Buffer and dispatcher",
    false,
    facts([
      ["Waiting", String(b.length)],
      ["Being applied", String(b.processing)],
      [
        "Dead letters",
        b.dead_letters > 0
          ? el("span", {}, `${b.dead_letters} (see `, el("code", {}, "mispdash dead-letters list"), ")")
          : "0",
      ],
      ["Active dispatcher", lease?.holder ?? "none"],
      ["Standby dispatchers", lease && lease.standby.length > 0 ? lease.standby.join(", ") : "none"],
    ]),
  );
}

function redisPanel(s: Status): HTMLElement {
  return panel(
    "Redis and GeoIP",
    false,
    facts([
      ["Redis", s.redis.reachable ? "reachable" : `unreachable: ${s.redis.error ?? ""}`],
      ["GeoIP database", s.geoip.path],
      ["Loaded", s.geoip.loaded ? `${s.geoip.database_type ?? ""}, built ${s.geoip.build_date ?? "?"}` : `no: ${s.geoip.error ?? ""}`],
      ["Server time", serverTime(s.now, s.utc_offset_seconds)],
      ["Version", s.version],
    ]),
  );
}

function serverPanel(s: Status): HTMLElement {
  const c = s.connections;
  const st = s.streams;
  return panel(
    "Web server",
    false,
    facts([
      ["Connections open", c ? `${c.open} of at most ${c.max}` : "–"],
      ["Refused over the limits", c ? String(c.refused_over_limits) : "–"],
      ["Closed silent", c ? `${c.closed_silent} (after ${c.timeout_seconds} s)` : "–"],
      ["Live stream clients", st ? String(st.clients) : "–"],
      ["Slow stream clients dropped", st ? String(st.slow_clients_dropped) : "–"],
    ]),
  );
}

const main = document.getElementById("status");
const shell = mountShell("/status");
shell.onStatus((s) => {
  if (!main) return;
  main.setAttribute("aria-busy", "false");
  fill(
    main,
    feedsPanel(s),
    bufferPanel(s),
    redisPanel(s),
    serverPanel(s),
    panel("When something looks wrong", false, el("p", { class: "hint" }, "Run ", el("code", {}, "mispdash selftest"), " on the dashboard's machine: it checks the configuration, Redis, the GeoIP database, every MISP feed and the dispatcher, and says what to fix.")),
  );
  // Each panel's export is the status as the server gave it (what an admin attaches to a
  // support request).
  for (const section of main.querySelectorAll<HTMLElement>("section.panel:not(:last-child)")) tools(section, { json: () => s });
});
