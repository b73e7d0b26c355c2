// The live log's filters, as kept in the URL (`?f=<path>~<eq|ne|has>~<value>`): "equals" and
// "is not" go to the `filters` cookie that the server applies to the history and the stream
// (the original's format: a field path to a value or a list of values, "!" meaning "is not");
// "contains" is applied in the page.

export type Op = "eq" | "ne" | "has";

export interface Filter {
  path: string;
  op: Op;
  value: string;
}

export const OP_WORDS: Record<Op, string> = { eq: "=", ne: "≠", has: "contains" };

/** The filters of a query string. */
export function readFilters(q: URLSearchParams): Filter[] {
  const out: Filter[] = [];
  for (const f of q.getAll("f")) {
    const [path, op, ...rest] = f.split("~");
    const value = rest.join("~");
    if (path && (op === "eq" || op === "ne" || op === "has") && value !== "") out.push({ path, op, value });
  }
  return out;
}

/** The `f` parameters of filters. */
export function filterParams(filters: readonly Filter[]): string[] {
  return filters.map((f) => `${f.path}~${f.op}~${f.value}`);
}

/** The `filters` cookie's value (URL-encoded JSON), or "" when no filter goes to the server. */
export function cookieValue(filters: readonly Filter[]): string {
  const obj: Record<string, string[]> = {};
  for (const f of filters) {
    if (f.op === "has") continue;
    (obj[f.path] ??= []).push(f.op === "ne" ? `!${f.value}` : f.value);
  }
  const flat: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(obj)) flat[k] = v.length === 1 ? (v[0] ?? "") : v;
  return Object.keys(flat).length === 0 ? "" : encodeURIComponent(JSON.stringify(flat));
}

/** The column that shows a path (a composite column shows several: "a | b"), or -1. */
export function columnOf(path: string, header: readonly string[]): number {
  return header.findIndex((h) => h.split(" | ").includes(path));
}

/** The page-side filters ("contains") as a test of a row's cell texts. */
export function containsTest(filters: readonly Filter[], header: readonly string[]): (cells: readonly string[]) => boolean {
  const tests = filters
    .filter((f) => f.op === "has")
    .map((f) => ({ col: columnOf(f.path, header), text: f.value.toLowerCase() }))
    .filter((f) => f.col >= 0);
  return (cells) => tests.every((t) => (cells[t.col] ?? "").toLowerCase().includes(t.text));
}
