//! The write vocabulary of the rules, and how it becomes Redis commands.

use bytes::Bytes;
use std::ops::Range;

/// Which configured database a key lives in. Publications are not tied to a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Db {
    /// `[RedisDB] db`: statistics and live caches.
    Data,
    /// `[RedisLIST] db`: the buffer, its processing and dead-letter lists, diagnostics.
    List,
}

/// The configured numbers behind [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbNumbers {
    pub data: i64,
    pub list: i64,
}

impl DbNumbers {
    pub fn number(&self, db: Db) -> i64 {
        match db {
            Db::Data => self.data,
            Db::List => self.list,
        }
    }
}

/// [`Op::TrimBytes`]: sums the newest entries' sizes and trims after the last that fits.
const TRIM_BYTES_LUA: &str = "local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1) \
local budget, keep = tonumber(ARGV[2]), 0 \
for i, v in ipairs(items) do budget = budget - #v; if budget < 0 then break end; keep = i end \
if keep < #items then if keep == 0 then redis.call('DEL', KEYS[1]) else redis.call('LTRIM', KEYS[1], 0, keep - 1) end end \
return keep";

/// One write or publication. The `*Many` forms are produced by coalescing.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    ZIncrBy {
        db: Db,
        key: String,
        member: String,
        by: f64,
    },
    ZAdd {
        db: Db,
        key: String,
        member: String,
        score: f64,
    },
    ZAddMany {
        db: Db,
        key: String,
        items: Vec<(f64, String)>,
    },
    /// `lon`/`lat` as the text Redis parses, so a phone centroid's string reaches Redis as the
    /// original sends it.
    GeoAdd {
        db: Db,
        key: String,
        lon: String,
        lat: String,
        member: String,
    },
    GeoAddMany {
        db: Db,
        key: String,
        items: Vec<(String, String, String)>,
    },
    SAdd {
        db: Db,
        key: String,
        member: String,
    },
    SAddMany {
        db: Db,
        key: String,
        members: Vec<String>,
    },
    IncrBy {
        db: Db,
        key: String,
        by: i64,
    },
    HIncrBy {
        db: Db,
        key: String,
        field: String,
        by: i64,
    },
    Set {
        db: Db,
        key: String,
        value: String,
    },
    HDel {
        db: Db,
        key: String,
        field: String,
    },
    /// Hash fields set (the coalesced form of single-field sets: the last value wins).
    HSet {
        db: Db,
        key: String,
        fields: Vec<(String, String)>,
    },
    /// Files `value` in a dead-letter list kept within `max_entries` and `max_bytes` (oldest
    /// dropped first), its size in all kept in `counter` (see `dead_letter::DEAD_PUSH_LUA`).
    DeadLetter {
        db: Db,
        key: String,
        counter: String,
        value: String,
        max_entries: usize,
        max_bytes: usize,
    },
    Del {
        db: Db,
        key: String,
    },
    Expire {
        db: Db,
        key: String,
        secs: i64,
    },
    /// `ZREMRANGEBYSCORE key -inf (below`: members scored before `below`.
    ZRemBelow {
        db: Db,
        key: String,
        below: i64,
    },
    LPush {
        db: Db,
        key: String,
        value: String,
    },
    LPushMany {
        db: Db,
        key: String,
        values: Vec<String>,
    },
    /// Keep elements `0..=stop` (stop inclusive, as LTRIM).
    LTrim {
        db: Db,
        key: String,
        start: isize,
        stop: isize,
    },
    /// Keep the longest run of newest elements that holds at most `max_bytes` in all (an
    /// entry larger than that alone empties the list). Used after an [`Op::LTrim`], so it
    /// reads at most that many elements.
    TrimBytes {
        db: Db,
        key: String,
        max_entries: usize,
        max_bytes: usize,
    },
    /// Remove `count` elements from the tail (the oldest of an LPUSH-fed list).
    RTrimCount {
        db: Db,
        key: String,
        count: usize,
    },
    /// A live-log cache entry; see [`LiveEntry`].
    LPushLive {
        db: Db,
        key: String,
        entry: LiveEntry,
    },
    /// An entry of the rewind stream (`crate::rewind`): `field` is `rewind::ROW` or
    /// `rewind::POINT`, `at_ms` the dispatcher's clock when the message was handled. Its size
    /// is counted in `keys::REWIND_BYTES`.
    RewindAdd {
        db: Db,
        key: String,
        at_ms: u64,
        field: &'static str,
        value: String,
    },
    /// The coalesced form of [`Op::RewindAdd`], oldest first: one script for a batch.
    RewindAddMany {
        db: Db,
        key: String,
        entries: Vec<(u64, &'static str, String)>,
    },
    /// Drops the rewind stream's entries older than `min_ms` and the oldest beyond
    /// `max_bytes` (`rewind::TRIM_LUA`).
    RewindTrim {
        db: Db,
        key: String,
        min_ms: u64,
        max_bytes: usize,
    },
    /// The payload is shared (not copied) with the live-cache entry that repeats it.
    Publish {
        channel: String,
        payload: Bytes,
    },
}

/// A live-log cache entry, held as the publication it repeats: `{"name", "log", "zmqName"}`
/// with the document `log` carries as a string in the publication and as an object in the
/// cache. Most entries are pushed only to be dropped by the batch's trim of the cache (it keeps
/// 101), so the cached spelling is only written out for those that reach Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEntry {
    payload: Bytes,
    /// Where the `log` string's content lies in `payload`, between its quotes.
    log: Range<usize>,
}

impl LiveEntry {
    /// `payload[log]` must be the content of a JSON string literal in `payload` that holds
    /// printable-ASCII JSON text (what `pyjson` writes), so its only escapes are `\"` and `\\`.
    pub fn new(payload: Bytes, log: Range<usize>) -> Self {
        LiveEntry { payload, log }
    }

    /// The cached spelling: the publication with its `log` string replaced by the document.
    pub fn cached(&self) -> String {
        let p = &self.payload[..];
        let (Some(head), Some(inner), Some(tail)) = (
            self.log.start.checked_sub(1).and_then(|s| p.get(..s)),
            p.get(self.log.clone()),
            p.get(self.log.end + 1..),
        ) else {
            return String::from_utf8_lossy(p).into_owned();
        };
        let mut out = Vec::with_capacity(p.len());
        out.extend_from_slice(head);
        let mut escaped = false;
        for &b in inner {
            if b == b'\\' && !escaped {
                escaped = true;
                continue;
            }
            escaped = false;
            out.push(b);
        }
        out.extend_from_slice(tail);
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    pub fn len(&self) -> usize {
        self.payload.len()
    }

    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
}

impl Op {
    /// The key an operation touches, if any.
    pub fn key(&self) -> Option<(Db, &str)> {
        use Op::*;
        match self {
            ZIncrBy { db, key, .. }
            | ZAdd { db, key, .. }
            | ZAddMany { db, key, .. }
            | GeoAdd { db, key, .. }
            | GeoAddMany { db, key, .. }
            | SAdd { db, key, .. }
            | SAddMany { db, key, .. }
            | IncrBy { db, key, .. }
            | HIncrBy { db, key, .. }
            | Set { db, key, .. }
            | HDel { db, key, .. }
            | HSet { db, key, .. }
            | DeadLetter { db, key, .. }
            | Del { db, key }
            | Expire { db, key, .. }
            | ZRemBelow { db, key, .. }
            | LPush { db, key, .. }
            | LPushMany { db, key, .. }
            | LPushLive { db, key, .. }
            | LTrim { db, key, .. }
            | TrimBytes { db, key, .. }
            | RTrimCount { db, key, .. }
            | RewindAdd { db, key, .. }
            | RewindAddMany { db, key, .. }
            | RewindTrim { db, key, .. } => Some((*db, key.as_str())),
            Publish { .. } => None,
        }
    }

    /// The Redis command it is written as, for messages.
    pub fn command_name(&self) -> &'static str {
        use Op::*;
        match self {
            ZIncrBy { .. } => "ZINCRBY",
            ZAdd { .. } | ZAddMany { .. } => "ZADD",
            GeoAdd { .. } | GeoAddMany { .. } => "GEOADD",
            SAdd { .. } | SAddMany { .. } => "SADD",
            IncrBy { .. } => "INCRBY",
            HIncrBy { .. } => "HINCRBY",
            Set { .. } => "SET",
            HDel { .. } => "HDEL",
            HSet { .. } => "HSET",
            Del { .. } => "DEL",
            Expire { .. } => "EXPIRE",
            ZRemBelow { .. } => "ZREMRANGEBYSCORE",
            LPush { .. } | LPushMany { .. } | LPushLive { .. } => "LPUSH",
            LTrim { .. } | RTrimCount { .. } => "LTRIM",
            TrimBytes { .. }
            | DeadLetter { .. }
            | RewindAdd { .. }
            | RewindAddMany { .. }
            | RewindTrim { .. } => "EVAL",
            Publish { .. } => "PUBLISH",
        }
    }

    /// Roughly what the operation weighs in a pipeline, to bound a transaction's size.
    pub fn approx_bytes(&self) -> usize {
        use Op::*;
        let body = match self {
            ZIncrBy { member, .. } | ZAdd { member, .. } | SAdd { member, .. } => member.len(),
            GeoAdd { member, .. } => member.len() + 40,
            Set { value, .. } | LPush { value, .. } => value.len(),
            Publish { payload, .. } => payload.len(),
            LPushLive { entry, .. } => entry.len(),
            ZAddMany { items, .. } => items.iter().map(|(_, m)| m.len() + 24).sum(),
            GeoAddMany { items, .. } => items.iter().map(|(_, _, m)| m.len() + 40).sum(),
            SAddMany { members, .. } => members.iter().map(String::len).sum(),
            LPushMany { values, .. } => values.iter().map(String::len).sum(),
            HIncrBy { field, .. } | HDel { field, .. } => field.len(),
            HSet { fields, .. } => fields.iter().map(|(f, v)| f.len() + v.len()).sum(),
            DeadLetter { value, .. } => value.len() + crate::dead_letter::DEAD_PUSH_LUA.len(),
            RewindAdd { value, .. } => value.len() + 24,
            RewindAddMany { entries, .. } => {
                entries.iter().map(|(_, _, v)| v.len() + 24).sum::<usize>()
                    + crate::rewind::APPEND_LUA.len()
            }
            RewindTrim { .. } => crate::rewind::TRIM_LUA.len(),
            _ => 0,
        };
        body + self.key().map_or(16, |(_, k)| k.len()) + 16
    }

    /// Appends this operation's command(s) to `out`, preceded by a SELECT when the operation's
    /// database is not the one the transaction is in (`current`).
    fn write_resp(&self, out: &mut Resp, dbs: DbNumbers, current: &mut i64) {
        if let Some((db, _)) = self.key() {
            let want = dbs.number(db);
            if want != *current {
                out.command_n(2, &[b"SELECT"]).int(want);
                *current = want;
            }
        }
        use Op::*;
        match self {
            ZIncrBy {
                key, member, by, ..
            } => {
                out.command_n(4, &[b"ZINCRBY", key.as_bytes()])
                    .float(*by)
                    .arg(member.as_bytes());
            }
            ZAdd {
                key, member, score, ..
            } => {
                out.command_n(4, &[b"ZADD", key.as_bytes()])
                    .float(*score)
                    .arg(member.as_bytes());
            }
            ZAddMany { key, items, .. } => {
                out.command_n(2 + 2 * items.len(), &[b"ZADD", key.as_bytes()]);
                for (score, member) in items {
                    out.float(*score).arg(member.as_bytes());
                }
            }
            GeoAdd {
                key,
                lon,
                lat,
                member,
                ..
            } => {
                out.command(&[
                    b"GEOADD",
                    key.as_bytes(),
                    lon.as_bytes(),
                    lat.as_bytes(),
                    member.as_bytes(),
                ]);
            }
            GeoAddMany { key, items, .. } => {
                out.command_n(2 + 3 * items.len(), &[b"GEOADD", key.as_bytes()]);
                for (lon, lat, member) in items {
                    out.arg(lon.as_bytes())
                        .arg(lat.as_bytes())
                        .arg(member.as_bytes());
                }
            }
            SAdd { key, member, .. } => {
                out.command(&[b"SADD", key.as_bytes(), member.as_bytes()]);
            }
            SAddMany { key, members, .. } => {
                out.command_n(2 + members.len(), &[b"SADD", key.as_bytes()]);
                for m in members {
                    out.arg(m.as_bytes());
                }
            }
            IncrBy { key, by, .. } => {
                out.command_n(3, &[b"INCRBY", key.as_bytes()]).int(*by);
            }
            HIncrBy { key, field, by, .. } => {
                out.command_n(4, &[b"HINCRBY", key.as_bytes(), field.as_bytes()])
                    .int(*by);
            }
            Set { key, value, .. } => {
                out.command(&[b"SET", key.as_bytes(), value.as_bytes()]);
            }
            Del { key, .. } => {
                out.command(&[b"DEL", key.as_bytes()]);
            }
            HSet { key, fields, .. } => {
                out.command_n(2 + 2 * fields.len(), &[b"HSET", key.as_bytes()]);
                for (f, v) in fields {
                    out.arg(f.as_bytes()).arg(v.as_bytes());
                }
            }
            HDel { key, field, .. } => {
                out.command(&[b"HDEL", key.as_bytes(), field.as_bytes()]);
            }
            DeadLetter {
                key,
                counter,
                value,
                max_entries,
                max_bytes,
                ..
            } => {
                out.command_n(
                    8,
                    &[
                        b"EVAL",
                        crate::dead_letter::DEAD_PUSH_LUA.as_bytes(),
                        b"2",
                        key.as_bytes(),
                        counter.as_bytes(),
                        value.as_bytes(),
                    ],
                )
                .int(*max_entries as i64)
                .int(*max_bytes as i64);
            }
            Expire { key, secs, .. } => {
                out.command_n(3, &[b"EXPIRE", key.as_bytes()]).int(*secs);
            }
            ZRemBelow { key, below, .. } => {
                let below = format!("({below}");
                out.command(&[
                    b"ZREMRANGEBYSCORE",
                    key.as_bytes(),
                    b"-inf",
                    below.as_bytes(),
                ]);
            }
            LPush { key, value, .. } => {
                out.command(&[b"LPUSH", key.as_bytes(), value.as_bytes()]);
            }
            LPushMany { key, values, .. } => {
                out.command_n(2 + values.len(), &[b"LPUSH", key.as_bytes()]);
                for v in values {
                    out.arg(v.as_bytes());
                }
            }
            LTrim {
                key, start, stop, ..
            } => {
                out.command_n(4, &[b"LTRIM", key.as_bytes()])
                    .int(*start as i64)
                    .int(*stop as i64);
            }
            TrimBytes {
                key,
                max_entries,
                max_bytes,
                ..
            } => {
                out.command_n(
                    6,
                    &[b"EVAL", TRIM_BYTES_LUA.as_bytes(), b"1", key.as_bytes()],
                )
                .int(*max_entries as i64)
                .int(*max_bytes as i64);
            }
            RTrimCount { key, count, .. } => {
                // Keep everything but the `count` oldest (tail) elements.
                let stop = -(*count as i64) - 1;
                out.command_n(4, &[b"LTRIM", key.as_bytes()])
                    .int(0)
                    .int(stop);
            }
            LPushLive { key, entry, .. } => {
                out.command(&[b"LPUSH", key.as_bytes(), entry.cached().as_bytes()]);
            }
            RewindAdd {
                key,
                at_ms,
                field,
                value,
                ..
            } => {
                rewind_append(
                    out,
                    key,
                    std::iter::once((*at_ms, *field, value.as_str())),
                    1,
                );
            }
            RewindAddMany { key, entries, .. } => {
                rewind_append(
                    out,
                    key,
                    entries.iter().map(|(ms, f, v)| (*ms, *f, v.as_str())),
                    entries.len(),
                );
            }
            RewindTrim {
                key,
                min_ms,
                max_bytes,
                ..
            } => {
                out.command_n(
                    7,
                    &[
                        b"EVAL",
                        crate::rewind::TRIM_LUA.as_bytes(),
                        b"2",
                        key.as_bytes(),
                        crate::keys::REWIND_BYTES.as_bytes(),
                    ],
                )
                .int(i64::try_from(*min_ms).unwrap_or(i64::MAX))
                .int(i64::try_from(*max_bytes).unwrap_or(i64::MAX));
            }
            Publish { channel, payload } => {
                out.command(&[b"PUBLISH", channel.as_bytes(), payload]);
            }
        }
    }
}

/// The script that appends `n` entries to the rewind stream `key` (`rewind::APPEND_LUA`).
fn rewind_append<'a>(
    out: &mut Resp,
    key: &str,
    entries: impl Iterator<Item = (u64, &'static str, &'a str)>,
    n: usize,
) {
    out.command_n(
        5 + 3 * n,
        &[
            b"EVAL",
            crate::rewind::APPEND_LUA.as_bytes(),
            b"2",
            key.as_bytes(),
            crate::keys::REWIND_BYTES.as_bytes(),
        ],
    );
    for (ms, field, value) in entries {
        out.int(i64::try_from(ms).unwrap_or(i64::MAX))
            .arg(field.as_bytes())
            .arg(value.as_bytes());
    }
}

/// Commands in the Redis protocol (RESP), appended to one buffer that is kept between batches.
///
/// redis-rs 0.27 can only build a command by copying every argument into a `Cmd` and then
/// copying it again when a pipeline is packed; at ingest rates that doubled every payload
/// (whole events in the live-log rows) and the fresh buffers cost page faults on each batch.
/// Writing the protocol directly into a reused buffer copies each payload once.
#[derive(Debug, Default)]
pub struct Resp {
    buf: Vec<u8>,
    commands: usize,
    /// For each command written by [`Resp::write_ops`], the index of its operation (`None`
    /// for the SELECTs between them), so a command Redis refused names its operation.
    owners: Vec<Option<usize>>,
}

impl Resp {
    /// Writes a batch's operations, each in its database, and ends in the list database, where
    /// the connection is kept between transactions.
    pub fn write_ops(&mut self, ops: &[Op], dbs: DbNumbers) {
        let mut current = dbs.list;
        for (i, op) in ops.iter().enumerate() {
            self.write_op(i, op, dbs, &mut current);
        }
        self.end_in_list(dbs, current);
    }

    /// Writes operation `i` of a batch (after a SELECT if it is in another database than
    /// `current`) and records that its commands are its own, so a refusal names it.
    fn write_op(&mut self, i: usize, op: &Op, dbs: DbNumbers, current: &mut i64) {
        op.write_resp(self, dbs, current);
        self.owners.resize(self.commands, None);
        if let Some(last) = self.owners.last_mut() {
            *last = Some(i);
        }
    }

    /// Goes back to the list database, where the connection is kept between transactions.
    fn end_in_list(&mut self, dbs: DbNumbers, current: i64) {
        if current != dbs.list {
            self.command_n(2, &[b"SELECT"]).int(dbs.list);
        }
    }

    /// Forgets the commands but keeps the buffer's capacity for the next batch.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.commands = 0;
        self.owners.clear();
    }

    pub fn commands(&self) -> usize {
        self.commands
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Gives the buffer back to the allocator once the batches are small again, so a burst
    /// (the backlog after a Redis outage fills 500-message batches of several MiB) does not
    /// pin its size for the life of the process: a wall-screen dashboard's RSS must come back
    /// down after a restart. `used` is the size of the batch just sent; the buffer keeps at
    /// most twice that (at least `floor`), and is only reallocated when it holds more than
    /// four times that, so a steady drain of similar batches never reallocates.
    pub fn shrink_after(&mut self, used: usize, floor: usize) {
        let keep = used.saturating_mul(2).max(floor);
        if self.buf.capacity() > keep.saturating_mul(2) {
            self.buf = Vec::with_capacity(keep);
        }
        if self.owners.capacity() > self.owners.len().max(1024) * 4 {
            self.owners.shrink_to(self.owners.len().max(1024));
        }
    }

    /// Starts a command whose arguments are exactly `args`.
    pub fn command(&mut self, args: &[&[u8]]) -> &mut Self {
        self.command_n(args.len(), args)
    }

    /// Starts a command of `argc` arguments, the first of which are `first`; the caller adds
    /// the rest.
    pub fn command_n(&mut self, argc: usize, first: &[&[u8]]) -> &mut Self {
        self.commands += 1;
        self.buf.push(b'*');
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(argc).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        for a in first {
            self.arg(a);
        }
        self
    }

    pub fn arg(&mut self, a: &[u8]) -> &mut Self {
        self.buf.push(b'$');
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(a);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    pub fn int(&mut self, n: i64) -> &mut Self {
        self.arg(itoa::Buffer::new().format(n).as_bytes())
    }

    /// Scores and increments as Redis reads them: integers without a fraction.
    pub fn float(&mut self, f: f64) -> &mut Self {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            self.int(f as i64)
        } else {
            self.arg(f.to_string().as_bytes())
        }
    }

    /// Runs the buffered commands as one MULTI/EXEC (the caller writes neither) and reports
    /// the first command error inside the transaction, as redis-rs's own transactions do. The
    /// buffer is cleared, keeping its capacity.
    /// Sends the commands as a plain pipeline (no transaction) and reads their replies; the
    /// first error reply is returned, else the sum of the integer replies (for PUBLISH, how
    /// many subscribers received the messages).
    pub fn exec_pipeline(&mut self, conn: &mut redis::Connection) -> redis::RedisResult<i64> {
        use redis::ConnectionLike;
        let n = self.commands;
        let result = conn
            .req_packed_commands(&self.buf, 0, n)
            .and_then(|replies| {
                replies.into_iter().try_fold(0i64, |sum, r| {
                    let r = r.extract_error()?;
                    Ok(sum + if let redis::Value::Int(i) = r { i } else { 0 })
                })
            });
        self.clear();
        result
    }

    pub fn exec_transaction(&mut self, conn: &mut redis::Connection) -> redis::RedisResult<()> {
        match self.exec_transaction_refusals(conn)?.into_iter().next() {
            Some(r) => Err(r.error),
            None => Ok(()),
        }
    }

    /// Runs the transaction; `Err` when it did not run (a connection error, or aborted), else
    /// the commands inside it that Redis refused (the others did run: MULTI/EXEC does not
    /// undo them), each with the index of the operation it was written for.
    pub fn exec_transaction_refusals(
        &mut self,
        conn: &mut redis::Connection,
    ) -> redis::RedisResult<Vec<Refusal>> {
        let result = (|| {
            // MULTI goes out on its own so the payload never has to move to make room for it;
            // its reply is read in order with the others.
            conn.send_packed_command(MULTI)?;
            self.finish_transaction(conn)
        })();
        self.clear();
        result
    }

    /// Runs `ops` as one MULTI/EXEC, as [`Resp::write_ops`] then
    /// [`Resp::exec_transaction_refusals`] do, but sends the protocol in pieces of about
    /// `piece` bytes while writing it. Redis queues a transaction's commands until EXEC, so
    /// this runs the same transaction; what changes is that a batch's protocol is never whole
    /// in memory. A 500-message batch's was 4-5 MiB, the largest block of the drain's heap.
    /// If the connection fails midway, Redis drops the unfinished transaction: nothing of it
    /// runs, as when the whole batch failed to go out.
    pub fn exec_ops_streamed(
        &mut self,
        conn: &mut redis::Connection,
        ops: &[Op],
        dbs: DbNumbers,
        piece: usize,
    ) -> redis::RedisResult<Streamed> {
        self.clear();
        let mut sent = 0;
        let mut largest = 0;
        let result = (|| {
            conn.send_packed_command(MULTI)?;
            let mut current = dbs.list;
            for (i, op) in ops.iter().enumerate() {
                self.write_op(i, op, dbs, &mut current);
                if self.buf.len() >= piece {
                    conn.send_packed_command(&self.buf)?;
                    sent += self.buf.len();
                    largest = largest.max(self.buf.len());
                    self.buf.clear();
                }
            }
            self.end_in_list(dbs, current);
            let commands = self.commands;
            let refusals = self.finish_transaction(conn)?;
            // The last piece, EXEC included, is still in the buffer.
            sent += self.buf.len();
            largest = largest.max(self.buf.len());
            Ok(Streamed {
                refusals,
                commands,
                bytes: sent,
                largest_piece: largest,
            })
        })();
        self.clear();
        result
    }

    /// Appends EXEC to the commands queued after a MULTI already sent, sends what the buffer
    /// holds, and reads the replies: MULTI's, one per queued command, then EXEC's.
    fn finish_transaction(
        &mut self,
        conn: &mut redis::Connection,
    ) -> redis::RedisResult<Vec<Refusal>> {
        use redis::ConnectionLike;
        let queued = self.commands;
        self.command(&[b"EXEC"]);
        let mut replies = conn.req_packed_commands(&self.buf, queued + 1, 1)?;
        match replies.pop() {
            Some(redis::Value::Nil) => Err(redis::RedisError::from((
                redis::ErrorKind::ResponseError,
                "transaction aborted",
            ))),
            Some(redis::Value::Array(items)) => Ok(items
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.extract_error().err().map(|error| Refusal {
                        op: self.owners.get(i).copied().flatten(),
                        error,
                    })
                })
                .collect()),
            Some(reply) => reply.extract_error().map(|_| Vec::new()),
            None => Err(redis::RedisError::from((
                redis::ErrorKind::ResponseError,
                "no reply to EXEC",
            ))),
        }
    }
}

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";

/// What [`Resp::exec_ops_streamed`] ran.
#[derive(Debug)]
pub struct Streamed {
    /// The commands Redis refused inside the transaction (it ran the others).
    pub refusals: Vec<Refusal>,
    /// Commands queued, not counting MULTI and EXEC.
    pub commands: usize,
    /// Protocol bytes sent, MULTI excepted (EXEC included).
    pub bytes: usize,
    /// The most the buffer held at once: what it needs to keep for the next batch.
    pub largest_piece: usize,
}

/// A command of a transaction that Redis refused while running the others.
#[derive(Debug)]
pub struct Refusal {
    /// The index of the operation it was written for, if it was one.
    pub op: Option<usize>,
    pub error: redis::RedisError,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst's buffer is given back once batches are small again; a steady drain of similar
    /// batches keeps its buffer.
    #[test]
    fn the_buffer_shrinks_after_a_burst_and_not_during_a_drain() {
        let mut r = Resp::default();
        let big = vec![b'x'; 4 << 20];
        r.command(&[b"SET", b"k", &big]);
        let used = r.bytes().len();
        r.clear();
        r.shrink_after(used, 256 << 10);
        assert!(r.buf.capacity() >= used, "a drain's buffer was given back");
        r.command(&[b"SET", b"k", b"small"]);
        let used = r.bytes().len();
        r.clear();
        r.shrink_after(used, 256 << 10);
        assert_eq!(r.buf.capacity(), 256 << 10);
        r.shrink_after(used, 256 << 10);
        assert_eq!(
            r.buf.capacity(),
            256 << 10,
            "reallocated although already small"
        );
    }

    /// Reads the buffer back with redis-rs's own protocol parser: every command must be a
    /// well-formed array of bulk strings, with nothing left over.
    fn decode(bytes: &[u8]) -> Vec<Vec<String>> {
        // One byte per read, so the parser cannot read past the value it parses.
        struct ByteByByte<'a>(&'a [u8]);
        impl std::io::Read for ByteByByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match (self.0.split_first(), buf.first_mut()) {
                    (Some((b, rest)), Some(slot)) => {
                        *slot = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    _ => Ok(0),
                }
            }
        }
        let mut input = ByteByByte(bytes);
        let mut parser = redis::Parser::new();
        let mut out = Vec::new();
        while !input.0.is_empty() {
            match parser.parse_value(&mut input).expect("valid RESP") {
                redis::Value::Array(items) => out.push(
                    items
                        .into_iter()
                        .map(|i| match i {
                            redis::Value::BulkString(b) => String::from_utf8(b).expect("UTF-8"),
                            other => panic!("not a bulk string: {other:?}"),
                        })
                        .collect(),
                ),
                other => panic!("not a command: {other:?}"),
            }
        }
        out
    }

    #[test]
    fn a_live_entry_caches_the_document_its_publication_carries() {
        let doc = r#"{"a": "q\"b\\c", "n": [1, 2]}"#;
        let mut payload = String::from(r#"{"name": "Attribute", "log": "#);
        let mut quoted = String::new();
        crate::pyjson::write_str(&mut quoted, doc);
        let start = payload.len() + 1;
        payload.push_str(&quoted);
        let end = payload.len() - 1;
        payload.push_str(r#", "zmqName": "misp1"}"#);
        let entry = LiveEntry::new(Bytes::from(payload), start..end);
        assert_eq!(
            entry.cached(),
            format!(r#"{{"name": "Attribute", "log": {doc}, "zmqName": "misp1"}}"#)
        );
    }

    #[test]
    fn every_operation_encodes_to_its_command() {
        let dbs = DbNumbers { data: 2, list: 3 };
        let k = || "K".to_string();
        let cases: Vec<(Op, Vec<&str>)> = vec![
            (
                Op::ZIncrBy {
                    db: Db::Data,
                    key: k(),
                    member: "m é".into(),
                    by: 1.0,
                },
                vec!["ZINCRBY", "K", "1", "m é"],
            ),
            (
                Op::ZAdd {
                    db: Db::Data,
                    key: k(),
                    member: "m".into(),
                    score: 1.5,
                },
                vec!["ZADD", "K", "1.5", "m"],
            ),
            (
                Op::ZAddMany {
                    db: Db::Data,
                    key: k(),
                    items: vec![(2.0, "a".into()), (-3.25, "b".into())],
                },
                vec!["ZADD", "K", "2", "a", "-3.25", "b"],
            ),
            (
                Op::GeoAddMany {
                    db: Db::Data,
                    key: k(),
                    items: vec![("1.5".into(), "2.5".into(), "p".into())],
                },
                vec!["GEOADD", "K", "1.5", "2.5", "p"],
            ),
            (
                Op::SAddMany {
                    db: Db::Data,
                    key: k(),
                    members: vec!["a".into(), "".into()],
                },
                vec!["SADD", "K", "a", ""],
            ),
            (
                Op::IncrBy {
                    db: Db::Data,
                    key: k(),
                    by: -7,
                },
                vec!["INCRBY", "K", "-7"],
            ),
            (
                Op::HIncrBy {
                    db: Db::Data,
                    key: k(),
                    field: "f".into(),
                    by: 12,
                },
                vec!["HINCRBY", "K", "f", "12"],
            ),
            (
                Op::Expire {
                    db: Db::Data,
                    key: k(),
                    secs: 86400,
                },
                vec!["EXPIRE", "K", "86400"],
            ),
            (
                Op::ZRemBelow {
                    db: Db::Data,
                    key: k(),
                    below: 1760000000,
                },
                vec!["ZREMRANGEBYSCORE", "K", "-inf", "(1760000000"],
            ),
            (
                Op::LPushMany {
                    db: Db::Data,
                    key: k(),
                    values: vec!["x\r\ny".into(), "z".into()],
                },
                vec!["LPUSH", "K", "x\r\ny", "z"],
            ),
            (
                // The cached spelling: the publication's `log` string as the document it holds.
                Op::LPushLive {
                    db: Db::Data,
                    key: k(),
                    entry: LiveEntry::new(Bytes::from_static(br#"{"log": "{\"a\": 1}"}"#), 9..19),
                },
                vec!["LPUSH", "K", r#"{"log": {"a": 1}}"#],
            ),
            (
                Op::RewindAddMany {
                    db: Db::Data,
                    key: k(),
                    entries: vec![
                        (1_795_176_000_000, "row", "{}".into()),
                        (7, "point", "p".into()),
                    ],
                },
                vec![
                    "EVAL",
                    crate::rewind::APPEND_LUA,
                    "2",
                    "K",
                    "MISPDASH_REWIND:bytes",
                    "1795176000000",
                    "row",
                    "{}",
                    "7",
                    "point",
                    "p",
                ],
            ),
            (
                Op::RewindTrim {
                    db: Db::Data,
                    key: k(),
                    min_ms: 1_795_089_600_000,
                    max_bytes: 1024,
                },
                vec![
                    "EVAL",
                    crate::rewind::TRIM_LUA,
                    "2",
                    "K",
                    "MISPDASH_REWIND:bytes",
                    "1795089600000",
                    "1024",
                ],
            ),
            (
                Op::LTrim {
                    db: Db::Data,
                    key: k(),
                    start: 0,
                    stop: 100,
                },
                vec!["LTRIM", "K", "0", "100"],
            ),
            (
                Op::Publish {
                    channel: "1".into(),
                    payload: "{\"a\": 1}".into(),
                },
                vec!["PUBLISH", "1", "{\"a\": 1}"],
            ),
        ];
        for (op, want) in cases {
            let mut resp = Resp::default();
            let mut current = dbs.data;
            op.write_resp(&mut resp, dbs, &mut current);
            assert_eq!(decode(resp.bytes()), vec![want.clone()], "{op:?}");
            assert_eq!(resp.commands(), 1, "{op:?}");
        }
        // An operation on the other database is preceded by its SELECT, once.
        let mut resp = Resp::default();
        let mut current = dbs.data;
        let ack = Op::RTrimCount {
            db: Db::List,
            key: "P".into(),
            count: 5,
        };
        ack.write_resp(&mut resp, dbs, &mut current);
        ack.write_resp(&mut resp, dbs, &mut current);
        assert_eq!(
            decode(resp.bytes()),
            vec![
                vec!["SELECT", "3"],
                vec!["LTRIM", "P", "0", "-6"],
                vec!["LTRIM", "P", "0", "-6"]
            ]
        );
        assert_eq!(current, 3);
    }
}
