// The one client of the dashboard's API: every page asks through here, so errors, the login
// redirect and the JSON `Accept` header (the original's routes look at it) are handled once.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** GET a route's answer; a 401 sends the browser to the login form, another error status is
 * an `ApiError` with the server's reason. */
async function request(path: string, params: Record<string, string | readonly string[]>): Promise<Response> {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (typeof v === "string") url.searchParams.set(k, v);
    else for (const one of v) url.searchParams.append(k, one);
  }
  const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (r.status === 401) {
    window.location.assign("/login");
    throw new ApiError(401, "authentication required");
  }
  if (!r.ok) {
    let message = `${r.status} ${r.statusText}`;
    try {
      const body = (await r.json()) as { error?: unknown };
      if (typeof body.error === "string") message = body.error;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(r.status, message);
  }
  return r;
}

/** GET a JSON route. */
export async function getJson<T>(path: string, params: Record<string, string | readonly string[]> = {}): Promise<T> {
  return (await (await request(path, params)).json()) as T;
}

/** GET a JSON route with the server's note on what its filters could not count
 * (`X-Mispdash-Filter-Note`: days that predate the records a type or tag filter reads). */
export async function getNoted<T>(
  path: string,
  params: Record<string, string | readonly string[]> = {},
): Promise<{ data: T; note: string | null }> {
  const r = await request(path, params);
  return { data: (await r.json()) as T, note: r.headers.get("x-mispdash-filter-note") };
}

export interface Feed {
  name: string;
  connected: boolean;
  last_message: number | null;
  last_keepalive: number | null;
  messages: number;
  messages_per_minute: number | null;
  endpoint: string | null;
  subscriber_running: boolean;
  disconnected_since: number | null;
  connects?: number;
  disconnects?: number;
  dead_lettered?: number;
  auth_failures?: number;
  /** Disconnections and whether what was missed was read back from MISP's REST API. */
  gaps?: Gap[];
  gaps_open?: number;
}

export interface Gap {
  from: number;
  to: number;
  state: "filling" | "filled" | "open";
  events?: number;
  sightings?: number;
  error?: string;
}

export interface Status {
  version: string;
  /** The server's clock (epoch seconds): the one the day keys use. */
  now: number;
  /** The server's offset from UTC, in seconds, at `now`. */
  utc_offset_seconds: number;
  /** The server's IANA time zone (`Europe/Brussels`), when it has a name. */
  time_zone?: string | null;
  auth: { enabled: boolean; user: string | null };
  /** Whether the live views follow MISP's rules for the signed-in user (`docs/acl.md`). */
  access_control?: {
    enabled: boolean;
    follows: string | null;
    /** What the statistics count: "every event", or those shared widely enough. */
    statistics_count?: string;
    statistics_threshold?: boolean;
    you: { org_id: number; site_admin: boolean; sharing_groups: number } | null;
  };
  redis: { reachable: boolean; error?: string };
  feeds?: Feed[];
  feeds_error?: string;
  buffer?: {
    length: number;
    processing: number;
    dead_letters: number;
    dispatcher_lease?: {
      holder: string | null;
      /** When the active dispatcher's process started (epoch seconds). */
      holder_started?: number | null;
      standby: string[];
      standby_started?: (number | null)[];
    };
  };
  buffer_error?: string;
  geoip: {
    path: string;
    loaded: boolean;
    database_type: string | null;
    build_date: string | null;
    error: string | null;
  };
  connections?: {
    open: number;
    max: number;
    refused_over_limits: number;
    closed_silent: number;
    timeout_seconds: number;
  };
  streams?: {
    subscribed: boolean;
    clients: number;
    slow_clients_dropped: number;
    max_per_client?: number;
    refused_over_cap?: number;
    /** Clients refused a stream for the per-client cap (any web node), most recent first. */
    refused_clients?: RefusedClient[];
  };
}

export interface RefusedClient {
  client: string;
  last: number;
  refused: number;
  forwarded: boolean;
  max: number;
  /** What to do about it. */
  hint: string;
}

export const status = (): Promise<Status> => getJson<Status>("/status");

/** What the pages need of the server's configuration (`/_mispdash/ui`). */
export interface UiSettings {
  dashboard: {
    rotation_wait_time: number;
    max_img_rotation: number;
    hours_spanned: number;
    graph_log_refresh_rate: number;
    zoomlevel: number;
    item_to_plot: string;
    char_separator: string;
  };
  geo: { update_frequency_minutes: number; zoomlevel: number };
  contrib: { min_between_reload: number; additional_help_text: string[] };
  /** `[RedisGlobal] misp_web_url`, when it was set (links to MISP are offered only then). */
  misp_web_url: string | null;
  /** `[mispdash] rewind_hours`: how far back the live page can go (0: not at all). */
  rewind?: { hours: number };
  ranking: {
    rank_multiplier: number;
    level_max: number;
    rank_titles: string[];
    requirement_points: number[];
    categories: string[];
    points_per_category: number[];
    badges: string[];
    trophy_mapping: number[];
    trophy_titles: string[];
  };
}

/** A live row of the rewind stream: the row `/_logs` gives, with its stream id and time. */
export interface RewindRow {
  id: string;
  /** When the dispatcher handled it (the server's clock, epoch seconds). */
  at: number;
  log: Record<string, unknown> | unknown[];
  name: string;
  zmqName: string;
}

/** A map point of the rewind stream: the point `/_maps` gives, with its stream id and time. */
export interface RewindPoint {
  id: string;
  at: number;
  point: Record<string, unknown>;
}

/** `/_mispdash/rewind`: the rows and points of a window, newest first. */
export interface RewindWindow {
  from: number;
  to: number;
  now: number;
  hours: number;
  /** The oldest entry kept, or null when nothing is. */
  oldest: number | null;
  rows: RewindRow[];
  points: RewindPoint[];
  /** The window holds more than the answer. */
  more: boolean;
}

/** What a rewind window asks for: epoch seconds, counts, and the live log's page filters
 * (`f`, as in the page's URL). */
export interface RewindQuery {
  from?: number;
  to: number;
  limit?: number;
  points?: number;
  pointsFrom?: number;
  filters?: readonly string[];
}

const seconds = (t: number): string => (Math.round(t * 1000) / 1000).toFixed(3);

function rewindParams(q: RewindQuery): Record<string, string | readonly string[]> {
  const p: Record<string, string | readonly string[]> = { to: seconds(q.to) };
  if (q.from !== undefined) p.from = seconds(q.from);
  if (q.limit !== undefined) p.limit = String(q.limit);
  if (q.points !== undefined) p.points = String(q.points);
  if (q.pointsFrom !== undefined) p.points_from = seconds(q.pointsFrom);
  if (q.filters && q.filters.length > 0) p.f = q.filters;
  return p;
}

export const rewindWindow = (q: RewindQuery): Promise<RewindWindow> => getJson<RewindWindow>("/_mispdash/rewind", rewindParams(q));

/** The address of a window's CSV export (a download: the browser fetches it itself). */
export function rewindCsvUrl(q: RewindQuery): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(rewindParams(q))) {
    if (typeof v === "string") u.set(k, v);
    else for (const one of v) u.append(k, one);
  }
  return `/_mispdash/rewind.csv?${u.toString()}`;
}

let settings: Promise<UiSettings> | null = null;
/** The settings, asked once per page. */
export const uiSettings = (): Promise<UiSettings> => (settings ??= getJson<UiSettings>("/_mispdash/ui"));
