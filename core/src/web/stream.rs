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
//!
//! The subscription is held only while someone listens (and [`Hub::linger`] after the last
//! client left, so a reloading page finds it): an idle web server costs the message path
//! nothing, neither its own work per publication nor Redis's sending it. When the first client
//! comes, the server subscribes and reads the live caches, as after a start.

use super::error::WebError;
use super::hub::{
    facts_of, recorded_point_facts, snapshot_frame, Kind, SeedOverlap, StreamEvent, StreamTicket,
};
use super::live::{self, Filters};
use super::state::AppState;
use crate::keys;
use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// Decrements the client count when a stream ends, however it ends (also when its request is
/// dropped while it waits for the subscription).
struct ClientGuard(Weak<AppState>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        if let Some(st) = self.0.upgrade() {
            st.hub.listeners.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

/// Counts a stream that is opening (which makes the hub subscribe if it was idle) and waits,
/// at most [`READY_WAIT`], for the subscription and the live caches: a stream that began
/// before would miss what is published meanwhile, and its snapshot would say that nothing
/// happened. While Redis is away the stream opens after the wait and gets events once the
/// subscription is back.
async fn attend(st: &Arc<AppState>) -> ClientGuard {
    st.hub.listeners.send_modify(|n| *n += 1);
    let guard = ClientGuard(Arc::downgrade(st));
    let mut ready = st.hub.ready.subscribe();
    let _ = tokio::time::timeout(READY_WAIT, ready.wait_for(|r| *r)).await;
    guard
}

/// At most this many bytes of events are written to a client at once.
const BATCH_BYTES: usize = 256 << 10;

/// The events a client receives live, in batches: each wake-up takes every event already
/// waiting (up to [`BATCH_BYTES`]), so that a burst (a dispatcher's batch publishes hundreds of
/// rows at once) costs each client one write, not one per event; with thousands of clients
/// the writes, not the events, are the work. Ends when the client falls too far behind (it is
/// disconnected, counted, and its browser reconnects and resumes).
fn received(
    st: &Arc<AppState>,
    rx: broadcast::Receiver<Arc<StreamEvent>>,
) -> impl futures_util::Stream<Item = Vec<Arc<StreamEvent>>> + Send + 'static {
    use broadcast::error::{RecvError, TryRecvError};
    let weak = Arc::downgrade(st);
    let too_slow = move || {
        if let Some(st) = weak.upgrade() {
            st.hub.dropped_slow.fetch_add(1, Ordering::Relaxed);
            tracing::info!("SSE client too slow, disconnected (it may reconnect)");
        }
    };
    futures_util::stream::unfold(Some(rx), move |rx| {
        let too_slow = too_slow.clone();
        async move {
            let mut rx = rx?;
            let first = match rx.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(_)) => {
                    too_slow();
                    return None;
                }
                Err(RecvError::Closed) => return None,
            };
            let mut bytes = first.mux.len();
            let mut batch = vec![first];
            while bytes < BATCH_BYTES {
                match rx.try_recv() {
                    Ok(ev) => {
                        bytes += ev.mux.len();
                        batch.push(ev);
                    }
                    Err(TryRecvError::Empty) => break,
                    // What came before is sent; the stream then ends.
                    Err(TryRecvError::Lagged(_)) => {
                        too_slow();
                        return Some((batch, None));
                    }
                    Err(TryRecvError::Closed) => return Some((batch, None)),
                }
            }
            Some((batch, Some(rx)))
        }
    })
}

/// One write of the `frame`s of a batch's events that `keep` lets through (`None`: none).
fn joined(
    batch: Vec<Arc<StreamEvent>>,
    keep: impl Fn(&StreamEvent) -> bool,
    frame: impl Fn(&StreamEvent) -> &Bytes,
) -> Option<Bytes> {
    let mut kept = batch.iter().filter(|e| keep(e));
    let first = kept.next()?;
    let Some(second) = kept.next() else {
        return Some(frame(first).clone());
    };
    let mut out = Vec::with_capacity(
        batch
            .iter()
            .map(|e| frame(e).len())
            .sum::<usize>()
            .min(BATCH_BYTES * 2),
    );
    for e in [first, second].into_iter().chain(kept) {
        out.extend_from_slice(frame(e));
    }
    Some(Bytes::from(out))
}

/// Resolves when a stream must end: the server stops, or the session that opened it ended.
fn stopped(
    st: &Arc<AppState>,
    ticket: &StreamTicket,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut shutdown = st.hub.shutdown.clone();
    let ended = session_ended(Arc::downgrade(st), ticket.session.clone());
    async move {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => {}
            _ = ended => {}
        }
    }
}

/// A streamed `text/event-stream` answer.
fn event_stream(
    body: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
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
        let Some(auth) = &st.auth else {
            return std::future::pending().await;
        };
        // Boxed: the session check's Redis future is several kB, and inline it would size
        // every stream's stop future (held for the stream's life, most often with no session
        // to check at all) after it.
        let check = Box::pin(auth.current_by_digest(&st.data, digest.clone()));
        if let Ok(None) = check.await {
            tracing::info!("a live stream ended with its session");
            return;
        }
    }
}

pub async fn sse_response(
    st: &Arc<AppState>,
    kind: Kind,
    last_event_id: Option<u64>,
    filters: Filters,
    viewer: Option<crate::acl::Viewer>,
    ticket: StreamTicket,
) -> Response {
    let guard = attend(st).await;
    let (backlog, rx) = st.hub.topic(kind).subscribe(last_event_id);
    let stop = stopped(st, &ticket);
    let events = futures_util::stream::once(std::future::ready(backlog))
        .chain(received(st, rx))
        .filter_map(move |batch| {
            std::future::ready(joined(
                batch,
                |ev| !ev.seeded && ev.shown(&filters, viewer.as_ref()),
                |ev| &ev.frame,
            ))
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
    event_stream(body)
}

/// How long a stream that opens before the subscription is ready waits for it.
const READY_WAIT: Duration = Duration::from_secs(3);

/// Live-log rows a (re)connecting page gets at most: the rows its log shows.
pub const SNAPSHOT_ROWS: usize = 300;
/// Map points likewise.
pub const SNAPSHOT_POINTS: usize = 100;

/// The combined stream (`/_mispdash/stream`): every topic a page asks for on one connection
/// (browsers allow six per host over HTTP/1.1), each resuming after the id the page last saw
/// (`since`, a query parameter: a new `EventSource` cannot set `Last-Event-ID`).
///
/// It opens with `event: hello`: this process's boot id, the keep-alive period, the server's
/// clock, and per topic whether it resumed and the id it is at. A topic that could not resume
/// (a new page, another process, or events gone from the history) gets `event: snapshot` with
/// its newest events instead, for the page to align with what it shows; the page then knows
/// its historical panels may be stale. Then each topic's events as `event: <topic>`, and
/// `event: ping` with the server's clock at every keep-alive, which lets the page see a stream
/// that went silent (a comment would not reach its script).
pub async fn mux_response(
    st: &Arc<AppState>,
    topics: Vec<(Kind, Option<u64>)>,
    filters: Filters,
    viewer: Option<crate::acl::Viewer>,
    ticket: StreamTicket,
) -> Response {
    let guard = attend(st).await;
    let filters = Arc::new(filters);
    let viewer = Arc::new(viewer);
    let mut hello_topics = serde_json::Map::new();
    let mut first: Vec<Bytes> = vec![];
    let mut lives = vec![];
    for (kind, since) in topics {
        let topic = st.hub.topic(kind);
        let (max, rows) = match kind {
            Kind::Live => (SNAPSHOT_ROWS, true),
            Kind::Map => (SNAPSHOT_POINTS, false),
            // The pages read these lists from their JSON routes, which know more than the
            // history (the last 7 days).
            Kind::Contributor | Kind::Awards => (0, false),
        };
        let f = filters.clone();
        let v = viewer.clone();
        let sub = topic.subscribe_mux(since, max, |e| {
            (!rows || e.is_row()) && e.shown(&f, v.as_ref().as_ref())
        });
        hello_topics.insert(
            topic.name.into(),
            serde_json::json!({"resumed": sub.snapshot.is_none(), "last": sub.last}),
        );
        match sub.snapshot {
            Some(snap) => first.push(snapshot_frame(topic.name, sub.last, &snap)),
            None => first.extend(
                sub.replay
                    .iter()
                    .filter(|e| e.shown(&filters, viewer.as_ref().as_ref()))
                    .map(|e| e.mux.clone()),
            ),
        }
        let f = filters.clone();
        let v = viewer.clone();
        lives.push(
            received(st, sub.rx)
                .filter_map(move |batch| {
                    std::future::ready(joined(
                        batch,
                        |e| e.shown(&f, v.as_ref().as_ref()),
                        |e| &e.mux,
                    ))
                })
                .boxed(),
        );
    }
    let hello = serde_json::json!({
        "boot": st.hub.boot,
        "keepalive": st.hub.keepalive.as_secs_f64(),
        "now": st.clock.now_f64(),
        "topics": hello_topics,
    });
    first.insert(0, named_frame("hello", &hello.to_string()));
    let stop = stopped(st, &ticket);
    // A topic whose client fell behind ends the whole stream (the page reconnects and resumes
    // every topic), rather than leaving the others running without it.
    let period = st.hub.keepalive;
    let clock = st.clock;
    let ping = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + period,
        period,
    ))
    .map(move |_| {
        Some(named_frame(
            "ping",
            &format!("{{\"now\": {}}}", clock.now_f64()),
        ))
    })
    .boxed();
    let mut parts: Vec<_> = lives
        .into_iter()
        .map(|s| {
            s.map(Some)
                .chain(futures_util::stream::once(std::future::ready(None)))
                .boxed()
        })
        .collect();
    parts.push(ping);
    let live = futures_util::stream::select_all(parts)
        .take_while(|b| std::future::ready(b.is_some()))
        .filter_map(std::future::ready);
    let body = futures_util::stream::iter(first)
        .chain(live)
        .map(move |b| {
            let _keep = (&guard, &ticket);
            Ok::<Bytes, Infallible>(b)
        })
        .take_until(Box::pin(stop));
    event_stream(body)
}

/// `event: <name>\ndata: <data>\n\n`.
fn named_frame(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Why a subscription ended without an error.
enum Ended {
    Shutdown,
    /// Nobody listened for [`Hub::linger`].
    Idle,
}

/// Holds the Redis pub/sub subscription that feeds the hub while anyone listens (reconnecting
/// with back-off), until the server stops.
pub async fn run_subscriber(st: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let (enrich_tx, enrich_rx) = mpsc::channel::<(Kind, String)>(4096);
    tokio::spawn(run_enricher(st.clone(), enrich_rx));
    let mut failures = 0u32;
    let mut listeners = st.hub.listeners.subscribe();
    loop {
        tokio::select! {
            _ = listeners.wait_for(|n| *n > 0) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let ended = subscribe_once(&st, &enrich_tx, &mut shutdown, &mut failures).await;
        st.hub.subscribed.store(false, Ordering::Relaxed);
        st.hub.ready.send_replace(false);
        match ended {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::Idle) => {
                st.hub.forget();
                tracing::debug!("live streams: nobody listens; Redis pub/sub unsubscribed");
            }
            Err(e) => {
                // The shared connection most likely lost the same server (a restart, a
                // failover): the caches' read at the next subscription must not wait on it.
                st.redis_lost();
                failures += 1;
                let wait = crate::redis_util::backoff(failures);
                tracing::warn!(
                    "live streams: Redis pub/sub failed ({}); retrying in {:.1}s",
                    crate::redis_util::describe(&e),
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

/// `failures` (the back-off's count) is reset once the subscription is up.
async fn subscribe_once(
    st: &Arc<AppState>,
    enrich: &mpsc::Sender<(Kind, String)>,
    shutdown: &mut watch::Receiver<bool>,
    failures: &mut u32,
) -> Result<Ended, redis::RedisError> {
    let cfg = &st.cfg;
    // Every step of the setup is bounded: a Redis that has just restarted answers while it
    // loads its data, and a step that waited for ever there would leave the streams silent
    // with no error to retry on.
    let timed_out =
        || redis::RedisError::from((redis::ErrorKind::IoError, "no answer from Redis in time"));
    let mut ps = tokio::time::timeout(SETUP_DEADLINE, async {
        // While Redis loads its data it refuses commands (`LOADING`): wait until it answers.
        let client = st.data.client().await?;
        let mut probe = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut probe).await?;
        let mut ps = client.get_async_pubsub().await?;
        ps.subscribe(&cfg.channel_live).await?;
        ps.psubscribe(&cfg.channel_map).await?;
        ps.psubscribe(&cfg.channel_contrib).await?;
        ps.psubscribe(&cfg.channel_awards).await?;
        if st.acl.is_some() {
            ps.subscribe(keys::ACL_MAP).await?;
        }
        Ok::<_, redis::RedisError>(ps)
    })
    .await
    .map_err(|_| timed_out())??;
    st.hub.subscribed.store(true, Ordering::Relaxed);
    tracing::info!("live streams subscribed to Redis pub/sub");
    // What the caches hold beyond the history (all of them after a start): a page that
    // connects now, or reconnects after this process replaced another, finds the rows
    // applied while nobody was subscribed.
    let (mut live_overlap, mut map_overlap) =
        match tokio::time::timeout(SETUP_DEADLINE, seed_from_caches(st)).await {
            Ok(Ok(o)) => o,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no answer in time".into(),
                };
                // The shared connection may be a dead one still backing off: the next
                // request makes a new one.
                st.redis_lost();
                tracing::warn!(
                    "live streams: could not read the live caches ({why}); streaming without them"
                );
                (SeedOverlap::default(), SeedOverlap::default())
            }
        };
    st.hub.ready.send_replace(true);
    *failures = 0;
    let overlap_deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut listeners = st.hub.listeners.subscribe();
    let linger = st.hub.linger;
    let mut idle_until = None;
    let mut msgs = ps.on_message();
    loop {
        let waiting = !(live_overlap.is_done() && map_overlap.is_done());
        if idle_until.is_none() && *listeners.borrow_and_update() == 0 {
            idle_until = Some(tokio::time::Instant::now() + linger);
        }
        let msg = tokio::select! {
            m = msgs.next() => m,
            _ = shutdown.wait_for(|s| *s) => return Ok(Ended::Shutdown),
            _ = listeners.changed() => {
                if *listeners.borrow_and_update() > 0 {
                    idle_until = None;
                }
                continue;
            }
            _ = tokio::time::sleep_until(idle_until.unwrap_or_else(tokio::time::Instant::now)), if idle_until.is_some() => {
                if st.hub.idle() {
                    return Ok(Ended::Idle);
                }
                idle_until = None;
                continue;
            }
            _ = tokio::time::sleep_until(overlap_deadline), if waiting => {
                for (data, log, audience) in live_overlap.flush() {
                    st.hub.live.publish_decided(data, log, audience);
                }
                for (data, log, audience) in map_overlap.flush() {
                    st.hub.map.publish_decided(data, log, audience);
                }
                continue;
            }
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
            None if msg.get_channel_name() == keys::ACL_MAP => {
                match serde_json::from_str::<crate::acl::PointFacts>(&payload) {
                    Ok(p) => super::lock(&st.hub.map.point_facts).push(p),
                    Err(e) => tracing::debug!("map point facts skipped: {e}"),
                }
            }
            None => {
                if msg.get_channel_name() == cfg.channel_live {
                    match live::live_payload(&cfg.log_format, &payload) {
                        Some((data, log)) => {
                            // The row's audience, decided once from its content; a row whose
                            // event neither it nor this process describes first gets what the
                            // dispatcher recorded of that event.
                            let audience = match (&st.acl, log.as_deref()) {
                                (Some(policy), Some(text)) => {
                                    let known = &st.hub.live.known_events;
                                    let facts = facts_of(text);
                                    if let Some(id) = facts.as_ref().and_then(|f| known.missing(f))
                                    {
                                        known.fetch(&st.data, &[id]).await;
                                    }
                                    Some(known.audience_of(facts, policy))
                                }
                                _ => None,
                            };
                            let row = log.is_some();
                            for (data, log, audience) in
                                live_overlap.take((data, log, audience), row)
                            {
                                st.hub.live.publish_decided(data, log, audience);
                            }
                        }
                        None => tracing::debug!("live stream: malformed message skipped"),
                    }
                }
            }
            Some(p) if p == cfg.channel_map => {
                for (data, log, audience) in map_overlap.take((payload, None, None), true) {
                    st.hub.map.publish_decided(data, log, audience);
                }
            }
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

/// Reads the live caches (`TEMP_CACHE_LIVE:Attribute` and `:Map`, newest first) into the live
/// and map histories; returns what to expect again from pub/sub.
async fn seed_from_caches(st: &AppState) -> Result<(SeedOverlap, SeedOverlap), WebError> {
    let mut c = st.data.conn().await?;
    let (log, map): (Vec<String>, Vec<String>) = redis::pipe()
        .cmd("LRANGE")
        .arg(keys::LIVE_CACHE_LOG)
        .arg(0)
        .arg(SNAPSHOT_ROWS as isize - 1)
        .cmd("LRANGE")
        .arg(keys::LIVE_CACHE_MAP)
        .arg(0)
        .arg(SNAPSHOT_POINTS as isize - 1)
        .query_async(&mut c)
        .await?;
    let rows: Vec<(String, Option<String>)> = log
        .iter()
        .rev()
        .filter_map(|entry| live::live_payload(&st.cfg.log_format, entry))
        .collect();
    if st.acl.is_some() {
        let facts = recorded_point_facts(&mut c).await?;
        super::lock(&st.hub.map.point_facts).extend_from_list(&facts);
    }
    let points: Vec<(String, Option<String>)> = map.into_iter().rev().map(|p| (p, None)).collect();
    let live_added = st.hub.live.seed(rows, StreamEvent::is_row);
    let map_added = st.hub.map.seed(points, |_| true);
    if !live_added.is_empty() || !map_added.is_empty() {
        tracing::info!(
            "live streams: {} row(s) and {} map point(s) from the live caches",
            live_added.len(),
            map_added.len()
        );
    }
    Ok((
        SeedOverlap::new(live_added, OVERLAP_KEEP),
        SeedOverlap::new(map_added, OVERLAP_KEEP),
    ))
}

/// Longest wait for each step of setting up the subscription (connect, subscribe, read the
/// caches).
const SETUP_DEADLINE: Duration = Duration::from_secs(5);

/// How many of the newest seeded entries pub/sub may repeat: those published in the moment
/// between the subscription and the read of the caches.
const OVERLAP_KEEP: usize = 64;

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
