//! Helpers of the rewind tests (`http_rewind`, `ui_rewind`): attribute messages of an event
//! for everyone, the dispatcher run at a pinned instant over them, and the stream read back.
#![allow(dead_code)]

use crate::acl_messages::{envelope, push};
use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub const STREAM: &str = "MISPDASH_REWIND";
pub const BYTES: &str = "MISPDASH_REWIND:bytes";

/// The stream's entries as Redis gives them, oldest first: (id, fields and values).
pub fn raw_entries(c: &mut redis::Connection) -> Vec<(String, Vec<String>)> {
    redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query(c)
        .expect("xrange")
}

/// The stream's rows and points, oldest first: (id of their entry, field, value). An entry
/// holds those of one millisecond.
pub fn entries(c: &mut redis::Connection) -> Vec<(String, String, String)> {
    raw_entries(c)
        .into_iter()
        .flat_map(|(id, f)| {
            f.chunks_exact(2)
                .map(|p| (id.clone(), p[0].clone(), p[1].clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An attribute message of an event for everyone, with a phone number (so it makes a map
/// point too).
pub fn frame(id: u32, value: &str) -> String {
    envelope(
        "misp_json_attribute",
        &json!({"action": "add",
            "Attribute": {"id": id.to_string(), "event_id": "200", "object_id": "0",
                "category": "Other", "type": "phone-number", "value": value,
                "comment": format!("comment {id}"), "timestamp": "1795175000", "to_ids": false,
                "distribution": "5", "sharing_group_id": "0",
                "Tag": [{"name": "tlp:green", "colour": "#33ff00"}]},
            "Event": {"id": "200", "org_id": "2", "orgc_id": "2", "info": "event 200",
                "distribution": "3", "sharing_group_id": "0", "published": true,
                "Orgc": {"name": "Org 2"}}}),
    )
}

/// The same message as `mispdash backfill` queues it: read from MISP's API afterwards.
pub fn backfilled(id: u32, value: &str, at: u64) -> String {
    let mut v: Value = serde_json::from_str(&frame(id, value)).expect("json");
    v["mispdash_backfilled_at"] = json!(at);
    v.to_string()
}

/// The dispatcher alone, its clock pinned at `now`.
pub fn dispatcher_at(cfg: &Path, log: &Path, now: u64) -> Mispdash {
    Mispdash::start_in_zone(
        cfg,
        &[
            "run",
            "--no-subscribers",
            "--no-server",
            "--no-managed-redis",
            "--no-demo",
        ],
        log,
        "UTC",
        &now.to_string(),
    )
}

/// Runs the dispatcher at `now` over `frames` until the stream holds `want` rows and points, then stops
/// it (SIGTERM: it gives up its lease for the next run).
pub fn dispatch_at(redis: &Redis, dir: &Path, now: u64, frames: &[String], want: usize) {
    let cfg = dir.join("config.cfg");
    let mut d = dispatcher_at(&cfg, &dir.join(format!("dispatcher-{now}.log")), now);
    push(redis, frames);
    let mut c = redis.conn(2).expect("redis");
    let mut list = redis.conn(3).expect("redis");
    let done = wait_until(Duration::from_secs(30), || {
        let len = entries(&mut c).len();
        let left: i64 = redis::cmd("LLEN")
            .arg("bufferList")
            .query(&mut list)
            .unwrap_or(1);
        len == want && left == 0
    });
    assert!(
        done,
        "the stream holds {:?}, not {want} entries:\n{}",
        entries(&mut c),
        d.log_text()
    );
    assert!(d.terminate().success(), "{}", d.log_text());
}

/// seed2 in two halves, split right after a `misp_json_self` message near the middle, whose
/// keep-alive marks the same point in what the original published for seed2
/// (`seed2.pubsub.jsonl.gz`): the buffer entries of each half, and the contents of the live
/// rows the original published for each (oldest first).
pub struct Seed2Halves {
    pub first: Vec<String>,
    pub second: Vec<String>,
    pub first_rows: Vec<Value>,
    pub second_rows: Vec<Value>,
}

pub fn seed2_halves() -> Seed2Halves {
    let text = std::fs::read_to_string(shared().join("corpus/seed2.jsonl")).expect("seed2");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("seed2 line"))
        .collect();
    let split = (lines.len() / 2..lines.len())
        .find(|&i| lines[i]["topic"] == "misp_json_self")
        .expect("a keep-alive in seed2's second half");
    let uptime = lines[split]["payload"]["uptime"].to_string();
    let entries: Vec<String> = lines
        .iter()
        .map(|l| {
            let topic = l["topic"].as_str().expect("topic");
            let frame = format!("{topic} {}", l["payload"]);
            mispdash_core::feed::envelope("misp1", &frame)
        })
        .collect();
    let (first, second) = entries.split_at(split + 1);
    let published = read_pubsub(&shared().join("corpus/seed2.pubsub.jsonl.gz"));
    let mut first_rows = Vec::new();
    let mut second_rows = Vec::new();
    let mut after = false;
    for p in published.iter().filter(|p| p["channel"] == "1") {
        let data: Value = serde_json::from_str(p["data"].as_str().expect("data")).expect("json");
        match data["name"].as_str() {
            Some("Keepalive") if data["log"] == format!("[{uptime}]") => after = true,
            Some("Keepalive") => {}
            _ => {
                let log: Value =
                    serde_json::from_str(data["log"].as_str().expect("log")).expect("log json");
                if after {
                    second_rows.push(log);
                } else {
                    first_rows.push(log);
                }
            }
        }
    }
    assert!(after, "seed2's keep-alive [{uptime}] was published");
    Seed2Halves {
        first: first.to_vec(),
        second: second.to_vec(),
        first_rows,
        second_rows,
    }
}

/// Runs the dispatcher at `now` over `frames` until the buffer is drained, then stops it.
pub fn drain_at(redis: &Redis, dir: &Path, now: u64, frames: &[String]) {
    let cfg = dir.join("config.cfg");
    let mut d = dispatcher_at(&cfg, &dir.join(format!("dispatcher-{now}.log")), now);
    push(redis, frames);
    let mut list = redis.conn(3).expect("redis");
    let mut llen = |key: &str| -> i64 { redis::cmd("LLEN").arg(key).query(&mut list).unwrap_or(1) };
    let done = wait_until(Duration::from_secs(60), || {
        llen("bufferList") == 0 && llen("bufferList:processing") == 0
    });
    assert!(done, "the buffer was not drained:\n{}", d.log_text());
    assert!(d.terminate().success(), "{}", d.log_text());
}

/// The rows the live log shows for these contents, newest first, at most `n`: what a window
/// that ends after them answers.
pub fn shown_rows(contents: &[Value], n: usize) -> Vec<Value> {
    let order: Value = serde_json::from_str(mispdash_core::config::DEFAULT_FIELDNAME_ORDER)
        .expect("default order");
    let fmt = mispdash_core::web::live::LogFormat::new(&order, "||");
    contents.iter().rev().take(n).map(|c| fmt.row(c)).collect()
}
