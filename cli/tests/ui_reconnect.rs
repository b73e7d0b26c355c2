//! The live page through the interruptions a wall screen meets, in headless Chromium, without
//! a reload: the dashboard restarting behind a real reverse proxy (Debian's HAProxy, which
//! answers 503 while it is away), and a stand-in proxy (`StandinProxy`, the part of a proxy
//! that misbehaves: it cuts every open stream, then answers 503 for 20 s). Rows go through
//! the real dispatcher (a `mispdash run` of its own, which keeps applying rows while the
//! server is away); afterwards the page shows every row `/_logs` holds, in its order, none
//! twice.

mod browser_support;
mod common;
mod http_support;

use browser_support::*;
use common::*;
use http_support::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child process stopped when the test ends, however it ends.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A dispatcher of its own (no server, no subscriber), applying what the test puts in the
/// buffer as MISP's messages would be.
fn dispatcher(server: &Server) -> Mispdash {
    Mispdash::start(
        &server.dir.join("config.cfg"),
        &[
            "run",
            "--no-subscribers",
            "--no-server",
            "--no-managed-redis",
        ],
        &server.dir.join("dispatcher.log"),
    )
}

/// Puts an attribute in the buffer, as a subscriber does with MISP's `misp_json_attribute`:
/// the dispatcher caches it in the live log and publishes it.
fn apply_row(redis: &Redis, marker: &str) {
    let payload = serde_json::json!({
        "Attribute": {"id": "1", "type": "ip-dst", "category": "Network activity", "to_ids": true,
                      "uuid": "5e0b2c1e-9f3a-4c55-8f7e-0d6a1c2b3a40", "event_id": "780",
                      "distribution": "5", "timestamp": "1795175999", "comment": "",
                      "sharing_group_id": "0", "deleted": false, "disable_correlation": false,
                      "object_id": "0", "object_relation": null, "first_seen": null,
                      "last_seen": null, "value": marker},
        "Event": {"id": "780", "orgc_id": "4", "org_id": "4", "date": "2026-11-20",
                  "threat_level_id": "3", "info": "reconnection test", "published": false,
                  "uuid": "1b0c9d7e-3f2a-4b1c-9e8d-7a6b5c4d3e2f", "analysis": "2",
                  "distribution": "2", "timestamp": "1795175999", "sharing_group_id": "0",
                  "publish_timestamp": "0",
                  "Orgc": {"id": "4", "name": "Reconnect CERT", "uuid": "2c1d0e9f-4a3b-4c2d-8e1f-6a5b4c3d2e1f"}},
        "action": "add"
    });
    let envelope = serde_json::json!({
        "zmq_name": "misp1",
        "content": format!("misp_json_attribute {payload}")
    });
    let mut c = redis.conn(3).expect("redis");
    redis::cmd("LPUSH")
        .arg("bufferList")
        .arg(envelope.to_string())
        .query::<i64>(&mut c)
        .expect("lpush");
}

/// The values of `/_logs`, newest first.
fn logged_values(base: &str) -> Vec<String> {
    let text = client()
        .get(format!("{base}/_logs"))
        .header("Accept", "application/json")
        .send()
        .expect("logs")
        .text()
        .expect("body");
    let v: Value = serde_json::from_str(&text).expect("json");
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| r["log"]["5"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The page's log rows (its JSON export: cell texts), their value column, newest first.
fn shown_values(file: &Path) -> Vec<String> {
    let v = read_json(file);
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| r[5].as_str().unwrap_or("").to_string())
        .collect()
}

/// What the page shows is what `/_logs` holds, in its order, with every test row once. Rows
/// applied after the page's export (the test goes on until the browser is done) are newer than
/// the page's newest: `/_logs` is compared from that row on.
fn assert_page_matches_logs(shown: &[String], logged: &[String], markers: &[String]) {
    let newest = shown.first().expect("the page shows rows");
    let from = logged
        .iter()
        .position(|v| v == newest)
        .unwrap_or_else(|| panic!("the page's newest row {newest} is not in /_logs"));
    let logged = &logged[from..];
    let n = logged.len().min(shown.len());
    assert!(n > 40, "only {n} rows to compare");
    assert_eq!(
        &shown[..n],
        &logged[..n],
        "the page's rows are /_logs's, in its order"
    );
    // Every test row up to the page's newest is shown once.
    let last = markers
        .iter()
        .position(|m| newest == &format!("{m}||"))
        .expect("the page's newest row is a test row");
    for m in &markers[..=last] {
        let times = shown.iter().filter(|v| **v == format!("{m}||")).count();
        assert_eq!(times, 1, "{m} is shown {times} time(s)");
    }
}

/// The browser run of these tests: the live page through `base`, waiting for each phase's last
/// row, then its log exported as JSON to `export`.
fn browse_phases(base: &str, out: &Path, export: &Path, waits: &[&str]) -> std::process::Command {
    let download = format!(
        "section[aria-label='Live log'] button[aria-label^='Save the data as JSON']=>{}",
        export.display()
    );
    let mut args = vec![
        "--page",
        "/",
        "--themes",
        "dark",
        "--server-restarts",
        "--download",
        &download,
    ];
    for w in waits {
        args.extend(["--wait-text", w]);
    }
    browse_command(base, out, &args)
}

/// Rows of three phases: before the outage (until the page showed them), during it (20 s,
/// applied by the dispatcher while the page cannot reach the server), after it.
struct Phases {
    markers: Vec<String>,
}

/// Rows before the outage; during it (one per 300 ms, then none until it ends).
const BEFORE: usize = 6;
const DURING: usize = 20;

impl Phases {
    fn count(&self, phase: &str) -> usize {
        self.markers
            .iter()
            .filter(|m| m.starts_with(&format!("{phase}-")))
            .count()
    }

    /// Applies the next row of `phase` ("BEFORE-0", "BEFORE-1", …), unless the phase has all of
    /// its rows.
    fn apply(&mut self, redis: &Redis, phase: &str) {
        let n = self.count(phase);
        if (phase == "BEFORE" && n >= BEFORE) || (phase == "DURING" && n >= DURING) {
            return;
        }
        let m = format!("{phase}-{n}");
        apply_row(redis, &m);
        self.markers.push(m);
    }
}

/// Runs the browser while rows are applied: before an outage (8 s), during it (`outage(true)`
/// starts it, `outage(false)` ends it 20 s later) and after it, until the browser is done. The
/// rows applied, in order.
fn through_an_outage(
    cmd: std::process::Command,
    redis: &Redis,
    mut outage: impl FnMut(bool),
) -> Vec<String> {
    let mut phases = Phases { markers: vec![] };
    let t0 = Instant::now();
    let (mut started, mut ended) = (false, false);
    browse_while_publishing(cmd, || {
        let s = t0.elapsed().as_secs_f64();
        let phase = if s < 8.0 {
            "BEFORE"
        } else if !ended {
            if !started {
                outage(true);
                started = true;
            }
            if s > 28.0 {
                outage(false);
                ended = true;
                "AFTER"
            } else {
                "DURING"
            }
        } else {
            "AFTER"
        };
        phases.apply(redis, phase);
    });
    phases.markers
}

/// The page waits for the last row before the outage, its word that the stream is interrupted
/// (in the header and the live panels), the last row during the outage, and the sixth after.
const WAITS: [&str; 4] = [
    "BEFORE-5",
    "stream interrupted, reconnecting",
    "DURING-19",
    "AFTER-5",
];

/// HAProxy from Debian in front of the server; the server is killed and started again 20 s
/// later, HAProxy answering 503 meanwhile. The page's stream comes back by itself, the rows
/// applied meanwhile appear (read by the new process from the live cache), and so do new ones.
#[test]
fn the_live_page_behind_haproxy_while_the_dashboard_restarts() {
    let (redis, mut server) = seed2_server("ui-haproxy");
    let _dispatch = dispatcher(&server);
    let front = free_port();
    let cfg = server.dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 512\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive 5s\nfrontend dashboard\n  bind 127.0.0.1:{front}\n  default_backend mispdash\nbackend mispdash\n  server one 127.0.0.1:{} check inter 500ms fall 1 rise 1\n",
            server.port
        ),
    )
    .expect("haproxy config");
    let haproxy = std::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(server.dir.join("haproxy.log")).expect("log"))
        .spawn()
        .expect("haproxy (scripts/setup.sh test installs it)");
    let _haproxy = Stopped(haproxy);
    assert!(
        wait_until(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            front
        ))
        .is_ok()),
        "HAProxy did not start"
    );
    let base = format!("http://127.0.0.1:{front}");
    let out = server.dir.join("screenshots");
    let export = server.dir.join("log.json");
    let cmd = browse_phases(&base, &out, &export, &WAITS);
    let setup = ServerSetup::default();
    let markers = through_an_outage(cmd, &redis, |begin| match begin {
        true => server.process.kill9(),
        false => server.start_again(&setup, 2),
    });
    // Let the dispatcher finish the last rows, then compare.
    std::thread::sleep(Duration::from_secs(1));
    let shown = shown_values(&export);
    let logged = logged_values(&server.base("http"));
    assert_page_matches_logs(&shown, &logged, &markers);
    eprintln!("screenshots in {}", out.display());
}

/// The part of a reverse proxy that misbehaves while a dashboard restarts: it passes
/// connections through, or cuts every open one and answers every new request with 503.
struct StandinProxy {
    port: u16,
    refusing: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl StandinProxy {
    fn start(upstream: u16) -> StandinProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let refusing = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(vec![]));
        let (r, o) = (refusing.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                if r.load(Ordering::SeqCst) {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        let _ = client.set_read_timeout(Some(Duration::from_secs(2)));
                        let _ = client.read(&mut buf);
                        let body = "the dashboard is restarting\n";
                        let _ = write!(
                            client,
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = client.shutdown(Shutdown::Both);
                    });
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut list) = o.lock() {
                        list.push(c2);
                        list.push(s2);
                    }
                }
                for (mut from, mut to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        StandinProxy {
            port,
            refusing,
            open,
        }
    }

    /// Cuts every open connection, and answers 503 from now on (`refuse`) or passes again.
    fn refuse(&self, refuse: bool) {
        self.refusing.store(refuse, Ordering::SeqCst);
        if refuse {
            if let Ok(mut list) = self.open.lock() {
                for s in list.drain(..) {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

/// A stand-in proxy cuts the page's stream and answers 503 for 20 s (a bare EventSource gives
/// up for good on such an answer) while the server keeps running: the page keeps trying, says
/// so, and resumes where it was: the rows of the outage, then new ones.
#[test]
fn the_live_page_through_a_proxy_that_cuts_streams_and_answers_503() {
    let (redis, server) = seed2_server("ui-standin-proxy");
    let _dispatch = dispatcher(&server);
    let proxy = StandinProxy::start(server.port);
    let base = format!("http://127.0.0.1:{}", proxy.port);
    let out = server.dir.join("screenshots");
    let export = server.dir.join("log.json");
    let cmd = browse_phases(&base, &out, &export, &WAITS);
    let markers = through_an_outage(cmd, &redis, |begin| proxy.refuse(begin));
    std::thread::sleep(Duration::from_secs(1));
    let shown = shown_values(&export);
    let logged = logged_values(&server.base("http"));
    assert_page_matches_logs(&shown, &logged, &markers);
    eprintln!("screenshots in {}", out.display());
}
