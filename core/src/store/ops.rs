//! The write vocabulary of the rules, and how it becomes Redis commands.

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
    Del {
        db: Db,
        key: String,
    },
    Expire {
        db: Db,
        key: String,
        secs: i64,
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
    /// Remove `count` elements from the tail (the oldest of an LPUSH-fed list).
    RTrimCount {
        db: Db,
        key: String,
        count: usize,
    },
    Publish {
        channel: String,
        payload: String,
    },
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
            | Del { db, key }
            | Expire { db, key, .. }
            | LPush { db, key, .. }
            | LPushMany { db, key, .. }
            | LTrim { db, key, .. }
            | RTrimCount { db, key, .. } => Some((*db, key.as_str())),
            Publish { .. } => None,
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
            ZAddMany { items, .. } => items.iter().map(|(_, m)| m.len() + 24).sum(),
            GeoAddMany { items, .. } => items.iter().map(|(_, _, m)| m.len() + 40).sum(),
            SAddMany { members, .. } => members.iter().map(String::len).sum(),
            LPushMany { values, .. } => values.iter().map(String::len).sum(),
            HIncrBy { field, .. } => field.len(),
            _ => 0,
        };
        body + self.key().map_or(16, |(_, k)| k.len()) + 16
    }

    /// Appends this operation to a pipeline, selecting its database first when it differs from
    /// `current`. Returns the number of Redis commands added.
    pub fn append_to(
        &self,
        pipe: &mut redis::Pipeline,
        dbs: DbNumbers,
        current: &mut i64,
    ) -> usize {
        let mut n = 0;
        if let Some((db, _)) = self.key() {
            let want = dbs.number(db);
            if want != *current {
                pipe.cmd("SELECT").arg(want).ignore();
                *current = want;
                n += 1;
            }
        }
        use Op::*;
        match self {
            ZIncrBy {
                key, member, by, ..
            } => {
                pipe.cmd("ZINCRBY")
                    .arg(key)
                    .arg(num(*by))
                    .arg(member)
                    .ignore();
            }
            ZAdd {
                key, member, score, ..
            } => {
                pipe.cmd("ZADD")
                    .arg(key)
                    .arg(num(*score))
                    .arg(member)
                    .ignore();
            }
            ZAddMany { key, items, .. } => {
                let c = pipe.cmd("ZADD").arg(key);
                for (score, member) in items {
                    c.arg(num(*score)).arg(member);
                }
                c.ignore();
            }
            GeoAdd {
                key,
                lon,
                lat,
                member,
                ..
            } => {
                pipe.cmd("GEOADD")
                    .arg(key)
                    .arg(lon)
                    .arg(lat)
                    .arg(member)
                    .ignore();
            }
            GeoAddMany { key, items, .. } => {
                let c = pipe.cmd("GEOADD").arg(key);
                for (lon, lat, member) in items {
                    c.arg(lon).arg(lat).arg(member);
                }
                c.ignore();
            }
            SAdd { key, member, .. } => {
                pipe.cmd("SADD").arg(key).arg(member).ignore();
            }
            SAddMany { key, members, .. } => {
                pipe.cmd("SADD").arg(key).arg(members).ignore();
            }
            IncrBy { key, by, .. } => {
                pipe.cmd("INCRBY").arg(key).arg(*by).ignore();
            }
            HIncrBy { key, field, by, .. } => {
                pipe.cmd("HINCRBY").arg(key).arg(field).arg(*by).ignore();
            }
            Set { key, value, .. } => {
                pipe.cmd("SET").arg(key).arg(value).ignore();
            }
            Del { key, .. } => {
                pipe.cmd("DEL").arg(key).ignore();
            }
            Expire { key, secs, .. } => {
                pipe.cmd("EXPIRE").arg(key).arg(*secs).ignore();
            }
            LPush { key, value, .. } => {
                pipe.cmd("LPUSH").arg(key).arg(value).ignore();
            }
            LPushMany { key, values, .. } => {
                pipe.cmd("LPUSH").arg(key).arg(values).ignore();
            }
            LTrim {
                key, start, stop, ..
            } => {
                pipe.cmd("LTRIM").arg(key).arg(*start).arg(*stop).ignore();
            }
            RTrimCount { key, count, .. } => {
                // Keep everything but the `count` oldest (tail) elements.
                let stop = -(*count as i64) - 1;
                pipe.cmd("LTRIM").arg(key).arg(0).arg(stop).ignore();
            }
            Publish { channel, payload } => {
                pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
            }
        }
        n + 1
    }
}

/// Scores and increments as Redis reads them: integers without a fraction.
fn num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}
