//! The one source of "now" for the whole program.
//!
//! Day keys (`GEO_COORD:<day>`, `LOGIN_ORG:<day>`, …) and scores come from the clock, so the
//! differential tests need it pinned: `MISPDASH_FAKE_NOW=<epoch seconds>` freezes it, as the
//! oracle was recorded with a frozen clock. Days are local dates of the process's time zone
//! (`TZ`), as in the original, so a migrating installation keeps writing the same day keys.

use chrono::{DateTime, Local, TimeZone};
use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable that freezes the clock (a testing aid, documented in the README).
pub const FAKE_NOW_ENV: &str = "MISPDASH_FAKE_NOW";

/// Either the system clock or a frozen instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    frozen: Option<f64>,
}

impl Clock {
    /// The real clock.
    pub fn system() -> Self {
        Clock { frozen: None }
    }

    /// A clock stopped at `epoch` seconds.
    pub fn frozen(epoch: f64) -> Self {
        Clock {
            frozen: Some(epoch),
        }
    }

    /// The system clock unless `MISPDASH_FAKE_NOW` names a valid epoch. An invalid value is an
    /// error rather than silently ignored: a test that believes its clock is pinned must not run
    /// on the real one.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(FAKE_NOW_ENV) {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Clock::frozen)
                .ok_or_else(|| format!("{FAKE_NOW_ENV}={v:?} is not an epoch in seconds")),
            _ => Ok(Clock::system()),
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// Seconds since the epoch with sub-second precision (Python's `time.time()`).
    pub fn now_f64(&self) -> f64 {
        match self.frozen {
            Some(f) => f,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }

    /// Whole seconds since the epoch (Python's `int(time.time())`).
    pub fn now_epoch(&self) -> i64 {
        self.now_f64().floor() as i64
    }

    /// Today's day key, `YYYYMMDD` in local time.
    pub fn today(&self) -> String {
        day_of_epoch(self.now_f64()).unwrap_or_else(|| "19700101".into())
    }
}

/// The local date (`YYYYMMDD`) of an epoch, or `None` when it is outside the calendar range
/// (the original crashes on such timestamps; we skip what needs the date).
pub fn day_of_epoch(epoch: f64) -> Option<String> {
    use chrono::Datelike;
    let dt = local_datetime(epoch)?;
    // Python's datetime stops at year 9999; the original formats the year unpadded.
    if !(1..=9999).contains(&dt.year()) {
        return None;
    }
    Some(format!("{}{:02}{:02}", dt.year(), dt.month(), dt.day()))
}

/// The local date-time of an epoch (truncated to whole seconds, as `datetime.fromtimestamp`
/// dates are).
pub fn local_datetime(epoch: f64) -> Option<DateTime<Local>> {
    if !epoch.is_finite() || epoch.abs() > 1e13 {
        return None;
    }
    let secs = epoch.floor() as i64;
    Local.timestamp_opt(secs, 0).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_is_frozen() {
        let c = Clock::frozen(1795176000.0);
        assert_eq!(c.now_epoch(), 1795176000);
        assert!(c.is_frozen());
    }

    #[test]
    fn out_of_range_epochs_have_no_day() {
        assert_eq!(day_of_epoch(1e20), None);
        assert_eq!(day_of_epoch(f64::NAN), None);
    }
}
