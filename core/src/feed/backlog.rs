//! The bounded in-memory queue between a feed's ZeroMQ receiver and its Redis pusher.
//!
//! The receiver must never wait for Redis: while it does not read, ZeroMQ's own receive buffer
//! fills and libzmq silently discards what MISP publishes. So frames go into this queue, and the
//! pusher moves them to Redis when it can. While Redis is down the queue grows; past its bound
//! the *oldest* frames are dropped (the newest are the ones an operator is most likely to want
//! on the live dashboard once Redis is back), and the caller counts and reports how many.

use std::collections::VecDeque;

/// Which Redis list an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dest {
    /// The buffer list the dispatcher consumes (`[RedisLIST] listName`).
    Buffer,
    /// The dead-letter list next to it (`keys::dead_letter_list`).
    DeadLetter,
}

/// One value to `LPUSH`, already serialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub dest: Dest,
    pub value: String,
}

/// FIFO of entries waiting for Redis, bounded by a count and a byte size.
///
/// A batch taken by the pusher is "in flight": it is no longer in the queue (so the receiver can
/// keep appending without touching it) but still counts in [`Backlog::len`] until the pusher
/// [`Backlog::confirm`]s it. The pusher retries that exact batch until it is confirmed (see
/// `pusher`), so it is never evicted: the bound can be exceeded by one batch.
#[derive(Debug)]
pub(crate) struct Backlog {
    queue: VecDeque<Entry>,
    bytes: usize,
    in_flight: usize,
    max_frames: usize,
    max_bytes: usize,
}

impl Backlog {
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Backlog {
            queue: VecDeque::new(),
            bytes: 0,
            in_flight: 0,
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Entries waiting, including an in-flight batch.
    pub fn len(&self) -> usize {
        self.queue.len() + self.in_flight
    }

    /// Whether nothing is waiting in the queue (an in-flight batch is not "waiting").
    pub fn queue_is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Appends entries in arrival order; returns how many of the oldest were dropped to stay
    /// within the bound.
    pub fn push_back(&mut self, entries: impl IntoIterator<Item = Entry>) -> u64 {
        for e in entries {
            self.bytes += e.value.len();
            self.queue.push_back(e);
        }
        self.enforce_bound()
    }

    /// Puts entries, in order, ahead of everything queued (frames spooled at the last stop are
    /// older than any that arrived since); the bound is not applied to them.
    pub fn push_front(&mut self, entries: Vec<Entry>) {
        for e in entries.into_iter().rev() {
            self.bytes += e.value.len();
            self.queue.push_front(e);
        }
    }

    /// Takes up to `max_frames` entries (and about `max_bytes`, but always at least one) from
    /// the front, oldest first, and marks them in flight.
    pub fn take_batch(&mut self, max_frames: usize, max_bytes: usize) -> Vec<Entry> {
        let mut batch = Vec::new();
        let mut size = 0usize;
        while batch.len() < max_frames.max(1) {
            let next_len = match self.queue.front() {
                Some(e) => e.value.len(),
                None => break,
            };
            if !batch.is_empty() && size + next_len > max_bytes {
                break;
            }
            if let Some(e) = self.queue.pop_front() {
                size += next_len;
                self.bytes -= next_len;
                batch.push(e);
            }
        }
        self.in_flight = batch.len();
        batch
    }

    /// The in-flight batch reached Redis.
    pub fn confirm(&mut self) {
        self.in_flight = 0;
    }

    /// Drops the oldest entries while over either bound. A single entry larger than the byte
    /// bound is kept on its own: dropping the only frame would lose data to save no memory
    /// the frame had not already taken.
    fn enforce_bound(&mut self) -> u64 {
        let mut dropped = 0u64;
        while self.queue.len() > self.max_frames
            || (self.bytes > self.max_bytes && self.queue.len() > 1)
        {
            match self.queue.pop_front() {
                Some(e) => {
                    self.bytes -= e.value.len();
                    dropped += 1;
                }
                None => break,
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(v: &str) -> Entry {
        Entry {
            dest: Dest::Buffer,
            value: v.to_string(),
        }
    }

    fn values(b: Vec<Entry>) -> Vec<String> {
        b.into_iter().map(|e| e.value).collect()
    }

    #[test]
    fn fifo_and_batches() {
        let mut b = Backlog::new(100, 1 << 20);
        assert_eq!(b.push_back(["a", "b", "c"].map(e)), 0);
        let batch = b.take_batch(2, usize::MAX);
        assert_eq!(b.len(), 3);
        assert_eq!(values(batch), ["a", "b"]);
        b.confirm();
        assert_eq!(b.len(), 1);
        assert_eq!(values(b.take_batch(10, usize::MAX)), ["c"]);
    }

    #[test]
    fn frame_bound_drops_oldest() {
        let mut b = Backlog::new(3, 1 << 20);
        assert_eq!(b.push_back(["1", "2", "3", "4", "5"].map(e)), 2);
        assert_eq!(values(b.take_batch(10, usize::MAX)), ["3", "4", "5"]);
        // The in-flight batch counts in the length but is not evicted.
        assert_eq!(b.push_back(["6", "7", "8", "9"].map(e)), 1);
        assert_eq!(b.len(), 6);
        b.confirm();
        assert_eq!(values(b.take_batch(10, usize::MAX)), ["7", "8", "9"]);
    }

    #[test]
    fn byte_bound_drops_oldest_but_keeps_one() {
        let mut b = Backlog::new(100, 10);
        assert_eq!(b.push_back(["aaaa", "bbbb", "cccc"].map(e)), 1);
        assert_eq!(b.push_back(["x".repeat(50)].map(|s| e(&s))), 2);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn batch_byte_limit_takes_at_least_one() {
        let mut b = Backlog::new(100, 1 << 20);
        b.push_back(["aaaa", "bbbb", "cccc"].map(e));
        assert_eq!(values(b.take_batch(10, 2)), ["aaaa"]);
        b.confirm();
        assert_eq!(values(b.take_batch(10, 8)), ["bbbb", "cccc"]);
    }
}
