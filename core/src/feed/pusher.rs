//! The Redis side of a feed: batches from the backlog onto the buffer list, and the health hash.
//!
//! A batch is pushed by a small Lua script that also records the batch's token in the feed's
//! health hash, and does nothing if that token is already recorded. The pusher retries the very
//! same batch, with the same token, until a push succeeds. So when a connection breaks after
//! Redis applied a push but before its reply arrived (the one case where the client cannot know),
//! the retry is a no-op instead of a duplicate: delivery is exactly-once as long as Redis keeps
//! its data (a Redis restarted without persistence has lost the first copy, and gets the batch
//! again, which is then the only copy).

use super::backlog::{Dest, Entry};
use super::{FeedOptions, FeedSpec, LogGate, Shared};
use crate::clock::Clock;
use crate::keys;
use crate::pyjson::float_repr;
use crate::redis_util::{backoff, is_connection_error, sleep_unless, Reconnecting, RedisTarget};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Read/write timeout on the Redis connection: without one a half-open connection would block
/// the pusher forever while the backlog fills. Generous, since one batch can be megabytes.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// KEYS: health hash, buffer list, dead-letter list, its byte counter. ARGV: the batch token
/// (kept in the hash's field `push_token`), the dead-letter bounds (entries, bytes), then runs
/// of `b`|`d` (which list), a count, and that many values in arrival order. Types are checked
/// before the first write, so a wrong-typed key fails the whole batch rather than half of it.
/// Dead letters are filed within their bounds as the dispatcher files them.
const PUSH_SCRIPT: &str = concat!(
    crate::dead_letter::dead_push_fn!(),
    r"
if redis.call('HGET', KEYS[1], 'push_token') == ARGV[1] then
  return 0
end
for _, k in ipairs({KEYS[2], KEYS[3]}) do
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' and t ~= 'list' then
    return redis.error_reply('WRONGTYPE ' .. k .. ' holds a ' .. t .. ', not a list')
  end
end
local max_n, max_b = tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
while i <= #ARGV do
  local last = i + 1 + tonumber(ARGV[i + 1])
  local j = i + 2
  if ARGV[i] == 'd' then
    for k = j, last do push_dead(KEYS[3], KEYS[4], ARGV[k], max_n, max_b) end
  else
    while j <= last do
      local e = math.min(j + 999, last)
      redis.call('LPUSH', KEYS[2], unpack(ARGV, j, e))
      j = e + 1
    end
  end
  i = last + 1
end
redis.call('HSET', KEYS[1], 'push_token', ARGV[1])
return 1
"
);

/// A batch taken from the backlog and not yet known to be in Redis.
struct Pending {
    token: String,
    entries: Vec<Entry>,
}

pub(crate) struct Pusher {
    name: String,
    endpoint: String,
    credentials: String,
    redis: Reconnecting,
    list_name: String,
    dead_name: String,
    dead_bytes_name: String,
    status_key: String,
    shared: Arc<Shared>,
    clock: Clock,
    opts: FeedOptions,
    script: redis::Script,
    /// Unique to this feed in this process run, so tokens never repeat across restarts.
    run_id: String,
    batch_seq: u64,
    pending: Option<Pending>,
    /// A push or status write failed and nothing has been pushed since.
    outage: bool,
    /// Consecutive command errors that reconnecting would not cure (e.g. WRONGTYPE, OOM).
    refusals: u32,
    refused_log: LogGate,
    /// Batches that `WAIT` did not see on enough replicas.
    unreplicated_log: LogGate,
}

impl Pusher {
    pub fn new(
        spec: &FeedSpec,
        redis: RedisTarget,
        list_db: i64,
        list_name: String,
        shared: Arc<Shared>,
        clock: Clock,
        opts: FeedOptions,
    ) -> Self {
        static FEEDS: AtomicU64 = AtomicU64::new(0);
        // `Reconnecting` names its user in every log line and wants a `&'static str`; one
        // small string per feed started is a bounded leak worth a log that says which feed.
        let who: &'static str = Box::leak(format!("feed {:?}", spec.name).into_boxed_str());
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Pusher {
            name: spec.name.clone(),
            endpoint: spec.endpoint.clone(),
            credentials: super::credentials_id(spec.username.as_deref(), spec.password.as_deref()),
            redis: Reconnecting::new(redis, list_db, who),
            dead_name: keys::dead_letter_list(&list_name),
            dead_bytes_name: keys::dead_letter_bytes(&list_name),
            status_key: keys::feed_status(&spec.name),
            list_name,
            shared,
            clock,
            opts,
            script: redis::Script::new(PUSH_SCRIPT),
            run_id: format!(
                "{}-{:x}-{}",
                std::process::id(),
                started,
                FEEDS.fetch_add(1, Ordering::Relaxed)
            ),
            batch_seq: 0,
            pending: None,
            outage: false,
            refusals: 0,
            refused_log: LogGate::new(Duration::from_secs(10)),
            unreplicated_log: LogGate::new(Duration::from_secs(10)),
        }
    }

    pub fn run(mut self) {
        self.load_spool();
        let shared = self.shared.clone();
        let stop = move || shared.stopped();
        let mut next_status = Instant::now();
        while !stop() {
            if self.pending.is_none() {
                let wait = next_status
                    .saturating_duration_since(Instant::now())
                    .min(self.opts.poll_interval);
                self.shared.wait_for_entries(wait);
            }
            if self.pending.is_some() || self.shared.has_waiting() {
                self.push_once(&stop);
            }
            if Instant::now() >= next_status {
                self.write_status(&stop);
                next_status = Instant::now() + self.opts.status_interval;
            }
        }
        self.finish();
    }

    /// After a stop: waits for the receiver's last frames, then makes one more attempt (a single
    /// reconnect at most) to push everything still in memory, and says how much is lost if not.
    fn finish(&mut self) {
        while !self.shared.receiver_done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let tried = Cell::new(false);
        let once = || tried.replace(true);
        while self.pending.is_some() || self.shared.has_waiting() {
            if !self.push_once(&once) {
                break;
            }
        }
        let left = self.shared.queued();
        if left > 0 && self.opts.spool_dir.is_some() {
            match self.write_spool() {
                Ok((n, path)) => {
                    tracing::warn!(
                        "feed {:?}: Redis at {} could not take {n} frame(s) before the stop; \
                         they are kept in {} and pushed at the next start",
                        self.name,
                        self.redis.target(),
                        path.display()
                    );
                    self.sign_off();
                    return;
                }
                Err(e) => tracing::error!("feed {:?}: cannot write the spool: {e}", self.name),
            }
        }
        let left = self.shared.queued();
        if left > 0 {
            tracing::error!(
                "feed {:?}: stopping with {} frame(s) that could not be pushed to Redis at {}: \
                 they are lost",
                self.name,
                left,
                self.redis.target()
            );
        }
        self.sign_off();
    }

    /// The last health write of a run, and its name off the feed's writers: `selftest` right
    /// after a restart must not count a stopped run as a second subscriber of the feed.
    fn sign_off(&mut self) {
        self.write_status(&|| true);
        let once = Cell::new(false);
        if let Some(conn) = self.redis.get(&|| once.replace(true)) {
            let _ = redis::cmd("HDEL")
                .arg(keys::feed_writers(&self.name))
                .arg(&self.run_id)
                .query::<()>(conn);
        }
    }

    fn spool_path(&self) -> Option<std::path::PathBuf> {
        let dir = self.opts.spool_dir.as_ref()?;
        // The feed's name comes from the configuration: keep it to a safe file name.
        let safe: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Some(dir.join(format!("{safe}.spool.jsonl")))
    }

    /// Writes the pending batch (with its token, so a batch that did reach Redis is not pushed
    /// twice) and everything queued to the spool file, appending to what an earlier stop left.
    fn write_spool(&mut self) -> std::io::Result<(usize, std::path::PathBuf)> {
        use std::io::Write;
        let Some(path) = self.spool_path() else {
            return Err(std::io::Error::other("no spool directory"));
        };
        // MISP's messages are as private as the statistics: the spool directory is 0700 and
        // its files 0600, whatever the process umask.
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut batches: Vec<(Option<String>, Vec<Entry>)> = Vec::new();
        if let Some(p) = self.pending.take() {
            batches.push((Some(p.token), p.entries));
        }
        batches.push((None, self.shared.take_all()));
        let mut out = std::io::BufWriter::new(
            std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new().create(true).append(true),
                0o600,
            )
            .open(&path)?,
        );
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let mut n = 0;
        for (token, entries) in batches.into_iter().filter(|(_, e)| !e.is_empty()) {
            n += entries.len();
            let line = serde_json::json!({
                "token": token,
                "entries": entries
                    .iter()
                    .map(|e| serde_json::json!({
                        "dead": e.dest == Dest::DeadLetter,
                        "value": e.value,
                    }))
                    .collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        out.get_ref().sync_all()?;
        Ok((n, path))
    }

    /// Queues what the spool holds ahead of any new frame, then removes the file.
    fn load_spool(&mut self) {
        let Some(path) = self.spool_path() else {
            return;
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::error!("feed {:?}: cannot read {}: {e}", self.name, path.display());
                return;
            }
        };
        let mut n = 0;
        let mut queued = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                tracing::error!(
                    "feed {:?}: {} holds a line that is not JSON: skipped",
                    self.name,
                    path.display()
                );
                continue;
            };
            let entries: Vec<Entry> = v["entries"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| {
                            Some(Entry {
                                dest: if e["dead"].as_bool() == Some(true) {
                                    Dest::DeadLetter
                                } else {
                                    Dest::Buffer
                                },
                                value: e["value"].as_str()?.to_string(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            n += entries.len();
            match v["token"].as_str() {
                Some(token) if self.pending.is_none() => {
                    self.pending = Some(Pending {
                        token: token.to_string(),
                        entries,
                    })
                }
                _ => queued.extend(entries),
            }
        }
        self.shared.enqueue_front(queued);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::error!(
                "feed {:?}: cannot remove {}: {e}",
                self.name,
                path.display()
            );
        }
        tracing::info!(
            "feed {:?}: {n} frame(s) kept in {} at the last stop are pushed first",
            self.name,
            path.display()
        );
    }

    /// Pushes the pending batch, or a new one from the backlog. Returns false when nothing could
    /// be pushed (no connection, or an error: the batch stays pending for the next attempt).
    fn push_once(&mut self, stop: &dyn Fn() -> bool) -> bool {
        // Connect before taking a batch: while Redis is down frames stay in the backlog, where
        // its bound applies.
        let Some(conn) = self.redis.get(stop) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
        let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
        if self.pending.is_none() {
            let entries = self.shared.take_batch(&self.opts);
            if entries.is_empty() {
                return true;
            }
            self.batch_seq += 1;
            self.pending = Some(Pending {
                token: format!("{}:{}", self.run_id, self.batch_seq),
                entries,
            });
        }
        let Some(p) = self.pending.as_ref() else {
            return true;
        };
        let keys = [
            &self.status_key,
            &self.list_name,
            &self.dead_name,
            &self.dead_bytes_name,
        ];
        let sent = send(conn, &self.script, keys, &p.token, &p.entries)
            .and_then(|applied| Ok((applied, replicated(conn, self.opts.wait)?)));
        match sent {
            Ok((_, Some(acked))) => {
                if let Some(n) = self.unreplicated_log.hit() {
                    tracing::warn!(
                        "feed {:?}: a batch reached the master but only {acked} of the {} \
                         replica(s) of [RedisGlobal] wait_replicas within {} ms ({n} time(s)); \
                         keeping it and pushing it again",
                        self.name,
                        self.opts.wait.map_or(0, |w| w.0),
                        self.opts.wait.map_or(0, |w| w.1.as_millis())
                    );
                }
                self.shared
                    .stats
                    .push_failures_retried
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
            Ok((applied, None)) => {
                let dead = p
                    .entries
                    .iter()
                    .filter(|e| e.dest == Dest::DeadLetter)
                    .count() as u64;
                let n = p.entries.len();
                if !applied {
                    tracing::info!(
                        "feed {:?}: a batch of {} frame(s) had reached Redis before the \
                         connection broke; not pushing it twice",
                        self.name,
                        n
                    );
                }
                let stats = &self.shared.stats;
                stats.pushed.fetch_add(n as u64 - dead, Ordering::Relaxed);
                stats.dead_lettered.fetch_add(dead, Ordering::Relaxed);
                self.pending = None;
                self.shared.confirm();
                self.refusals = 0;
                self.refused_log.reset();
                if self.outage {
                    self.outage = false;
                    let kept = self.shared.queued() + if applied { n } else { 0 };
                    tracing::info!(
                        "feed {:?}: Redis is back; pushing the {} frame(s) kept in memory",
                        self.name,
                        kept
                    );
                }
                true
            }
            Err(e) => {
                self.shared
                    .stats
                    .push_failures_retried
                    .fetch_add(1, Ordering::Relaxed);
                self.on_error(&e, stop);
                false
            }
        }
    }

    /// A connection error drops the connection (the next `get` reconnects with back-off); any
    /// other error (the list has the wrong type, Redis is out of memory, …) is not cured by
    /// reconnecting, so the pusher waits with back-off and retries the same frames.
    fn on_error(&mut self, e: &redis::RedisError, stop: &dyn Fn() -> bool) {
        if !self.outage {
            self.outage = true;
            tracing::warn!(
                "feed {:?}: cannot write to Redis ({}); frames are kept in memory (at most {} \
                 frames / {} MiB) until it works again",
                self.name,
                e,
                self.opts.max_backlog_frames,
                self.opts.max_backlog_bytes >> 20
            );
        }
        if is_connection_error(e) {
            self.redis.reset(e);
        } else {
            self.refusals = self.refusals.saturating_add(1);
            if let Some(n) = self.refused_log.hit() {
                tracing::error!(
                    "feed {:?}: Redis refused a write to {:?} ({} time(s)): {}; retrying",
                    self.name,
                    self.list_name,
                    n,
                    e
                );
            }
            sleep_unless(backoff(self.refusals), stop);
        }
    }

    /// Writes the health hash (fields listed in the module documentation of `feed`).
    fn write_status(&mut self, stop: &dyn Fn() -> bool) {
        // Connect first: `get` may wait out an outage, and the values must be those of now.
        let Some(conn) = self.redis.get(stop) else {
            return;
        };
        let s = self.shared.stats.snapshot();
        let queued = self.shared.queued();
        let epoch = |e: Option<f64>| float_repr(e.unwrap_or(0.0));
        let now = self.clock.now_f64();
        let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
        let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
        let fields: [(&str, String); 19] = [
            ("endpoint", self.endpoint.clone()),
            ("credentials", self.credentials.clone()),
            ("connected", if s.connected { "1" } else { "0" }.to_string()),
            ("messages", s.messages.to_string()),
            ("last_message", epoch(s.last_message_epoch)),
            ("last_keepalive", epoch(s.last_keepalive_epoch)),
            ("non_utf8", s.non_utf8.to_string()),
            ("multipart", s.multipart_parts.to_string()),
            ("queued", queued.to_string()),
            ("updated", float_repr(now)),
            ("bytes", s.bytes.to_string()),
            ("pushed", s.pushed.to_string()),
            ("dead_lettered", s.dead_lettered.to_string()),
            ("dropped", s.dropped.to_string()),
            ("auth_failures", s.auth_failures.to_string()),
            ("handshake_failures", s.handshake_failures.to_string()),
            ("connects", s.connects.to_string()),
            ("disconnects", s.disconnects.to_string()),
            ("disconnected_since", epoch(s.disconnected_since)),
        ];
        let mut pipe = redis::pipe();
        let cmd = pipe.cmd("HSET").arg(&self.status_key);
        for (k, v) in &fields {
            cmd.arg(*k).arg(v);
        }
        // Every subscriber of this feed name says it is alive, so `selftest` can tell two of
        // them apart (each frame would then be pushed twice).
        let writers = keys::feed_writers(&self.name);
        pipe.cmd("HSET")
            .arg(&writers)
            .arg(&self.run_id)
            .arg(float_repr(now))
            .cmd("EXPIRE")
            .arg(&writers)
            .arg(60);
        if let Err(e) = pipe.query::<()>(conn) {
            if is_connection_error(&e) {
                if !self.outage && self.shared.queued() > 0 {
                    self.outage = true;
                }
                self.redis.reset(&e);
            } else if let Some(n) = self.refused_log.hit() {
                tracing::warn!(
                    "feed {:?}: cannot write the health hash {:?} ({} time(s)): {}",
                    self.name,
                    self.status_key,
                    n,
                    e
                );
            }
        }
    }
}

/// `WAIT`s for the replicas `wait` asks for; `Some(acknowledged)` when fewer had the writes
/// within its timeout.
fn replicated(
    conn: &mut redis::Connection,
    wait: Option<(u32, Duration)>,
) -> redis::RedisResult<Option<i64>> {
    let Some((replicas, timeout)) = wait else {
        return Ok(None);
    };
    let acked: i64 = redis::cmd("WAIT")
        .arg(replicas)
        .arg(timeout.as_millis() as u64)
        .query(conn)?;
    Ok((acked < i64::from(replicas)).then_some(acked))
}

/// `LPUSH`es a batch in arrival order, so the earliest frame ends deepest and `RPOP` yields
/// FIFO, through [`PUSH_SCRIPT`]. Returns whether it was applied now (false: the same token had
/// already been applied).
fn send(
    conn: &mut redis::Connection,
    script: &redis::Script,
    [status, list, dead, dead_bytes]: [&String; 4],
    token: &str,
    batch: &[Entry],
) -> redis::RedisResult<bool> {
    let mut inv = script.prepare_invoke();
    inv.key(status).key(list).key(dead).key(dead_bytes);
    inv.arg(token)
        .arg(crate::dead_letter::DEAD_LETTER_KEEP)
        .arg(crate::dead_letter::DEAD_LETTER_MAX_BYTES);
    let mut i = 0;
    while i < batch.len() {
        let dest = batch[i].dest;
        let run = batch[i..].iter().take_while(|e| e.dest == dest).count();
        inv.arg(match dest {
            Dest::Buffer => "b",
            Dest::DeadLetter => "d",
        })
        .arg(run);
        for e in &batch[i..i + run] {
            inv.arg(&e.value);
        }
        i += run;
    }
    let applied: i64 = inv.invoke(conn)?;
    Ok(applied == 1)
}
