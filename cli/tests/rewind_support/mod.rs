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

/// The stream's entries, oldest first: (id, field, value).
pub fn entries(c: &mut redis::Connection) -> Vec<(String, String, String)> {
    let page: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query(c)
        .expect("xrange");
    page.into_iter()
        .map(|(id, f)| (id, f[0].clone(), f[1].clone()))
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

/// Runs the dispatcher at `now` over `frames` until the stream holds `want` entries, then stops
/// it (SIGTERM: it gives up its lease for the next run).
pub fn dispatch_at(redis: &Redis, dir: &Path, now: u64, frames: &[String], want: usize) {
    let cfg = dir.join("config.cfg");
    let mut d = dispatcher_at(&cfg, &dir.join(format!("dispatcher-{now}.log")), now);
    push(redis, frames);
    let mut c = redis.conn(2).expect("redis");
    let mut list = redis.conn(3).expect("redis");
    let done = wait_until(Duration::from_secs(30), || {
        let len: i64 = redis::cmd("XLEN").arg(STREAM).query(&mut c).unwrap_or(0);
        let left: i64 = redis::cmd("LLEN")
            .arg("bufferList")
            .query(&mut list)
            .unwrap_or(1);
        len as usize == want && left == 0
    });
    assert!(
        done,
        "the stream holds {:?}, not {want} entries:\n{}",
        entries(&mut c),
        d.log_text()
    );
    assert!(d.terminate().success(), "{}", d.log_text());
}
