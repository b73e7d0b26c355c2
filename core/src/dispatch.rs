//! The dispatcher: drains the buffer in FIFO order, lets the rules decide, and has the store
//! apply each batch together with its acknowledgement.
//!
//! Failure handling, in short: a connection error leaves the batch in the processing list (its
//! transaction either ran whole, acknowledgement included, or not at all), so the loop
//! reconnects and starts again from the processing list. A command error (a key of the wrong
//! type, say) is retried message by message, so one poisoned message is dead-lettered instead
//! of blocking the queue. A message that cannot be handled never stops the loop.

use crate::buffer::Buffer;
use crate::clock::Clock;
use crate::config::Config;
use crate::contrib::{Channels, Engine, Snapshot};
use crate::keys;
use crate::message;
use crate::pyjson;
use crate::redis_util::{is_connection_error, sleep_unless, Reconnecting, RedisTarget};
use crate::rules::{self, Env, Outcome, Step};
use crate::store::ops::DbNumbers;
use crate::store::{Batch, Db, Op};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    /// Messages taken from the buffer at once.
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
            batch_size: 500,
            max_batch_bytes: 2 << 20,
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
    /// Messages of the current take still in the processing list (not yet acknowledged).
    in_processing: usize,
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
            conn: Reconnecting::new(target, cfg.redis.list_db, "dispatcher"),
            opts,
            channels: Channels {
                last_contributor: cfg.redis.channel_last_contributor.clone(),
                last_awards: cfg.redis.channel_last_awards.clone(),
            },
            in_processing: 0,
            stats: Arc::new(DispatchStats::default()),
        }
    }

    /// Runs until `stop` is set; returns after finishing the batch in hand.
    pub fn run(&mut self, stop: &AtomicBool) {
        let stop_fn = || stop.load(Ordering::Relaxed);
        let mut need_recovery = true;
        let mut upgraded = false;
        while !stop_fn() {
            let Some(conn) = self.conn.get(&stop_fn) else {
                break;
            };
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
                self.buffer.recover(conn).inspect(|items| {
                    if !items.is_empty() {
                        tracing::info!(
                            "recovering {} message(s) left in {} by an interrupted run",
                            items.len(),
                            keys::processing_list(self.buffer.list_name())
                        );
                    }
                })
            } else {
                self.buffer
                    .take(conn, self.opts.batch_size, self.opts.idle_wait)
            };
            let items = match taken {
                Ok(items) => items,
                Err(e) => {
                    self.on_error(&e);
                    need_recovery = true;
                    continue;
                }
            };
            if need_recovery && items.is_empty() {
                need_recovery = false;
                continue;
            }
            need_recovery = false;
            if items.is_empty() {
                continue;
            }
            if let Err(e) = self.process(items) {
                self.on_error(&e);
                need_recovery = true;
            }
        }
    }

    fn on_error(&mut self, e: &redis::RedisError) {
        if is_connection_error(e) {
            self.conn.reset(e);
        } else {
            tracing::error!("dispatcher: Redis refused a command: {e}");
            sleep_unless(Duration::from_millis(500), &|| false);
        }
    }

    /// Handles messages (oldest first) and commits them in bounded transactions.
    fn process(&mut self, items: Vec<Vec<u8>>) -> redis::RedisResult<()> {
        self.in_processing = items.len();
        let mut pending: Vec<Handled> = Vec::new();
        let mut bytes = 0;
        for raw in items {
            let h = self.handle(raw);
            bytes += h.bytes;
            pending.push(h);
            if bytes >= self.opts.max_batch_bytes {
                self.commit(std::mem::take(&mut pending))?;
                bytes = 0;
            }
        }
        if !pending.is_empty() {
            self.commit(pending)?;
        }
        Ok(())
    }

    fn handle(&self, raw: Vec<u8>) -> Handled {
        let now = self.clock.now_f64();
        let dead =
            |reason: String, zmq_name: Option<&str>, content: Option<&str>, applied: &str| {
                let mut fields = vec![
                    ("reason", Value::String(reason)),
                    ("applied", Value::String(applied.into())),
                    ("epoch", pyjson::float(now)),
                ];
                if let Some(z) = zmq_name {
                    fields.push(("zmq_name", Value::String(z.into())));
                }
                match content {
                    Some(c) => fields.push(("content", Value::String(c.into()))),
                    None => fields.push((
                        "entry",
                        Value::String(String::from_utf8_lossy(&raw).into_owned()),
                    )),
                }
                pyjson::to_string(&pyjson::object(fields))
            };
        let text = match std::str::from_utf8(&raw) {
            Ok(t) => t,
            Err(_) => {
                let d = dead("buffer entry is not UTF-8".into(), None, None, "none");
                return Handled {
                    bytes: raw.len() + d.len(),
                    dead: Some(d),
                    steps: Vec::new(),
                    raw,
                    topic: None,
                };
            }
        };
        let env = match message::parse_envelope(text) {
            Ok(e) => e,
            Err(r) => {
                tracing::warn!("dead-lettered: {r}");
                let d = dead(r.to_string(), None, None, "none");
                return Handled {
                    bytes: raw.len() + d.len(),
                    dead: Some(d),
                    steps: Vec::new(),
                    raw,
                    topic: None,
                };
            }
        };
        match rules::handle_frame(&self.env, &self.clock, &env.zmq_name, &env.content) {
            Outcome::Rejected(r) => {
                tracing::warn!("dead-lettered message from {:?}: {r}", env.zmq_name);
                let d = dead(
                    r.to_string(),
                    Some(&env.zmq_name),
                    Some(&env.content),
                    "none",
                );
                Handled {
                    bytes: raw.len() + d.len(),
                    dead: Some(d),
                    steps: Vec::new(),
                    raw,
                    topic: None,
                }
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
                    tracing::warn!("{topic} from {:?} applied in part: {reason}", env.zmq_name);
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
                }
            }
        }
    }

    /// Applies handled messages and acknowledges them in one transaction; on a command error,
    /// retries them one at a time so only the faulty one is dead-lettered.
    fn commit(&mut self, handled: Vec<Handled>) -> redis::RedisResult<()> {
        let n = handled.len();
        let raws: Vec<Vec<u8>> = handled.iter().map(|h| h.raw.clone()).collect();
        let e = match self.apply(handled, true) {
            Ok(()) => return Ok(()),
            Err(e) if is_connection_error(&e) => return Err(e),
            Err(e) => e,
        };
        // A command error inside EXEC does not undo the others: if the acknowledgement went
        // through, the batch was applied (but the failing command) and must not be redone.
        if self.acknowledged(n)? {
            tracing::error!("Redis refused part of a batch of {n} message(s): {e}");
            return Ok(());
        }
        tracing::error!(
            "a batch of {n} message(s) was refused by Redis ({e}); retrying one by one"
        );
        for raw in raws {
            let h = self.handle(raw.clone());
            match self.apply(vec![h], true) {
                Ok(()) => {}
                Err(e) if is_connection_error(&e) => return Err(e),
                Err(e) if self.acknowledged(1)? => {
                    tracing::error!("Redis refused part of a message's writes: {e}");
                }
                Err(e) => {
                    let entry = pyjson::to_string(&pyjson::object([
                        (
                            "reason",
                            Value::String(format!("Redis refused its writes: {e}")),
                        ),
                        ("applied", Value::String("none".into())),
                        (
                            "entry",
                            Value::String(String::from_utf8_lossy(&raw).into_owned()),
                        ),
                    ]));
                    let failed = Handled {
                        raw,
                        steps: Vec::new(),
                        dead: Some(entry),
                        bytes: 0,
                        topic: None,
                    };
                    self.apply(vec![failed], false)?;
                }
            }
        }
        Ok(())
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

    fn apply(&mut self, handled: Vec<Handled>, count_stats: bool) -> redis::RedisResult<()> {
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
                return Ok(());
            };
            Some(Snapshot::load(conn, self.dbs, &self.env.ranking, &orgs)?)
        };
        let engine = Engine::new(&self.env.ranking, self.env.scoring, &self.channels);

        let mut batch = Batch::new();
        let mut live_pushed = false;
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
                        if let Op::LPush { key, .. } = &op {
                            live_pushed |=
                                key == keys::LIVE_CACHE_LOG || key == keys::LIVE_CACHE_MAP;
                        }
                        batch.push(op);
                    }
                    Step::Contribution(c) => {
                        if let Some(snap) = snapshot.as_mut() {
                            batch.extend(engine.score(snap, &c));
                        }
                    }
                }
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
            }
        }
        if dead + partial > 0 {
            batch.push(self.buffer.trim_dead_letters());
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
        for (topic, by) in topics {
            batch.push(Op::HIncrBy {
                db: Db::List,
                key: keys::DISPATCH_STATUS.into(),
                field: keys::dispatch_topic_field(&topic),
                by,
            });
        }
        batch.push(self.buffer.ack(n_handled));
        let ops_in = batch.ops_in();
        let ops = batch.finish();

        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut current = self.dbs.list;
        let mut commands = 0;
        for op in &ops {
            commands += op.append_to(&mut pipe, self.dbs, &mut current);
        }
        if current != self.dbs.list {
            pipe.cmd("SELECT").arg(self.dbs.list).ignore();
            commands += 1;
        }
        let stop_never = || false;
        let Some(conn) = self.conn.get(&stop_never) else {
            return Ok(());
        };
        pipe.query::<()>(conn)?;
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
        Ok(())
    }
}

fn step_bytes(s: &Step) -> usize {
    match s {
        Step::Op(op) => op.approx_bytes(),
        Step::Contribution(c) => c.org.len() + 64,
    }
}

/// The original's database versioning (`updates.py`): version 1 clears the live-log cache,
/// whose entry format changed, and records `db_version = 1`.
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
        tracing::warn!(
            "database version set to 1 (live-log cache cleared, as the original's update 1)"
        );
    }
    Ok(())
}
