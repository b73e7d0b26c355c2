//! Access control that follows MISP's (`[ACL] enabled`, `docs/acl.md`): users of different
//! organisations, signed in through the **stand-in for MISP** of `misp_standin` (MISP cannot
//! run here), see on the live log and the live map exactly what MISP would show them: in their
//! JSON histories, on the original's stream routes and on the pages' combined stream. The
//! messages go through the real dispatcher from the Redis buffer, as a subscriber would push
//! them; each attribute is a phone number, so it makes a map point too.

mod common;
mod http_support;
mod misp_standin;

use common::*;
use http_support::*;
use misp_standin::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One live row's distinctive value, and the facts MISP's message carries.
struct Row {
    value: &'static str,
    owner: u64,
    event_distribution: u8,
    event_group: u64,
    attribute_distribution: u8,
}

const ROWS: [Row; 5] = [
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
const OBJECT_VALUE: &str = "+32 2 555 01 06";
/// An object's attribute of event 110, which an earlier `misp_json_event` described (owner
/// organisation 1, organisation only): alice.
const DESCRIBED_OBJECT_VALUE: &str = "+32 2 555 01 07";
/// The same after the dispatcher and the server restarted (what was said is in Redis).
const AFTER_RESTART_VALUE: &str = "+32 2 555 01 08";

fn object_frame(event: u64, object: u64, value: &str) -> String {
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

fn envelope(topic: &str, payload: &Value) -> String {
    json!({"zmq_name": "misp1", "content": format!("{topic} {payload}")}).to_string()
}

fn frames() -> Vec<String> {
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
fn values_in(text: &str) -> BTreeSet<String> {
    (1..=8)
        .map(|i| format!("+32 2 555 01 0{i}"))
        .filter(|v| text.contains(v.as_str()))
        .collect()
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn login(c: &reqwest::blocking::Client, base: &str, user: &str, password: &str) -> String {
    let r = c.get(format!("{base}/login")).send().expect("login page");
    let csrf = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("csrf="))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .expect("csrf cookie");
    let body = r.text().expect("body");
    let at = body.find("name=\"csrf_token\" value=\"").expect("token") + 25;
    let token = &body[at..at + body[at..].find('"').expect("end")];
    let form = format!(
        "csrf_token={token}&username={}&password={}",
        user.replace('@', "%40"),
        password.replace(' ', "+")
    );
    let r = c
        .post(format!("{base}/login"))
        .header("Cookie", &csrf)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .expect("post login");
    assert_eq!(r.status(), 303, "login of {user:?}");
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .expect("session cookie")
}

/// Reads a stream's bytes in the background for `for_`.
fn collect(
    base: &str,
    path: &str,
    cookie: &str,
    for_: Duration,
) -> (std::thread::JoinHandle<()>, Arc<Mutex<String>>) {
    let got = Arc::new(Mutex::new(String::new()));
    let sink = got.clone();
    let url = format!("{base}{path}");
    let cookie = cookie.to_string();
    let h = std::thread::spawn(move || {
        let c = reqwest::blocking::Client::builder()
            .timeout(for_)
            .build()
            .expect("client");
        let Ok(mut r) = c
            .get(url)
            .header("Cookie", cookie)
            .header("Accept", "text/event-stream")
            .send()
        else {
            return;
        };
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (h, got)
}

#[test]
fn each_user_sees_on_the_live_log_and_map_what_misp_would_show_them() {
    let misp = start_misp();
    let redis = Redis::start();
    let setup = ServerSetup {
        auth: format!(
            "auth_enabled = True\nmisp_fqdn = http://127.0.0.1:{misp}\nssl_verify = True\nsession_secret = {SECRET}\nsession_cookie_secure = False\n"
        ),
        mispdash: format!("misp_api_key = {ADMIN_KEY}\n\n[ACL]\nenabled = True\n"),
        ..Default::default()
    };
    let server = start_server(redis.port, &setup, "acl-live");
    assert!(server.process.log_text().contains("access control on"));
    let cfg = server.dir.join("config.cfg");
    let dispatcher = Mispdash::start_logging(
        &cfg,
        &[
            "run",
            "--no-subscribers",
            "--no-server",
            "--no-managed-redis",
            "--no-demo",
        ],
        &server.dir.join("dispatcher.log"),
        true,
        "info",
    );
    let base = server.base("http");
    let c = client();
    let alice = login(&c, &base, "alice@example.org", "correct horse");
    let carol = login(&c, &base, "", API_KEY);
    let status: Value = serde_json::from_str(
        &c.get(format!("{base}/status"))
            .header("Cookie", &alice)
            .header("Accept", "application/json")
            .send()
            .expect("status")
            .text()
            .expect("text"),
    )
    .expect("json");
    let ac = &status["access_control"];
    assert_eq!(ac["enabled"], true, "{status}");
    assert!(
        ac["follows"].as_str().is_some_and(|f| f.contains("MISP")),
        "{ac}"
    );
    assert_eq!(
        ac["you"],
        json!({"org_id": 1, "site_admin": false, "sharing_groups": 2})
    );
    let alice_sees = set(&[
        "+32 2 555 01 01",
        "+32 2 555 01 03",
        "+32 2 555 01 04",
        DESCRIBED_OBJECT_VALUE,
    ]);
    let carol_sees = set(&["+32 2 555 01 02", "+32 2 555 01 03"]);

    // The original's stream routes, open before the messages come.
    let streams: Vec<_> = ["/_logs", "/_maps"]
        .iter()
        .flat_map(|route| [&alice, &carol].map(|who| (route, who)))
        .map(|(route, who)| collect(&base, route, who, Duration::from_secs(12)))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let mut list = redis.conn(3).expect("redis");
    for f in frames() {
        redis::cmd("LPUSH")
            .arg("bufferList")
            .arg(f)
            .query::<()>(&mut list)
            .expect("lpush");
    }
    let mut data = redis.conn(2).expect("redis");
    assert!(
        wait_until(Duration::from_secs(20), || {
            redis::cmd("LLEN")
                .arg("TEMP_CACHE_LIVE:Attribute")
                .query::<i64>(&mut data)
                .unwrap_or(0)
                >= 6
                && redis::cmd("LLEN")
                    .arg("TEMP_CACHE_LIVE:Map")
                    .query::<i64>(&mut data)
                    .unwrap_or(0)
                    >= 7
        }),
        "{}",
        dispatcher.log_text()
    );

    // The JSON histories.
    for route in ["/_logs", "/_maps"] {
        for (who, want) in [(&alice, &alice_sees), (&carol, &carol_sees)] {
            let text = c
                .get(format!("{base}{route}"))
                .header("Cookie", who)
                .header("Accept", "application/json")
                .send()
                .expect("history")
                .text()
                .expect("text");
            assert_eq!(&values_in(&text), want, "{route}: {text}");
        }
    }
    // The pages' combined stream, opened now: its snapshots, of each topic alone.
    for topic in ["live", "map"] {
        for (who, want) in [(&alice, &alice_sees), (&carol, &carol_sees)] {
            let (h, got) = collect(
                &base,
                &format!("/_mispdash/stream?topics={topic}"),
                who,
                Duration::from_secs(3),
            );
            let _ = h.join();
            let text = got.lock().expect("lock").clone();
            assert!(text.contains("event: snapshot"), "{text}");
            assert_eq!(&values_in(&text), want, "{topic}: {text}");
        }
    }
    // The rows and points as they came.
    let wants = [&alice_sees, &carol_sees, &alice_sees, &carol_sees];
    for (i, ((h, got), want)) in streams.into_iter().zip(wants).enumerate() {
        let _ = h.join();
        let text = got.lock().expect("lock").clone();
        assert_eq!(&values_in(&text), want, "stream {i}: {text}");
    }
    drop(dispatcher);

    // Both restarted: what the messages said of event 110 is read back from Redis, by the
    // dispatcher for a new object of it, by the server for the rows in the caches.
    let mut server = server;
    server.restart(&setup, 2);
    let dispatcher = Mispdash::start_logging(
        &cfg,
        &[
            "run",
            "--no-subscribers",
            "--no-server",
            "--no-managed-redis",
            "--no-demo",
        ],
        &server.dir.join("dispatcher-2.log"),
        true,
        "info",
    );
    assert!(wait_until(Duration::from_secs(20), || dispatcher
        .log_text()
        .contains("event(s) described by earlier messages")));
    redis::cmd("LPUSH")
        .arg("bufferList")
        .arg(object_frame(110, 11, AFTER_RESTART_VALUE))
        .query::<()>(&mut list)
        .expect("lpush");
    assert!(wait_until(Duration::from_secs(20), || {
        redis::cmd("LLEN")
            .arg("TEMP_CACHE_LIVE:Map")
            .query::<i64>(&mut data)
            .unwrap_or(0)
            >= 8
    }));
    let base = server.base("http");
    let mut alice_now = alice_sees.clone();
    alice_now.insert(AFTER_RESTART_VALUE.into());
    for route in ["/_logs", "/_maps"] {
        for (who, want) in [(&alice, &alice_now), (&carol, &carol_sees)] {
            let text = c
                .get(format!("{base}{route}"))
                .header("Cookie", who)
                .header("Accept", "application/json")
                .send()
                .expect("history")
                .text()
                .expect("text");
            assert_eq!(&values_in(&text), want, "after restarts, {route}: {text}");
        }
    }
    drop(dispatcher);
}
