//! The dispatcher: drains the buffer in FIFO order, lets the rules decide, and has the store
//! apply each batch together with its acknowledgement.
//!
//! Failure handling, in short: a connection error leaves the batch in the processing list (its
//! transaction either ran whole, acknowledgement included, or not at all), so the loop
//! reconnects and starts again from the processing list. A command error (a key of the wrong
//! type, say) is retried message by message, so one poisoned message is dead-lettered instead
//! of blocking the queue. A message that cannot be handled never stops the loop.

use crate::buffer::{cut, Buffer};
use crate::clock::Clock;
use crate::config::Config;
use crate::contrib::{Channels, Engine, Snapshot};
use crate::dead_letter::REASON_MAX_CHARS;
use crate::keys;
use crate::lease::{self, Claim, Lease};
use crate::message;
use crate::pyjson;
use crate::redis_util::{is_connection_error, sleep_unless, Reconnecting, RedisTarget};
use crate::rules::{self, Env, Outcome, Step};
use crate::store::ops::DbNumbers;
use crate::store::{Batch, Db, Op, Resp};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What a log line repeats of a message's own text, at most.
const LOG_MAX_CHARS: usize = 200;

/// Counters shown by `/status` and the benchmark.
#[derive(Debug, Default)]
pub struct DispatchStats {
    pub messages: AtomicU64,
    pub partial: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub batches: AtomicU64,
    pub redis_commands: AtomicU64,
    pub ops_before_coalescing: AtomicU64,
}

/// Tuning of the loop.
#[derive(Debug, Clone, Copy)]
pub struct DispatchOptions {
    /// Messages taken from the buffer at once. A batch's parsed messages and commands are the
    /// largest part of the drain's heap: 300 keeps a drain's peak RSS under 56 MiB with the
    /// binary's allocator, at 6.6 Redis commands per message of the bench mix (500: 6.4, but
    /// 2-3 MiB more; `bench/ingest.sh`, docs/performance.md).
    pub batch_size: usize,
    /// A transaction is committed once its commands hold about this many bytes, so one huge
    /// published event cannot make a batch unbounded in memory.
    pub max_batch_bytes: usize,
    /// Seconds to block on an empty buffer before looking at `stop` again.
    pub idle_wait: f64,
    /// Score contributions (the `CONTRIB_*` keys). Only the ingest benchmark turns it off, to
    /// measure what gamification costs.
    pub gamification: bool,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            batch_size: 300,
            max_batch_bytes: 4 << 20,
            idle_wait: 0.5,
            gamification: true,
        }
    }
}

pub struct Dispatcher {
    env: Arc<Env>,
    clock: Clock,
    buffer: Buffer,
    dbs: DbNumbers,
    db_version_key: String,
    conn: Reconnecting,
    opts: DispatchOptions,
    channels: Channels,
    /// Messages taken (by this run, or found by recovery) still in the processing list: not
    /// yet acknowledged. Up to two takes' worth while a batch is handled during a commit.
    in_processing: usize,
    /// The transaction being written, reused from batch to batch.
    resp: Resp,
    /// Only the holder of the lease dispatches (see [`lease`]).
    lease: Lease,
    holding: bool,
    target: RedisTarget,
    /// When each feed's backfill record was last trimmed (see [`Dispatcher::trim_records`]).
    records_trimmed: std::collections::HashMap<String, f64>,
    pub stats: Arc<DispatchStats>,
}

/// What happened to one message of a batch.
struct Handled {
    raw: Vec<u8>,
    steps: Vec<Step>,
    /// Set when the message (or part of it) could not be applied: the dead-letter entry.
    dead: Option<String>,
    bytes: usize,
    /// The frame's topic when it was handled, for the per-topic counters `selftest` reads.
    topic: Option<String>,
    /// A large message left for the committing thread, which handles it while it commits so
    /// its publications go out in pieces (see [`rules::Spill`]).
    deferred: bool,
    /// The digest under which attempts at this message are counted, cleared when it commits.
    attempt: Option<String>,
}

impl Handled {
    /// A message that could not be handled at all: only its dead letter is written.
    fn dead_only(raw: Vec<u8>, dead: String) -> Handled {
        Handled {
            bytes: raw.len() + dead.len(),
            dead: Some(dead),
            steps: Vec::new(),
            raw,
            topic: None,
            deferred: false,
            attempt: None,
        }
    }

    fn deferred(raw: Vec<u8>) -> Handled {
        Handled {
            bytes: raw.len(),
            dead: None,
            steps: Vec::new(),
            raw,
            topic: None,
            deferred: true,
            attempt: None,
        }
    }
}

/// The least the protocol buffer keeps between batches (see [`Resp::shrink_after`]): a batch
/// at 200 messages/s writes a few KiB; a full batch writes MiBs, but in [`RESP_PIECE`]s.
const RESP_FLOOR: usize = 256 << 10;

/// A transaction's protocol goes out in pieces of about this size
/// ([`Resp::exec_ops_streamed`]): big enough that a piece is one write of a full socket
/// buffer, small beside a full batch (4-5 MiB for 500 messages of the bench mix).
const RESP_PIECE: usize = 256 << 10;

/// The pause after each piece of a large message's publications when someone listens.
const SPILL_PAUSE: Duration = Duration::from_millis(20);

/// How often each backfill record is trimmed: its members are days apart at the old end, so
/// once an hour keeps it within an hour's worth of the bound for one command an hour.
const RECORD_TRIM_EVERY_SECS: f64 = 3600.0;

/// Sends a large message's publications as they are made, pipelined on the dispatcher's
/// connection; the first error is kept and fails the message's commit.
struct PipelineSpill<'c> {
    conn: &'c mut redis::Connection,
    resp: &'c mut Resp,
    error: Option<redis::RedisError>,
}

impl rules::Spill for PipelineSpill<'_> {
    fn spill(&mut self, publications: Vec<Op>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = publish_piece(self.conn, self.resp, &publications) {
            self.error = Some(e);
        }
    }
}

impl Dispatcher {
    pub fn new(cfg: &Config, env: Arc<Env>, clock: Clock, opts: DispatchOptions) -> Self {
        let target = RedisTarget::from_config(&cfg.redis);
        Dispatcher {
            env,
            clock,
            buffer: Buffer::new(&cfg.redis.list_name),
            dbs: DbNumbers {
                data: cfg.redis.data_db,
                list: cfg.redis.list_db,
            },
            db_version_key: cfg.redis.db_version_key.clone(),
            conn: Reconnecting::new(target.clone(), cfg.redis.list_db, "dispatcher"),
            opts,
            channels: Channels {
                last_contributor: cfg.redis.channel_last_contributor.clone(),
                last_awards: cfg.redis.channel_last_awards.clone(),
            },
            in_processing: 0,
            resp: Resp::default(),
            lease: Lease::new(),
            holding: false,
            target,
            records_trimmed: Default::default(),
            stats: Arc::new(DispatchStats::default()),
        }
    }

    /// Trims, at most once an hour each, the backfill records (`keys::backfill_record`) the
    /// batch added to: members older than a backfill asks for again are dropped. Every live
    /// publish and sighting is recorded, and only a backfill trimmed the record before, so on
    /// a feed that never backfills it grew for good.
    fn trim_records(&mut self, records: std::collections::BTreeSet<String>, batch: &mut Batch) {
        let now = self.clock.now_f64();
        for key in records {
            let due = self
                .records_trimmed
                .get(&key)
                .is_none_or(|at| now - at >= RECORD_TRIM_EVERY_SECS || now < *at);
            if due {
                batch.push(Op::ZRemBelow {
                    db: Db::Data,
                    key: key.clone(),
                    below: now.floor() as i64 - crate::backfill::RECORD_DAYS * 86_400,
                });
                self.records_trimmed.insert(key, now);
            }
        }
    }

    /// Runs until `stop` is set; returns after committing the batch in hand.
    ///
    /// Two batches are in flight: while one is committed (a Redis round trip, and Redis's own
    /// work on the other core), the next is already parsed and decided by a handler thread.
    /// Both stay in the processing list until their own transaction acknowledges them, so an
    /// error or a crash at any point leaves them to recovery, exactly as with one batch.
    pub fn run(&mut self, stop: &AtomicBool) {
        let stop_fn = || stop.load(Ordering::Relaxed);
        crate::geoip::warm_up_phone();
        let mut handler = Handler::spawn(self.env.clone(), self.clock, self.opts.max_batch_bytes);
        let mut need_recovery = true;
        let mut upgraded = false;
        let mut standby_said = false;
        // Handled but not yet committed.
        let mut ready: Option<Vec<Vec<Handled>>> = None;
        while !stop_fn() {
            let Some(conn) = self.conn.get(&stop_fn) else {
                break;
            };
            if !self.holding {
                self.lease.keep(self.target.clone(), self.dbs.list);
                match self.lease.claim(conn) {
                    Ok(Claim::Taken | Claim::Renewed) => {
                        tracing::info!(
                            "dispatcher: holding the dispatcher lease ({})",
                            self.lease.identity()
                        );
                        let _ = self.lease.mark_standby(conn, false);
                        if self.env.record_acl {
                            match load_event_facts(conn, self.dbs, &self.env) {
                                Ok(n) => tracing::info!(
                                    "access control: {n} event(s) described by earlier messages"
                                ),
                                Err(e) => tracing::warn!(
                                    "access control: cannot read what earlier messages said of \
                                     events ({e}); objects of events not seen again are for \
                                     site admins only"
                                ),
                            }
                        }
                        self.holding = true;
                        standby_said = false;
                        // What the previous holder left in the processing list is ours now.
                        need_recovery = true;
                        ready = None;
                    }
                    Ok(Claim::HeldByOther) => {
                        if !standby_said {
                            let holder: Option<String> = redis::cmd("GET")
                                .arg(lease::LEASE_KEY)
                                .query(conn)
                                .unwrap_or(None);
                            tracing::warn!(
                                "dispatcher: another dispatcher ({}) is active on this Redis; this \
                                 one waits as a hot standby and takes over within {} s if it dies, \
                                 at once if it stops",
                                holder.as_deref().unwrap_or("unknown"),
                                lease::LEASE_TTL.as_secs()
                            );
                            standby_said = true;
                        }
                        let _ = self.lease.mark_standby(conn, true);
                        sleep_unless(lease::STANDBY_POLL, &stop_fn);
                        continue;
                    }
                    Err(e) => {
                        self.on_error(&e);
                        continue;
                    }
                }
            }
            if !upgraded {
                match upgrade_db(conn, self.dbs, &self.db_version_key) {
                    Ok(()) => upgraded = true,
                    Err(e) => {
                        self.on_error(&e);
                        continue;
                    }
                }
            }
            let taken = if need_recovery {
                ready = None;
                self.buffer.recover(conn).inspect(|items| {
                    self.in_processing = items.len();
                    if !items.is_empty() {
                        tracing::info!(
                            "recovering {} message(s) left in {} by an interrupted run",
                            items.len(),
                            keys::processing_list(self.buffer.list_name())
                        );
                    }
                })
            } else {
                // Never block on an empty buffer while a handled batch waits to be committed.
                let wait = if ready.is_some() {
                    0.0
                } else {
                    self.opts.idle_wait
                };
                let fenced = self.lease.fence(conn);
                fenced
                    .and_then(|_watch| self.buffer.take(conn, self.opts.batch_size, wait))
                    .inspect(|items| self.in_processing += items.len())
            };
            let items = match taken {
                Ok(items) => items,
                Err(e) => {
                    self.on_error(&e);
                    ready = None;
                    need_recovery = true;
                    continue;
                }
            };
            let recovered = std::mem::replace(&mut need_recovery, false);
            let result = match (ready.take(), items.is_empty()) {
                (None, true) => Ok(()),
                (Some(prev), true) => self.commit_all(prev),
                // What an interrupted run left is committed before anything more is taken:
                // were it not, a process killed again and again would keep taking more than
                // it commits, and the processing list would only grow.
                (None, false) if recovered => self.commit_carefully(items),
                (None, false) => {
                    ready = Some(handler.handle_now(items));
                    Ok(())
                }
                (Some(prev), false) => {
                    handler.start(items);
                    let committed = self.commit_all(prev);
                    match handler.finish() {
                        Some(next) if committed.is_ok() => ready = Some(next),
                        Some(_) => {}
                        // The batch is still in the processing list: recovery brings it back.
                        None => need_recovery = true,
                    }
                    committed
                }
            };
            if let Err(e) = result {
                self.on_error(&e);
                ready = None;
                need_recovery = true;
            }
        }
        if let Some(prev) = ready {
            if let Err(e) = self.commit_all(prev) {
                tracing::warn!("dispatcher stopping; the last batch stays for recovery: {e}");
            }
        }
        let stop_now = || true;
        if let Some(conn) = self.conn.get(&stop_now) {
            let released = match self.holding {
                true => self.lease.release(conn),
                false => self.lease.mark_standby(conn, false),
            };
            if let Err(e) = released {
                tracing::warn!(
                    "dispatcher: could not give the lease up ({e}); it expires by itself"
                );
            }
        }
    }

    fn on_error(&mut self, e: &redis::RedisError) {
        if lease::is_lost(e) {
            tracing::warn!(
                "dispatcher: the dispatcher lease passed to another dispatcher; standing by"
            );
            self.holding = false;
        } else if is_connection_error(e) {
            self.conn.reset(e);
        } else {
            tracing::error!("dispatcher: Redis refused a command: {e}");
            sleep_unless(Duration::from_millis(500), &|| false);
        }
    }

    /// Commits handled messages (oldest first), one bounded transaction per chunk.
    fn commit_all(&mut self, chunks: Vec<Vec<Handled>>) -> redis::RedisResult<()> {
        for chunk in chunks {
            self.commit(chunk)?;
        }
        Ok(())
    }

    /// Handles one message in this thread; a large one publishes its live log while it is
    /// handled.
    fn handle(&mut self, raw: Vec<u8>) -> redis::RedisResult<Handled> {
        let stop_never = || false;
        let conn = match raw.len() > self.env.large_message_bytes {
            true => self.conn.get(&stop_never),
            false => None,
        };
        let Some(conn) = conn else {
            return Ok(handle_message(&self.env, &self.clock, raw, None));
        };
        let mut spill = PipelineSpill {
            conn,
            resp: &mut self.resp,
            error: None,
        };
        let handled = handle_message(&self.env, &self.clock, raw, Some(&mut spill));
        match spill.error {
            Some(e) => Err(e),
            None => Ok(handled),
        }
    }

    /// Applies handled messages and acknowledges them in one transaction; on a command error,
    /// retries them one at a time so only the faulty one is dead-lettered.
    fn commit(&mut self, mut handled: Vec<Handled>) -> redis::RedisResult<()> {
        for h in handled.iter_mut().filter(|h| h.deferred) {
            *h = self.handle(std::mem::take(&mut h.raw))?;
        }
        let n = handled.len();
        // Kept aside (not copied) for the one-by-one retry; applying does not read them.
        let raws: Vec<Vec<u8>> = handled
            .iter_mut()
            .map(|h| std::mem::take(&mut h.raw))
            .collect();
        let e = match self.apply(handled, true) {
            Ok(refused) if refused.is_empty() => return Ok(()),
            Ok(refused) => return self.dead_letter_refused(raws, refused),
            Err(e) if is_connection_error(&e) || lease::is_lost(&e) => return Err(e),
            Err(e) => e,
        };
        // A command error inside EXEC does not undo the others: if the acknowledgement went
        // through, the batch was applied (but the failing command) and must not be redone.
        if self.acknowledged(n)? {
            tracing::error!("Redis refused part of a batch of {n} message(s): {e}");
            return Ok(());
        }
        tracing::error!(
            "a batch of {n} message(s) was refused by Redis ({}); retrying one by one",
            cut(&e.to_string(), 300)
        );
        self.commit_carefully(raws)
    }

    /// Commits messages one at a time, each attempt counted in Redis (`MISPDASH_ATTEMPTS`, by
    /// the message's digest) *before* it is made, so the count survives a crash in the middle:
    /// a message that cannot be committed, or whose handling stops the process, is tried
    /// `[mispdash] max_attempts` times in all, across restarts, then set aside in the
    /// dead-letter list with the reason, and the messages behind it go on. Used for what a
    /// crash left in the processing list and for a batch that Redis refused.
    fn commit_carefully(&mut self, raws: Vec<Vec<u8>>) -> redis::RedisResult<()> {
        for raw in raws {
            let digest = attempt_digest(&raw);
            let mut last_error: Option<String> = None;
            loop {
                let attempts = self.count_attempt(&digest, 1)?;
                if attempts > i64::from(self.env.max_attempts) {
                    let reason = match &last_error {
                        Some(e) => format!(
                            "not committed in {} attempts; the last one: Redis refused its writes: {e}",
                            self.env.max_attempts
                        ),
                        None => format!(
                            "not committed in {} attempts: the dispatcher stopped or crashed while \
                             applying it each time (see its log)",
                            self.env.max_attempts
                        ),
                    };
                    tracing::error!("a message was set aside in the dead-letter list: {reason}");
                    let entry = dead_letter_entry(
                        &reason,
                        "none",
                        self.clock.now_f64(),
                        None,
                        ("entry", &String::from_utf8_lossy(&raw)),
                    );
                    let mut failed = Handled::dead_only(raw, entry);
                    failed.attempt = Some(digest);
                    self.apply(vec![failed], false)?;
                    break;
                }
                let mut h = self.handle(raw.clone())?;
                h.attempt = Some(digest.clone());
                match self.apply(vec![h], true) {
                    Ok(refused) if refused.is_empty() => break,
                    Ok(refused) => {
                        self.dead_letter_refused(vec![raw], refused)?;
                        break;
                    }
                    Err(e) if is_connection_error(&e) || lease::is_lost(&e) => return Err(e),
                    Err(e) if self.acknowledged(1)? => {
                        tracing::error!("Redis refused part of a message's writes: {e}");
                        self.clear_attempts(&digest)?;
                        break;
                    }
                    // Redis refuses every write (out of memory, read-only replica, failed
                    // save): not this message's fault, so it does not count against it.
                    Err(e) if refuses_everything(&e) => {
                        tracing::error!(
                            "Redis refuses writes ({}); retrying in a second",
                            cut(&e.to_string(), REASON_MAX_CHARS)
                        );
                        self.count_attempt(&digest, -1)?;
                        sleep_unless(Duration::from_secs(1), &|| false);
                    }
                    Err(e) => {
                        let e = cut(&e.to_string(), REASON_MAX_CHARS).into_owned();
                        tracing::warn!(
                            "attempt {attempts} of {} at committing a message failed: {e}",
                            self.env.max_attempts
                        );
                        last_error = Some(e);
                        sleep_unless(Duration::from_millis(200), &|| false);
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds `by` to the attempts counted at the message of `digest`; returns the count.
    fn count_attempt(&mut self, digest: &str, by: i64) -> redis::RedisResult<i64> {
        let stop_never = || false;
        let Some(conn) = self.conn.get(&stop_never) else {
            return Ok(0);
        };
        redis::cmd("HINCRBY")
            .arg(keys::ATTEMPTS)
            .arg(digest)
            .arg(by)
            .query(conn)
    }

    fn clear_attempts(&mut self, digest: &str) -> redis::RedisResult<()> {
        let stop_never = || false;
        let Some(conn) = self.conn.get(&stop_never) else {
            return Ok(());
        };
        redis::cmd("HDEL")
            .arg(keys::ATTEMPTS)
            .arg(digest)
            .query(conn)
    }

    /// Whether the last `n` messages' acknowledgement was applied although the transaction
    /// reported an error: the processing list then holds `n` fewer than before.
    fn acknowledged(&mut self, n: usize) -> redis::RedisResult<bool> {
        let stop_never = || false;
        let Some(conn) = self.conn.get(&stop_never) else {
            return Ok(false);
        };
        let len: usize = redis::cmd("LLEN")
            .arg(keys::processing_list(self.buffer.list_name()))
            .query(conn)?;
        if len + n == self.in_processing {
            self.in_processing = len;
            return Ok(true);
        }
        Ok(false)
    }

    /// Applies handled messages and their acknowledgement in one transaction; returns the
    /// writes Redis refused inside it (the rest ran).
    fn apply(
        &mut self,
        handled: Vec<Handled>,
        count_stats: bool,
    ) -> redis::RedisResult<Vec<Refused>> {
        // The gamification state the batch's contributions read, in one round trip.
        let mut orgs: Vec<String> = Vec::new();
        for h in &handled {
            for step in &h.steps {
                if let Step::Contribution(c) = step {
                    if !orgs.contains(&c.org) {
                        orgs.push(c.org.clone());
                    }
                }
            }
        }
        let mut snapshot = if orgs.is_empty() || !self.opts.gamification {
            None
        } else {
            let stop_never = || false;
            let Some(conn) = self.conn.get(&stop_never) else {
                return Ok(Vec::new());
            };
            Some(Snapshot::load(conn, self.dbs, &self.env.ranking, &orgs)?)
        };
        let engine = Engine::new(&self.env.ranking, self.env.scoring, &self.channels);

        let mut batch = Batch::new();
        let mut live_pushed = false;
        let mut rewind_added = false;
        let mut records = std::collections::BTreeSet::new();
        let mut dead = 0u64;
        let mut partial = 0u64;
        let n_handled = handled.len();
        let mut topics: std::collections::BTreeMap<String, i64> = Default::default();
        for h in handled {
            if let Some(t) = h.topic {
                *topics.entry(t).or_default() += 1;
            }
            let had_steps = !h.steps.is_empty();
            for step in h.steps {
                match step {
                    Step::Op(op) => {
                        rewind_added |= matches!(op, Op::RewindAdd { .. });
                        if let Op::ZAdd { key, .. } = &op {
                            if key.starts_with(keys::BACKFILL_RECORD_PREFIX)
                                && !records.contains(key)
                            {
                                records.insert(key.clone());
                            }
                        }
                        if let Op::LPush { key, .. } | Op::LPushLive { key, .. } = &op {
                            live_pushed |=
                                key == keys::LIVE_CACHE_LOG || key == keys::LIVE_CACHE_MAP;
                        }
                        batch.push(op);
                    }
                    Step::Contribution(c) => {
                        if let Some(snap) = snapshot.as_mut() {
                            let ops = engine.score(snap, &c);
                            batch.extend(
                                ops.into_iter()
                                    .filter(|op| !(c.quiet && matches!(op, Op::Publish { .. }))),
                            );
                        }
                    }
                }
            }
            if let Some(digest) = h.attempt {
                batch.push(Op::HDel {
                    db: Db::List,
                    key: keys::ATTEMPTS.into(),
                    field: digest,
                });
            }
            if let Some(d) = h.dead {
                batch.push(self.buffer.dead_letter(d));
                if !had_steps {
                    dead += 1;
                } else {
                    partial += 1;
                }
            }
        }
        if live_pushed {
            for key in [keys::LIVE_CACHE_LOG, keys::LIVE_CACHE_MAP] {
                batch.push(Op::LTrim {
                    db: Db::Data,
                    key: key.into(),
                    start: 0,
                    stop: keys::LIVE_CACHE_KEEP - 1,
                });
                batch.push(Op::TrimBytes {
                    db: Db::Data,
                    key: key.into(),
                    max_entries: keys::LIVE_CACHE_KEEP as usize,
                    max_bytes: self.env.live_cache_max_bytes,
                });
            }
            if self.env.record_acl {
                batch.push(Op::LTrim {
                    db: Db::Data,
                    key: keys::ACL_MAP.into(),
                    start: 0,
                    stop: keys::LIVE_CACHE_KEEP - 1,
                });
            }
        }
        self.trim_records(records, &mut batch);
        if rewind_added {
            // By the dispatcher's clock, as the entries' ids (`MISPDASH_FAKE_NOW` pins both).
            let keep_ms = u64::from(self.env.rewind.hours) * 3_600_000;
            let now_ms = (self.clock.now_f64() * 1000.0).floor().max(0.0) as u64;
            batch.push(Op::RewindTrim {
                db: Db::Data,
                key: keys::REWIND.into(),
                min_ms: now_ms.saturating_sub(keep_ms),
                max_bytes: self.env.rewind.max_bytes,
            });
        }
        let n = n_handled as u64;
        for (field, by) in [
            ("messages", n),
            ("dead_lettered", dead),
            ("partial", partial),
        ] {
            if by > 0 {
                batch.push(Op::HIncrBy {
                    db: Db::List,
                    key: keys::DISPATCH_STATUS.into(),
                    field: field.into(),
                    by: by as i64,
                });
            }
        }
        let day_key = (!topics.is_empty()).then(|| keys::topics_day(&self.clock.today()));
        for (topic, by) in topics {
            batch.push(Op::HIncrBy {
                db: Db::List,
                key: keys::DISPATCH_STATUS.into(),
                field: keys::dispatch_topic_field(&topic),
                by,
            });
            if let Some(key) = &day_key {
                batch.push(Op::HIncrBy {
                    db: Db::List,
                    key: key.clone(),
                    field: topic,
                    by,
                });
            }
        }
        if let Some(key) = day_key {
            batch.push(Op::Expire {
                db: Db::List,
                key,
                secs: keys::TOPICS_DAY_TTL,
            });
        }
        batch.push(self.buffer.ack(n_handled));
        let ops_in = batch.ops_in();
        let ops = batch.finish();
        let stop_never = || false;
        let Some(conn) = self.conn.get(&stop_never) else {
            return Ok(Vec::new());
        };
        let ops = publish_ahead(conn, &mut self.resp, ops, self.opts.max_batch_bytes)?;

        let watch = self.lease.fence(conn)?;
        let result = self
            .resp
            .exec_ops_streamed(conn, &ops, self.dbs, RESP_PIECE);
        drop(watch);
        let streamed = result?;
        self.resp.shrink_after(streamed.largest_piece, RESP_FLOOR);
        let commands = streamed.commands;
        // The transaction ran; the commands Redis refused inside it did not, the others did.
        let mut refused = Vec::new();
        for r in streamed.refusals {
            match r.op.and_then(|i| ops.get(i)) {
                // The acknowledgement itself was refused: the caller finds out whether it
                // went through.
                Some(Op::RTrimCount { .. }) => return Err(r.error),
                None => return Err(r.error),
                Some(op) => refused.push(Refused {
                    command: op.command_name(),
                    key: op.key().map(|(_, k)| k.to_string()).unwrap_or_default(),
                    error: r.error.to_string(),
                }),
            }
        }
        drop(ops);
        self.in_processing = self.in_processing.saturating_sub(n_handled);
        if count_stats {
            let s = &self.stats;
            s.messages.fetch_add(n, Ordering::Relaxed);
            s.dead_lettered.fetch_add(dead, Ordering::Relaxed);
            s.partial.fetch_add(partial, Ordering::Relaxed);
            s.batches.fetch_add(1, Ordering::Relaxed);
            s.redis_commands
                .fetch_add(commands as u64 + 2, Ordering::Relaxed);
            s.ops_before_coalescing
                .fetch_add(ops_in as u64, Ordering::Relaxed);
        }
        Ok(refused)
    }

    /// After a transaction in which Redis refused some writes (a key of the wrong type, say)
    /// and ran the rest: the messages those writes came from are filed as dead letters
    /// (`"applied": "partial"`, with the refused commands), so an admin sees what is missing
    /// and why. Handling is pure, so handling the messages again tells which they were.
    fn dead_letter_refused(
        &mut self,
        raws: Vec<Vec<u8>>,
        refused: Vec<Refused>,
    ) -> redis::RedisResult<()> {
        let describe = |r: &[&Refused]| {
            r.iter()
                .map(|r| format!("{} {}: {}", r.command, r.key, r.error))
                .collect::<Vec<_>>()
                .join("; ")
        };
        tracing::error!(
            "Redis refused {} write(s) of a batch that was otherwise applied: {}",
            refused.len(),
            cut(
                &describe(&refused.iter().collect::<Vec<_>>()),
                LOG_MAX_CHARS
            )
        );
        let engine = Engine::new(&self.env.ranking, self.env.scoring, &self.channels);
        let mut letters = Vec::new();
        for raw in raws {
            let h = handle_message(&self.env, &self.clock, raw, None);
            let mine: Vec<&Refused> = refused
                .iter()
                .filter(|r| h.steps.iter().any(|s| step_touches(s, &r.key, &engine)))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let reason = format!(
                "Redis refused part of its writes, the rest was applied: {}",
                describe(&mine)
            );
            letters.push(self.buffer.dead_letter(dead_letter_entry(
                &reason,
                "partial",
                self.clock.now_f64(),
                None,
                ("entry", &String::from_utf8_lossy(&h.raw)),
            )));
        }
        if letters.is_empty() {
            return Ok(());
        }
        let n = letters.len() as i64;
        letters.push(Op::HIncrBy {
            db: Db::List,
            key: keys::DISPATCH_STATUS.into(),
            field: "partial".into(),
            by: n,
        });
        let stop_never = || false;
        let Some(conn) = self.conn.get(&stop_never) else {
            return Ok(());
        };
        self.resp.write_ops(&letters, self.dbs);
        let watch = self.lease.fence(conn)?;
        let result = self.resp.exec_transaction(conn);
        drop(watch);
        result
    }
}

/// Sends publications in one pipeline. When someone listens (the web server's live streams,
/// the original's dashboard), pauses after them, about 50 MB/s at most: a reader that takes a
/// burst whole queues it in its own memory (about 20 MiB of the web server's for an event of
/// 20,000 attributes; bench/big_event.sh).
fn publish_piece(
    conn: &mut redis::Connection,
    resp: &mut Resp,
    publications: &[Op],
) -> redis::RedisResult<()> {
    // PUBLISH ignores the database, so none is selected.
    resp.write_ops(publications, DbNumbers { data: 0, list: 0 });
    if resp.exec_pipeline(conn)? > 0 {
        std::thread::sleep(SPILL_PAUSE);
    }
    Ok(())
}

/// Publications are not state (pub/sub keeps nothing). When a batch's publications exceed
/// `max_bytes` (one large event's live log), they are sent ahead of its transaction in pieces
/// of about 1 MiB, in order, and the rest is returned: the transaction stays small, and the
/// burst does not push a subscriber past Redis's output-buffer limit for pub/sub clients.
/// Should the transaction then fail, the batch is published again when it is retried.
fn publish_ahead(
    conn: &mut redis::Connection,
    resp: &mut Resp,
    ops: Vec<Op>,
    max_bytes: usize,
) -> redis::RedisResult<Vec<Op>> {
    const PIECE: usize = 1 << 20;
    let published: usize = ops
        .iter()
        .filter(|op| matches!(op, Op::Publish { .. }))
        .map(Op::approx_bytes)
        .sum();
    if published <= max_bytes {
        return Ok(ops);
    }
    let (publications, rest): (Vec<Op>, Vec<Op>) = ops
        .into_iter()
        .partition(|op| matches!(op, Op::Publish { .. }));
    let mut piece = Vec::new();
    let mut bytes = 0;
    for op in publications {
        bytes += op.approx_bytes();
        piece.push(op);
        if bytes >= PIECE {
            publish_piece(conn, resp, &piece)?;
            piece.clear();
            bytes = 0;
        }
    }
    if !piece.is_empty() {
        publish_piece(conn, resp, &piece)?;
    }
    Ok(rest)
}

/// Parses and decides every message of a batch, and splits the result into chunks of about
/// `max_bytes` of commands (one transaction each).
fn handle_batch(
    env: &Env,
    clock: &Clock,
    items: Vec<Vec<u8>>,
    max_bytes: usize,
) -> Vec<Vec<Handled>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for raw in items {
        if raw.len() > env.large_message_bytes {
            // Committed alone, after what came before it.
            if !chunk.is_empty() {
                chunks.push(std::mem::take(&mut chunk));
                bytes = 0;
            }
            chunks.push(vec![Handled::deferred(raw)]);
            continue;
        }
        let h = handle_message(env, clock, raw, None);
        bytes += h.bytes;
        chunk.push(h);
        if bytes >= max_bytes {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// The thread that handles the next batch while the current one is committed. Handling is
/// pure (it reads the configuration and the GeoIP data, never Redis), so it can run beside
/// the commit without changing any result.
struct Handler {
    env: Arc<Env>,
    clock: Clock,
    max_bytes: usize,
    to_worker: Option<std::sync::mpsc::SyncSender<Vec<Vec<u8>>>>,
    from_worker: std::sync::mpsc::Receiver<Vec<Vec<Handled>>>,
    /// Items given to the worker, kept only if the worker is gone (then handled here).
    in_flight: Option<Vec<Vec<u8>>>,
}

impl Handler {
    fn spawn(env: Arc<Env>, clock: Clock, max_bytes: usize) -> Handler {
        let (to_worker, work) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(1);
        let (done, from_worker) = std::sync::mpsc::sync_channel(1);
        let worker_env = env.clone();
        let spawned = std::thread::Builder::new()
            .name("handler".into())
            .spawn(move || {
                for items in work {
                    if done
                        .send(handle_batch(&worker_env, &clock, items, max_bytes))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        let to_worker = match spawned {
            Ok(_) => Some(to_worker),
            Err(e) => {
                tracing::warn!("no handler thread ({e}); batches are handled in turn");
                None
            }
        };
        Handler {
            env,
            clock,
            max_bytes,
            to_worker,
            from_worker,
            in_flight: None,
        }
    }

    fn handle_now(&self, items: Vec<Vec<u8>>) -> Vec<Vec<Handled>> {
        handle_batch(&self.env, &self.clock, items, self.max_bytes)
    }

    /// Hands a batch to the worker; [`Handler::finish`] returns its result.
    fn start(&mut self, items: Vec<Vec<u8>>) {
        match &self.to_worker {
            Some(tx) => {
                if let Err(e) = tx.send(items) {
                    self.in_flight = Some(e.0);
                }
            }
            None => self.in_flight = Some(items),
        }
    }

    /// The handled batch; `None` if the worker died with it (only a panic in a rule could do
    /// that), in which case the batch must be recovered from the processing list.
    fn finish(&mut self) -> Option<Vec<Vec<Handled>>> {
        if let Some(items) = self.in_flight.take() {
            return Some(self.handle_now(items));
        }
        match self.from_worker.recv() {
            Ok(handled) => Some(handled),
            Err(_) => {
                tracing::error!("the handler thread stopped; its batch will be recovered");
                self.to_worker = None;
                None
            }
        }
    }
}

fn handle_message(
    env_rules: &Env,
    clock: &Clock,
    raw: Vec<u8>,
    spill: Option<&mut dyn rules::Spill>,
) -> Handled {
    let now = clock.now_f64();
    let dead = |reason: String, zmq_name: Option<&str>, content: Option<&str>, applied: &str| {
        match content {
            Some(c) => dead_letter_entry(&reason, applied, now, zmq_name, ("content", c)),
            None => dead_letter_entry(
                &reason,
                applied,
                now,
                zmq_name,
                ("entry", &String::from_utf8_lossy(&raw)),
            ),
        }
    };
    let text = match std::str::from_utf8(&raw) {
        Ok(t) => t,
        Err(_) => {
            let d = dead("buffer entry is not UTF-8".into(), None, None, "none");
            return Handled::dead_only(raw, d);
        }
    };
    let env = match message::parse_envelope(text) {
        Ok(e) => e,
        Err(r) => {
            tracing::warn!("dead-lettered: {}", cut(&r.to_string(), LOG_MAX_CHARS));
            let d = dead(r.to_string(), None, None, "none");
            return Handled::dead_only(raw, d);
        }
    };
    // A backfilled message counts at the instant it happened in MISP.
    let at = env.backfilled_at.map(crate::clock::Clock::frozen);
    match rules::handle_frame_spilling(
        env_rules,
        at.as_ref().unwrap_or(clock),
        &env.zmq_name,
        &env.content,
        spill,
        at.is_some() && !env.gap_fill,
    ) {
        Outcome::Rejected(r) => {
            tracing::warn!(
                "dead-lettered message from {:?}: {}",
                cut(&env.zmq_name, LOG_MAX_CHARS),
                cut(&r.to_string(), LOG_MAX_CHARS)
            );
            let d = dead(
                r.to_string(),
                Some(&env.zmq_name),
                Some(&env.content),
                "none",
            );
            Handled::dead_only(raw, d)
        }
        Outcome::Applied {
            topic,
            steps,
            problems,
        } => {
            let dead = if problems.is_empty() {
                None
            } else {
                let reason = problems.join("; ");
                tracing::warn!(
                    "{} from {:?} applied in part: {}",
                    cut(&topic, LOG_MAX_CHARS),
                    cut(&env.zmq_name, LOG_MAX_CHARS),
                    cut(&reason, LOG_MAX_CHARS)
                );
                Some(dead(
                    reason,
                    Some(&env.zmq_name),
                    Some(&env.content),
                    "partial",
                ))
            };
            let bytes = raw.len()
                + steps.iter().map(step_bytes).sum::<usize>()
                + dead.as_ref().map_or(0, |d| d.len());
            Handled {
                raw,
                steps,
                dead,
                bytes,
                topic: Some(topic),
                deferred: false,
                attempt: None,
            }
        }
    }
}

/// A write Redis refused inside a transaction that otherwise ran.
#[derive(Debug)]
struct Refused {
    command: &'static str,
    key: String,
    error: String,
}

/// Whether a message's step writes `key`: one of its operations, or its contribution, whose
/// writes the gamification derives (its organisation's and category's keys, and the keys
/// every contribution shares).
fn step_touches(step: &Step, key: &str, engine: &Engine) -> bool {
    match step {
        Step::Op(op) => op.key().is_some_and(|(_, k)| k == key),
        Step::Contribution(c) => {
            let Some(rest) = key.strip_prefix("CONTRIB_") else {
                return false;
            };
            let own = rest.starts_with("ORG:")
                || rest.starts_with("TROPHY:")
                || rest.starts_with("CATEG:");
            !own || key.contains(&c.org)
                || c.categ
                    .as_deref()
                    .is_some_and(|cat| key.ends_with(&engine.normalise(cat)))
        }
    }
}

/// A dead-letter entry: `{"reason", "applied", "epoch", ["zmq_name",] <message field>}`, the
/// reason cut to `REASON_MAX_CHARS`. The message (`("content", frame)` or `("entry", buffer
/// entry)`) is kept whole up to a quarter of the dead letters' byte budget, so it can be
/// requeued; beyond, its beginning, with `"truncated": <bytes in all>`.
fn dead_letter_entry(
    reason: &str,
    applied: &str,
    epoch: f64,
    zmq_name: Option<&str>,
    (name, text): (&'static str, &str),
) -> String {
    const KEEP: usize = crate::dead_letter::DEAD_LETTER_MAX_BYTES / 4;
    let mut fields = vec![
        (
            "reason",
            Value::String(cut(reason, REASON_MAX_CHARS).into()),
        ),
        ("applied", Value::String(applied.into())),
        ("epoch", pyjson::float(epoch)),
    ];
    if let Some(z) = zmq_name {
        fields.push(("zmq_name", Value::String(z.into())));
    }
    if text.len() <= KEEP {
        fields.push((name, Value::String(text.into())));
    } else {
        let mut end = KEEP;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        fields.push((name, Value::String(text[..end].into())));
        fields.push(("truncated", Value::from(text.len())));
    }
    pyjson::to_string(&pyjson::object(fields))
}

/// Errors with which Redis refuses every write, whatever the message.
fn refuses_everything(e: &redis::RedisError) -> bool {
    matches!(
        e.code(),
        Some("OOM" | "READONLY" | "MISCONF" | "NOREPLICAS" | "MASTERDOWN" | "EXECABORT")
    )
}

/// The key under which attempts at a message are counted: its SHA-256, in hex.
fn attempt_digest(raw: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn step_bytes(s: &Step) -> usize {
    match s {
        Step::Op(op) => op.approx_bytes(),
        Step::Contribution(c) => c.org.len() + 64,
    }
}

/// The original's database versioning (`updates.py`): version 1 clears the live-log cache,
/// whose entry format changed, and records `db_version = 1`.
/// Reads what earlier messages said of events (`keys::ACL_EVENTS`) into `env`, the newest
/// [`rules::EVENT_FACTS_KEPT`] at most; returns how many.
fn load_event_facts(
    conn: &mut redis::Connection,
    dbs: DbNumbers,
    env: &Env,
) -> redis::RedisResult<usize> {
    redis::cmd("SELECT").arg(dbs.data).query::<()>(conn)?;
    let mut cursor: u64 = 0;
    let mut n = 0usize;
    let scanned = loop {
        let page: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("HSCAN")
            .arg(keys::ACL_EVENTS)
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(conn);
        let (next, items) = match page {
            Ok(p) => p,
            Err(e) => break Err(e),
        };
        for pair in items.chunks(2) {
            if let [id, v] = pair {
                if let (Ok(id), Ok(f)) = (id.parse::<u64>(), serde_json::from_str(v)) {
                    env.event_facts.insert(id, Arc::new(f));
                    n += 1;
                }
            }
        }
        if next == 0 || n as u64 >= rules::EVENT_FACTS_KEPT {
            break Ok(n);
        }
        cursor = next;
    };
    redis::cmd("SELECT").arg(dbs.list).query::<()>(conn)?;
    scanned
}

fn upgrade_db(conn: &mut redis::Connection, dbs: DbNumbers, key: &str) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.cmd("SELECT")
        .arg(dbs.data)
        .cmd("GET")
        .arg(key)
        .cmd("SELECT")
        .arg(dbs.list)
        .ignore();
    let (_, version): ((), Option<String>) = pipe.query(conn)?;
    let v = version
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    if v < 1 {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SELECT")
            .arg(dbs.data)
            .ignore()
            .cmd("DEL")
            .arg(keys::LIVE_CACHE_LOG)
            .ignore()
            .cmd("SET")
            .arg(key)
            .arg("1")
            .ignore()
            .cmd("SELECT")
            .arg(dbs.list)
            .ignore();
        pipe.query::<()>(conn)?;
        tracing::info!(
            "database version set to 1 (live-log cache cleared, as the original's update 1)"
        );
    }
    Ok(())
}
