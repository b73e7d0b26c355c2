//! The failover drill (`bench/failover.sh`), summarised: a Redis master and replica watched by
//! three real `redis-sentinel`s, `mispdash subscribe` fed by a MISP stand-in at 200 msg/s, two
//! web nodes (`mispdash run`, one dispatcher active, one standing by) behind a real HAProxy.
//! The master is killed mid-replay.

use std::process::Command;

/// With `[RedisGlobal] wait_replicas = 1`: the Sentinels promote the replica; through HAProxy
/// the dashboard answers again within the failover time plus 5 s, the live stream delivers
/// again and each node's `/status` reads Redis again; once the old master is back (as a
/// replica) and the buffer drained, every message sent is applied, none twice.
#[test]
fn the_master_killed_mid_replay_loses_nothing_with_wait() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg("bench/failover.sh")
        .current_dir(&root)
        .env("MISPDASH_BIN", env!("CARGO_BIN_EXE_mispdash"))
        .env("WAIT_REPLICAS", "1")
        .env("WARM", "10")
        .env("AFTER", "15")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let s: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("no summary from the drill ({e}):\n{stdout}\n{stderr}"));
    assert!(out.status.success(), "the drill failed: {}", s["failures"]);
    let num = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
    let failover = num("failover_s");
    assert!(failover > 0.0, "{s}");
    assert!(num("answering_again_s") <= failover + 5.0, "{s}");
    assert!(num("stream_delivering_again_s") > 0.0, "{s}");
    // About 25 s of the feed at 200 msg/s: a replay that really ran across the failover.
    assert!(num("sent") >= 2000.0, "{s}");
    assert_eq!(num("lost"), 0.0, "{s}");
    assert_eq!((num("buffer"), num("processing")), (0.0, 0.0), "{s}");
    assert!(num("live_events") > 0.0, "{s}");
    // What an admin reads: each node's /status reads Redis, the feed and the buffer again.
    assert_eq!(num("nodes_status_ok"), 2.0, "{s}");
}
