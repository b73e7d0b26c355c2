// /users: who logs in to MISP and when, and whether logging in leads to contributing. The day
// and the organisation live in the URL; "today" is the server's day.

import { el, fill } from "./dom";
import { getJson, uiSettings, type Status } from "./api";
import { startPage } from "./shell";
import { bars, dateParam, noonOf, panel, refreshSeconds, refresher, serverDay, tools } from "./widgets";

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
  const head = el("tr", {}, el("th", {}, ""), ...Array.from({ length: 24 }, (_, h) => el("th", { class: "hour" }, h % 3 === 0 ? String(h) : "")));
  const rows = card.map((row, day) =>
    el(
      "tr",
      {},
      el("th", {}, WEEKDAYS[day]?.slice(0, 3) ?? ""),
      ...row.map((n, hour) => {
        const dot = el("span", { class: "dot" });
        // CSSOM, not a style attribute (the CSP allows none).
        dot.style.transform = `scale(${n === 0 ? 0 : 0.25 + (0.75 * n) / max})`;
        return el("td", { class: "cell", title: `${WEEKDAYS[day] ?? ""} ${hour}:00: ${n} login(s)` }, dot);
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
function overtime(o: Overtime, offset: number): HTMLElement {
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
  for (let t = t0; t <= t1; t += 86400) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", x(t).toFixed(1));
    label.setAttribute("y", String(h + 16));
    label.textContent = serverDay(t, offset).slice(5);
    svg.append(label);
  }
  const logins = o.login.reduce((a, [, v]) => a + v, 0);
  svg.setAttribute("aria-label", `${logins} login(s) over the 6 days shown`);
  return el("div", {}, svg, el("p", { class: "hint" }, el("span", { class: "key login" }, "logins per hour"), " ", el("span", { class: "key contrib" }, "the day's contribution points"), ` (${logins} login(s) in all)`));
}

async function render(main: HTMLElement, s: Status, day: string, org: string): Promise<void> {
  const off = s.utc_offset_seconds;
  const today = serverDay(s.now, off);
  // Today: the server's now; another day: its last second, as the original asked.
  const date = day === today ? Math.floor(s.now) : noonOf(day, off) + 12 * 3600 - 1;
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
  tools(cardPanel, { table: () => ({ header: ["weekday", ...Array.from({ length: 24 }, (_, h) => `${h}:00`)], rows: card.map((row, d) => [WEEKDAYS[d] ?? String(d), ...row]) }) });
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
  const overPanel = panel(`Logins and contributions over time${org ? `, ${org}` : ""}`, overtime(over, off));
  tools(overPanel, { table: () => ({ header: ["hour (epoch)", "logins", "contribution points"], rows: over.login.map(([t, n], i) => [t, n, over.contrib[i]?.[1] ?? 0]) }), json: () => over });
  main.setAttribute("aria-busy", "false");
  fill(main, cardPanel, topPanel, splitPanel, overPanel);
}

const main = document.getElementById("users");
const form = document.getElementById("pick");
startPage("/users", (s) => {
  if (!(main instanceof HTMLElement) || !(form instanceof HTMLFormElement)) return;
  const q = new URLSearchParams(window.location.search);
  const day = dateParam(q, "date") ?? serverDay(s.now, s.utc_offset_seconds);
  const org = (q.get("org") ?? "").trim();
  const dateInput = form.elements.namedItem("date");
  const orgInput = form.elements.namedItem("org");
  if (dateInput instanceof HTMLInputElement) {
    dateInput.value = day;
    dateInput.max = serverDay(s.now, s.utc_offset_seconds);
  }
  if (orgInput instanceof HTMLInputElement) orgInput.value = org;
  const list = document.getElementById("orgs");
  getJson<string[]>("/_getAllLoggedOrg")
    .then((orgs) => {
      if (list) fill(list, ...[...orgs].sort((x, y) => x.localeCompare(y)).map((o) => el("option", {}, o)));
    })
    .catch(() => undefined);
  const show = (): Promise<void> =>
    render(main, s, day, org).catch((e: unknown) => {
      main.setAttribute("aria-busy", "false");
      fill(main, el("p", { class: "error" }, `Cannot load the logins: ${String(e)}`));
    });
  void show();
  void uiSettings().then((u) => form.append(refresher(refreshSeconds(u), show)));
});
