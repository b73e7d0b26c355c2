//! SIGTERM (systemd, containers) stops mispdash as cleanly as Ctrl-C: a subscriber that holds
//! frames because Redis is down writes them to its spool, and pushes them at the next start,
//! so none is lost and none is pushed twice.

mod common;

use common::*;
use std::time::Duration;

const FRAMES: usize = 300;

fn buffered(r: &Redis) -> i64 {
    r.conn(3)
        .and_then(|mut c| redis::cmd("LLEN").arg("bufferList").query(&mut c))
        .unwrap_or(-1)
}

#[test]
fn sigterm_during_a_redis_outage_spools_the_held_frames_and_pushes_them_at_the_next_start() {
    let dir = tmpdir("sigterm-spool");
    let data_dir = dir.join("data");
    let mut redis = Redis::start();
    let zport = free_port();
    let endpoint = format!("tcp://127.0.0.1:{zport}");
    let cfg = write_config(&dir, redis.port, "[]", &oracle_mmdb(), None);
    let args = [
        "subscribe",
        "-n",
        "misp1",
        "-u",
        endpoint.as_str(),
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
    ];
    let mut sub = Mispdash::start(&cfg, &args, &dir.join("subscribe-1.log"));
    redis.kill();
    let corpus = shared().join("corpus/seed2.jsonl");
    publish_corpus(
        &corpus,
        &endpoint,
        &["--limit", &FRAMES.to_string(), "--linger", "2"],
    );
    let status = sub.terminate();
    assert!(
        status.success(),
        "a SIGTERM stop exits 0, got {status}:\n{}",
        sub.log_text()
    );
    let log = sub.log_text();
    assert!(
        log.contains("pushed at the next start"),
        "the stop says where the held frames went:\n{log}"
    );
    let spool = data_dir.join("spool/misp1.spool.jsonl");
    assert!(spool.exists(), "spool file written:\n{log}");
    // MISP's messages are private: 0700 directory, 0600 file, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(spool.parent().expect("dir")), 0o700);
    assert_eq!(mode(&spool), 0o600);

    redis.restart();
    let mut sub2 = Mispdash::start(&cfg, &args, &dir.join("subscribe-2.log"));
    let want = FRAMES as i64 + 1; // and the sentinel
    let arrived = wait_until(Duration::from_secs(30), || buffered(&redis) >= want);
    assert!(
        arrived,
        "only {} of {want} frames reached the buffer:\n{}",
        buffered(&redis),
        sub2.log_text()
    );
    // Nothing more arrives later (a duplicate would).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(buffered(&redis), want, "no frame pushed twice");
    assert!(!spool.exists(), "the spool is removed once loaded");
    assert!(
        sub2.log_text().contains("pushed first"),
        "the start says it replays the spool:\n{}",
        sub2.log_text()
    );
    let status = sub2.terminate();
    assert!(status.success(), "{}", sub2.log_text());
}

/// What `mispdash run` says when it starts on an empty Redis: one line for the embedded pages
/// (not one per file), and the database version it sets as information, not a warning (a new
/// installation is nothing to worry about).
#[test]
fn a_start_on_an_empty_redis_logs_what_matters_once() {
    let dir = tmpdir("start-log");
    let redis = Redis::start();
    let cfg = write_config(&dir, redis.port, "[]", &oracle_mmdb(), None);
    let text = std::fs::read_to_string(&cfg).expect("config");
    let port: u16 = text
        .lines()
        .find_map(|l| l.strip_prefix("port = "))
        .and_then(|p| p.parse().ok())
        .expect("the server's port");
    let mut md = Mispdash::start(
        &cfg,
        &["run", "--no-subscribers", "--no-managed-redis"],
        &dir.join("run.log"),
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            md.log_text().contains("database version set to 1")
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "mispdash did not start:\n{}",
        md.log_text()
    );
    assert!(md.terminate().success());
    let log = md.log_text();
    let pages: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("embedded file(s) served"))
        .collect();
    assert_eq!(pages.len(), 1, "one line for the pages:\n{log}");
    assert!(
        !log.contains("memory_serve"),
        "no line per embedded file:\n{log}"
    );
    let version = log
        .lines()
        .find(|l| l.contains("database version set to 1"))
        .expect("the version line");
    assert!(
        version.contains("INFO") && !version.contains("WARN"),
        "{version}"
    );
}
