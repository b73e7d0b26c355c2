//! The geo and trending routes' filters of mispdash (`categ`, `country`, `bbox`, `tags`,
//! `not_tags`, `type`): those the original's keys answer on the original's seed2 keyspace,
//! each checked against a straight computation over the recorded keys; those that read
//! mispdash's own records over a generated corpus and crafted messages through the real
//! dispatcher.

mod acl_messages;
mod common;
mod http_support;

use acl_messages::{envelope, push, start_dispatcher};
use common::*;
use http_support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The recorded zset `key` of seed2 as Redis's ZREVRANGE orders it (score, then member,
/// both descending).
fn zrev(dump: &Value, key: &str) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = dump["dbs"]["2"][key]["value"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| b.0.as_bytes().cmp(a.0.as_bytes()))
    });
    v
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}{path}", server.base("http")))
        .header("Accept", "application/json")
        .send()
        .expect("get");
    let status = r.status().as_u16();
    let body = r.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn pairs(v: &Value) -> Vec<(String, f64)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn coord(member: &str, k: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(member).ok()?;
    match &v[k] {
        Value::String(s) => s.parse().ok(),
        n => n.as_f64(),
    }
}

#[test]
fn filters_narrow_the_geo_and_trending_answers_as_the_keys_say() {
    let dump = read_json(&shared().join("corpus").join("seed2.redis.json"));
    let redis = Redis::start();
    load_dump(&redis, &dump);
    let server = start_server(redis.port, &ServerSetup::default(), "http-filters");
    let n: i64 = ORACLE_NOW.parse().expect("now");
    let day = "20261120";

    // Top coordinates of the day: Network activity points in Europe.
    let (s, got) = get(
        &server,
        &format!("/_getTopCoord?date={n}&categ=Network%20activity&bbox=35,-25,72,45"),
    );
    assert_eq!(s, 200, "{got}");
    let want: Vec<(String, f64)> = zrev(&dump, &format!("GEO_COORD:{day}"))
        .into_iter()
        .filter(|(m, _)| {
            let v: Value = serde_json::from_str(m).unwrap_or(Value::Null);
            let (lat, lon) = (
                coord(m, "lat").unwrap_or(999.0),
                coord(m, "lon").unwrap_or(999.0),
            );
            v["categ"] == "Network activity"
                && (35.0..=72.0).contains(&lat)
                && (-25.0..=45.0).contains(&lon)
        })
        .take(6)
        .collect();
    assert!(!want.is_empty(), "the corpus has such points");
    assert_eq!(pairs(&got), want);

    // The country hit map, three countries.
    let (_, got) = get(&server, &format!("/_getHitMap?date={n}&country=pt,NO,cu"));
    let want: Vec<(String, f64)> = zrev(&dump, &format!("GEO_COUNTRY:{day}"))
        .into_iter()
        .filter(|(c, _)| ["PT", "NO", "CU"].contains(&c.as_str()))
        .collect();
    assert_eq!(want.len(), 3);
    assert_eq!(pairs(&got), want);

    // Radius query: the filtered points are exactly the unfiltered ones of that category.
    let radius = format!(
        "/_getCoordsByRadius?dateStart={}&dateEnd={n}&centerLat=20&centerLon=0&radius=20000",
        n - 86_400
    );
    let members = |v: &Value| -> Vec<String> {
        let mut m: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c[0].as_array().cloned().unwrap_or_default())
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect();
        m.sort();
        m
    };
    let (_, all) = get(&server, &radius);
    let (_, some) = get(&server, &format!("{radius}&categ=Network%20activity"));
    let want: Vec<String> = members(&all)
        .into_iter()
        .filter(|m| m.contains("\"categ\": \"Network activity\""))
        .collect();
    assert!(
        !want.is_empty() && want.len() < members(&all).len(),
        "some points are of other categories"
    );
    assert_eq!(members(&some), want);

    // Tags: TLP tags but not white, per day, as the keys hold them.
    let (s, got) = get(
        &server,
        &format!(
            "/_getTrendingTags?dateS={}&dateE={n}&topNum=50&tags=TLP:*&not_tags=tlp:white",
            n - 40 * 86_400
        ),
    );
    assert_eq!(s, 200, "{got}");
    let mut seen = 0;
    for d in got.as_array().expect("days") {
        let ts = d[0].as_i64().expect("ts");
        let key = format!(
            "TRENDINGS_TAGS:{}",
            chrono::DateTime::from_timestamp(ts, 0)
                .expect("ts")
                .format("%Y%m%d")
        );
        let want: Vec<(String, f64)> = zrev(&dump, &key)
            .into_iter()
            .filter_map(|(m, s)| {
                let tag: Value = serde_json::from_str(&m).ok()?;
                let name = tag["name"].as_str()?.to_lowercase();
                (name.starts_with("tlp:") && name != "tlp:white").then(|| (tag.to_string(), s))
            })
            .collect();
        let got_day: Vec<(String, f64)> = d[1]
            .as_array()
            .expect("tags")
            .iter()
            .map(|p| (p[0].to_string(), p[1].as_f64().unwrap_or(-1.0)))
            .collect();
        assert_eq!(got_day, want, "{key}");
        seen += want.len();
    }
    assert!(seen > 5, "the range holds TLP tags");

    // Categories: only those asked for, with each day's recorded counts.
    let (_, got) = get(
        &server,
        &format!(
            "/_getTrendingCategs?dateS={}&dateE={n}&categ=Person,Network%20activity",
            n - 40 * 86_400
        ),
    );
    let mut labels = std::collections::BTreeSet::new();
    for d in got.as_array().expect("days") {
        for (label, score) in pairs(&d[1]) {
            let key = format!(
                "TRENDINGS_CATEGS:{}",
                chrono::DateTime::from_timestamp(d[0].as_i64().expect("ts"), 0)
                    .expect("ts")
                    .format("%Y%m%d")
            );
            assert!(
                zrev(&dump, &key).contains(&(label.clone(), score)),
                "{key} {label}"
            );
            labels.insert(label);
        }
    }
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        ["Network activity", "Person"]
    );

    // A filter a route cannot answer is refused, not ignored.
    let (s, body) = get(
        &server,
        &format!("/_getTrendingTags?dateS={n}&dateE={n}&categ=Person"),
    );
    assert_eq!(s, 400);
    assert!(body.to_string().contains("does not take categ"), "{body}");
    let (s, _) = get(&server, &format!("/_getHitMap?date={n}&bbox=0,0,10,10"));
    assert_eq!(s, 400);
    let (s, _) = get(&server, &format!("/_getTopCoord?date={n}&bbox=north"));
    assert_eq!(s, 400);
}

/// The attribute message of a phone number of type `atype`, with these attribute and event
/// tags.
fn phone(id: u32, atype: &str, value: &str, tags: &[&str], event_tags: &[&str]) -> String {
    let tag = |names: &[&str]| -> Value {
        names
            .iter()
            .map(|n| json!({"id": "1", "name": n, "colour": "#ffffff"}))
            .collect()
    };
    envelope(
        "misp_json_attribute",
        &json!({"action": "add",
            "Attribute": {"id": id.to_string(), "event_id": "9100", "object_id": "0",
                "category": "Other", "type": atype, "value": value, "timestamp": "1795175000",
                "distribution": "5", "sharing_group_id": "0", "to_ids": false, "comment": "",
                "Tag": tag(tags)},
            "Event": {"id": "9100", "org_id": "1", "orgc_id": "1", "info": "filters",
                "distribution": "3", "published": true, "Orgc": {"id": "1", "name": "Org"},
                "Tag": tag(event_tags)}}),
    )
}

/// A published event's message (`misp_json_event`) with these tags.
fn tagged_event(id: u32, info: &str, tags: &[&str]) -> String {
    let tags: Vec<Value> = tags
        .iter()
        .map(|n| json!({"id": "1", "name": n, "colour": "#ffffff"}))
        .collect();
    envelope(
        "misp_json_event",
        &json!({"action": "edit",
            "Event": {"id": id.to_string(), "org_id": "1", "orgc_id": "1", "info": info,
                "timestamp": "1795175000", "distribution": "3", "published": true,
                "Tag": tags},
            "Orgc": {"id": "1", "name": "Org"}, "Org": {"id": "1", "name": "Org"}}),
    )
}

/// Answers per member, summed over several answers.
fn summed<'a>(answers: impl IntoIterator<Item = &'a Value>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for a in answers {
        for (m, n) in pairs(a) {
            *out.entry(m).or_insert(0.0) += n;
        }
    }
    out
}

/// The labels and counts of `/_getTrendingEvents` summed over its days.
fn event_counts(v: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for day in v.as_array().into_iter().flatten() {
        for (label, n) in pairs(&day[1]) {
            *out.entry(label).or_insert(0.0) += n;
        }
    }
    out
}

/// `type`, `tags` and `not_tags` on the geo routes and the event trending read mispdash's own
/// records of each point and event (written from this version on): over a generated corpus
/// the types partition the original's per-country hits and a tag pattern with its negation
/// partitions them and the event trending; crafted messages of known types, tags and
/// countries give exactly themselves; a day that predates the records is named in
/// `X-Mispdash-Filter-Note`.
#[test]
fn type_and_tag_filters_read_what_mispdash_records_of_each_point_and_event() {
    let dir = tmpdir("http-filters-points");
    let redis = Redis::start();
    let cfg = write_config(
        &dir,
        redis.port,
        "[]",
        &oracle_mmdb(),
        Some(&shared().join("data/country_code_lat_long.json")),
    );
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str("\n[mispdash]\nwider_geolocation = true\n");
    std::fs::write(&cfg, text).expect("config");

    let corpus_path = dir.join("corpus.jsonl");
    let out = tool(
        "gen_corpus.py",
        &[
            "--seed",
            "5",
            "--count",
            "300",
            "--edges",
            "none",
            "--clean",
            "-o",
            corpus_path.to_str().expect("utf-8 path"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut entries: Vec<String> = std::fs::read_to_string(&corpus_path)
        .expect("corpus")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let m: Value = serde_json::from_str(l).expect("corpus line");
            envelope(m["topic"].as_str().expect("topic"), &m["payload"])
        })
        .collect();
    let (lu, fr, de) = ("+352 26 12 34 56", "+33 1 23 45 67 89", "+49 30 1234567");
    entries.extend([
        phone(
            91001,
            "phone-number",
            lu,
            &["mispdash-test:alpha"],
            &["tlp:amber"],
        ),
        phone(
            91002,
            "whois-registrant-phone",
            fr,
            &[],
            &["mispdash-test:beta"],
        ),
        phone(91003, "phone-number", de, &[], &[]),
        tagged_event(9200, "mispdash tagged event", &["mispdash-test:gamma"]),
    ]);
    push(&redis, &entries);
    let mut dispatcher = start_dispatcher(&cfg, &dir.join("dispatcher.log"));
    let llen = |key: &str| -> i64 {
        redis::cmd("LLEN")
            .arg(key)
            .query(&mut redis.conn(3).expect("redis"))
            .unwrap_or(-1)
    };
    assert!(
        wait_until(Duration::from_secs(120), || llen("bufferList") == 0
            && llen("bufferList:processing") == 0),
        "the buffer was not drained:\n{}",
        dispatcher.log_text()
    );
    dispatcher.terminate();
    // The day before: a point of the original's keys only, as a version without the records
    // wrote it.
    let mut c = redis.conn(2).expect("redis");
    redis::cmd("ZINCRBY")
        .arg("GEO_COORD:20261119")
        .arg(1)
        .arg(r#"{"lat": 49.6, "lon": 6.1, "categ": "Other", "value": "old"}"#)
        .query::<()>(&mut c)
        .expect("zincrby");

    let server = start_server(redis.port, &ServerSetup::default(), "http-filters-points");
    let n: i64 = ORACLE_NOW.parse().expect("now");
    let json = |path: &str| -> Value {
        let (s, v) = get(&server, path);
        assert_eq!(s, 200, "{path}: {v}");
        v
    };

    // Crafted points: exactly themselves.
    let hit = |q: &str| json(&format!("/_getHitMap?date={n}&{q}"));
    assert_eq!(
        pairs(&hit("type=whois-registrant-phone")),
        vec![("FR".to_string(), 1.0)]
    );
    assert_eq!(
        summed([&hit("tags=MISPDASH-TEST:*")]),
        BTreeMap::from([("FR".to_string(), 1.0), ("LU".to_string(), 1.0)]),
        "an attribute's tag or its event's, case-insensitive"
    );
    assert_eq!(
        pairs(&hit("tags=mispdash-test:*&not_tags=*beta")),
        vec![("LU".to_string(), 1.0)]
    );
    let top = json(&format!("/_getTopCoord?date={n}&tags=mispdash-test:alpha"));
    let top = pairs(&top);
    assert_eq!(top.len(), 1, "{top:?}");
    // A phone number's point is its country's centroid (spec §3.3).
    let centroids = read_json(&shared().join("data/country_code_lat_long.json"));
    assert_eq!(
        coord(&top[0].0, "lat").zip(coord(&top[0].0, "lon")),
        centroids["lu"]["lat"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .zip(
                centroids["lu"]["long"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
            ),
        "{top:?}"
    );
    let near_paris = json(&format!(
        "/_getCoordsByRadius?dateStart={n}&dateEnd={n}&centerLat=46.6&centerLon=2.4&radius=300&type=whois-registrant-phone"
    ));
    assert!(near_paris.to_string().contains(fr), "{near_paris}");
    let far = json(&format!(
        "/_getCoordsByRadius?dateStart={n}&dateEnd={n}&centerLat=-30&centerLon=140&radius=300&type=whois-registrant-phone"
    ));
    assert_eq!(far, json!([]));

    // Over the corpus: the types partition the per-country hits, and so do a pattern and its
    // negation.
    let all = summed([&hit("")]);
    assert!(all.len() > 3, "the corpus geolocates: {all:?}");
    let mut types: Vec<String> = redis::cmd("ZRANGE")
        .arg("MISPDASH_GEO_POINTS:20261120")
        .arg(0)
        .arg(-1)
        .query::<Vec<String>>(&mut c)
        .expect("zrange")
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .filter_map(|p| p["type"].as_str().map(str::to_string))
        .collect();
    types.sort();
    types.dedup();
    assert!(types.len() >= 3, "{types:?}");
    let by_type: Vec<Value> = types
        .iter()
        .map(|t| hit(&format!("type={}", t.replace('|', "%7C"))))
        .collect();
    assert_eq!(summed(&by_type), all, "types {types:?}");
    let with = hit("tags=tlp:*");
    let without = hit("not_tags=tlp:*");
    assert!(!pairs(&with).is_empty() && !pairs(&without).is_empty());
    assert_eq!(summed([&with, &without]), all);

    let events = |q: &str| {
        json(&format!(
            "/_getTrendingEvents?dateS={}&dateE={n}&topNum=1000{q}",
            n - 86_400
        ))
    };
    let all_events = event_counts(&events(""));
    assert!(all_events.len() > 3, "{all_events:?}");
    let mut split = event_counts(&events("&tags=tlp:*"));
    for (label, k) in event_counts(&events("&not_tags=tlp:*")) {
        *split.entry(label).or_insert(0.0) += k;
    }
    assert_eq!(split, all_events);
    assert_eq!(
        event_counts(&events("&tags=mispdash-test:gamma")),
        BTreeMap::from([("mispdash tagged event".to_string(), 1.0)])
    );

    // The note: a range with a day before the records says so; today alone does not.
    let note = |path: &str| -> Option<String> {
        let r = client()
            .get(format!("{}{path}", server.base("http")))
            .send()
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.headers()
            .get("x-mispdash-filter-note")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let yesterday = n - 86_400;
    let old = note(&format!("/_getHitMap?date={yesterday}&type=ip-dst")).expect("a note");
    assert!(old.starts_with("1 day(s) of the range (20261119)"), "{old}");
    assert_eq!(note(&format!("/_getHitMap?date={yesterday}")), None);
    assert_eq!(note(&format!("/_getHitMap?date={n}&type=ip-dst")), None);
    let ranged = note(&format!(
        "/_getCoordsByRadius?dateStart={yesterday}&dateEnd={n}&centerLat=0&centerLon=0&radius=1&tags=x"
    ))
    .expect("a note");
    assert!(ranged.contains("20261119"), "{ranged}");

    // Routes that cannot answer them refuse them.
    for path in [
        format!("/_getTrendingCategs?dateS={n}&dateE={n}&type=ip-dst"),
        format!("/_getTrendingEvents?dateS={n}&dateE={n}&type=ip-dst"),
        format!("/_getTrendingTags?dateS={n}&dateE={n}&type=ip-dst"),
    ] {
        assert_eq!(get(&server, &path).0, 400, "{path}");
    }
}
