//! The live streams with real clients over real sockets: the original's recorded pub/sub
//! messages (`seed2.pubsub.jsonl.gz`) are published into a real Redis and must reach every
//! Server-Sent-Events client as the original would have sent them; plus keep-alives, the Accept
//! rule, history replay with `Last-Event-ID`, and a client that stops reading.

mod common;
mod http_support;

use common::*;
use http_support::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One parsed SSE item.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Event {
        name: Option<String>,
        id: Option<String>,
        data: String,
    },
    Comment,
}

/// A streaming client on its own thread; items arrive on a channel.
struct SseClient {
    rx: mpsc::Receiver<Item>,
    content_type: String,
}

impl SseClient {
    fn connect(base: &str, path: &str, last_event_id: Option<&str>) -> SseClient {
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .expect("client");
        let mut req = client
            .get(format!("{base}{path}"))
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().expect("connect");
        assert_eq!(resp.status(), 200);
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut id = None;
            let mut name = None;
            let mut data: Option<String> = None;
            for line in BufReader::new(resp).lines() {
                let Ok(line) = line else { break };
                if line.is_empty() {
                    if let Some(d) = data.take() {
                        if tx
                            .send(Item::Event {
                                name: name.take(),
                                id: id.take(),
                                data: d,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                } else if line.starts_with(':') {
                    if tx.send(Item::Comment).is_err() {
                        break;
                    }
                } else if let Some(v) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
                    data = Some(match data.take() {
                        Some(prev) => format!("{prev}\n{v}"),
                        None => v.to_string(),
                    });
                } else if let Some(v) = line.strip_prefix("id: ").or(line.strip_prefix("id:")) {
                    id = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                }
            }
        });
        SseClient { rx, content_type }
    }

    /// The next `n` events (comments skipped), within `limit`.
    fn events(&self, n: usize, limit: Duration) -> Vec<(Option<String>, String)> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Item::Event { id, data, .. }) => out.push((id, data)),
                Ok(Item::Comment) => {}
                Err(_) => panic!("only {} of {n} events arrived", out.len()),
            }
        }
        out
    }

    /// The next event of the combined stream that is not a ping: its name, id and data.
    fn next_named(&self, limit: Duration) -> (String, Option<String>, Value) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Item::Event { name, id, data }) => {
                    let name = name.unwrap_or_default();
                    if name == "ping" {
                        continue;
                    }
                    let v = serde_json::from_str(&data).expect("json data");
                    return (name, id, v);
                }
                Ok(Item::Comment) => {}
                Err(_) => panic!("no event within {limit:?}"),
            }
        }
    }

    fn comment_within(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Item::Comment) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
}

fn oracle_pubsub() -> Vec<(String, String)> {
    read_pubsub(&shared().join("corpus/seed2.pubsub.jsonl.gz"))
        .into_iter()
        .map(|m| {
            (
                m["channel"].as_str().expect("channel").to_string(),
                m["data"].as_str().expect("data").to_string(),
            )
        })
        .collect()
}

fn publish(redis: &Redis, msgs: &[&(String, String)]) {
    let mut c = redis.conn(0).expect("redis");
    let mut pipe = redis::pipe();
    for (ch, data) in msgs {
        pipe.cmd("PUBLISH").arg(ch).arg(data);
    }
    pipe.query::<()>(&mut c).expect("publish");
}

/// Waits until the server holds its one subscription (channel `1` and three patterns).
fn wait_subscribed(redis: &Redis) {
    let ok = wait_until(Duration::from_secs(10), || {
        subscriptions(redis) == Some((1, 3))
    });
    assert!(ok, "the server did not subscribe (exactly once) to Redis");
}

/// `json.dumps(json.loads(x)) == x` for every payload: the original's exact spelling.
fn assert_python_spelling(payloads: &[String]) {
    let dir = tmpdir("sse-spelling");
    let p = dir.join("payloads.json");
    std::fs::write(&p, serde_json::to_string(payloads).expect("json")).expect("write");
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg("import json,sys\nbad=[x for x in json.load(open(sys.argv[1])) if json.dumps(json.loads(x))!=x]\nprint(len(bad), bad[:2])\nsys.exit(1 if bad else 0)")
        .arg(&p)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "payloads not spelled as json.dumps: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn streams_deliver_the_original_payloads_to_every_client() {
    let redis = seed2_redis();
    let server = start_server(redis.port, &ServerSetup::default(), "sse");
    let base = server.base("http");
    let logs: Vec<SseClient> = (0..5)
        .map(|_| SseClient::connect(&base, "/_logs", None))
        .collect();
    let maps = SseClient::connect(&base, "/_maps", None);
    let contrib = SseClient::connect(&base, "/_eventStreamLastContributor", None);
    let awards = SseClient::connect(&base, "/_eventStreamAwards", None);
    assert!(logs[0].content_type.starts_with("text/event-stream"));
    wait_subscribed(&redis);

    let all = oracle_pubsub();
    let on = |ch: &str| all.iter().filter(|(c, _)| c == ch).collect::<Vec<_>>();
    let live = on("1");
    let map = on("PicToDisplay");
    let contributions: Vec<_> = on("lastContributor").into_iter().take(50).collect();
    let award_msgs: Vec<_> = on("lastAwards").into_iter().take(50).collect();
    publish(&redis, &live);
    publish(&redis, &map);
    publish(&redis, &contributions);
    publish(&redis, &award_msgs);

    // Live log: every client gets every message, in order, with strictly growing ids.
    let got: Vec<Vec<(Option<String>, String)>> = logs
        .iter()
        .map(|c| c.events(live.len(), Duration::from_secs(60)))
        .collect();
    for g in &got[1..] {
        assert_eq!(g, &got[0], "all clients see the same stream");
    }
    let ids: Vec<u64> = got[0]
        .iter()
        .map(|(id, _)| {
            id.as_deref()
                .and_then(|i| i.parse().ok())
                .expect("numeric id")
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    let payloads: Vec<String> = got[0].iter().map(|(_, d)| d.clone()).collect();
    assert_python_spelling(&payloads);
    // Rows equal the original's own formatting of the same entries: its /_logs answer holds
    // the newest cached entries, which are the last attribute messages published.
    let oracle_rows = recorded("logs").as_array().expect("rows").clone();
    let attr: Vec<Value> = payloads
        .iter()
        .map(|p| serde_json::from_str::<Value>(p).expect("json"))
        .filter(|v| v["name"] != "Keepalive")
        .collect();
    for (mine, theirs) in attr.iter().rev().zip(oracle_rows.iter().take(101)) {
        assert_eq!(mine, theirs, "row as the original formats it");
    }
    for (p, (_, published)) in payloads.iter().zip(&live) {
        let mine: Value = serde_json::from_str(p).expect("json");
        let src: Value = serde_json::from_str(published).expect("json");
        assert_eq!(mine["name"], src["name"]);
        assert_eq!(mine["zmqName"], src["zmqName"]);
        let keys: Vec<&String> = mine.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["log", "name", "zmqName"]);
        if src["name"] == "Keepalive" {
            let log: Value = serde_json::from_str(src["log"].as_str().expect("log")).expect("json");
            assert_eq!(mine["log"], log);
        }
    }

    // Map: forwarded verbatim.
    let got = maps.events(map.len(), Duration::from_secs(30));
    for ((_, d), (_, published)) in got.iter().zip(&map) {
        assert_eq!(d, published);
    }

    // Contributors and awards: enriched once per message as the original's lookup would.
    let last = recorded("_getTopContributor")
        .as_array()
        .expect("rows")
        .clone();
    for (client, msgs, award) in [
        (&contrib, &contributions, false),
        (&awards, &award_msgs, true),
    ] {
        let got = client.events(msgs.len(), Duration::from_secs(30));
        let payloads: Vec<String> = got.iter().map(|(_, d)| d.clone()).collect();
        assert_python_spelling(&payloads);
        for ((_, d), (_, published)) in got.iter().zip(msgs.iter()) {
            let mine: Value = serde_json::from_str(d).expect("json");
            let log: Value = serde_json::from_str(
                serde_json::from_str::<Value>(published).expect("json")["log"]
                    .as_str()
                    .expect("log"),
            )
            .expect("json");
            let mut keys = vec![
                "rank",
                "orgRank",
                "honorBadge",
                "logo_path",
                "org",
                "pnts",
                "epoch",
            ];
            if award {
                keys.push("award");
                assert_eq!(mine["award"], log["award"]);
            }
            let have: Vec<&str> = mine
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(have, keys);
            assert_eq!(mine["org"], log["org"]);
            assert_eq!(mine["epoch"], log["epoch"]);
            let row = last
                .iter()
                .find(|r| r["org"] == log["org"])
                .expect("the org is in the monthly ranking");
            for k in ["rank", "orgRank", "honorBadge", "logo_path", "pnts"] {
                assert_eq!(mine[k], row[k], "{k} of {}", log["org"]);
            }
        }
    }
}

#[test]
fn accept_rule_keepalive_and_history_replay() {
    let redis = Redis::start();
    let setup = ServerSetup {
        args: vec!["--sse-keepalive-secs".into(), "1".into()],
        ..Default::default()
    };
    let server = start_server(redis.port, &setup, "sse-replay");
    let base = server.base("http");
    let http = client();
    // JSON for anything that accepts JSON (wildcards too), a stream otherwise.
    for accept in [
        "application/json",
        "*/*",
        "application/json, text/javascript, */*; q=0.01",
    ] {
        let r = http
            .get(format!("{base}/_logs"))
            .header("Accept", accept)
            .send()
            .expect("get");
        assert_eq!(
            r.headers()["content-type"],
            "application/json",
            "Accept: {accept}"
        );
    }
    let first = SseClient::connect(&base, "/_logs", None);
    assert!(
        first.comment_within(Duration::from_secs(5)),
        "a keep-alive comment arrives on a quiet stream"
    );
    wait_subscribed(&redis);
    let msgs: Vec<(String, String)> = (0..30)
        .map(|i| {
            (
                "1".to_string(),
                format!(r#"{{"name": "Keepalive", "log": "[{i}]", "zmqName": "feed-x"}}"#),
            )
        })
        .collect();
    let refs: Vec<&(String, String)> = msgs.iter().collect();
    publish(&redis, &refs[..10]);
    let got = first.events(10, Duration::from_secs(10));
    let tenth = got[9].0.clone().expect("id");
    drop(first);
    // Published while no client is connected, then replayed on reconnection.
    publish(&redis, &refs[10..20]);
    std::thread::sleep(Duration::from_millis(300));
    let again = SseClient::connect(&base, "/_logs", Some(&tenth));
    let replayed = again.events(10, Duration::from_secs(10));
    let logs: Vec<String> = replayed
        .iter()
        .map(|(_, d)| serde_json::from_str::<Value>(d).expect("json")["log"][0].to_string())
        .collect();
    assert_eq!(logs, (10..20).map(|i| i.to_string()).collect::<Vec<_>>());
    publish(&redis, &refs[20..]);
    let live = again.events(10, Duration::from_secs(10));
    assert_eq!(
        serde_json::from_str::<Value>(&live[0].1).expect("json")["log"][0],
        20
    );
    // A client without Last-Event-ID gets only what comes next.
    let fresh = SseClient::connect(&base, "/_logs", None);
    std::thread::sleep(Duration::from_millis(300));
    publish(&redis, &refs[29..]);
    let next = fresh.events(1, Duration::from_secs(10));
    assert_eq!(
        serde_json::from_str::<Value>(&next[0].1).expect("json")["log"][0],
        29
    );
}

#[test]
fn a_client_that_stops_reading_is_dropped_without_slowing_others() {
    let redis = Redis::start();
    let setup = ServerSetup {
        args: vec!["--write-timeout-secs".into(), "2".into()],
        ..Default::default()
    };
    let server = start_server(redis.port, &setup, "sse-slow");
    let base = server.base("http");
    // A client that sends its request and never reads.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stalled
        .write_all(b"GET /_maps HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .expect("request");
    let fast = SseClient::connect(&base, "/_maps", None);
    wait_subscribed(&redis);
    // 30 MB of map events, far more than socket buffers hold, at a pace a reading client
    // follows.
    let big = format!(r#"{{"categ": "x", "value": "{}"}}"#, "v".repeat(20_000));
    let msgs: Vec<(String, String)> = (0..1500)
        .map(|_| ("PicToDisplay".to_string(), big.clone()))
        .collect();
    let started = Instant::now();
    for chunk in msgs.chunks(50) {
        let refs: Vec<&(String, String)> = chunk.iter().collect();
        publish(&redis, &refs);
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = fast.events(1500, Duration::from_secs(60));
    assert!(got.iter().all(|(_, d)| *d == big));
    assert!(started.elapsed() < Duration::from_secs(30));
    let http = client();
    let dropped = wait_until(Duration::from_secs(20), || {
        http.get(format!("{base}/status"))
            .send()
            .and_then(|r| r.text())
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map(|s| s["streams"]["slow_clients_dropped"].as_u64() >= Some(1))
            .unwrap_or(false)
    });
    assert!(
        dropped,
        "the stalled client was not disconnected:\n{}",
        server.process.log_text()
    );
    drop(stalled);
}

/// A live-log entry as the dispatcher caches it (`{"name", "log": <object>, "zmqName"}`) and
/// the publication of the same row.
fn row_entry(marker: &str) -> (String, String) {
    let content = serde_json::json!({
        "Attribute": {"timestamp": "1795175999", "category": "Network activity",
                      "type": "ip-dst", "value": "198.51.100.9", "comment": marker},
        "Event": {"id": "4242"}
    });
    let cached =
        serde_json::json!({"name": "Attribute", "log": content, "zmqName": "misp1"}).to_string();
    let published =
        serde_json::json!({"name": "Attribute", "log": content.to_string(), "zmqName": "misp1"})
            .to_string();
    (cached, published)
}

/// The pages' combined stream: one connection for every topic, opening with `hello` and a
/// snapshot of the live cache (what `/_logs` answers), then events named by topic; a page that
/// reconnects with the ids it saw resumes exactly; after a restart (another process, the ids
/// of the old one unknown) it gets a snapshot again, holding the rows cached while the server
/// was down, which the original's route with `Last-Event-ID` never replays.
#[test]
fn the_combined_stream_resumes_and_snapshots() {
    let redis = seed2_redis();
    let setup = ServerSetup {
        args: vec!["--sse-keepalive-secs".into(), "1".into()],
        ..Default::default()
    };
    let mut server = start_server(redis.port, &setup, "sse-mux");
    let base = server.base("http");
    let http = client();
    for bad in ["", "?topics=bogus", "?topics=live&live=abc"] {
        let r = http
            .get(format!("{base}/_mispdash/stream{bad}"))
            .send()
            .expect("get");
        assert_eq!(r.status(), 400, "{bad}: {}", r.text().unwrap_or_default());
    }
    let logs: Value = serde_json::from_str(
        &http
            .get(format!("{base}/_logs"))
            .header("Accept", "application/json")
            .send()
            .expect("logs")
            .text()
            .expect("body"),
    )
    .expect("json");
    let cached_rows: Vec<Value> = logs
        .as_array()
        .expect("rows")
        .iter()
        .rev()
        .cloned()
        .collect();
    assert!(cached_rows.len() > 50, "seed2 caches the live log");

    let first = SseClient::connect(
        &base,
        "/_mispdash/stream?topics=live,map,contributors,awards",
        None,
    );
    let (name, _, hello) = first.next_named(Duration::from_secs(10));
    assert_eq!(name, "hello");
    for t in ["live", "map", "contributors", "awards"] {
        assert_eq!(hello["topics"][t]["resumed"], false, "{t}: a new page");
    }
    assert_eq!(hello["keepalive"], 1.0);
    let boot = hello["boot"].as_u64().expect("boot");
    let (name, _, snap) = first.next_named(Duration::from_secs(10));
    assert_eq!(
        (name.as_str(), &snap["topic"]),
        ("snapshot", &Value::from("live"))
    );
    assert_eq!(
        snap["events"].as_array().expect("events"),
        &cached_rows,
        "the snapshot is the live cache, oldest first, formatted as /_logs formats it"
    );
    let (name, _, maps) = first.next_named(Duration::from_secs(10));
    assert_eq!(
        (name.as_str(), &maps["topic"]),
        ("snapshot", &Value::from("map"))
    );
    assert!(!maps["events"].as_array().expect("points").is_empty());
    // A ping on a quiet stream, as an event (a comment would not reach the page's script).
    let ping = wait_until(
        Duration::from_secs(5),
        || matches!(first.rx.recv_timeout(Duration::from_secs(2)), Ok(Item::Event { name: Some(ref n), .. }) if n == "ping"),
    );
    assert!(ping, "a ping within the keep-alive period");

    wait_subscribed(&redis);
    let (_, one) = row_entry("MUX-ONE");
    let (_, two) = row_entry("MUX-TWO");
    publish(&redis, &[&("1".to_string(), one)]);
    let (name, id, row) = first.next_named(Duration::from_secs(10));
    assert_eq!(name, "live");
    assert!(row["log"]["5"].as_str().expect("value").contains("MUX-ONE"));
    let seen = id.expect("id");
    assert!(seen.parse::<u64>().expect("numeric") >= boot);
    drop(first);
    publish(&redis, &[&("1".to_string(), two)]);
    std::thread::sleep(Duration::from_millis(300));
    let again = SseClient::connect(
        &base,
        &format!("/_mispdash/stream?topics=live&live={seen}"),
        None,
    );
    let (name, _, hello) = again.next_named(Duration::from_secs(10));
    assert_eq!(name, "hello");
    assert_eq!(hello["topics"]["live"]["resumed"], true);
    let (name, _, row) = again.next_named(Duration::from_secs(10));
    assert_eq!(name, "live", "the missed row, not a snapshot");
    assert!(row["log"]["5"].as_str().expect("value").contains("MUX-TWO"));
    drop(again);

    // The server goes; the dispatcher caches a row meanwhile; another process starts.
    server.process.kill9();
    let (cached, _) = row_entry("WHILE-DOWN");
    cache_row(&redis, &cached);
    server.restart(&setup, 2);
    let after = SseClient::connect(
        &base,
        &format!("/_mispdash/stream?topics=live&live={seen}"),
        None,
    );
    let (_, _, hello) = after.next_named(Duration::from_secs(10));
    assert_eq!(hello["topics"]["live"]["resumed"], false, "another process");
    assert!(hello["boot"].as_u64().expect("boot") > boot);
    let (name, _, snap) = after.next_named(Duration::from_secs(10));
    assert_eq!(name, "snapshot");
    let events = snap["events"].as_array().expect("events");
    let newest = events.last().expect("rows");
    assert!(newest["log"]["5"]
        .as_str()
        .expect("value")
        .contains("WHILE-DOWN"));
    // The original's route does not replay the cache to a client of the old process.
    let legacy = SseClient::connect(&base, "/_logs", Some(&seen));
    let deadline = Instant::now() + Duration::from_millis(2500);
    while let Ok(item) = legacy
        .rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        assert_eq!(item, Item::Comment, "nothing replayed on /_logs");
    }
}

/// Redis's count of subscribers of the live channel and of patterns (`None`: Redis did not
/// answer).
fn subscriptions(redis: &Redis) -> Option<(i64, i64)> {
    let mut c = redis.conn(0).ok()?;
    let (_, live): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("1")
        .query(&mut c)
        .ok()?;
    let patterns: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut c).ok()?;
    Some((live, patterns))
}

/// Puts `entry` on the live cache, as the dispatcher caches a row.
fn cache_row(redis: &Redis, entry: &str) {
    let mut c = redis.conn(2).expect("redis");
    redis::cmd("LPUSH")
        .arg("TEMP_CACHE_LIVE:Attribute")
        .arg(entry)
        .query::<()>(&mut c)
        .expect("lpush");
}

/// An idle server costs the message path nothing: it holds no Redis subscription until a
/// stream opens, and drops it once the last stream has been gone for the linger period. A
/// page that comes back after such a gap cannot resume across it (what was published
/// meanwhile never reached the server): it gets a snapshot, read from the live cache, with the
/// rows of the gap. A stream opened on an idle server misses nothing published once its
/// answer has begun.
#[test]
fn an_idle_server_subscribes_only_while_someone_listens() {
    let redis = Redis::start();
    let setup = ServerSetup {
        args: vec![
            "--stream-linger-secs".into(),
            "1".into(),
            "--sse-keepalive-secs".into(),
            "1".into(),
        ],
        ..Default::default()
    };
    let server = start_server(redis.port, &setup, "sse-idle");
    let base = server.base("http");
    let status = || -> Value {
        serde_json::from_str(
            &client()
                .get(format!("{base}/status"))
                .send()
                .expect("status")
                .text()
                .expect("body"),
        )
        .expect("json")
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        subscriptions(&redis),
        Some((0, 0)),
        "no stream, no subscription"
    );
    assert_eq!(status()["streams"]["subscribed"], false);

    let page = SseClient::connect(&base, "/_mispdash/stream?topics=live", None);
    let (name, _, _) = page.next_named(Duration::from_secs(10));
    assert_eq!(name, "hello");
    assert_eq!(
        subscriptions(&redis),
        Some((1, 3)),
        "subscribed before the stream began"
    );
    let (_, one) = row_entry("IDLE-ONE");
    publish(&redis, &[&("1".to_string(), one)]);
    let seen = loop {
        let (name, id, row) = page.next_named(Duration::from_secs(10));
        if name == "live" {
            assert!(row["log"]["5"]
                .as_str()
                .expect("value")
                .contains("IDLE-ONE"));
            break id.expect("id");
        }
    };
    assert_eq!(status()["streams"]["clients"], 1);
    drop(page);
    assert!(
        wait_until(Duration::from_secs(10), || subscriptions(&redis)
            == Some((0, 0))),
        "the subscription is dropped after the linger period"
    );
    assert_eq!(status()["streams"]["clients"], 0);

    // Meanwhile the dispatcher publishes to no one and caches the row.
    let (cached, published) = row_entry("WHILE-IDLE");
    publish(&redis, &[&("1".to_string(), published)]);
    cache_row(&redis, &cached);
    let back = SseClient::connect(
        &base,
        &format!("/_mispdash/stream?topics=live&live={seen}"),
        None,
    );
    let (_, _, hello) = back.next_named(Duration::from_secs(10));
    assert_eq!(
        hello["topics"]["live"]["resumed"], false,
        "no resuming across a gap the server did not see"
    );
    let (name, _, snap) = back.next_named(Duration::from_secs(10));
    assert_eq!(name, "snapshot");
    let newest = snap["events"]
        .as_array()
        .and_then(|e| e.last())
        .expect("the cached rows");
    assert!(newest["log"]["5"]
        .as_str()
        .expect("value")
        .contains("WHILE-IDLE"));
    drop(back);

    // The original's route on an idle server: once its answer has begun, nothing is missed.
    assert!(wait_until(Duration::from_secs(10), || subscriptions(
        &redis
    ) == Some((0, 0))));
    let legacy = SseClient::connect(&base, "/_logs", None);
    let (_, right_after) = row_entry("RIGHT-AFTER");
    publish(&redis, &[&("1".to_string(), right_after.clone())]);
    let got = legacy.events(1, Duration::from_secs(10));
    assert!(
        got[0].1.contains("RIGHT-AFTER"),
        "the row published right after the answer began: {}",
        got[0].1
    );
}

/// `/_logs` and `/_maps` as JSON, without the answer cache, follow every change of the live
/// caches, whoever makes it: the server formats the cache once per change (it notices a change
/// by the cache's length and ends), and filters apply per request over that formatting.
#[test]
fn the_json_history_follows_every_change_of_the_live_caches() {
    let redis = seed2_redis();
    let setup = ServerSetup {
        args: vec!["--http-cache-ms".into(), "0".into()],
        ..Default::default()
    };
    let server = start_server(redis.port, &setup, "live-json");
    let base = server.base("http");
    let http = client();
    let json = |path: &str, cookie: Option<&str>| -> Value {
        let mut req = http
            .get(format!("{base}{path}"))
            .header("Accept", "application/json");
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        let r = req.send().expect("get");
        assert_eq!(r.status(), 200, "{path}");
        serde_json::from_str(&r.text().expect("body")).expect("json")
    };
    let oracle_logs = recorded("logs");
    let first = json("/_logs", None);
    assert_eq!(first, oracle_logs, "the original's answer on its keyspace");
    assert_eq!(json("/_logs", None), first, "the same, formatted earlier");
    let len = first.as_array().expect("rows").len();

    // A row pushed and the oldest trimmed, as the dispatcher does: same length, both ends new.
    let (entry, _) = row_entry("pushed-1");
    cache_row(&redis, &entry);
    let mut c = redis.conn(2).expect("redis");
    redis::cmd("LTRIM")
        .arg("TEMP_CACHE_LIVE:Attribute")
        .arg(0)
        .arg(len as i64 - 1)
        .query::<()>(&mut c)
        .expect("ltrim");
    let second = json("/_logs", None);
    let rows = second.as_array().expect("rows");
    assert_eq!(rows.len(), len);
    assert!(rows[0].to_string().contains("pushed-1"), "{}", rows[0]);
    assert_eq!(rows[1..], first.as_array().expect("rows")[..len - 1]);

    // The same row again (MISP publishing it twice): the head is unchanged, the tail is not.
    cache_row(&redis, &entry);
    redis::cmd("LTRIM")
        .arg("TEMP_CACHE_LIVE:Attribute")
        .arg(0)
        .arg(len as i64 - 1)
        .query::<()>(&mut c)
        .expect("ltrim");
    let third = json("/_logs", None);
    assert_eq!(third.as_array().expect("rows")[1], rows[0]);
    assert_eq!(third.as_array().expect("rows")[2..], rows[1..len - 1]);

    // Filters, per request over the same formatting: only the rows with that comment.
    let (other, _) = row_entry("pushed-2");
    cache_row(&redis, &other);
    let cookie = "filters=%7B%22Attribute.comment%22%3A%22pushed-1%22%7D";
    let filtered = json("/_logs", Some(cookie));
    let kept: Vec<&Value> = filtered.as_array().expect("rows").iter().collect();
    assert_eq!(kept.len(), 2, "{filtered}");
    assert!(kept.iter().all(|r| r.to_string().contains("pushed-1")));
    let unfiltered = json("/_logs", None);
    assert_eq!(unfiltered.as_array().expect("rows").len(), len + 1);
    assert!(unfiltered[0].to_string().contains("pushed-2"));

    // Cleared by someone else (an admin, the original's update): nothing left to give.
    let maps_before = json("/_maps", None);
    assert!(!maps_before.as_array().expect("points").is_empty());
    redis::cmd("DEL")
        .arg("TEMP_CACHE_LIVE:Attribute")
        .arg("TEMP_CACHE_LIVE:Map")
        .query::<()>(&mut c)
        .expect("del");
    assert_eq!(json("/_logs", None), Value::Array(vec![]));
    assert_eq!(json("/_maps", None), Value::Array(vec![]));
    let point = r#"{"coord": {"lat": 50.85, "lon": 4.35}, "categ": "Network activity", "value": "198.51.100.9"}"#;
    redis::cmd("LPUSH")
        .arg("TEMP_CACHE_LIVE:Map")
        .arg(point)
        .query::<()>(&mut c)
        .expect("lpush");
    let maps = json("/_maps", None);
    assert_eq!(
        maps,
        Value::Array(vec![serde_json::from_str(point).expect("json")])
    );
}
