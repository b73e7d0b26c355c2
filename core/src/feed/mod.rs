//! The subscriber: MISP's ZeroMQ feed in, the Redis buffer list out (spec `ingest.md` §1.1–1.3).
//!
//! One feed per MISP instance, each with two OS threads of its own:
//!
//! * the **receiver** ([`receiver`]) holds a ZeroMQ SUB socket `connect`ed to MISP's PUB socket
//!   (MISP binds), subscribed to every topic, and turns each frame into the original's buffer
//!   envelope `{"zmq_name": <name>, "content": <frame>}` (see [`envelope`]);
//! * the **pusher** ([`pusher`]) `LPUSH`es those envelopes onto `[RedisLIST] listName` in
//!   `[RedisLIST] db` in batches, and writes the feed's health hash once a second.
//!
//! Between them sits a bounded in-memory [`backlog`]. The split is what lets a Redis outage lose
//! nothing: the original logs and drops every frame it cannot push, and while it waits for Redis
//! nobody reads the socket, so libzmq drops more. Here the receiver keeps reading whatever Redis
//! does, and the pusher reconnects with back-off and pushes the backlog when Redis is back.
//!
//! Differences from the original's `zmq_subscriber.py`, all deliberate:
//!
//! * **PLAIN authentication** (`zmq_username`/`zmq_password`), which newer MISP can require. A
//!   refused handshake is retried (libzmq alone gives up on the endpoint for good), so fixing
//!   the credentials on the MISP side needs no restart here.
//! * **Heartbeats** (ZMTP PING every 5 s, 15 s timeout) so a dead or half-open publisher is
//!   noticed and the connection re-made; the original waits forever on a dead TCP peer.
//! * **Connection state** from a socket monitor, reported in [`FeedStats`] and in the hash
//!   [`crate::keys::feed_status`] (fields below), and clear log lines for refused credentials.
//! * **Frames that are not UTF-8**: the original fails to decode them, logs `Error:…` and drops
//!   them. We do not push them to the buffer either (the dispatcher could not use them), but
//!   instead of losing them we `LPUSH` a JSON record
//!   `{"reason": "frame is not UTF-8", "zmq_name": …, "frame_b64": …, "epoch": …}` onto the
//!   dead-letter list [`crate::keys::dead_letter_list`] so an admin can inspect them.
//! * **Multipart messages** (MISP never sends them) are pushed part by part exactly as the
//!   original does, but counted and logged.
//!
//! Ordering: within a feed, entries reach the list in arrival order, earliest pushed first, so
//! the dispatcher's `RPOP` sees them FIFO. Delivery is exactly-once while Redis keeps its data:
//! each batch carries a token, and a retry after a connection that broke between Redis applying
//! the push and the reply arriving is recognised and skipped (see [`pusher`]). Frames are lost
//! only when the backlog bound is exceeded during a long outage (counted in `dropped` and
//! logged), or when the process stops while Redis is unreachable (logged with the count).
//!
//! Health hash `MISPDASH_FEED:<name>` in `[RedisLIST] db`, all values plain strings: `endpoint`,
//! `connected` (`0`/`1`), `messages`, `last_message` and `last_keepalive` (epoch seconds as a
//! float, `0.0` for never), `non_utf8`, `multipart`, `queued` (in-memory backlog), `updated`
//! (epoch float of the write), plus `bytes`, `pushed`, `dead_lettered`, `dropped`,
//! `auth_failures`, `handshake_failures`, `connects`, `disconnects`, and `push_token` (the
//! last batch's token, for the exactly-once check). A reader tells a dead subscriber by a stale
//! `updated`.

mod backlog;
pub mod gaps;
mod pusher;
mod receiver;

use crate::clock::Clock;
use crate::redis_util::RedisTarget;
use backlog::{Backlog, Entry};
use serde::Serialize;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to subscribe to: one MISP instance's ZeroMQ publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    /// Feed name, written as `zmq_name` into every envelope.
    pub name: String,
    /// ZeroMQ endpoint of MISP's PUB socket, e.g. `tcp://misp.example:50000`.
    pub endpoint: String,
    /// `Plugin.ZeroMQ_username` when the publisher requires PLAIN authentication.
    pub username: Option<String>,
    /// `Plugin.ZeroMQ_password`.
    pub password: Option<String>,
}

impl From<&crate::config::MispInstance> for FeedSpec {
    /// Empty credentials count as absent: an admin blanking the option in `config.cfg` means
    /// "no authentication", and libzmq rejects an empty PLAIN username anyway.
    fn from(inst: &crate::config::MispInstance) -> Self {
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        FeedSpec {
            name: inst.name.clone(),
            endpoint: inst.zmq.clone(),
            username: non_empty(&inst.zmq_username),
            password: non_empty(&inst.zmq_password),
        }
    }
}

/// Tuning knobs; [`spawn`] uses [`FeedOptions::default`]. Exposed so tests (and a future config
/// option) can shrink the backlog bound.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// Most frames kept in memory while Redis is unreachable; beyond it the oldest are dropped.
    pub max_backlog_frames: usize,
    /// Most bytes of envelopes kept in memory while Redis is unreachable.
    pub max_backlog_bytes: usize,
    /// Most frames in one `LPUSH` (and read from the socket in one go).
    pub batch_frames: usize,
    /// Approximate most bytes in one `LPUSH` (a single larger frame still goes alone).
    pub batch_bytes: usize,
    /// How long the receiver waits for a frame before checking the stop flag.
    pub poll_interval: Duration,
    /// How often the health hash is written.
    pub status_interval: Duration,
    /// ZMTP heartbeat: a PING this often…
    pub heartbeat_interval: Duration,
    /// …and a connection with no traffic at all (data or PONG) for this long is closed and
    /// re-made. This is what notices a dead publisher or a half-open TCP connection (MISP host
    /// gone, NAT state lost), which the original never does. Also sent to the publisher as the
    /// TTL after which it may drop us.
    pub heartbeat_timeout: Duration,
    /// First wait before retrying after the publisher refused a handshake (wrong credentials,
    /// mechanism mismatch); doubles up to a minute while refusals go on.
    pub handshake_retry: Duration,
    /// Where frames that Redis could not take before a stop are written, to be pushed at the
    /// next start (`<dir>/<feed>.spool.jsonl`); `None`: such frames are lost, and said so.
    pub spool_dir: Option<std::path::PathBuf>,
    /// Filling what the feed missed while disconnected, through MISP's REST API (the feed has
    /// an API key); `None`: gaps are only logged.
    pub gap_fill: Option<Arc<gaps::GapFill>>,
    /// `[RedisGlobal] wait_replicas` and `wait_timeout_ms`: after each push, `WAIT` until this
    /// many replicas have it; a batch not yet on enough replicas stays in memory and is pushed
    /// again (its token makes that a no-op on the master), so a failover cannot lose it.
    pub wait: Option<(u32, Duration)>,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            max_backlog_frames: 100_000,
            max_backlog_bytes: 256 << 20,
            batch_frames: 1000,
            batch_bytes: 16 << 20,
            poll_interval: Duration::from_millis(200),
            status_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(15),
            handshake_retry: Duration::from_secs(5),
            spool_dir: None,
            gap_fill: None,
            wait: None,
        }
    }
}

/// Live counters of one feed, shared by its threads and readable from anywhere via
/// [`FeedStats::snapshot`]. Epochs are `f64` bit patterns; `0` means "never".
#[derive(Debug, Default)]
pub struct FeedStats {
    messages: AtomicU64,
    bytes: AtomicU64,
    non_utf8: AtomicU64,
    multipart_parts: AtomicU64,
    pushed: AtomicU64,
    dead_lettered: AtomicU64,
    push_failures_retried: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    last_message_epoch: AtomicU64,
    last_keepalive_epoch: AtomicU64,
    connected: AtomicBool,
    connects: AtomicU64,
    disconnects: AtomicU64,
    auth_failures: AtomicU64,
    handshake_failures: AtomicU64,
    /// Since when no session is up (the feed's start, or the last disconnect); 0 while one is.
    down_since_epoch: AtomicU64,
}

/// A consistent-enough copy of [`FeedStats`] (each field is read atomically on its own).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedSnapshot {
    /// Frames received from ZeroMQ (every part of a multipart message counts).
    pub messages: u64,
    /// Bytes of those frames.
    pub bytes: u64,
    /// Frames that were not UTF-8 (sent to the dead-letter list, not the buffer).
    pub non_utf8: u64,
    /// Frames that were parts of multipart messages.
    pub multipart_parts: u64,
    /// Envelopes pushed onto the buffer list.
    pub pushed: u64,
    /// Records pushed onto the dead-letter list.
    pub dead_lettered: u64,
    /// Push attempts that failed and were retried (nothing was lost by them).
    pub push_failures_retried: u64,
    /// Frames dropped because the in-memory backlog was full during a Redis outage.
    pub dropped: u64,
    /// Frames currently held in memory, waiting for Redis.
    pub queued: u64,
    /// When the last frame arrived (epoch seconds), if any.
    pub last_message_epoch: Option<f64>,
    /// When the last `misp_json_self` keep-alive arrived, if any.
    pub last_keepalive_epoch: Option<f64>,
    /// Whether a ZMTP session with the publisher is up (handshake, including auth, done).
    pub connected: bool,
    /// Successful handshakes so far.
    pub connects: u64,
    /// Established sessions that were lost.
    pub disconnects: u64,
    /// Handshakes refused by the publisher's authentication (wrong credentials).
    pub auth_failures: u64,
    /// Handshakes that failed otherwise (protocol or mechanism mismatch, …).
    pub handshake_failures: u64,
    /// Since when the feed has had no session with the publisher (epoch seconds): its start
    /// when it never connected, else the last disconnect; `None` while connected.
    pub disconnected_since: Option<f64>,
}

fn epoch_of(bits: &AtomicU64) -> Option<f64> {
    let f = f64::from_bits(bits.load(Ordering::Relaxed));
    (f != 0.0).then_some(f)
}

impl FeedStats {
    pub fn snapshot(&self) -> FeedSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FeedSnapshot {
            messages: get(&self.messages),
            bytes: get(&self.bytes),
            non_utf8: get(&self.non_utf8),
            multipart_parts: get(&self.multipart_parts),
            pushed: get(&self.pushed),
            dead_lettered: get(&self.dead_lettered),
            push_failures_retried: get(&self.push_failures_retried),
            dropped: get(&self.dropped),
            queued: get(&self.queued),
            last_message_epoch: epoch_of(&self.last_message_epoch),
            last_keepalive_epoch: epoch_of(&self.last_keepalive_epoch),
            connected: self.connected.load(Ordering::Relaxed),
            connects: get(&self.connects),
            disconnects: get(&self.disconnects),
            auth_failures: get(&self.auth_failures),
            handshake_failures: get(&self.handshake_failures),
            disconnected_since: epoch_of(&self.down_since_epoch),
        }
    }
}

/// State shared by a feed's two threads and its handle.
pub(crate) struct Shared {
    name: String,
    stats: Arc<FeedStats>,
    backlog: Mutex<Backlog>,
    /// Signalled when entries are queued or a stop is requested, so the pusher wakes at once.
    wake: Condvar,
    /// Set (by a drop guard, so also on panic) when the receiver has finished for good: the
    /// pusher then knows nothing more will be queued.
    receiver_done: AtomicBool,
    own_stop: AtomicBool,
    global_stop: Arc<AtomicBool>,
    /// Reports of dropped frames, rate-limited: an outage can drop thousands a second.
    overflow_log: Mutex<LogGate>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.own_stop.load(Ordering::Relaxed) || self.global_stop.load(Ordering::Relaxed)
    }

    /// The backlog, even if a thread panicked while holding it: it is a plain queue whose every
    /// operation leaves it consistent, so there is no reason to lose its frames.
    fn lock(&self) -> MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn after_change(&self, b: &Backlog, dropped: u64) {
        self.stats.queued.store(b.len() as u64, Ordering::Relaxed);
        if dropped > 0 {
            self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Queues entries for the pusher and wakes it.
    fn enqueue(&self, entries: Vec<Entry>, opts: &FeedOptions) {
        let dropped = {
            let mut b = self.lock();
            let dropped = b.push_back(entries);
            self.after_change(&b, dropped);
            dropped
        };
        self.wake.notify_all();
        self.report_dropped(dropped, opts);
    }

    /// Waits up to `wait` for entries to be queued (returns at once if some are, or on stop).
    fn wait_for_entries(&self, wait: Duration) {
        let b = self.lock();
        if b.queue_is_empty() && !wait.is_zero() && !self.stopped() {
            let _ = self.wake.wait_timeout(b, wait);
        }
    }

    /// Whether entries are queued (not counting an in-flight batch).
    fn has_waiting(&self) -> bool {
        !self.lock().queue_is_empty()
    }

    /// Takes the next batch (possibly empty) and marks it in flight.
    fn take_batch(&self, opts: &FeedOptions) -> Vec<Entry> {
        let mut b = self.lock();
        let batch = b.take_batch(opts.batch_frames, opts.batch_bytes);
        self.after_change(&b, 0);
        batch
    }

    /// Queues entries ahead of the others (see [`Backlog::push_front`]).
    fn enqueue_front(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut b = self.lock();
        b.push_front(entries);
        self.after_change(&b, 0);
    }

    /// Everything queued, oldest first, taken out of the backlog (for the spool at a stop).
    fn take_all(&self) -> Vec<Entry> {
        let mut b = self.lock();
        let all = b.take_batch(usize::MAX, usize::MAX);
        b.confirm();
        self.after_change(&b, 0);
        all
    }

    /// The in-flight batch reached Redis.
    fn confirm(&self) {
        let mut b = self.lock();
        b.confirm();
        self.after_change(&b, 0);
    }

    fn queued(&self) -> usize {
        self.lock().len()
    }

    fn report_dropped(&self, dropped: u64, opts: &FeedOptions) {
        if dropped == 0 {
            return;
        }
        let mut gate = self.overflow_log.lock().unwrap_or_else(|e| e.into_inner());
        gate.suppressed += dropped;
        if let Some(n) = gate.ready() {
            tracing::error!(
                "feed {:?}: in-memory backlog full ({} frames / {} MiB) while Redis is unavailable: \
                 dropped the {} oldest frame(s) ({} in all so far)",
                self.name,
                opts.max_backlog_frames,
                opts.max_backlog_bytes >> 20,
                n,
                self.stats.dropped.load(Ordering::Relaxed)
            );
        }
    }
}

/// Rate limiter for log lines that a misbehaving peer could trigger thousands of times a
/// second: the first occurrence is logged at once, later ones at most once per `every`, with
/// the number of occurrences folded into that line.
#[derive(Debug)]
pub(crate) struct LogGate {
    every: Duration,
    last: Option<Instant>,
    /// Occurrences not yet reported (including the current one, as counted by the caller).
    pub suppressed: u64,
}

impl LogGate {
    pub fn new(every: Duration) -> Self {
        LogGate {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Counts one occurrence; `Some(n)` when a line should be logged now, covering `n`.
    pub fn hit(&mut self) -> Option<u64> {
        self.suppressed += 1;
        self.ready()
    }

    /// `Some(n)` when a line covering the `n` counted occurrences should be logged now.
    pub fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        let due = match self.last {
            None => true,
            Some(t) => now.duration_since(t) >= self.every,
        };
        if due && self.suppressed > 0 {
            self.last = Some(now);
            let n = self.suppressed;
            self.suppressed = 0;
            Some(n)
        } else {
            None
        }
    }

    /// Forgets the last report, so the next occurrence is logged at once (after a recovery).
    pub fn reset(&mut self) {
        self.last = None;
        self.suppressed = 0;
    }
}

/// A running feed. Dropping it leaves the threads running until the shared stop flag is set;
/// [`FeedHandle::stop`] stops just this feed.
pub struct FeedHandle {
    pub name: String,
    pub stats: Arc<FeedStats>,
    shared: Arc<Shared>,
    receiver: Option<JoinHandle<()>>,
    pusher: Option<JoinHandle<()>>,
}

impl FeedHandle {
    /// Asks this feed (only) to stop: the receiver finishes within one poll interval, then the
    /// pusher makes a last attempt to push what is still in memory and exits.
    pub fn stop(&self) {
        self.shared.own_stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
    }

    /// Waits for both threads to end (after [`FeedHandle::stop`] or the shared stop flag).
    pub fn join(mut self) {
        for (what, h) in [
            ("receiver", self.receiver.take()),
            ("pusher", self.pusher.take()),
        ] {
            if let Some(h) = h {
                if h.join().is_err() {
                    tracing::error!("feed {:?}: the {} thread panicked", self.name, what);
                }
            }
        }
    }
}

/// Starts a feed with the default [`FeedOptions`]: see [`spawn_with_options`].
pub fn spawn(
    spec: FeedSpec,
    redis: RedisTarget,
    list_db: i64,
    list_name: String,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> io::Result<FeedHandle> {
    spawn_with_options(
        spec,
        redis,
        list_db,
        list_name,
        clock,
        stop,
        FeedOptions::default(),
    )
}

/// Starts a feed: opens the ZeroMQ socket (errors in the endpoint or credentials are returned
/// here, before any thread starts), then the receiver and pusher threads. Both run until `stop`
/// is set or [`FeedHandle::stop`] is called. Redis need not be reachable: the pusher waits for it.
pub fn spawn_with_options(
    spec: FeedSpec,
    redis: RedisTarget,
    list_db: i64,
    list_name: String,
    clock: Clock,
    stop: Arc<AtomicBool>,
    opts: FeedOptions,
) -> io::Result<FeedHandle> {
    let stats = Arc::new(FeedStats::default());
    stats
        .down_since_epoch
        .store(clock.now_f64().to_bits(), Ordering::Relaxed);
    let shared = Arc::new(Shared {
        name: spec.name.clone(),
        stats: stats.clone(),
        backlog: Mutex::new(Backlog::new(
            opts.max_backlog_frames,
            opts.max_backlog_bytes,
        )),
        wake: Condvar::new(),
        receiver_done: AtomicBool::new(false),
        own_stop: AtomicBool::new(false),
        global_stop: stop,
        overflow_log: Mutex::new(LogGate::new(Duration::from_secs(10))),
    });
    let sockets = receiver::open(&spec, &opts)?;
    tracing::info!(
        "feed {:?}: subscribing to {}{}",
        spec.name,
        spec.endpoint,
        if spec.username.is_some() {
            " with PLAIN authentication"
        } else {
            ""
        }
    );
    // Thread names may not contain NUL (std panics on it); a feed name comes from config.
    let thread_name = |suffix: &str| format!("feed-{}{}", spec.name.replace('\0', "?"), suffix);

    let rx = receiver::Receiver::new(spec.clone(), sockets, shared.clone(), clock, opts.clone());
    let receiver = std::thread::Builder::new()
        .name(thread_name(""))
        .spawn(move || rx.run())?;

    let px = pusher::Pusher::new(
        &spec,
        redis,
        list_db,
        list_name,
        shared.clone(),
        clock,
        opts,
    );
    let pusher = match std::thread::Builder::new()
        .name(thread_name("-redis"))
        .spawn(move || px.run())
    {
        Ok(h) => h,
        Err(e) => {
            shared.own_stop.store(true, Ordering::Relaxed);
            let _ = receiver.join();
            return Err(e);
        }
    };
    Ok(FeedHandle {
        name: spec.name,
        stats,
        shared,
        receiver: Some(receiver),
        pusher: Some(pusher),
    })
}

/// Which credentials a subscriber uses, without revealing them: `none`, or the user name and
/// a short digest of the password. `selftest` compares it with the configuration's to tell a
/// running subscriber that still uses old credentials.
pub fn credentials_id(username: Option<&str>, password: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    match username {
        None => "none".into(),
        Some(u) => {
            let d = Sha256::digest(format!(
                "mispdash-credentials\0{u}\0{}",
                password.unwrap_or("")
            ));
            let short: String = d.iter().take(6).map(|b| format!("{b:02x}")).collect();
            format!("PLAIN user {u:?} ({short})")
        }
    }
}

/// The buffer-list entry for one frame: exactly Python's
/// Hands one MISP message (`content` = topic, a space, the JSON payload, as MISP publishes
/// it) to the buffer as a subscriber named `zmq_name` would: for tooling that has events in
/// hand (the Python bindings' `ingest`). The dispatcher takes it from there.
pub fn ingest_one(
    target: &RedisTarget,
    db: i64,
    list: &str,
    zmq_name: &str,
    content: &str,
) -> redis::RedisResult<()> {
    let mut c = target.connect(db)?;
    redis::cmd("LPUSH")
        .arg(list)
        .arg(envelope(zmq_name, content))
        .query::<i64>(&mut c)
        .map(|_| ())
}

/// `json.dumps({"zmq_name": zmq_name, "content": content})` (spec Appendix A8), so a dispatcher
/// of either implementation reads it and a shared Redis sees identical bytes.
pub fn envelope(zmq_name: &str, content: &str) -> String {
    let mut out = String::with_capacity(content.len() + zmq_name.len() + 32);
    out.push_str("{\"zmq_name\": ");
    crate::pyjson::write_str(&mut out, zmq_name);
    out.push_str(", \"content\": ");
    crate::pyjson::write_str(&mut out, content);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_python_json_dumps() {
        assert_eq!(
            envelope("misp é", r#"misp_json_self {"status": "ok", "uptime": 5}"#),
            r#"{"zmq_name": "misp \u00e9", "content": "misp_json_self {\"status\": \"ok\", \"uptime\": 5}"}"#
        );
        assert_eq!(
            envelope("m", "a\n\t\\/😀\u{7f}"),
            r#"{"zmq_name": "m", "content": "a\n\t\\/\ud83d\ude00\u007f"}"#
        );
    }

    #[test]
    fn spec_from_instance_blanks_empty_credentials() {
        let inst = crate::config::MispInstance {
            name: "misp1".into(),
            url: None,
            zmq: "tcp://127.0.0.1:50000".into(),
            zmq_username: Some("".into()),
            zmq_password: Some("secret".into()),
            api_key: None,
            ssl_verify: None,
        };
        let spec = FeedSpec::from(&inst);
        assert_eq!(spec.endpoint, "tcp://127.0.0.1:50000");
        assert_eq!(spec.username, None);
        assert_eq!(spec.password.as_deref(), Some("secret"));
    }

    #[test]
    fn log_gate_reports_first_then_folds() {
        let mut g = LogGate::new(Duration::from_secs(3600));
        assert_eq!(g.hit(), Some(1));
        assert_eq!(g.hit(), None);
        assert_eq!(g.hit(), None);
        g.reset();
        assert_eq!(g.hit(), Some(1));
        let mut g = LogGate::new(Duration::ZERO);
        g.suppressed = 4;
        assert_eq!(g.hit(), Some(5));
    }
}
