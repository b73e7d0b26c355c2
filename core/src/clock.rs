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

/// The IANA name of the zone local times are in (`Europe/Brussels`), for pages that must label
/// days and hours as the day keys count them, daylight-saving changes included: `TZ` when it
/// names a zone of the system's database, else the system's zone (`/etc/localtime`). `None`
/// when neither names one (a POSIX rule in `TZ`, say): pages then use the offset at "now".
pub fn zone_name() -> Option<String> {
    match std::env::var("TZ") {
        Ok(tz) if !tz.trim().is_empty() => zone_of_tz(tz.trim()),
        _ => iana_time_zone::get_timezone()
            .ok()
            .filter(|z| !z.is_empty()),
    }
}

/// The zone `TZ` names, as glibc reads it: an optional `:`, then a file of the zone database
/// (a name under `TZDIR` or `/usr/share/zoneinfo`, or an absolute path into it).
fn zone_of_tz(tz: &str) -> Option<String> {
    let tz = tz.strip_prefix(':').unwrap_or(tz);
    let dir = std::env::var("TZDIR").unwrap_or_else(|_| "/usr/share/zoneinfo".into());
    let name = match tz.strip_prefix('/') {
        Some(_) => {
            let (_, rest) = tz.split_once("/zoneinfo/")?;
            rest.to_string()
        }
        None => tz.to_string(),
    };
    // "posix/Europe/Brussels" and "right/…" are the same zones.
    let name = name
        .strip_prefix("posix/")
        .or_else(|| name.strip_prefix("right/"))
        .unwrap_or(&name)
        .to_string();
    let valid = !name.is_empty()
        && !name.split('/').any(|p| p.is_empty() || p == "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    (valid && std::path::Path::new(&dir).join(&name).is_file()).then_some(name)
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
    fn zone_names_from_tz() {
        if !std::path::Path::new("/usr/share/zoneinfo/Europe/Brussels").is_file() {
            return;
        }
        assert_eq!(
            zone_of_tz("Europe/Brussels").as_deref(),
            Some("Europe/Brussels")
        );
        assert_eq!(
            zone_of_tz(":/usr/share/zoneinfo/posix/Europe/Brussels").as_deref(),
            Some("Europe/Brussels")
        );
        assert_eq!(zone_of_tz("CET-1CEST,M3.5.0,M10.5.0/3"), None);
        assert_eq!(zone_of_tz("../../etc/passwd"), None);
        assert_eq!(zone_of_tz("Nowhere/Atlantis"), None);
    }

    #[test]
    fn out_of_range_epochs_have_no_day() {
        assert_eq!(day_of_epoch(1e20), None);
        assert_eq!(day_of_epoch(f64::NAN), None);
    }
}
