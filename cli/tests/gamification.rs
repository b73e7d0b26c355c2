//! Gamification against a real Redis: both scoring modes case by case (the compatible mode's
//! exactness is covered by the seed2 oracle test), and `mispdash give-honors`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const DAY: &str = "20261120"; // ORACLE_NOW, TZ=UTC

/// Pushes messages onto the buffer as a subscriber would, runs the dispatcher until it has
/// handled them all, and returns the Redis it wrote to.
fn dispatch(mode: &str, messages: &[(&str, Value)]) -> Redis {
    let dir = tmpdir(&format!("gamification-{mode}"));
    let redis = Redis::start();
    let cfg = write_config(&dir, redis.port, "[]", Path::new("/nonexistent.mmdb"), None);
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str(&format!("\n[CONTRIB]\nscoring = {mode}\n"));
    std::fs::write(&cfg, text).expect("config");
    let mut c = redis.conn(3).expect("redis");
    for (topic, body) in messages {
        let frame = format!("{topic} {body}");
        let env = mispdash_core::feed::envelope("misp1", &frame);
        redis::cmd("LPUSH")
            .arg("bufferList")
            .arg(env)
            .query::<()>(&mut c)
            .expect("push");
    }
    let d = Mispdash::start(
        &cfg,
        &["run", "--no-subscribers", "--no-managed-redis"],
        &dir.join("run.log"),
    );
    let n = messages.len() as i64;
    let done = wait_until(Duration::from_secs(30), || {
        redis::cmd("HGET")
            .arg("MISPDASH_DISPATCH")
            .arg("messages")
            .query::<Option<i64>>(&mut c)
            .ok()
            .flatten()
            == Some(n)
    });
    assert!(
        done,
        "dispatcher did not handle {n} messages:\n{}",
        d.log_text()
    );
    drop(d);
    redis
}

fn get(r: &Redis, key: &str) -> Option<String> {
    r.conn(2)
        .ok()
        .and_then(|mut c| redis::cmd("GET").arg(key).query(&mut c).ok())
        .flatten()
}

fn zscore(r: &Redis, key: &str, member: &str) -> Option<f64> {
    r.conn(2)
        .ok()
        .and_then(|mut c| redis::cmd("ZSCORE").arg(key).arg(member).query(&mut c).ok())
        .flatten()
}

fn ttl(r: &Redis, key: &str) -> i64 {
    r.conn(2)
        .and_then(|mut c| redis::cmd("TTL").arg(key).query(&mut c))
        .unwrap_or(-3)
}

fn awards(r: &Redis) -> Vec<Value> {
    let members: Vec<String> = r
        .conn(2)
        .and_then(|mut c| {
            redis::cmd("ZRANGE")
                .arg(format!("CONTRIB_LAST_AWARDS:{DAY}"))
                .arg(0)
                .arg(-1)
                .query(&mut c)
        })
        .unwrap_or_default();
    members
        .iter()
        .map(|m| serde_json::from_str::<Value>(m).expect("award json")["award"].clone())
        .collect()
}

fn event_wrapper() -> Value {
    json!({"id": "1", "info": "t", "timestamp": "1795170000", "Orgc": {"name": "CREATOR"}})
}

fn attribute(category: &str, object_id: Value) -> Value {
    json!({"Attribute": {"id": "7", "type": "text", "category": category, "value": "x",
        "object_id": object_id, "timestamp": "1795170000"},
        "Event": event_wrapper(), "action": "add"})
}

fn sighting(kind: Value, sighter: &str) -> Value {
    json!({"Sighting": {"id": "3", "type": kind, "date_sighting": "1795170000",
        "Organisation": {"name": sighter},
        "Event": event_wrapper(),
        "Attribute": {"id": "7", "category": "Payload delivery", "type": "md5", "value": "d41d", "object_id": "0"}},
        "action": "add"})
}

#[test]
fn discussion_requirement_needs_points_only_when_corrected() {
    let msgs = [(
        "misp_json_conversation",
        json!({"Post": {"org_name": "TALKER"}}),
    )];
    let compat = dispatch("compatible", &msgs);
    assert_eq!(
        get(&compat, "CONTRIB_ORG:TALKER:CONTRIB_REQ_3").as_deref(),
        Some("1")
    );
    assert_eq!(awards(&compat), vec![json!(["contribution_status", 3])]);
    assert_eq!(
        zscore(&compat, &format!("CONTRIB_DAY:{DAY}"), "TALKER"),
        None,
        "no monthly points (G5)"
    );
    let fixed = dispatch("corrected", &msgs);
    assert_eq!(
        get(&fixed, "CONTRIB_ORG:TALKER:CONTRIB_REQ_3"),
        None,
        "1 point < 8"
    );
    assert_eq!(
        zscore(&fixed, &format!("CONTRIB_DAY:{DAY}"), "TALKER"),
        Some(1.0),
        "monthly point (G5)"
    );
    assert!(awards(&fixed).is_empty());
}

#[test]
fn support_tool_matches_the_configured_category_when_corrected() {
    let msgs = [("misp_json_attribute", attribute("Support Tool", json!("0")))];
    let compat = dispatch("compatible", &msgs);
    assert_eq!(
        zscore(
            &compat,
            &format!("CONTRIB_CATEG:{DAY}:support_tool"),
            "CREATOR"
        ),
        Some(1.0)
    );
    assert_eq!(
        zscore(&compat, "CONTRIB_TROPHY:support_tool", "CREATOR"),
        Some(1.0)
    );
    assert!(
        awards(&compat).is_empty(),
        "the trophy list never sees support_tool (G3)"
    );
    let fixed = dispatch("corrected", &msgs);
    assert_eq!(
        zscore(
            &fixed,
            &format!("CONTRIB_CATEG:{DAY}:support_Tool"),
            "CREATOR"
        ),
        Some(1.0)
    );
    assert_eq!(
        awards(&fixed),
        vec![json!(["trophy", ["support_Tool", 12]])]
    );
}

#[test]
fn sightings_credit_the_sighter_and_numeric_types_count_when_corrected() {
    let msgs = [
        ("misp_json_sighting", sighting(json!("0"), "SIGHTER")),
        ("misp_json_sighting", sighting(json!(0), "SIGHTER")),
    ];
    let compat = dispatch("compatible", &msgs);
    assert_eq!(
        get(&compat, "CONTRIB_ORG:CREATOR:points").as_deref(),
        Some("4"),
        "G4: the creator"
    );
    assert_eq!(get(&compat, "CONTRIB_ORG:SIGHTER:points"), None);
    assert_eq!(
        get(&compat, "TRENDINGS_SIGHT_sightings:20261120").as_deref(),
        Some("1"),
        "G7: numeric type ignored"
    );
    // First sighting: requirement 1 equals the new rank, so nothing is announced (G8); the
    // trophy is.
    assert_eq!(
        awards(&compat),
        vec![json!(["trophy", ["payload_delivery", 12]])]
    );
    let fixed = dispatch("corrected", &msgs);
    assert_eq!(
        get(&fixed, "CONTRIB_ORG:SIGHTER:points").as_deref(),
        Some("4")
    );
    assert_eq!(get(&fixed, "CONTRIB_ORG:CREATOR:points"), None);
    assert_eq!(
        get(&fixed, "TRENDINGS_SIGHT_sightings:20261120").as_deref(),
        Some("2")
    );
    let a = awards(&fixed);
    assert!(a.contains(&json!(["contribution_status", 1])), "{a:?}");
}

#[test]
fn object_attributes_count_as_attributes_when_corrected() {
    let msgs = [
        (
            "misp_json_attribute",
            attribute("Network activity", json!(0)),
        ),
        (
            "misp_json_attribute",
            attribute("Network activity", json!("12")),
        ),
    ];
    let compat = dispatch("compatible", &msgs);
    assert_eq!(
        get(&compat, "CONTRIB_ORG:CREATOR:ATTR_WEEK_COUNT"),
        None,
        "G7"
    );
    assert_eq!(
        get(&compat, "CONTRIB_ORG:CREATOR:points").as_deref(),
        Some("2")
    );
    let fixed = dispatch("corrected", &msgs);
    assert_eq!(
        get(&fixed, "CONTRIB_ORG:CREATOR:ATTR_WEEK_COUNT").as_deref(),
        Some("2")
    );
    assert_eq!(
        get(&fixed, "CONTRIB_ORG:CREATOR:CONTRIB_REQ_2"),
        None,
        "2 points < 4"
    );
}

#[test]
fn republished_events_do_not_count_again_when_corrected() {
    let published = json!({"Event": {"id": "1", "info": "pub", "timestamp": "1795170000",
        "Orgc": {"name": "CREATOR"},
        "Attribute": [{"id": "9", "type": "md5", "category": "Payload delivery", "value": "aa",
            "object_id": "0", "timestamp": "1795170000"}]}});
    let msgs = [("misp_json", published)];
    let compat = dispatch("compatible", &msgs);
    assert_eq!(
        get(&compat, "CONTRIB_ORG:CREATOR:points").as_deref(),
        Some("1"),
        "G6"
    );
    let fixed = dispatch("corrected", &msgs);
    assert_eq!(get(&fixed, "CONTRIB_ORG:CREATOR:points"), None);
    assert_eq!(
        zscore(&fixed, "TRENDINGS_CATEGS:20261120", "Payload delivery"),
        Some(1.0),
        "trendings and live rows stay"
    );
}

#[test]
fn event_counters_and_awards_in_both_modes() {
    let ev = json!({"Event": {"id": "1", "info": "e", "timestamp": "1795170000"},
        "Orgc": {"name": "BIG"}, "EventTag": [{"Tag": {"name": "tlp:green"}}], "action": "add"});
    let msgs = [("misp_json_event", ev)];
    let compat = dispatch("compatible", &msgs);
    let week = 7 * 86_400;
    let t = ttl(&compat, "CONTRIB_ORG:BIG:EVENT_MONTH_COUNT");
    assert!((week - 5..=week).contains(&t), "G9: 7 days, got {t}");
    let fixed = dispatch("corrected", &msgs);
    let t = ttl(&fixed, "CONTRIB_ORG:BIG:EVENT_MONTH_COUNT");
    assert!(t > 30 * 86_400, "31 days, got {t}");
}

#[test]
fn give_honors_records_and_announces_awards() {
    let dir = tmpdir("honors");
    let redis = Redis::start();
    let cfg = write_config(&dir, redis.port, "[]", Path::new("/nonexistent.mmdb"), None);
    let mut sub = redis.conn(0).expect("redis");
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("lastAwards").expect("subscribe");
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .args([
            "--config",
            cfg.to_str().expect("path"),
            "give-honors",
            "ACME CERT",
        ])
        .args([
            "--grant-requirement",
            "15",
            "--grant-badge",
            "2",
            "--trophy",
            "network_activity=5",
        ])
        .env("MISPDASH_FAKE_NOW", ORACLE_NOW)
        .env("TZ", "UTC")
        .output()
        .expect("run give-honors");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get(&redis, "CONTRIB_ORG:ACME CERT:CONTRIB_REQ_15").as_deref(),
        Some("1")
    );
    assert_eq!(
        ttl(&redis, "CONTRIB_ORG:ACME CERT:CONTRIB_REQ_15"),
        -1,
        "given by hand: no expiry"
    );
    assert_eq!(
        get(&redis, "CONTRIB_ORG:ACME CERT:BADGE_2").as_deref(),
        Some("1")
    );
    assert_eq!(
        zscore(&redis, "CONTRIB_TROPHY:network_activity", "ACME CERT"),
        Some(5.0)
    );
    let a = awards(&redis);
    for expected in [
        json!(["contribution_status", 15]),
        json!(["badge", 2]),
        json!(["trophy", ["network_activity", 12]]),
    ] {
        assert!(a.contains(&expected), "{expected} missing from {a:?}");
    }
    // Published with the field the server's award stream reads.
    let msg = pubsub.get_message().expect("an award is published");
    let payload: Value =
        serde_json::from_str(&msg.get_payload::<String>().expect("text")).expect("json");
    assert_eq!(payload["zmqName"], "GIVE_HONOR_ZMQ");
    assert_eq!(payload["name"], "CONTRIBUTION");
    let log: Value =
        serde_json::from_str(payload["log"].as_str().expect("log is a JSON string")).expect("json");
    assert_eq!(log["org"], "ACME CERT");
    assert_eq!(log["epoch"], 1795176000);

    // Out-of-range input is refused with a clear message and changes nothing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .args([
            "--config",
            cfg.to_str().expect("path"),
            "give-honors",
            "ACME CERT",
            "--grant-badge",
            "9",
        ])
        .output()
        .expect("run give-honors");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("badge 9 does not exist"));
    assert_eq!(get(&redis, "CONTRIB_ORG:ACME CERT:BADGE_9"), None);
}
