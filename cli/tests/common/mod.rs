//! Real parts for the integration tests: a `redis-server` on a free loopback port, the
//! `mispdash` binary as a child process, and the shared oracle tools. Every guard kills what it
//! started when dropped, so a failing test leaves nothing behind.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use mispdash_testkit::{free_port, tmpdir, wait_until, Redis};

/// The clock the oracle was recorded with.
pub const ORACLE_NOW: &str = "1795176000";

/// `../shared` beside the checkout.
pub fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    assert!(
        p.join("corpus").is_dir(),
        "the shared reference folder is missing at {} (it lives beside the checkout)",
        p.display()
    );
    p
}

pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The GeoLite2 City database the oracle was recorded with (pip `maxminddb-geolite2==2018.703`,
/// installed by `scripts/setup.sh test`).
pub fn oracle_mmdb() -> PathBuf {
    if let Ok(p) = std::env::var("MISPDASH_TEST_MMDB") {
        return PathBuf::from(p);
    }
    let out = Command::new(python())
        .args([
            "-c",
            "import _maxminddb_geolite2,os;print(os.path.join(os.path.dirname(_maxminddb_geolite2.__file__),'GeoLite2-City.mmdb'))",
        ])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the oracle's GeoLite2 database is not installed: run scripts/setup.sh test ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Writes a config.cfg in the original's layout for a test.
pub fn write_config(
    dir: &Path,
    redis_port: u16,
    instances: &str,
    mmdb: &Path,
    centroids: Option<&Path>,
) -> PathBuf {
    let centroid_line = centroids
        .map(|p| format!("path_countrycode_to_coord_JSON = {}\n", p.display()))
        .unwrap_or_default();
    let text = format!(
        "[Server]\nhost = 127.0.0.1\nport = {}\n\n[RedisGlobal]\nhost = 127.0.0.1\nport = {redis_port}\nmisp_web_url = http://0.0.0.0\nmisp_instances = {instances}\n\n[RedisLIST]\ndb = 3\nlistName = bufferList\n\n[RedisLog]\ndb = 0\nchannel = 1\n\n[RedisMap]\ndb = 1\nchannelDisp = PicToDisplay\npathMaxMindDB = {}\n{centroid_line}\n[RedisDB]\ndb = 2\ndbVersion = db_version\n",
        free_port(),
        mmdb.display(),
    );
    let p = dir.join("config.cfg");
    std::fs::write(&p, text).expect("write config");
    p
}

/// A running `mispdash` process.
pub struct Mispdash {
    pub child: Child,
    pub log: PathBuf,
}

impl Mispdash {
    /// Starts mispdash with the oracle's pinned clock.
    pub fn start(config: &Path, args: &[&str], log: &Path) -> Mispdash {
        Self::start_with(config, args, log, true)
    }

    /// Starts mispdash, with the oracle's pinned clock or (`pinned = false`) the real one.
    pub fn start_with(config: &Path, args: &[&str], log: &Path, pinned: bool) -> Mispdash {
        Self::start_logging(config, args, log, pinned, "info")
    }

    /// [`Mispdash::start_with`] at another log level (`MISPDASH_LOG`, e.g. `trace`).
    pub fn start_logging(
        config: &Path,
        args: &[&str],
        log: &Path,
        pinned: bool,
        level: &str,
    ) -> Mispdash {
        let logf = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mispdash"));
        cmd.arg("--config")
            .arg(config)
            .args(args)
            .env("TZ", "UTC")
            .env("MISPDASH_LOG", level)
            .stdout(Stdio::null())
            .stderr(logf);
        if pinned {
            cmd.env("MISPDASH_FAKE_NOW", ORACLE_NOW);
        } else {
            cmd.env_remove("MISPDASH_FAKE_NOW");
        }
        let child = cmd.spawn().expect("start mispdash");
        Mispdash {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Starts mispdash in the time zone `tz` with its clock pinned at `now`.
    pub fn start_in_zone(
        config: &Path,
        args: &[&str],
        log: &Path,
        tz: &str,
        now: &str,
    ) -> Mispdash {
        let logf = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_mispdash"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env("TZ", tz)
            .env("MISPDASH_FAKE_NOW", now)
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start mispdash");
        Mispdash {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as systemd stops it, and its exit status once it ended.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM)");
        wait_child(
            &mut self.child,
            Duration::from_secs(30),
            "mispdash after SIGTERM",
        )
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Mispdash {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a tool of `../shared/tools` and returns its status; stderr and stdout are captured to
/// the panic message on failure when `check` is set.
pub fn tool(name: &str, args: &[&str]) -> std::process::Output {
    Command::new(python())
        .arg(shared().join("tools").join(name))
        .args(args)
        .output()
        .expect("run a shared tool")
}

/// Starts a tool in the background.
pub fn tool_bg(name: &str, args: &[&str]) -> Child {
    Command::new(python())
        .arg(shared().join("tools").join(name))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run a shared tool")
}

/// Waits for a child with a deadline; kills it and panics on time-out.
pub fn wait_child(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(e) = child.stderr.take() {
                for line in BufReader::new(e).lines().map_while(Result::ok) {
                    err.push_str(&line);
                    err.push('\n');
                }
            }
            panic!("{what} did not finish within {limit:?}\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it returns true or the limit passes.
/// One recorded answer of seed2's HTTP probe (the original's, `corpus/seed2.http.json`).
pub fn recorded(id: &str) -> Value {
    let http = read_json(&shared().join("corpus/seed2.http.json"));
    http["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} recorded"))["json"]
        .clone()
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("read json")).expect("valid json")
}

pub fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_string(v).expect("serialise")).expect("write json");
}

/// Removes keys matching `drop` from every db of a dump; returns the removed key names.
pub fn strip_keys(dump: &mut Value, drop: impl Fn(&str, &str) -> bool) -> Vec<String> {
    let mut removed = Vec::new();
    if let Some(dbs) = dump.get_mut("dbs").and_then(Value::as_object_mut) {
        for (db, keys) in dbs.iter_mut() {
            if let Some(keys) = keys.as_object_mut() {
                let names: Vec<String> = keys.keys().filter(|k| drop(db, k)).cloned().collect();
                for k in names {
                    keys.remove(&k);
                    removed.push(format!("{db}:{k}"));
                }
            }
        }
        dbs.retain(|_, keys| keys.as_object().is_some_and(|k| !k.is_empty()));
    }
    removed
}

pub fn read_pubsub(p: &Path) -> Vec<Value> {
    let bytes = std::fs::read(p).expect("read pubsub");
    let text = if p.extension().is_some_and(|e| e == "gz") {
        let out = std::process::Command::new("gzip")
            .args(["-dc"])
            .arg(p)
            .output()
            .expect("gzip");
        String::from_utf8(out.stdout).expect("utf-8")
    } else {
        String::from_utf8(bytes).expect("utf-8")
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("pubsub line"))
        .collect()
}

pub fn write_pubsub(p: &Path, msgs: &[Value]) {
    let text: Vec<String> = msgs
        .iter()
        .map(|m| serde_json::to_string(m).expect("json"))
        .collect();
    std::fs::write(p, text.join("\n") + "\n").expect("write pubsub");
}

pub fn compare(kind: &str, expected: &Path, actual: &Path) -> (bool, String) {
    compare_max(kind, expected, actual, 60)
}

/// Like [`compare`], listing up to `max` differences per file.
pub fn compare_max(kind: &str, expected: &Path, actual: &Path, max: usize) -> (bool, String) {
    let max = max.to_string();
    let out = tool(
        "oracle_compare.py",
        &[
            kind,
            expected.to_str().expect("path"),
            actual.to_str().expect("path"),
            "--strict",
            "--max",
            &max,
        ],
    );
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Dumps a Redis with the shared tool, without mispdash's own bookkeeping keys.
pub fn dump_without_own_keys(port: u16, dir: &Path, name: &str) -> PathBuf {
    let raw = dir.join(format!("{name}.raw.json"));
    let out = tool(
        "redis_dump.py",
        &[
            "--port",
            &port.to_string(),
            "-o",
            raw.to_str().expect("utf-8 path"),
        ],
    );
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = read_json(&raw);
    strip_keys(&mut v, |_, k| k.starts_with("MISPDASH_"));
    let p = dir.join(format!("{name}.json"));
    write_json(&p, &v);
    p
}

/// Publishes `corpus` on a ZeroMQ PUB socket bound to `bind` with the shared replayer (as
/// MISP does), then the sentinel keep-alive; `extra` are more of its options. Returns once
/// everything was sent; fails the test if the replayer does.
pub fn publish_corpus(corpus: &Path, bind: &str, extra: &[&str]) {
    let mut args = vec![
        corpus.to_str().expect("utf-8 path"),
        "--bind",
        bind,
        "--sentinel",
        "--quiet",
        "--wait-timeout",
        "60",
    ];
    args.extend_from_slice(extra);
    let out = tool("zmq_replay.py", &args);
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A corpus replayed into a fresh mispdash + Redis under the oracle's conditions.
pub struct Replay {
    pub dir: PathBuf,
    pub redis_dump: PathBuf,
    pub pubsub: PathBuf,
    pub redis: Redis,
    pub mispdash: Mispdash,
}

/// Replays `corpus` (a JSON Lines file of `gen_corpus.py`) through a real ZeroMQ publisher into
/// `mispdash run`, recording pub/sub until the sentinel, then dumps Redis.
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
    publish_corpus(corpus, &format!("tcp://127.0.0.1:{zport}"), &[]);
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
