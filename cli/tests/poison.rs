//! A message that cannot be committed must not block the dashboard, nor make it crash-loop:
//! it is tried `[mispdash] max_attempts` times, counted across restarts, then set aside in the
//! dead-letter list with its reason, the messages behind it are applied, and nothing is applied
//! twice; `mispdash dead-letters requeue` hands it back once the cause is gone.
//!
//! The crash is real: the dispatcher is killed with SIGKILL while it applies one large
//! published event (it takes seconds to handle in a debug build), again and again, as an
//! out-of-memory abort would kill it every time it tried that message.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const MESSAGES: usize = 300;
const POISON_AT: usize = 150;

fn frame_of(line: &str) -> String {
    let v: Value = serde_json::from_str(line).expect("corpus line");
    format!(
        "{} {}",
        v["topic"].as_str().expect("topic"),
        serde_json::to_string(&v["payload"]).expect("payload")
    )
}

fn big_event(dir: &Path) -> String {
    let out = dir.join("big.jsonl");
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/big_event.py");
    let status = Command::new(python())
        .arg(gen)
        .args(["--attributes", "20000", "--bytes", "10000000", "-o"])
        .arg(&out)
        .status()
        .expect("run big_event.py");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("big event");
    frame_of(text.lines().next().expect("one line"))
}

fn envelopes(poison: Option<&str>) -> Vec<String> {
    let text = std::fs::read_to_string(shared().join("corpus/seed2.jsonl")).expect("seed2");
    let mut out: Vec<String> = text
        .lines()
        .take(MESSAGES)
        .map(|l| mispdash_core::feed::envelope("misp1", &frame_of(l)))
        .collect();
    if let Some(frame) = poison {
        out.insert(POISON_AT, mispdash_core::feed::envelope("misp1", frame));
    }
    out
}

/// A Redis with the buffer filled, oldest at the consumer's end.
fn prepared(poison: Option<&str>) -> Redis {
    let redis = Redis::start();
    let mut c = redis.conn(3).expect("redis");
    for e in envelopes(poison) {
        redis::cmd("LPUSH")
            .arg("bufferList")
            .arg(e)
            .query::<()>(&mut c)
            .expect("LPUSH");
    }
    redis
}

fn llen(r: &Redis, key: &str) -> i64 {
    r.conn(3)
        .and_then(|mut c| redis::cmd("LLEN").arg(key).query(&mut c))
        .unwrap_or(-1)
}

fn drained(r: &Redis) -> bool {
    llen(r, "bufferList") + llen(r, "bufferList:processing") == 0
}

fn big_in_processing(r: &Redis) -> bool {
    r.conn(3)
        .and_then(|mut c| {
            redis::cmd("LRANGE")
                .arg("bufferList:processing")
                .arg(0)
                .arg(-1)
                .query::<Vec<Vec<u8>>>(&mut c)
        })
        .is_ok_and(|items| items.iter().any(|i| i.len() > 1 << 20))
}

fn dispatcher(cfg: &Path, log: &Path) -> Mispdash {
    Mispdash::start(
        cfg,
        &[
            "run",
            "--no-subscribers",
            "--no-managed-redis",
            "--no-server",
        ],
        log,
    )
}

/// SIGKILL, and the lease of the killed dispatcher given up for it: a new one would wait for
/// its expiry otherwise (the takeover is `reliability.rs`'s business).
fn kill(d: &mut Mispdash, r: &Redis) {
    d.kill9();
    if let Ok(mut c) = r.conn(3) {
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg("MISPDASH_DISPATCHER_LEASE")
            .query(&mut c);
    }
}

fn mispdash(cfg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env("MISPDASH_FAKE_NOW", ORACLE_NOW)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output()
        .expect("run mispdash")
}

/// Attempts counted for the message `envelope` (by its SHA-256, as the dispatcher keys them).
fn attempts(r: &Redis, envelope: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(envelope.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    r.conn(3)
        .and_then(|mut c| {
            redis::cmd("HGET")
                .arg("MISPDASH_ATTEMPTS")
                .arg(digest)
                .query::<Option<i64>>(&mut c)
        })
        .ok()
        .flatten()
        .unwrap_or(0)
}

fn attempts_left(r: &Redis) -> i64 {
    r.conn(3)
        .and_then(|mut c| redis::cmd("HLEN").arg("MISPDASH_ATTEMPTS").query(&mut c))
        .unwrap_or(-1)
}

#[test]
fn a_message_that_kills_the_dispatcher_every_time_is_set_aside_after_its_attempts() {
    let dir = tmpdir("poison");
    let poison = big_event(&dir);
    let poison_envelope = mispdash_core::feed::envelope("misp1", &poison);
    // What one dispatcher makes of the same messages without the poison.
    let reference = prepared(None);
    let ref_cfg = write_config(&dir, reference.port, "[]", &oracle_mmdb(), None);
    let mut d = dispatcher(&ref_cfg, &dir.join("reference.log"));
    assert!(wait_until(Duration::from_secs(60), || drained(&reference)));
    d.kill9();
    let expected = dump_without_own_keys(reference.port, &dir, "reference");

    let redis = prepared(Some(&poison));
    let pdir = dir.join("poisoned");
    std::fs::create_dir_all(&pdir).expect("dir");
    let cfg = write_config(&pdir, redis.port, "[]", &oracle_mmdb(), None);

    // First crash: in the middle of the batch that holds it.
    let mut d = dispatcher(&cfg, &pdir.join("run0.log"));
    assert!(
        wait_until(Duration::from_secs(60), || big_in_processing(&redis)),
        "{}",
        d.log_text()
    );
    std::thread::sleep(Duration::from_millis(100));
    kill(&mut d, &redis);
    assert!(
        big_in_processing(&redis),
        "the kill came after the large event was committed: nothing was tested"
    );
    // Then at each attempt, counted in Redis before the attempt begins.
    for k in 1..=3 {
        let mut d = dispatcher(&cfg, &pdir.join(format!("run{k}.log")));
        assert!(
            wait_until(Duration::from_secs(60), || attempts(
                &redis,
                &poison_envelope
            ) >= k),
            "attempt {k} never began:\n{}",
            d.log_text()
        );
        assert_eq!(attempts(&redis, &poison_envelope), k, "one attempt per run");
        kill(&mut d, &redis);
        assert!(big_in_processing(&redis), "killed during attempt {k}");
    }
    // The next run sets it aside and applies everything behind it.
    let mut d = dispatcher(&cfg, &pdir.join("run4.log"));
    assert!(
        wait_until(Duration::from_secs(60), || drained(&redis)),
        "the messages behind the poison were not applied:\n{}",
        d.log_text()
    );
    let log = d.log_text();
    d.kill9();
    assert!(
        log.contains("set aside in the dead-letter list"),
        "the log says so:\n{log}"
    );

    let mut c = redis.conn(3).expect("redis");
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg("bufferList:dead")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("LRANGE");
    assert_eq!(dead.len(), 1, "only the poison is set aside");
    let letter: Value = serde_json::from_str(&dead[0]).expect("JSON dead letter");
    let reason = letter["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("not committed in 3 attempts") && reason.contains("stopped or crashed"),
        "the reason says why: {reason}"
    );
    assert!(letter["entry"]
        .as_str()
        .unwrap_or("")
        .contains("Large published event"));
    assert_eq!(attempts_left(&redis), 0, "no attempt count is left behind");

    // Everything else applied exactly once: the keyspace is the reference's.
    let actual = dump_without_own_keys(redis.port, &pdir, "actual");
    // The dead letter itself is the one expected difference.
    let mut v = read_json(&actual);
    let dropped = strip_keys(&mut v, |_, k| k.starts_with("bufferList:dead"));
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    write_json(&actual, &v);
    let (same, diff) = compare("redis", &expected, &actual);
    assert!(
        same,
        "keyspace differs from the run without the poison:\n{diff}"
    );

    // The admin sees it and hands it back (here, to a dispatcher left alone to finish it).
    let out = mispdash(&cfg, &["dead-letters", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let listed: Value =
        serde_json::from_str(stdout.lines().next().expect("one line")).expect("JSON line");
    assert_eq!(listed["index"], 0);
    assert_eq!(listed["topic"], "misp_json");
    assert_eq!(listed["requeueable"], true);
    let out = mispdash(&cfg, &["dead-letters", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("misp1") && text.contains("not committed in 3 attempts"),
        "{text}"
    );
    let out = mispdash(&cfg, &["dead-letters", "requeue", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(llen(&redis, "bufferList:dead"), 0);
    assert_eq!(llen(&redis, "bufferList"), 1);
    let mut d = dispatcher(&cfg, &pdir.join("run5.log"));
    assert!(wait_until(Duration::from_secs(60), || drained(&redis)));
    d.kill9();
    assert_eq!(llen(&redis, "bufferList:dead"), 0, "applied this time");
    let mut data = redis.conn(2).expect("redis");
    let info: Option<f64> = redis::cmd("ZSCORE")
        .arg("TRENDINGS_EVENTS:20261120")
        .arg("Large published event (20000 attributes)")
        .query(&mut data)
        .expect("ZSCORE");
    assert_eq!(info, Some(1.0), "the requeued event was applied once");
}

/// A reason is cut, so a huge topic name cannot make a huge dead letter beyond the message.
#[test]
fn a_huge_unknown_topic_gives_a_short_reason() {
    let dir = tmpdir("poison-topic");
    let redis = Redis::start();
    let cfg = write_config(&dir, redis.port, "[]", &oracle_mmdb(), None);
    let topic = "x".repeat(5 << 20);
    let mut c = redis.conn(3).expect("redis");
    redis::cmd("LPUSH")
        .arg("bufferList")
        .arg(mispdash_core::feed::envelope(
            "misp1",
            &format!("{topic} {{}}"),
        ))
        .query::<()>(&mut c)
        .expect("LPUSH");
    let mut d = dispatcher(&cfg, &dir.join("run.log"));
    assert!(wait_until(Duration::from_secs(30), || llen(
        &redis,
        "bufferList:dead"
    ) == 1));
    let log = d.log_text();
    d.kill9();
    let dead: String = redis::cmd("LINDEX")
        .arg("bufferList:dead")
        .arg(0)
        .query(&mut c)
        .expect("LINDEX");
    let v: Value = serde_json::from_str(&dead).expect("JSON");
    let reason = v["reason"].as_str().unwrap_or("");
    assert!(reason.len() < 2000, "reason of {} bytes", reason.len());
    assert!(
        dead.len() < (5 << 20) + 4096,
        "the letter holds the message once: {} bytes",
        dead.len()
    );
    assert!(log.len() < 64 << 10, "the log holds {} bytes", log.len());
}

/// A key of the wrong type planted in Redis makes Redis refuse one write of a message inside
/// its transaction while running the rest: the message is filed as a partial dead letter that
/// names the refused write, the other messages are applied, and nothing twice.
#[test]
fn a_write_redis_refuses_inside_a_batch_names_its_message() {
    refused_write_is_named("poison-wrongtype", "");
}

/// The same with every message over the large-message threshold: each is then handled by the
/// committing thread and committed alone, its publications spilled and its trendings added up
/// (see `rules::Ctx::op`); the refused write still names it and the rest is applied once.
#[test]
fn a_refused_write_of_a_large_message_names_it_too() {
    refused_write_is_named(
        "poison-wrongtype-large",
        "\n[mispdash]\nlarge_message_bytes = 100\n",
    );
}

fn refused_write_is_named(tag: &str, extra_cfg: &str) {
    let dir = tmpdir(tag);
    let poison = serde_json::json!({
        "Attribute": {"id": "99", "type": "text", "category": "Poison Test",
                      "value": "poison", "object_id": "0", "timestamp": "1795174470",
                      "to_ids": false, "event_id": "7"},
        "Event": {"id": "7", "info": "poison", "Orgc": {"name": "Poison Org"}},
    });
    let frame = format!("misp_json_attribute {poison}");
    let run = |tag: &str, plant: bool| {
        let redis = prepared(Some(&frame));
        if plant {
            let mut data = redis.conn(2).expect("redis");
            redis::cmd("SET")
                .arg("CONTRIB_TROPHY:poison_test")
                .arg("not a sorted set")
                .query::<()>(&mut data)
                .expect("SET");
        }
        let d_dir = dir.join(tag);
        std::fs::create_dir_all(&d_dir).expect("dir");
        let cfg = write_config(&d_dir, redis.port, "[]", &oracle_mmdb(), None);
        let mut text = std::fs::read_to_string(&cfg).expect("config");
        text.push_str(extra_cfg);
        std::fs::write(&cfg, text).expect("config");
        let mut d = dispatcher(&cfg, &d_dir.join("run.log"));
        // The partial dead letter is written right after the batch's transaction.
        let letters = if plant { 1 } else { 0 };
        assert!(
            wait_until(Duration::from_secs(60), || drained(&redis)
                && llen(&redis, "bufferList:dead") == letters),
            "{}",
            d.log_text()
        );
        let log = d.log_text();
        d.kill9();
        let dump = dump_without_own_keys(redis.port, &d_dir, "dump");
        let mut v = read_json(&dump);
        strip_keys(&mut v, |_, k| {
            k.starts_with("bufferList:dead") || k == "CONTRIB_TROPHY:poison_test"
        });
        write_json(&dump, &v);
        (redis, dump, log)
    };
    let (_reference, expected, _) = run("reference", false);
    let (redis, actual, log) = run("planted", true);
    assert!(log.contains("Redis refused 1 write(s)"), "{log}");
    let mut c = redis.conn(3).expect("redis");
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg("bufferList:dead")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("LRANGE");
    assert_eq!(dead.len(), 1, "only the poison's message: {dead:?}\n{log}");
    let letter: Value = serde_json::from_str(&dead[0]).expect("JSON");
    assert_eq!(letter["applied"], "partial");
    let reason = letter["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("CONTRIB_TROPHY:poison_test") && reason.contains("WRONGTYPE"),
        "{reason}"
    );
    assert!(letter["entry"]
        .as_str()
        .unwrap_or("")
        .contains("Poison Org"));
    let (same, diff) = compare("redis", &expected, &actual);
    assert!(
        same,
        "everything but the refused write applied once:\n{diff}"
    );
}
