//! The store applies what the rules decided: a batch of writes and publications, coalesced,
//! in one MULTI/EXEC together with the batch's acknowledgement.
//!
//! Coalescing is what makes ingest fast (the original issues about 195 unpipelined commands per
//! message) and the single transaction is what makes it loss-free: the writes of a batch and
//! the removal of its messages from the processing list happen together or not at all.
//!
//! Coalescing must not change the final state, so it only merges commutative operations on the
//! same key (increments, set additions, sorted-set and geo upserts) and defers TTLs to the end of
//! the key's run; an order-sensitive operation on a key (SET, DEL, LPUSH, LTRIM) first flushes
//! what is pending for that key. Publications keep their order.

pub mod ops;

pub use ops::{Db, Op, Resp};

use indexmap::{Equivalent, IndexMap};

/// The batch's maps are hashed with foldhash: keys come from our own rules, not from an
/// adversary who could aim at collisions, and SipHash showed in the ingest profile.
type Map<K, V> = IndexMap<K, V, foldhash::fast::RandomState>;

/// A borrowed `(Db, key)`, so looking a key up does not allocate a copy of it. It hashes as
/// the owned pair does (tuple fields in order, `str` as `String`).
#[derive(Hash)]
struct KeyRef<'a>(Db, &'a str);

impl Equivalent<(Db, String)> for KeyRef<'_> {
    fn equivalent(&self, key: &(Db, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// A value waiting to be LPUSHed; a live-cache entry is only spelled out if it is sent.
enum Pushed {
    Text(String),
    Live(ops::LiveEntry),
}

impl Pushed {
    fn into_text(self) -> String {
        match self {
            Pushed::Text(s) => s,
            Pushed::Live(e) => e.cached(),
        }
    }
}

/// Pending commutative work on one key.
#[derive(Default)]
struct Pending {
    zincr: Map<String, f64>,
    zadd: Map<String, f64>,
    geo: Map<String, (String, String)>,
    sadd: Map<String, ()>,
    incr: Option<i64>,
    hincr: Map<String, i64>,
    hset: Map<String, String>,
    /// A SET (which also clears the TTL), applied before the other pending work.
    set: Option<String>,
    /// LPUSHed values in order; publications in between do not touch the list.
    lpush: Vec<Pushed>,
    /// Entries of the rewind stream in order (one script for the batch's).
    rewind: Vec<(u64, &'static str, String)>,
    expire: Option<i64>,
}

impl Pending {
    fn flush(self, db: Db, key: &str, out: &mut Vec<Op>) {
        let key = key.to_string();
        if let Some(value) = self.set {
            out.push(Op::Set {
                db,
                key: key.clone(),
                value,
            });
        }
        for (member, by) in self.zincr {
            out.push(Op::ZIncrBy {
                db,
                key: key.clone(),
                member,
                by,
            });
        }
        if !self.zadd.is_empty() {
            out.push(Op::ZAddMany {
                db,
                key: key.clone(),
                items: self.zadd.into_iter().map(|(m, s)| (s, m)).collect(),
            });
        }
        if !self.geo.is_empty() {
            out.push(Op::GeoAddMany {
                db,
                key: key.clone(),
                items: self
                    .geo
                    .into_iter()
                    .map(|(m, (lon, lat))| (lon, lat, m))
                    .collect(),
            });
        }
        if !self.sadd.is_empty() {
            out.push(Op::SAddMany {
                db,
                key: key.clone(),
                members: self.sadd.into_keys().collect(),
            });
        }
        if let Some(by) = self.incr {
            out.push(Op::IncrBy {
                db,
                key: key.clone(),
                by,
            });
        }
        if !self.lpush.is_empty() {
            out.push(Op::LPushMany {
                db,
                key: key.clone(),
                values: self.lpush.into_iter().map(Pushed::into_text).collect(),
            });
        }
        if !self.rewind.is_empty() {
            out.push(Op::RewindAddMany {
                db,
                key: key.clone(),
                entries: self.rewind,
            });
        }
        if !self.hset.is_empty() {
            out.push(Op::HSet {
                db,
                key: key.clone(),
                fields: self.hset.into_iter().collect(),
            });
        }
        for (field, by) in self.hincr {
            out.push(Op::HIncrBy {
                db,
                key: key.clone(),
                field,
                by,
            });
        }
        if let Some(secs) = self.expire {
            out.push(Op::Expire { db, key, secs });
        }
    }
}

/// A batch of operations being coalesced.
#[derive(Default)]
pub struct Batch {
    out: Vec<Op>,
    pending: Map<(Db, String), Pending>,
    ops_in: usize,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Operations received so far (before coalescing), for the commands-per-message figure.
    pub fn ops_in(&self) -> usize {
        self.ops_in
    }

    pub fn push(&mut self, op: Op) {
        self.ops_in += 1;
        match op {
            Op::ZIncrBy {
                db,
                key,
                member,
                by,
            } => {
                if self.has_pending(db, &key, |p| p.zadd.contains_key(&member)) {
                    self.flush_key(db, &key);
                }
                *self.pending_for(db, key).zincr.entry(member).or_insert(0.0) += by;
            }
            Op::ZAdd {
                db,
                key,
                member,
                score,
            } => {
                if self.has_pending(db, &key, |p| p.zincr.contains_key(&member)) {
                    self.flush_key(db, &key);
                }
                let p = self.pending_for(db, key);
                p.zadd.shift_remove(&member);
                p.zadd.insert(member, score);
            }
            Op::GeoAdd {
                db,
                key,
                lon,
                lat,
                member,
            } => {
                self.pending_for(db, key).geo.insert(member, (lon, lat));
            }
            Op::SAdd { db, key, member } => {
                self.pending_for(db, key).sadd.insert(member, ());
            }
            Op::IncrBy { db, key, by } => {
                let p = self.pending_for(db, key);
                match (&p.set, p.incr) {
                    // INCRBY after SET in the same batch: the sum is the value to set.
                    (Some(v), None) => match v.parse::<i64>() {
                        Ok(n) => p.set = Some((n + by).to_string()),
                        Err(_) => p.incr = Some(by),
                    },
                    (_, incr) => p.incr = Some(incr.unwrap_or(0) + by),
                }
            }
            Op::Set { db, key, value } => {
                let p = self.pending_for(db, key);
                // SET replaces the value and clears the TTL.
                p.incr = None;
                p.expire = None;
                p.set = Some(value);
            }
            Op::HSet { db, key, fields } => {
                let p = self.pending_for(db, key);
                for (f, v) in fields {
                    p.hset.shift_remove(&f);
                    p.hset.insert(f, v);
                }
            }
            Op::HIncrBy { db, key, field, by } => {
                *self.pending_for(db, key).hincr.entry(field).or_insert(0) += by;
            }
            Op::Expire { db, key, secs } => {
                self.pending_for(db, key).expire = Some(secs);
            }
            Op::LPush { db, key, value } => {
                self.pending_for(db, key).lpush.push(Pushed::Text(value));
            }
            Op::LPushLive { db, key, entry } => {
                self.pending_for(db, key).lpush.push(Pushed::Live(entry));
            }
            Op::RewindAdd {
                db,
                key,
                at_ms,
                field,
                value,
            } => {
                self.pending_for(db, key).rewind.push((at_ms, field, value));
            }
            Op::Publish { .. } => self.out.push(op),
            Op::LTrim {
                db,
                ref key,
                start: 0,
                stop,
            } if stop >= 0 => {
                // Pushes the trim would drop at once are never sent: of the values pushed since
                // the last flush, only the newest `stop + 1` can survive it.
                let keep = stop as usize + 1;
                if let Some(p) = self.pending.get_mut(&KeyRef(db, key)) {
                    if p.lpush.len() > keep {
                        p.lpush.drain(..p.lpush.len() - keep);
                    }
                }
                self.flush_key(db, key);
                self.out.push(op);
            }
            other => {
                if let Some((db, key)) = other.key() {
                    self.flush_key(db, key);
                }
                self.out.push(other);
            }
        }
    }

    pub fn extend(&mut self, ops: impl IntoIterator<Item = Op>) {
        for op in ops {
            self.push(op);
        }
    }

    fn pending_for(&mut self, db: Db, key: String) -> &mut Pending {
        self.pending.entry((db, key)).or_default()
    }

    fn has_pending(&self, db: Db, key: &str, f: impl Fn(&Pending) -> bool) -> bool {
        self.pending.get(&KeyRef(db, key)).map(f).unwrap_or(false)
    }

    fn flush_key(&mut self, db: Db, key: &str) {
        if let Some(p) = self.pending.shift_remove(&KeyRef(db, key)) {
            p.flush(db, key, &mut self.out);
        }
    }

    /// The coalesced operations, in an order whose final state equals applying the input in
    /// order.
    pub fn finish(mut self) -> Vec<Op> {
        let pending = std::mem::take(&mut self.pending);
        for ((db, key), p) in pending {
            p.flush(db, &key, &mut self.out);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zincr(key: &str, member: &str) -> Op {
        Op::ZIncrBy {
            db: Db::Data,
            key: key.into(),
            member: member.into(),
            by: 1.0,
        }
    }

    #[test]
    fn increments_merge_and_ttl_comes_last() {
        let mut b = Batch::new();
        b.push(zincr("K", "a"));
        b.push(Op::Expire {
            db: Db::Data,
            key: "K".into(),
            secs: 7,
        });
        b.push(zincr("K", "a"));
        b.push(zincr("K", "b"));
        let out = b.finish();
        assert_eq!(
            out,
            vec![
                Op::ZIncrBy {
                    db: Db::Data,
                    key: "K".into(),
                    member: "a".into(),
                    by: 2.0
                },
                zincr("K", "b"),
                Op::Expire {
                    db: Db::Data,
                    key: "K".into(),
                    secs: 7
                },
            ]
        );
    }

    #[test]
    fn sets_fold_increments_and_clear_ttls() {
        let k = |by| Op::IncrBy {
            db: Db::Data,
            key: "C".into(),
            by,
        };
        let set = |v: &str| Op::Set {
            db: Db::Data,
            key: "C".into(),
            value: v.into(),
        };
        let exp = Op::Expire {
            db: Db::Data,
            key: "C".into(),
            secs: 5,
        };
        let mut b = Batch::new();
        b.extend([k(1), set("9"), k(1)]);
        assert_eq!(b.finish(), vec![set("10")]);
        let mut b = Batch::new();
        b.extend([set("1"), exp.clone(), set("1")]);
        assert_eq!(b.finish(), vec![set("1")], "SET clears an earlier TTL");
        let mut b = Batch::new();
        b.extend([set("1"), exp.clone()]);
        assert_eq!(b.finish(), vec![set("1"), exp]);
    }

    #[test]
    fn pushes_a_trim_would_drop_are_not_sent() {
        let lp = |v: &str| Op::LPush {
            db: Db::Data,
            key: "L".into(),
            value: v.into(),
        };
        let trim = Op::LTrim {
            db: Db::Data,
            key: "L".into(),
            start: 0,
            stop: 1,
        };
        let mut b = Batch::new();
        b.extend([lp("a"), lp("b"), lp("c"), lp("d"), trim.clone()]);
        assert_eq!(
            b.finish(),
            vec![
                Op::LPushMany {
                    db: Db::Data,
                    key: "L".into(),
                    values: vec!["c".into(), "d".into()]
                },
                trim,
            ]
        );
    }

    /// A batch's rewind entries go in one script, in order, before the trim that follows them.
    #[test]
    fn rewind_entries_merge_in_order_before_their_trim() {
        let add = |ms: u64, v: &str| Op::RewindAdd {
            db: Db::Data,
            key: "R".into(),
            at_ms: ms,
            field: "row",
            value: v.into(),
        };
        let trim = Op::RewindTrim {
            db: Db::Data,
            key: "R".into(),
            min_ms: 5,
            max_bytes: 100,
        };
        let mut b = Batch::new();
        b.extend([add(9, "a"), add(10, "b"), trim.clone(), add(11, "c")]);
        assert_eq!(
            b.finish(),
            vec![
                Op::RewindAddMany {
                    db: Db::Data,
                    key: "R".into(),
                    entries: vec![(9, "row", "a".into()), (10, "row", "b".into())],
                },
                trim,
                Op::RewindAddMany {
                    db: Db::Data,
                    key: "R".into(),
                    entries: vec![(11, "row", "c".into())],
                },
            ]
        );
    }

    #[test]
    fn lists_merge_around_publications_and_trim_after_their_pushes() {
        let mut b = Batch::new();
        let lp = |v: &str| Op::LPush {
            db: Db::Data,
            key: "L".into(),
            value: v.into(),
        };
        let publ = |v: &str| Op::Publish {
            channel: "1".into(),
            payload: bytes::Bytes::copy_from_slice(v.as_bytes()),
        };
        let trim = Op::LTrim {
            db: Db::Data,
            key: "L".into(),
            start: 0,
            stop: 1,
        };
        b.extend([
            publ("p1"),
            lp("a"),
            lp("b"),
            publ("p2"),
            lp("c"),
            trim.clone(),
        ]);
        assert_eq!(
            b.finish(),
            vec![
                publ("p1"),
                publ("p2"),
                Op::LPushMany {
                    db: Db::Data,
                    key: "L".into(),
                    values: vec!["b".into(), "c".into()]
                },
                trim,
            ]
        );
    }
}
