// What a page shows lives in its URL (bookmarkable, and what kiosk mode and a reload keep):
// reading parameters, and the URL of this page with some of them changed.

import { isDay } from "./time";

/** A parameter's new value: a string, several values, or null to remove it. */
export type Change = string | string[] | null;

/** The query (`?…`, or "" when empty) of `search` with `changes` applied, the rest kept. */
export function withParams(search: string, changes: Record<string, Change>): string {
  const q = new URLSearchParams(search);
  for (const [k, v] of Object.entries(changes)) {
    q.delete(k);
    if (v === null) continue;
    for (const one of Array.isArray(v) ? v : [v]) if (one !== "") q.append(k, one);
  }
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}

/** This page's URL with `changes` applied. */
export function urlWith(changes: Record<string, Change>): string {
  return `${window.location.pathname}${withParams(window.location.search, changes)}`;
}

/** Goes to this page with `changes` applied. */
export function go(changes: Record<string, Change>): void {
  window.location.assign(urlWith(changes));
}

/** This page's parameters. */
export function params(): URLSearchParams {
  return new URLSearchParams(window.location.search);
}

/** A "YYYY-MM-DD" parameter, if it is a real day. */
export function dayParam(q: URLSearchParams, name: string): string | null {
  const v = q.get(name);
  return isDay(v) ? v : null;
}
