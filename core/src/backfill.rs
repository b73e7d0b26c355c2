//! `mispdash backfill`: what MISP published before the dashboard listened, read through its
//! REST API and fed through the same buffer and dispatcher as live messages.
//!
//! ZeroMQ carries only what happens while a subscriber is connected, so a new installation
//! starts with empty pages. Events come from `/events/restSearch` (published ones, by
//! `publish_timestamp`, a page at a time) and sightings from `/sightings/restSearch`. Each
//! becomes the buffer entry MISP's publisher would have caused, a `misp_json` publish of the
//! event or a `misp_json_sighting`, marked with when it happened in MISP
//! ([`crate::message::BACKFILLED_AT`]): the dispatcher counts it on that day, and does not
//! show it as live.
//!
//! Each entry is pushed by a script that first records it in the feed's backfill record
//! (`MISPDASH_BACKFILL:<feed>`, a sorted set of `<kind>:<uuid>@<timestamp>` by timestamp)
//! and pushes nothing when it is already there. So a second run, or a run resumed after an
//! interruption, counts nothing twice, and what was pushed is the buffer's to keep (the
//! dispatcher's no-loss guarantee takes over from there).

use crate::config::{Config, RedisConfig};
use crate::keys;
use crate::ops::{connect, redis_err, OpsError};
use crate::redis_util::RedisTarget;
use indicatif::ProgressBar;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Records of applied entries older than this are dropped from the record (events published
/// more than 400 days ago are not asked for again).
pub const RECORD_DAYS: i64 = 400;

/// KEYS: the record (sorted set, data database), the buffer list. ARGV: the data database,
/// the buffer's database, the oldest timestamp to keep in the record, then triples of
/// (record member, timestamp, buffer entry). Returns, per triple, 1 when it was pushed and 0
/// when the record already held it.
const QUEUE_SCRIPT: &str = r"
redis.call('SELECT', ARGV[1])
local fresh, flags = {}, {}
for i = 4, #ARGV, 3 do
  if redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], ARGV[i]) == 1 then
    fresh[#fresh + 1] = ARGV[i + 2]
    flags[#flags + 1] = 1
  else
    flags[#flags + 1] = 0
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('SELECT', ARGV[2])
for _, e in ipairs(fresh) do
  redis.call('LPUSH', KEYS[2], e)
end
return flags
";

/// Why a backfill stopped. Each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    Setup(String),
    #[error("MISP at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("MISP at {url} did not answer within {secs} s (--timeout)")]
    Timeout { url: String, secs: u64 },
    #[error(
        "MISP at {url} refused the API key (HTTP {status}): check the feed's \"api_key\" (or \
         MISPDASH_MISP_API_KEY) and that the key's user may read events"
    )]
    Refused { url: String, status: u16 },
    #[error("MISP at {url} answered HTTP {status}: {excerpt}")]
    Misp {
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error("MISP at {url} answered something that is not its JSON: {excerpt}")]
    NotJson { url: String, excerpt: String },
    #[error(transparent)]
    Ops(#[from] OpsError),
}

/// One MISP instance to read from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The feed's name: the `zmq_name` of its entries, as its live messages carry.
    pub name: String,
    pub url: reqwest::Url,
    pub api_key: String,
    pub verify_tls: bool,
}

/// The configured feeds to backfill: `feed` by name, else every feed. Each needs a `url` and
/// an API key: the feed's `"api_key"`, else `env_key` (`MISPDASH_MISP_API_KEY`).
pub fn sources(
    cfg: &Config,
    feed: Option<&str>,
    env_key: Option<&str>,
) -> Result<Vec<Source>, BackfillError> {
    let feeds: Vec<_> = cfg
        .redis
        .misp_instances
        .iter()
        .filter(|m| feed.is_none_or(|f| m.name == f))
        .collect();
    if feeds.is_empty() {
        return Err(BackfillError::Setup(match feed {
            Some(f) => format!(
                "no feed named {f:?} in [RedisGlobal] misp_instances (there: {})",
                cfg.redis
                    .misp_instances
                    .iter()
                    .map(|m| format!("{:?}", m.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "no feed in [RedisGlobal] misp_instances: nothing to backfill from".into(),
        }));
    }
    feeds
        .into_iter()
        .map(|m| {
            let url = m
                .url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| {
                    BackfillError::Setup(format!(
                        "feed {:?} has no \"url\" in misp_instances: MISP's address is needed",
                        m.name
                    ))
                })?;
            let url = reqwest::Url::parse(url.trim()).map_err(|e| {
                BackfillError::Setup(format!("feed {:?}: url {url:?}: {e}", m.name))
            })?;
            let api_key = m
                .api_key
                .as_deref()
                .or(env_key)
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    BackfillError::Setup(format!(
                        "feed {:?} has no API key: add \"api_key\" to its misp_instances entry \
                         or set MISPDASH_MISP_API_KEY",
                        m.name
                    ))
                })?
                .to_string();
            Ok(Source {
                name: m.name.clone(),
                url,
                api_key,
                verify_tls: m.ssl_verify.unwrap_or(cfg.auth.ssl_verify),
            })
        })
        .collect()
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events published (and sightings made) at or after this epoch.
    pub since: i64,
    /// ... and at or before this one (`None`: up to now).
    pub until: Option<i64>,
    /// Events per page of `/events/restSearch`.
    pub page_size: u32,
    /// How long one answer of MISP may take.
    pub timeout: Duration,
    /// Read and count, push nothing.
    pub dry_run: bool,
    /// Read sightings too.
    pub sightings: bool,
    /// Filling a gap of the live feed: the entries are shown live, as their messages would
    /// have been.
    pub gap_fill: bool,
}

/// What a backfill read and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub events_read: u64,
    /// Events pushed onto the buffer (with `dry_run`, those that would be).
    pub events_added: u64,
    /// Their attributes and object attributes, each a contribution and a live-log-like count.
    pub attributes_added: u64,
    /// Events already applied by an earlier backfill.
    pub events_known: u64,
    /// Events MISP returned without the fields needed to place them (no uuid or id).
    pub events_unusable: u64,
    pub sightings_read: u64,
    pub sightings_added: u64,
    pub sightings_known: u64,
}

/// An entry to push: its record member, when it happened, the buffer entry.
struct Entry {
    member: String,
    at: i64,
    envelope: String,
}

/// Reads `source` as `opts` says and pushes what is new onto the buffer; `progress` counts
/// events (its length set when MISP says how many there are).
pub fn run(
    cfg: &RedisConfig,
    source: &Source,
    opts: &Options,
    progress: &ProgressBar,
) -> Result<Report, BackfillError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BackfillError::Setup(format!("cannot start the HTTP runtime: {e}")))?;
    let client = reqwest::Client::builder()
        .timeout(opts.timeout)
        .danger_accept_invalid_certs(!source.verify_tls)
        .build()
        .map_err(|e| BackfillError::Setup(format!("cannot build the HTTP client: {e}")))?;
    let target = RedisTarget::from_config(cfg);
    let mut conn = connect(&target, cfg.list_db)?;
    let err = redis_err(&target, cfg.list_db);
    let record = keys::backfill_record(&source.name);
    let keep_from = opts.until.unwrap_or_else(now_epoch) - RECORD_DAYS * 86_400;
    let script = redis::Script::new(QUEUE_SCRIPT);
    let mut report = Report::default();
    // Event creators by event id, for sightings whose event comes without its organisation.
    let mut creators: std::collections::HashMap<String, Value> = Default::default();

    let mut page = 1u32;
    // How many events MISP said match (`X-Result-Count`), to stop without asking for an
    // empty page.
    let mut announced: Option<u64> = None;
    loop {
        let mut body = json!({"returnFormat": "json", "published": true, "page": page,
            "limit": opts.page_size, "publish_timestamp": window(opts)});
        if let Some(m) = body.as_object_mut() {
            m.insert("includeEventTags".into(), Value::Bool(true));
        }
        let (items, total) =
            rt.block_on(post(&client, source, "/events/restSearch", &body, opts))?;
        if let (1, Some(t)) = (page, total) {
            progress.set_length(t);
            announced = Some(t);
        }
        let n = items.len();
        let mut entries = Vec::with_capacity(n);
        for item in items {
            report.events_read += 1;
            let Some(event) = unwrap_item(item, "Event") else {
                report.events_unusable += 1;
                continue;
            };
            if let (Some(id), Some(orgc)) = (field_text(&event, "id"), event.get("Orgc")) {
                creators.insert(id, orgc.clone());
            }
            match event_entry(&source.name, event, opts.gap_fill) {
                Some((e, attributes)) => entries.push((e, attributes)),
                None => report.events_unusable += 1,
            }
        }
        let (added, attributes) = queue(
            &mut conn,
            &script,
            &record,
            cfg,
            keep_from,
            entries,
            opts.dry_run,
        )
        .map_err(&err)?;
        report.events_added += added;
        report.attributes_added += attributes;
        progress.inc(n as u64);
        progress.set_message(format!(
            "{}: {} new event(s), {} known",
            source.name,
            report.events_added,
            report.events_read - report.events_added - report.events_unusable
        ));
        let all_read = announced.is_some_and(|t| u64::from(page) * u64::from(opts.page_size) >= t);
        if n < opts.page_size as usize || all_read {
            break;
        }
        page += 1;
    }
    report.events_known = report.events_read - report.events_added - report.events_unusable;

    if opts.sightings {
        let mut page = 1u32;
        loop {
            let mut body = json!({"returnFormat": "json", "includeAttribute": true,
                "includeEvent": true, "page": page, "limit": opts.page_size,
                "from": opts.since});
            if let (Some(m), Some(u)) = (body.as_object_mut(), opts.until) {
                m.insert("to".into(), Value::from(u));
            }
            let (items, _) =
                rt.block_on(post(&client, source, "/sightings/restSearch", &body, opts))?;
            let n = items.len();
            let mut entries = Vec::with_capacity(n);
            for item in items {
                report.sightings_read += 1;
                if let Some(e) = sighting_entry(&source.name, item, &creators, opts.gap_fill) {
                    entries.push((e, 0));
                }
            }
            let (added, _) = queue(
                &mut conn,
                &script,
                &record,
                cfg,
                keep_from,
                entries,
                opts.dry_run,
            )
            .map_err(&err)?;
            report.sightings_added += added;
            if n < opts.page_size as usize {
                break;
            }
            page += 1;
        }
        report.sightings_known = report.sightings_read - report.sightings_added;
    }
    Ok(report)
}

/// MISP's `publish_timestamp` filter: from `since`, or the range `[since, until]`.
fn window(opts: &Options) -> Value {
    match opts.until {
        Some(u) => json!([opts.since, u]),
        None => Value::from(opts.since),
    }
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Pushes what the record does not hold yet (with `dry_run`, only counts it); returns the
/// entries pushed and the attributes among them.
fn queue(
    conn: &mut redis::Connection,
    script: &redis::Script,
    record: &str,
    cfg: &RedisConfig,
    keep_from: i64,
    entries: Vec<(Entry, u64)>,
    dry_run: bool,
) -> redis::RedisResult<(u64, u64)> {
    if entries.is_empty() {
        return Ok((0, 0));
    }
    if dry_run {
        let mut c = redis::cmd("SELECT");
        c.arg(cfg.data_db);
        let mut p = redis::pipe();
        p.add_command(c).ignore();
        for (e, _) in &entries {
            p.cmd("ZSCORE").arg(record).arg(&e.member);
        }
        p.cmd("SELECT").arg(cfg.list_db).ignore();
        let scores: Vec<Option<f64>> = p.query(conn)?;
        let mut added = (0, 0);
        for ((_, attributes), s) in entries.iter().zip(scores) {
            if s.is_none() {
                added.0 += 1;
                added.1 += attributes;
            }
        }
        return Ok(added);
    }
    let mut inv = script.key(record);
    inv.key(&cfg.list_name)
        .arg(cfg.data_db)
        .arg(cfg.list_db)
        .arg(keep_from);
    for (e, _) in &entries {
        inv.arg(&e.member).arg(e.at).arg(&e.envelope);
    }
    let flags: Vec<u8> = inv.invoke(conn)?;
    let mut added = (0, 0);
    for ((_, attributes), pushed) in entries.iter().zip(flags) {
        if pushed == 1 {
            added.0 += 1;
            added.1 += attributes;
        }
    }
    Ok(added)
}

/// One page: the items of MISP's answer, and the total when MISP says it
/// (`X-Result-Count`).
async fn post(
    client: &reqwest::Client,
    source: &Source,
    path: &str,
    body: &Value,
    opts: &Options,
) -> Result<(Vec<Value>, Option<u64>), BackfillError> {
    let mut url = source.url.clone();
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{base}{path}"));
    let shown = url.to_string();
    let fail = |e: reqwest::Error| {
        if e.is_timeout() {
            BackfillError::Timeout {
                url: shown.clone(),
                secs: opts.timeout.as_secs(),
            }
        } else {
            BackfillError::Unreachable {
                url: shown.clone(),
                reason: error_chain(&e),
            }
        }
    };
    let r = client
        .post(url.clone())
        .header("Authorization", &source.api_key)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(fail)?;
    let status = r.status().as_u16();
    let total = r
        .headers()
        .get("x-result-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let text = r.text().await.map_err(fail)?;
    if matches!(status, 401 | 403) {
        return Err(BackfillError::Refused { url: shown, status });
    }
    if !(200..300).contains(&status) {
        return Err(BackfillError::Misp {
            url: shown,
            status,
            excerpt: excerpt(&text),
        });
    }
    let v: Value = serde_json::from_str(&text).map_err(|_| BackfillError::NotJson {
        url: shown.clone(),
        excerpt: excerpt(&text),
    })?;
    // `{"response": [...]}`, or the list itself (MISP answers both ways across versions).
    let items = match v {
        Value::Array(a) => a,
        Value::Object(mut m) => match m.remove("response") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(BackfillError::NotJson {
                    url: shown,
                    excerpt: excerpt(&text),
                })
            }
        },
        _ => {
            return Err(BackfillError::NotJson {
                url: shown,
                excerpt: excerpt(&text),
            })
        }
    };
    Ok((items, total))
}

/// An error and its causes (reqwest's own message rarely says what failed underneath).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// The start of an answer, on one line, for an error message.
fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::buffer::cut(&one_line, 200).into_owned()
}

/// `{"Event": {...}}` (or the object itself): the inner object.
fn unwrap_item(item: Value, key: &str) -> Option<Map<String, Value>> {
    match item {
        Value::Object(mut m) => match m.remove(key) {
            Some(Value::Object(inner)) => Some(inner),
            Some(_) => None,
            None => Some(m),
        },
        _ => None,
    }
}

fn field_text(m: &Map<String, Value>, k: &str) -> Option<String> {
    match m.get(k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn field_epoch(m: &Map<String, Value>, k: &str) -> Option<i64> {
    field_text(m, k)?.trim().parse().ok().filter(|t| *t > 0)
}

/// An event as the publish MISP's ZeroMQ sends (`misp_json {"Event": ...}`), at its
/// `publish_timestamp`; and its number of attributes (its own and its objects').
fn event_entry(feed: &str, event: Map<String, Value>, gap: bool) -> Option<(Entry, u64)> {
    let at = field_epoch(&event, "publish_timestamp").or(field_epoch(&event, "timestamp"))?;
    let id = field_text(&event, "uuid").or(field_text(&event, "id"))?;
    let attributes = event
        .get("Attribute")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
        + event
            .get("Object")
            .and_then(Value::as_array)
            .map_or(0, |objects| {
                objects
                    .iter()
                    .filter_map(|o| o.get("Attribute").and_then(Value::as_array))
                    .map(Vec::len)
                    .sum()
            });
    let mut body = Map::new();
    body.insert("Event".into(), Value::Object(event));
    let content = format!("misp_json {}", Value::Object(body));
    Some((
        Entry {
            member: record_member("event", &id, at),
            at,
            envelope: envelope(feed, &content, at, gap),
        },
        attributes as u64,
    ))
}

/// A sighting as MISP's ZeroMQ sends it (`misp_json_sighting {"Sighting": ..., "action":
/// "add"}`), at its `date_sighting`. The event's creator comes from the event when MISP
/// included it with its `Orgc`, else from the events of this backfill.
fn sighting_entry(
    feed: &str,
    item: Value,
    creators: &std::collections::HashMap<String, Value>,
    gap: bool,
) -> Option<Entry> {
    let Value::Object(mut outer) = item else {
        return None;
    };
    let mut s = match outer.remove("Sighting") {
        Some(Value::Object(s)) => s,
        _ => return None,
    };
    // Attribute and Event beside the sighting rather than inside it: moved in.
    for k in ["Attribute", "Event"] {
        if !s.contains_key(k) {
            if let Some(v) = outer.remove(k) {
                s.insert(k.into(), v);
            }
        }
    }
    let at = field_epoch(&s, "date_sighting")?;
    let id = field_text(&s, "uuid").or(field_text(&s, "id"))?;
    let event_id = field_text(&s, "event_id");
    if let Some(Value::Object(e)) = s.get_mut("Event") {
        if !e.contains_key("Orgc") {
            if let Some(orgc) = event_id.as_ref().and_then(|i| creators.get(i)) {
                e.insert("Orgc".into(), orgc.clone());
            }
        }
    } else if let Some(orgc) = event_id.as_ref().and_then(|i| creators.get(i)) {
        s.insert("Event".into(), json!({"id": event_id, "Orgc": orgc}));
    }
    let body = json!({"Sighting": Value::Object(s), "action": "add"});
    Some(Entry {
        member: record_member("sighting", &id, at),
        at,
        envelope: envelope(feed, &format!("misp_json_sighting {body}"), at, gap),
    })
}

/// The buffer entry: the subscriber's envelope, with when the message happened in MISP, and
/// whether it fills a gap in the live feed (then it is shown live too).
fn envelope(feed: &str, content: &str, at: i64, gap: bool) -> String {
    let mut m = Map::new();
    m.insert("zmq_name".into(), Value::from(feed));
    m.insert("content".into(), Value::from(content));
    m.insert(crate::message::BACKFILLED_AT.into(), Value::from(at));
    if gap {
        m.insert(crate::message::GAP_FILL.into(), Value::Bool(true));
    }
    Value::Object(m).to_string()
}

/// A record member (see [`crate::keys::backfill_record`]): what the dispatcher writes for the
/// publishes and sightings it applies, live or not, and what a backfill checks.
pub fn record_member(kind: &str, id: &str, at: i64) -> String {
    format!("{kind}:{id}@{at}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_becomes_its_publish_at_its_publish_time() {
        let e = json!({"id": "7", "uuid": "u-7", "info": "x", "timestamp": "1700000000",
            "publish_timestamp": "1700000100", "Orgc": {"name": "CIRCL"},
            "Attribute": [{"id": "1"}, {"id": "2"}],
            "Object": [{"Attribute": [{"id": "3"}]}, {"name": "empty"}]});
        let Value::Object(m) = e else { unreachable!() };
        let (entry, attributes) = event_entry("misp1", m, false).expect("usable");
        assert_eq!(attributes, 3);
        assert_eq!(entry.member, "event:u-7@1700000100");
        assert_eq!(entry.at, 1_700_000_100);
        let env = crate::message::parse_envelope(&entry.envelope).expect("envelope");
        assert_eq!(env.zmq_name, "misp1");
        assert_eq!(env.backfilled_at, Some(1_700_000_100.0));
        assert!(
            env.content.starts_with("misp_json {\"Event\":{"),
            "{}",
            env.content
        );
        // Without any timestamp or id: not usable.
        let Value::Object(m) = json!({"info": "x"}) else {
            unreachable!()
        };
        assert!(event_entry("misp1", m, false).is_none());
    }

    #[test]
    fn a_sighting_gets_its_events_creator() {
        let creators = [("7".to_string(), json!({"name": "CIRCL"}))].into();
        let item = json!({"Sighting": {"id": "9", "uuid": "s-9", "event_id": "7",
            "date_sighting": "1700000200", "type": "0"},
            "Attribute": {"category": "Network activity"}});
        let e = sighting_entry("misp1", item, &creators, false).expect("usable");
        assert_eq!(e.member, "sighting:s-9@1700000200");
        let env = crate::message::parse_envelope(&e.envelope).expect("envelope");
        let (topic, body) = env.content.split_once(' ').expect("frame");
        assert_eq!(topic, "misp_json_sighting");
        let b: Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            b.pointer("/Sighting/Event/Orgc/name"),
            Some(&json!("CIRCL"))
        );
        assert_eq!(
            b.pointer("/Sighting/Attribute/category"),
            Some(&json!("Network activity"))
        );
    }
}
