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

use crate::keys;
use crate::store::{Db, Op};
use redis::Connection;

pub struct Buffer {
    list: String,
    processing: String,
    dead: String,
}

/// Dead letters kept at most (oldest dropped first).
pub const DEAD_LETTER_KEEP: isize = 100_000;

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
        let mut items = self.move_oldest(conn, max)?;
        if items.is_empty() && wait > 0.0 {
            let first: Option<Vec<u8>> = redis::cmd("BLMOVE")
                .arg(&self.list)
                .arg(&self.processing)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(wait)
                .query(conn)?;
            if let Some(first) = first {
                items.push(first);
                if max > 1 {
                    let more = self.move_oldest(conn, max - 1)?;
                    items.extend(more);
                }
            }
        }
        Ok(items)
    }

    /// Moves up to `n` messages from the consumer end of the buffer to the head of the
    /// processing list, atomically, and returns them oldest first.
    ///
    /// RPOPLPUSHes in one MULTI/EXEC: the same moves a Lua loop would make, but Redis moves
    /// each element without the copies in and out of Lua, which cost it several microseconds
    /// per message. As many moves as the buffer holds are sent (it only grows meanwhile: the
    /// dispatcher is its only consumer), so an idle buffer costs one LLEN, not `n` moves.
    fn move_oldest(&self, conn: &mut Connection, n: usize) -> redis::RedisResult<Vec<Vec<u8>>> {
        let available: usize = redis::cmd("LLEN").arg(&self.list).query(conn)?;
        let n = n.min(available);
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for _ in 0..n {
            pipe.cmd("RPOPLPUSH").arg(&self.list).arg(&self.processing);
        }
        let moved: Vec<Option<Vec<u8>>> = pipe.query(conn)?;
        Ok(moved.into_iter().flatten().collect())
    }

    /// The operation that acknowledges the `count` oldest messages in the processing list.
    pub fn ack(&self, count: usize) -> Op {
        Op::RTrimCount {
            db: Db::List,
            key: self.processing.clone(),
            count,
        }
    }

    /// The operation that files a message in the dead-letter list.
    pub fn dead_letter(&self, entry: String) -> Op {
        Op::LPush {
            db: Db::List,
            key: self.dead.clone(),
            value: entry,
        }
    }

    /// Bounds the dead-letter list; once per batch that filed any.
    pub fn trim_dead_letters(&self) -> Op {
        Op::LTrim {
            db: Db::List,
            key: self.dead.clone(),
            start: 0,
            stop: DEAD_LETTER_KEEP - 1,
        }
    }

    pub fn len(&self, conn: &mut Connection) -> redis::RedisResult<usize> {
        redis::cmd("LLEN").arg(&self.list).query(conn)
    }
}
