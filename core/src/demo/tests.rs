use super::*;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

const NOW: f64 = 1_795_176_000.0;

fn feed(seed: u64) -> DemoFeed {
    DemoFeed::new(seed, Clock::frozen(NOW))
}

fn split(frame: &str) -> (String, Value) {
    let (topic, body) = frame.split_once(' ').expect("frame has a space");
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {frame}"));
    (topic.to_string(), json)
}

fn frames(seed: u64, n: usize) -> Vec<(String, Value)> {
    let mut f = feed(seed);
    (0..n).map(|_| split(&f.next_frame())).collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v}"))
}

#[test]
fn frames_are_a_known_topic_then_json() {
    for (topic, body) in frames(1, 2000) {
        assert!(TOPICS.contains(&topic.as_str()), "{topic}");
        assert!(body.is_object());
    }
}

#[test]
fn every_topic_appears_within_500_frames() {
    for seed in [0, 1, 42, 2026] {
        let seen: BTreeSet<String> = frames(seed, 500).into_iter().map(|(t, _)| t).collect();
        for t in TOPICS {
            assert!(seen.contains(*t), "seed {seed}: {t} missing");
        }
    }
}

#[test]
fn deterministic_for_a_seed() {
    let mut a = feed(7);
    let mut b = feed(7);
    let mut c = feed(8);
    let fa: Vec<String> = (0..300).map(|_| a.next_frame()).collect();
    let fb: Vec<String> = (0..300).map(|_| b.next_frame()).collect();
    let fc: Vec<String> = (0..300).map(|_| c.next_frame()).collect();
    assert_eq!(fa, fb);
    assert_ne!(fa, fc);
}

#[test]
fn organisations_are_labelled_demo() {
    let mut orgs = BTreeSet::new();
    for (topic, b) in frames(3, 1000) {
        match topic.as_str() {
            "misp_json_event" => {
                orgs.insert(s(&b, &["Orgc", "name"]).to_string());
            }
            "misp_json_attribute" | "misp_json_object" => {
                orgs.insert(s(&b, &["Event", "Orgc", "name"]).to_string());
            }
            "misp_json_sighting" => {
                orgs.insert(s(&b, &["Sighting", "Event", "Orgc", "name"]).to_string());
                orgs.insert(s(&b, &["Sighting", "Organisation", "name"]).to_string());
            }
            "misp_json_conversation" => {
                orgs.insert(s(&b, &["Post", "org_name"]).to_string());
            }
            "misp_json_audit" => {
                orgs.insert(s(&b, &["Log", "org"]).to_string());
            }
            "misp_json" => {
                orgs.insert(s(&b, &["Event", "Orgc", "name"]).to_string());
            }
            _ => {}
        }
    }
    assert!(orgs.len() >= 8, "{orgs:?}");
    for o in &orgs {
        assert!(o.ends_with("(demo)"), "{o}");
    }
}

#[test]
fn messages_have_the_fields_the_dispatcher_reads() {
    let now = (NOW as i64).to_string();
    for (topic, b) in frames(11, 1500) {
        match topic.as_str() {
            "misp_json_event" => {
                assert!(s(&b, &["Event", "info"]).starts_with("DEMO: "));
                assert_eq!(s(&b, &["Event", "timestamp"]), now);
                assert!(b["EventTag"].as_array().is_some_and(|t| !t.is_empty()));
                assert!(["add", "edit"].contains(&s(&b, &["action"])));
                assert!(b["Event"].get("Attribute").is_none());
            }
            "misp_json_attribute" => {
                let a = &b["Attribute"];
                assert_eq!(s(a, &["object_id"]), "0");
                assert_eq!(s(a, &["timestamp"]), now);
                s(a, &["category"]);
                s(a, &["type"]);
                s(a, &["value"]);
                for t in a.get("Tag").and_then(Value::as_array).into_iter().flatten() {
                    s(t, &["id"]);
                    s(t, &["name"]);
                    s(t, &["colour"]);
                }
            }
            "misp_json_object" => {
                let attrs = b["Object"]["Attribute"].as_array().expect("Attribute list");
                assert!(!attrs.is_empty());
                for a in attrs {
                    assert_eq!(s(a, &["object_id"]), s(&b, &["Object", "id"]));
                    assert_ne!(s(a, &["object_id"]), "0");
                }
                s(&b, &["Event", "Orgc", "name"]);
            }
            "misp_json_sighting" => {
                let sg = &b["Sighting"];
                assert!(["0", "1"].contains(&s(sg, &["type"])));
                assert_eq!(s(sg, &["date_sighting"]), now);
                s(sg, &["Attribute", "category"]);
                assert_eq!(s(sg, &["event_id"]), s(sg, &["Event", "id"]));
                assert_eq!(s(sg, &["Attribute", "event_id"]), s(sg, &["Event", "id"]));
            }
            "misp_json_audit" => {
                assert_eq!(s(&b, &["action"]), "log");
                s(&b, &["Log", "action"]);
                s(&b, &["Log", "email"]);
            }
            "misp_json_self" => {
                assert_eq!(s(&b, &["status"]), "demo");
                assert!(b["uptime"].is_u64());
            }
            "misp_json" => {
                let e = &b["Event"];
                assert!(s(e, &["info"]).starts_with("DEMO: "));
                s(e, &["Orgc", "name"]);
                assert!(e["Attribute"].as_array().is_some_and(|a| !a.is_empty()));
                for t in e["Tag"].as_array().expect("Tag list") {
                    s(t, &["colour"]);
                }
            }
            _ => {}
        }
    }
}

/// All attribute-like objects of a body: top-level, in objects, in sightings and publishes.
fn attributes(topic: &str, b: &Value) -> Vec<Value> {
    match topic {
        "misp_json_attribute" => vec![b["Attribute"].clone()],
        "misp_json_sighting" => vec![b["Sighting"]["Attribute"].clone()],
        "misp_json_object" => b["Object"]["Attribute"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        "misp_json" => b["Event"]["Attribute"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        _ => vec![],
    }
}

#[test]
fn network_indicators_are_public_ips_from_many_countries() {
    let mut first_octets = BTreeSet::new();
    let mut ips = 0;
    for (topic, b) in frames(5, 3000) {
        for a in attributes(&topic, &b) {
            let t = s(&a, &["type"]);
            if t == "ip-src" || t == "ip-dst" {
                let ip: Ipv4Addr = s(&a, &["value"]).parse().expect("IPv4 literal");
                assert!(
                    !(ip.is_private() || ip.is_loopback() || ip.is_documentation()),
                    "{ip}"
                );
                first_octets.insert(ip.octets()[0]);
                ips += 1;
            }
        }
    }
    assert!(ips > 300, "{ips}");
    assert!(first_octets.len() > 20, "{first_octets:?}");
}

#[test]
fn phone_numbers_are_valid_international_numbers() {
    let mut n = 0;
    for (topic, b) in frames(9, 3000) {
        for a in attributes(&topic, &b) {
            if s(&a, &["type"]) == "phone-number" {
                let v = s(&a, &["value"]);
                assert!(v.starts_with('+'), "{v}");
                let parsed = phonenumber::parse(None, v).unwrap_or_else(|e| panic!("{v}: {e}"));
                assert!(phonenumber::is_valid(&parsed), "{v} is not valid");
                n += 1;
            }
        }
    }
    assert!(n > 50, "{n}");
}

#[test]
fn every_phone_plan_gives_valid_numbers() {
    let mut f = feed(1);
    for (prefix, _) in PHONE_PLANS {
        let mut tried = 0;
        while tried < 100 {
            let v = f.phone();
            if !v.starts_with(&prefix.replace(' ', "")) {
                continue;
            }
            tried += 1;
            let parsed = phonenumber::parse(None, &v).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert!(phonenumber::is_valid(&parsed), "{v} is not valid");
        }
    }
}

#[test]
fn keepalive_is_misps_shape() {
    let (topic, body) = split(&keepalive_frame(42));
    assert_eq!(topic, "misp_json_self");
    assert_eq!(body, json!({"status": "demo", "uptime": 42}));
}

#[test]
fn bodies_are_python_style_json() {
    let mut f = feed(2);
    for _ in 0..50 {
        let frame = f.next_frame();
        assert!(
            frame.is_ascii(),
            "non-ASCII is escaped like MISP's \\u escapes"
        );
        let (_, body) = split(&frame);
        let (_, raw) = frame.split_once(' ').expect("space");
        assert_eq!(crate::pyjson::to_string(&body), raw);
    }
}
