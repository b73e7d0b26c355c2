import type { Feed } from "./api";

/** What became of a feed's disconnections: filled from MISP's REST API, or still open and why. */
export function gapsText(f: Feed): string {
  const gaps = f.gaps ?? [];
  if (gaps.length === 0) return "none";
  const filled = gaps.filter((g) => g.state === "filled");
  const missed = filled.reduce((n, g) => n + (g.events ?? 0) + (g.sightings ?? 0), 0);
  const parts = [`${filled.length} filled (${missed} read back)`];
  const filling = gaps.filter((g) => g.state === "filling").length;
  if (filling > 0) parts.push(`${filling} being filled`);
  const open = gaps.filter((g) => g.state === "open");
  if (open.length > 0) {
    parts.push(`${open.length} open: ${open.at(-1)?.error ?? "not read back"} (mispdash backfill fills it)`);
  }
  return parts.join("; ");
}
