//! The managed Redis against a real `redis-server` (installed by scripts/setup.sh).

use mispdash_core::managed_redis::{
    find_redis_server, is_reachable, ManagedRedis, ManagedRedisError,
};
use mispdash_core::redis_util::RedisTarget;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the re-executed test binary that plays "mispdash killed -9".
const HELPER_DIR_ENV: &str = "MISPDASH_TEST_MANAGED_REDIS_DIR";
const HELPER_PORT_ENV: &str = "MISPDASH_TEST_MANAGED_REDIS_PORT";

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Starts on a free port, trying again when the port was grabbed between our probe and the
/// server's bind (e.g. as the source port of another test's connection).
fn start_on_free_port(dir: &Path) -> ManagedRedis {
    let mut last = None;
    for _ in 0..3 {
        match ManagedRedis::start(dir, free_port()) {
            Ok(s) => return s,
            Err(e @ ManagedRedisError::StartFailed { .. })
                if e.to_string().contains("Address already in use") =>
            {
                last = Some(e)
            }
            Err(e) => panic!("start managed redis: {e}"),
        }
    }
    panic!("start managed redis: {last:?}");
}

fn target(port: u16) -> RedisTarget {
    RedisTarget {
        host: "127.0.0.1".into(),
        port,
        password: None,
    }
}

/// Whether `pid` is still a running (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

#[test]
fn data_survives_a_restart_in_the_same_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("redis-data");
    let server = start_on_free_port(&dir);
    let port = server.port();
    assert!(is_reachable(&server.target()));
    let mode = std::fs::metadata(&dir)
        .expect("data dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "data dir must be private");
    let mut conn = server.target().connect(2).expect("connect");
    redis::cmd("SET")
        .arg("mispdash:test")
        .arg("kept")
        .query::<()>(&mut conn)
        .expect("SET");
    drop(conn);
    server.stop().expect("clean stop");
    assert!(!is_reachable(&target(port)));
    assert!(dir.join("redis-server.log").is_file());

    let server = start_on_free_port(&dir);
    let mut conn = server.target().connect(2).expect("connect again");
    let v: Option<String> = redis::cmd("GET")
        .arg("mispdash:test")
        .query(&mut conn)
        .expect("GET");
    assert_eq!(v.as_deref(), Some("kept"));
}

#[test]
fn drop_stops_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = start_on_free_port(tmp.path());
    let port = server.port();
    let pid = server.pid().expect("pid");
    assert!(alive(pid));
    drop(server);
    assert!(!alive(pid));
    assert!(!is_reachable(&target(port)));
}

#[test]
fn missing_binary_says_how_to_install() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = ManagedRedis::start_with(
        Path::new("/nonexistent/bin/redis-server"),
        tmp.path(),
        free_port(),
    )
    .expect_err("must fail without a binary");
    assert!(
        matches!(err, ManagedRedisError::NotInstalled { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("scripts/setup.sh"), "{msg}");
    assert!(msg.contains("apt-get install redis-server"), "{msg}");
}

#[test]
fn port_held_by_something_else_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A listener that never answers: connections queue in the backlog and the PING goes unread.
    let squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = squatter.local_addr().expect("addr").port();
    let err = ManagedRedis::start(tmp.path(), port).expect_err("port is taken");
    assert!(
        matches!(err, ManagedRedisError::PortTakenByOther { port: p } if p == port),
        "{err:?}"
    );
    assert!(err.to_string().contains("not Redis"));
}

#[test]
fn port_held_by_another_redis_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = start_on_free_port(&tmp.path().join("a"));
    let port = first.port();
    let err = ManagedRedis::start(&tmp.path().join("b"), port).expect_err("second must fail");
    assert!(
        matches!(err, ManagedRedisError::PortTakenByRedis { .. }),
        "{err:?}"
    );
}

#[test]
fn startup_failure_quotes_the_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fake = tmp.path().join("redis-server");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho '*** FATAL CONFIG FILE ERROR: fake failure for the test' >&2\nexit 1\n",
    )
    .expect("write fake server");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = ManagedRedis::start_with(&fake, &tmp.path().join("data"), free_port())
        .expect_err("fake server exits");
    assert!(
        matches!(err, ManagedRedisError::StartFailed { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("fake failure for the test"), "{msg}");
}

#[test]
fn unreachable_address_is_not_reachable() {
    let started = Instant::now();
    assert!(!is_reachable(&target(free_port())));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn binary_is_found() {
    assert!(
        find_redis_server().is_ok(),
        "redis-server must be installed for these tests"
    );
}

/// Not a test on its own: the body of the process that `killing_mispdash_takes_redis_down`
/// kills with SIGKILL. Without the environment variables it returns at once.
#[test]
fn helper_process_holding_a_server() {
    let (Ok(dir), Ok(port)) = (
        std::env::var(HELPER_DIR_ENV),
        std::env::var(HELPER_PORT_ENV),
    ) else {
        return;
    };
    let port: u16 = port.parse().expect("port");
    let server = ManagedRedis::start(Path::new(&dir), port).expect("helper start");
    println!("HELPER_PID {}", server.pid().expect("pid"));
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn killing_mispdash_takes_redis_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let exe = std::env::current_exe().expect("test binary");
    let mut helper = Command::new(exe)
        .args([
            "--exact",
            "helper_process_holding_a_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_DIR_ENV, tmp.path())
        .env(HELPER_PORT_ENV, port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn helper");
    let out = helper.stdout.take().expect("helper stdout");
    let mut redis_pid = None;
    for line in BufReader::new(out).lines() {
        let line = line.expect("read helper output");
        // libtest prints "test <name> ... " on the same line before the helper's own output.
        if let Some((_, p)) = line.split_once("HELPER_PID ") {
            redis_pid = Some(p.trim().parse::<u32>().expect("pid"));
            break;
        }
    }
    let redis_pid = redis_pid.expect("helper reported its redis pid");
    assert!(is_reachable(&target(port)));

    helper.kill().expect("SIGKILL helper");
    helper.wait().expect("reap helper");

    assert!(
        wait_until(Duration::from_secs(10), || !alive(redis_pid)),
        "redis-server {redis_pid} outlived its killed parent"
    );
    assert!(!is_reachable(&target(port)));
}
