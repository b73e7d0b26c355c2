//! Live streams (spec `http.md` §3.5, §3.7, §5.4, §5.5, §8): one Redis subscription per
//! process, fanned out in memory to every Server-Sent-Events client.
//!
//! The original holds a thread and a Redis connection per open stream and enriches every
//! contributor event once per client; a few open dashboards starve it. Here one task reads
//! Redis pub/sub, turns each message into its SSE payload once (enrichment included), keeps it
//! in a bounded history and hands it to a `tokio::sync::broadcast` channel. A client that
//! cannot keep up falls behind the channel's capacity and is disconnected (its browser
//! reconnects and catches up from the history with `Last-Event-ID`), so it never slows the
//! others. Event ids start from the boot time in microseconds, so ids keep growing across
//! restarts and a client reconnecting to a new process gets everything the new process has.

use super::live::{self, Filters};
use super::state::AppState;
use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::BroadcastStream;

/// Events a client may fall behind before it is dropped.
const CHANNEL_CAPACITY: usize = 1024;
/// History kept per stream for `Last-Event-ID` replay: at most this many events…
const HISTORY_EVENTS: usize = 1000;
/// …and at most this many bytes.
const HISTORY_BYTES: usize = 8 << 20;

/// One message as every client of a stream receives it.
#[derive(Debug)]
pub struct StreamEvent {
    pub id: u64,
    /// The whole SSE frame (`id:`, `data:` with the Python `json.dumps` payload, blank line),
    /// rendered once and shared by every client.
    pub frame: Bytes,
    /// For live-log rows, the MISP object as JSON text, for clients with filters.
    pub log_json: Option<String>,
}

impl StreamEvent {
    fn size(&self) -> usize {
        self.frame.len() + self.log_json.as_ref().map_or(0, String::len) + 64
    }
}

struct History {
    events: VecDeque<Arc<StreamEvent>>,
    bytes: usize,
    next_id: u64,
}

/// One stream: its broadcast channel and history.
pub struct Topic {
    tx: broadcast::Sender<Arc<StreamEvent>>,
    history: Mutex<History>,
    pub published: AtomicU64,
}

impl Topic {
    fn new(first_id: u64) -> Topic {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Topic {
            tx,
            history: Mutex::new(History {
                events: VecDeque::new(),
                bytes: 0,
                next_id: first_id,
            }),
            published: AtomicU64::new(0),
        }
    }

    /// Records and broadcasts an event. The history lock is held while sending so that a
    /// client subscribing concurrently sees each event exactly once (in its replay or live).
    pub fn publish(&self, data: String, log_json: Option<String>) {
        let Ok(mut h) = self.history.lock() else {
            return;
        };
        let id = h.next_id;
        let ev = Arc::new(StreamEvent {
            id,
            frame: sse_frame(id, &data),
            log_json,
        });
        h.next_id += 1;
        h.bytes += ev.size();
        h.events.push_back(ev.clone());
        while h.events.len() > HISTORY_EVENTS || h.bytes > HISTORY_BYTES {
            match h.events.pop_front() {
                Some(old) => h.bytes -= old.size(),
                None => break,
            }
        }
        self.published.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(ev);
    }

    /// A receiver for what comes next, and the events after `last_id` to replay first.
    fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (Vec<Arc<StreamEvent>>, broadcast::Receiver<Arc<StreamEvent>>) {
        let Ok(h) = self.history.lock() else {
            return (vec![], self.tx.subscribe());
        };
        let rx = self.tx.subscribe();
        let backlog = match last_id {
            Some(id) => h.events.iter().filter(|e| e.id > id).cloned().collect(),
            None => vec![],
        };
        (backlog, rx)
    }
}

/// `id: <id>\ndata: <line>\n…\n\n` (a payload never holds a newline, but one would become
/// several `data:` lines, as the SSE format requires).
fn sse_frame(id: u64, data: &str) -> Bytes {
    let mut f = String::with_capacity(data.len() + 32);
    f.push_str("id: ");
    f.push_str(&id.to_string());
    f.push('\n');
    for line in data.split('\n') {
        f.push_str("data: ");
        f.push_str(line);
        f.push('\n');
    }
    f.push('\n');
    Bytes::from(f)
}

/// Which stream a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Live,
    Map,
    Contributor,
    Awards,
}

/// The four streams and their bookkeeping.
pub struct Hub {
    pub live: Topic,
    pub map: Topic,
    pub contributor: Topic,
    pub awards: Topic,
    pub clients: AtomicU64,
    pub dropped_slow: AtomicU64,
    pub subscribed: AtomicBool,
    pub keepalive: Duration,
    shutdown: watch::Receiver<bool>,
}

impl Hub {
    pub fn new(keepalive: Duration, shutdown: watch::Receiver<bool>) -> Hub {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        Hub {
            live: Topic::new(boot),
            map: Topic::new(boot),
            contributor: Topic::new(boot),
            awards: Topic::new(boot),
            clients: AtomicU64::new(0),
            dropped_slow: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            keepalive,
            shutdown,
        }
    }

    pub fn topic(&self, k: Kind) -> &Topic {
        match k {
            Kind::Live => &self.live,
            Kind::Map => &self.map,
            Kind::Contributor => &self.contributor,
            Kind::Awards => &self.awards,
        }
    }
}

/// Live streams open per client (a session, or an address without login), so that one client
/// cannot hold thousands: each costs a task, a connection and a broadcast receiver.
#[derive(Default)]
pub struct StreamCounts {
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// One open stream of a client; counted until dropped (when the stream ends, however).
pub struct StreamTicket {
    counts: Weak<AppState>,
    client: String,
    /// The digest of the session that opened the stream, if any (see `session_ended`).
    session: Option<String>,
}

impl StreamCounts {
    /// Counts a new stream of `client` (of the session `session`, when logged in), unless it
    /// already holds `max`.
    pub fn open(
        st: &Arc<AppState>,
        client: String,
        session: Option<String>,
        max: usize,
    ) -> Option<StreamTicket> {
        let mut m = match st.streams.open.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n = m.entry(client.clone()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamTicket {
            counts: Arc::downgrade(st),
            client,
            session,
        })
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        let Some(st) = self.counts.upgrade() else {
            return;
        };
        let mut m = match st.streams.open.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(n) = m.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.client);
            }
        }
    }
}

/// Decrements the client count when a stream ends, however it ends.
struct ClientGuard(Weak<AppState>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        if let Some(st) = self.0.upgrade() {
            st.hub.clients.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The SSE answer of a stream route: the replayed history, then live events, with a keep-alive
/// comment at every interval, until the client goes, falls behind, or the server stops.
/// Ends when the session of `digest` has ended (logout, expiry, or MISP's re-check); never
/// without auth. Redis being away does not end it: the next check decides.
async fn session_ended(st: Weak<AppState>, digest: Option<String>) {
    let Some(digest) = digest else {
        return std::future::pending().await;
    };
    loop {
        let every = match st.upgrade() {
            Some(st) => match st.auth.as_ref() {
                Some(auth) => auth.stream_check_interval(),
                None => return std::future::pending().await,
            },
            None => return,
        };
        tokio::time::sleep(every).await;
        let Some(st) = st.upgrade() else {
            return;
        };
        let Some(auth) = st.auth.as_ref() else {
            return std::future::pending().await;
        };
        if let Ok(None) = auth.session_by_digest(&st.data, digest.clone()).await {
            tracing::info!("a live stream ended with its session");
            return;
        }
    }
}

pub fn sse_response(
    st: &Arc<AppState>,
    kind: Kind,
    last_event_id: Option<u64>,
    filters: Filters,
    ticket: StreamTicket,
) -> Response {
    let (backlog, rx) = st.hub.topic(kind).subscribe(last_event_id);
    st.hub.clients.fetch_add(1, Ordering::Relaxed);
    let guard = ClientGuard(Arc::downgrade(st));
    let weak = Arc::downgrade(st);
    let mut shutdown = st.hub.shutdown.clone();
    let ended = session_ended(Arc::downgrade(st), ticket.session.clone());
    let stop = async move {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => {}
            _ = ended => {}
        }
    };
    let live = BroadcastStream::new(rx)
        .take_while(move |r| {
            let ok = r.is_ok();
            if !ok {
                if let Some(st) = weak.upgrade() {
                    st.hub.dropped_slow.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("SSE client too slow, disconnected (it may reconnect)");
                }
            }
            std::future::ready(ok)
        })
        .filter_map(|r| std::future::ready(r.ok()));
    let events = futures_util::stream::iter(backlog)
        .chain(live)
        .filter_map(move |ev| {
            let pass = filters.is_empty()
                || ev
                    .log_json
                    .as_deref()
                    .and_then(super::live::LazyLog::parse)
                    .is_none_or(|log| filters.pass(&log));
            std::future::ready(pass.then(|| ev.frame.clone()))
        });
    let period = st.hub.keepalive;
    let keepalive = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + period,
        period,
    ))
    .map(|_| Bytes::from_static(b":\n\n"));
    let body = futures_util::stream::select(events, keepalive)
        .map(move |b| {
            let _keep = (&guard, &ticket);
            Ok::<Bytes, Infallible>(b)
        })
        .take_until(Box::pin(stop));
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
}

/// Reads Redis pub/sub for ever (reconnecting with back-off) and feeds the hub.
pub async fn run_subscriber(st: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let (enrich_tx, enrich_rx) = mpsc::channel::<(Kind, String)>(4096);
    tokio::spawn(run_enricher(st.clone(), enrich_rx));
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match subscribe_once(&st, &enrich_tx, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                st.hub.subscribed.store(false, Ordering::Relaxed);
                failures += 1;
                let wait = crate::redis_util::backoff(failures);
                tracing::warn!(
                    "live streams: Redis pub/sub failed ({e}); retrying in {:.1}s",
                    wait.as_secs_f64()
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

async fn subscribe_once(
    st: &Arc<AppState>,
    enrich: &mpsc::Sender<(Kind, String)>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), redis::RedisError> {
    let cfg = &st.cfg;
    let mut ps = st.data.client().get_async_pubsub().await?;
    ps.subscribe(&cfg.channel_live).await?;
    ps.psubscribe(&cfg.channel_map).await?;
    ps.psubscribe(&cfg.channel_contrib).await?;
    ps.psubscribe(&cfg.channel_awards).await?;
    st.hub.subscribed.store(true, Ordering::Relaxed);
    tracing::info!("live streams subscribed to Redis pub/sub");
    let mut msgs = ps.on_message();
    loop {
        let msg = tokio::select! {
            m = msgs.next() => m,
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        };
        let Some(msg) = msg else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "pub/sub connection closed",
            )));
        };
        let Ok(payload) = msg.get_payload::<String>() else {
            continue;
        };
        let pattern: Option<String> = if msg.from_pattern() {
            msg.get_pattern().ok()
        } else {
            None
        };
        match pattern.as_deref() {
            None => {
                if msg.get_channel_name() == cfg.channel_live {
                    match live::live_payload(&cfg.log_format, &payload) {
                        Some((data, log)) => st.hub.live.publish(data, log),
                        None => tracing::debug!("live stream: malformed message skipped"),
                    }
                }
            }
            Some(p) if p == cfg.channel_map => st.hub.map.publish(payload, None),
            Some(p) if p == cfg.channel_contrib => {
                let _ = enrich.try_send((Kind::Contributor, payload));
            }
            Some(p) if p == cfg.channel_awards => {
                let _ = enrich.try_send((Kind::Awards, payload));
            }
            Some(_) => {}
        }
    }
}

/// Enriches contributor and award messages once each (not once per client, as the original
/// does), in order, off the pub/sub reader so the live log is never delayed by it.
async fn run_enricher(st: Arc<AppState>, mut rx: mpsc::Receiver<(Kind, String)>) {
    while let Some((kind, payload)) = rx.recv().await {
        match enrich(&st, kind, &payload).await {
            Some(data) => st.hub.topic(kind).publish(data, None),
            None => tracing::debug!("contributor stream: malformed message skipped"),
        }
    }
}

async fn enrich(st: &AppState, kind: Kind, payload: &str) -> Option<String> {
    let msg: Value = serde_json::from_str(payload).ok()?;
    let log: Value = match msg.get("log")? {
        Value::String(s) => serde_json::from_str(s).ok()?,
        v => v.clone(),
    };
    let org = log.get("org")?.as_str()?;
    let mut m = match super::contrib::contributor_for_stream(st, org).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("contributor stream: lookup of {org:?} failed: {e}");
            return None;
        }
    };
    m.insert(
        "epoch".into(),
        log.get("epoch").cloned().unwrap_or(Value::Null),
    );
    if kind == Kind::Awards {
        m.insert(
            "award".into(),
            log.get("award").cloned().unwrap_or(Value::Null),
        );
    }
    Some(crate::pyjson::to_string(&Value::Object(m)))
}
