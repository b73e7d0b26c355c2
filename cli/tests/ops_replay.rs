//! `mispdash record` and `mispdash replay`: a feed recorded from a real ZeroMQ publisher and
//! replayed fills the buffer with exactly the entries the live subscriber wrote, and so does
//! the generated corpus replayed directly.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn list(redis: &Redis, key: &str) -> Vec<String> {
    let mut c = redis.conn(3).expect("db 3");
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("lrange")
}

/// Dead letters without their time of filing.
fn dead_frames(redis: &Redis) -> Vec<(String, String)> {
    list(redis, "bufferList:dead")
        .iter()
        .map(|d| {
            let v: Value = serde_json::from_str(d).expect("dead letter json");
            (
                v["zmq_name"].as_str().unwrap_or("").to_string(),
                v["frame_b64"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn replay_into(cfg: &Path, corpus: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(cfg)
        .args(["replay", "--name", "misp1"])
        .arg(corpus)
        .output()
        .expect("run replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn record_then_replay_gives_the_subscribers_buffer() {
    let corpus = shared().join("corpus/seed1.jsonl");
    let lines = std::fs::read_to_string(&corpus)
        .expect("seed1")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let dir = tmpdir("record");
    let zport = free_port();
    let instances = format!(
        r#"[{{"name": "misp1", "url": "http://localhost", "zmq": "tcp://127.0.0.1:{zport}"}}]"#
    );
    let mmdb = dir.join("none.mmdb");

    // The reference: the live subscriber's buffer.
    let live = Redis::start();
    let live_cfg = write_config(&dir, live.port, &instances, &mmdb, None);
    let _sub = Mispdash::start(
        &live_cfg,
        &[
            "subscribe",
            "-n",
            "misp1",
            "-u",
            &format!("tcp://127.0.0.1:{zport}"),
        ],
        &dir.join("subscribe.log"),
    );
    let recording = dir.join("recorded.jsonl");
    let mut recorder = Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(&live_cfg)
        .args([
            "record",
            "--duration",
            "120",
            "--count",
            &lines.to_string(),
            "-o",
        ])
        .arg(&recording)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start record");
    let out = tool(
        "zmq_replay.py",
        &[
            corpus.to_str().expect("path"),
            "--bind",
            &format!("tcp://127.0.0.1:{zport}"),
            "--wait-subscribers",
            "2",
            "--quiet",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = wait_child(&mut recorder, Duration::from_secs(60), "mispdash record");
    assert!(st.success());
    let recorded = std::fs::read_to_string(&recording).expect("recording");
    assert_eq!(recorded.lines().count(), lines, "one line per frame");
    assert!(
        wait_until(Duration::from_secs(30), || {
            list(&live, "bufferList").len() + dead_frames(&live).len() == lines
        }),
        "the subscriber buffered {} of {lines}",
        list(&live, "bufferList").len()
    );
    let reference = list(&live, "bufferList");

    // The recording, replayed.
    let from_recording = Redis::start();
    let d2 = tmpdir("record-replay");
    let cfg2 = write_config(&d2, from_recording.port, "[]", &mmdb, None);
    let summary = replay_into(&cfg2, &recording);
    assert!(
        summary.contains(&format!("Pushed {} message(s)", reference.len())),
        "{summary}"
    );
    assert_eq!(list(&from_recording, "bufferList"), reference);
    assert_eq!(dead_frames(&from_recording), dead_frames(&live));
    assert!(
        !dead_frames(&live).is_empty(),
        "seed1 has frames that are not UTF-8: they must be part of the round trip"
    );

    // The generated corpus, replayed directly (payload lines re-serialised as the publisher
    // tool does).
    let direct = Redis::start();
    let d3 = tmpdir("corpus-replay");
    let cfg3 = write_config(&d3, direct.port, "[]", &mmdb, None);
    replay_into(&cfg3, &corpus);
    assert_eq!(list(&direct, "bufferList"), reference);
    assert_eq!(dead_frames(&direct), dead_frames(&live));
}

#[test]
fn replay_paces_with_rate_and_reports_bad_lines() {
    let redis = Redis::start();
    let dir = tmpdir("replay-rate");
    let cfg = write_config(&dir, redis.port, "[]", &dir.join("none.mmdb"), None);
    let corpus = dir.join("five.jsonl");
    let line = r#"{"topic": "misp_json_self", "payload": {"status": "ok", "uptime": 1}}"#;
    std::fs::write(&corpus, format!("{line}\n").repeat(5)).expect("write");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(&cfg)
        .args(["replay", "--rate", "10"])
        .arg(&corpus)
        .output()
        .expect("replay");
    assert!(out.status.success());
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "5 messages at 10/s take 0.4 s at least"
    );
    let entries = list(&redis, "bufferList");
    assert_eq!(entries.len(), 5);
    assert_eq!(
        entries[0],
        r#"{"zmq_name": "replay", "content": "misp_json_self {\"status\":\"ok\",\"uptime\":1}"}"#
    );

    std::fs::write(&corpus, format!("{line}\n{{\"topic\": 5}}\n")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(&cfg)
        .arg("replay")
        .arg(&corpus)
        .output()
        .expect("replay");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("five.jsonl: line 2"), "{err}");
}
