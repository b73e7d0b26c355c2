//! The reliable queue over the original's Redis buffer list.
//!
//! Subscribers (ours or the original's `zmq_subscriber.py`) LPUSH envelopes onto `bufferList`;
//! the original's dispatcher RPOPs them, so a crash loses the message in hand. Here messages
//! are *moved* atomically to a processing list (`bufferList:processing`) and only removed from
//! it in the same MULTI/EXEC that applies their writes. After a crash, a `kill -9` or a Redis
//! outage, whatever is still in the processing list was not applied and is handled again first:
//! nothing is lost and nothing is applied twice.
//!
//! The processing list is fed by LPUSH-like moves, so its tail holds the oldest message; an
//! acknowledgement of the `k` oldest is an `LTRIM 0 -(k+1)`.

use crate::dead_letter::{DEAD_LETTER_KEEP, DEAD_LETTER_MAX_BYTES};
use crate::keys;
use crate::store::{Db, Op};
use redis::Connection;
use std::time::{Duration, Instant};

pub struct Buffer {
    list: String,
    processing: String,
    dead: String,
}

/// [`Buffer::move_oldest`]: KEYS the buffer and its processing list, ARGV the most messages to
/// move. The oldest messages are at the buffer's tail; they go to the processing list's head in
/// the order `RPOPLPUSH` would put them (the oldest deepest, so that an acknowledgement trims
/// the tail), and come back oldest first. Pushed a thousand at a time: Lua's `unpack` has a
/// bound on how many values it spreads.
const MOVE_LUA: &str = r"
local items = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
local k = #items
if k == 0 then return items end
redis.call('LTRIM', KEYS[1], 0, -(k + 1))
local oldest_first = {}
for i = k, 1, -1 do oldest_first[k - i + 1] = items[i] end
for i = 1, k, 1000 do
  redis.call('LPUSH', KEYS[2], unpack(oldest_first, i, math.min(i + 999, k)))
end
return oldest_first
";

/// How often an idle dispatcher looks at the buffer: the most a message waits when it arrives
/// in an empty buffer.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// `text` cut to `max` characters, saying how much was left out.
pub fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((at, _)) => format!("{}… ({} bytes in all)", &text[..at], text.len()).into(),
    }
}

impl Buffer {
    pub fn new(list_name: &str) -> Self {
        Buffer {
            list: list_name.to_string(),
            processing: keys::processing_list(list_name),
            dead: keys::dead_letter_list(list_name),
        }
    }

    pub fn list_name(&self) -> &str {
        &self.list
    }

    pub fn dead_letter_key(&self) -> &str {
        &self.dead
    }

    /// Messages left in the processing list by an interrupted run, oldest first.
    pub fn recover(&self, conn: &mut Connection) -> redis::RedisResult<Vec<Vec<u8>>> {
        let mut items: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(&self.processing)
            .arg(0)
            .arg(-1)
            .query(conn)?;
        items.reverse();
        Ok(items)
    }

    /// Moves up to `max` messages into the processing list and returns them oldest first,
    /// waiting up to `wait` seconds for the first one when the buffer is empty.
    pub fn take(
        &self,
        conn: &mut Connection,
        max: usize,
        wait: f64,
    ) -> redis::RedisResult<Vec<Vec<u8>>> {
        let items = self.move_oldest(conn, max)?;
        if !items.is_empty() || wait <= 0.0 {
            return Ok(items);
        }
        // Polled, not a blocking BLMOVE: every move must be in a transaction that the
        // dispatcher lease fences (see `lease`), and a blocking command cannot be.
        let deadline = Instant::now() + Duration::from_secs_f64(wait);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            std::thread::sleep(IDLE_POLL.min(left));
            if self.len(conn)? > 0 {
                return self.move_oldest(conn, max);
            }
        }
    }

    /// Moves up to `n` messages from the consumer end of the buffer to the head of the
    /// processing list, atomically, and returns them oldest first.
    ///
    /// One script ([`MOVE_LUA`]) in the lease's MULTI/EXEC: a range read, a trim and one push
    /// per batch, where a `RPOPLPUSH` per message made the take alone one Redis command per
    /// message. An idle buffer costs one LLEN.
    fn move_oldest(&self, conn: &mut Connection, n: usize) -> redis::RedisResult<Vec<Vec<u8>>> {
        let available: usize = redis::cmd("LLEN").arg(&self.list).query(conn)?;
        let n = n.min(available);
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("EVAL")
            .arg(MOVE_LUA)
            .arg(2)
            .arg(&self.list)
            .arg(&self.processing)
            .arg(n);
        // No reply: the transaction was aborted, because the lease it was fenced by changed.
        let moved: Option<(Vec<Vec<u8>>,)> = pipe.query(conn)?;
        let Some((moved,)) = moved else {
            return Err(crate::lease::lost());
        };
        Ok(moved)
    }

    /// The operation that acknowledges the `count` oldest messages in the processing list.
    pub fn ack(&self, count: usize) -> Op {
        Op::RTrimCount {
            db: Db::List,
            key: self.processing.clone(),
            count,
        }
    }

    /// The operation that files a message in the dead-letter list, within its bounds.
    pub fn dead_letter(&self, entry: String) -> Op {
        Op::DeadLetter {
            db: Db::List,
            key: self.dead.clone(),
            counter: keys::dead_letter_bytes(&self.list),
            value: entry,
            max_entries: DEAD_LETTER_KEEP as usize,
            max_bytes: DEAD_LETTER_MAX_BYTES,
        }
    }

    pub fn len(&self, conn: &mut Connection) -> redis::RedisResult<usize> {
        redis::cmd("LLEN").arg(&self.list).query(conn)
    }
}
