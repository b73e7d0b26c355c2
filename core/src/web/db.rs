//! A Redis database as the server uses it: one shared connection, made when first needed.

use super::error::WebError;
use crate::redis_util::RedisTarget;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A lazily (re)connected, multiplexed connection to one Redis database.
///
/// One connection serves every request: redis-rs pipelines concurrent commands over it, which is
/// what makes one round trip per request cheap. It is created on first use rather than at start
/// so that the server comes up (and `/healthz` can say what is wrong) while Redis is down.
#[derive(Clone)]
pub struct Db {
    target: RedisTarget,
    db: i64,
    /// Shared by the clones, which background tasks take.
    mgr: Arc<RwLock<Option<ConnectionManager>>>,
}

impl Db {
    pub fn new(target: &RedisTarget, db: i64) -> Db {
        Db {
            target: target.clone(),
            db,
            mgr: Arc::new(RwLock::new(None)),
        }
    }

    /// A client of the master now: with Sentinels, asked of them at each call, so that a new
    /// connection (the stream hub's subscription, the shared one after [`Db::reset`]) follows
    /// a failover.
    pub async fn client(&self) -> Result<redis::Client, redis::RedisError> {
        self.target.client_async(self.db).await
    }

    /// Forgets the shared connection, so the next request makes a new one. After Redis was
    /// away, the old one could keep failing for minutes (its reconnection backing off) while
    /// Redis answered again.
    pub fn reset(&self) {
        if let Ok(mut g) = self.mgr.write() {
            *g = None;
        }
    }

    /// The shared connection, connecting first if needed.
    pub async fn conn(&self) -> Result<ConnectionManager, WebError> {
        if let Ok(g) = self.mgr.read() {
            if let Some(m) = g.as_ref() {
                return Ok(m.clone());
            }
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(10))
            .set_number_of_retries(2);
        let unavailable =
            |e| WebError::Unavailable(format!("Redis at {} db {}: {e}", self.target, self.db));
        let client = self.client().await.map_err(unavailable)?;
        let m = tokio::time::timeout(
            Duration::from_secs(3),
            ConnectionManager::new_with_config(client, cfg),
        )
        .await
        .map_err(|_| {
            WebError::Unavailable(format!("Redis at {} db {} timed out", self.target, self.db))
        })?
        .map_err(unavailable)?;
        if let Ok(mut g) = self.mgr.write() {
            if g.is_none() {
                *g = Some(m.clone());
            }
        }
        Ok(m)
    }
}
