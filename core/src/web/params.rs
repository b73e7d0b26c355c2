//! Query parameters as the original reads them, with bounds it lacks.
//!
//! The dashboard's JavaScript sends epoch seconds with fractions (`Date.getTime()/1000`), and
//! the original falls back to "now" (or to the last 7 days) when a date is missing or
//! unreadable; integrations rely on that, so the fallbacks are kept. What the original leaves
//! unbounded (a range of 20,000 days, any `topNum`, any radius) is refused with a 400 here,
//! because one such request would otherwise occupy Redis for everyone.

use super::error::WebError;
use crate::clock::Clock;
use chrono::{DateTime, Datelike, Local, NaiveDate, NaiveDateTime, TimeZone, Timelike};

/// Longest date range a trending or geo query may span, in days (two years: the date pickers
/// offer any past day, and a yearly comparison is a real use).
pub const MAX_RANGE_DAYS: i64 = 731;
/// Largest `topNum`.
pub const MAX_TOP_NUM: i64 = 1000;
/// Longest accepted value of any one parameter (organisation names, labels).
pub const MAX_PARAM_LEN: usize = 2048;

/// The query string, first value of each name wins (as Flask's `request.args.get`).
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string (`+` is a space, percent escapes are decoded). A value that is
    /// not UTF-8 after decoding is replaced lossily, as Werkzeug does.
    pub fn parse(raw: Option<&str>) -> Result<Params, WebError> {
        let raw = raw.unwrap_or("");
        let pairs: Vec<(String, String)> = form_pairs(raw);
        if let Some((k, _)) = pairs.iter().find(|(_, v)| v.len() > MAX_PARAM_LEN) {
            return Err(WebError::bad(format!(
                "parameter {k} is longer than {MAX_PARAM_LEN} bytes"
            )));
        }
        Ok(Params(pairs))
    }

    /// Every value of a parameter given several times, in order (the live page's `f`).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding of one component.
pub fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-decoding only (`+` stays a plus), for cookie values.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A wall-clock instant in the server's local time zone, as Python's naive
/// `datetime.fromtimestamp` (microseconds kept).
pub fn local_naive(epoch: f64) -> Option<NaiveDateTime> {
    if !epoch.is_finite() || epoch.abs() > 253_402_300_799.0 {
        return None;
    }
    let secs = epoch.floor();
    let micros = ((epoch - secs) * 1e6).round() as u32;
    let (secs, micros) = if micros >= 1_000_000 {
        (secs as i64 + 1, 0)
    } else {
        (secs as i64, micros)
    };
    let dt = Local.timestamp_opt(secs, micros * 1000).single()?;
    let n = dt.naive_local();
    (1..=9999).contains(&n.year()).then_some(n)
}

/// Python's `float(s)` for the forms a client sends (surrounding blanks allowed).
pub fn parse_float(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

/// `date` as the original reads it: a float epoch, "now" when missing or unreadable.
pub fn date_or_now(p: &Params, name: &str, clock: &Clock) -> NaiveDateTime {
    p.get(name)
        .and_then(parse_float)
        .and_then(local_naive)
        .unwrap_or_else(|| now_naive(clock))
}

pub fn now_naive(clock: &Clock) -> NaiveDateTime {
    local_naive(clock.now_f64()).unwrap_or_default()
}

/// `YYYYMMDD` of a local wall-clock date.
pub fn day_key(d: &NaiveDateTime) -> String {
    format!("{}{:02}{:02}", d.year(), d.month(), d.day())
}

pub fn day_key_date(d: &NaiveDate) -> String {
    format!("{}{:02}{:02}", d.year(), d.month(), d.day())
}

/// Python's `int(time.mktime(dt.timetuple()))`: the epoch of a local wall-clock time, fractions
/// dropped. A wall-clock time skipped by a DST change is read with the offset before the change,
/// as `mktime` does.
pub fn mktime(d: &NaiveDateTime) -> i64 {
    let d = d.with_nanosecond(0).unwrap_or(*d);
    match Local.from_local_datetime(&d) {
        chrono::LocalResult::Single(t) => t.timestamp(),
        chrono::LocalResult::Ambiguous(a, _) => a.timestamp(),
        chrono::LocalResult::None => {
            let shifted = d + chrono::Duration::hours(1);
            Local
                .from_local_datetime(&shifted)
                .earliest()
                .map(|t: DateTime<Local>| t.timestamp() - 3600)
                .unwrap_or_else(|| d.and_utc().timestamp())
        }
    }
}

/// Whole days between two instants, floored (Python's `timedelta.days`).
pub fn days_between(start: &NaiveDateTime, end: &NaiveDateTime) -> i64 {
    let micros = (*end - *start).num_microseconds().unwrap_or(i64::MAX);
    micros.div_euclid(86_400_000_000)
}

/// `dateS`/`dateE` of the trending routes: both fall back to the last 7 days when either is
/// missing or unreadable. Returns `(start, end, number of days back from end)`.
pub fn trending_range(
    p: &Params,
    clock: &Clock,
) -> Result<(NaiveDateTime, NaiveDateTime, i64), WebError> {
    let parsed = p
        .get("dateS")
        .and_then(parse_float)
        .and_then(local_naive)
        .zip(p.get("dateE").and_then(parse_float).and_then(local_naive));
    let (s, e) = parsed.unwrap_or_else(|| {
        let now = now_naive(clock);
        (now - chrono::Duration::days(7), now)
    });
    let days = days_between(&s, &e);
    if days > MAX_RANGE_DAYS {
        return Err(WebError::bad(format!(
            "dateS..dateE spans {days} days; at most {MAX_RANGE_DAYS} are allowed"
        )));
    }
    Ok((s, e, days))
}

/// `topNum` (events, categories, tags): an integer, default 10, 1..=1000.
pub fn top_num(p: &Params) -> Result<usize, WebError> {
    match p.get("topNum") {
        None => Ok(10),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_TOP_NUM).contains(&n) => Ok(n as usize),
            _ => Err(WebError::bad(format!(
                "topNum must be a whole number from 1 to {MAX_TOP_NUM}"
            ))),
        },
    }
}

/// Every day of the month of `d`, first to last.
pub fn month_days(d: &NaiveDateTime) -> Vec<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d.date());
    let mut out = Vec::with_capacity(31);
    let mut cur = first;
    while cur.month() == first.month() {
        out.push(cur);
        match cur.succ_opt() {
            Some(n) => cur = n,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_is_form_decoding() {
        let p = Params::parse(Some("org=Lumen%20Media+CSIRT&org=x&date=1.5&e=%zz&bad=%4"))
            .expect("valid");
        assert_eq!(p.get("org"), Some("Lumen Media CSIRT"));
        assert_eq!(p.get("date"), Some("1.5"));
        assert_eq!(p.get("e"), Some("%zz"));
        assert_eq!(p.get("bad"), Some("%4"));
        assert_eq!(p.get("none"), None);
    }

    #[test]
    fn percent_decoding_keeps_plus() {
        assert_eq!(percent_decode("a+b%20c%2"), "a+b c%2");
    }

    #[test]
    fn timedelta_days_floor() {
        let a = NaiveDate::from_ymd_opt(2026, 11, 20)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("date");
        assert_eq!(days_between(&a, &(a + chrono::Duration::hours(36))), 1);
        assert_eq!(days_between(&a, &(a - chrono::Duration::hours(1))), -1);
        assert_eq!(days_between(&a, &a), 0);
    }

    #[test]
    fn month_has_its_days() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 10)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("date");
        assert_eq!(month_days(&d).len(), 29);
    }

    #[test]
    fn top_num_is_bounded() {
        let p = |q: &str| Params::parse(Some(q)).expect("parse");
        assert_eq!(top_num(&p("")).ok(), Some(10));
        assert_eq!(top_num(&p("topNum=5")).ok(), Some(5));
        assert!(top_num(&p("topNum=5.0")).is_err());
        assert!(top_num(&p("topNum=0")).is_err());
        assert!(top_num(&p("topNum=100000")).is_err());
    }
}
