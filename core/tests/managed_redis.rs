//! The managed Redis against a real `redis-server` (installed by scripts/setup.sh).

use mispdash_core::managed_redis::{
    find_redis_server, is_reachable, ManagedRedis, ManagedRedisError,
};
use mispdash_core::redis_util::RedisTarget;
use mispdash_testkit::{free_port, wait_until};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the re-executed test binary that plays "mispdash killed -9".
const HELPER_DIR_ENV: &str = "MISPDASH_TEST_MANAGED_REDIS_DIR";
const HELPER_PORT_ENV: &str = "MISPDASH_TEST_MANAGED_REDIS_PORT";

/// Starts on a free port, trying again when the port was grabbed between our probe and the
/// server's bind, or before its check of the port (as the source port of another test's
/// connection, or by a parallel test's own server or listener).
fn start_on_free_port(dir: &Path) -> ManagedRedis {
    let mut last = None;
    for _ in 0..5 {
        match ManagedRedis::start(dir, free_port()) {
            Ok(s) => return s,
            Err(e @ ManagedRedisError::StartFailed { .. })
                if e.to_string().contains("Address already in use") =>
            {
                last = Some(e)
            }
            Err(
                e @ (ManagedRedisError::PortTakenByOther { .. }
                | ManagedRedisError::PortTakenByRedis { .. }),
            ) => last = Some(e),
            Err(e) => panic!("start managed redis: {e}"),
        }
    }
    panic!("start managed redis: {last:?}");
}

fn target(port: u16) -> RedisTarget {
    RedisTarget::direct("127.0.0.1", port, None)
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

#[test]
fn data_survives_a_restart_in_the_same_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("redis-data");
    let server = start_on_free_port(&dir);
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
    let t = server.target();
    server.stop().expect("clean stop");
    assert!(!is_reachable(&t));
    assert!(dir.join("redis-server.log").is_file());

    let server = start_on_free_port(&dir);
    let mut conn = server.target().connect(2).expect("connect again");
    let v: Option<String> = redis::cmd("GET")
        .arg("mispdash:test")
        .query(&mut conn)
        .expect("GET");
    assert_eq!(v.as_deref(), Some("kept"));
}

/// Another local user cannot use the managed Redis: it wants a password, kept in a 0600 file
/// (and a 0600 configuration file) of the 0700 data directory, and never on the server's
/// command line; mispdash's other commands find the password there.
#[test]
fn a_client_without_the_password_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("redis");
    let server = start_on_free_port(&dir);
    let port = server.port();
    // Without credentials: refused, for reading and for writing.
    let mut bare = target(port).connect(3).err();
    if bare.is_none() {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .expect("client")
            .get_connection()
            .expect("tcp");
        bare = redis::cmd("LPUSH")
            .arg("bufferList")
            .arg("injected")
            .query::<()>(&mut c)
            .err();
    }
    let e = bare.expect("refused without the password").to_string();
    assert!(
        e.contains("NOAUTH") || e.contains("Authentication required"),
        "{e}"
    );
    assert!(!is_reachable(&target(port)));
    // A wrong password is refused too.
    let wrong = RedisTarget {
        password: Some("guess".into()),
        ..target(port)
    };
    assert!(wrong.connect(0).is_err());
    // The password: 64 hex digits, in a private file, not on the command line.
    let pw = server.password().to_string();
    assert_eq!(pw.len(), 64);
    for f in ["password", "redis.conf"] {
        let mode = std::fs::metadata(dir.join(f))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let cmdline =
        std::fs::read(format!("/proc/{}/cmdline", server.pid().expect("pid"))).expect("cmdline");
    assert!(!String::from_utf8_lossy(&cmdline).contains(&pw));
    // With it (as mispdash's other commands find it), all is well.
    let mut found = target(port);
    assert!(mispdash_core::managed_redis::adopt_password(
        &mut found, &dir
    ));
    assert_eq!(found.password.as_deref(), Some(pw.as_str()));
    assert!(is_reachable(&found));
    // A fresh password at each start: one that leaked is of no use after a restart.
    server.stop().expect("stop");
    let again = start_on_free_port(&dir);
    assert_ne!(again.password(), pw);
    assert_eq!(again.password().len(), 64);
}

/// While mispdash is stopped, a local user listens on its managed Redis's port and answers
/// like a Redis that wants a password: nothing is adopted, the password is never sent (the
/// squatter records every byte it gets), and the port is refused with a message that names
/// it. A Redis without a password on that port is refused too; the managed server itself,
/// once it runs again, is adopted.
#[test]
fn nobody_can_stand_in_for_the_managed_redis() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("redis");
    let server = start_on_free_port(&dir);
    let port = server.port();
    let pw = server.password().to_string();
    server.stop().expect("stop");

    let squatter = TcpListener::bind(("127.0.0.1", port)).expect("squat the port");
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let h = heard.clone();
    std::thread::spawn(move || {
        for s in squatter.incoming() {
            let Ok(mut s) = s else { return };
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                h.lock().expect("lock").extend_from_slice(&buf[..n]);
                let _ = s.write_all(b"-NOAUTH Authentication required.\r\n");
            }
        }
    });
    let mut t = target(port);
    assert!(!mispdash_core::managed_redis::adopt_password(&mut t, &dir));
    assert!(t.password.is_none());
    let e = mispdash_core::managed_redis::check_port(&t, &dir).expect_err("refused");
    assert!(
        matches!(e, ManagedRedisError::UnknownServerAsksPassword { .. }),
        "{e}"
    );
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    // What `mispdash run` calls: the same refusal when it manages Redis, none without.
    let e = mispdash_core::managed_redis::adopt_or_check(&mut t, &dir, true).expect_err("refused");
    assert!(
        matches!(e, ManagedRedisError::UnknownServerAsksPassword { .. }),
        "{e}"
    );
    assert!(
        !mispdash_core::managed_redis::adopt_or_check(&mut t, &dir, false).expect("not managing")
    );
    assert!(t.password.is_none());
    let heard = String::from_utf8_lossy(&heard.lock().expect("lock")).to_string();
    assert!(
        !heard.contains(&pw) && !heard.to_uppercase().contains("AUTH"),
        "{heard}"
    );

    // A Redis without a password where the managed one was.
    let other_port = free_port();
    let mut open = Command::new(find_redis_server().expect("redis-server"))
        .args([
            "--port",
            &other_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    assert!(wait_until(Duration::from_secs(10), || is_reachable(
        &target(other_port)
    )));
    // As if the managed server had last listened there (its data directory says where).
    let moved = tmp.path().join("moved");
    let managed = start_on_free_port(&moved);
    managed.stop().expect("stop");
    assert!(
        mispdash_core::managed_redis::check_port(&target(other_port), &moved).is_ok(),
        "another port is the admin's own business"
    );
    std::fs::write(moved.join("port"), format!("{other_port}\n")).expect("port file");
    let e =
        mispdash_core::managed_redis::check_port(&target(other_port), &moved).expect_err("refused");
    assert!(
        matches!(e, ManagedRedisError::UnprotectedServerOnManagedPort { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("--no-managed-redis"), "{e}");
    let _ = open.kill();
    let _ = open.wait();

    // The managed server, running: adopted through its socket.
    let running = start_on_free_port(&moved);
    let mut t = target(running.port());
    assert!(mispdash_core::managed_redis::check_port(&t, &moved).is_ok());
    assert!(mispdash_core::managed_redis::adopt_password(&mut t, &moved));
    assert!(is_reachable(&t));
    let mut t = target(running.port());
    assert!(mispdash_core::managed_redis::adopt_or_check(&mut t, &moved, true).expect("ours"));
    assert!(is_reachable(&t));
}

#[test]
fn drop_stops_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = start_on_free_port(tmp.path());
    let pid = server.pid().expect("pid");
    let t = server.target();
    assert!(alive(pid) && is_reachable(&t));
    drop(server);
    assert!(!alive(pid));
    assert!(!is_reachable(&t));
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
    let mut with_password = target(port);
    assert!(mispdash_core::managed_redis::adopt_password(
        &mut with_password,
        tmp.path()
    ));
    assert!(is_reachable(&with_password));

    helper.kill().expect("SIGKILL helper");
    helper.wait().expect("reap helper");

    assert!(
        wait_until(Duration::from_secs(10), || !alive(redis_pid)),
        "redis-server {redis_pid} outlived its killed parent"
    );
    assert!(!is_reachable(&with_password));
}
