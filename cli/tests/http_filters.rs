//! The geo and trending routes' filters of mispdash (`categ`, `country`, `bbox`, `tags`,
//! `not_tags`), on the original's seed2 keyspace, each checked against a straight computation
//! over the recorded keys.

mod common;
mod http_support;

use common::*;
use http_support::*;
use serde_json::Value;

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
