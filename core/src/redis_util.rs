//! Redis connections that come back by themselves.
//!
//! Every long-running part (subscriber, dispatcher) holds its connection through
//! [`Reconnecting`]: on any I/O error the caller drops the connection and asks again, and the
//! next [`Reconnecting::get`] waits with exponential back-off (capped) while logging one clear
//! line per attempt, instead of crashing as the original's dispatcher does.

use crate::config::{RedisConfig, SentinelConfig};
use std::time::Duration;

/// Where a Redis server is and how to log in: one address, or the master that Redis Sentinels
/// name (asked again at every new connection, so that a reconnection follows a failover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    pub sentinel: Option<SentinelConfig>,
}

/// How long asking the Sentinels for the master may take, in all.
const SENTINEL_DEADLINE: Duration = Duration::from_secs(3);

impl RedisTarget {
    pub fn from_config(c: &RedisConfig) -> Self {
        RedisTarget {
            host: c.host.clone(),
            port: c.port,
            password: c.password.clone(),
            sentinel: c.sentinel.clone(),
        }
    }

    /// One server at `host:port`.
    pub fn direct(host: impl Into<String>, port: u16, password: Option<String>) -> Self {
        RedisTarget {
            host: host.into(),
            port,
            password,
            sentinel: None,
        }
    }

    fn redis_info(&self, db: i64) -> redis::RedisConnectionInfo {
        redis::RedisConnectionInfo {
            db,
            username: None,
            password: self.password.clone(),
            ..Default::default()
        }
    }

    /// Connection info for database `db` at `host:port` (not asking any Sentinel).
    pub fn info(&self, db: i64) -> redis::ConnectionInfo {
        redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(self.host.clone(), self.port),
            redis: self.redis_info(db),
        }
    }

    /// The Sentinels' own connection infos, and what to log in to the data nodes with.
    fn sentinels(
        &self,
        s: &SentinelConfig,
        db: i64,
    ) -> redis::RedisResult<(
        redis::sentinel::Sentinel,
        redis::sentinel::SentinelNodeConnectionInfo,
    )> {
        let nodes = s
            .nodes
            .iter()
            .map(|(host, port)| redis::ConnectionInfo {
                addr: redis::ConnectionAddr::Tcp(host.clone(), *port),
                redis: redis::RedisConnectionInfo {
                    password: s.password.clone(),
                    ..Default::default()
                },
            })
            .collect();
        let node = redis::sentinel::SentinelNodeConnectionInfo {
            tls_mode: None,
            redis_connection_info: Some(self.redis_info(db)),
        };
        Ok((redis::sentinel::Sentinel::build(nodes)?, node))
    }

    /// A client of database `db` on the master: `host:port`, or the one the Sentinels name
    /// now (checked with `ROLE` by redis-rs). Blocking; the Sentinels are asked in turn, and a
    /// Sentinel that does not refuse a connection at once holds this up for the system's
    /// connect timeout (the async [`RedisTarget::client_async`] has a deadline).
    pub fn client(&self, db: i64) -> redis::RedisResult<redis::Client> {
        match &self.sentinel {
            None => redis::Client::open(self.info(db)),
            Some(s) => {
                let (mut sentinel, node) = self.sentinels(s, db)?;
                sentinel.master_for(&s.master, Some(&node))
            }
        }
    }

    /// [`RedisTarget::client`] for async callers, within 3 s.
    pub async fn client_async(&self, db: i64) -> redis::RedisResult<redis::Client> {
        match &self.sentinel {
            None => redis::Client::open(self.info(db)),
            Some(s) => {
                let (mut sentinel, node) = self.sentinels(s, db)?;
                tokio::time::timeout(
                    SENTINEL_DEADLINE,
                    sentinel.async_master_for(&s.master, Some(&node)),
                )
                .await
                .map_err(|_| {
                    redis::RedisError::from((
                        redis::ErrorKind::IoError,
                        "the Sentinels did not name a master in time",
                    ))
                })?
            }
        }
    }

    /// One attempt, with a short connect timeout so a dead address is noticed quickly.
    pub fn connect(&self, db: i64) -> redis::RedisResult<redis::Connection> {
        let client = self.client(db)?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(3))?;
        Ok(conn)
    }
}

impl std::fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sentinel {
            None => write!(f, "{}:{}", self.host, self.port),
            Some(s) => {
                write!(f, "master {:?} of Sentinels ", s.master)?;
                for (i, (host, port)) in s.nodes.iter().enumerate() {
                    write!(f, "{}{host}:{port}", if i == 0 { "" } else { "," })?;
                }
                Ok(())
            }
        }
    }
}

/// A connection to one database that is re-established with back-off after failures.
pub struct Reconnecting {
    target: RedisTarget,
    db: i64,
    who: &'static str,
    conn: Option<redis::Connection>,
    failures: u32,
}

impl Reconnecting {
    pub fn new(target: RedisTarget, db: i64, who: &'static str) -> Self {
        Reconnecting {
            target,
            db,
            who,
            conn: None,
            failures: 0,
        }
    }

    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// The connection, connecting (and waiting with back-off between attempts) as needed.
    /// Returns `None` only when `stop()` says to give up.
    pub fn get(&mut self, stop: &dyn Fn() -> bool) -> Option<&mut redis::Connection> {
        while self.conn.is_none() {
            if stop() {
                return None;
            }
            match self.target.connect(self.db) {
                Ok(c) => {
                    if self.failures > 0 {
                        tracing::info!(
                            "{}: Redis at {} db {} is reachable again",
                            self.who,
                            self.target,
                            self.db
                        );
                    }
                    self.failures = 0;
                    self.conn = Some(c);
                }
                Err(e) => {
                    self.failures += 1;
                    let wait = backoff(self.failures);
                    tracing::warn!(
                        "{}: cannot reach Redis at {} db {} ({}); retrying in {:.1}s",
                        self.who,
                        self.target,
                        self.db,
                        describe(&e),
                        wait.as_secs_f64()
                    );
                    sleep_unless(wait, stop);
                }
            }
        }
        self.conn.as_mut()
    }

    /// Drops the connection after an error so the next `get` reconnects.
    pub fn reset(&mut self, err: &redis::RedisError) {
        tracing::warn!(
            "{}: Redis connection to {} lost: {}",
            self.who,
            self.target,
            describe(err)
        );
        self.conn = None;
    }
}

/// An error as an admin reads it: redis-rs's words for the Sentinels' answers name its own
/// error kinds rather than what happens.
pub fn describe(e: &redis::RedisError) -> String {
    match e.kind() {
        redis::ErrorKind::MasterNameNotFoundBySentinel => format!(
            "no Sentinel names a master that answers as one: a failover in progress (it takes \
             the Sentinels' down-after-milliseconds and a few seconds), all data nodes down, or \
             a sentinel_master the Sentinels do not watch; redis-rs: {e}"
        ),
        redis::ErrorKind::ReadOnly => {
            format!("the server is now a replica (after a failover?): {e}")
        }
        _ => e.to_string(),
    }
}

/// 100 ms doubling up to 5 s.
pub fn backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << failures.min(6).saturating_sub(1));
    Duration::from_millis(ms.min(5_000))
}

/// Sleeps `d` in short steps, returning early when `stop()` turns true.
pub fn sleep_unless(d: Duration, stop: &dyn Fn() -> bool) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !stop() {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}

/// Whether an error means the connection is unusable (as opposed to a command error such as
/// WRONGTYPE, which reconnecting would not cure).
pub fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            redis::ErrorKind::BusyLoadingError
                | redis::ErrorKind::TryAgain
                // A master turned replica by a failover, or one that lost its master: another
                // connection (to the master the Sentinels name) cures these.
                | redis::ErrorKind::ReadOnly
                | redis::ErrorKind::MasterDown
                | redis::ErrorKind::MasterNameNotFoundBySentinel
                | redis::ErrorKind::NoValidReplicasFoundBySentinel
                | redis::ErrorKind::EmptySentinelList
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_and_replica_errors_say_what_happens() {
        let e = redis::RedisError::from((redis::ErrorKind::MasterNameNotFoundBySentinel, "x"));
        let text = describe(&e);
        assert!(text.contains("failover in progress"), "{text}");
        assert!(text.contains("sentinel_master"), "{text}");
        let e = redis::RedisError::from((redis::ErrorKind::ReadOnly, "READONLY"));
        assert!(describe(&e).contains("now a replica"));
        assert!(
            is_connection_error(&e),
            "a master turned replica: connect again"
        );
        let e = redis::RedisError::from((redis::ErrorKind::TypeError, "WRONGTYPE"));
        assert!(!is_connection_error(&e));
        assert_eq!(describe(&e), e.to_string());
    }

    #[test]
    fn a_sentinel_target_names_its_master_and_sentinels() {
        let t = RedisTarget {
            sentinel: Some(SentinelConfig {
                nodes: vec![("10.0.0.1".into(), 26379), ("10.0.0.2".into(), 26380)],
                master: "dash".into(),
                password: None,
            }),
            ..RedisTarget::direct("localhost", 6250, None)
        };
        assert_eq!(
            t.to_string(),
            "master \"dash\" of Sentinels 10.0.0.1:26379,10.0.0.2:26380"
        );
        assert_eq!(RedisTarget::direct("h", 1, None).to_string(), "h:1");
    }
}
