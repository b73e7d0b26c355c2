//! A large published MISP event must neither exhaust memory nor stop the dashboard: one
//! `misp_json` event of 20,000 attributes (about 10 MB) goes through a real ZeroMQ publisher
//! into `mispdash run` (web server on) limited to 512 MiB of address space, then one small
//! message. Both must be applied in full, and the live log must hold its entries without the
//! original's quadratic copies of the event.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const ATTRIBUTES: usize = 20_000;
const OBJECTS: usize = 50;
const LIMIT_BYTES: u64 = 512 << 20;

fn generate(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("big.jsonl");
    let gen = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/big_event.py");
    let status = Command::new(python())
        .arg(gen)
        .args(["--attributes", &ATTRIBUTES.to_string()])
        .args(["--bytes", "10000000", "--objects", &OBJECTS.to_string()])
        .arg("--then-small")
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run big_event.py");
    assert!(status.success(), "big_event.py failed");
    out
}

/// `mispdash run` with its address space limited, as `ulimit -v` would.
fn start_limited(cfg: &std::path::Path, log: &std::path::Path) -> Mispdash {
    let logf = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mispdash"));
    cmd.arg("--config")
        .arg(cfg)
        .args(["run", "--no-managed-redis"])
        .env("TZ", "UTC")
        .env("MISPDASH_LOG", "info")
        .env("MISPDASH_FAKE_NOW", ORACLE_NOW)
        .stdout(Stdio::null())
        .stderr(logf);
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: LIMIT_BYTES,
                rlim_max: LIMIT_BYTES,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Mispdash {
        child: cmd.spawn().expect("start mispdash"),
        log: log.to_path_buf(),
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn a_20000_attribute_event_is_applied_within_bounded_memory() {
    let dir = tmpdir("large-event");
    let corpus = generate(&dir);
    let redis = Redis::start();
    let zport = free_port();
    let instances = format!(
        r#"[{{"name": "misp1", "url": "http://localhost", "zmq": "tcp://127.0.0.1:{zport}"}}]"#
    );
    let cfg = write_config(&dir, redis.port, &instances, &oracle_mmdb(), None);
    let mut md = start_limited(&cfg, &dir.join("mispdash.log"));
    publish_corpus(&corpus, &format!("tcp://127.0.0.1:{zport}"), &[]);
    let mut list = redis.conn(3).expect("redis");
    let messages = |c: &mut redis::Connection| {
        redis::cmd("HGET")
            .arg("MISPDASH_DISPATCH")
            .arg("messages")
            .query::<Option<i64>>(c)
            .ok()
            .flatten()
            .unwrap_or(0)
    };
    // The large event, the small attribute after it, the sentinel keepalive.
    let done = wait_until(Duration::from_secs(240), || {
        !md.is_running() || messages(&mut list) >= 3
    });
    assert!(
        md.is_running(),
        "mispdash died on the large event:\n{}",
        md.log_text()
    );
    assert!(
        done,
        "the messages were not all applied:\n{}",
        md.log_text()
    );
    let pid = md.child.id();
    let hwm = status_kib(pid, "VmHWM:");
    eprintln!(
        "large event: mispdash peak RSS {} MiB (limit on address space {} MiB)",
        hwm / 1024,
        LIMIT_BYTES >> 20
    );

    let mut data = redis.conn(2).expect("redis");
    let dead: i64 = redis::cmd("LLEN")
        .arg("bufferList:dead")
        .query(&mut list)
        .expect("LLEN");
    assert_eq!(dead, 0, "nothing is dead-lettered:\n{}", md.log_text());

    // Trendings: every attribute (and object attribute) counted once, per category.
    let day = "20261120"; // the event's timestamp 1795174470, UTC
    let categs: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(format!("TRENDINGS_CATEGS:{day}"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut data)
        .expect("ZRANGE");
    let total: f64 = categs.iter().map(|(_, s)| s).sum();
    assert_eq!(
        total as usize,
        ATTRIBUTES + 2 * OBJECTS + 1,
        "categories counted for every attribute, object attribute and the small message: {categs:?}"
    );

    // Contributions: the event's organisation earned one per attribute (compatible scoring:
    // a published event counts its attributes), the small message's its own.
    let points = |org: &str, c: &mut redis::Connection| -> i64 {
        redis::cmd("GET")
            .arg(format!("CONTRIB_ORG:{org}:points"))
            .query::<Option<String>>(c)
            .ok()
            .flatten()
            .and_then(|p| p.parse::<f64>().ok())
            .unwrap_or(0.0) as i64
    };
    let big = points("Big Event CERT", &mut data);
    assert!(
        big >= (ATTRIBUTES + 2 * OBJECTS) as i64,
        "the event's organisation got its points ({big})"
    );
    assert!(points("Small After CERT", &mut data) > 0);

    // The live log: 101 entries, the newest the small message, the others the event's last
    // attributes, each carrying the event without its attribute list.
    let entries: Vec<String> = redis::cmd("LRANGE")
        .arg("TEMP_CACHE_LIVE:Attribute")
        .arg(0)
        .arg(-1)
        .query(&mut data)
        .expect("LRANGE");
    assert_eq!(entries.len(), 101);
    let newest: Value = serde_json::from_str(&entries[0]).expect("JSON entry");
    assert_eq!(
        newest["log"]["Attribute"]["value"], "after.big-event.test",
        "the message after the large event is applied: {newest}"
    );
    let bytes: usize = entries.iter().map(String::len).sum();
    for e in &entries[1..] {
        let v: Value = serde_json::from_str(e).expect("JSON entry");
        let event = &v["log"]["Event"];
        assert_eq!(event["info"], "Large published event (20000 attributes)");
        assert!(
            event.get("Attribute").is_none() && event.get("Object").is_none(),
            "a large event's entry carries the event without its lists"
        );
        assert!(v["log"]["Attribute"]["value"].is_string());
    }
    assert!(
        bytes < 1 << 20,
        "the live cache holds {bytes} bytes for 101 entries"
    );
    let processing: i64 = redis::cmd("LLEN")
        .arg("bufferList:processing")
        .query(&mut list)
        .expect("LLEN");
    assert_eq!(processing, 0);
}
