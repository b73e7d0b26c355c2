// /status in a browser: what the status JSON says, as panels an admin reads at a glance.

import { gapsText } from "./gaps";
import { el, fill } from "./dom";
import type { Feed, Status } from "./api";
import { tools } from "./export";
import { panel, widePanel } from "./panels";
import { clockOf, feedState, mountShell } from "./shell";
import type { ServerClock } from "./time";

function when(epoch: number | null, s: Status, clock: ServerClock): string {
  if (epoch === null) return "never";
  const age = Math.max(0, Math.round(s.now - epoch));
  return `${clock.time(epoch)} (${age} s ago)`;
}

/** A dispatcher's identity ("host pid N started <ms>") with its start as a date. */
function dispatcher(identity: string | null | undefined, started: number | null | undefined, clock: ServerClock): string {
  if (!identity) return "none";
  const who = identity.replace(/ started \d+$/, "");
  return typeof started === "number" ? `${who}, started ${clock.time(started)}` : who;
}

function facts(rows: [string, string | Node][]): HTMLDListElement {
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", {}, v));
  return dl;
}

function feedsPanel(s: Status, clock: ServerClock): HTMLElement {
  const feeds: Feed[] = s.feeds ?? [];
  if (s.feeds_error) return widePanel("MISP feeds", el("p", { class: "error" }, s.feeds_error));
  if (feeds.length === 0) {
    return widePanel(
      "MISP feeds",
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
    ...[
      "Feed",
      "State",
      "Endpoint",
      "Last message",
      "Last keepalive",
      "Messages",
      "Per minute",
      "Connects",
      "Disconnected since",
      "Gaps",
    ].map((h) => el("th", { class: ["Messages", "Per minute", "Connects"].includes(h) ? "num" : "" }, h)),
  );
  const rows = feeds.map((f) => {
    const { state, text } = feedState(f, s.now);
    return el(
      "tr",
      {},
      el("td", {}, f.name),
      el("td", {}, el("span", { class: "light", "data-state": state }, text)),
      el("td", {}, el("code", {}, f.endpoint ?? "")),
      el("td", {}, when(f.last_message, s, clock)),
      el("td", {}, when(f.last_keepalive, s, clock)),
      el("td", { class: "num" }, f.messages),
      el("td", { class: "num" }, f.messages_per_minute === null ? "–" : f.messages_per_minute),
      el("td", { class: "num" }, f.connects ?? "–"),
      el("td", {}, f.disconnected_since === null ? "–" : when(f.disconnected_since, s, clock)),
      el("td", {}, gapsText(f)),
    );
  });
  return widePanel("MISP feeds", el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function bufferPanel(s: Status, clock: ServerClock): HTMLElement {
  if (s.buffer_error) return panel("Buffer", el("p", { class: "error" }, s.buffer_error));
  const b = s.buffer;
  if (!b) return panel("Buffer", el("p", { class: "empty" }, "Redis is not reachable"));
  const lease = b.dispatcher_lease;
  return panel(
    "Buffer and dispatcher",
    facts([
      ["Waiting", String(b.length)],
      ["Being applied", String(b.processing)],
      [
        "Dead letters",
        b.dead_letters > 0 ? el("span", {}, `${b.dead_letters} (see `, el("code", {}, "mispdash dead-letters list"), ")") : "0",
      ],
      ["Active dispatcher", dispatcher(lease?.holder, lease?.holder_started, clock)],
      [
        "Standby dispatchers",
        lease && lease.standby.length > 0
          ? lease.standby.map((w, i) => dispatcher(w, lease.standby_started?.[i], clock)).join("; ")
          : "none",
      ],
    ]),
  );
}

function redisPanel(s: Status, clock: ServerClock): HTMLElement {
  return panel(
    "Redis and GeoIP",
    facts([
      ["Redis", s.redis.reachable ? "reachable" : `unreachable: ${s.redis.error ?? ""}`],
      ["GeoIP database", s.geoip.path],
      ["Loaded", s.geoip.loaded ? `${s.geoip.database_type ?? ""}, built ${s.geoip.build_date ?? "?"}` : `no: ${s.geoip.error ?? ""}`],
      ["Server time", `${clock.time(s.now)} ${clock.zone ?? clock.zoneName(s.now)}`],
      ["Version", s.version],
    ]),
  );
}

function serverPanel(s: Status, clock: ServerClock): HTMLElement {
  const c = s.connections;
  const st = s.streams;
  const refused = st?.refused_clients ?? [];
  return panel(
    "Web server",
    facts([
      ["Connections open", c ? `${c.open} of at most ${c.max}` : "–"],
      ["Refused over the limits", c ? String(c.refused_over_limits) : "–"],
      ["Closed silent", c ? `${c.closed_silent} (after ${c.timeout_seconds} s)` : "–"],
      ["Live stream clients", st ? String(st.clients) : "–"],
      ["Slow stream clients dropped", st ? String(st.slow_clients_dropped) : "–"],
      [
        "Streams refused (per-client cap)",
        st?.max_per_client ? `${st.refused_over_cap ?? 0} (at most ${st.max_per_client} per client)` : "–",
      ],
    ]),
    // A screen refused its stream stays empty without saying why: say it here.
    ...refused
      .slice(0, 5)
      .map((r) =>
        el(
          "p",
          { class: "note filter-note", role: "note" },
          `${r.client}: ${r.refused} stream(s) refused, last ${clock.time(r.last)}. ${r.hint}.`,
        ),
      ),
  );
}

const main = document.getElementById("status");
const shell = mountShell("/status");
shell.onStatus((s) => {
  if (!main) return;
  main.setAttribute("aria-busy", "false");
  const clock = clockOf(s);
  fill(
    main,
    feedsPanel(s, clock),
    bufferPanel(s, clock),
    redisPanel(s, clock),
    serverPanel(s, clock),
    panel(
      "When something looks wrong",
      el(
        "p",
        { class: "hint" },
        "Run ",
        el("code", {}, "mispdash selftest"),
        " on the dashboard's machine: it checks the configuration, Redis, the GeoIP database, every MISP feed and the dispatcher, and says what to fix.",
      ),
    ),
  );
  // Each panel's export is the status as the server gave it (what an admin attaches to a
  // support request).
  for (const section of main.querySelectorAll<HTMLElement>("section.panel:not(:last-child)")) tools(section, { json: () => s });
});
