//! `mispdash backfill` against a **stand-in for MISP's REST API** (MISP cannot run here): a
//! local HTTP server answering `/events/restSearch` and `/sightings/restSearch` a page at a
//! time, as MISP shapes them, for 5,000 published events of the ten days before the pinned
//! clock. Real Redis, the real binary and its dispatcher.

mod acl_messages;
mod common;
mod http_support;
mod misp_rest;

use common::*;
use misp_rest::{config, now, Misp, KEY};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

const EVENTS: u64 = 5_000;
const SIGHTINGS: u64 = 300;
const DAY: i64 = 86_400;

fn world() -> Misp {
    let orgs = [
        "CIRCL", "CERT-EU", "ORG-3", "ORG-4", "ORG-5", "ORG-6", "ORG-7",
    ];
    let start = now() - 10 * DAY;
    let events = (0..EVENTS)
        .map(|i| {
            let at = start + (i as i64) * 10 * DAY / EVENTS as i64;
            let attr = |n: u64, categ: &str, ty: &str, value: String| {
                json!({"id": (i * 10 + n).to_string(), "event_id": i.to_string(),
                    "object_id": "0", "category": categ, "type": ty, "value": value,
                    "timestamp": at.to_string(), "to_ids": true, "distribution": "5",
                    "sharing_group_id": "0", "comment": "", "uuid": format!("a-{i}-{n}")})
            };
            json!({"Event": {"id": i.to_string(), "uuid": format!("e-{i:05}"),
                "info": format!("backfilled event {}", i % 40), "date": "2026-11-20",
                "timestamp": at.to_string(), "publish_timestamp": at.to_string(),
                "published": true, "distribution": "3", "sharing_group_id": "0",
                "org_id": "1", "orgc_id": "1",
                "Orgc": {"id": "1", "name": orgs[(i % 7) as usize]},
                "Tag": [{"id": "1", "name": "tlp:green", "colour": "#33ff00"}],
                "Attribute": [
                    attr(1, "Network activity", "ip-dst", format!("8.8.{}.{}", i % 200, i % 250)),
                    attr(2, "Payload delivery", "md5", format!("{i:032x}")),
                ],
                "Object": []}})
        })
        .collect();
    let sightings = (0..SIGHTINGS)
        .map(|i| {
            let event = i * 13 % EVENTS;
            json!({"Sighting": {"id": i.to_string(), "uuid": format!("s-{i}"),
                "attribute_id": (event * 10 + 1).to_string(), "event_id": event.to_string(),
                "org_id": "1", "type": if i % 5 == 0 { "1" } else { "0" },
                "source": "", "date_sighting": (start + (i as i64) * 10 * DAY / SIGHTINGS as i64).to_string()},
                "Attribute": {"id": (event * 10 + 1).to_string(), "category": "Network activity",
                    "type": "ip-dst", "value": "8.8.8.8", "object_id": "0",
                    "event_id": event.to_string()}})
        })
        .collect();
    Misp {
        events: Mutex::new(events),
        sightings: Mutex::new(sightings),
        ..Misp::default()
    }
}

fn backfill(cfg: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(cfg)
        .arg("backfill")
        .args(args)
        .env("TZ", "UTC")
        .env("MISPDASH_FAKE_NOW", ORACLE_NOW)
        .env("NO_COLOR", "1")
        .env_remove("MISPDASH_MISP_API_KEY")
        .output()
        .expect("run backfill")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn buffered(redis: &Redis) -> usize {
    let mut c = redis.conn(3).expect("redis");
    redis::cmd("LLEN")
        .arg("bufferList")
        .query(&mut c)
        .expect("llen")
}

/// Runs the dispatcher until the buffer is empty, then stops it.
fn drain(cfg: &Path, redis: &Redis, dir: &Path, tag: &str) {
    let mut d = acl_messages::start_dispatcher(cfg, &dir.join(format!("dispatch-{tag}.log")));
    assert!(
        wait_until(Duration::from_secs(300), || {
            let mut c = redis.conn(3).expect("redis");
            let (a, b): (usize, usize) = redis::pipe()
                .cmd("LLEN")
                .arg("bufferList")
                .cmd("LLEN")
                .arg("bufferList:processing")
                .query(&mut c)
                .expect("llen");
            a == 0 && b == 0
        }),
        "the dispatcher did not drain the backfill: {}",
        d.log_text()
    );
    d.terminate();
}

#[test]
fn a_backfill_fills_the_pages_counts_nothing_twice_and_resumes_after_an_interruption() {
    let dir = tmpdir("backfill");
    let (misp_port, misp) = misp_rest::start(world());
    let redis = Redis::start();
    let cfg = config(&dir, redis.port, misp_port, KEY);

    // A dry run says what it would add and changes nothing.
    let o = backfill(&cfg, &["--since", "30d", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("would add {EVENTS} ({} attribute(s))", EVENTS * 2)),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains(&format!("would add {SIGHTINGS}")),
        "{}",
        text(&o)
    );
    assert_eq!(buffered(&redis), 0);
    let mut c = redis.conn(2).expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).expect("keys");
    assert!(keys.is_empty(), "a dry run wrote {keys:?}");

    // MISP fails on page 20: the run stops with what MISP said; what was read is queued.
    *misp.fail_page_once.lock().expect("lock") = Some(20);
    let o = backfill(&cfg, &["--since", "30d"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("answered HTTP 500"), "{}", text(&o));
    assert_eq!(buffered(&redis), 1_900);
    // Run again: it resumes, pushing only what is not queued yet.
    let o = backfill(&cfg, &["--since", "30d"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("added {} (", EVENTS - 1_900))
            && text(&o).contains("1900 already applied"),
        "{}",
        text(&o)
    );
    assert_eq!(buffered(&redis) as u64, EVENTS + SIGHTINGS);
    drain(&cfg, &redis, &dir, "a");

    // The same backfill in one go, into another Redis: the same keyspace.
    let other = Redis::start();
    let cfg_b = config(&tmpdir("backfill-b"), other.port, misp_port, KEY);
    let o = backfill(&cfg_b, &["--since", "30d"]);
    assert!(o.status.success(), "{}", text(&o));
    drain(&cfg_b, &other, &dir, "b");
    let a = dump_without_own_keys(redis.port, &dir, "interrupted");
    let b = dump_without_own_keys(other.port, &dir, "in-one-go");
    let (same, diff) = compare("redis", &b, &a);
    assert!(
        same,
        "an interrupted backfill differs from one in one go:\n{diff}"
    );

    // A third run adds nothing.
    let o = backfill(&cfg, &["--since", "30d"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("added 0 (0 attribute(s)), 5000 already applied")
            && text(&o).contains(&format!("added 0, {SIGHTINGS} already applied")),
        "{}",
        text(&o)
    );
    assert_eq!(buffered(&redis), 0);

    // Counted on the days they happened: one contribution key for each of the eleven dates, from ten days back.
    let mut c = redis.conn(2).expect("redis");
    let mut days: Vec<String> = redis::cmd("KEYS")
        .arg("CONTRIB_DAY:*")
        .query(&mut c)
        .expect("keys");
    days.sort();
    assert_eq!(
        days.first().map(String::as_str),
        Some("CONTRIB_DAY:20261110"),
        "{days:?}"
    );
    assert_eq!(days.len(), 11, "{days:?}");
    // Not live: nothing in the live caches.
    let mut c0 = redis.conn(0).expect("redis");
    let live: usize = redis::cmd("LLEN")
        .arg("TEMP_CACHE_LIVE:Attribute")
        .query(&mut c0)
        .expect("llen");
    assert_eq!(live, 0);

    // The pages show the backfilled days: the trendings and the sightings over the ten days.
    let server = http_support::start_server(redis.port, &Default::default(), "backfill");
    let base = server.base("http");
    let client = http_support::client();
    let get = |path: &str| -> Value {
        client
            .get(format!("{base}{path}"))
            .header("Accept", "application/json")
            .send()
            .expect("get")
            .text()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .expect("json")
    };
    let (s, e) = (now() - 11 * DAY, now());
    let trend = get(&format!(
        "/_getTrendingEvents?dateS={s}&dateE={e}&topNum=100"
    ));
    let per_day: Vec<f64> = trend
        .as_array()
        .expect("days")
        .iter()
        .map(|d| {
            d[1].as_array()
                .expect("labels")
                .iter()
                .filter_map(|l| l[1].as_f64())
                .sum()
        })
        .collect();
    assert_eq!(per_day.iter().sum::<f64>() as u64, EVENTS, "{trend}");
    assert!(
        per_day.iter().filter(|n| **n > 0.0).count() >= 10,
        "{trend}"
    );
    let sight = get(&format!("/_getTrendingSightings?dateS={s}&dateE={e}"));
    let (pos, neg) = sight
        .as_array()
        .expect("days")
        .iter()
        .fold((0, 0), |(p, n), d| {
            (
                p + d[1]["sightings"].as_u64().unwrap_or(0),
                n + d[1]["false_positive"].as_u64().unwrap_or(0),
            )
        });
    assert_eq!((pos, neg), (SIGHTINGS * 4 / 5, SIGHTINGS / 5), "{sight}");
}

#[test]
fn a_backfill_says_what_went_wrong() {
    let dir = tmpdir("backfill-errors");
    let (misp_port, misp) = misp_rest::start(world());
    let redis = Redis::start();

    let wrong = config(&dir, redis.port, misp_port, "not-the-key");
    let o = backfill(&wrong, &["--since", "1d"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("refused the API key (HTTP 403)"),
        "{}",
        text(&o)
    );

    let cfg = config(&dir, redis.port, misp_port, KEY);
    let o = backfill(&cfg, &["--feed", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no feed named \"nope\""), "{}", text(&o));

    *misp.error_page.lock().expect("lock") = true;
    let o = backfill(&cfg, &["--since", "1d"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("answered HTTP 500: <!DOCTYPE html><html><body><h2>An Internal Error"),
        "{}",
        text(&o)
    );
    *misp.error_page.lock().expect("lock") = false;

    *misp.login_page.lock().expect("lock") = true;
    let o = backfill(&cfg, &["--since", "1d"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not its JSON"), "{}", text(&o));
    *misp.login_page.lock().expect("lock") = false;

    *misp.delay.lock().expect("lock") = Duration::from_secs(3);
    let o = backfill(&cfg, &["--since", "1d", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("did not answer within 1 s"),
        "{}",
        text(&o)
    );
    *misp.delay.lock().expect("lock") = Duration::ZERO;

    let o = backfill(&cfg, &["--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("give a duration back from now"),
        "{}",
        text(&o)
    );

    // Nothing was queued by any of these.
    assert_eq!(buffered(&redis), 0);
    // Once MISP answers: the last day only (events every 172.8 s, sightings every 2,880 s).
    let o = backfill(&cfg, &["--since", "1d"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("500 event(s) read: added 500 (1000 attribute(s))"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("30 sighting(s) read: added 30"),
        "{}",
        text(&o)
    );
    assert_eq!(buffered(&redis), 530);
    assert_eq!(
        *misp.pages.lock().expect("lock"),
        5,
        "five pages of 100 events"
    );
}

/// A feed that never backfills still has its record trimmed: the dispatcher records every live
/// publish and sighting, and drops what is older than a backfill asks for (400 days) from the
/// records it adds to, so the record stays as large as 400 days of publishing, not for good.
#[test]
fn the_dispatcher_keeps_the_backfill_record_within_its_bound() {
    let dir = tmpdir("backfill-record-trim");
    let redis = Redis::start();
    let cfg = config(&dir, redis.port, 1, KEY);
    let n: i64 = ORACLE_NOW.parse().expect("now");
    let mut c = redis.conn(2).expect("redis");
    let old = format!("sighting:s-old@{}", n - 401 * DAY);
    let kept = format!("sighting:s-kept@{}", n - 399 * DAY);
    redis::cmd("ZADD")
        .arg("MISPDASH_BACKFILL:misp1")
        .arg(n - 401 * DAY)
        .arg(&old)
        .arg(n - 399 * DAY)
        .arg(&kept)
        .query::<()>(&mut c)
        .expect("zadd");
    // Another feed's record, which this batch does not touch, is left for its own batches.
    redis::cmd("ZADD")
        .arg("MISPDASH_BACKFILL:other")
        .arg(n - 401 * DAY)
        .arg(&old)
        .query::<()>(&mut c)
        .expect("zadd");
    let sighting = acl_messages::envelope(
        "misp_json_sighting",
        &json!({"action": "add", "Sighting": {"id": "7", "uuid": "s-live",
            "attribute_id": "11", "event_id": "1", "org_id": "1", "type": "0", "source": "",
            "date_sighting": (n - 60).to_string()},
            "Attribute": {"id": "11", "category": "Network activity", "type": "ip-dst",
                "value": "198.51.100.7", "object_id": "0", "event_id": "1"}}),
    );
    acl_messages::push(&redis, &[sighting]);
    drain(&cfg, &redis, &dir, "trim");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg("MISPDASH_BACKFILL:misp1")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("zrange");
    assert_eq!(
        members,
        [kept, format!("sighting:s-live@{}", n - 60)],
        "the record of the live feed"
    );
    let other: Vec<String> = redis::cmd("ZRANGE")
        .arg("MISPDASH_BACKFILL:other")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("zrange");
    assert_eq!(other, [old]);
}
