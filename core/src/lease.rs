//! One dispatcher per keyspace: the dispatcher lease.
//!
//! Two dispatchers on one buffer count twice: the second one's start-up recovery re-applies
//! the first one's batch in flight, and acknowledgements remove messages by position. So a
//! dispatcher works only while it holds a lease in Redis (`MISPDASH_DISPATCHER_LEASE` in the
//! list database: its identity, with an expiry it renews), and every transaction it sends is
//! fenced by it: the lease key is `WATCH`ed right after it was confirmed ours, so should the
//! lease have passed to another dispatcher meanwhile (this one paused, or cut off from Redis
//! longer than the expiry), Redis refuses the transaction as a whole. A second dispatcher waits
//! as a hot standby, registered in `MISPDASH_DISPATCHER_STANDBY` so `/status` and `selftest`
//! can name it, and takes over within the expiry when the first dies, at once when it stops.

use crate::redis_util::{sleep_unless, Reconnecting, RedisTarget};
use redis::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The lease key, in the list database.
pub const LEASE_KEY: &str = "MISPDASH_DISPATCHER_LEASE";
/// Standby dispatchers: identity -> epoch when last seen waiting.
pub const STANDBY_KEY: &str = "MISPDASH_DISPATCHER_STANDBY";
/// How long a lease lasts without renewal: how long a standby waits after a `kill -9`.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the holder renews it, from a thread of its own, so that handling one long
/// message never lets it lapse.
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often a standby tries to take the lease.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Takes the lease when free, renews it when ours: 2 taken, 1 renewed, 0 held by another.
const ACQUIRE_LUA: &str = "local v = redis.call('GET', KEYS[1]) \
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end \
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end \
return 0";

/// Renews the lease only if it is ours (never takes a free one).
const RENEW_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

/// Deletes the lease only if it is ours.
const RELEASE_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
return redis.call('DEL', KEYS[1]) end return 0";

/// Message of the error a fenced operation returns when the lease is not (or no longer) ours.
pub const LOST: &str = "the dispatcher lease is held by another dispatcher";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Taken,
    Renewed,
    HeldByOther,
}

/// This dispatcher's side of the lease.
pub struct Lease {
    identity: String,
    /// Held from a fence to the end of its transaction; the renewing thread takes it too, so
    /// its renewal never falls between our `WATCH` and `EXEC` (it would abort our own
    /// transaction).
    gate: Arc<Mutex<()>>,
    keeper: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// The machine's name (from `uname`, which the service's sandbox leaves readable where
/// `/proc/sys` is hidden).
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0)?;
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (ok && !name.is_empty()).then_some(name)
}

impl Lease {
    /// A lease identity unique to this process run, readable by an admin: host, pid, start.
    pub fn new() -> Lease {
        let host = hostname().unwrap_or_else(|| "localhost".into());
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Lease {
            identity: format!("{host} pid {} started {started}", std::process::id()),
            gate: Arc::new(Mutex::new(())),
            keeper: None,
        }
    }

    /// Starts the thread that renews the lease while it is ours, on a connection of its own.
    pub fn keep(&mut self, target: RedisTarget, list_db: i64) {
        if self.keeper.is_some() {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (gate, identity, stop_keeper) =
            (self.gate.clone(), self.identity.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("dispatch-lease".into())
            .spawn(move || {
                let stopped = || stop_keeper.load(Ordering::Relaxed);
                let mut conn = Reconnecting::new(target, list_db, "dispatcher lease");
                while !stopped() {
                    sleep_unless(RENEW_EVERY, &stopped);
                    let _held = gate.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(c) = conn.get(&stopped) else {
                        break;
                    };
                    let renewed: redis::RedisResult<i64> =
                        lease_script(RENEW_LUA, &identity).query(c);
                    if let Err(e) = renewed {
                        conn.reset(&e);
                    }
                }
            });
        match spawned {
            Ok(h) => self.keeper = Some((stop, h)),
            // The dispatcher still renews at every fence; only a message that takes longer
            // than the lease to handle would then lose it (and be retried).
            Err(e) => tracing::warn!("no thread to renew the dispatcher lease: {e}"),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Takes or renews the lease.
    pub fn claim(&self, conn: &mut Connection) -> redis::RedisResult<Claim> {
        let r: i64 = lease_script(ACQUIRE_LUA, &self.identity).query(conn)?;
        Ok(match r {
            2 => Claim::Taken,
            1 => Claim::Renewed,
            _ => Claim::HeldByOther,
        })
    }

    /// Renews the lease and watches it, so that the next `EXEC` on this connection runs only
    /// if nothing touched the lease in between; an error with [`LOST`] if it is not ours.
    /// Keep the guard until the transaction's reply is read.
    pub fn fence(&self, conn: &mut Connection) -> redis::RedisResult<MutexGuard<'_, ()>> {
        let guard = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        // A watch left from an earlier fence whose transaction was never sent would already
        // be dirty (the renewal touches the key): start afresh.
        let (claim, ()): (i64, ()) = redis::pipe()
            .cmd("UNWATCH")
            .ignore()
            .add_command(lease_script(ACQUIRE_LUA, &self.identity))
            .cmd("WATCH")
            .arg(LEASE_KEY)
            .query(conn)?;
        if claim == 1 {
            return Ok(guard);
        }
        let _: redis::RedisResult<()> = redis::cmd("UNWATCH").query(conn);
        Err(lost())
    }

    /// Gives the lease up (a standby takes over at once).
    pub fn release(&self, conn: &mut Connection) -> redis::RedisResult<()> {
        redis::cmd("EVAL")
            .arg(RELEASE_LUA)
            .arg(1)
            .arg(LEASE_KEY)
            .arg(&self.identity)
            .query(conn)
    }

    /// Records this dispatcher as a standby now, or (`false`) removes it.
    pub fn mark_standby(&self, conn: &mut Connection, waiting: bool) -> redis::RedisResult<()> {
        match waiting {
            true => redis::cmd("HSET")
                .arg(STANDBY_KEY)
                .arg(&self.identity)
                .arg(wall_epoch())
                .query(conn),
            false => redis::cmd("HDEL")
                .arg(STANDBY_KEY)
                .arg(&self.identity)
                .query(conn),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((stop, h)) = self.keeper.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = h.join();
        }
    }
}

impl Default for Lease {
    fn default() -> Self {
        Lease::new()
    }
}

/// One of the lease scripts, run for `identity` with the lease's expiry.
fn lease_script(script: &str, identity: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script)
        .arg(1)
        .arg(LEASE_KEY)
        .arg(identity)
        .arg(LEASE_TTL.as_millis() as u64);
    cmd
}

/// The error of an operation refused because the lease is not ours.
pub fn lost() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::ClientError, "lease", LOST.to_string()))
}

/// Whether `e` means the lease is not ours: refused by [`Lease::fence`], or a fenced
/// transaction that Redis aborted because the lease changed.
pub fn is_lost(e: &redis::RedisError) -> bool {
    e.detail() == Some(LOST) || e.to_string().contains("transaction aborted")
}

/// A standby that has not said so for this long is gone (it says so every second).
pub const STANDBY_FRESH_SECS: i64 = 10;

/// The standbys of `STANDBY_KEY`'s contents (identity, last seen) that are still alive.
/// When the process of a lease identity started, in epoch seconds (the identity carries it in
/// milliseconds, which a person cannot read).
pub fn started_of(identity: &str) -> Option<f64> {
    let (_, ms) = identity.rsplit_once(" started ")?;
    ms.trim().parse::<u64>().ok().map(|ms| ms as f64 / 1000.0)
}

pub fn live_standbys(seen: Vec<(String, i64)>) -> Vec<String> {
    let now = wall_epoch();
    seen.into_iter()
        .filter(|(_, t)| now - t <= STANDBY_FRESH_SECS)
        .map(|(who, _)| who)
        .collect()
}

/// Wall-clock seconds, for the standbys' liveness marks (never the pinned test clock: these
/// say whether a process is alive, not when a MISP message happened).
pub fn wall_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
