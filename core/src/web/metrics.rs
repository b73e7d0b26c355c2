//! `/metrics` in the Prometheus text format, so the dashboard can be watched like any other
//! service: requests and latency per route, open streams, slow clients dropped, events
//! published, and the health of the ingest side read from Redis at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    pub feed: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: HistogramFamily,
    pub sse_clients: Gauge,
    pub sse_dropped: Gauge<u64, AtomicU64>,
    pub stream_events: Family<StreamLabels, Gauge<u64, AtomicU64>>,
    pub buffer_length: Gauge,
    pub dead_letters: Gauge,
    pub feed_connected: Family<FeedLabels, Gauge>,
    pub feed_messages: Family<FeedLabels, Gauge<u64, AtomicU64>>,
    pub redis_up: Gauge,
    pub connections_open: Gauge,
    pub connections_refused: Gauge<u64, AtomicU64>,
    pub connections_silent: Gauge<u64, AtomicU64>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~3 s.
    Histogram::new(exponential_buckets(0.00005, 3.0, 11))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mispdash");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route",
            duration.clone(),
        );
        let sse_clients = Gauge::default();
        registry.register(
            "sse_clients",
            "Open Server-Sent-Events streams",
            sse_clients.clone(),
        );
        let sse_dropped = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "sse_slow_clients_dropped",
            "Stream clients disconnected because they fell behind",
            sse_dropped.clone(),
        );
        let stream_events = Family::<StreamLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "stream_events_published",
            "Events fanned out, by stream",
            stream_events.clone(),
        );
        let buffer_length = Gauge::default();
        registry.register(
            "buffer_length",
            "Messages waiting in the Redis buffer list",
            buffer_length.clone(),
        );
        let dead_letters = Gauge::default();
        registry.register(
            "dead_letters",
            "Entries of the dead-letter list",
            dead_letters.clone(),
        );
        let feed_connected = Family::<FeedLabels, Gauge>::default();
        registry.register(
            "feed_connected",
            "Whether each MISP feed's subscriber is connected (1) or not (0)",
            feed_connected.clone(),
        );
        let feed_messages = Family::<FeedLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "feed_messages",
            "Frames received from each MISP feed",
            feed_messages.clone(),
        );
        let redis_up = Gauge::default();
        registry.register(
            "redis_up",
            "Whether Redis answered the last scrape",
            redis_up.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open",
            connections_open.clone(),
        );
        let connections_refused = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "connections_refused",
            "Connections closed at once because max_connections or max_connections_per_address was reached",
            connections_refused.clone(),
        );
        let connections_silent = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "connections_silent_closed",
            "Connections closed because the client said nothing within connection_timeout",
            connections_silent.clone(),
        );
        Metrics {
            registry,
            connections_open,
            connections_refused,
            connections_silent,
            requests,
            duration,
            sse_clients,
            sse_dropped,
            stream_events,
            buffer_length,
            dead_letters,
            feed_connected,
            feed_messages,
            redis_up,
        }
    }

    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Samples of each feed's message counter, to tell messages per minute.
#[derive(Default)]
pub struct FeedRates(Mutex<HashMap<String, VecDeque<(Instant, u64)>>>);

/// How far back a rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(60);

impl FeedRates {
    /// Records a sample and returns messages per minute over the last minute (or as much of it
    /// as has been observed, at least 5 s), `None` before that.
    pub fn sample(&self, feed: &str, messages: u64) -> Option<f64> {
        let now = Instant::now();
        let mut g = self.0.lock().ok()?;
        let q = g.entry(feed.to_string()).or_default();
        q.push_back((now, messages));
        while q.len() > 2
            && q.get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= RATE_WINDOW)
        {
            q.pop_front();
        }
        let (t0, m0) = *q.front()?;
        let span = now.duration_since(t0).as_secs_f64();
        (span >= 5.0).then(|| messages.saturating_sub(m0) as f64 * 60.0 / span)
    }
}
