//! Redis connections that come back by themselves.
//!
//! Every long-running part (subscriber, dispatcher) holds its connection through
//! [`Reconnecting`]: on any I/O error the caller drops the connection and asks again, and the
//! next [`Reconnecting::get`] waits with exponential back-off (capped) while logging one clear
//! line per attempt, instead of crashing as the original's dispatcher does.

use crate::config::RedisConfig;
use std::time::Duration;

/// Where a Redis server is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
}

impl RedisTarget {
    pub fn from_config(c: &RedisConfig) -> Self {
        RedisTarget {
            host: c.host.clone(),
            port: c.port,
            password: c.password.clone(),
        }
    }

    /// Connection info for database `db`.
    pub fn info(&self, db: i64) -> redis::ConnectionInfo {
        redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(self.host.clone(), self.port),
            redis: redis::RedisConnectionInfo {
                db,
                username: None,
                password: self.password.clone(),
                ..Default::default()
            },
        }
    }

    pub fn client(&self, db: i64) -> redis::RedisResult<redis::Client> {
        redis::Client::open(self.info(db))
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
        write!(f, "{}:{}", self.host, self.port)
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
                        e,
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
            err
        );
        self.conn = None;
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
            redis::ErrorKind::BusyLoadingError | redis::ErrorKind::TryAgain
        )
}
