// /contrib: who contributes to MISP this month and how they rank. The monthly ranking, the
// chosen organisation's progress (next rank, who to overtake, requirements, badges, trophies
// and each category's global ranking), the halls of fame, the categories per contributor, and
// the last contributors and awards as they stream: new organisations appear without a reload.
// The organisation and the month live in the URL.

import { el, fill } from "./dom";
import { getJson, uiSettings, type UiSettings } from "./api";
import type { Scope } from "./charts";
import { tools } from "./export";
import { startPage } from "./shell";
import { LiveStream } from "./stream";
import type { ServerClock } from "./time";
import { params } from "./urlstate";
import { badgeIcon, BADGE_COUNT, trophyIcon } from "./icons";
import {
  int,
  monthlyIcon,
  orgIcon,
  orgLink,
  prettyCateg,
  pts,
  LiveLists,
  rankingTable,
  tableOf,
  type Award,
  type CategRow,
  type Contributor,
  type OrgRank,
  type OrgStatus,
  type Trophy,
} from "./ranks";
import { panel, refreshSeconds, refresher, Rendering, setField, widePanel } from "./panels";

/** The chosen organisation: rank progress, who to overtake, requirements, badges, trophies. */
async function orgPanels(u: UiSettings, org: string, ranking: Contributor[]): Promise<HTMLElement[]> {
  const [rank, status, honors, trophies] = await Promise.all([
    getJson<OrgRank>("/_getOrgRank", { org }),
    getJson<OrgStatus>("/_getContributionOrgStatus", { org }),
    getJson<number[]>("/_getHonorBadges", { org }),
    getJson<Trophy[]>("/_getTrophies", { org }),
  ]);
  const level = Math.max(0, Math.min(16, int(rank.rank)));
  const next = Math.min(16, level + 1);
  const progress = el("progress", { "aria-label": "Progress to the next monthly rank" });
  const step = Math.max(1, rank.stepPts);
  progress.max = step;
  progress.value = Math.max(0, step - rank.remainingPts);
  const at = ranking.findIndex((r) => r.org === org);
  const above = at > 0 ? ranking[at - 1] : undefined;
  const overtake = above
    ? el("p", {}, `${pts(above.pnts - rank.points + 1)} point(s) to overtake `, orgLink(above.org), ` (#${at}).`)
    : at === 0
      ? el("p", {}, "First this month.")
      : el("p", { class: "hint" }, "Not in this month's ranking yet.");
  const summary = panel(
    org,
    el(
      "div",
      { class: "org-head" },
      monthlyIcon(u, rank.rank),
      el(
        "div",
        {},
        el(
          "p",
          { class: "big-num" },
          `${pts(rank.points)} point(s) this month, monthly rank ${level}${level > 0 ? ` (${u.ranking.rank_titles[level - 1] ?? ""})` : ""}`,
        ),
        level < 16
          ? el("p", {}, progress, ` ${pts(rank.remainingPts)} point(s) to rank ${next} (${u.ranking.rank_titles[next - 1] ?? ""})`)
          : el("p", {}, "Highest monthly rank."),
        overtake,
      ),
    ),
  );
  summary.querySelector("svg.icon")?.classList.add("big");

  // Contribution requirements: 1 fulfilled, 0 missing below the rank, -1 not reached yet.
  const req = el("ol", { class: "reqs" });
  for (let i = 1; i <= 16; i++) {
    const s = status.status[String(i)] ?? -1;
    const state = s === 1 ? "ok" : s === 0 ? "down" : "quiet";
    const word = s === 1 ? "fulfilled" : s === 0 ? "missing" : "not reached";
    req.append(el("li", { "data-state": state }, orgIcon(u, i), ` ${u.ranking.rank_titles[i - 1] ?? i}: ${word}`));
  }
  const reqPanel = panel(
    `Contribution rank ${int(status.rank)}, ${int(status.totPoints)} point(s) in total`,
    el(
      "p",
      { class: "hint" },
      `Monthly rank = floor(log(points) / log(${u.ranking.rank_multiplier})). `,
      ...u.contrib.additional_help_text.map((t) => el("span", {}, `${t} `)),
    ),
    req,
  );
  tools(reqPanel, {
    table: () => ({
      header: ["requirement", "title", "state"],
      rows: Array.from({ length: 16 }, (_, i) => [i + 1, u.ranking.rank_titles[i] ?? "", status.status[String(i + 1)] ?? -1]),
    }),
  });

  const have = new Set(honors);
  const badgePanel = panel(
    "Honour badges",
    el(
      "ul",
      { class: "badges" },
      ...Array.from({ length: BADGE_COUNT }, (_, i) =>
        el(
          "li",
          { "data-state": have.has(i + 1) ? "ok" : "quiet" },
          badgeIcon(i + 1, u.ranking.badges[i], have.has(i + 1)),
          ` ${u.ranking.badges[i] ?? `badge ${i + 1}`}${have.has(i + 1) ? "" : " (not yet)"}`,
        ),
      ),
    ),
  );

  const trophyBody = el("tbody");
  const global = el("div", { "aria-live": "polite" });
  for (const t of trophies) {
    const l = int(t.trophy_true_rank);
    const show = el("button", { type: "button", "aria-label": `Global ranking of ${prettyCateg(t.categ)}` }, prettyCateg(t.categ));
    show.addEventListener("click", () => void categRanking(u, t.categ, global, org));
    trophyBody.append(
      el(
        "tr",
        {},
        el("td", {}, show),
        el("td", {}, el("span", { class: "icons" }, trophyIcon(l, u.ranking.trophy_titles[l]), ` ${u.ranking.trophy_titles[l] ?? l}`)),
        el("td", { class: "num" }, pts(t.trophy_points)),
      ),
    );
  }
  const trophyPanel = panel(
    "Trophies per category",
    trophies.length === 0
      ? el("p", { class: "empty" }, `${org} has no trophy yet.`)
      : el(
          "table",
          {},
          el("thead", {}, el("tr", {}, el("th", {}, "Category"), el("th", {}, "Trophy"), el("th", { class: "num" }, "Points"))),
          trophyBody,
        ),
    global,
  );
  tools(trophyPanel, {
    table: () => ({
      header: ["category", "level", "title", "points"],
      rows: trophies.map((t) => [
        t.categ,
        int(t.trophy_true_rank),
        u.ranking.trophy_titles[int(t.trophy_true_rank)] ?? "",
        t.trophy_points,
      ]),
    }),
  });
  return [summary, reqPanel, badgePanel, trophyPanel];
}

async function categRanking(u: UiSettings, categ: string, into: HTMLElement, org: string): Promise<void> {
  const rows = await getJson<[string, number, number][]>(`/_getAllOrgsTrophyRanking/${encodeURIComponent(categ)}`);
  const body = el("tbody");
  rows.slice(0, 100).forEach(([o, p, l], i) => {
    const tr = el(
      "tr",
      o === org ? { class: "current" } : {},
      el("td", { class: "num" }, i + 1),
      el("td", {}, trophyIcon(int(l), u.ranking.trophy_titles[int(l)])),
      el("td", { class: "num" }, pts(p)),
      el("td", {}, orgLink(o)),
    );
    body.append(tr);
  });
  fill(
    into,
    el("h3", {}, `${prettyCateg(categ)}: global ranking`),
    el(
      "div",
      { class: "scroll short", tabindex: "0" },
      el(
        "table",
        {},
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", { class: "num" }, "#"),
            el("th", {}, "Trophy"),
            el("th", { class: "num" }, "Points"),
            el("th", {}, "Organisation"),
          ),
        ),
        body,
      ),
    ),
  );
}

/** Categories per contributor: sortable by any column, searchable by name. */
function categPanel(u: UiSettings, rows: CategRow[], month: string): HTMLElement {
  const cats = u.ranking.categories;
  let sortKey = "pnts";
  let desc = true;
  const search = el("input", { type: "search", placeholder: "organisation", "aria-label": "Search an organisation" });
  const table = el("table", { class: "categs" });
  const draw = (): void => {
    const needle = search.value.trim().toLowerCase();
    const shown = rows.filter((r) => r.org.toLowerCase().includes(needle));
    shown.sort((a, b) => {
      const x = a[sortKey];
      const y = b[sortKey];
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return desc ? -c : c;
    });
    const th = (key: string, label: string): HTMLTableCellElement => {
      const b = el("button", { type: "button", "aria-label": `Sort by ${label}` }, label, sortKey === key ? (desc ? " ▼" : " ▲") : "");
      b.addEventListener("click", () => {
        desc = sortKey === key ? !desc : key !== "org";
        sortKey = key;
        draw();
      });
      const cell = el("th", key === "org" ? {} : { class: "num" }, b);
      if (sortKey === key) cell.setAttribute("aria-sort", desc ? "descending" : "ascending");
      return cell;
    };
    fill(
      table,
      el("thead", {}, el("tr", {}, th("org", "Organisation"), th("pnts", "Points"), ...cats.map((c) => th(c, prettyCateg(c))))),
      el(
        "tbody",
        {},
        ...shown.map((r) =>
          el(
            "tr",
            {},
            el("td", {}, orgLink(r.org)),
            el("td", { class: "num" }, pts(r.pnts)),
            ...cats.map((c) => el("td", { class: "num" }, pts(r[c]))),
          ),
        ),
      ),
    );
  };
  search.addEventListener("input", draw);
  draw();
  const p = widePanel(
    `Contributions per category, ${month}`,
    rows.length === 0
      ? el("p", { class: "empty" }, `No contribution in ${month}.`)
      : el("div", {}, el("label", {}, "Search ", search), el("div", { class: "scroll short", tabindex: "0" }, table)),
  );
  tools(p, {
    table: () => ({
      header: ["organisation", "points", ...cats],
      rows: rows.map((r) => [r.org, r.pnts, ...cats.map((c) => (typeof r[c] === "number" ? r[c] : 0))]),
    }),
  });
  return p;
}

/** The organisation and the month the URL asks for (this month by default, read again at every
 * refresh so that a wall screen moves on with the months). */
function readView(clock: ServerClock): { org: string; month: string } {
  const q = params();
  const m = q.get("month");
  return { org: (q.get("org") ?? "").trim(), month: m !== null && /^\d{4}-(0[1-9]|1[0-2])$/.test(m) ? m : clock.month(clock.now()) };
}

async function render(_scope: Scope, clock: ServerClock, u: UiSettings, lists: LiveLists): Promise<Node[]> {
  const { org, month } = readView(clock);
  const date = String(clock.noonOf(`${month}-15`));
  const [ranking, fame, fameQual, categs] = await Promise.all([
    getJson<Contributor[]>("/_getTopContributor", { date }),
    getJson<Contributor[]>("/_getFameContributor"),
    getJson<Contributor[]>("/_getFameQualContributor"),
    getJson<CategRow[]>("/_getCategPerContrib", { date }),
  ]);
  const rankingPanel = panel(`Contributor ranking, ${month}`, rankingTable(u, ranking, `No contribution in ${month}.`));
  tools(rankingPanel, { table: () => tableOf(ranking), json: () => ranking });
  const famePanel = panel("Hall of fame, previous month", rankingTable(u, fame, "Nobody contributed in the previous month."));
  tools(famePanel, { table: () => tableOf(fame) });
  const qualPanel = panel("Hall of fame (quality), previous month", rankingTable(u, fameQual, "Nobody contributed in the previous month."));
  tools(qualPanel, { table: () => tableOf(fameQual) });
  const parts: HTMLElement[] = [];
  if (org) parts.push(...(await orgPanels(u, org, ranking)));
  // The live lists are the same panels at every refresh: the stream keeps them current.
  parts.push(rankingPanel, ...lists.panels, famePanel, qualPanel, categPanel(u, categs, month));
  return parts;
}

const main = document.getElementById("contrib");
const form = document.getElementById("pick");
startPage("/contrib", ({ clock, shell }) => {
  if (!(main instanceof HTMLElement) || !(form instanceof HTMLFormElement)) return;
  const { org, month } = readView(clock);
  setField(form, "org", org);
  setField(form, "month", month);
  void getJson<string[]>("/_getAllOrg").then((orgs) => {
    const list = document.getElementById("orgs");
    if (list) fill(list, ...[...orgs].sort((a, b) => a.localeCompare(b)).map((o) => el("option", { value: o })));
  });
  void uiSettings().then((u) => {
    let lists: LiveLists | null = null;
    const stream = new LiveStream(
      ["contributors", "awards"],
      {
        event: (topic, data) => {
          const v: unknown = JSON.parse(data);
          if (topic === "contributors") lists?.contributor(v as Contributor);
          else lists?.award(v as Award);
        },
        snapshot: (topic) => {
          // The lists come from their routes, on the first connection and after a new server
          // process.
          if (topic === "awards") void lists?.reload().catch(() => undefined);
        },
        // After an interruption the historical panels are read again too.
        back: () => void rendering.run(),
      },
      shell,
      clock,
    );
    lists = new LiveLists(u, clock, [stream.note(), stream.note()]);
    const live = lists;
    const rendering = new Rendering(main, "the contributors", (scope) => render(scope, clock, u, live));
    void rendering.run().then(() => stream.start());
    // The original reloaded the whole page every [CONTRIB] min_between_reload minutes; here
    // the panels are read again in place (the live lists stream).
    form.append(refresher(refreshSeconds(params(), u.contrib.min_between_reload), () => rendering.run(), clock));
  });
});
