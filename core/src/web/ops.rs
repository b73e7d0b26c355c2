//! Operations endpoints: `/healthz` (for load balancers and container probes), `/status` (what
//! an operator wants to know when the dashboard looks wrong: is each MISP feed connected, is the
//! buffer draining, are messages being dead-lettered, how old is the GeoIP data) and `/metrics`.

use super::error::WebError;
use super::metrics::{FeedLabels, StreamLabels};
use super::state::AppState;
use crate::keys;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// `GET /healthz`: 200 when the process serves and Redis answers, 503 otherwise.
pub async fn healthz(st: &AppState) -> (axum::http::StatusCode, Value) {
    match ping(st).await {
        Ok(()) => (
            axum::http::StatusCode::OK,
            json!({"status": "ok", "redis": "ok"}),
        ),
        // Up or down only: `/healthz` needs no login, and Redis's own error text (addresses,
        // versions) is for `/status` and the log. Probes come every few seconds, so the log
        // line is at debug; `/status` and the dispatcher say the same at warn.
        Err(e) => {
            tracing::debug!("/healthz: Redis is down: {e}");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "redis": "down"}),
            )
        }
    }
}

async fn ping(st: &AppState) -> Result<(), WebError> {
    let mut c = st.data.conn().await?;
    let answered = tokio::time::timeout(
        Duration::from_secs(2),
        redis::cmd("PING").query_async::<String>(&mut c),
    )
    .await;
    match answered {
        Ok(Ok(_)) => Ok(()),
        // The next request starts on a new connection: this one may be a dead one that
        // would take its time to notice Redis is back.
        Ok(Err(e)) => {
            st.redis_lost();
            Err(e.into())
        }
        Err(_) => {
            st.redis_lost();
            Err(WebError::Unavailable("PING timed out".into()))
        }
    }
}

fn num(v: Option<&String>) -> Option<f64> {
    v.and_then(|s| s.trim().parse::<f64>().ok())
}

/// Every feed's health hash, by name.
async fn feeds(st: &AppState) -> Result<Vec<(String, HashMap<String, String>)>, WebError> {
    let mut c = st.list.conn().await?;
    let mut names: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(keys::FEED_STATUS_PATTERN)
            .arg("COUNT")
            .arg(500)
            .query_async(&mut c)
            .await?;
        names.extend(batch);
        cursor = next;
        if cursor == 0 || names.len() > 10_000 {
            break;
        }
    }
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(vec![]);
    }
    let mut pipe = redis::pipe();
    for k in &names {
        pipe.cmd("HGETALL").arg(k);
    }
    let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut c).await?;
    Ok(names
        .iter()
        .zip(hashes)
        .filter_map(|(k, h)| keys::feed_name_of_status_key(k).map(|n| (n.to_string(), h)))
        .collect())
}

/// Each feed's gaps (disconnections) and whether they were filled (see `feed::gaps`), oldest
/// first.
async fn gaps(st: &AppState, names: &[&str]) -> Result<Vec<Vec<Value>>, WebError> {
    if names.is_empty() {
        return Ok(vec![]);
    }
    let mut c = st.list.conn().await?;
    let mut pipe = redis::pipe();
    for n in names {
        pipe.cmd("HVALS").arg(keys::feed_gaps(n));
    }
    let all: Vec<Vec<String>> = pipe.query_async(&mut c).await?;
    Ok(all
        .into_iter()
        .map(|vals| {
            let mut g: Vec<Value> = vals
                .iter()
                .filter_map(|v| serde_json::from_str(v).ok())
                .collect();
            g.sort_by_key(|v| v.get("from").and_then(Value::as_i64).unwrap_or(0));
            g
        })
        .collect())
}

/// A feed's status as shown by `/status`.
fn feed_json(st: &AppState, name: &str, h: &HashMap<String, String>) -> Value {
    let epoch = |k: &str| num(h.get(k)).filter(|f| *f > 0.0).map(|f| json!(f));
    let messages = num(h.get("messages")).map(|f| f as u64).unwrap_or(0);
    let updated = num(h.get("updated"));
    // The clock the subscribers write with (pinned by MISPDASH_FAKE_NOW in tests).
    let now = st.clock.now_f64();
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert(
        "connected".into(),
        json!(h.get("connected").map(String::as_str) == Some("1")),
    );
    m.insert(
        "last_message".into(),
        epoch("last_message").unwrap_or(Value::Null),
    );
    m.insert(
        "last_keepalive".into(),
        epoch("last_keepalive").unwrap_or(Value::Null),
    );
    m.insert("messages".into(), json!(messages));
    m.insert(
        "messages_per_minute".into(),
        st.rates
            .sample(name, messages)
            .map(|r| json!((r * 10.0).round() / 10.0))
            .unwrap_or(Value::Null),
    );
    m.insert("endpoint".into(), json!(h.get("endpoint")));
    m.insert("updated".into(), json!(updated));
    // The subscriber rewrites its hash every few seconds; an old one means it is not running.
    m.insert(
        "subscriber_running".into(),
        json!(updated.is_some_and(|u| now - u < 60.0)),
    );
    // Null while connected (and from subscribers older than this field).
    m.insert(
        "disconnected_since".into(),
        epoch("disconnected_since").unwrap_or(Value::Null),
    );
    for k in [
        "non_utf8",
        "dropped",
        "dead_lettered",
        "queued",
        "auth_failures",
        "connects",
        "disconnects",
    ] {
        if let Some(v) = num(h.get(k)) {
            m.insert(k.into(), json!(v as u64));
        }
    }
    Value::Object(m)
}

/// `GET /status`.
pub async fn status(st: &AppState) -> Value {
    let redis = ping(st).await;
    let mut out = Map::new();
    out.insert("version".into(), json!(st.version));
    out.insert(
        "redis".into(),
        match &redis {
            Ok(()) => json!({"reachable": true}),
            Err(e) => json!({"reachable": false, "error": e.to_string()}),
        },
    );
    if redis.is_ok() {
        match feeds(st).await {
            Ok(f) => {
                let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
                let gaps = gaps(st, &names).await.unwrap_or_default();
                let list = f
                    .iter()
                    .enumerate()
                    .map(|(i, (n, h))| {
                        let mut v = feed_json(st, n, h);
                        let g = gaps.get(i).cloned().unwrap_or_default();
                        let open = g
                            .iter()
                            .filter(|g| g.get("state").and_then(Value::as_str) != Some("filled"))
                            .count();
                        v["gaps"] = Value::Array(g);
                        v["gaps_open"] = json!(open);
                        v
                    })
                    .collect();
                out.insert("feeds".into(), Value::Array(list));
            }
            Err(e) => {
                out.insert("feeds_error".into(), json!(st.noting(e).to_string()));
            }
        }
        match buffer(st).await {
            Ok(b) => {
                out.insert("buffer".into(), b);
            }
            Err(e) => {
                out.insert("buffer_error".into(), json!(st.noting(e).to_string()));
            }
        }
    }
    let g = &st.geoip;
    out.insert(
        "geoip".into(),
        json!({
            "path": g.path,
            "loaded": g.loaded,
            "database_type": g.database_type,
            "build_epoch": g.build_epoch,
            "build_date": g.build_epoch
                .and_then(|e| chrono::DateTime::from_timestamp(e as i64, 0))
                .map(|d| d.format("%Y-%m-%d").to_string()),
            "error": g.error,
        }),
    );
    let a = &st.admission;
    out.insert(
        "connections".into(),
        json!({
            "open": a.open(),
            "max": a.total(),
            "max_per_address": st.cfg.guard.max_connections_per_address,
            "refused_over_limits": a.refused.load(Ordering::Relaxed),
            "closed_silent": a.timed_out.load(Ordering::Relaxed),
            "timeout_seconds": st.cfg.guard.connection_timeout,
        }),
    );
    let hub = &st.hub;
    // The clients refused a stream for the per-client cap, on any web node (the record is in
    // Redis), with what to do about it: a screen that stays empty says nothing itself.
    let refused_clients = if redis.is_ok() {
        super::refusals::recorded(&st.list)
            .await
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    out.insert(
        "streams".into(),
        json!({
            "subscribed": hub.subscribed.load(Ordering::Relaxed),
            "clients": hub.clients(),
            "max_per_client": st.cfg.guard.max_streams_per_client,
            "refused_over_cap": st.refusals.total(),
            "refused_clients": refused_clients.into_iter().take(20).collect::<Vec<_>>(),
            "slow_clients_dropped": hub.dropped_slow.load(Ordering::Relaxed),
            "published": {
                "live": hub.live.published.load(Ordering::Relaxed),
                "map": hub.map.published.load(Ordering::Relaxed),
                "contributor": hub.contributor.published.load(Ordering::Relaxed),
                "awards": hub.awards.published.load(Ordering::Relaxed),
            },
        }),
    );
    out.insert(
        "server".into(),
        json!({"tls": st.tls, "auth": st.auth.is_some()}),
    );
    Value::Object(out)
}

async fn buffer(st: &AppState) -> Result<Value, WebError> {
    let name = &st.cfg.list_name;
    let mut c = st.list.conn().await?;
    #[allow(clippy::type_complexity)]
    let (len, processing, dead, dispatch, holder, standby): (
        i64,
        i64,
        i64,
        HashMap<String, String>,
        Option<String>,
        Vec<(String, i64)>,
    ) = redis::pipe()
        .cmd("LLEN")
        .arg(name)
        .cmd("LLEN")
        .arg(keys::processing_list(name))
        .cmd("LLEN")
        .arg(keys::dead_letter_list(name))
        .cmd("HGETALL")
        .arg(keys::DISPATCH_STATUS)
        .cmd("GET")
        .arg(crate::lease::LEASE_KEY)
        .cmd("HGETALL")
        .arg(crate::lease::STANDBY_KEY)
        .query_async(&mut c)
        .await?;
    let standby = crate::lease::live_standbys(standby);
    let dispatch: Map<String, Value> = dispatch
        .into_iter()
        .map(|(k, v)| {
            let val = v
                .parse::<i64>()
                .map(|i| json!(i))
                .or_else(|_| v.parse::<f64>().map(|f| json!(f)))
                .unwrap_or(json!(v));
            (k, val)
        })
        .collect();
    Ok(json!({
        "length": len,
        "processing": processing,
        "dead_letters": dead,
        "dispatcher": super::contrib::sorted(dispatch),
        // Who dispatches (the lease holder) and who waits to take over.
        "dispatcher_lease": {
            "holder_started": holder.as_deref().and_then(crate::lease::started_of),
            "standby_started": standby.iter().map(|s| crate::lease::started_of(s)).collect::<Vec<_>>(),
            "holder": holder,
            "standby": standby,
        },
    }))
}

/// `GET /metrics`: refreshes the gauges read from Redis, then encodes everything.
pub async fn metrics(st: &AppState) -> String {
    let m = &st.metrics;
    let hub = &st.hub;
    m.sse_clients.set(hub.clients() as i64);
    m.sse_dropped.set(hub.dropped_slow.load(Ordering::Relaxed));
    m.connections_open.set(st.admission.open() as i64);
    m.connections_refused
        .set(st.admission.refused.load(Ordering::Relaxed));
    m.connections_silent
        .set(st.admission.timed_out.load(Ordering::Relaxed));
    for (name, t) in [
        ("live", &hub.live),
        ("map", &hub.map),
        ("contributor", &hub.contributor),
        ("awards", &hub.awards),
    ] {
        m.stream_events
            .get_or_create(&StreamLabels {
                stream: name.into(),
            })
            .set(t.published.load(Ordering::Relaxed));
    }
    let up = ping(st).await.is_ok();
    m.redis_up.set(up as i64);
    if up {
        if let Ok(Value::Object(b)) = buffer(st).await {
            m.buffer_length
                .set(b.get("length").and_then(Value::as_i64).unwrap_or(0));
            m.dead_letters
                .set(b.get("dead_letters").and_then(Value::as_i64).unwrap_or(0));
        }
        if let Ok(f) = feeds(st).await {
            for (name, h) in f {
                let l = FeedLabels { feed: name };
                m.feed_connected
                    .get_or_create(&l)
                    .set((h.get("connected").map(String::as_str) == Some("1")) as i64);
                m.feed_messages
                    .get_or_create(&l)
                    .set(num(h.get("messages")).unwrap_or(0.0) as u64);
            }
        }
    }
    m.encode()
}
