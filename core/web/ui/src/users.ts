// /users: who logs in to MISP and when, and whether logging in leads to contributing. The day
// and the organisation live in the URL; "today" is the server's day.

import { el, fill } from "./dom";
import { getJson, uiSettings } from "./api";
import type { Scope } from "./charts";
import { tools } from "./export";
import { bars, panel, refreshSeconds, refresher, Rendering } from "./panels";
import { startPage } from "./shell";
import { DAY, type ServerClock } from "./time";
import { dayParam, params } from "./urlstate";

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

type Punchcard = number[][];
interface Overtime {
  login: [number, number][];
  contrib: [number, number][];
}

/** The 7x24 login grid (rows Sunday first, server-local hours), busiest cell named. */
function punchcard(card: Punchcard, org: string): HTMLElement {
  const total = card.flat().reduce((a, b) => a + b, 0);
  if (total === 0) {
    return el(
      "p",
      { class: "empty" },
      `No login recorded in these 7 days${org ? ` for ${org}` : ""}. MISP publishes logins only with `,
      el("code", {}, "Plugin.ZeroMQ_audit_notifications_enable"),
      " on (and mispdash subscribed to its audit topic).",
    );
  }
  let best = { day: 0, hour: 0, n: -1 };
  card.forEach((row, day) =>
    row.forEach((n, hour) => {
      if (n > best.n) best = { day, hour, n };
    }),
  );
  const max = Math.max(best.n, 1);
  const head = el(
    "tr",
    {},
    el("th", {}, ""),
    ...Array.from({ length: 24 }, (_, h) => el("th", { class: "hour" }, h % 3 === 0 ? String(h) : "")),
  );
  const rows = card.map((row, day) =>
    el(
      "tr",
      {},
      el("th", {}, WEEKDAYS[day]?.slice(0, 3) ?? ""),
      ...row.map((n, hour) => {
        const dot = el("span", { class: "dot", "aria-hidden": "true" });
        // CSSOM, not a style attribute (the CSP allows none).
        dot.style.transform = `scale(${n === 0 ? 0 : 0.25 + (0.75 * n) / max})`;
        // The count is in the cell as text, for readers and keyboards; the dot shows it at a
        // glance.
        return el(
          "td",
          { class: n === 0 ? "cell zero" : "cell", title: `${WEEKDAYS[day] ?? ""} ${hour}:00: ${n} login(s)` },
          dot,
          el("span", { class: "n" }, String(n)),
        );
      }),
    ),
  );
  return el(
    "div",
    {},
    el("table", { class: "punchcard", "aria-label": "Logins per weekday and hour" }, el("thead", {}, head), el("tbody", {}, ...rows)),
    el("p", { class: "hint" }, `${total} login(s); busiest: ${WEEKDAYS[best.day] ?? ""} ${best.hour}:00 (${best.n} logins)`),
  );
}

/** Logins per hour and the day's contribution points, as a step line (SVG). */
function overtime(o: Overtime, clock: ServerClock): HTMLElement {
  const w = 720;
  const h = 160;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + 20}`);
  svg.setAttribute("class", "overtime");
  svg.setAttribute("role", "img");
  const series: [string, [number, number][]][] = [
    ["login", o.login],
    ["contrib", o.contrib],
  ];
  const t0 = o.login[0]?.[0] ?? 0;
  const t1 = o.login[o.login.length - 1]?.[0] ?? t0 + 1;
  const x = (t: number): number => ((t - t0) / Math.max(t1 - t0, 1)) * w;
  for (const [name, points] of series) {
    const max = Math.max(...points.map((p) => p[1]), 1);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", name);
    line.setAttribute("points", points.map(([t, v]) => `${x(t).toFixed(1)},${(h - (h * v) / max).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  // A label at each day's first point: days of 23 or 25 hours (daylight-saving changes)
  // keep their own date.
  let shownDay = "";
  for (const [t] of o.login) {
    const day = clock.day(t);
    if (day === shownDay) continue;
    shownDay = day;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", x(t).toFixed(1));
    label.setAttribute("y", String(h + 16));
    label.textContent = day.slice(5);
    svg.append(label);
  }
  const logins = o.login.reduce((a, [, v]) => a + v, 0);
  svg.setAttribute("aria-label", `${logins} login(s) over the 6 days shown`);
  return el(
    "div",
    {},
    svg,
    el(
      "p",
      { class: "hint" },
      el("span", { class: "key login" }, "logins per hour"),
      " ",
      el("span", { class: "key contrib" }, "the day's contribution points"),
      ` (${logins} login(s) in all)`,
    ),
  );
}

async function render(_scope: Scope, clock: ServerClock): Promise<Node[]> {
  const q = params();
  const today = clock.today();
  const day = dayParam(q, "date") ?? today;
  const org = (q.get("org") ?? "").trim();
  // Today: the server's now; another day: its last second, as the original asked.
  const date = day === today ? Math.floor(clock.now()) : clock.noonOf(day) + DAY / 2 - 1;
  const orgParam: Record<string, string> = org ? { org } : {};
  const [card, top, vs, over] = await Promise.all([
    getJson<Punchcard>("/_getUserLogins", { date: String(date), ...orgParam }),
    getJson<[string, number][]>("/_getTopOrglogin", { date: String(date) }),
    getJson<[number, number]>("/_getLoginVSCOntribution", { date: String(date) }),
    getJson<Overtime>("/_getUserLoginsAndContribOvertime", { date: String(date), ...orgParam }),
  ]);
  const [withC, without] = vs;
  const split = el("div", { class: "split" });
  const a = el("span", { class: "with" });
  const b = el("span", { class: "without" });
  const sum = Math.max(withC + without, 1);
  a.style.width = `${(100 * withC) / sum}%`;
  b.style.width = `${(100 * without) / sum}%`;
  split.append(a, b);
  const cardPanel = panel(`Logins, the 7 days to ${day}${org ? `, ${org}` : ""}`, punchcard(card, org));
  tools(cardPanel, {
    table: () => ({
      header: ["weekday", ...Array.from({ length: 24 }, (_, h) => `${h}:00`)],
      rows: card.map((row, d) => [WEEKDAYS[d] ?? String(d), ...row]),
    }),
  });
  const topPanel = panel(
    `Contribution points per login day, the 8 days to ${day}`,
    bars(
      top.map(([name, ratio]) => ({ label: name, count: ratio, shown: ratio.toFixed(ratio % 1 === 0 ? 0 : 1) })),
      `No organisation logged in during the 8 days to ${day}.`,
    ),
  );
  tools(topPanel, { table: () => ({ header: ["organisation", "points per login day"], rows: top }) });
  const splitPanel = panel(
    `Contribution after login, ${day}`,
    withC + without === 0
      ? el("p", { class: "empty" }, `No login on ${day}.`)
      : el("div", {}, split, el("p", {}, `${withC} organisation(s) logged in and contributed; ${without} only logged in.`)),
  );
  tools(splitPanel, { table: () => ({ header: ["logged in and contributed", "only logged in"], rows: [[withC, without]] }) });
  const overPanel = panel(`Logins and contributions over time${org ? `, ${org}` : ""}`, overtime(over, clock));
  tools(overPanel, {
    table: () => ({
      header: ["hour (epoch)", "logins", "contribution points"],
      rows: over.login.map(([t, n], i) => [t, n, over.contrib[i]?.[1] ?? 0]),
    }),
    json: () => over,
  });
  return [cardPanel, topPanel, splitPanel, overPanel];
}

const main = document.getElementById("users");
const form = document.getElementById("pick");
startPage("/users", ({ clock }) => {
  if (!(main instanceof HTMLElement) || !(form instanceof HTMLFormElement)) return;
  const q = params();
  const dateInput = form.elements.namedItem("date");
  const orgInput = form.elements.namedItem("org");
  if (dateInput instanceof HTMLInputElement) {
    dateInput.value = dayParam(q, "date") ?? clock.today();
    dateInput.max = clock.today();
  }
  if (orgInput instanceof HTMLInputElement) orgInput.value = (q.get("org") ?? "").trim();
  const list = document.getElementById("orgs");
  getJson<string[]>("/_getAllLoggedOrg")
    .then((orgs) => {
      if (list) fill(list, ...[...orgs].sort((x, y) => x.localeCompare(y)).map((o) => el("option", {}, o)));
    })
    .catch(() => undefined);
  const rendering = new Rendering(main, "the logins", (scope) => render(scope, clock));
  void rendering.run();
  void uiSettings().then((u) =>
    form.append(refresher(refreshSeconds(params(), u.geo.update_frequency_minutes), () => rendering.run(), clock)),
  );
});
