//! Live streams refused because their client already holds `[mispdash]
//! max_streams_per_client`, made visible: a line in the log, a list in `/status`, and (through
//! Redis, so that every web node and `mispdash selftest` see them) a warning of `selftest`.
//! From a wall screen the cause cannot be seen: its page just stays empty. The usual one is a
//! reverse proxy that is not in `[mispdash] trusted_proxies`, which makes every screen behind
//! it one client, so the cap serves a handful of pages in all.

use super::db::Db;
use crate::keys;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A client is reported (log line, Redis) at most this often; its refusals in between are
/// counted into the next report. A page retries with back-off, so this bounds both.
pub const REPORT_EVERY_SECONDS: f64 = 60.0;
/// Clients kept in memory between reports; past this, the oldest reports are forgotten.
const CLIENTS_KEPT: usize = 1000;
/// Clients kept in Redis; past this the record starts afresh (a flood of clients each past
/// their cap is not what the record is for).
const CLIENTS_RECORDED: usize = 200;
/// How long Redis keeps the record after the last refusal.
const RECORD_TTL_SECONDS: i64 = 7 * 86_400;

/// One refused stream.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// `address <ip>` without login, `user <name>` with it.
    pub client: String,
    /// The request came through a proxy (it named a client in `X-Forwarded-For`) whose
    /// address is not trusted, so the proxy's own address was counted.
    pub forwarded: bool,
    /// The cap that was reached.
    pub max: usize,
}

#[derive(Default)]
struct Seen {
    /// Refusals since the last report.
    pending: u64,
    reported_at: f64,
}

/// The process's count of refusals, and when each client was last reported.
#[derive(Default)]
pub struct Refusals {
    total: AtomicU64,
    seen: Mutex<HashMap<String, Seen>>,
}

impl Refusals {
    /// Streams refused since the start.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts a refusal of `client` at `now`; the number of refusals to report when it is
    /// time to report this client again, else `None`.
    pub fn count(&self, client: &str, now: f64) -> Option<u64> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut seen = super::lock(&self.seen);
        if seen.len() >= CLIENTS_KEPT && !seen.contains_key(client) {
            seen.retain(|_, s| now - s.reported_at < REPORT_EVERY_SECONDS);
            if seen.len() >= CLIENTS_KEPT {
                seen.clear();
            }
        }
        let s = seen.entry(client.to_string()).or_default();
        s.pending += 1;
        if s.reported_at > 0.0 && now - s.reported_at < REPORT_EVERY_SECONDS {
            return None;
        }
        s.reported_at = now;
        Some(std::mem::take(&mut s.pending))
    }

    /// Reports a refusal: counted, and at most every [`REPORT_EVERY_SECONDS`] per client a log
    /// line and the record in Redis (`list`, the database every node and `selftest` read).
    pub fn report(&self, list: &Db, r: Refusal) {
        // The wall clock, not the pinned one of the day keys: `selftest` asks what happened in
        // the last day by the same clock.
        let now = crate::clock::Clock::system().now_f64();
        let Some(n) = self.count(&r.client, now) else {
            return;
        };
        tracing::warn!(
            "live stream refused to {} ({n} refused since the last report): it already holds {} \
             ({})",
            r.client,
            r.max,
            crate::refused::hint(r.forwarded, r.max)
        );
        let list = list.clone();
        tokio::spawn(async move {
            if let Err(e) = record(&list, &r, n, now).await {
                tracing::debug!("could not record a refused stream in Redis: {e}");
            }
        });
    }
}

async fn record(list: &Db, r: &Refusal, n: u64, now: f64) -> Result<(), super::error::WebError> {
    let mut c = list.conn().await?;
    let len: usize = redis::cmd("HLEN")
        .arg(keys::STREAMS_REFUSED)
        .query_async(&mut c)
        .await?;
    let mut pipe = redis::pipe();
    if len >= CLIENTS_RECORDED {
        pipe.del(keys::STREAMS_REFUSED)
            .ignore()
            .del(keys::STREAMS_REFUSED_COUNT)
            .ignore();
    }
    let entry = json!({"last": now, "forwarded": r.forwarded, "max": r.max});
    pipe.hset(keys::STREAMS_REFUSED, &r.client, entry.to_string())
        .ignore()
        .hincr(keys::STREAMS_REFUSED_COUNT, &r.client, n)
        .ignore()
        .expire(keys::STREAMS_REFUSED, RECORD_TTL_SECONDS)
        .ignore()
        .expire(keys::STREAMS_REFUSED_COUNT, RECORD_TTL_SECONDS)
        .ignore();
    pipe.query_async::<()>(&mut c).await?;
    Ok(())
}

/// The recorded refusals, most recent first: `{"client", "last", "refused", "forwarded",
/// "max", "hint"}` (see [`crate::refused`]).
pub async fn recorded(list: &Db) -> Result<Vec<Value>, super::error::WebError> {
    let mut c = list.conn().await?;
    let (entries, counts): (HashMap<String, String>, HashMap<String, u64>) = redis::pipe()
        .hgetall(keys::STREAMS_REFUSED)
        .hgetall(keys::STREAMS_REFUSED_COUNT)
        .query_async(&mut c)
        .await?;
    Ok(crate::refused::parse_record(&entries, &counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_reported_once_a_minute_with_what_was_refused_meanwhile() {
        let r = Refusals::default();
        assert_eq!(r.count("address 10.0.0.1", 1000.0), Some(1));
        assert_eq!(r.count("address 10.0.0.1", 1010.0), None);
        assert_eq!(r.count("address 10.0.0.1", 1050.0), None);
        assert_eq!(
            r.count("address 10.0.0.2", 1050.0),
            Some(1),
            "each client apart"
        );
        assert_eq!(r.count("address 10.0.0.1", 1061.0), Some(3));
        assert_eq!(r.total(), 5);
    }
}
