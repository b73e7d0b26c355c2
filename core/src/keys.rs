//! Every Redis key and channel name mispdash reads or writes, in one place.
//!
//! The names are the original dashboard's (spec `ingest.md` §2.2) so that an existing Redis
//! keeps working; nothing else in the code formats a key string. Day arguments are `YYYYMMDD`
//! local dates from [`crate::clock`]. Organisation names are embedded raw, as the original does.
//! Keys are joined with `concat`, which sizes the string once, rather than `format!`: several
//! are built for every message.

// ---- db [RedisDB] (statistics) ----

pub fn geo_coord(day: &str) -> String {
    ["GEO_COORD:", day].concat()
}
pub fn geo_country(day: &str) -> String {
    ["GEO_COUNTRY:", day].concat()
}
pub fn geo_rad(day: &str) -> String {
    ["GEO_RAD:", day].concat()
}

pub fn login_timestamp(org: &str) -> String {
    ["LOGIN_TIMESTAMP:", org].concat()
}
pub fn login_org(day: &str) -> String {
    ["LOGIN_ORG:", day].concat()
}
pub const LOGIN_ALL_ORG: &str = "LOGIN_ALL_ORG";

/// A login session (mispdash): `MISPDASH_SESSION:<SHA-256 of the cookie's token>`.
pub const SESSION_PREFIX: &str = "MISPDASH_SESSION:";

/// What every trendings key begins with; only increments write them.
pub const TRENDINGS_PREFIX: &str = "TRENDINGS_";

/// mispdash's own (`[RedisDB] db`): each geolocated point of a day with what the original's
/// members leave out, for the routes' `type` and `tags` filters: a zset of JSON `{"coord":
/// <its GEO_COORD member>, "rad": <its GEO_RAD member>, "lat", "lon", "country", "type",
/// "tags": [names]}` by hits. Written from the version that added it on.
pub fn geo_points(day: &str) -> String {
    ["MISPDASH_GEO_POINTS:", day].concat()
}
/// mispdash's own: each event of the event trending with its tags (`{"info", "tags":
/// [names]}` by count), for the event trending's `tags` filters.
pub fn trendings_events_tagged(day: &str) -> String {
    ["MISPDASH_TRENDINGS_EVENTS:", day].concat()
}
pub fn trendings_events(day: &str) -> String {
    ["TRENDINGS_EVENTS:", day].concat()
}
pub fn trendings_categs(day: &str) -> String {
    ["TRENDINGS_CATEGS:", day].concat()
}
pub fn trendings_tags(day: &str) -> String {
    ["TRENDINGS_TAGS:", day].concat()
}
pub fn trendings_disc(day: &str) -> String {
    ["TRENDINGS_DISC:", day].concat()
}
pub fn trendings_sightings(day: &str) -> String {
    ["TRENDINGS_SIGHT_sightings:", day].concat()
}
pub fn trendings_false_positive(day: &str) -> String {
    ["TRENDINGS_SIGHT_false_positive:", day].concat()
}
/// The constant member of `TRENDINGS_DISC:<day>` (discussions are counted, not named).
pub const TRENDINGS_DISC_LABEL: &str = "no name or id yet...";

/// The live-log cache. Every non-keepalive entry lands here whatever its name (spec §2.4).
pub const LIVE_CACHE_LOG: &str = "TEMP_CACHE_LIVE:Attribute";
/// The live-map cache.
pub const LIVE_CACHE_MAP: &str = "TEMP_CACHE_LIVE:Map";
/// Items kept in each live cache: the original trims to 101 at random moments; we keep exactly
/// the 101 newest after every batch.
pub const LIVE_CACHE_KEEP: isize = 101;

/// With `[ACL] enabled` (mispdash): the facts of each live map point (its event's owner and
/// distributions, `acl::PointFacts`), published on this channel just before the point and kept
/// in this list (db `[RedisDB]`) beside `TEMP_CACHE_LIVE:Map`, trimmed alike. Map points carry
/// no event, so the server learns from these who may see each.
pub const ACL_MAP: &str = "MISPDASH_ACL:map";

/// With `[ACL] enabled` (mispdash): what messages said of each event (`acl::EventFacts` as
/// JSON, by event id; hash in `[RedisDB] db`), for the messages that do not say it themselves
/// (`misp_json_object` carries no event). Read by the dispatcher when it takes the lease.
pub const ACL_EVENTS: &str = "MISPDASH_ACL:events";

/// The rewind stream (mispdash's own, `[RedisDB] db`): the live rows and map points of the
/// last `[mispdash] rewind_hours`, so that the live page can show the view as it was at any
/// moment of them. A Redis stream whose entry ids are the dispatcher's clock in milliseconds
/// (`crate::rewind`); each entry is one field, `row` or `point`, holding what the live page
/// shows of it and who may see it. Trimmed by time and by [`REWIND_BYTES`] after each batch.
pub const REWIND: &str = "MISPDASH_REWIND";

/// The size in bytes of the rewind stream's entries (mispdash's own), kept by the scripts that
/// add and trim them so that no batch has to read the stream to know it.
pub const REWIND_BYTES: &str = "MISPDASH_REWIND:bytes";

pub fn contrib_day(day: &str) -> String {
    ["CONTRIB_DAY:", day].concat()
}
pub fn contrib_categ(day: &str, categ_norm: &str) -> String {
    ["CONTRIB_CATEG:", day, ":", categ_norm].concat()
}
pub fn contrib_last(day: &str) -> String {
    ["CONTRIB_LAST:", day].concat()
}
pub const CONTRIB_ALL_ORG: &str = "CONTRIB_ALL_ORG";
pub fn contrib_org(org: &str, field: &str) -> String {
    ["CONTRIB_ORG:", org, ":", field].concat()
}
pub fn contrib_trophy(categ_norm: &str) -> String {
    ["CONTRIB_TROPHY:", categ_norm].concat()
}
pub fn contrib_last_awards(day: &str) -> String {
    ["CONTRIB_LAST_AWARDS:", day].concat()
}

// ---- db [RedisLIST] (work queue) ----

/// Set by the dispatcher when it handles a `diagnostic_channel` probe.
pub const DIAGNOSTIC_RESPONSE: &str = "diagnostic_tool_response";

/// Messages taken from the buffer but not yet applied (mispdash only): see [`crate::buffer`].
pub fn processing_list(list_name: &str) -> String {
    [list_name, ":processing"].concat()
}
/// Messages that could not be applied, with the reason (mispdash only).
pub fn dead_letter_list(list_name: &str) -> String {
    [list_name, ":dead"].concat()
}

/// The size in bytes of everything in the dead-letter list (mispdash's own).
pub fn dead_letter_bytes(list_name: &str) -> String {
    [list_name, ":dead:bytes"].concat()
}

/// Attempts at committing messages that failed or were interrupted, by message digest
/// (mispdash's own, list database).
pub const ATTEMPTS: &str = "MISPDASH_ATTEMPTS";
/// Per-feed health written by each subscriber (mispdash only): a hash.
pub fn feed_status(feed_name: &str) -> String {
    ["MISPDASH_FEED:", feed_name].concat()
}

/// The subscribers feeding one feed name, by run, with when each last said so.
pub fn feed_writers(feed_name: &str) -> String {
    ["MISPDASH_FEED_WRITERS:", feed_name].concat()
}
/// Dispatcher counters (mispdash only): a hash.
pub const DISPATCH_STATUS: &str = "MISPDASH_DISPATCH";

/// Messages per topic handled on one local day (`YYYYMMDD`), kept 8 days: `selftest` judges
/// what MISP sends now, not since the dashboard was installed.
pub fn topics_day(day: &str) -> String {
    ["MISPDASH_TOPICS:", day].concat()
}

/// Live streams refused because their client held `[mispdash] max_streams_per_client`
/// (mispdash's own, list database): a hash of JSON `{"last", "forwarded", "max"}` by client
/// (`address <ip>` or `user <name>`), with the counts in [`STREAMS_REFUSED_COUNT`]; both expire
/// a week after the last refusal. Written by every web node, read by `/status` and `selftest`.
pub const STREAMS_REFUSED: &str = "MISPDASH_STREAMS_REFUSED";
/// How many streams each client of [`STREAMS_REFUSED`] was refused (a hash of counts).
pub const STREAMS_REFUSED_COUNT: &str = "MISPDASH_STREAMS_REFUSED:count";

/// Per feed, the gaps in its live feed (disconnections) and whether they were filled through
/// MISP's REST API (mispdash's own, list database): a hash of JSON by the gap's start epoch.
pub fn feed_gaps(feed: &str) -> String {
    format!("MISPDASH_GAPS:{feed}")
}

/// Per feed, what `mispdash backfill` pushed (mispdash's own, `[RedisDB] db`): a sorted set of
/// `event:<uuid>@<publish_timestamp>` and `sighting:<uuid>@<date_sighting>` by that time, so
/// that nothing is counted twice. `clean` deletes it with the statistics.
pub fn backfill_record(feed: &str) -> String {
    format!("{BACKFILL_RECORD_PREFIX}{feed}")
}

/// What every [`backfill_record`] key begins with.
pub const BACKFILL_RECORD_PREFIX: &str = "MISPDASH_BACKFILL:";

/// Per feed, how far the newest MISP timestamp was from this machine's clock when its message
/// was handled: `"<seconds behind> <epoch handled>"` (mispdash's own, list database).
pub const CLOCK_SKEW: &str = "MISPDASH_CLOCK";

/// How long a day's topic counts are kept.
pub const TOPICS_DAY_TTL: i64 = 8 * 86_400;
/// Field of [`DISPATCH_STATUS`] counting the messages of one topic the dispatcher handled, so
/// `mispdash selftest` can tell which kinds of MISP notifications never arrive.
pub fn dispatch_topic_field(topic: &str) -> String {
    ["topic:", topic].concat()
}

// ---- what `mispdash clean` deletes ----

/// Key patterns (Redis glob syntax, only a trailing `*`) of the statistics in `[RedisDB] db`
/// that the original's `clean.py` deletes in soft mode (spec §6.1), and nothing else: the
/// database version and mispdash's own bookkeeping keys stay. `CONTRIB_TROPHY:*` also matches
/// the empty-suffix `CONTRIB_TROPHY:` of events and discussions. The same list tells
/// `mispdash selftest` which keys are the dashboard's when it looks for data in the wrong db.
pub const CLEAN_DATA_PATTERNS: &[&str] = &[
    "GEO_COORD:*",
    "GEO_COUNTRY:*",
    "GEO_RAD:*",
    "CONTRIB_DAY:*",
    "CONTRIB_CATEG:*",
    "CONTRIB_LAST:*",
    "CONTRIB_ALL_ORG",
    "CONTRIB_ORG:*",
    "CONTRIB_TROPHY:*",
    "CONTRIB_LAST_AWARDS:*",
    "LOGIN_TIMESTAMP:*",
    "LOGIN_ORG:*",
    "LOGIN_ALL_ORG",
    "TRENDINGS_EVENTS:*",
    "TRENDINGS_CATEGS:*",
    "TRENDINGS_TAGS:*",
    "TRENDINGS_DISC:*",
    "TRENDINGS_SIGHT_sightings:*",
    "TRENDINGS_SIGHT_false_positive:*",
    "TEMP_CACHE_LIVE:*",
    "MISPDASH_BACKFILL:*",
    "MISPDASH_GEO_POINTS:*",
    "MISPDASH_TRENDINGS_EVENTS:*",
    REWIND,
    REWIND_BYTES,
];

/// Patterns of the per-day geolocation keys `mispdash rebuild-geo` rewrites.
pub const GEO_COORD_PATTERN: &str = "GEO_COORD:*";
pub const GEO_RAD_PATTERN: &str = "GEO_RAD:*";

/// `SCAN` pattern of every feed's health hash (read by the web server's `/status`).
pub const FEED_STATUS_PATTERN: &str = "MISPDASH_FEED:*";
/// The feed name of a [`feed_status`] key.
pub fn feed_name_of_status_key(key: &str) -> Option<&str> {
    key.strip_prefix("MISPDASH_FEED:")
}
