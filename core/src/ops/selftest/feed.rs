//! The MISP side: can each configured ZeroMQ publisher be reached, does it accept our
//! credentials, does it say anything; and what the running subscribers report about it.
//!
//! A plain TCP connection comes first because it tells apart what ZeroMQ hides behind silent
//! retries: a refused port (MISP's ZeroMQ plugin off, or bound to 127.0.0.1 on a remote host), a
//! host that does not answer (firewall), a name that does not resolve. Then a real SUB socket
//! with the configured PLAIN credentials, whose monitor reports the handshake's outcome.

use super::{now_epoch, Check};
use crate::config::{Config, MispInstance};
use crate::feed::FeedSpec;
use crate::keys;
use crate::redis_util::RedisTarget;
use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// MISP's publisher sends a keep-alive (`misp_json_self`) after this long without data.
const MISP_KEEPALIVE: Duration = Duration::from_secs(10);

/// How long the TCP connection and then the ZeroMQ handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`.
const MECHANISM_MISMATCH: u32 = 0x1100_0002;
/// A subscriber whose health hash is older than this has stopped.
const SUBSCRIBER_STALE: f64 = 15.0;
/// Longer than two keep-alive intervals with nothing at all received, while connected. MISP
/// sends a keep-alive only after 10 s without data, so a busy publisher sends none: only
/// silence (no data and no keep-alive) means it is stalled.
const SILENCE_STALE: f64 = 30.0;

pub(super) type Probes = Vec<(String, JoinHandle<Check>)>;

/// Starts one probe thread per configured MISP instance.
pub(super) fn start_probes(cfg: &Config, silence: Duration) -> Probes {
    let target = RedisTarget::from_config(&cfg.redis);
    cfg.redis
        .misp_instances
        .iter()
        .map(|inst| {
            let spec = FeedSpec::from(inst);
            let delivered_before = delivered_before(&target, cfg.redis.list_db, inst);
            let id = format!("feed:{}", inst.name);
            let name = id.clone();
            let handle = std::thread::Builder::new()
                .name("selftest-feed".into())
                .spawn(move || probe(&name, &spec, silence, delivered_before));
            match handle {
                Ok(h) => (id, h),
                Err(e) => {
                    let failed = Check::fail(id.clone(), format!("cannot start a thread: {e}"), "");
                    // A thread that only returns the failure, so the caller has one shape.
                    let h = std::thread::spawn(move || failed);
                    (id, h)
                }
            }
        })
        .collect()
}

pub(super) fn finish_probes(probes: Probes, cfg: &Config) -> Vec<Check> {
    if cfg.redis.misp_instances.is_empty() {
        return vec![Check::warn(
            "feeds",
            "no MISP instance configured ([RedisGlobal] misp_instances is empty): `mispdash run` \
             shows its simulated demo feed",
            "add your MISP to misp_instances: {\"name\", \"url\", \"zmq\": \"tcp://misp:50000\"}",
        )];
    }
    probes
        .into_iter()
        .map(|(id, h)| {
            h.join().unwrap_or_else(|_| {
                Check::fail(id, "the probe crashed", "report this as a bug in mispdash")
            })
        })
        .collect()
}

/// Whether a mispdash subscriber received MISP messages from this endpoint before (its health
/// hash), which makes a silent publisher a hung one, not a stranger.
fn delivered_before(target: &RedisTarget, list_db: i64, inst: &MispInstance) -> bool {
    let Ok(mut c) = target.connect(list_db) else {
        return false;
    };
    let h: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys::feed_status(&inst.name))
        .query(&mut c)
        .unwrap_or_default();
    h.get("endpoint") == Some(&inst.zmq)
        && h.get("messages")
            .and_then(|m| m.parse::<u64>().ok())
            .is_some_and(|m| m > 0)
}

const PLUGIN_FIX: &str = "enable MISP's ZeroMQ publisher (Administration → Server Settings → \
     Plugin: ZeroMQ_enable = true, then Diagnostics → ZeroMQ → Start); when MISP runs on another \
     host, Plugin.ZeroMQ_host must not be 127.0.0.1/localhost (it then refuses other machines): \
     set it to 0.0.0.0 or the host's address; check the \"zmq\" URL in misp_instances";

/// `tcp://host:port` (optionally `tcp://source;host:port`) → host and port.
fn tcp_host_port(endpoint: &str) -> Option<(String, u16)> {
    let rest = endpoint.strip_prefix("tcp://")?;
    let rest = rest.rsplit(';').next()?;
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// What the peer sent first on a plain TCP connection.
enum Greeting {
    /// A ZeroMQ (ZMTP 3) peer, and its security mechanism (`NULL`, `PLAIN`, `CURVE`).
    Zmq { mechanism: String },
    /// Something else: another program.
    Other(Vec<u8>),
    /// Nothing: a hung publisher (the kernel accepts the connection for it), or a program that
    /// waits for its client to speak first.
    Silent,
}

/// How long a peer may take to greet: a ZeroMQ publisher greets at once.
const GREETING_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends the start of a ZMTP 3 greeting (signature and major version, no mechanism: a whole
/// greeting with another mechanism than the peer's makes libzmq hang up at once) and reads
/// the peer's: a ZeroMQ peer sends its own, which names the mechanism it requires. This tells
/// a PLAIN-only publisher from another program for certain.
/// The status line an HTTP server at `addr` answers to a plain request, if it is one.
fn answers_http(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok()?;
    s.set_read_timeout(Some(GREETING_TIMEOUT)).ok()?;
    s.write_all(b"HEAD / HTTP/1.0\r\nHost: selftest\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.starts_with("HTTP/")
        .then(|| text.lines().next().unwrap_or("").to_string())
}

fn read_greeting(mut stream: TcpStream) -> Greeting {
    use std::io::{Read, Write};
    let ours = [0xFF, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7F, 3];
    let _ = stream.set_read_timeout(Some(GREETING_TIMEOUT));
    let _ = stream.write_all(&ours);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + GREETING_TIMEOUT;
    while got.len() < 32 && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        // Anything but a ZeroMQ signature is decided at once.
        if got.first().is_some_and(|b| *b != 0xFF) {
            break;
        }
    }
    match got.as_slice() {
        [] => Greeting::Silent,
        [0xFF, _, _, _, _, _, _, _, _, 0x7F, ..] => Greeting::Zmq {
            mechanism: got
                .get(12..32)
                .map(|m| {
                    String::from_utf8_lossy(m)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_default(),
        },
        _ => Greeting::Other(got),
    }
}

/// A short printable view of what a peer sent.
fn preview(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    format!("{text:?}")
}

fn probe(id: &str, spec: &FeedSpec, silence: Duration, delivered_before: bool) -> Check {
    let ep = &spec.endpoint;
    if let Some((host, port)) = tcp_host_port(ep) {
        let addrs: Vec<_> = match (host.as_str(), port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) => {
                return Check::fail(
                    id,
                    format!("cannot resolve the host of {ep}: {e}"),
                    "correct the host name in the instance's \"zmq\" URL, or the DNS",
                )
            }
        };
        let mut last_err = None;
        let mut connected = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let Some(stream) = connected else {
            return match last_err {
                Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    let seen = if is_loopback(&host) {
                        format!("{ep} refuses connections: nothing listens on port {port} of this machine")
                    } else {
                        format!("{ep} refuses connections: MISP's ZeroMQ publisher is off, or listens only on the MISP host's 127.0.0.1")
                    };
                    Check::fail(id, seen, PLUGIN_FIX)
                }
                Some(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    ) =>
                {
                    Check::fail(
                        id,
                        format!("{ep} does not answer within {} s (packets dropped)", CONNECT_TIMEOUT.as_secs()),
                        format!("open TCP port {port} between this machine and MISP (firewall, security group), or correct the host"),
                    )
                }
                Some(e) => Check::fail(id, format!("cannot connect to {ep}: {e}"), PLUGIN_FIX),
                None => Check::fail(id, format!("{ep}: the host has no address"), PLUGIN_FIX),
            };
        };
        let peer = stream.peer_addr().ok();
        let greeting = read_greeting(stream);
        // A silent peer may be a frozen publisher, or an HTTP server waiting for a request
        // (which a ZeroMQ greeting is not): asked as HTTP, the latter answers.
        if let (Greeting::Silent, Some(http)) = (&greeting, peer.and_then(answers_http)) {
            return Check::fail(
                id,
                format!(
                    "{ep} is not a ZeroMQ publisher: an HTTP server listens on port {port} \
                     (it answered {http:?})"
                ),
                "the port belongs to a web server: point the \"zmq\" URL at MISP's ZeroMQ \
                 publisher (Plugin.ZeroMQ_port, default 50000)",
            );
        }
        match greeting {
            Greeting::Zmq { mechanism } => {
                let with_creds = spec.username.is_some();
                match mechanism.as_str() {
                    "PLAIN" if !with_creds => {
                        return Check::fail(
                            id,
                            format!("{ep} is a ZeroMQ publisher that requires PLAIN authentication, and no credentials are configured"),
                            "add \"zmq_username\" and \"zmq_password\" (MISP's Plugin.ZeroMQ_username/password) to this instance in misp_instances",
                        )
                    }
                    "NULL" if with_creds => {
                        return Check::fail(
                            id,
                            format!("{ep} is a ZeroMQ publisher without authentication, but credentials are configured"),
                            "remove zmq_username/zmq_password from this instance, or set Plugin.ZeroMQ_username/password in MISP",
                        )
                    }
                    _ => {}
                }
            }
            Greeting::Other(bytes) => {
                return Check::fail(
                    id,
                    format!(
                        "{ep} is not a ZeroMQ publisher: the program on port {port} answered {}",
                        preview(&bytes)
                    ),
                    "the port belongs to another program: point the \"zmq\" URL at MISP's ZeroMQ \
                     publisher (Plugin.ZeroMQ_port, default 50000)",
                )
            }
            Greeting::Silent if delivered_before => {
                return Check::fail(
                    id,
                    format!("{ep} accepts TCP connections but does not answer, though MISP messages came from it before: MISP's publisher hangs"),
                    "restart MISP's ZeroMQ publisher (Diagnostics → ZeroMQ → Restart, or kill \
                     mispzmq.py so MISP starts it again) and read MISP's app/tmp/logs/mispzmq.log",
                )
            }
            Greeting::Silent => {
                return Check::fail(
                    id,
                    format!("{ep} accepts TCP connections but says nothing (a ZeroMQ publisher greets at once)"),
                    "either MISP's publisher hangs (restart it: Diagnostics → ZeroMQ → Restart) or \
                     another program holds the port (MISP's default is 50000)",
                )
            }
        }
    }
    match zmq_probe(spec, silence) {
        Ok(check) => Check {
            id: id.into(),
            ..check
        },
        Err(e) => Check::fail(
            id,
            format!("cannot open a ZeroMQ socket for {ep}: {e}"),
            "check the \"zmq\" URL (tcp://host:port) and the credentials' length",
        ),
    }
}

/// A monitor message: frame 1 holds the event (u16) and its value (u32) in native byte order.
fn parse_event(frames: &[Vec<u8>]) -> Option<(u16, u32)> {
    let first = frames.first()?;
    let event = u16::from_ne_bytes(first.get(0..2)?.try_into().ok()?);
    let value = u32::from_ne_bytes(first.get(2..6)?.try_into().ok()?);
    Some((event, value))
}

fn zmq_probe(spec: &FeedSpec, silence: Duration) -> zmq::Result<Check> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    use zmq::SocketEvent as E;
    let ep = &spec.endpoint;
    let with_creds = spec.username.is_some();
    let ctx = zmq::Context::new();
    let sub = ctx.socket(zmq::SUB)?;
    sub.set_linger(0)?;
    if let Some(user) = &spec.username {
        sub.set_plain_username(Some(user))?;
        sub.set_plain_password(spec.password.as_deref())?;
    }
    let mon_ep = format!(
        "inproc://mispdash-selftest-{}",
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    sub.monitor(&mon_ep, E::ALL as i32)?;
    let mon = ctx.socket(zmq::PAIR)?;
    mon.set_linger(0)?;
    mon.connect(&mon_ep)?;
    sub.connect(ep)?;
    sub.set_subscribe(b"")?;

    let start = Instant::now();
    let mut handshake: Option<Instant> = None;
    loop {
        let deadline = match handshake {
            Some(t) => t + silence,
            None => start + HANDSHAKE_TIMEOUT,
        };
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = (deadline - now).as_millis().clamp(1, i64::MAX as u128) as i64;
        let mut items = [sub.as_poll_item(zmq::POLLIN), mon.as_poll_item(zmq::POLLIN)];
        zmq::poll(&mut items, wait)?;
        if items[1].is_readable() {
            let frames = mon.recv_multipart(0)?;
            let Some((event, value)) = parse_event(&frames) else {
                continue;
            };
            let is = |e: E| event == e.to_raw();
            if is(E::HANDSHAKE_SUCCEEDED) {
                handshake.get_or_insert_with(Instant::now);
            } else if is(E::HANDSHAKE_FAILED_AUTH) {
                return Ok(if with_creds {
                    Check::fail(
                        "",
                        format!("{ep} refused the PLAIN credentials of user {:?} (ZAP status {value})", spec.username.as_deref().unwrap_or("")),
                        "set zmq_username/zmq_password of this instance to MISP's Plugin.ZeroMQ_username / Plugin.ZeroMQ_password",
                    )
                } else {
                    Check::fail(
                        "",
                        format!("{ep} refused the connection: it requires authentication (ZAP status {value})"),
                        "add \"zmq_username\" and \"zmq_password\" (MISP's Plugin.ZeroMQ_username/password) to this instance in misp_instances",
                    )
                });
            } else if is(E::HANDSHAKE_FAILED_PROTOCOL) && value == MECHANISM_MISMATCH {
                return Ok(if with_creds {
                    Check::fail(
                        "",
                        format!("{ep} does not use PLAIN authentication, but credentials are configured"),
                        "remove zmq_username/zmq_password from this instance, or set Plugin.ZeroMQ_username/password in MISP",
                    )
                } else {
                    Check::fail(
                        "",
                        format!("{ep} requires PLAIN authentication and no credentials are configured"),
                        "add \"zmq_username\" and \"zmq_password\" (MISP's Plugin.ZeroMQ_username/password) to this instance in misp_instances",
                    )
                });
            } else if is(E::HANDSHAKE_FAILED_PROTOCOL) {
                return Ok(Check::fail(
                    "",
                    format!("ZeroMQ handshake with {ep} failed (protocol error {value:#x})"),
                    "is the port MISP's ZeroMQ publisher? MISP's default is 50000",
                ));
            } else if is(E::HANDSHAKE_FAILED_NO_DETAIL) && handshake.is_none() {
                let err = std::io::Error::from_raw_os_error(value as i32);
                let hint = if with_creds {
                    "check that the publisher uses PLAIN authentication and the port is MISP's ZeroMQ port"
                } else {
                    "the publisher may require authentication: add zmq_username/zmq_password (MISP's Plugin.ZeroMQ_username/password)"
                };
                return Ok(Check::fail(
                    "",
                    format!("{ep} closed the connection during the ZeroMQ handshake ({err})"),
                    hint,
                ));
            }
        }
        if items[0].is_readable() {
            let frame = sub.recv_bytes(0)?;
            let after = handshake.unwrap_or(start).elapsed().as_secs_f64();
            let topic = frame.split(|b| *b == b' ').next().unwrap_or(&[]);
            let topic = String::from_utf8_lossy(topic).into_owned();
            return Ok(if topic.starts_with("misp_json") {
                Check::pass(
                    "",
                    format!(
                        "{ep}: connected{}, first message ({topic}) after {after:.1} s",
                        if with_creds {
                            " with PLAIN authentication"
                        } else {
                            ""
                        }
                    ),
                )
            } else {
                Check::warn(
                    "",
                    format!("{ep} publishes, but not MISP messages (first topic {topic:?})"),
                    "check that the URL is MISP's ZeroMQ publisher",
                )
            });
        }
    }
    Ok(match handshake {
        // Under MISP's keep-alive interval, silence proves nothing: a healthy publisher with
        // nothing to say sends its first keep-alive only after 10 s.
        Some(_) if silence < MISP_KEEPALIVE => Check::warn(
            "",
            format!(
                "{ep}: connected, nothing received in {} s, which is shorter than MISP's 10 s \
                 keep-alive interval: a quiet MISP and a stalled one look the same so soon",
                silence.as_secs_f64()
            ),
            "run selftest again with --silence 13 (the default) to tell them apart",
        ),
        Some(_) => Check::fail(
            "",
            format!(
                "{ep}: connected, but nothing received for {} s; MISP sends a keep-alive (misp_json_self) after 10 s without data",
                silence.as_secs_f64()
            ),
            "MISP's publisher is stalled: restart it (Diagnostics → ZeroMQ → Restart, or kill \
             mispzmq.py so MISP starts it again) and read MISP's app/tmp/logs/mispzmq.log",
        ),
        None => Check::fail(
            "",
            format!(
                "{ep} accepts TCP connections but completed no ZeroMQ handshake within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            ),
            "the port belongs to another program, not MISP's ZeroMQ publisher (default port 50000)",
        ),
    })
}

/// A publisher that selftest reaches and the running subscriber does not: the subscriber's
/// host, sandbox or firewall stops it. The Debian units admit only this host and the private
/// and link-local ranges, and a firewall drops the packets silently (the subscriber retries
/// without an error to report), so this is named from here.
const UNREACHED_FROM_SUBSCRIBER_FIX: &str = "what stops it is where the subscriber runs: \
     under the Debian package's units, IPAddressAllow= admits only this host and the private \
     and link-local ranges; add the publisher's address with `systemctl edit mispdash` (or \
     mispdash-subscribe@<name>): [Service] IPAddressAllow=<address>, then restart it. \
     Otherwise compare the subscriber's host and firewall (or container network) with this one";

/// What the running subscribers wrote in their health hashes.
/// `reached` names the feeds whose publisher selftest itself connected to.
pub(super) fn check_subscribers(
    cfg: &Config,
    target: &RedisTarget,
    reached: &[String],
) -> Vec<Check> {
    let mut conn = match target.connect(cfg.redis.list_db) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "subscribers",
                format!("cannot read the subscribers' status: {e}"),
                "check the Redis line above",
            )]
        }
    };
    cfg.redis
        .misp_instances
        .iter()
        .map(|inst| subscriber(&mut conn, inst, reached.contains(&inst.name)))
        .collect()
}

fn subscriber(conn: &mut redis::Connection, inst: &MispInstance, reached: bool) -> Check {
    let id = format!("subscriber:{}", inst.name);
    let key = keys::feed_status(&inst.name);
    let h: HashMap<String, String> = match redis::cmd("HGETALL").arg(&key).query(conn) {
        Ok(h) => h,
        Err(e) => return Check::fail(id, format!("cannot read {key:?}: {e}"), ""),
    };
    if h.is_empty() {
        return Check::warn(
            id,
            "no mispdash subscriber has ever reported for this feed",
            "start the dashboard (`mispdash run`) or `mispdash subscribe`; if the original's \
             zmq_subscriber.py feeds the buffer instead, this is expected",
        );
    }
    let num = |f: &str| -> f64 {
        h.get(f)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let now = now_epoch();
    let ago = |f: &str| -> Option<f64> {
        let t = num(f);
        (t > 0.0).then(|| (now - t).max(0.0))
    };
    let fmt_ago = |a: Option<f64>| match a {
        Some(s) => format!("{s:.0} s ago"),
        None => "never".to_string(),
    };
    let endpoint = h.get("endpoint").cloned().unwrap_or_default();
    let updated = ago("updated");
    if updated.is_none_or(|a| a > SUBSCRIBER_STALE) {
        return Check::fail(
            id,
            format!(
                "the subscriber for {endpoint} stopped reporting (last report {})",
                fmt_ago(updated)
            ),
            "start the dashboard again (`mispdash run`) and read its log",
        );
    }
    // Two subscribers of one feed name push every frame twice.
    let writers: HashMap<String, f64> = redis::cmd("HGETALL")
        .arg(keys::feed_writers(&inst.name))
        .query(conn)
        .unwrap_or_default();
    let live: Vec<&String> = writers
        .iter()
        .filter(|(_, t)| now - **t <= SUBSCRIBER_STALE)
        .map(|(w, _)| w)
        .collect();
    if live.len() > 1 {
        return Check::fail(
            id,
            format!(
                "{} subscribers feed {:?} at once (runs {}): every frame reaches the buffer once per subscriber and is counted that many times",
                live.len(),
                inst.name,
                live.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "keep one: stop the extra `mispdash subscribe`/`mispdash run` (or the original's \
             zmq_subscriber.py) for this feed; a run's id starts with its pid",
        );
    }
    // A subscriber started before the configuration was edited still uses the old one.
    let configured_creds =
        crate::feed::credentials_id(inst.zmq_username.as_deref(), inst.zmq_password.as_deref());
    let running_creds = h.get("credentials");
    if endpoint != inst.zmq || running_creds.is_some_and(|c| *c != configured_creds) {
        let what = if endpoint != inst.zmq {
            format!(
                "endpoint {endpoint}, while this configuration says {}",
                inst.zmq
            )
        } else {
            format!(
                "credentials {}, while this configuration has {configured_creds}",
                running_creds.map(String::as_str).unwrap_or("?")
            )
        };
        return Check::warn(
            id,
            format!("the running subscriber uses {what}"),
            "restart the dashboard (`mispdash run`, or its service) so it reads this \
             configuration; or check that --config names the file it runs with",
        );
    }
    if h.get("connected").map(String::as_str) != Some("1") {
        let auth = num("auth_failures");
        let hs = num("handshake_failures");
        return Check::fail(
            id,
            format!(
                "the running subscriber is not connected to {endpoint} ({auth} refused logins, {hs} failed handshakes){}",
                if reached { ", while selftest itself reached this publisher" } else { "" }
            ),
            if reached {
                UNREACHED_FROM_SUBSCRIBER_FIX
            } else {
                "see the feed line above for the cause"
            },
        );
    }
    let seen = format!(
        "connected to {endpoint}; {} message(s), last {}, last keep-alive {}",
        num("messages"),
        fmt_ago(ago("last_message")),
        fmt_ago(ago("last_keepalive"))
    );
    let heard = match (ago("last_message"), ago("last_keepalive")) {
        (Some(m), Some(k)) => Some(m.min(k)),
        (m, k) => m.or(k),
    };
    match heard {
        Some(a) if a <= SILENCE_STALE => Check::pass(id, seen),
        _ => Check::warn(
            id,
            format!("{seen}: nothing at all for {}", fmt_ago(heard)),
            "MISP sends a keep-alive after 10 s without data: a publisher that sends nothing \
             for longer is stalled; restart MISP's ZeroMQ publisher (Diagnostics → ZeroMQ)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_give_host_and_port() {
        assert_eq!(
            tcp_host_port("tcp://misp.example:50000"),
            Some(("misp.example".into(), 50000))
        );
        assert_eq!(tcp_host_port("tcp://[::1]:5"), Some(("::1".into(), 5)));
        assert_eq!(
            tcp_host_port("tcp://eth0;10.1.2.3:7"),
            Some(("10.1.2.3".into(), 7))
        );
        assert_eq!(tcp_host_port("ipc:///tmp/x"), None);
    }
}
