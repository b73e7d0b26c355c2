//! The live streams' shared state: one broadcast channel and a bounded history per stream
//! (the [`Hub`]), what is known of events for access control, and the count of open streams
//! per client. What `stream` serves clients from; nothing here reads the server's state.

use super::db::Db;
use super::error::WebError;
use super::live::Filters;
use crate::keys;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

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
    /// The combined stream's frame (`event: <topic>`, then `frame`), rendered once and shared
    /// by every client; `frame` is a view of its end.
    pub mux: Bytes,
    /// The original route's SSE frame (`id:`, `data:` with the Python `json.dumps` payload,
    /// blank line).
    pub frame: Bytes,
    /// The payload alone (what `data:` carries), for snapshots and for aligning a cache with
    /// the history.
    pub data: Bytes,
    /// For live-log rows, the MISP object as JSON text, for clients with filters.
    pub log_json: Option<String>,
    /// Read from a live cache rather than received: only the combined stream carries these
    /// (the original's routes never replay a cache; their pages read it as JSON).
    pub seeded: bool,
    /// With access control on, who may see this live-log row (decided once, here).
    pub audience: Option<crate::acl::Audience>,
}

impl StreamEvent {
    fn size(&self) -> usize {
        self.mux.len() + self.log_json.as_ref().map_or(0, String::len) + 64
    }

    /// Whether a client with these live-log filters gets this event.
    fn passes(&self, filters: &Filters) -> bool {
        filters.is_empty()
            || self
                .log_json
                .as_deref()
                .and_then(super::live::LazyLog::parse)
                .is_none_or(|log| filters.pass(&log))
    }

    /// A live-log row (not a keep-alive relayed from MISP).
    pub(super) fn is_row(&self) -> bool {
        self.log_json.is_some()
    }

    /// Whether `viewer` (`None`: access control off) may see this event.
    fn visible(&self, viewer: Option<&crate::acl::Viewer>) -> bool {
        match (viewer, &self.audience) {
            (Some(v), Some(a)) => a.admits(v),
            _ => true,
        }
    }

    /// What a client with these filters and this viewer gets.
    pub(super) fn shown(&self, filters: &Filters, viewer: Option<&crate::acl::Viewer>) -> bool {
        self.visible(viewer) && self.passes(filters)
    }
}

/// What a live-log row's content says to the rules (`None`: not JSON).
pub fn facts_of(log_json: &str) -> Option<crate::acl::Facts> {
    crate::acl::Facts::of_text(log_json)
}

/// What earlier messages said of events, for rows whose content does not say it (an object's
/// attributes from `misp_json_object`): learnt from the rows that do, and read from what the
/// dispatcher recorded (`keys::ACL_EVENTS`) when a row names an event not seen here.
#[derive(Clone)]
pub struct KnownEvents(moka::sync::Cache<u64, Arc<crate::acl::EventFacts>>);

impl Default for KnownEvents {
    fn default() -> Self {
        KnownEvents(moka::sync::Cache::new(crate::rules::EVENT_FACTS_KEPT))
    }
}

impl KnownEvents {
    /// Learns from `f` when it says who owns its event and how it is distributed, else
    /// completes it from what is known.
    pub fn complete(&self, f: &mut crate::acl::Facts) {
        let Some(id) = f.event.id else {
            return;
        };
        if f.event.org_id.is_some() && f.event.distribution.is_some() {
            if self.0.get(&id).as_deref() != Some(&f.event) {
                self.0.insert(id, Arc::new(f.event.clone()));
            }
        } else if let Some(known) = self.0.get(&id) {
            f.event.complete_from(&known);
        }
    }

    /// The id of `f`'s event when neither `f` nor this process knows what it is.
    pub fn missing(&self, f: &crate::acl::Facts) -> Option<u64> {
        let id = f.event.id?;
        (f.event.distribution.is_none() && !self.0.contains_key(&id)).then_some(id)
    }

    /// Reads the dispatcher's record of events `ids`.
    pub async fn fetch(&self, data: &Db, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let Ok(mut c) = data.conn().await else {
            return;
        };
        let got: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys::ACL_EVENTS)
            .arg(ids)
            .query_async(&mut c)
            .await
            .unwrap_or_default();
        for (id, v) in ids.iter().zip(got) {
            if let Some(e) = v.and_then(|v| serde_json::from_str(&v).ok()) {
                self.0.insert(*id, Arc::new(e));
            }
        }
    }

    /// Who may see a live-log row: MISP's rules on what its content says, completed.
    pub fn audience(&self, log_json: &str, policy: &crate::acl::Policy) -> crate::acl::Audience {
        self.audience_of(facts_of(log_json), policy)
    }

    /// [`KnownEvents::audience`] of facts already read (`None`: the row was not JSON).
    pub fn audience_of(
        &self,
        facts: Option<crate::acl::Facts>,
        policy: &crate::acl::Policy,
    ) -> crate::acl::Audience {
        match facts {
            Some(mut f) => {
                self.complete(&mut f);
                crate::acl::Audience::decide(&f, policy)
            }
            None => crate::acl::Audience::admins_only(),
        }
    }
}

struct History {
    events: VecDeque<Arc<StreamEvent>>,
    bytes: usize,
    next_id: u64,
}

/// One stream: its broadcast channel and history.
pub struct Topic {
    /// The name of its events on the combined stream.
    pub name: &'static str,
    /// The first id of this process: ids below it were given by an earlier process.
    first_id: u64,
    tx: broadcast::Sender<Arc<StreamEvent>>,
    history: Mutex<History>,
    pub published: AtomicU64,
    /// MISP's rules for this topic's rows, once access control is on (see [`Hub::set_acl`]).
    acl: std::sync::OnceLock<crate::acl::Policy>,
    /// For the map: the facts the dispatcher recorded for points to come (`keys::ACL_MAP`).
    pub point_facts: Mutex<crate::acl::PointFactsQueue>,
    /// For the live log: what is known of events (see [`KnownEvents`]).
    pub known_events: KnownEvents,
}

/// What a client of the combined stream gets of one topic when it (re)connects.
pub struct MuxSubscription {
    /// The events after the client's last one, when this process still has them all.
    pub replay: Vec<Arc<StreamEvent>>,
    /// Otherwise (a new client, another process, or events gone from the history): the
    /// newest events, oldest first, for the client to align with what it shows.
    pub snapshot: Option<Vec<Arc<StreamEvent>>>,
    /// The id the client is at once it has the replay or the snapshot.
    pub last: u64,
    pub rx: broadcast::Receiver<Arc<StreamEvent>>,
}

impl Topic {
    fn new(name: &'static str, first_id: u64) -> Topic {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Topic {
            name,
            first_id,
            tx,
            history: Mutex::new(History {
                events: VecDeque::new(),
                bytes: 0,
                next_id: first_id,
            }),
            published: AtomicU64::new(0),
            acl: std::sync::OnceLock::new(),
            point_facts: Mutex::new(Default::default()),
            known_events: KnownEvents::default(),
        }
    }

    /// Records and broadcasts an event. The history lock is held while sending so that a
    /// client subscribing concurrently sees each event exactly once (in its replay or live).
    pub fn publish(&self, data: String, log_json: Option<String>) {
        self.publish_decided(data, log_json, None);
    }

    /// [`Topic::publish`] of a row whose audience the caller already decided (`None`: decide
    /// it here), so that a row's content is read for the rules once.
    pub fn publish_decided(
        &self,
        data: String,
        log_json: Option<String>,
        audience: Option<crate::acl::Audience>,
    ) {
        let Ok(mut h) = self.history.lock() else {
            return;
        };
        self.publish_locked(&mut h, data, log_json, false, audience);
    }

    fn publish_locked(
        &self,
        h: &mut History,
        data: String,
        log_json: Option<String>,
        seeded: bool,
        decided: Option<crate::acl::Audience>,
    ) {
        let id = h.next_id;
        // A live-log row's audience comes from its content; a map point's from the facts the
        // dispatcher recorded for it (none: site admins only); keep-alives are everyone's.
        let audience = self.acl.get().and_then(|p| match log_json.as_deref() {
            Some(_) if decided.is_some() => decided,
            Some(log) => Some(self.known_events.audience(log, p)),
            None if self.name == "map" => Some(
                super::lock(&self.point_facts)
                    .take(&data)
                    .map(|f| crate::acl::Audience::decide(&f, p))
                    .unwrap_or_else(crate::acl::Audience::admins_only),
            ),
            None => None,
        });
        let mux = mux_frame(self.name, id, &data);
        let start = mux.len() - sse_frame_len(id, &data);
        let data_start = mux.len() - data.len() - 2;
        let ev = Arc::new(StreamEvent {
            id,
            frame: mux.slice(start..),
            data: mux.slice(data_start..mux.len() - 2),
            mux,
            log_json,
            seeded,
            audience,
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

    /// A receiver for what comes next, and the events after `last_id` to replay first. An id
    /// of another process replays nothing: this process's history starts with the live cache
    /// it read at start, which such a client has already shown.
    pub(super) fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (Vec<Arc<StreamEvent>>, broadcast::Receiver<Arc<StreamEvent>>) {
        let Ok(h) = self.history.lock() else {
            return (vec![], self.tx.subscribe());
        };
        let rx = self.tx.subscribe();
        let backlog = match last_id {
            Some(id) if id + 1 >= self.first_id => h
                .events
                .iter()
                .filter(|e| e.id > id && !e.seeded)
                .cloned()
                .collect(),
            _ => vec![],
        };
        (backlog, rx)
    }

    /// A subscription of the combined stream. `since` is the last id the client saw; it
    /// resumes exactly when this process has every event after it, else it gets the newest
    /// `snapshot_max` events that pass `keep`, to align with what it shows.
    pub fn subscribe_mux(
        &self,
        since: Option<u64>,
        snapshot_max: usize,
        keep: impl Fn(&StreamEvent) -> bool,
    ) -> MuxSubscription {
        let h = super::lock(&self.history);
        let rx = self.tx.subscribe();
        let last = h.next_id.saturating_sub(1);
        let oldest = h.events.front().map_or(h.next_id, |e| e.id);
        match since {
            Some(id) if id + 1 >= oldest && id <= last && id + 1 >= self.first_id => {
                MuxSubscription {
                    replay: h.events.iter().filter(|e| e.id > id).cloned().collect(),
                    snapshot: None,
                    last,
                    rx,
                }
            }
            _ => {
                let mut snap: Vec<Arc<StreamEvent>> = h
                    .events
                    .iter()
                    .rev()
                    .filter(|e| keep(e))
                    .take(snapshot_max)
                    .cloned()
                    .collect();
                snap.reverse();
                MuxSubscription {
                    replay: vec![],
                    snapshot: Some(snap),
                    last,
                    rx,
                }
            }
        }
    }

    /// Appends what a cache (oldest first) holds beyond this history: after a start, all of
    /// it; after Redis came back, what was cached while the subscription was down. `same`
    /// tells which events of the history the cache holds (live-log rows; not keep-alives).
    /// Returns the payloads appended.
    pub(super) fn seed(
        &self,
        cache: Vec<(String, Option<String>)>,
        cached: impl Fn(&StreamEvent) -> bool,
    ) -> Vec<String> {
        let mut h = super::lock(&self.history);
        let known: Vec<&[u8]> = h
            .events
            .iter()
            .filter(|e| cached(e))
            .map(|e| &e.data[..])
            .collect();
        let from = new_in_cache(&known, &cache);
        let mut added = vec![];
        for (data, log_json) in cache.into_iter().skip(from) {
            added.push(data.clone());
            self.publish_locked(&mut h, data, log_json, true, None);
        }
        added
    }
}

/// Where the entries of `cache` (oldest first) that `history` (oldest first) lacks begin: just
/// after the place where the history's newest entries (up to three, for a value repeated in
/// the cache; else the newest alone) end in the cache. All of the cache when the history is empty or its newest
/// entry is not there (gone from a trimmed cache).
fn new_in_cache(history: &[&[u8]], cache: &[(String, Option<String>)]) -> usize {
    let Some(newest) = history.last() else {
        return 0;
    };
    let confirm = history.len().min(3);
    let at = |i: usize| cache[i].0.as_bytes() == *newest;
    let confirmed = |i: usize| {
        (1..confirm).all(|k| i >= k && cache[i - k].0.as_bytes() == history[history.len() - 1 - k])
    };
    (0..cache.len())
        .rev()
        .find(|&i| at(i) && confirmed(i))
        .or_else(|| (0..cache.len()).rev().find(|&i| at(i)))
        .map_or(0, |i| i + 1)
}

/// Messages read from pub/sub right after the caches were read may be in both: the ones
/// published between the subscription and the read. They are the newest entries of the cache,
/// in the same order, so the first messages that repeat the cache's tail exactly, up to its
/// newest entry, are dropped; anything else is published.
#[derive(Debug, Default)]
pub struct SeedOverlap {
    /// The newest seeded payloads, oldest first.
    tail: Vec<String>,
    /// Positions in `tail` the messages held so far match up to.
    candidates: Vec<usize>,
    held: Vec<Pending>,
}

/// A message waiting to be published: its payload, its live-log content, and its audience
/// when already decided.
pub type Pending = (String, Option<String>, Option<crate::acl::Audience>);

impl SeedOverlap {
    pub fn new(mut seeded: Vec<String>, keep: usize) -> SeedOverlap {
        let cut = seeded.len().saturating_sub(keep);
        seeded.drain(..cut);
        SeedOverlap {
            tail: seeded,
            candidates: vec![],
            held: vec![],
        }
    }

    pub fn is_done(&self) -> bool {
        self.tail.is_empty()
    }

    /// Takes a message; returns those to publish (none while it may still be a repeat).
    /// Messages a cache never holds (`cached` false: MISP's keep-alives) pass.
    pub fn take(&mut self, msg: Pending, cached: bool) -> Vec<Pending> {
        if self.tail.is_empty() || !cached {
            return vec![msg];
        }
        let data = &msg.0;
        let next: Vec<usize> = if self.held.is_empty() {
            (0..self.tail.len())
                .filter(|&i| &self.tail[i] == data)
                .collect()
        } else {
            self.candidates
                .iter()
                .map(|i| i + 1)
                .filter(|&i| i < self.tail.len() && &self.tail[i] == data)
                .collect()
        };
        if next.is_empty() {
            // Not a repeat: what was held was not one either.
            self.tail.clear();
            let mut out = std::mem::take(&mut self.held);
            out.push(msg);
            return out;
        }
        if next.contains(&(self.tail.len() - 1)) {
            // The repeat reached the cache's newest entry: all of it was a repeat.
            self.tail.clear();
            self.held.clear();
            return vec![];
        }
        self.candidates = next;
        self.held.push(msg);
        vec![]
    }

    /// Gives up waiting (the held messages were not a repeat after all).
    pub fn flush(&mut self) -> Vec<Pending> {
        self.tail.clear();
        std::mem::take(&mut self.held)
    }
}

/// `event: snapshot` of a topic: `{"topic", "last", "events": [payload, …]}`, oldest first.
pub(super) fn snapshot_frame(topic: &str, last: u64, events: &[Arc<StreamEvent>]) -> Bytes {
    let mut f = Vec::with_capacity(64 + events.iter().map(|e| e.data.len() + 2).sum::<usize>());
    f.extend_from_slice(b"event: snapshot\ndata: {\"topic\": \"");
    f.extend_from_slice(topic.as_bytes());
    f.extend_from_slice(b"\", \"last\": ");
    f.extend_from_slice(itoa::Buffer::new().format(last).as_bytes());
    f.extend_from_slice(b", \"events\": [");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            f.extend_from_slice(b", ");
        }
        f.extend_from_slice(&e.data);
    }
    f.extend_from_slice(b"]}\n\n");
    Bytes::from(f)
}

/// `event: <topic>\nid: <id>\ndata: <payload>\n\n`. Payloads are JSON on one line (`json.dumps`
/// and our own never break lines); one that held a newline would be cut to one line here, as
/// the SSE format gives a line break no other meaning.
fn mux_frame(topic: &str, id: u64, data: &str) -> Bytes {
    let mut f = String::with_capacity(data.len() + 48);
    f.push_str("event: ");
    f.push_str(topic);
    f.push('\n');
    f.push_str("id: ");
    f.push_str(itoa::Buffer::new().format(id));
    f.push_str("\ndata: ");
    for c in data.chars() {
        f.push(if c == '\n' || c == '\r' { ' ' } else { c });
    }
    f.push_str("\n\n");
    Bytes::from(f)
}

/// The length of the end of a mux frame that is the original route's frame (`id:` on).
fn sse_frame_len(id: u64, data: &str) -> usize {
    "id: ".len() + itoa::Buffer::new().format(id).len() + "\ndata: ".len() + data.len() + 2
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
    /// This process's first id, which tells a client whether it reconnected to the same
    /// process (ids grow across restarts).
    pub boot: u64,
    pub live: Topic,
    pub map: Topic,
    pub contributor: Topic,
    pub awards: Topic,
    /// Open streams: the subscription is held while there are any (see [`Hub::attend`]).
    pub(super) listeners: watch::Sender<u64>,
    pub dropped_slow: AtomicU64,
    pub subscribed: AtomicBool,
    pub keepalive: Duration,
    /// How long the subscription outlives the last client.
    pub linger: Duration,
    pub(super) shutdown: watch::Receiver<bool>,
    /// Whether the subscription is up and the live caches were read into the histories (see
    /// `seed_from_caches`): a stream that opens before waits a moment for it, so that it
    /// misses nothing published after its answer began.
    pub(super) ready: watch::Sender<bool>,
}

impl Hub {
    pub fn new(keepalive: Duration, linger: Duration, shutdown: watch::Receiver<bool>) -> Hub {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        Hub {
            boot,
            live: Topic::new("live", boot),
            map: Topic::new("map", boot),
            contributor: Topic::new("contributors", boot),
            awards: Topic::new("awards", boot),
            listeners: watch::Sender::new(0),
            dropped_slow: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            keepalive,
            linger,
            shutdown,
            ready: watch::Sender::new(false),
        }
    }

    /// Open streams.
    pub fn clients(&self) -> u64 {
        *self.listeners.borrow()
    }

    /// Whether the hub holds its subscription for no one but lingers (or is idle): no stream
    /// is open.
    pub fn idle(&self) -> bool {
        self.clients() == 0
    }

    /// Forgets every topic's history, when the subscription is dropped for want of listeners:
    /// what is published meanwhile never reaches it, so no client may resume across the gap
    /// (it gets a snapshot instead, read from the live caches at the next subscription).
    pub(super) fn forget(&self) {
        for t in [&self.live, &self.map, &self.contributor, &self.awards] {
            let mut h = super::lock(&t.history);
            h.events.clear();
            h.bytes = 0;
            // Ids keep growing, so an id given before the gap is older than the history.
            h.next_id += 1;
        }
        *super::lock(&self.map.point_facts) = Default::default();
    }

    /// Turns access control on for the live log: each row's audience is decided as it is
    /// published. Set once, before the subscription starts.
    pub fn set_acl(&self, policy: crate::acl::Policy) {
        let _ = self.live.acl.set(policy.clone());
        let _ = self.map.acl.set(policy);
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

/// How many of a WSGI server's `threads` live streams may hold: all but a quarter (at least
/// four), which stay free for page requests, so open screens never starve the pages.
pub fn stream_slots(threads: usize) -> usize {
    threads.saturating_sub((threads / 4).max(4)).max(1)
}

/// Streams one client (session or address) may hold among `slots`: a quarter, at least two,
/// so that one client cannot take them all (a wall screen holds one per page; several screens
/// may share an address behind NAT when login is off).
pub fn streams_per_client(slots: usize) -> usize {
    (slots / 4).max(2)
}

/// Live streams open per client (a session, or an address without login), so that one client
/// cannot hold thousands: each costs a task, a connection and a broadcast receiver (and under
/// a WSGI server a thread, hence the total there too).
pub struct StreamCounts {
    /// Shared with the tickets, which count themselves out when dropped.
    open: Arc<Mutex<Open>>,
    /// The most open at once, all clients together (`None`: no total).
    slots: Option<usize>,
}

#[derive(Default)]
struct Open {
    by_client: std::collections::HashMap<String, usize>,
    total: usize,
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The client holds its most.
    PerClient,
    /// Every slot of the host's thread pool that streams may hold is taken.
    Total(usize),
}

/// One open stream of a client; counted until dropped (when the stream ends, however).
pub struct StreamTicket {
    counts: Arc<Mutex<Open>>,
    client: String,
    /// The digest of the session that opened the stream, if any (see `session_ended`).
    pub(super) session: Option<String>,
}

impl StreamCounts {
    pub fn new(slots: Option<usize>) -> StreamCounts {
        StreamCounts {
            open: Arc::new(Mutex::new(Open::default())),
            slots,
        }
    }

    /// Counts a new stream of `client` (of the session `session`, when logged in), unless it
    /// already holds `max` or every slot is taken.
    pub fn open(
        &self,
        client: String,
        session: Option<String>,
        max: usize,
    ) -> Result<StreamTicket, StreamRefusal> {
        let mut o = super::lock(&self.open);
        if let Some(slots) = self.slots.filter(|s| o.total >= *s) {
            return Err(StreamRefusal::Total(slots));
        }
        let n = o.by_client.entry(client.clone()).or_insert(0);
        if *n >= max {
            return Err(StreamRefusal::PerClient);
        }
        *n += 1;
        o.total += 1;
        Ok(StreamTicket {
            counts: self.open.clone(),
            client,
            session,
        })
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        let mut o = super::lock(&self.counts);
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                o.by_client.remove(&self.client);
            }
        }
    }
}

/// The map points' facts the dispatcher recorded (`keys::ACL_MAP`), newest first.
pub async fn recorded_point_facts(
    c: &mut redis::aio::ConnectionManager,
) -> Result<Vec<String>, WebError> {
    Ok(redis::cmd("LRANGE")
        .arg(keys::ACL_MAP)
        .arg(0)
        .arg(-1)
        .query_async(c)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(items: &[&str]) -> Vec<(String, Option<String>)> {
        items.iter().map(|s| (s.to_string(), None)).collect()
    }

    fn msg(s: &str) -> Pending {
        (s.to_string(), None, None)
    }

    fn pending(items: &[&str]) -> Vec<Pending> {
        items.iter().map(|s| msg(s)).collect()
    }

    #[test]
    fn the_cache_beyond_the_history() {
        let cache = owned(&["a", "b", "c", "d"]);
        assert_eq!(new_in_cache(&[], &cache), 0, "all of it after a start");
        assert_eq!(new_in_cache(&[b"a", b"b"], &cache), 2);
        assert_eq!(new_in_cache(&[b"x", b"d"], &cache), 4, "nothing new");
        assert_eq!(
            new_in_cache(&[b"zz"], &cache),
            0,
            "the newest known entry was trimmed away: all of the cache is new"
        );
        // A value repeated in the cache: the place is where the history's last three end.
        let cache = owned(&["a", "b", "a", "c", "a", "b", "e"]);
        assert_eq!(new_in_cache(&[b"c", b"a", b"b"], &cache), 6);
        assert_eq!(new_in_cache(&[b"a", b"b"], &cache), 6);
    }

    #[test]
    fn pubsub_repeating_the_caches_tail_is_dropped() {
        let seeded = vec!["a".to_string(), "b".into(), "c".into()];
        // The last two cached entries come again, then a new message.
        let mut o = SeedOverlap::new(seeded.clone(), 64);
        assert!(o.take(msg("b"), true).is_empty());
        assert!(o.take(msg("c"), true).is_empty());
        assert!(o.is_done());
        assert_eq!(o.take(msg("d"), true), pending(&["d"]));
        // A message that is not the tail: everything passes.
        let mut o = SeedOverlap::new(seeded.clone(), 64);
        assert_eq!(o.take(msg("x"), true), pending(&["x"]));
        assert_eq!(o.take(msg("c"), true), pending(&["c"]));
        // A run that looked like the tail but stops before its end was not a repeat.
        let mut o = SeedOverlap::new(seeded.clone(), 64);
        assert!(o.take(msg("a"), true).is_empty());
        assert_eq!(o.take(msg("x"), true), pending(&["a", "x"]));
        // Keep-alives (never cached) pass through while the run goes on.
        let mut o = SeedOverlap::new(seeded.clone(), 64);
        assert!(o.take(msg("b"), true).is_empty());
        assert_eq!(o.take(msg("k"), false), pending(&["k"]));
        assert!(o.take(msg("c"), true).is_empty());
        assert!(o.is_done());
        // Given up after a while: what was held is published.
        let mut o = SeedOverlap::new(seeded, 64);
        assert!(o.take(msg("a"), true).is_empty());
        assert_eq!(o.flush(), pending(&["a"]));
        assert!(o.is_done());
    }

    #[test]
    fn a_client_resumes_within_this_process_else_gets_a_snapshot() {
        let t = Topic::new("live", 1_000);
        for i in 0..5 {
            t.publish(format!("{{\"n\": {i}}}"), Some("{}".into()));
        }
        // Seen up to the third: the last two replayed.
        let s = t.subscribe_mux(Some(1_002), 10, |_| true);
        assert!(s.snapshot.is_none());
        assert_eq!(
            s.replay.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1_003, 1_004]
        );
        assert_eq!(s.last, 1_004);
        // An id of an earlier process, or none: the newest events.
        for since in [Some(17), None, Some(9_999)] {
            let s = t.subscribe_mux(since, 3, |_| true);
            let snap = s.snapshot.expect("snapshot");
            assert_eq!(
                snap.iter().map(|e| e.id).collect::<Vec<_>>(),
                [1_002, 1_003, 1_004]
            );
            assert!(s.replay.is_empty());
        }
        // Frames: the combined stream's names the topic; the original route's is its end.
        let e = &t
            .subscribe_mux(None, 1, |_| true)
            .snapshot
            .expect("snapshot")[0];
        assert_eq!(&e.mux[..], b"event: live\nid: 1004\ndata: {\"n\": 4}\n\n");
        assert_eq!(&e.frame[..], b"id: 1004\ndata: {\"n\": 4}\n\n");
        assert_eq!(&e.data[..], b"{\"n\": 4}");
        let snap = snapshot_frame("live", 1_004, &[e.clone(), e.clone()]);
        assert_eq!(
            &snap[..],
            &b"event: snapshot\ndata: {\"topic\": \"live\", \"last\": 1004, \"events\": [{\"n\": 4}, {\"n\": 4}]}\n\n"[..]
        );
    }

    #[test]
    fn seeded_events_reach_only_the_combined_stream() {
        let t = Topic::new("live", 1_000);
        let added = t.seed(
            vec![
                ("{\"n\": 0}".into(), Some("{}".into())),
                ("{\"n\": 1}".into(), Some("{}".into())),
            ],
            StreamEvent::is_row,
        );
        assert_eq!(added.len(), 2);
        t.publish("{\"n\": 2}".into(), Some("{}".into()));
        // The original's route replays only what this process received.
        let (backlog, _) = t.subscribe(Some(999));
        assert_eq!(backlog.iter().map(|e| e.id).collect::<Vec<_>>(), [1_002]);
        let snap = t
            .subscribe_mux(None, 10, |_| true)
            .snapshot
            .expect("snapshot");
        assert_eq!(snap.len(), 3);
        // Seeding again with the same cache adds nothing; with one more entry, that one.
        let again = t.seed(
            vec![
                ("{\"n\": 0}".into(), None),
                ("{\"n\": 1}".into(), None),
                ("{\"n\": 2}".into(), None),
                ("{\"n\": 3}".into(), None),
            ],
            StreamEvent::is_row,
        );
        assert_eq!(again, ["{\"n\": 3}"]);
    }
}
