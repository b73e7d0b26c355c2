//! Rewinding the live view (`[mispdash] rewind_hours`, `keys::REWIND`): messages go through
//! the real dispatcher at pinned instants (`MISPDASH_FAKE_NOW` differs between its runs) into a
//! real Redis, and the real server's `/_mispdash/rewind` and `/_mispdash/rewind.csv` must give
//! exactly the rows and map points of each moment, never what `mispdash backfill` read from
//! MISP's API, nothing older than the kept hours, and with access control on only what MISP
//! would show each user. The scripts that add and trim entries are tested on their own first.

mod acl_messages;
mod common;
mod http_support;
mod misp_standin;
mod rewind_support;

use acl_messages::*;
use common::*;
use http_support::*;
use misp_standin::*;
use mispdash_core::rewind::{APPEND_LUA, MAX_PAIRS, TRIM_LUA};
use rewind_support::*;
use serde_json::{json, Value};
use std::time::Duration;

fn append(c: &mut redis::Connection, items: &[(u64, &str)]) -> i64 {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(APPEND_LUA).arg(2).arg(STREAM).arg(BYTES);
    for (ms, v) in items {
        cmd.arg(ms).arg("row").arg(v);
    }
    cmd.query(c).expect("append")
}

fn trim(c: &mut redis::Connection, min_ms: u64, max_bytes: u64) -> i64 {
    redis::cmd("EVAL")
        .arg(TRIM_LUA)
        .arg(2)
        .arg(STREAM)
        .arg(BYTES)
        .arg(min_ms)
        .arg(max_bytes)
        .query(c)
        .expect("trim")
}

/// The entries' ids, oldest first.
fn ids(c: &mut redis::Connection) -> Vec<String> {
    raw_entries(c).into_iter().map(|(id, _)| id).collect()
}

fn counter(c: &mut redis::Connection) -> Option<i64> {
    redis::cmd("GET").arg(BYTES).query(c).expect("get")
}

/// The scripts alone: ids follow the clock and never go back, the rows of one millisecond
/// share an entry (at most `MAX_PAIRS` of them); trimming drops what is older than the kept
/// time and the oldest beyond the byte bound, weighs every row of an entry, keeps the byte
/// count right (counting again when it was lost), and leaves nothing behind once the stream is
/// empty.
#[test]
fn entries_follow_the_clock_and_trimming_keeps_the_bounds() {
    let redis = Redis::start();
    let mut c = redis.conn(2).expect("redis");
    assert_eq!(
        append(&mut c, &[(1000, "aa"), (1000, "bbb"), (2000, "c")]),
        6
    );
    assert_eq!(ids(&mut c), ["1000-0", "2000-0"]);
    assert_eq!(
        entries(&mut c)
            .into_iter()
            .map(|(id, _, v)| format!("{id} {v}"))
            .collect::<Vec<_>>(),
        ["1000-0 aa", "1000-0 bbb", "2000-0 c"]
    );
    // A clock set back: the entry is stamped as the newest, not refused.
    assert_eq!(append(&mut c, &[(1500, "dddd")]), 10);
    assert_eq!(ids(&mut c), ["1000-0", "2000-0", "2000-1"]);
    // Nothing to drop.
    assert_eq!(trim(&mut c, 1000, 100), 0);
    assert_eq!(ids(&mut c).len(), 3);
    // By time: what is older than 1.8 s goes (the entry of two rows, 5 bytes).
    assert_eq!(trim(&mut c, 1800, 100), 1);
    assert_eq!(ids(&mut c), ["2000-0", "2000-1"]);
    assert_eq!(counter(&mut c), Some(5));
    // By bytes: the oldest go until the rest fits.
    append(&mut c, &[(3000, "eeeeee")]);
    assert_eq!(trim(&mut c, 0, 6), 2);
    assert_eq!(ids(&mut c), ["3000-0"]);
    assert_eq!(counter(&mut c), Some(6));
    // A lost counter is counted again.
    redis::cmd("DEL")
        .arg(BYTES)
        .query::<()>(&mut c)
        .expect("del");
    append(&mut c, &[(3000, "ff")]);
    assert_eq!(counter(&mut c), Some(2), "the append alone does not count");
    redis::cmd("DEL")
        .arg(BYTES)
        .query::<()>(&mut c)
        .expect("del");
    assert_eq!(trim(&mut c, 0, 100), 0);
    assert_eq!(counter(&mut c), Some(8));
    // Many pages at once, and everything: both keys go.
    let many: Vec<(u64, String)> = (0..1500).map(|i| (4000 + i, format!("{i}"))).collect();
    let refs: Vec<(u64, &str)> = many.iter().map(|(m, v)| (*m, v.as_str())).collect();
    append(&mut c, &refs);
    assert_eq!(ids(&mut c).len(), 1502);
    assert_eq!(trim(&mut c, 5000, 1 << 20), 1002);
    assert_eq!(ids(&mut c).first().map(String::as_str), Some("5000-0"));
    assert_eq!(trim(&mut c, 1 << 40, 1 << 20), 500);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(STREAM)
        .arg(BYTES)
        .query(&mut c)
        .expect("exists");
    assert_eq!(exists, 0);
    // A new stream starts from the clock again, even below the ids the old one gave.
    append(&mut c, &[(10, "g")]);
    assert_eq!(ids(&mut c), ["10-0"]);
    // An emptied stream (which keeps its last id) is started afresh too.
    redis::cmd("XDEL")
        .arg(STREAM)
        .arg("10-0")
        .query::<()>(&mut c)
        .expect("xdel");
    append(&mut c, &[(5, "h")]);
    assert_eq!(ids(&mut c), ["5-0"]);
    assert_eq!(counter(&mut c), Some(1));
    // More rows in one millisecond than an entry holds: several entries, every row in order,
    // and a lost counter counted again from all of them.
    let burst: Vec<String> = (0..2 * MAX_PAIRS + 20).map(|i| format!("r{i}")).collect();
    let refs: Vec<(u64, &str)> = burst.iter().map(|v| (6, v.as_str())).collect();
    append(&mut c, &refs);
    assert_eq!(ids(&mut c), ["5-0", "6-0", "6-1", "6-2"]);
    let values: Vec<String> = entries(&mut c).into_iter().map(|(_, _, v)| v).collect();
    assert_eq!(values[1..], burst[..]);
    redis::cmd("DEL")
        .arg(BYTES)
        .query::<()>(&mut c)
        .expect("del");
    assert_eq!(trim(&mut c, 0, 1 << 20), 0);
    let bytes: usize = values.iter().map(String::len).sum();
    assert_eq!(counter(&mut c), Some(bytes as i64));
}

/// The JSON of an answer.
fn json_of(r: reqwest::blocking::Response) -> Value {
    let text = r.text().expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(c: &reqwest::blocking::Client, url: &str, cookie: &str) -> reqwest::blocking::Response {
    let r = c
        .get(url)
        .header("Accept", "application/json")
        .header("Cookie", cookie)
        .send()
        .expect("get");
    assert_eq!(r.status(), 200, "{url}");
    r
}

fn window(c: &reqwest::blocking::Client, base: &str, q: &str) -> Value {
    json_of(get(c, &format!("{base}/_mispdash/rewind?{q}"), ""))
}

/// The distinctive value of each row of an answer, in order.
fn row_values(v: &Value) -> Vec<String> {
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let cell = r["log"]["5"].as_str().expect("value column");
            cell.split("||").next().unwrap_or("").to_string()
        })
        .collect()
}

fn point_values(v: &Value) -> Vec<String> {
    v["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["point"]["value"].as_str().expect("value").to_string())
        .collect()
}

/// The value column of each CSV record after the header, read as a spreadsheet would (the
/// `csv` crate): a phone number begins with "+", so the export writes it with a "'" first, as
/// a formula would be.
fn csv_values(text: &str) -> Vec<String> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| {
            let r = r.expect("a CSV record");
            let cell = r.iter().next_back().unwrap_or("");
            assert!(
                cell.starts_with("'+"),
                "a formula-like cell is defused: {cell}"
            );
            let cell = cell.trim_start_matches('\'');
            cell.split("||").next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn a_window_gives_the_rows_and_points_of_its_moment_and_nothing_older_than_kept() {
    let redis = Redis::start();
    let server = start_server(redis.port, &ServerSetup::default(), "rewind");
    let base = server.base("http");
    let c = client();
    let t1: u64 = 1_795_176_000 - 7200;
    let t2 = t1 + 3600;
    let first = ["+32 2 555 02 01", "+32 2 555 02 02", "+32 2 555 02 03"];
    let second = ["+32 2 555 02 04", "+32 2 555 02 05"];

    // Before anything was handled: an empty window.
    let empty = window(&c, &base, &format!("from={t1}&to={t2}"));
    assert_eq!(empty["rows"], json!([]), "{empty}");
    assert_eq!(empty["oldest"], Value::Null);

    // The first moment, with a backfilled message among the live ones.
    let mut frames: Vec<String> = first
        .iter()
        .enumerate()
        .map(|(i, v)| frame(1 + i as u32, v))
        .collect();
    frames.insert(1, backfilled(90, "+32 2 555 02 99", t1 - 500));
    dispatch_at(&redis, &server.dir, t1, &frames, 6);
    // The second moment.
    let frames: Vec<String> = second
        .iter()
        .enumerate()
        .map(|(i, v)| frame(10 + i as u32, v))
        .collect();
    dispatch_at(&redis, &server.dir, t2, &frames, 10);
    let mut data = redis.conn(2).expect("redis");
    let stored = entries(&mut data);
    assert!(
        stored.iter().all(|(_, _, v)| !v.contains("555 02 99")),
        "a backfilled message is not live: {stored:?}"
    );
    assert!(
        stored
            .iter()
            .all(|(id, _, _)| id.starts_with(&format!("{t1}000-"))
                || id.starts_with(&format!("{t2}000-"))),
        "ids are the dispatcher's pinned clock: {stored:?}"
    );
    let bytes: usize = stored.iter().map(|(_, _, v)| v.len()).sum();
    assert_eq!(counter(&mut data), Some(bytes as i64));

    // Newest first, each moment exactly.
    let at_t1 = window(&c, &base, &format!("to={t1}"));
    assert_eq!(
        row_values(&at_t1),
        ["+32 2 555 02 03", "+32 2 555 02 02", "+32 2 555 02 01"]
    );
    assert_eq!(point_values(&at_t1), row_values(&at_t1), "a point per row");
    assert!(at_t1["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .all(|r| r["at"] == json!(t1 as f64)));
    assert_eq!(at_t1["oldest"], json!(t1 as f64));
    assert_eq!(at_t1["more"], json!(false));
    // The moment's rows and points share its millisecond's entry; each has an id of its own.
    let ids: std::collections::BTreeSet<&str> = ["rows", "points"]
        .iter()
        .flat_map(|k| at_t1[*k].as_array().expect("array"))
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 6, "{at_t1}");
    assert!(ids.contains(format!("{t1}000-0").as_str()), "{ids:?}");
    let at_t2 = window(&c, &base, &format!("to={t2}"));
    let all = [
        "+32 2 555 02 05",
        "+32 2 555 02 04",
        "+32 2 555 02 03",
        "+32 2 555 02 02",
        "+32 2 555 02 01",
    ];
    assert_eq!(row_values(&at_t2), all);
    let just_before_t2 = window(&c, &base, &format!("to={}", t2 - 1));
    assert_eq!(row_values(&just_before_t2), row_values(&at_t1));
    let only_t2 = window(&c, &base, &format!("from={}&to={t2}", t1 + 1));
    assert_eq!(row_values(&only_t2), ["+32 2 555 02 05", "+32 2 555 02 04"]);
    let limited = window(&c, &base, &format!("to={t2}&limit=2&points=1"));
    assert_eq!(row_values(&limited), ["+32 2 555 02 05", "+32 2 555 02 04"]);
    assert_eq!(point_values(&limited), ["+32 2 555 02 05"]);
    assert_eq!(limited["more"], json!(true));
    // Where the kept past begins, as the page asks it: no entry read, only whether the window
    // holds any.
    let bounds = window(&c, &base, &format!("to={t2}&limit=0&points=0"));
    assert_eq!(
        (&bounds["rows"], &bounds["points"], &bounds["more"]),
        (&json!([]), &json!([]), &json!(true))
    );
    assert_eq!(bounds["oldest"], json!(t1 as f64));
    let before = window(&c, &base, &format!("to={}&limit=0&points=0", t1 - 1));
    assert_eq!(before["more"], json!(false), "nothing kept before t1");

    // The rows are those the live log shows (`/_logs`), with their id and time.
    let logs: Value = json_of(get(&c, &format!("{base}/_logs"), ""));
    let rewound: Vec<Value> = at_t2["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let m = r.as_object_mut().expect("object");
            m.remove("id");
            m.remove("at");
            r
        })
        .collect();
    assert_eq!(Value::Array(rewound), logs);
    let maps: Value = json_of(get(&c, &format!("{base}/_maps"), ""));
    let points: Vec<Value> = at_t2["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["point"].clone())
        .collect();
    assert_eq!(Value::Array(points), maps);

    // The live log's filters: the cookie's, and the page's own.
    let filtered: Value = json_of(get(
        &c,
        &format!("{base}/_mispdash/rewind?to={t2}"),
        "filters=%7B%22Attribute.value%22%3A%22!%2B32%202%20555%2002%2004%22%7D",
    ));
    assert_eq!(
        row_values(&filtered),
        [
            "+32 2 555 02 05",
            "+32 2 555 02 03",
            "+32 2 555 02 02",
            "+32 2 555 02 01"
        ]
    );
    let has = window(
        &c,
        &base,
        &format!("to={t2}&f=Attribute.value~has~COMMENT%2011"),
    );
    assert_eq!(row_values(&has), ["+32 2 555 02 05"]);

    // The CSV of a window: its rows, oldest first, as text.
    let r = get(
        &c,
        &format!("{base}/_mispdash/rewind.csv?from={t1}&to={t2}"),
        "",
    );
    assert_eq!(
        r.headers()["content-type"].to_str().ok(),
        Some("text/csv; charset=utf-8")
    );
    assert!(r.headers()["content-disposition"]
        .to_str()
        .is_ok_and(|d| d.starts_with("attachment")));
    assert_eq!(
        r.headers()["x-mispdash-complete"].to_str().ok(),
        Some("true")
    );
    let text = r.text().expect("csv");
    let mut oldest_first = all.to_vec();
    oldest_first.reverse();
    assert_eq!(csv_values(&text), oldest_first, "{text}");
    let header = text.lines().next().unwrap_or("");
    assert_eq!(
        header,
        "time,epoch,feed,kind,Attribute.timestamp,Event.id,Attribute.Tag,Attribute.category,Attribute.type,Attribute.value | Attribute.comment"
    );
    let line = text.lines().nth(1).unwrap_or("");
    assert!(
        line.starts_with(&format!("2026-11-20T10:00:00.000+00:00,{t1}.000,misp1,attribute,2026-11-20 11:43:20,200,tlp:green,Other,phone-number,")),
        "{line}"
    );
    let t1_csv = get(
        &c,
        &format!("{base}/_mispdash/rewind.csv?from={}&to={t1}", t1 - 60),
        "",
    )
    .text()
    .expect("csv");
    assert_eq!(csv_values(&t1_csv), first);

    // Bad windows are refused, saying why.
    for q in ["from=20&to=10", "to=later", "limit=5000", "f=nothing"] {
        let r = c
            .get(format!("{base}/_mispdash/rewind?{q}"))
            .send()
            .expect("get");
        assert_eq!(r.status(), 400, "{q}");
        let e: Value = json_of(r);
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }

    // A day and a minute after the first moment: its entries are trimmed away, the second
    // moment's are kept.
    let t3 = t1 + 24 * 3600 + 60;
    dispatch_at(&redis, &server.dir, t3, &[frame(20, "+32 2 555 02 06")], 6);
    let kept = entries(&mut data);
    assert!(
        kept.iter()
            .all(|(id, _, _)| !id.starts_with(&format!("{t1}000-"))),
        "{kept:?}"
    );
    let everything = window(&c, &base, &format!("from=0&to={t3}"));
    assert_eq!(
        row_values(&everything),
        ["+32 2 555 02 06", "+32 2 555 02 05", "+32 2 555 02 04"]
    );
    assert_eq!(everything["oldest"], json!(t2 as f64));
    let bytes: usize = kept.iter().map(|(_, _, v)| v.len()).sum();
    assert_eq!(counter(&mut data), Some(bytes as i64));
}

/// `rewind_hours = 0`: nothing is written, and the routes say it is off.
#[test]
fn rewinding_off_writes_nothing() {
    let redis = Redis::start();
    let setup = ServerSetup {
        mispdash: "rewind_hours = 0\n".into(),
        ..Default::default()
    };
    let server = start_server(redis.port, &setup, "rewind-off");
    let cfg = server.dir.join("config.cfg");
    let mut d = dispatcher_at(&cfg, &server.dir.join("dispatcher.log"), 1_795_176_000);
    push(&redis, &[frame(1, "+32 2 555 03 01")]);
    let mut data = redis.conn(2).expect("redis");
    assert!(wait_until(Duration::from_secs(30), || {
        redis::cmd("LLEN")
            .arg("TEMP_CACHE_LIVE:Attribute")
            .query::<i64>(&mut data)
            .unwrap_or(0)
            == 1
    }));
    assert!(d.terminate().success());
    let exists: i64 = redis::cmd("EXISTS")
        .arg(STREAM)
        .arg(BYTES)
        .query(&mut data)
        .expect("exists");
    assert_eq!(exists, 0);
    let r = client()
        .get(format!("{}/_mispdash/rewind", server.base("http")))
        .send()
        .expect("get");
    assert_eq!(r.status(), 404);
    let e: Value = json_of(r);
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|m| m.contains("rewind_hours")),
        "{e}"
    );
}

/// With access control on, each user gets of a window, in JSON and in CSV, only what MISP
/// would show them (the users and messages of `http_acl`).
#[test]
fn each_user_rewinds_only_what_misp_would_show_them() {
    let misp = start_misp();
    let redis = Redis::start();
    let setup = ServerSetup {
        auth: format!(
            "auth_enabled = True\nmisp_fqdn = http://127.0.0.1:{misp}\nssl_verify = True\nsession_secret = {SECRET}\nsession_cookie_secure = False\n"
        ),
        mispdash: format!("misp_api_key = {ADMIN_KEY}\n\n[ACL]\nenabled = True\n"),
        ..Default::default()
    };
    let server = start_server(redis.port, &setup, "rewind-acl");
    let now = 1_795_176_000u64;
    // Seven rows and seven map points (the event message makes neither).
    dispatch_at(&redis, &server.dir, now, &frames(), 14);
    let base = server.base("http");
    let c = client();
    // Without a session: refused, as every route.
    let r = c
        .get(format!("{base}/_mispdash/rewind?to={now}"))
        .send()
        .expect("get");
    assert_eq!(r.status(), 401);
    let alice = login_session(&c, &base, "alice@example.org", "correct horse");
    let carol = login_session(&c, &base, "", API_KEY);
    for (who, want) in [(&alice, alice_sees()), (&carol, carol_sees())] {
        let v: Value = json_of(get(
            &c,
            &format!("{base}/_mispdash/rewind?from={}&to={now}", now - 60),
            who,
        ));
        let rows = serde_json::to_string(&v["rows"]).expect("json");
        let points = serde_json::to_string(&v["points"]).expect("json");
        assert_eq!(values_in(&rows), want, "rows: {rows}");
        // The described object's point carries no event: like the live map, it is shown by
        // the facts the dispatcher recorded for it.
        assert_eq!(values_in(&points), want, "points: {points}");
        let csv = get(
            &c,
            &format!("{base}/_mispdash/rewind.csv?from={}&to={now}", now - 60),
            who,
        )
        .text()
        .expect("csv");
        assert_eq!(values_in(&csv), want, "csv: {csv}");
        assert_eq!(csv.lines().count(), want.len() + 1, "{csv}");
    }
}

/// seed2 through the real dispatcher in two halves at two pinned instants: a window that ends
/// between them answers exactly the live rows the original published for the first half (the
/// newest 1,000, newest first, as the live log shows them), and one from the first instant to
/// after the second exactly the second half's.
#[test]
fn seed2_rewinds_to_the_rows_the_original_published_at_that_moment() {
    let redis = Redis::start();
    let server = start_server(redis.port, &ServerSetup::default(), "rewind-seed2");
    let base = server.base("http");
    let now: u64 = ORACLE_NOW.parse().expect("epoch");
    let (t1, t2) = (now - 7200, now - 3600);
    let halves = seed2_halves();
    assert!(halves.first_rows.len() > 1000 && halves.second_rows.len() > 1000);
    drain_at(&redis, &server.dir, t1, &halves.first);
    drain_at(&redis, &server.dir, t2, &halves.second);
    let c = client();
    let rows = |q: &str| -> Vec<Value> {
        let v = window(&c, &base, q);
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["log"].clone())
            .collect()
    };
    let at_t1 = rows(&format!("to={}&limit=1000", t1 + 10));
    assert_eq!(at_t1.len(), 1000);
    assert!(
        at_t1 == shown_rows(&halves.first_rows, 1000),
        "the first half's rows differ from the original's"
    );
    let second = rows(&format!("from={}&to={}&limit=1000", t1 + 10, t2 + 10));
    assert!(
        second == shown_rows(&halves.second_rows, 1000),
        "the second half's rows differ from the original's"
    );
}
