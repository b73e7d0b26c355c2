//! The messages of the access-control tests (`http_acl`, `ui_browser`): attributes of events
//! of several organisations, distributions and sharing groups, as MISP's ZeroMQ publisher
//! sends them, each a phone number (so each also makes a live map point), and what each test
//! user may see of them. The users are those of the MISP stand-in (`misp_standin`): alice in
//! organisation 1 (sharing groups 7 and 8), carol in organisation 3 (none).
#![allow(dead_code)]

use crate::common::{Mispdash, Redis};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// The dispatcher alone (`mispdash run` without subscribers, server, managed Redis or demo
/// feed) on configuration `cfg`, logging to `log`.
pub fn start_dispatcher(cfg: &Path, log: &Path) -> Mispdash {
    Mispdash::start_logging(
        cfg,
        &[
            "run",
            "--no-subscribers",
            "--no-server",
            "--no-managed-redis",
            "--no-demo",
        ],
        log,
        true,
        "info",
    )
}

/// Pushes buffer entries as a subscriber does (onto `bufferList`, db 3).
pub fn push(redis: &Redis, entries: &[String]) {
    let mut list = redis.conn(3).expect("redis");
    for e in entries {
        redis::cmd("LPUSH")
            .arg("bufferList")
            .arg(e)
            .query::<()>(&mut list)
            .expect("lpush");
    }
}

/// One live row's distinctive value, and the facts MISP's message carries.
pub struct Row {
    pub value: &'static str,
    pub owner: u64,
    pub event_distribution: u8,
    pub event_group: u64,
    pub attribute_distribution: u8,
}

pub const ROWS: [Row; 5] = [
    // Organisation 1's own, organisation only: alice.
    Row {
        value: "+32 2 555 01 01",
        owner: 1,
        event_distribution: 0,
        event_group: 0,
        attribute_distribution: 5,
    },
    // Organisation 3's own, organisation only: carol.
    Row {
        value: "+32 2 555 01 02",
        owner: 3,
        event_distribution: 0,
        event_group: 0,
        attribute_distribution: 5,
    },
    // Everyone's.
    Row {
        value: "+32 2 555 01 03",
        owner: 2,
        event_distribution: 3,
        event_group: 0,
        attribute_distribution: 5,
    },
    // Sharing group 8 (organisation 1 only): alice.
    Row {
        value: "+32 2 555 01 04",
        owner: 2,
        event_distribution: 4,
        event_group: 8,
        attribute_distribution: 5,
    },
    // An event for all, its attribute for its organisation only: neither.
    Row {
        value: "+32 2 555 01 05",
        owner: 2,
        event_distribution: 3,
        event_group: 0,
        attribute_distribution: 0,
    },
];

/// An object's attribute from `misp_json_object`, which carries no event: its owner unknown,
/// only site admins see it.
pub const OBJECT_VALUE: &str = "+32 2 555 01 06";
/// An object's attribute of event 110, which an earlier `misp_json_event` described (owner
/// organisation 1, organisation only): alice.
pub const DESCRIBED_OBJECT_VALUE: &str = "+32 2 555 01 07";
/// The same after the dispatcher and the server restarted (what was said is in Redis).
pub const AFTER_RESTART_VALUE: &str = "+32 2 555 01 08";

pub fn object_frame(event: u64, object: u64, value: &str) -> String {
    envelope(
        "misp_json_object",
        &json!({"action": "add", "Object": {"id": object.to_string(), "event_id": event.to_string(),
            "name": "phone", "meta-category": "misc", "distribution": "5", "sharing_group_id": "0",
            "Attribute": [{"id": (object * 10).to_string(), "event_id": event.to_string(),
                "object_id": object.to_string(), "category": "Other", "type": "phone-number",
                "value": value, "comment": "", "timestamp": "1795175000", "distribution": "5",
                "sharing_group_id": "0"}]}}),
    )
}

pub fn envelope(topic: &str, payload: &Value) -> String {
    json!({"zmq_name": "misp1", "content": format!("{topic} {payload}")}).to_string()
}

pub fn frames() -> Vec<String> {
    let mut out: Vec<String> = ROWS
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = 100 + i;
            envelope(
                "misp_json_attribute",
                &json!({"action": "add",
                    "Attribute": {"id": (1000 + i).to_string(), "event_id": id.to_string(),
                        "object_id": "0", "category": "Other", "type": "phone-number", "value": r.value,
                        "comment": "", "timestamp": "1795175000", "to_ids": false,
                        "distribution": r.attribute_distribution.to_string(),
                        "sharing_group_id": "0", "Tag": []},
                    "Event": {"id": id.to_string(), "org_id": r.owner.to_string(),
                        "orgc_id": r.owner.to_string(), "info": format!("event {id}"),
                        "distribution": r.event_distribution.to_string(),
                        "sharing_group_id": r.event_group.to_string(), "published": true,
                        "Orgc": {"name": format!("Org {}", r.owner)}}}),
            )
        })
        .collect();
    out.push(object_frame(109, 9, OBJECT_VALUE));
    out.push(envelope(
        "misp_json_event",
        &json!({"action": "add", "Event": {"id": "110", "org_id": "1", "orgc_id": "1",
            "info": "event 110", "timestamp": "1795175000", "distribution": "0",
            "sharing_group_id": "0", "published": false},
            "Orgc": {"id": "1", "name": "Org 1"}}),
    ));
    out.push(object_frame(110, 10, DESCRIBED_OBJECT_VALUE));
    out
}

/// The distinctive values in a text (an answer, a stream's bytes).
pub fn values_in(text: &str) -> BTreeSet<String> {
    (1..=8)
        .map(|i| format!("+32 2 555 01 0{i}"))
        .filter(|v| text.contains(v.as_str()))
        .collect()
}

pub fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// What alice may see of [`frames`]: her organisation's, everyone's, sharing group 8's, and
/// the object of her organisation's event.
pub fn alice_sees() -> BTreeSet<String> {
    set(&[
        ROWS[0].value,
        ROWS[2].value,
        ROWS[3].value,
        DESCRIBED_OBJECT_VALUE,
    ])
}

/// What carol may see of [`frames`]: her organisation's and everyone's.
pub fn carol_sees() -> BTreeSet<String> {
    set(&[ROWS[1].value, ROWS[2].value])
}
