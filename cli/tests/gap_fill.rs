//! No gap after an outage: MISP's publisher stops while MISP goes on publishing events (MISP
//! itself cannot run here: the shared ZeroMQ replayer stands in for its publisher and
//! `misp_rest` for its REST API), then comes back. The dashboard reconnects, reads the window
//! it was away back through the REST API, and ends with the keyspace of a dashboard that saw
//! every message.

mod acl_messages;
mod common;
mod http_support;
mod misp_rest;

use common::*;
use misp_rest::{now, Misp, KEY};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// A published event as MISP's `misp_json` carries it and its REST API returns it.
fn event(i: u64) -> Value {
    let at = now().to_string();
    json!({"Event": {"id": i.to_string(), "uuid": format!("gap-{i:04}"),
        "info": format!("gap event {i}"), "timestamp": at, "publish_timestamp": at,
        "published": true, "distribution": "3", "sharing_group_id": "0", "org_id": "1",
        "orgc_id": "1", "Orgc": {"id": "1", "name": format!("ORG-{}", i % 3)},
        "Tag": [{"id": "1", "name": "tlp:green", "colour": "#33ff00"}],
        "Attribute": [{"id": (i * 10).to_string(), "event_id": i.to_string(), "object_id": "0",
            "category": "Payload delivery", "type": "md5", "value": format!("{i:032x}"),
            "timestamp": at, "to_ids": true, "distribution": "5", "sharing_group_id": "0",
            "comment": "", "uuid": format!("gap-a-{i}")}],
        "Object": []}})
}

fn corpus(dir: &Path, name: &str, events: &[Value]) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.jsonl"));
    let lines: Vec<String> = events
        .iter()
        .map(|e| json!({"topic": "misp_json", "payload": e}).to_string())
        .collect();
    std::fs::write(&p, lines.join("\n") + "\n").expect("write corpus");
    p
}

fn envelope(e: &Value) -> String {
    json!({"zmq_name": "misp1", "content": format!("misp_json {e}")}).to_string()
}

fn drained(redis: &Redis) -> bool {
    let mut c = redis.conn(3).expect("redis");
    let (a, b): (usize, usize) = redis::pipe()
        .cmd("LLEN")
        .arg("bufferList")
        .cmd("LLEN")
        .arg("bufferList:processing")
        .query(&mut c)
        .expect("llen");
    a == 0 && b == 0
}

#[test]
fn a_feed_that_was_away_reads_what_it_missed_and_counts_nothing_twice() {
    let dir = tmpdir("gap-fill");
    let (a, b, c): (Vec<Value>, Vec<Value>, Vec<Value>) = (
        (0..20).map(event).collect(),
        (20..45).map(event).collect(),
        (45..50).map(event).collect(),
    );
    // MISP holds every event; its REST API answers for all of them.
    let all: Vec<Value> = a.iter().chain(&b).chain(&c).cloned().collect();
    let (misp_port, _misp) = misp_rest::start(Misp {
        events: Mutex::new(all),
        ..Misp::default()
    });
    let redis = Redis::start();
    let zport = free_port();
    let instances = format!(
        "[{{\"name\": \"misp1\", \"url\": \"http://127.0.0.1:{misp_port}\", \"zmq\": \"tcp://127.0.0.1:{zport}\", \"api_key\": \"{KEY}\"}}]"
    );
    let cfg = write_config(&dir, redis.port, &instances, &oracle_mmdb(), None);
    let mut dash = Mispdash::start(
        &cfg,
        &["run", "--no-server", "--no-managed-redis", "--no-demo"],
        &dir.join("run.log"),
    );
    let bind = format!("tcp://127.0.0.1:{zport}");
    // Events A arrive live; then the publisher goes away while MISP publishes B; it comes
    // back and sends C.
    publish_corpus(&corpus(&dir, "a", &a), &bind, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || dash
            .log_text()
            .contains("disconnected from")),
        "the subscriber did not notice the publisher left: {}",
        dash.log_text()
    );
    publish_corpus(&corpus(&dir, "c", &c), &bind, &[]);
    // The gap is filled: /status's record says so.
    let gap = || -> Option<Value> {
        let mut l = redis.conn(3).ok()?;
        let vals: Vec<String> = redis::cmd("HVALS")
            .arg("MISPDASH_GAPS:misp1")
            .query(&mut l)
            .ok()?;
        vals.first().and_then(|v| serde_json::from_str(v).ok())
    };
    assert!(
        wait_until(Duration::from_secs(90), || gap()
            .is_some_and(|g| g["state"] == "filled")),
        "the gap was not filled: {:?}\n{}",
        gap(),
        dash.log_text()
    );
    let g = gap().expect("gap");
    assert_eq!(g["events"], json!(b.len()), "{g}");
    assert!(wait_until(Duration::from_secs(60), || drained(&redis)));
    dash.terminate();
    let got = dump_without_own_keys(redis.port, &dir, "after-gap");

    // A dashboard that received every message, in the order this one applied them.
    let reference = Redis::start();
    let ref_dir = tmpdir("gap-fill-reference");
    let ref_cfg = write_config(&ref_dir, reference.port, "[]", &oracle_mmdb(), None);
    let entries: Vec<String> = a.iter().chain(&c).chain(&b).map(envelope).collect();
    acl_messages::push(&reference, &entries);
    let mut d = acl_messages::start_dispatcher(&ref_cfg, &ref_dir.join("dispatch.log"));
    assert!(wait_until(Duration::from_secs(60), || drained(&reference)));
    d.terminate();
    let want = dump_without_own_keys(reference.port, &ref_dir, "every-message");
    let (same, diff) = compare("redis", &want, &got);
    assert!(
        same,
        "the dashboard after the gap differs from one that saw every message:\n{diff}"
    );

    // And /status says the gap was filled.
    let server = http_support::start_server(redis.port, &Default::default(), "gap-status");
    let status: Value = http_support::client()
        .get(format!("{}/status", server.base("http")))
        .header("Accept", "application/json")
        .send()
        .expect("status")
        .text()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .expect("json");
    let feed = status["feeds"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "misp1"))
        .cloned()
        .expect("feed misp1 in /status");
    assert_eq!(feed["gaps_open"], json!(0), "{feed}");
    assert_eq!(feed["gaps"][0]["state"], json!("filled"), "{feed}");
}
