//! Administration commands: what an operator runs beside the dashboard, never inside it.
//!
//! * [`selftest`]: finds why "nothing shows up" (configuration, Redis, MISP's ZeroMQ feed,
//!   subscriber, dispatcher, GeoIP database, web port), the job of the original's
//!   `diagnostic.py`, with a cause and a fix for every failure instead of a maintainer's
//!   reading of its output.
//! * [`clean`]: deletes the dashboard's statistics (the original's `clean.py`), in the
//!   configured databases only.
//! * [`rebuild_geo`]: re-resolves the stored geolocation input with the current GeoIP database.
//! * [`corpus`]: JSON Lines corpora (the format of the shared `gen_corpus.py`): `replay` into
//!   the buffer and `record` of a live feed.
//! * [`dead_letters`]: lists what was set aside and puts it back in the buffer.
//! * [`geo_reload`]: the running dashboard's pick-up of a replaced GeoIP file.
//!
//! Long operations report through an [`indicatif::ProgressBar`] handed in by the caller; a
//! hidden bar ([`indicatif::ProgressBar::hidden`]) makes them silent for tests and scripts.

pub mod clean;
pub mod corpus;
pub mod dead_letters;
pub mod geo_reload;
pub mod rebuild_geo;
pub mod selftest;

use crate::redis_util::RedisTarget;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Why an administration command could not do its work.
#[derive(Debug, Error)]
pub enum OpsError {
    #[error("Redis at {target} db {db}: {source}")]
    Redis {
        target: String,
        db: i64,
        source: redis::RedisError,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: line {line}: {reason}", .path.display())]
    Corpus {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(transparent)]
    Geo(#[from] crate::geoip::GeoError),
    #[error("ZeroMQ {endpoint}: {reason}")]
    Zmq { endpoint: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// A Redis connection for an administration command, with timeouts so a dead server gives an
/// error instead of a hang, and errors that name the server and database.
pub(crate) fn connect(target: &RedisTarget, db: i64) -> Result<redis::Connection, OpsError> {
    let err = |source| OpsError::Redis {
        target: target.to_string(),
        db,
        source,
    };
    let conn = target.connect(db).map_err(err)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    conn.set_write_timeout(Some(Duration::from_secs(60)))
        .map_err(err)?;
    Ok(conn)
}

/// Wraps a Redis error with the server and database it came from.
pub(crate) fn redis_err(target: &RedisTarget, db: i64) -> impl Fn(redis::RedisError) -> OpsError {
    let target = target.to_string();
    move |source| OpsError::Redis {
        target: target.clone(),
        db,
        source,
    }
}

/// Whether `key` matches a pattern of [`crate::keys::CLEAN_DATA_PATTERNS`]: a literal, or a
/// prefix followed by one trailing `*` (the only glob those patterns use).
pub fn pattern_matches(pattern: &str, key: &[u8]) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix.as_bytes()),
        None => key == pattern.as_bytes(),
    }
}

/// Whether `key` is one of the dashboard's statistics keys (what soft `clean` deletes).
pub fn is_dashboard_data_key(key: &[u8]) -> bool {
    crate::keys::CLEAN_DATA_PATTERNS
        .iter()
        .any(|p| pattern_matches(p, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_redis_globs() {
        assert!(pattern_matches("GEO_COORD:*", b"GEO_COORD:20261120"));
        assert!(pattern_matches("CONTRIB_TROPHY:*", b"CONTRIB_TROPHY:"));
        assert!(!pattern_matches("GEO_COORD:*", b"GEO_COORDS"));
        assert!(pattern_matches("LOGIN_ALL_ORG", b"LOGIN_ALL_ORG"));
        assert!(!pattern_matches("LOGIN_ALL_ORG", b"LOGIN_ALL_ORGS"));
        assert!(is_dashboard_data_key(b"TEMP_CACHE_LIVE:Attribute"));
        assert!(!is_dashboard_data_key(b"db_version"));
        assert!(!is_dashboard_data_key(b"MISPDASH_DISPATCH"));
        assert!(!is_dashboard_data_key(b"bufferList"));
    }
}
