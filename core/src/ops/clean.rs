//! `mispdash clean`: start the statistics from zero (the original's `clean.py`).
//!
//! Soft mode deletes exactly the original's key patterns ([`crate::keys::CLEAN_DATA_PATTERNS`])
//! and the buffer list, but in the *configured* databases: the original hard-codes dbs 2 and 3
//! and so cleans the wrong place on a non-default setup. Keys of other programs sharing the
//! database, the database version and mispdash's own bookkeeping stay, except the record of
//! what `backfill` counted, which goes with the statistics it describes (else a backfill after
//! a clean would count nothing).
//!
//! Brutal mode empties the dashboard's configured databases (`FLUSHDB` of each), where the
//! original's `FLUSHALL` also wipes every unrelated database of the server.
//!
//! Keys are found with `SCAN` (never `KEYS`, which blocks a large Redis for the whole walk) and
//! deleted batch by batch as they are found.

use super::{connect, is_dashboard_data_key, redis_err, OpsError};
use crate::config::Config;
use crate::redis_util::RedisTarget;
use indicatif::ProgressBar;

/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The dashboard's statistics and buffer only.
    Soft,
    /// Everything in the dashboard's databases.
    Brutal,
}

/// What was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Keys deleted, per database, in the order cleaned.
    pub per_db: Vec<(i64, u64)>,
    /// Keys looked at (soft mode).
    pub scanned: u64,
}

impl Summary {
    pub fn deleted(&self) -> u64 {
        self.per_db.iter().map(|(_, n)| n).sum()
    }
}

/// The dashboard's databases, each once: statistics, buffer, and the two used for publishing.
pub fn dashboard_dbs(cfg: &Config) -> Vec<i64> {
    let mut dbs = Vec::new();
    for db in [
        cfg.redis.data_db,
        cfg.redis.list_db,
        cfg.redis.log_db,
        cfg.redis.map_db,
    ] {
        if !dbs.contains(&db) {
            dbs.push(db);
        }
    }
    dbs
}

/// One sentence for the confirmation prompt: what will be deleted where.
pub fn describe(cfg: &Config, mode: Mode) -> String {
    let target = RedisTarget::from_config(&cfg.redis);
    match mode {
        Mode::Soft => format!(
            "Soft mode: delete the dashboard's statistics (GEO_*, CONTRIB_*, LOGIN_*, TRENDINGS_*, \
             TEMP_CACHE_LIVE:*, the rewind stream) in db {} and the buffer list {:?} in db {} of Redis {target}; \
             other keys stay",
            cfg.redis.data_db, cfg.redis.list_name, cfg.redis.list_db
        ),
        Mode::Brutal => {
            let dbs: Vec<String> = dashboard_dbs(cfg).iter().map(|d| d.to_string()).collect();
            format!(
                "Brutal mode: delete EVERY key of databases {} of Redis {target} (other databases stay)",
                dbs.join(", ")
            )
        }
    }
}

pub fn clean(cfg: &Config, mode: Mode, progress: &ProgressBar) -> Result<Summary, OpsError> {
    let target = RedisTarget::from_config(&cfg.redis);
    match mode {
        Mode::Soft => soft(cfg, &target, progress),
        Mode::Brutal => brutal(cfg, &target, progress),
    }
}

fn soft(cfg: &Config, target: &RedisTarget, progress: &ProgressBar) -> Result<Summary, OpsError> {
    let data_db = cfg.redis.data_db;
    let err = redis_err(target, data_db);
    let mut conn = connect(target, data_db)?;
    let size: u64 = redis::cmd("DBSIZE").query(&mut conn).map_err(&err)?;
    progress.set_length(size);
    progress.set_message(format!("scanning db {data_db}"));
    let mut summary = Summary::default();
    let mut deleted = 0u64;
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query(&mut conn)
            .map_err(&err)?;
        summary.scanned += batch.len() as u64;
        let doomed: Vec<&Vec<u8>> = batch.iter().filter(|k| is_dashboard_data_key(k)).collect();
        if !doomed.is_empty() {
            let n: u64 = redis::cmd("DEL")
                .arg(doomed)
                .query(&mut conn)
                .map_err(&err)?;
            deleted += n;
        }
        progress.inc(batch.len() as u64);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    summary.per_db.push((data_db, deleted));

    let list_db = cfg.redis.list_db;
    let err = redis_err(target, list_db);
    let mut conn = connect(target, list_db)?;
    let n: u64 = redis::cmd("DEL")
        .arg(&cfg.redis.list_name)
        .query(&mut conn)
        .map_err(&err)?;
    match summary.per_db.iter_mut().find(|(db, _)| *db == list_db) {
        Some((_, d)) => *d += n,
        None => summary.per_db.push((list_db, n)),
    }
    progress.finish_with_message("done");
    Ok(summary)
}

fn brutal(cfg: &Config, target: &RedisTarget, progress: &ProgressBar) -> Result<Summary, OpsError> {
    let dbs = dashboard_dbs(cfg);
    progress.set_length(dbs.len() as u64);
    let mut summary = Summary::default();
    for db in dbs {
        progress.set_message(format!("flushing db {db}"));
        let err = redis_err(target, db);
        let mut conn = connect(target, db)?;
        let size: u64 = redis::cmd("DBSIZE").query(&mut conn).map_err(&err)?;
        redis::cmd("FLUSHDB").query::<()>(&mut conn).map_err(&err)?;
        summary.per_db.push((db, size));
        progress.inc(1);
    }
    progress.finish_with_message("done");
    Ok(summary)
}
