//! Access control that follows MISP's (`[ACL] enabled`, `docs/acl.md`): users of different
//! organisations, signed in through the **stand-in for MISP** of `misp_standin` (MISP cannot
//! run here), see on the live log and the live map exactly what MISP would show them: in their
//! JSON histories, on the original's stream routes and on the pages' combined stream. The
//! messages go through the real dispatcher from the Redis buffer, as a subscriber would push
//! them; each attribute is a phone number, so it makes a map point too.

mod acl_messages;
mod common;
mod http_support;
mod misp_standin;

use acl_messages::*;
use common::*;
use http_support::*;
use misp_standin::*;
use serde_json::{json, Value};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let dispatcher = start_dispatcher(&cfg, &server.dir.join("dispatcher.log"));
    let base = server.base("http");
    let c = client();
    let alice = login_session(&c, &base, "alice@example.org", "correct horse");
    let carol = login_session(&c, &base, "", API_KEY);
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
    assert_eq!(ac["statistics_count"], "every event");
    let alice_sees = alice_sees();
    let carol_sees = carol_sees();

    // The original's stream routes, open before the messages come.
    let streams: Vec<_> = ["/_logs", "/_maps"]
        .iter()
        .flat_map(|route| [&alice, &carol].map(|who| (route, who)))
        .map(|(route, who)| collect(&base, route, who, Duration::from_secs(12)))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    push(&redis, &frames());
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
    let dispatcher = start_dispatcher(&cfg, &server.dir.join("dispatcher-2.log"));
    assert!(wait_until(Duration::from_secs(20), || dispatcher
        .log_text()
        .contains("event(s) described by earlier messages")));
    push(&redis, &[object_frame(110, 11, AFTER_RESTART_VALUE)]);
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
