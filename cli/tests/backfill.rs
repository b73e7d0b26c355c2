//! `mispdash backfill` against a **stand-in for MISP's REST API** (MISP cannot run here): a
//! local HTTP server answering `/events/restSearch` and `/sightings/restSearch` a page at a
//! time, as MISP shapes them, for 5,000 published events of the ten days before the pinned
//! clock. Real Redis, the real binary and its dispatcher.

mod acl_messages;
mod common;
mod http_support;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "b4ckf1llb4ckf1llb4ckf1llb4ckf1llb4ckf1ll";
const EVENTS: u64 = 5_000;
const SIGHTINGS: u64 = 300;
const DAY: i64 = 86_400;

/// The stand-in's data and how it misbehaves.
#[derive(Default)]
struct Misp {
    events: Vec<Value>,
    sightings: Vec<Value>,
    /// Answer this page of events with an error page, once (an interruption).
    fail_page_once: Mutex<Option<u64>>,
    /// Answer every request with an HTML error page (MISP broken).
    error_page: Mutex<bool>,
    /// Answer every request 200 with a login page (a proxy in front of MISP).
    login_page: Mutex<bool>,
    /// Take this long to answer.
    delay: Mutex<Duration>,
    /// Event pages served.
    pages: Mutex<u64>,
}

fn now() -> i64 {
    ORACLE_NOW.parse().expect("pinned clock")
}

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
        events,
        sightings,
        ..Misp::default()
    }
}

/// MISP's `publish_timestamp`/`from`/`to` filters and its paging.
fn page_of(items: &[Value], body: &Value, at: &str, from_to: bool) -> (Vec<Value>, usize) {
    let (lo, hi) = if from_to {
        (
            body.get("from").and_then(Value::as_i64).unwrap_or(0),
            body.get("to").and_then(Value::as_i64).unwrap_or(i64::MAX),
        )
    } else {
        match body.get("publish_timestamp") {
            Some(Value::Array(r)) => (
                r.first().and_then(Value::as_i64).unwrap_or(0),
                r.get(1).and_then(Value::as_i64).unwrap_or(i64::MAX),
            ),
            Some(v) => (v.as_i64().unwrap_or(0), i64::MAX),
            None => (0, i64::MAX),
        }
    };
    let matching: Vec<&Value> = items
        .iter()
        .filter(|v| {
            let t: i64 = v
                .pointer(at)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (lo..=hi).contains(&t)
        })
        .collect();
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(100) as usize;
    let page = body.get("page").and_then(Value::as_u64).unwrap_or(1) as usize;
    let out = matching
        .iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(|v| (*v).clone())
        .collect();
    (out, matching.len())
}

async fn guard(m: &Misp, h: &HeaderMap) -> Option<Response> {
    let delay = *m.delay.lock().expect("lock");
    tokio::time::sleep(delay).await;
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return Some(
            (
                StatusCode::FORBIDDEN,
                "{\"name\": \"Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.\", \"message\": \"Authentication failed.\"}",
            )
                .into_response(),
        );
    }
    if *m.error_page.lock().expect("lock") {
        return Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!DOCTYPE html><html><body><h2>An Internal Error Has Occurred.</h2></body></html>",
            )
                .into_response(),
        );
    }
    if *m.login_page.lock().expect("lock") {
        return Some(
            (
                StatusCode::OK,
                "<!DOCTYPE html><html><body><form action=\"/users/login\">Login</form></body></html>",
            )
                .into_response(),
        );
    }
    None
}

async fn events(State(m): State<Arc<Misp>>, h: HeaderMap, body: String) -> Response {
    if let Some(r) = guard(&m, &h).await {
        return r;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let page = body.get("page").and_then(Value::as_u64).unwrap_or(1);
    *m.pages.lock().expect("lock") += 1;
    {
        let mut fail = m.fail_page_once.lock().expect("lock");
        if *fail == Some(page) {
            *fail = None;
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<html>Internal error</html>",
            )
                .into_response();
        }
    }
    let (items, total) = page_of(&m.events, &body, "/Event/publish_timestamp", false);
    (
        [("x-result-count", total.to_string())],
        axum::Json(json!({"response": items})),
    )
        .into_response()
}

async fn sightings(State(m): State<Arc<Misp>>, h: HeaderMap, body: String) -> Response {
    if let Some(r) = guard(&m, &h).await {
        return r;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (items, _) = page_of(&m.sightings, &body, "/Sighting/date_sighting", true);
    axum::Json(json!({"response": items})).into_response()
}

fn start_misp() -> (u16, Arc<Misp>) {
    let state = Arc::new(world());
    let shared = state.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/events/restSearch", post(events))
                .route("/sightings/restSearch", post(sightings))
                .with_state(shared);
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(l, app).await;
        });
    });
    (port, state)
}

fn config(dir: &Path, redis: u16, misp: u16, key: &str) -> std::path::PathBuf {
    let instances = format!(
        "[{{\"name\": \"misp1\", \"url\": \"http://127.0.0.1:{misp}\", \"zmq\": \"tcp://127.0.0.1:1\", \"api_key\": \"{key}\"}}]"
    );
    write_config(dir, redis, &instances, &oracle_mmdb(), None)
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
    let (misp_port, misp) = start_misp();
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
    let (misp_port, misp) = start_misp();
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
