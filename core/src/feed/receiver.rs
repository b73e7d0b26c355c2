//! The ZeroMQ side of a feed: one SUB socket, its monitor, and the frame → entry conversion.

use super::backlog::{Dest, Entry};
use super::{envelope, FeedOptions, FeedSpec, LogGate, Shared};
use crate::clock::Clock;
use base64::Engine as _;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// First reconnect delay (libzmq's default is 100 ms)…
const RECONNECT_IVL_MS: i32 = 250;
/// …doubling up to this. MISP sends what it queued while its publisher was down within a
/// second or two of the publisher's return: a subscriber that comes back later misses it (it
/// is then read back through the REST API, see `gaps`, when the feed has an API key).
const RECONNECT_IVL_MAX_MS: i32 = 1_000;
/// libzmq's receive queue: larger than its default 1000 so a burst while this thread is busy
/// logging or taking the backlog lock is not dropped by libzmq.
const RCVHWM: i32 = 10_000;
/// Longest wait before re-creating the socket after failed handshakes.
const HANDSHAKE_RETRY_MAX: Duration = Duration::from_secs(60);
/// Warn when no session has been up for this long (wrong endpoint, firewall, MISP down).
const NOT_CONNECTED_WARN_AFTER: Duration = Duration::from_secs(30);
/// …and repeat that warning this often while it lasts.
const NOT_CONNECTED_WARN_EVERY: Duration = Duration::from_secs(300);

/// The sockets of one feed, opened on the caller's thread so setup errors reach `spawn`'s caller.
pub(crate) struct Sockets {
    sub: zmq::Socket,
    monitor: zmq::Socket,
    /// Declared last so it is dropped after the sockets (fields drop in order).
    _ctx: zmq::Context,
}

fn zerr(spec: &FeedSpec, what: &str, e: zmq::Error) -> io::Error {
    let kind = io::Error::from(e).kind();
    io::Error::new(
        kind,
        format!("feed {:?} ({}): {}: {}", spec.name, spec.endpoint, what, e),
    )
}

/// Creates the SUB socket with PLAIN credentials, heartbeats and reconnect back-off, attaches a
/// monitor (before connecting, so the first events are seen), connects and subscribes to all.
pub(crate) fn open(spec: &FeedSpec, opts: &FeedOptions) -> io::Result<Sockets> {
    static MONITOR_SEQ: AtomicU64 = AtomicU64::new(0);

    if spec.password.is_some() && spec.username.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "feed {:?}: a ZeroMQ password is configured without a username",
                spec.name
            ),
        ));
    }
    let ctx = zmq::Context::new();
    let sub = ctx
        .socket(zmq::SUB)
        .map_err(|e| zerr(spec, "cannot create SUB socket", e))?;
    let set = |what: &str, r: zmq::Result<()>| r.map_err(|e| zerr(spec, what, e));
    set("ZMQ_LINGER", sub.set_linger(0))?;
    set("ZMQ_RCVHWM", sub.set_rcvhwm(RCVHWM))?;
    let ms = |d: Duration| d.as_millis().clamp(1, i32::MAX as u128) as i32;
    set(
        "ZMQ_HEARTBEAT_IVL",
        sub.set_heartbeat_ivl(ms(opts.heartbeat_interval)),
    )?;
    set(
        "ZMQ_HEARTBEAT_TIMEOUT",
        sub.set_heartbeat_timeout(ms(opts.heartbeat_timeout)),
    )?;
    // libzmq caps the TTL (sent in deciseconds in a 16-bit field) at 6553.5 s.
    set(
        "ZMQ_HEARTBEAT_TTL",
        sub.set_heartbeat_ttl(ms(opts.heartbeat_timeout).min(6_553_500)),
    )?;
    set("ZMQ_RECONNECT_IVL", sub.set_reconnect_ivl(RECONNECT_IVL_MS))?;
    set(
        "ZMQ_RECONNECT_IVL_MAX",
        sub.set_reconnect_ivl_max(RECONNECT_IVL_MAX_MS),
    )?;
    if let Some(user) = &spec.username {
        set(
            "PLAIN username (empty or longer than 255 bytes?)",
            sub.set_plain_username(Some(user)),
        )?;
        if let Some(pass) = spec.password.as_deref().filter(|p| !p.is_empty()) {
            set(
                "PLAIN password (longer than 255 bytes?)",
                sub.set_plain_password(Some(pass)),
            )?;
        }
    }
    let mon_endpoint = format!(
        "inproc://mispdash-feed-monitor-{}",
        MONITOR_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    set(
        "cannot start socket monitor",
        sub.monitor(&mon_endpoint, zmq::SocketEvent::ALL as i32),
    )?;
    let monitor = ctx
        .socket(zmq::PAIR)
        .map_err(|e| zerr(spec, "cannot create monitor socket", e))?;
    set("monitor ZMQ_LINGER", monitor.set_linger(0))?;
    set("cannot connect monitor", monitor.connect(&mon_endpoint))?;
    set("cannot connect to endpoint", sub.connect(&spec.endpoint))?;
    set("cannot subscribe", sub.set_subscribe(b""))?;
    Ok(Sockets {
        sub,
        monitor,
        _ctx: ctx,
    })
}

/// Sets `receiver_done` and wakes the pusher when the receiver ends, however it ends.
struct DoneGuard(Arc<Shared>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.0.stats.connected.store(false, Ordering::Relaxed);
        self.0.receiver_done.store(true, Ordering::Relaxed);
        self.0.wake.notify_all();
    }
}

pub(crate) struct Receiver {
    spec: FeedSpec,
    sockets: Sockets,
    shared: Arc<Shared>,
    clock: Clock,
    opts: FeedOptions,
    multipart_log: LogGate,
    non_utf8_log: LogGate,
    auth_log: LogGate,
    handshake_log: LogGate,
    error_log: LogGate,
    /// When to re-create the socket after a failed handshake (see [`Receiver::schedule_rebuild`]).
    rebuild_at: Option<Instant>,
    rebuild_delay: Duration,
    /// Since when no session has been up (`None` while connected).
    down_since: Option<Instant>,
    down_warned: Option<Instant>,
    /// Since when (epoch) the feed has been away after having been connected: the start of
    /// a gap in what it received.
    away_since: Option<f64>,
}

impl Receiver {
    pub fn new(
        spec: FeedSpec,
        sockets: Sockets,
        shared: Arc<Shared>,
        clock: Clock,
        opts: FeedOptions,
    ) -> Self {
        let every = Duration::from_secs(10);
        let retry = opts.handshake_retry;
        Receiver {
            spec,
            sockets,
            shared,
            clock,
            opts,
            multipart_log: LogGate::new(every),
            non_utf8_log: LogGate::new(every),
            // Refused credentials do not fix themselves: one line a minute is enough.
            auth_log: LogGate::new(Duration::from_secs(60)),
            handshake_log: LogGate::new(Duration::from_secs(60)),
            error_log: LogGate::new(every),
            rebuild_at: None,
            rebuild_delay: retry,
            down_since: Some(Instant::now()),
            down_warned: None,
            away_since: None,
        }
    }

    pub fn run(mut self) {
        let _done = DoneGuard(self.shared.clone());
        let poll_ms = self.opts.poll_interval.as_millis().clamp(1, 10_000) as i64;
        while !self.shared.stopped() {
            let polled = {
                let mut items = [
                    self.sockets.sub.as_poll_item(zmq::POLLIN),
                    self.sockets.monitor.as_poll_item(zmq::POLLIN),
                ];
                zmq::poll(&mut items, poll_ms)
            };
            match polled {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(zmq::Error::ETERM) => break,
                Err(e) => {
                    self.log_error("zmq_poll failed", e);
                    std::thread::sleep(self.opts.poll_interval);
                }
            }
            self.drain_monitor();
            if !self.drain_frames() {
                break;
            }
            self.warn_if_down_too_long();
            self.rebuild_if_due();
        }
        // What libzmq already holds would be lost with the socket: take it too.
        self.drain_frames();
        tracing::info!("feed {:?}: subscriber stopped", self.spec.name);
    }

    fn log_error(&mut self, what: &str, e: zmq::Error) {
        if let Some(n) = self.error_log.hit() {
            tracing::warn!("feed {:?}: {} ({} time(s)): {}", self.spec.name, what, n, e);
        }
    }

    /// Reads what is immediately available, up to a batch, and queues it. Returns false when
    /// the context is being terminated (nothing more can be read).
    fn drain_frames(&mut self) -> bool {
        let mut entries = Vec::new();
        let mut frames = 0usize;
        let mut alive = true;
        while frames < self.opts.batch_frames.max(1) {
            // Parts of a multipart message arrive together, so after the first part the rest
            // are already there: DONTWAIT cannot split a message.
            match self.sockets.sub.recv_multipart(zmq::DONTWAIT) {
                Ok(parts) => {
                    frames += parts.len();
                    self.handle_message(parts, &mut entries);
                }
                Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => break,
                Err(zmq::Error::ETERM) => {
                    alive = false;
                    break;
                }
                Err(e) => {
                    self.log_error("receiving failed", e);
                    break;
                }
            }
        }
        if !entries.is_empty() {
            self.shared.enqueue(entries, &self.opts);
        }
        alive
    }

    fn handle_message(&mut self, parts: Vec<Vec<u8>>, out: &mut Vec<Entry>) {
        let stats = &self.shared.stats;
        let now = self.clock.now_f64();
        if parts.len() > 1 {
            stats
                .multipart_parts
                .fetch_add(parts.len() as u64, Ordering::Relaxed);
            if let Some(n) = self.multipart_log.hit() {
                tracing::warn!(
                    "feed {:?}: received a multipart message of {} frames ({} such message(s) \
                     since the last report); MISP sends single frames, so each part is pushed \
                     as its own entry, as the original does",
                    self.spec.name,
                    parts.len(),
                    n
                );
            }
        }
        for part in parts {
            stats.messages.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(part.len() as u64, Ordering::Relaxed);
            stats
                .last_message_epoch
                .store(now.to_bits(), Ordering::Relaxed);
            match String::from_utf8(part) {
                Ok(content) => {
                    if content.starts_with("misp_json_self") {
                        stats
                            .last_keepalive_epoch
                            .store(now.to_bits(), Ordering::Relaxed);
                    }
                    out.push(Entry {
                        dest: Dest::Buffer,
                        value: envelope(&self.spec.name, &content),
                    });
                }
                Err(e) => {
                    let bytes = e.into_bytes();
                    stats.non_utf8.fetch_add(1, Ordering::Relaxed);
                    if let Some(n) = self.non_utf8_log.hit() {
                        tracing::warn!(
                            "feed {:?}: frame of {} bytes is not UTF-8 ({} such frame(s) since \
                             the last report), moved to the dead-letter list; it starts {}",
                            self.spec.name,
                            bytes.len(),
                            n,
                            preview(&bytes)
                        );
                    }
                    out.push(Entry {
                        dest: Dest::DeadLetter,
                        value: dead_letter(&self.spec.name, &bytes, now),
                    });
                }
            }
        }
    }

    fn drain_monitor(&mut self) {
        loop {
            match self.sockets.monitor.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => {
                    if let Some((event, value, addr)) = parse_event(&frames) {
                        self.on_event(event, value, &addr);
                    }
                }
                Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) | Err(zmq::Error::ETERM) => break,
                Err(e) => {
                    self.log_error("reading socket monitor failed", e);
                    break;
                }
            }
        }
    }

    fn on_event(&mut self, event: u16, value: u32, addr: &str) {
        use zmq::SocketEvent as E;
        let stats = &self.shared.stats;
        let name = &self.spec.name;
        let is = |e: E| event == e.to_raw();
        if is(E::HANDSHAKE_SUCCEEDED) {
            stats.connected.store(true, Ordering::Relaxed);
            stats.connects.fetch_add(1, Ordering::Relaxed);
            stats.down_since_epoch.store(0, Ordering::Relaxed);
            self.down_since = None;
            self.down_warned = None;
            self.auth_log.reset();
            self.handshake_log.reset();
            self.rebuild_at = None;
            self.rebuild_delay = self.opts.handshake_retry;
            tracing::info!("feed {:?}: connected to {}", name, addr);
            if let Some(since) = self.away_since.take() {
                // Traffic may have stopped up to a heartbeat timeout before the disconnection
                // was noticed.
                let from = since - self.opts.heartbeat_timeout.as_secs_f64();
                let to = self.clock.now_f64();
                match &self.opts.gap_fill {
                    Some(g) => g.spawn(from, to),
                    None => tracing::warn!(
                        "feed {:?}: was away for {:.0} s; what MISP published meanwhile is \
                         missing (give the feed an \"api_key\" to have such gaps filled, or run \
                         `mispdash backfill`)",
                        name,
                        to - from
                    ),
                }
            }
        } else if is(E::DISCONNECTED) {
            if stats.connected.swap(false, Ordering::Relaxed) {
                stats.disconnects.fetch_add(1, Ordering::Relaxed);
                stats
                    .down_since_epoch
                    .store(self.clock.now_f64().to_bits(), Ordering::Relaxed);
                self.down_since = Some(Instant::now());
                self.away_since.get_or_insert(self.clock.now_f64());
                if self.shared.stopped() {
                    // Stopping: the demo publisher (or MISP) may go first; nothing is wrong.
                    tracing::debug!("feed {:?}: disconnected from {} while stopping", name, addr);
                } else {
                    tracing::warn!(
                        "feed {:?}: disconnected from {} (publisher gone or heartbeat timed \
                         out); reconnecting",
                        name,
                        addr
                    );
                }
            }
        } else if is(E::HANDSHAKE_FAILED_AUTH) {
            stats.auth_failures.fetch_add(1, Ordering::Relaxed);
            if let Some(n) = self.auth_log.hit() {
                if self.spec.username.is_some() {
                    tracing::error!(
                        "feed {:?}: PLAIN authentication refused by {} (status {}, {} time(s)): \
                         check Plugin.ZeroMQ_username/password",
                        name,
                        self.spec.endpoint,
                        value,
                        n
                    );
                } else {
                    tracing::error!(
                        "feed {:?}: connection refused by the authentication of {} (status {}, \
                         {} time(s)): does MISP require Plugin.ZeroMQ_username/password?",
                        name,
                        self.spec.endpoint,
                        value,
                        n
                    );
                }
            }
            self.schedule_rebuild();
        } else if is(E::HANDSHAKE_FAILED_PROTOCOL) || is(E::HANDSHAKE_FAILED_NO_DETAIL) {
            stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
            if let Some(n) = self.handshake_log.hit() {
                let has_user = self.spec.username.is_some();
                let detail = if is(E::HANDSHAKE_FAILED_NO_DETAIL) {
                    // The value is an errno: typically the publisher closed the connection.
                    let err = io::Error::from_raw_os_error(value as i32);
                    let hint = if has_user {
                        "is the endpoint a ZeroMQ publisher that accepts PLAIN?"
                    } else {
                        "does MISP require Plugin.ZeroMQ_username/password?"
                    };
                    format!("connection closed during the handshake ({err}): {hint}")
                } else if value == 0x1100_0002 {
                    // ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                    if has_user {
                        "the publisher does not use PLAIN authentication: remove \
                         zmq_username/zmq_password"
                            .to_string()
                    } else {
                        "the publisher requires authentication: set zmq_username/zmq_password \
                         to MISP's Plugin.ZeroMQ_username/password"
                            .to_string()
                    }
                } else {
                    format!(
                        "protocol error {value:#x}: is the endpoint a ZeroMQ publisher of a \
                         compatible version?"
                    )
                };
                tracing::error!(
                    "feed {:?}: ZeroMQ handshake with {} failed ({} time(s)): {}",
                    name,
                    self.spec.endpoint,
                    n,
                    detail
                );
            }
            self.schedule_rebuild();
        } else {
            tracing::debug!(
                "feed {:?}: socket event {:#x} value {} on {}",
                name,
                event,
                value,
                addr
            );
        }
    }

    /// libzmq gives up on an endpoint for good after a handshake fails on authentication or
    /// protocol grounds (it only reconnects after *connection* errors). Credentials fixed on the
    /// MISP side, or a ZAP handler that was briefly unavailable, would then never be retried; so
    /// after such a failure the socket is re-created, after a delay that doubles (from
    /// `handshake_retry`) up to a minute while failures go on.
    fn schedule_rebuild(&mut self) {
        if self.rebuild_at.is_none() {
            self.rebuild_at = Some(Instant::now() + self.rebuild_delay);
            self.rebuild_delay = (self.rebuild_delay * 2).min(HANDSHAKE_RETRY_MAX);
        }
    }

    fn rebuild_if_due(&mut self) {
        let Some(at) = self.rebuild_at else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        self.rebuild_at = None;
        if self.shared.stats.connected.load(Ordering::Relaxed) {
            return;
        }
        // Nothing can be waiting without a session, but take it if it is.
        self.drain_frames();
        match open(&self.spec, &self.opts) {
            Ok(sockets) => {
                tracing::debug!(
                    "feed {:?}: re-created the socket to retry the handshake with {}",
                    self.spec.name,
                    self.spec.endpoint
                );
                self.sockets = sockets;
            }
            Err(e) => {
                tracing::warn!(
                    "feed {:?}: cannot re-create the socket: {}",
                    self.spec.name,
                    e
                );
                self.schedule_rebuild();
            }
        }
    }

    fn warn_if_down_too_long(&mut self) {
        let Some(since) = self.down_since else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(since) < NOT_CONNECTED_WARN_AFTER {
            return;
        }
        if let Some(t) = self.down_warned {
            if now.duration_since(t) < NOT_CONNECTED_WARN_EVERY {
                return;
            }
        }
        self.down_warned = Some(now);
        tracing::warn!(
            "feed {:?}: no ZeroMQ session with {} for {} s; still trying (is MISP's ZeroMQ \
             plugin running and reachable from here?)",
            self.spec.name,
            self.spec.endpoint,
            now.duration_since(since).as_secs()
        );
    }
}

/// A monitor message: frame 1 is the event number (u16) and value (u32) in native byte order,
/// frame 2 the peer address. Anything shorter is ignored rather than trusted.
fn parse_event(frames: &[Vec<u8>]) -> Option<(u16, u32, String)> {
    let first = frames.first()?;
    let event = u16::from_ne_bytes(first.get(0..2)?.try_into().ok()?);
    let value = u32::from_ne_bytes(first.get(2..6)?.try_into().ok()?);
    let addr = frames
        .get(1)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    Some((event, value, addr))
}

/// The dead-letter record of a frame that is not UTF-8, in the JSON spelling of everything else
/// mispdash writes to Redis.
fn dead_letter(zmq_name: &str, frame: &[u8], epoch: f64) -> String {
    use serde_json::Value;
    crate::pyjson::to_string(&crate::pyjson::object([
        ("reason", Value::from("frame is not UTF-8")),
        ("zmq_name", Value::from(zmq_name)),
        (
            "frame_b64",
            Value::from(base64::engine::general_purpose::STANDARD.encode(frame)),
        ),
        ("epoch", crate::pyjson::float(epoch)),
    ]))
}

/// A short, log-safe view of a binary frame: hex of its first bytes, then a lossy text view
/// with control characters escaped.
fn preview(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(16)];
    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]);
    format!(
        "[{}{}] {:?}",
        hex.join(" "),
        if bytes.len() > 16 { " …" } else { "" },
        text
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_frames_are_parsed_defensively() {
        let mut f = Vec::new();
        f.extend_from_slice(&4096u16.to_ne_bytes());
        f.extend_from_slice(&7u32.to_ne_bytes());
        let got = parse_event(&[f.clone(), b"tcp://x:1".to_vec()]);
        assert_eq!(got, Some((4096, 7, "tcp://x:1".to_string())));
        assert_eq!(parse_event(&[f[..5].to_vec()]), None);
        assert_eq!(parse_event(&[]), None);
    }

    #[test]
    fn dead_letter_record() {
        assert_eq!(
            dead_letter("misp é", b"misp_json \xff", 1795176000.5),
            r#"{"reason": "frame is not UTF-8", "zmq_name": "misp \u00e9", "frame_b64": "bWlzcF9qc29uIP8=", "epoch": 1795176000.5}"#
        );
    }

    #[test]
    fn preview_is_short_and_printable() {
        let p =
            preview(b"misp_json \xff\x00\x01 and a long tail that goes on and on and on and on");
        assert!(p.starts_with("[6d 69 73 70"), "{p}");
        assert!(p.contains('…'));
        assert!(p.contains("\\0\\u{1}"), "{p}");
    }
}
