//! `mispdash clean`: soft mode deletes exactly the original's patterns in the configured
//! databases and leaves foreign keys; brutal mode empties only the dashboard's databases; both
//! refuse to run unconfirmed without a terminal.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// One key per pattern the original's clean.py deletes in soft mode (spec §6.1).
const DASHBOARD_KEYS: &[&str] = &[
    "GEO_COORD:20261120",
    "GEO_COUNTRY:20261120",
    "GEO_RAD:20261120",
    "CONTRIB_DAY:20261120",
    "CONTRIB_CATEG:20261120:network_activity",
    "CONTRIB_LAST:20261120",
    "CONTRIB_ALL_ORG",
    "CONTRIB_ORG:CIRCL:points",
    "CONTRIB_TROPHY:network_activity",
    "CONTRIB_TROPHY:",
    "CONTRIB_LAST_AWARDS:20261120",
    "LOGIN_TIMESTAMP:CIRCL",
    "LOGIN_ORG:20261120",
    "LOGIN_ALL_ORG",
    "TRENDINGS_EVENTS:20261120",
    "TRENDINGS_CATEGS:20261120",
    "TRENDINGS_TAGS:20261120",
    "TRENDINGS_DISC:20261120",
    "TRENDINGS_SIGHT_sightings:20261120",
    "TRENDINGS_SIGHT_false_positive:20261120",
    "TEMP_CACHE_LIVE:Attribute",
    "TEMP_CACHE_LIVE:Map",
];

/// Keys of the dashboard's db that soft mode must keep: look-alikes, other programs' keys, the
/// database version.
const FOREIGN_DATA_KEYS: &[&str] = &[
    "db_version",
    "GEO_COORDINATES",
    "geo_coord:lowercase",
    "myapp:session:42",
    "CONTRIB_ALL_ORGS",
];

fn set(redis: &Redis, db: i64, key: &str) {
    let mut c = redis.conn(db).expect("conn");
    redis::cmd("SET")
        .arg(key)
        .arg("1")
        .query::<()>(&mut c)
        .expect("set");
}

fn exists(redis: &Redis, db: i64, key: &str) -> bool {
    let mut c = redis.conn(db).expect("conn");
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(&mut c)
        .expect("exists")
        == 1
}

fn populate(redis: &Redis) {
    for k in DASHBOARD_KEYS.iter().chain(FOREIGN_DATA_KEYS) {
        set(redis, 2, k);
    }
    // A buffer with a message, and the list db's other keys (kept: compat.md F8).
    let mut c3 = redis.conn(3).expect("db 3");
    redis::cmd("LPUSH")
        .arg("bufferList")
        .arg("{}")
        .query::<()>(&mut c3)
        .expect("lpush");
    for k in [
        "bufferList:dead",
        "MISPDASH_DISPATCH",
        "MISPDASH_FEED:misp1",
        "diagnostic_tool_response",
    ] {
        set(redis, 3, k);
    }
    set(redis, 0, "log-db-key");
    set(redis, 7, "TRENDINGS_EVENTS:20261120");
    set(redis, 7, "unrelated-app");
}

fn clean(cfg: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(cfg)
        .arg("clean")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mispdash clean")
}

fn setup(tag: &str) -> (Redis, std::path::PathBuf) {
    let redis = Redis::start();
    let dir = tmpdir(tag);
    let cfg = write_config(&dir, redis.port, "[]", &dir.join("none.mmdb"), None);
    populate(&redis);
    (redis, cfg)
}

#[test]
fn refuses_without_a_terminal_or_yes() {
    let (redis, cfg) = setup("clean-refuse");
    for args in [&[][..], &["--brutal"][..]] {
        let out = clean(&cfg, args);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not a terminal") && err.contains("--yes"),
            "{err}"
        );
    }
    for k in DASHBOARD_KEYS {
        assert!(exists(&redis, 2, k), "{k} deleted without confirmation");
    }
    assert!(exists(&redis, 3, "bufferList"));
}

#[test]
fn soft_mode_deletes_exactly_the_original_patterns() {
    let (redis, cfg) = setup("clean-soft");
    let out = clean(&cfg, &["--yes"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = DASHBOARD_KEYS.len() + 1;
    assert!(
        stdout.contains(&format!("Deleted {expected} key(s)"))
            && stdout.contains(&format!("{} in db 2", DASHBOARD_KEYS.len()))
            && stdout.contains("1 in db 3"),
        "{stdout}"
    );
    for k in DASHBOARD_KEYS {
        assert!(!exists(&redis, 2, k), "{k} survived soft clean");
    }
    assert!(!exists(&redis, 3, "bufferList"));
    for k in FOREIGN_DATA_KEYS {
        assert!(exists(&redis, 2, k), "foreign key {k} was deleted");
    }
    for k in [
        "bufferList:dead",
        "MISPDASH_DISPATCH",
        "MISPDASH_FEED:misp1",
        "diagnostic_tool_response",
    ] {
        assert!(exists(&redis, 3, k), "{k} was deleted");
    }
    assert!(exists(&redis, 0, "log-db-key"));
    assert!(
        exists(&redis, 7, "TRENDINGS_EVENTS:20261120"),
        "another database was touched"
    );

    // Idempotent: nothing left to delete.
    let out = clean(&cfg, &["--yes"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Deleted 0 key(s)"));
}

/// A non-default [RedisDB] db is cleaned where it is (the original cleans db 2 regardless).
#[test]
fn soft_mode_follows_the_configured_database() {
    let (redis, cfg) = setup("clean-db");
    let text = std::fs::read_to_string(&cfg).expect("cfg");
    std::fs::write(&cfg, text.replace("[RedisDB]\ndb = 2", "[RedisDB]\ndb = 7")).expect("cfg");
    let out = clean(&cfg, &["-y"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!exists(&redis, 7, "TRENDINGS_EVENTS:20261120"));
    assert!(exists(&redis, 7, "unrelated-app"));
    assert!(
        exists(&redis, 2, "TRENDINGS_EVENTS:20261120"),
        "db 2 is not this dashboard's"
    );
}

#[test]
fn brutal_mode_flushes_only_the_dashboards_databases() {
    let (redis, cfg) = setup("clean-brutal");
    let out = clean(&cfg, &["--brutal", "--yes"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Brutal mode") && err.contains("2, 3, 0, 1"),
        "{err}"
    );
    for db in [0, 1, 2, 3] {
        let mut c = redis.conn(db).expect("conn");
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
        assert_eq!(n, 0, "db {db} not emptied");
    }
    assert!(exists(&redis, 7, "unrelated-app"), "FLUSHALL-like damage");
    assert!(exists(&redis, 7, "TRENDINGS_EVENTS:20261120"));
}
