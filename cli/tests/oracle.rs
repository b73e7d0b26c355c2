//! Differential tests against the original dashboard's recorded behaviour (`../shared/corpus`):
//! the corpus is replayed through a real ZeroMQ publisher into `mispdash run`, and what it
//! leaves in a real Redis and publishes is compared with the oracle.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Keys of the gamification issue, not written yet by the ingest core.
fn is_contrib(key: &str) -> bool {
    key.starts_with("CONTRIB_")
}
const CONTRIB_CHANNELS: [&str; 2] = ["lastContributor", "lastAwards"];

/// mispdash's own bookkeeping in the list db, which the original does not have.
fn is_own_key(key: &str) -> bool {
    key.starts_with("MISPDASH_")
}

pub struct Replay {
    pub dir: PathBuf,
    pub redis_dump: PathBuf,
    pub pubsub: PathBuf,
    pub redis: Redis,
    pub mispdash: Mispdash,
}

/// Replays `corpus` into a fresh mispdash + Redis under the oracle's conditions.
pub fn replay(corpus: &Path, tag: &str) -> Replay {
    let dir = tmpdir(tag);
    let redis = Redis::start();
    let zport = free_port();
    let instances = format!(
        r#"[{{"name": "misp1", "url": "http://localhost", "zmq": "tcp://127.0.0.1:{zport}"}}]"#
    );
    let cfg = write_config(
        &dir,
        redis.port,
        &instances,
        &oracle_mmdb(),
        Some(&shared().join("data/country_code_lat_long.json")),
    );
    let pubsub = dir.join("pubsub.jsonl");
    let port = redis.port.to_string();
    let mut recorder = tool_bg(
        "redis_pubsub_record.py",
        &[
            "--port",
            &port,
            "--until-sentinel",
            "--timeout",
            "600",
            "-o",
            pubsub.to_str().expect("utf-8 path"),
        ],
    );
    // The recorder must be subscribed before anything is published.
    assert!(wait_until(Duration::from_secs(10), || {
        redis
            .conn(0)
            .ok()
            .and_then(|mut c| redis::cmd("PUBSUB").arg("NUMPAT").query::<i64>(&mut c).ok())
            .is_some_and(|n| n >= 1)
    }));
    let mut mispdash = Mispdash::start(
        &cfg,
        &["run", "--no-managed-redis"],
        &dir.join("mispdash.log"),
    );
    let bind = format!("tcp://127.0.0.1:{zport}");
    let out = tool(
        "zmq_replay.py",
        &[
            corpus.to_str().expect("utf-8 path"),
            "--bind",
            &bind,
            "--sentinel",
            "--quiet",
            "--wait-timeout",
            "60",
        ],
    );
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_child(
        &mut recorder,
        Duration::from_secs(600),
        "the pub/sub recorder (sentinel never published)",
    );
    assert!(
        mispdash.is_running(),
        "mispdash died:\n{}",
        mispdash.log_text()
    );
    let redis_dump = dir.join("redis.json");
    let out = tool(
        "redis_dump.py",
        &[
            "--port",
            &port,
            "-o",
            redis_dump.to_str().expect("utf-8 path"),
        ],
    );
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Replay {
        dir,
        redis_dump,
        pubsub,
        redis,
        mispdash,
    }
}

#[test]
fn seed2_matches_the_original_byte_for_byte() {
    let corpus = shared().join("corpus");
    let r = replay(&corpus.join("seed2.jsonl"), "seed2");

    let mut actual = read_json(&r.redis_dump);
    let stray = strip_keys(&mut actual, |_, k| is_contrib(k));
    assert!(
        stray.is_empty(),
        "CONTRIB keys belong to the gamification engine: {stray:?}"
    );
    let own = strip_keys(&mut actual, |_, k| is_own_key(k));
    assert!(
        own.iter().any(|k| k == "3:MISPDASH_FEED:misp1"),
        "feed status missing: {own:?}"
    );
    let dump = actual.to_string();
    assert!(
        !dump.contains("bufferList:dead"),
        "seed2 has no malformed message, yet something was dead-lettered:\n{}",
        r.mispdash.log_text()
    );
    let mut expected = read_json(&corpus.join("seed2.redis.json"));
    strip_keys(&mut expected, |_, k| is_contrib(k));
    let (e, a) = (
        r.dir.join("expected.redis.json"),
        r.dir.join("actual.redis.json"),
    );
    write_json(&e, &expected);
    write_json(&a, &actual);
    let (same, diff) = compare("redis", &e, &a);
    assert!(same, "Redis keyspace differs from the original's:\n{diff}");

    let actual_ps = read_pubsub(&r.pubsub);
    assert!(
        !actual_ps
            .iter()
            .any(|m| CONTRIB_CHANNELS.contains(&m["channel"].as_str().unwrap_or(""))),
        "contribution channels belong to the gamification engine"
    );
    let expected_ps: Vec<Value> = read_pubsub(&corpus.join("seed2.pubsub.jsonl.gz"))
        .into_iter()
        .filter(|m| !CONTRIB_CHANNELS.contains(&m["channel"].as_str().unwrap_or("")))
        .collect();
    let (e, a) = (
        r.dir.join("expected.pubsub.jsonl"),
        r.dir.join("actual.pubsub.jsonl"),
    );
    write_pubsub(&e, &expected_ps);
    write_pubsub(&a, &actual_ps);
    let (same, diff) = compare("pubsub", &e, &a);
    assert!(same, "pub/sub differs from the original's:\n{diff}");
}
