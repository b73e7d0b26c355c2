//! `mispdash dead-letters`: what the dispatcher and the subscribers set aside
//! (`<listName>:dead`), listed for an admin, and put back in the buffer once the cause is
//! fixed (a key of the wrong type removed, a bug fixed, a GeoIP database installed).

use super::{connect, redis_err, OpsError};
use crate::config::Config;
use crate::keys;
use crate::redis_util::RedisTarget;
use serde_json::Value;

/// One dead letter, newest first as the list holds them (`index` 0 is the newest).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub index: usize,
    pub reason: String,
    pub applied: String,
    pub epoch: Option<f64>,
    pub zmq_name: Option<String>,
    /// The message's topic (the frame's first word), when the entry holds the message.
    pub topic: Option<String>,
    /// Bytes of the entry as stored.
    pub bytes: usize,
    /// The buffer entry that would be pushed back by a requeue; `None` when the entry holds no
    /// message that can be handled again (a frame that was not UTF-8, or a message too large
    /// to be kept whole).
    pub requeue_as: Option<String>,
}

impl DeadLetter {
    fn parse(index: usize, raw: &str) -> DeadLetter {
        let v: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        // An entry holds the frame's content with its feed's name, or the whole buffer entry
        // (an envelope) when it could not be read that far.
        let envelope: Option<Value> = text("entry").and_then(|e| serde_json::from_str(&e).ok());
        let from_envelope = |k: &str| {
            envelope
                .as_ref()
                .and_then(|e| e.get(k)?.as_str().map(str::to_string))
        };
        let zmq_name = text("zmq_name").or_else(|| from_envelope("zmq_name"));
        let content = text("content").or_else(|| from_envelope("content"));
        let truncated = v.get("truncated").is_some();
        let requeue_as = match (&zmq_name, text("content"), text("entry")) {
            _ if truncated => None,
            (Some(name), Some(content), _) => Some(crate::feed::envelope(name, &content)),
            (_, _, Some(entry)) => Some(entry),
            _ => None,
        };
        DeadLetter {
            index,
            reason: text("reason").unwrap_or_else(|| "(no reason recorded)".into()),
            applied: text("applied").unwrap_or_default(),
            epoch: v.get("epoch").and_then(Value::as_f64),
            zmq_name,
            topic: content.and_then(|c| {
                c.split(' ')
                    .next()
                    .map(|t| crate::buffer::cut(t, 60).into_owned())
            }),
            bytes: raw.len(),
            requeue_as,
        }
    }
}

/// Moves one dead letter (ARGV[1]) back to the buffer as ARGV[2], only if it is still in the
/// dead-letter list: KEYS dead list, its byte counter, the buffer.
const REQUEUE_LUA: &str = "if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then \
redis.call('DECRBY', KEYS[2], #ARGV[1]) redis.call('LPUSH', KEYS[3], ARGV[2]) return 1 end \
return 0";

fn dead_key(cfg: &Config) -> String {
    keys::dead_letter_list(&cfg.redis.list_name)
}

/// The dead letters, newest first: at most `limit` of them, and the total count.
pub fn list(cfg: &Config, limit: usize) -> Result<(Vec<DeadLetter>, usize), OpsError> {
    let target = RedisTarget::from_config(&cfg.redis);
    let db = cfg.redis.list_db;
    let mut conn = connect(&target, db)?;
    let key = dead_key(cfg);
    let (total, raw): (usize, Vec<String>) = redis::pipe()
        .cmd("LLEN")
        .arg(&key)
        .cmd("LRANGE")
        .arg(&key)
        .arg(0)
        .arg(limit.saturating_sub(1) as i64)
        .query(&mut conn)
        .map_err(redis_err(&target, db))?;
    let letters = if limit == 0 { Vec::new() } else { raw };
    Ok((
        letters
            .iter()
            .enumerate()
            .map(|(i, r)| DeadLetter::parse(i, r))
            .collect(),
        total,
    ))
}

/// What a requeue did.
#[derive(Debug, Default, PartialEq)]
pub struct Requeued {
    pub requeued: usize,
    /// Indexes that hold no message to hand back (see [`DeadLetter::requeue_as`]).
    pub not_requeueable: Vec<usize>,
    /// Indexes past the end of the list.
    pub missing: Vec<usize>,
}

/// Pushes the dead letters at `indexes` (all of them when `None`) back onto the buffer, oldest
/// first, and removes them from the dead-letter list, each in one transaction: a letter is
/// never both requeued and kept, nor lost. The dispatcher handles them like new messages.
pub fn requeue(cfg: &Config, indexes: Option<&[usize]>) -> Result<Requeued, OpsError> {
    let target = RedisTarget::from_config(&cfg.redis);
    let db = cfg.redis.list_db;
    let mut conn = connect(&target, db)?;
    let key = dead_key(cfg);
    let counter = keys::dead_letter_bytes(&cfg.redis.list_name);
    let all: Vec<String> = redis::cmd("LRANGE")
        .arg(&key)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .map_err(redis_err(&target, db))?;
    let mut wanted: Vec<usize> = match indexes {
        Some(ix) => ix.to_vec(),
        None => (0..all.len()).collect(),
    };
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = Requeued::default();
    // Oldest (highest index) first, so the buffer receives them in their original order.
    for &i in wanted.iter().rev() {
        let Some(raw) = all.get(i) else {
            out.missing.push(i);
            continue;
        };
        let Some(entry) = DeadLetter::parse(i, raw).requeue_as else {
            out.not_requeueable.push(i);
            continue;
        };
        let moved: i64 = redis::cmd("EVAL")
            .arg(REQUEUE_LUA)
            .arg(3)
            .arg(&key)
            .arg(&counter)
            .arg(&cfg.redis.list_name)
            .arg(raw)
            .arg(&entry)
            .query(&mut conn)
            .map_err(redis_err(&target, db))?;
        if moved == 1 {
            out.requeued += 1;
        } else {
            // Gone from the list meanwhile (requeued by someone else, or trimmed): not pushed.
            out.missing.push(i);
        }
    }
    out.not_requeueable.sort_unstable();
    out.missing.sort_unstable();
    Ok(out)
}
