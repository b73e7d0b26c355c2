//! Wider geolocation (`[mispdash] wider_geolocation`, `docs/compat.md`) through the real
//! binary and a real Redis: a generated corpus alone, as the original handles it, into one
//! Redis; the same corpus followed by messages of each new kind, with the setting on, into
//! another. The second must hold everything the first holds, the new points, and nothing that
//! the additions do not explain.

mod acl_messages;
mod common;

use acl_messages::{envelope, push, start_dispatcher};
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// `ORACLE_NOW` (the dispatcher's pinned clock) as a day, in UTC (the tests' `TZ`).
const DAY: &str = "20261120";

const COMPOSITE_TYPES: [&str; 3] = ["ip-src|port", "ip-dst|port", "domain|ip"];

/// The IP of a composite value, as the dispatcher takes it.
fn ip_part(atype: &str, value: &str) -> Option<String> {
    let (first, last) = value.split_once('|')?;
    let ip = if atype == "domain|ip" { last } else { first };
    Some(ip.trim().to_string())
}

/// The corpus's messages as buffer entries, and the IPs of its composite values.
fn corpus(dir: &Path) -> (Vec<String>, BTreeSet<String>) {
    let path = dir.join("corpus.jsonl");
    let out = tool(
        "gen_corpus.py",
        &[
            "--seed",
            "11",
            "--count",
            "300",
            "--edges",
            "none",
            "--clean",
            "-o",
            path.to_str().expect("utf-8 path"),
        ],
    );
    assert!(
        out.status.success(),
        "gen_corpus: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("corpus");
    let mut entries = Vec::new();
    let mut ips = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let msg: Value = serde_json::from_str(line).expect("corpus line");
        let topic = msg["topic"].as_str().expect("topic");
        let payload = &msg["payload"];
        assert!(payload.is_object(), "an ordinary message: {line}");
        entries.push(envelope(topic, payload));
        collect(payload, &mut |a| {
            let (Some(t), Some(v)) = (a["type"].as_str(), a["value"].as_str()) else {
                return;
            };
            assert!(
                !["whois-registrant-phone", "prtn"].contains(&t)
                    && a["object_relation"] != "latitude",
                "the corpus has a new kind itself ({t}): the accounting below assumes not"
            );
            if COMPOSITE_TYPES.contains(&t) {
                ips.extend(ip_part(t, v));
            }
        });
    }
    (entries, ips)
}

/// Calls `f` with every JSON object inside `v`.
fn collect(v: &Value, f: &mut impl FnMut(&Value)) {
    match v {
        Value::Object(o) => {
            f(v);
            o.values().for_each(|x| collect(x, f));
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, f)),
        _ => {}
    }
}

fn event() -> Value {
    json!({"id": "9000", "org_id": "1", "orgc_id": "1", "info": "wider geolocation",
        "distribution": "3", "sharing_group_id": "0", "published": true,
        "Orgc": {"id": "1", "name": "Wider Org"}})
}

fn attribute(id: u32, category: &str, atype: &str, value: &str) -> String {
    envelope(
        "misp_json_attribute",
        &json!({"action": "add",
            "Attribute": {"id": id.to_string(), "event_id": "9000", "object_id": "0",
                "object_relation": null, "category": category, "type": atype, "value": value,
                "timestamp": "1795175000", "distribution": "5", "sharing_group_id": "0",
                "to_ids": false, "comment": "", "Tag": []},
            "Event": event()}),
    )
}

fn geo_attribute(id: u32, object: u32, relation: &str, atype: &str, value: &str) -> Value {
    json!({"id": id.to_string(), "event_id": "9000", "object_id": object.to_string(),
        "object_relation": relation, "category": "Other", "type": atype, "value": value,
        "timestamp": "1795175000", "distribution": "5", "sharing_group_id": "0",
        "to_ids": false, "comment": ""})
}

fn geo_object(object: u32, attributes: Vec<Value>) -> String {
    envelope(
        "misp_json_object",
        &json!({"Object": {"id": object.to_string(), "name": "geolocation",
            "meta-category": "misc", "event_id": "9000", "distribution": "5",
            "sharing_group_id": "0", "Attribute": attributes},
            "Event": event()}),
    )
}

/// One attribute of a geolocation object in a message of its own, as MISP sends each
/// attribute of a new object.
fn geo_half(a: Value) -> String {
    let object = a["object_id"].clone();
    envelope(
        "misp_json_attribute",
        &json!({"action": "add", "Attribute": a, "Event": event(),
            "Object": {"id": object, "name": "geolocation", "meta-category": "misc",
                "event_id": "9000", "distribution": "5", "sharing_group_id": "0"}}),
    )
}

/// A message of each new kind, and a plain IP the composite ones must match.
fn new_messages() -> Vec<String> {
    vec![
        attribute(9001, "Network activity", "ip-dst", "81.2.69.160"),
        attribute(9002, "Network activity", "ip-dst|port", "81.2.69.160|443"),
        attribute(
            9003,
            "Network activity",
            "domain|ip",
            "wider.example|158.64.1.1",
        ),
        attribute(
            9004,
            "Payload delivery",
            "ip-src|port",
            "2001:4860:4860::8888|53",
        ),
        attribute(
            9005,
            "Attribution",
            "whois-registrant-phone",
            "+352 621 123 456",
        ),
        geo_object(
            71,
            vec![
                geo_attribute(9010, 71, "latitude", "float", "50.85034"),
                geo_attribute(9011, 71, "longitude", "float", "4.35171"),
                geo_attribute(9012, 71, "country", "text", "Belgium"),
                geo_attribute(9013, 71, "city", "text", "Brussels"),
            ],
        ),
        geo_half(geo_attribute(9020, 72, "latitude", "float", "35.6762")),
        geo_half(geo_attribute(9021, 72, "country", "text", "Japan")),
        geo_half(geo_attribute(9022, 72, "longitude", "float", "139.6503")),
        geo_object(
            73,
            vec![
                geo_attribute(9030, 73, "latitude", "float", "95"),
                geo_attribute(9031, 73, "longitude", "float", "4.35171"),
            ],
        ),
    ]
}

/// The located values [`new_messages`] add.
const NEW_VALUES: [&str; 6] = [
    "81.2.69.160",
    "158.64.1.1",
    "2001:4860:4860::8888",
    "+352 621 123 456",
    "50.8503, 4.3517",
    "35.6762, 139.6503",
];

/// What a dispatcher left in the map's keys of the day.
struct Geo {
    coord: BTreeMap<String, f64>,
    country: BTreeMap<String, f64>,
    rad: BTreeMap<String, f64>,
    map_cache: Vec<String>,
    dead: Vec<String>,
}

fn zset(c: &mut redis::Connection, key: &str) -> BTreeMap<String, f64> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query::<Vec<(String, f64)>>(c)
        .expect("zrange")
        .into_iter()
        .collect()
}

fn llen(r: &Redis, key: &str) -> i64 {
    r.conn(3)
        .and_then(|mut c| redis::cmd("LLEN").arg(key).query(&mut c))
        .unwrap_or(-1)
}

/// Runs the dispatcher over `entries` with `[mispdash] wider_geolocation = wider`.
fn dispatch(tag: &str, entries: &[String], wider: bool) -> Geo {
    let dir = tmpdir(tag);
    let redis = Redis::start();
    let cfg = write_config(
        &dir,
        redis.port,
        "[]",
        &oracle_mmdb(),
        Some(&shared().join("data/country_code_lat_long.json")),
    );
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str(&format!("\n[mispdash]\nwider_geolocation = {wider}\n"));
    std::fs::write(&cfg, text).expect("config");
    push(&redis, entries);
    let mut dispatcher = start_dispatcher(&cfg, &dir.join("dispatcher.log"));
    assert!(
        wait_until(Duration::from_secs(120), || {
            llen(&redis, "bufferList") == 0 && llen(&redis, "bufferList:processing") == 0
        }),
        "the buffer was not drained:\n{}",
        dispatcher.log_text()
    );
    assert!(
        dispatcher.is_running(),
        "the dispatcher died:\n{}",
        dispatcher.log_text()
    );
    let mut c = redis.conn(2).expect("redis");
    let map_cache: Vec<String> = redis::cmd("LRANGE")
        .arg("TEMP_CACHE_LIVE:Map")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("lrange");
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg("bufferList:dead")
        .arg(0)
        .arg(-1)
        .query(&mut redis.conn(3).expect("redis"))
        .expect("lrange");
    let geo = Geo {
        coord: zset(&mut c, &format!("GEO_COORD:{DAY}")),
        country: zset(&mut c, &format!("GEO_COUNTRY:{DAY}")),
        rad: zset(&mut c, &format!("GEO_RAD:{DAY}")),
        map_cache,
        dead,
    };
    dispatcher.terminate();
    geo
}

/// What `after` has beyond `before`, per member; fails if `after` lacks anything of
/// `before` (`same_score`: a geohash, which cannot grow).
fn extra(
    key: &str,
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    same_score: bool,
) -> BTreeMap<String, f64> {
    for (member, score) in before {
        let now = after.get(member).copied();
        assert!(
            now.is_some_and(|n| if same_score { n == *score } else { n >= *score }),
            "{key}: {member} was {score}, is {now:?} with the additions"
        );
    }
    after
        .iter()
        .filter_map(|(m, s)| {
            let d = s - before.get(m).copied().unwrap_or(0.0);
            (d != 0.0 || !before.contains_key(m)).then(|| (m.clone(), d))
        })
        .collect()
}

fn value_of(member: &str) -> Option<String> {
    serde_json::from_str::<Value>(member)
        .ok()?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

#[test]
fn wider_geolocation_adds_its_points_and_changes_nothing_else_on_the_map() {
    let dir = tmpdir("geo-wider-corpus");
    let (entries, corpus_ips) = corpus(&dir);
    assert!(
        !corpus_ips.is_empty(),
        "the corpus has composite values to place"
    );
    for v in NEW_VALUES {
        assert!(
            !corpus_ips.contains(v) && !entries.iter().any(|e| e.contains(v)),
            "{v} is in the corpus: the new points would not be told apart"
        );
    }
    let alone = dispatch("geo-wider-alone", &entries, false);
    assert!(alone.dead.is_empty(), "{:?}", alone.dead);
    let mut all = entries.clone();
    all.extend(new_messages());
    let wider = dispatch("geo-wider-all", &all, true);

    let coord = extra("GEO_COORD", &alone.coord, &wider.coord, false);
    let country = extra("GEO_COUNTRY", &alone.country, &wider.country, false);
    let rad = extra("GEO_RAD", &alone.rad, &wider.rad, true);

    // Every new point is one the additions explain: an IP of a composite value (the corpus's
    // or the new messages'), the new phone number's country, a geolocation object.
    let lu_phone = r#"{"lat": "49.7500", "lon": "6.1667"}"#;
    let explained = |v: &str| corpus_ips.contains(v) || NEW_VALUES.contains(&v);
    for (member, hits) in &coord {
        assert!(
            hits.fract() == 0.0 && *hits >= 1.0,
            "GEO_COORD {member}: {hits}"
        );
        match value_of(member) {
            Some(v) => assert!(explained(&v), "GEO_COORD gained {member}"),
            None => assert_eq!(
                (member.as_str(), *hits),
                (lu_phone, 1.0),
                "the one new phone number"
            ),
        }
    }
    for member in rad.keys() {
        let v = value_of(member).unwrap_or_default();
        assert!(explained(&v), "GEO_RAD gained {member}");
    }
    // Each placement counts its country once; every new point has one.
    let placed: f64 = coord.values().sum();
    assert_eq!(
        country.values().sum::<f64>(),
        placed,
        "{country:?} {coord:?}"
    );
    assert!(
        coord
            .keys()
            .any(|m| value_of(m).is_some_and(|v| corpus_ips.contains(&v))),
        "the corpus's composite values are placed: {coord:?}"
    );

    // A composite value is placed as its IP alone would be: the same member.
    let london: Vec<_> = wider
        .coord
        .iter()
        .filter(|(m, _)| value_of(m).as_deref() == Some("81.2.69.160"))
        .collect();
    assert_eq!(london.len(), 1, "{london:?}");
    assert_eq!(*london[0].1, 2.0, "the plain IP and the ip-dst|port");
    assert!(
        london[0].0.contains(r#""categ": "Network activity""#),
        "{}",
        london[0].0
    );
    assert!(rad.contains_key(r#"{"categ": "Network activity", "value": "158.64.1.1"}"#));
    assert!(rad.contains_key(r#"{"categ": "Payload delivery", "value": "2001:4860:4860::8888"}"#));
    assert!(rad.contains_key(r#"{"categ": "Attribution", "value": "+352 621 123 456"}"#));

    // The geolocation objects: in one message, and over three.
    assert_eq!(
        coord.get(
            r#"{"lat": 50.8503, "lon": 4.3517, "categ": "Other", "value": "50.8503, 4.3517"}"#
        ),
        Some(&1.0),
        "{coord:?}"
    );
    assert_eq!(
        coord.get(
            r#"{"lat": 35.6762, "lon": 139.6503, "categ": "Other", "value": "35.6762, 139.6503"}"#
        ),
        Some(&1.0),
        "{coord:?}"
    );
    assert!(rad.contains_key(r#"{"categ": "Other", "value": "35.6762, 139.6503"}"#));
    assert_eq!(country.get("JP"), Some(&1.0), "{country:?}");
    for want in [
        r#"{"coord": {"lat": 50.8503, "lon": 4.3517}, "categ": "Other", "value": "50.8503, 4.3517", "country": "Belgium", "specifName": null, "cityName": "Brussels", "regionCode": "BE"}"#,
        r#"{"coord": {"lat": 35.6762, "lon": 139.6503}, "categ": "Other", "value": "35.6762, 139.6503", "country": "Japan", "specifName": null, "cityName": null, "regionCode": "JP"}"#,
    ] {
        assert!(
            wider.map_cache.iter().any(|p| p == want),
            "{want} not on the live map: {:?}",
            &wider.map_cache[..wider.map_cache.len().min(12)]
        );
    }

    // The object with a latitude beyond the map: no point, and the message set aside as
    // partly applied, saying why.
    assert!(
        !wider.coord.keys().any(|m| m.contains("\"lat\": 95")),
        "{:?}",
        wider.coord
    );
    assert_eq!(wider.dead.len(), 1, "{:?}", wider.dead);
    let dead: Value = serde_json::from_str(&wider.dead[0]).expect("dead letter");
    assert_eq!(dead["applied"], "partial", "{dead}");
    let reason = dead["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("latitude") && reason.contains("no map point"),
        "{reason}"
    );
}
