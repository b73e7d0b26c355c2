// Contributors as every page shows them: ranking rows with rank and badge icons, awards with
// theirs, and the live streams that bring new ones. Used by /contrib and the live page.

import { el, fill } from "./dom";
import type { UiSettings } from "./api";
import { badgeIcon, orgRankIcon, rankIcon, trophyIcon } from "./icons";
import { panel, serverMinute, tools, type Table } from "./widgets";

export interface Contributor {
  org: string;
  pnts: number;
  rank: number;
  orgRank: number;
  honorBadge: number[];
  epoch?: number;
}
export type CategRow = Contributor & Record<string, number | string | number[]>;
export interface OrgRank {
  org: string;
  points: number;
  rank: number;
  orgRank: number;
  remainingPts: number;
  stepPts: number;
  honorBadge: number[];
}
export interface OrgStatus {
  rank: number;
  status: Record<string, number>;
  totPoints: number;
}
export interface Trophy {
  categ: string;
  trophy_points: number;
  trophy_true_rank: number;
}
export interface Award {
  org: string;
  orgRank: number;
  epoch: number;
  award: unknown;
}

/** Category keys as people read them: "network_activity" → "Network activity". */
export function prettyCateg(c: string): string {
  const s = c.replaceAll("_", " ");
  return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
}

export const int = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : 0);
export const pts = (v: unknown): string => (typeof v === "number" && Number.isFinite(v) ? String(Math.round(v * 100) / 100) : "0");

export function monthlyIcon(u: UiSettings, rank: unknown): SVGSVGElement {
  const level = Math.max(0, Math.min(16, int(rank)));
  return rankIcon(level, level === 0 ? "no monthly rank yet" : `monthly rank ${level}: ${u.ranking.rank_titles[level - 1] ?? ""}`);
}

export function orgIcon(u: UiSettings, level: unknown): SVGSVGElement {
  const l = Math.max(0, Math.min(16, int(level)));
  return orgRankIcon(l, l === 0 ? "no contribution rank yet" : `contribution rank ${l}: ${u.ranking.rank_titles[l - 1] ?? ""}`);
}

export function badges(u: UiSettings, have: unknown): HTMLElement {
  const list = Array.isArray(have) ? have.filter((b): b is number => typeof b === "number") : [];
  return el("span", { class: "icons" }, ...list.map((b) => badgeIcon(b, u.ranking.badges[b - 1] ?? `badge ${b}`)));
}

export function orgLink(org: string): HTMLAnchorElement {
  return el("a", { href: `/contrib?${new URLSearchParams({ org }).toString()}` }, org);
}

/** The ranking table shared by the monthly ranking, the halls of fame and the live lists. */
export function rankingTable(u: UiSettings, rows: Contributor[], empty: string, withDate = false, offset = 0): HTMLElement {
  if (rows.length === 0) return el("p", { class: "empty" }, empty);
  const head = el("tr", {}, withDate ? el("th", {}, "When") : el("th", { class: "num" }, "#"), el("th", { class: "num" }, "Points"), el("th", {}, "Ranks"), el("th", {}, "Badges"), el("th", {}, "Organisation"));
  const body = el("tbody");
  rows.forEach((r, i) => body.append(contributorRow(u, r, withDate ? serverMinute(r.epoch ?? 0, offset) : String(i + 1))));
  return el("div", { class: "scroll short", tabindex: "0" }, el("table", { class: "ranking" }, el("thead", {}, head), body));
}

export function contributorRow(u: UiSettings, r: Contributor, first: string): HTMLTableRowElement {
  const tr = el("tr", {}, el("td", { class: "num" }, first), el("td", { class: "num" }, pts(r.pnts)), el("td", {}, el("span", { class: "icons" }, monthlyIcon(u, r.rank), orgIcon(u, r.orgRank))), el("td", {}, badges(u, r.honorBadge)), el("td", {}, orgLink(r.org)));
  tr.dataset.org = r.org;
  return tr;
}

export const tableOf = (rows: Contributor[]): Table => ({
  header: ["organisation", "points", "monthly rank", "contribution rank", "badges"],
  rows: rows.map((r) => [r.org, r.pnts, int(r.rank), int(r.orgRank), (r.honorBadge ?? []).join(" ")]),
});

/** What an award says, with its icon. */
export function awardView(u: UiSettings, a: unknown): [SVGSVGElement | null, string] {
  if (!Array.isArray(a)) return [null, "award"];
  const [kind, what] = a as [unknown, unknown];
  if (kind === "badge" && typeof what === "number") return [badgeIcon(what, u.ranking.badges[what - 1]), `badge ${what}: ${u.ranking.badges[what - 1] ?? ""}`];
  if (kind === "contribution_status" && typeof what === "number") return [orgIcon(u, what), `contribution rank ${what}: ${u.ranking.rank_titles[what - 1] ?? ""}`];
  if (kind === "trophy" && Array.isArray(what)) {
    const [categ, level] = what as [unknown, unknown];
    const l = int(level);
    return [trophyIcon(l, u.ranking.trophy_titles[l]), `trophy in ${prettyCateg(String(categ))}: ${u.ranking.trophy_titles[l] ?? l}`];
  }
  return [null, JSON.stringify(a)];
}

export function awardRow(u: UiSettings, a: Award, offset: number): HTMLTableRowElement {
  const [icon, text] = awardView(u, a.award);
  return el("tr", {}, el("td", {}, serverMinute(a.epoch, offset)), el("td", {}, orgLink(a.org)), el("td", {}, el("span", { class: "icons" }, icon, " ", text)));
}

/** Reads an SSE stream of JSON objects; EventSource reconnects by itself. */
export function stream<T>(path: string, on: (v: T) => void): void {
  const es = new EventSource(path);
  es.onmessage = (m: MessageEvent<string>) => {
    try {
      on(JSON.parse(m.data) as T);
    } catch {
      // A malformed message is skipped; the stream goes on.
    }
  };
}


/** The last contributors and the latest awards, from their routes' answers, kept current by
 * their streams: a contribution moves its organisation to the top (a new one appears, unlike
 * the original, which only updated organisations already listed); an award is added on top.
 * Both lists stay bounded, for wall screens that run for weeks. */
export function liveLists(u: UiSettings, off: number, last: Contributor[], awards: Award[]): [HTMLElement, HTMLElement] {
  const lastBox = el("div", { class: "fill" });
  const lastRows = [...last];
  const drawLast = (): void => fill(lastBox, rankingTable(u, lastRows, "No contribution in the last 7 days.", true, off));
  drawLast();
  const lastPanel = panel("Last contributors (live)", lastBox);
  tools(lastPanel, { table: () => tableOf(lastRows), json: () => lastRows });

  const awardList = [...awards];
  const awardBody = el("tbody", {}, ...awardList.map((a) => awardRow(u, a, off)));
  const awardBox = el("div", { class: "scroll short fill", tabindex: "0" }, el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "Organisation"), el("th", {}, "Award"))), awardBody));
  const noAward = el("p", { class: "empty" }, "No award in the last 7 days.");
  const awardPanel = panel("Latest awards (live)", awardList.length === 0 ? noAward : awardBox);
  tools(awardPanel, { table: () => ({ header: ["epoch", "organisation", "award"], rows: awardList.map((a) => [a.epoch, a.org, JSON.stringify(a.award)]) }), json: () => awardList });

  stream<Contributor>("/_eventStreamLastContributor", (c) => {
    if (typeof c.org !== "string") return;
    const i = lastRows.findIndex((r) => r.org === c.org);
    if (i >= 0) lastRows.splice(i, 1);
    lastRows.unshift(c);
    lastRows.length = Math.min(lastRows.length, 50);
    drawLast();
    lastBox.querySelector("tbody tr")?.classList.add("new");
  });
  stream<Award>("/_eventStreamAwards", (a) => {
    if (typeof a.org !== "string") return;
    awardList.unshift(a);
    awardList.length = Math.min(awardList.length, 100);
    noAward.replaceWith(awardBox);
    const tr = awardRow(u, a, off);
    tr.classList.add("new");
    awardBody.prepend(tr);
    while (awardBody.rows.length > 100) awardBody.deleteRow(-1);
  });
  return [lastPanel, awardPanel];
}
