// The filters the geo and trending routes take (mispdash's own; docs/compat.md H16), from
// what a page's form holds: lists typed space- or comma-separated, sent comma-separated.

/** A typed list (`"tlp:* misp-galaxy:*"`, `"ip-dst,domain|ip"`) as a route's parameter. */
export function listParam(text: string): string {
  return text
    .split(/[\s,]+/)
    .filter((p) => p !== "")
    .join(",");
}

/** Tag patterns to include and to exclude as the routes' `tags` and `not_tags`. */
export function tagPatterns(v: { include: string; exclude: string }): Record<string, string> {
  const out: Record<string, string> = {};
  if (listParam(v.include)) out["tags"] = listParam(v.include);
  if (listParam(v.exclude)) out["not_tags"] = listParam(v.exclude);
  return out;
}

/** Attribute types and tag patterns as the geo routes' `type`, `tags` and `not_tags`. */
export function pointFilters(v: { types: string; tags: string; notags: string }): Record<string, string> {
  const out: Record<string, string> = tagPatterns({ include: v.tags, exclude: v.notags });
  if (listParam(v.types)) out["type"] = listParam(v.types);
  return out;
}

/** What a page says of the days a filter could not count, from the days asked (in order) and
 * whether the server noted each; `null` when every day was counted. */
export function uncountedText(days: readonly string[], noted: readonly boolean[]): string | null {
  const missed = days.filter((_, i) => noted[i] === true);
  if (missed.length === 0) return null;
  const which = missed.length === 1 ? missed[0] : `${missed[0]} to ${missed[missed.length - 1]}`;
  return `${missed.length} of the ${days.length} day(s) (${which}) predate the records the type and tag filters read: their points are not counted.`;
}
