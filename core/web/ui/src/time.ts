// The server's clock and calendar, as the pages use them. The day keys in Redis are the
// server's local days, so every "today", every day and every hour a page shows is the server's,
// in its time zone (an IANA name from /status), never the browser's. Formatting goes through
// Intl in that zone, so a chart that spans a daylight-saving change labels each hour right; a
// server whose zone has no name (a POSIX rule in TZ) gets its offset at "now" instead.

export const DAY = 86400;
export const HOUR = 3600;

interface Parts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/** The Intl formatter of a zone, or null when the browser does not know the zone. */
function formatter(zone: string | null): Intl.DateTimeFormat | null {
  if (!zone) return null;
  try {
    return new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
  } catch {
    return null;
  }
}

export class ServerClock {
  private readonly fmt: Intl.DateTimeFormat | null;
  private readonly abbrev: Intl.DateTimeFormat | null;
  /** Seconds to add to the browser's clock to get the server's. */
  private skew: number;

  constructor(
    serverNow: number,
    /** The server's IANA time zone, when it has one. */
    readonly zone: string | null,
    /** The server's offset from UTC at `serverNow`, in seconds (used without a zone). */
    private readonly fixedOffset: number,
    browserNow: number = Date.now() / 1000,
  ) {
    this.fmt = formatter(zone);
    this.abbrev = this.fmt && zone ? new Intl.DateTimeFormat("en-GB", { timeZone: zone, timeZoneName: "short" }) : null;
    this.skew = serverNow - browserNow;
  }

  /** A newer reading of the server's clock (every status poll). */
  sync(serverNow: number, browserNow: number = Date.now() / 1000): void {
    this.skew = serverNow - browserNow;
  }

  /** The server's "now", in epoch seconds. */
  now(browserNow: number = Date.now() / 1000): number {
    return browserNow + this.skew;
  }

  /** The zone's wall-clock fields at `epoch`. */
  parts(epoch: number): Parts {
    const secs = Math.floor(epoch);
    if (!this.fmt) {
      const d = new Date((secs + this.fixedOffset) * 1000);
      return {
        year: d.getUTCFullYear(),
        month: d.getUTCMonth() + 1,
        day: d.getUTCDate(),
        hour: d.getUTCHours(),
        minute: d.getUTCMinutes(),
        second: d.getUTCSeconds(),
      };
    }
    const p: Record<string, number> = {};
    for (const part of this.fmt.formatToParts(secs * 1000)) {
      if (part.type !== "literal") p[part.type] = Number(part.value);
    }
    return { year: p.year ?? 1970, month: p.month ?? 1, day: p.day ?? 1, hour: p.hour ?? 0, minute: p.minute ?? 0, second: p.second ?? 0 };
  }

  /** Seconds east of UTC at `epoch`. */
  offsetAt(epoch: number): number {
    const p = this.parts(epoch);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) / 1000 - Math.floor(epoch);
  }

  /** "YYYY-MM-DD HH:MM:SS" at `epoch`. */
  time(epoch: number): string {
    const p = this.parts(epoch);
    return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)} ${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`;
  }

  /** "YYYY-MM-DD HH:MM" at `epoch`. */
  minute(epoch: number): string {
    return this.time(epoch).slice(0, 16);
  }

  /** "HH:MM" at `epoch`. */
  clockTime(epoch: number): string {
    return this.time(epoch).slice(11, 16);
  }

  /** A time in a list that runs for days: "HH:MM" today, "MM-DD HH:MM" before. */
  short(epoch: number): string {
    const t = this.time(epoch);
    return t.slice(0, 10) === this.today() ? t.slice(11, 16) : t.slice(5, 16);
  }

  /** The day of `epoch`, "YYYY-MM-DD". */
  day(epoch: number): string {
    return this.time(epoch).slice(0, 10);
  }

  /** The month of `epoch`, "YYYY-MM". */
  month(epoch: number): string {
    return this.time(epoch).slice(0, 7);
  }

  today(): string {
    return this.day(this.now());
  }

  /** Noon of a day (the API takes any time of the day to name it; noon is never skipped by a
   * daylight-saving change). */
  noonOf(day: string): number {
    const wall = Date.parse(`${day}T12:00:00Z`) / 1000;
    let t = wall - this.offsetAt(wall);
    t = wall - this.offsetAt(t);
    return t;
  }

  /** The start of the local hour that holds `epoch`. */
  hourStart(epoch: number): number {
    const p = this.parts(epoch);
    return Math.floor(epoch) - p.minute * 60 - p.second;
  }

  /** An hour's label, "HH:00"; an hour that the clock shows twice (when daylight-saving time
   * ends) also names its zone ("02:00 CEST", "02:00 CET"), so that every hour reads once. */
  hourLabel(start: number): string {
    const label = (t: number): string => `${pad(this.parts(t).hour)}:00`;
    const own = label(start);
    if (label(start - HOUR) !== own && label(start + HOUR) !== own) return own;
    return `${own} ${this.zoneName(start)}`;
  }

  /** The zone's short name at `epoch` ("CEST"), or its offset ("UTC+02:00"). */
  zoneName(epoch: number): string {
    const named = this.abbrev?.formatToParts(Math.floor(epoch) * 1000).find((p) => p.type === "timeZoneName")?.value;
    if (named) return named;
    const off = this.offsetAt(epoch);
    const a = Math.abs(off);
    return `UTC${off < 0 ? "-" : "+"}${pad(Math.floor(a / 3600))}:${pad(Math.floor((a % 3600) / 60))}`;
  }
}

/** A day `n` days after `day` ("YYYY-MM-DD"), by the calendar. */
export function addDays(day: string, n: number): string {
  const t = Date.parse(`${day}T00:00:00Z`) + n * DAY * 1000;
  return new Date(t).toISOString().slice(0, 10);
}

/** Days from `from` to `to` (both "YYYY-MM-DD", included), at most `max`. */
export function daysBetween(from: string, to: string, max: number): string[] {
  const out: string[] = [];
  for (let d = from; d <= to && out.length < max; d = addDays(d, 1)) out.push(d);
  return out;
}

/** A "YYYY-MM-DD" date that exists. */
export function isDay(v: string | null): v is string {
  if (v === null || !/^\d{4}-\d{2}-\d{2}$/.test(v)) return false;
  const t = Date.parse(`${v}T00:00:00Z`);
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === v;
}
