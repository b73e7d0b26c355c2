//! End-to-end tests of the subscriber (`mispdash_core::feed`) against a real `redis-server` and a
//! real ZeroMQ publisher on loopback.
//!
//! The publisher is an XPUB socket so a test can see the feed's subscription arrive and know the
//! next frame will be delivered (no slow-joiner sleeps). Every wait polls with a deadline.

use base64::Engine as _;
use mispdash_core::clock::Clock;
use mispdash_core::feed::{self, FeedHandle, FeedOptions, FeedSpec};
use mispdash_core::keys;
use mispdash_core::redis_util::RedisTarget;
use mispdash_testkit::{free_port, wait_until, Redis as RedisServer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LIST_DB: i64 = 3;
const LIST: &str = "bufferList";
const WAIT: Duration = Duration::from_secs(20);

/// The test's redis-server, seen from the list database the feed writes to.
trait ListDb {
    fn target(&self) -> RedisTarget;
    fn conn_once(&self) -> Option<redis::Connection>;
    fn list_conn(&self) -> redis::Connection;
    /// The list in push order (oldest first), i.e. what successive RPOPs would return.
    fn fifo(&self, key: &str) -> Vec<String>;
    fn llen(&self, key: &str) -> usize;
}

impl ListDb for RedisServer {
    fn target(&self) -> RedisTarget {
        RedisTarget::direct("127.0.0.1", self.port, None)
    }

    fn conn_once(&self) -> Option<redis::Connection> {
        self.conn_timeout(LIST_DB, Duration::from_secs(1)).ok()
    }

    fn list_conn(&self) -> redis::Connection {
        self.conn_once().expect("connect to test redis")
    }

    fn fifo(&self, key: &str) -> Vec<String> {
        let mut v: Vec<String> = redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut self.list_conn())
            .expect("LRANGE");
        v.reverse();
        v
    }

    fn llen(&self, key: &str) -> usize {
        self.conn_once()
            .and_then(|mut c| redis::cmd("LLEN").arg(key).query(&mut c).ok())
            .unwrap_or(0)
    }
}

/// A ZAP handler (RFC 27) in the publisher's context: accepts PLAIN with the current
/// `creds`, refuses anything else. libzmq asks it on `inproc://zeromq.zap.01` for every
/// handshake.
struct Zap {
    creds: Arc<Mutex<(String, String)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Zap {
    fn start(ctx: &zmq::Context, user: &str, pass: &str) -> Self {
        let sock = ctx.socket(zmq::REP).expect("REP");
        sock.set_linger(0).expect("linger");
        sock.bind("inproc://zeromq.zap.01").expect("bind ZAP");
        let creds = Arc::new(Mutex::new((user.to_string(), pass.to_string())));
        let stop = Arc::new(AtomicBool::new(false));
        let (creds2, stop2) = (creds.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if sock.poll(zmq::POLLIN, 50).unwrap_or(0) == 0 {
                    continue;
                }
                let Ok(req) = sock.recv_multipart(0) else {
                    continue;
                };
                // version, request id, domain, address, identity, mechanism, credentials…
                let ok = {
                    let c = creds2.lock().expect("creds");
                    req.len() >= 8
                        && req[5] == b"PLAIN"
                        && req[6] == c.0.as_bytes()
                        && req[7] == c.1.as_bytes()
                };
                let id = req.get(1).cloned().unwrap_or_default();
                let (code, text): (&[u8], &[u8]) = if ok {
                    (b"200", b"OK")
                } else {
                    (b"400", b"bad credentials")
                };
                let reply: Vec<&[u8]> = vec![b"1.0", &id, code, text, b"user", b""];
                let _ = sock.send_multipart(reply, 0);
            }
        });
        Zap {
            creds,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Zap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// MISP's side: a publisher bound on a loopback port.
struct Publisher {
    endpoint: String,
    sock: zmq::Socket,
    zap: Option<Zap>,
    _ctx: zmq::Context,
}

impl Publisher {
    fn new(plain: Option<(&'static str, &'static str)>) -> Self {
        let ctx = zmq::Context::new();
        let zap = plain.map(|(u, p)| Zap::start(&ctx, u, p));
        let sock = ctx.socket(zmq::XPUB).expect("XPUB");
        sock.set_linger(0).expect("linger");
        sock.set_sndhwm(0).expect("sndhwm");
        // Report every subscription, not only the first per topic, so each feed's is seen.
        sock.set_xpub_verbose(true).expect("xpub verbose");
        if plain.is_some() {
            sock.set_plain_server(true).expect("plain server");
            sock.set_zap_domain("test").expect("zap domain");
        }
        sock.bind("tcp://127.0.0.1:0").expect("bind publisher");
        let endpoint = sock
            .get_last_endpoint()
            .expect("last endpoint")
            .expect("utf-8 endpoint");
        Publisher {
            endpoint,
            sock,
            zap,
            _ctx: ctx,
        }
    }

    /// Waits for a subscription to arrive (byte 1 then the topic prefix).
    fn wait_subscribed(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.sock.poll(zmq::POLLIN, 50).unwrap_or(0) > 0 {
                if let Ok(m) = self.sock.recv_bytes(0) {
                    if m.first() == Some(&1) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// What MISP's admin would do: change the password the publisher accepts.
    fn accept_password(&self, pass: &str) {
        let zap = self.zap.as_ref().expect("a PLAIN publisher");
        zap.creds.lock().expect("creds").1 = pass.to_string();
    }

    fn send(&self, frame: impl AsRef<[u8]>) {
        self.sock.send(frame.as_ref(), 0).expect("publish");
    }
}

/// Switches of a [`Proxy`], shared with its relay threads.
#[derive(Default)]
struct ProxyState {
    /// Armed: the next push script goes through to Redis, but its successful reply is
    /// swallowed and the connection cut. Redis has applied the push and the feed only sees a
    /// broken connection: the worst case for duplicates.
    armed: AtomicBool,
    cuts: AtomicUsize,
    /// Frozen: nothing is forwarded and nothing is closed, like a peer whose host vanished
    /// (half-open TCP connection).
    frozen: AtomicBool,
    stop: AtomicBool,
}

/// A TCP proxy on loopback in front of `upstream`, with the faults of [`ProxyState`].
struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

impl Proxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        std::thread::spawn(move || {
            while !st.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                            Self::relay(client, server, st.clone());
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy { port, state }
    }

    /// Waits while frozen; false when the proxy is being stopped.
    fn thaw(st: &ProxyState) -> bool {
        while st.frozen.load(Ordering::SeqCst) {
            if st.stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    fn relay(client: TcpStream, server: TcpStream, st: Arc<ProxyState>) {
        // Set when an armed script call went upstream: its reply is the next one (the client
        // waits for each reply before sending the next command).
        let expecting = Arc::new(AtomicBool::new(false));
        let (mut c_in, mut s_out) = (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        let (exp, st_up) = (expecting.clone(), st.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = c_in.read(&mut buf) {
                if n == 0 || !Self::thaw(&st_up) {
                    break;
                }
                let chunk = &buf[..n];
                if chunk.windows(7).any(|w| w == b"EVALSHA")
                    && st_up.armed.swap(false, Ordering::SeqCst)
                {
                    exp.store(true, Ordering::SeqCst);
                }
                if s_out.write_all(chunk).is_err() {
                    break;
                }
            }
            let _ = s_out.shutdown(Shutdown::Both);
        });
        let (mut s_in, mut c_out) = (server, client);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = s_in.read(&mut buf) {
                if n == 0 || !Self::thaw(&st) {
                    break;
                }
                if expecting.swap(false, Ordering::SeqCst) {
                    if buf[0] == b':' {
                        // The push was applied: swallow the reply and break the connection.
                        st.cuts.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    // Not the push's success (e.g. NOSCRIPT before the script is loaded): let
                    // it through and wait for the next attempt.
                    st.armed.store(true, Ordering::SeqCst);
                }
                if c_out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = c_out.shutdown(Shutdown::Both);
            let _ = s_in.shutdown(Shutdown::Both);
        });
    }

    fn redis_target(&self) -> RedisTarget {
        RedisTarget::direct("127.0.0.1", self.port, None)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        self.state.frozen.store(false, Ordering::SeqCst);
    }
}

struct Feed {
    handle: Option<FeedHandle>,
}

impl Feed {
    fn spawn(spec: FeedSpec, redis: &RedisServer, list: &str, opts: FeedOptions) -> Self {
        Self::spawn_to(spec, redis.target(), list, opts)
    }

    fn spawn_to(spec: FeedSpec, target: RedisTarget, list: &str, opts: FeedOptions) -> Self {
        let handle = feed::spawn_with_options(
            spec,
            target,
            LIST_DB,
            list.to_string(),
            Clock::system(),
            Arc::new(AtomicBool::new(false)),
            opts,
        )
        .expect("spawn feed");
        Feed {
            handle: Some(handle),
        }
    }

    fn stats(&self) -> feed::FeedSnapshot {
        self.handle.as_ref().expect("running").stats.snapshot()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
            h.join();
        }
    }
}

fn spec(name: &str, endpoint: &str) -> FeedSpec {
    FeedSpec {
        name: name.into(),
        endpoint: endpoint.into(),
        username: None,
        password: None,
    }
}

fn frame(i: usize) -> String {
    format!("misp_json_attribute {{\"Attribute\": {{\"id\": \"{i}\", \"value\": \"é{i}\"}}}}")
}

#[test]
fn frames_reach_the_buffer_in_fifo_order_as_python_envelopes() {
    let redis = RedisServer::start();
    let publisher = Publisher::new(None);
    let f = Feed::spawn(
        spec("misp é", &publisher.endpoint),
        &redis,
        LIST,
        FeedOptions::default(),
    );
    assert!(publisher.wait_subscribed(WAIT), "feed never subscribed");

    let keepalive = r#"misp_json_self {"status": "ok", "uptime": 5}"#;
    publisher.send(keepalive);
    for i in 0..1000 {
        publisher.send(frame(i));
    }
    assert!(
        wait_until(WAIT, || redis.llen(LIST) == 1001),
        "only {} of 1001 entries arrived",
        redis.llen(LIST)
    );
    let got = redis.fifo(LIST);
    // Spec Appendix A8, byte for byte.
    assert_eq!(
        got[0],
        r#"{"zmq_name": "misp \u00e9", "content": "misp_json_self {\"status\": \"ok\", \"uptime\": 5}"}"#
    );
    for (i, entry) in got[1..].iter().enumerate() {
        assert_eq!(*entry, feed::envelope("misp é", &frame(i)), "entry {i}");
    }
    assert!(got[1].contains(r#"\"value\": \"\u00e90\""#), "{}", got[1]);

    let s = f.stats();
    assert_eq!(s.messages, 1001);
    assert_eq!(s.pushed, 1001);
    assert!(s.connected);
    assert!(s.connects >= 1);
    assert!(s.last_keepalive_epoch.is_some());
    assert!(s.last_message_epoch >= s.last_keepalive_epoch);
    assert_eq!((s.non_utf8, s.multipart_parts, s.dropped), (0, 0, 0));

    // The health hash, as another process reads it.
    let key = keys::feed_status("misp é");
    assert!(
        wait_until(WAIT, || {
            let m: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg("messages")
                .query(&mut redis.list_conn())
                .ok();
            m.as_deref() == Some("1001")
        }),
        "health hash never showed 1001 messages"
    );
    let h: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&key)
        .query(&mut redis.list_conn())
        .expect("HGETALL");
    assert_eq!(h["endpoint"], publisher.endpoint);
    assert_eq!(h["connected"], "1");
    assert_eq!(h["non_utf8"], "0");
    assert_eq!(h["multipart"], "0");
    assert_eq!(h["queued"], "0");
    for k in ["last_message", "last_keepalive", "updated"] {
        let v: f64 = h[k].parse().unwrap_or_else(|_| panic!("{k} = {:?}", h[k]));
        assert!(v > 1.6e9, "{k} = {v}");
    }
}

#[test]
fn odd_frames_are_dead_lettered_or_split_not_lost() {
    let redis = RedisServer::start();
    let publisher = Publisher::new(None);
    let f = Feed::spawn(
        spec("misp1", &publisher.endpoint),
        &redis,
        LIST,
        FeedOptions::default(),
    );
    assert!(publisher.wait_subscribed(WAIT), "feed never subscribed");

    let bad: &[u8] = b"misp_json_event {\"x\": \"\xff\xfe\"}";
    publisher.send(bad);
    publisher
        .sock
        .send_multipart(["misp_json_self {}", "second part"], 0)
        .expect("multipart");
    publisher.send("misp_json_self {\"status\": \"ok\", \"uptime\": 1}");

    let dead_key = keys::dead_letter_list(LIST);
    assert!(
        wait_until(WAIT, || redis.llen(LIST) == 3 && redis.llen(&dead_key) == 1),
        "buffer {} / dead {}",
        redis.llen(LIST),
        redis.llen(&dead_key)
    );
    let buffer = redis.fifo(LIST);
    assert_eq!(
        buffer,
        [
            feed::envelope("misp1", "misp_json_self {}"),
            feed::envelope("misp1", "second part"),
            feed::envelope(
                "misp1",
                "misp_json_self {\"status\": \"ok\", \"uptime\": 1}"
            ),
        ]
    );
    let dead = redis.fifo(&dead_key);
    let v: serde_json::Value = serde_json::from_str(&dead[0]).expect("dead letter is JSON");
    assert_eq!(v["reason"], "frame is not UTF-8");
    assert_eq!(v["zmq_name"], "misp1");
    let b64 = v["frame_b64"].as_str().expect("frame_b64");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64"),
        bad
    );
    assert!(v["epoch"].as_f64().is_some_and(|e| e > 1.6e9));
    assert!(dead[0].starts_with(r#"{"reason": "frame is not UTF-8", "zmq_name": "misp1", "#));

    let s = f.stats();
    assert_eq!(s.messages, 4);
    assert_eq!(s.non_utf8, 1);
    assert_eq!(s.multipart_parts, 2);
    assert_eq!(s.pushed, 3);
    assert_eq!(s.dead_lettered, 1);
}

#[test]
fn plain_authentication() {
    let redis = RedisServer::start();
    let publisher = Publisher::new(Some(("misp", "s3cret")));
    let with = |user: Option<&str>, pass: Option<&str>| FeedSpec {
        username: user.map(String::from),
        password: pass.map(String::from),
        ..spec("misp-auth", &publisher.endpoint)
    };
    let good = Feed::spawn(
        with(Some("misp"), Some("s3cret")),
        &redis,
        "goodList",
        FeedOptions::default(),
    );
    let quick_retry = FeedOptions {
        handshake_retry: Duration::from_millis(200),
        ..FeedOptions::default()
    };
    let bad = Feed::spawn(
        with(Some("misp"), Some("wrong")),
        &redis,
        "badList",
        quick_retry.clone(),
    );
    let anonymous = Feed::spawn(with(None, None), &redis, "anonList", quick_retry);

    assert!(
        publisher.wait_subscribed(WAIT),
        "good feed never subscribed"
    );
    assert!(
        wait_until(WAIT, || bad.stats().auth_failures >= 1),
        "wrong password was never refused: {:?}",
        bad.stats()
    );
    assert!(
        wait_until(WAIT, || anonymous.stats().handshake_failures
            + anonymous.stats().auth_failures
            >= 1),
        "missing credentials never failed a handshake: {:?}",
        anonymous.stats()
    );
    for i in 0..10 {
        publisher.send(frame(i));
    }
    assert!(
        wait_until(WAIT, || redis.llen("goodList") == 10),
        "good feed got {}",
        redis.llen("goodList")
    );
    let g = good.stats();
    assert!(g.connected && g.auth_failures == 0, "{g:?}");
    for (what, f, list) in [
        ("bad", &bad, "badList"),
        ("anonymous", &anonymous, "anonList"),
    ] {
        let s = f.stats();
        assert!(!s.connected, "{what}: {s:?}");
        assert_eq!((s.messages, s.connects), (0, 0), "{what}: {s:?}");
        assert_eq!(redis.llen(list), 0, "{what}");
    }
    // The refused feed keeps retrying (libzmq alone would give up after one refusal): once
    // the publisher accepts its password, it connects without a restart.
    let refusals = bad.stats().auth_failures;
    assert!(
        wait_until(WAIT, || bad.stats().auth_failures > refusals),
        "no retry after a refusal: {:?}",
        bad.stats()
    );
    publisher.accept_password("wrong");
    assert!(
        wait_until(WAIT, || bad.stats().connected),
        "never connected once accepted: {:?}",
        bad.stats()
    );
    assert!(publisher.wait_subscribed(WAIT), "bad feed never subscribed");
    publisher.send(frame(10));
    assert!(wait_until(WAIT, || redis.llen("badList") == 1));
    assert!(
        anonymous.stats().handshake_failures + anonymous.stats().auth_failures >= 2,
        "anonymous feed stopped retrying: {:?}",
        anonymous.stats()
    );
    assert!(!anonymous.stats().connected);
}

#[test]
fn redis_outage_loses_nothing() {
    let mut redis = RedisServer::start();
    let publisher = Publisher::new(None);
    let f = Feed::spawn(
        spec("misp1", &publisher.endpoint),
        &redis,
        LIST,
        FeedOptions::default(),
    );
    assert!(publisher.wait_subscribed(WAIT), "feed never subscribed");

    for i in 0..100 {
        publisher.send(frame(i));
    }
    // Wait for the feed to know its push succeeded, not just for the list: killing Redis
    // between the two would make the push ambiguous, and the retry would rightly land in the
    // restarted (empty) Redis.
    assert!(wait_until(WAIT, || f.stats().pushed == 100 && redis.llen(LIST) == 100));

    redis.kill();
    for i in 100..600 {
        publisher.send(frame(i));
    }
    assert!(
        wait_until(WAIT, || f.stats().messages == 600),
        "{:?}",
        f.stats()
    );
    // Nowhere to push: everything from the outage is held in memory.
    assert!(
        wait_until(WAIT, || f.stats().queued == 500),
        "{:?}",
        f.stats()
    );

    // Same port, empty data set (no persistence): exactly the outage's frames must appear.
    redis.restart();
    assert!(
        wait_until(WAIT, || redis.llen(LIST) >= 500 && f.stats().queued == 0),
        "after restart: {} in list, {:?}",
        redis.llen(LIST),
        f.stats()
    );
    let expected: Vec<String> = (100..600)
        .map(|i| feed::envelope("misp1", &frame(i)))
        .collect();
    assert_eq!(redis.fifo(LIST), expected, "lost, duplicated or reordered");

    publisher.send(frame(600));
    assert!(wait_until(WAIT, || redis.llen(LIST) == 501));
    assert_eq!(
        redis.fifo(LIST).last(),
        Some(&feed::envelope("misp1", &frame(600)))
    );
    let s = f.stats();
    assert_eq!((s.messages, s.pushed, s.dropped), (601, 601, 0), "{s:?}");
}

#[test]
fn a_push_whose_reply_is_lost_is_not_duplicated() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(redis.port);
    let publisher = Publisher::new(None);
    let f = Feed::spawn_to(
        spec("misp1", &publisher.endpoint),
        proxy.redis_target(),
        LIST,
        FeedOptions::default(),
    );
    assert!(publisher.wait_subscribed(WAIT), "feed never subscribed");
    for i in 0..10 {
        publisher.send(frame(i));
    }
    assert!(wait_until(WAIT, || f.stats().pushed == 10));

    proxy.state.armed.store(true, Ordering::SeqCst);
    for i in 10..20 {
        publisher.send(frame(i));
    }
    assert!(
        wait_until(WAIT, || proxy.state.cuts.load(Ordering::SeqCst) == 1
            && f.stats().pushed == 20),
        "cuts {} {:?}",
        proxy.state.cuts.load(Ordering::SeqCst),
        f.stats()
    );
    let s = f.stats();
    assert!(s.push_failures_retried >= 1, "{s:?}");
    let expected: Vec<String> = (0..20)
        .map(|i| feed::envelope("misp1", &frame(i)))
        .collect();
    assert_eq!(redis.fifo(LIST), expected, "lost, duplicated or reordered");
}

#[test]
fn a_silent_publisher_is_noticed_and_reconnected() {
    let redis = RedisServer::start();
    let publisher = Publisher::new(None);
    let pub_port: u16 = publisher
        .endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("publisher port");
    let proxy = Proxy::start(pub_port);
    let opts = FeedOptions {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_millis(500),
        ..FeedOptions::default()
    };
    let f = Feed::spawn(
        spec("misp1", &format!("tcp://127.0.0.1:{}", proxy.port)),
        &redis,
        LIST,
        opts,
    );
    assert!(publisher.wait_subscribed(WAIT), "feed never subscribed");
    publisher.send(frame(0));
    assert!(wait_until(WAIT, || f.stats().pushed == 1));

    assert_eq!(f.stats().disconnected_since, None, "connected");

    // The link goes silent without closing: only the heartbeat can tell.
    proxy.state.frozen.store(true, Ordering::SeqCst);
    let frozen_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        wait_until(WAIT, || {
            let s = f.stats();
            !s.connected && s.disconnects == 1
        }),
        "half-open connection not noticed: {:?}",
        f.stats()
    );
    let since = f.stats().disconnected_since.expect("disconnected since");
    assert!(
        since >= frozen_at && since < frozen_at + 10.0,
        "disconnected since {since}, frozen at {frozen_at}"
    );
    proxy.state.frozen.store(false, Ordering::SeqCst);
    assert!(
        wait_until(WAIT, || f.stats().connected),
        "not reconnected: {:?}",
        f.stats()
    );
    assert_eq!(f.stats().disconnected_since, None, "connected again");
    assert!(publisher.wait_subscribed(WAIT), "no new subscription");
    publisher.send(frame(1));
    assert!(
        wait_until(WAIT, || f.stats().pushed == 2),
        "{:?}",
        f.stats()
    );
    assert_eq!(f.stats().connects, 2);
}

#[test]
fn full_backlog_drops_the_oldest_and_counts_them() {
    let mut redis = RedisServer::not_started();
    let publisher = Publisher::new(None);
    let opts = FeedOptions {
        max_backlog_frames: 50,
        ..FeedOptions::default()
    };
    let f = Feed::spawn(spec("misp1", &publisher.endpoint), &redis, LIST, opts);
    assert!(publisher.wait_subscribed(WAIT), "feed never subscribed");
    for i in 0..80 {
        publisher.send(frame(i));
    }
    // Counters move before the frames are queued: wait for both.
    assert!(
        wait_until(WAIT, || {
            let s = f.stats();
            (s.messages, s.queued, s.dropped) == (80, 50, 30)
        }),
        "{:?}",
        f.stats()
    );

    redis.restart();
    assert!(wait_until(WAIT, || redis.llen(LIST) == 50));
    let expected: Vec<String> = (30..80)
        .map(|i| feed::envelope("misp1", &frame(i)))
        .collect();
    assert_eq!(redis.fifo(LIST), expected);
}

#[test]
fn stop_is_prompt_and_bad_endpoints_fail_early() {
    let redis = RedisServer::not_started();
    let stop = Arc::new(AtomicBool::new(false));
    let port = free_port();
    let handle = feed::spawn(
        spec("nobody", &format!("tcp://127.0.0.1:{port}")),
        redis.target(),
        LIST_DB,
        LIST.into(),
        Clock::system(),
        stop.clone(),
    )
    .expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!handle.stats.snapshot().connected);
    let t0 = Instant::now();
    stop.store(true, Ordering::Relaxed);
    handle.join();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    let err = feed::spawn(
        spec("bad", "not-an-endpoint"),
        redis.target(),
        LIST_DB,
        LIST.into(),
        Clock::system(),
        Arc::new(AtomicBool::new(false)),
    );
    assert!(err.is_err());
    let err = feed::spawn(
        FeedSpec {
            password: Some("p".into()),
            ..spec("nouser", "tcp://127.0.0.1:1")
        },
        redis.target(),
        LIST_DB,
        LIST.into(),
        Clock::system(),
        Arc::new(AtomicBool::new(false)),
    );
    assert!(err.is_err());
}
