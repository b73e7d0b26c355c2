// Contributors as every page shows them: ranking rows with rank and badge icons, awards with
// theirs, and the live lists that the stream keeps current. Used by /contrib and the live page.

import { el, fill } from "./dom";
import { getJson, type UiSettings } from "./api";
import { badgeIcon, orgRankIcon, rankIcon, trophyIcon } from "./icons";
import { tools, type Table } from "./export";
import { panel } from "./panels";
import type { ServerClock } from "./time";

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

/** The ranking table shared by the monthly ranking, the halls of fame and the live lists
 * (`clock`: the first column is the time of the contribution, not the place). */
export function rankingTable(u: UiSettings, rows: Contributor[], empty: string, clock: ServerClock | null = null): HTMLElement {
  if (rows.length === 0) return el("p", { class: "empty" }, empty);
  const head = el(
    "tr",
    {},
    clock ? el("th", {}, "When") : el("th", { class: "num" }, "#"),
    el("th", { class: "num" }, "Points"),
    el("th", {}, "Ranks"),
    el("th", {}, "Badges"),
    el("th", {}, "Organisation"),
  );
  const body = el("tbody");
  rows.forEach((r, i) => body.append(contributorRow(u, r, clock ? clock.short(r.epoch ?? 0) : String(i + 1))));
  return el("div", { class: "scroll short", tabindex: "0" }, el("table", { class: "ranking" }, el("thead", {}, head), body));
}

export function contributorRow(u: UiSettings, r: Contributor, first: string): HTMLTableRowElement {
  const tr = el(
    "tr",
    {},
    el("td", { class: "num" }, first),
    el("td", { class: "num" }, pts(r.pnts)),
    el("td", {}, el("span", { class: "icons" }, monthlyIcon(u, r.rank), orgIcon(u, r.orgRank))),
    el("td", {}, badges(u, r.honorBadge)),
    el("td", {}, orgLink(r.org)),
  );
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
  if (kind === "badge" && typeof what === "number")
    return [badgeIcon(what, u.ranking.badges[what - 1]), `badge ${what}: ${u.ranking.badges[what - 1] ?? ""}`];
  if (kind === "contribution_status" && typeof what === "number")
    return [orgIcon(u, what), `contribution rank ${what}: ${u.ranking.rank_titles[what - 1] ?? ""}`];
  if (kind === "trophy" && Array.isArray(what)) {
    const [categ, level] = what as [unknown, unknown];
    const l = int(level);
    return [trophyIcon(l, u.ranking.trophy_titles[l]), `trophy in ${prettyCateg(String(categ))}: ${u.ranking.trophy_titles[l] ?? l}`];
  }
  return [null, JSON.stringify(a)];
}

export function awardRow(u: UiSettings, a: Award, clock: ServerClock): HTMLTableRowElement {
  const [icon, text] = awardView(u, a.award);
  return el(
    "tr",
    {},
    el("td", { title: clock.time(a.epoch) }, clock.short(a.epoch)),
    el("td", {}, orgLink(a.org)),
    el("td", {}, el("span", { class: "icons" }, icon, " ", text)),
  );
}

/** At most this many last contributors and awards are kept: a wall screen runs for weeks. */
const LAST_KEPT = 50;
const AWARDS_KEPT = 100;

/** The last contributors and the latest awards, kept current by the page's stream: a
 * contribution moves its organisation to the top (a new one appears, unlike the original,
 * which only updated organisations already listed); an award is added on top. Both lists stay
 * bounded. After the stream could not resume, `reload` reads both lists again. */
export class LiveLists {
  readonly panels: [HTMLElement, HTMLElement];
  private last: Contributor[] = [];
  private awards: Award[] = [];
  private readonly lastBox = el("div", { class: "fill" });
  private readonly awardBody = el("tbody");
  private readonly awardBox: HTMLElement;
  private readonly noAward = el("p", { class: "empty" }, "No award in the last 7 days.");

  constructor(
    private readonly u: UiSettings,
    private readonly clock: ServerClock,
    notes: [Node | null, Node | null] = [null, null],
  ) {
    const lastPanel = panel("Last contributors (live)", this.lastBox);
    lastPanel.querySelector("h2")?.append(notes[0] ?? "");
    tools(lastPanel, { table: () => tableOf(this.last), json: () => this.last });
    this.awardBox = el(
      "div",
      { class: "scroll short fill", tabindex: "0" },
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "Organisation"), el("th", {}, "Award"))),
        this.awardBody,
      ),
    );
    const awardPanel = panel("Latest awards (live)", this.noAward);
    awardPanel.querySelector("h2")?.append(notes[1] ?? "");
    tools(awardPanel, {
      table: () => ({
        header: ["epoch", "organisation", "award"],
        rows: this.awards.map((a) => [a.epoch, a.org, JSON.stringify(a.award)]),
      }),
      json: () => this.awards,
    });
    this.panels = [lastPanel, awardPanel];
  }

  /** Reads both lists from their routes (the last 7 days). */
  async reload(): Promise<void> {
    const [last, awards] = await Promise.all([getJson<Contributor[]>("/_getLastContributors"), getJson<Award[]>("/_getLatestAwards")]);
    this.show(last, awards);
  }

  show(last: Contributor[], awards: Award[]): void {
    this.last = last.slice(0, LAST_KEPT);
    this.drawLast();
    this.awards = awards.slice(0, AWARDS_KEPT);
    fill(this.awardBody, ...this.awards.map((a) => awardRow(this.u, a, this.clock)));
    (this.awards.length === 0 ? this.awardBox : this.noAward).replaceWith(this.awards.length === 0 ? this.noAward : this.awardBox);
  }

  private drawLast(): void {
    fill(this.lastBox, rankingTable(this.u, this.last, "No contribution in the last 7 days.", this.clock));
  }

  /** A contributor event of the stream. */
  contributor(c: Contributor): void {
    if (typeof c.org !== "string") return;
    this.last = [c, ...this.last.filter((r) => r.org !== c.org)].slice(0, LAST_KEPT);
    this.drawLast();
    this.lastBox.querySelector("tbody tr")?.classList.add("new");
  }

  /** An award event of the stream. */
  award(a: Award): void {
    if (typeof a.org !== "string") return;
    this.awards = [a, ...this.awards].slice(0, AWARDS_KEPT);
    this.noAward.replaceWith(this.awardBox);
    const tr = awardRow(this.u, a, this.clock);
    tr.classList.add("new");
    this.awardBody.prepend(tr);
    while (this.awardBody.rows.length > AWARDS_KEPT) this.awardBody.deleteRow(-1);
  }
}
