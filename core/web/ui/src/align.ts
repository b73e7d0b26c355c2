// Aligning what a page shows with what the server has, after the page (re)connects without
// resuming (a new page, or a server that restarted): the server sends its newest entries,
// oldest first, and the page adds those that came after the newest it shows. Entries are
// compared by their text; a value that repeats is placed by its neighbours.

export interface Alignment {
  /** Entries to add on top, oldest first. */
  add: string[];
  /** The page's newest entry is not among the server's: show the server's instead. */
  replace: boolean;
}

/** `shown`: the page's entries, newest first; `snapshot`: the server's, oldest first. */
export function align(shown: readonly string[], snapshot: readonly string[]): Alignment {
  const newest = shown[0];
  if (newest === undefined) return { add: [...snapshot], replace: false };
  // Nothing to add from an empty answer (a server that has not read its caches yet): the page
  // keeps what it shows rather than going blank.
  if (snapshot.length === 0) return { add: [], replace: false };
  const confirm = Math.min(3, shown.length);
  const at = (i: number): boolean => snapshot[i] === newest;
  const confirmed = (i: number): boolean => {
    for (let k = 1; k < confirm; k++) if (i - k < 0 || snapshot[i - k] !== shown[k]) return false;
    return true;
  };
  let found = -1;
  for (let i = snapshot.length - 1; i >= 0; i--) {
    if (at(i) && confirmed(i)) {
      found = i;
      break;
    }
  }
  if (found < 0) {
    for (let i = snapshot.length - 1; i >= 0; i--) {
      if (at(i)) {
        found = i;
        break;
      }
    }
  }
  if (found < 0) return { add: [...snapshot], replace: true };
  return { add: snapshot.slice(found + 1), replace: false };
}
