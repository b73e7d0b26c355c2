//! `mispdash rebuild-geo`: after the GeoIP database is updated, place the stored points again.
//!
//! The original has no such command (spec §3.6): a new database only affects what arrives
//! afterwards, and the maps of past days keep the old placements. What the keyspace kept is
//! enough to redo them: `GEO_COORD:<day>` holds each IP value with its category and hit count,
//! and `GEO_RAD:<day>` each value (IP or phone number) with its category. For every day:
//!
//! * each IP member of `GEO_COORD` is looked up in the current database exactly as the
//!   dispatcher does (4-decimal rounding, registered-country centroid when the record has no
//!   location) and rewritten with its hit count; members that end up identical are merged by
//!   adding their counts, so the day's total is preserved. Phone members (centroid strings, no
//!   value) do not depend on the GeoIP database and are kept;
//! * `GEO_COUNTRY` is recomputed from those members: IPs count for the current database's
//!   country, phone points for the country whose centroid they are;
//! * each `GEO_RAD` member whose IP now resolves elsewhere is moved; the rest keep their
//!   position (and geohash) untouched.
//!
//! A value the current database cannot place any more keeps its old point (dropping it would
//! lose its hits for good); its country is then the one whose centroid is nearest to that
//! point, the best the stored data allows. The summary counts such values.
//!
//! Each day is rewritten in one `MULTI`/`EXEC` guarded by `WATCH`, so a running dispatcher
//! incrementing today's keys at the same moment makes the day be recomputed instead of losing
//! its increment. Running the command twice with the same database changes nothing the second
//! time; with the database the points were made with, it changes nothing at all.

use super::{connect, redis_err, OpsError};
use crate::config::Config;
use crate::geoip::{Centroids, GeoDb, IpLookup};
use crate::keys;
use crate::pyjson;
use crate::redis_util::RedisTarget;
use indicatif::ProgressBar;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Redis GEOADD's latitude limit (Web Mercator), as the dispatcher applies it.
const MAX_LAT: f64 = 85.05112878;
/// Two stored positions closer than this (degrees) are the same 4-decimal point: GEO_RAD keeps
/// positions as 52-bit geohashes, exact to about 5e-6 degrees.
const SAME_POINT: f64 = 5e-5;
/// Members per ZADD/GEOADD command.
const CHUNK: usize = 500;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// First day (`YYYYMMDD`), inclusive.
    pub from: Option<String>,
    /// Last day (`YYYYMMDD`), inclusive.
    pub to: Option<String>,
    /// Compute and report, write nothing.
    pub dry_run: bool,
}

/// What the rebuild found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Days with geolocation data in the range.
    pub days: usize,
    /// Days whose keys changed (or would change, in a dry run).
    pub days_rewritten: usize,
    /// IP points (value, category, day) now placed elsewhere.
    pub moved: usize,
    /// Of those, points that were a country centroid and now have a precise location.
    pub newly_resolved: usize,
    /// IP points the current database cannot place: kept where they were.
    pub unresolvable: usize,
    /// IP points already where the current database puts them.
    pub unchanged: usize,
    /// Phone-number points (not affected by the GeoIP database).
    pub phone_points: usize,
    /// Sum of the `GEO_COORD` hit counts, identical before and after.
    pub hits: f64,
    /// `GEO_RAD` entries moved.
    pub radius_moved: usize,
}

/// `YYYYMMDD` or `YYYY-MM-DD` → `YYYYMMDD`.
pub fn parse_day(s: &str) -> Result<String, OpsError> {
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    chrono::NaiveDate::parse_from_str(&digits, "%Y%m%d")
        .map(|d| d.format("%Y%m%d").to_string())
        .map_err(|_| OpsError::Invalid(format!("{s:?} is not a date (YYYY-MM-DD or YYYYMMDD)")))
}

/// Where the current database puts an IP value.
struct Placement {
    lat: f64,
    lon: f64,
    iso: Option<String>,
    /// From the record's own location, not a country centroid.
    precise: bool,
}

/// `float("{:.4f}".format(x))`, as the dispatcher rounds.
fn round4(x: f64) -> f64 {
    format!("{x:.4}").parse().unwrap_or(x)
}

fn valid_coord(lat: f64, lon: f64) -> bool {
    (-180.0..=180.0).contains(&lon) && (-MAX_LAT..=MAX_LAT).contains(&lat)
}

/// The dispatcher's IP placement (rules/geo.rs `from_ip`): the record's location, else the
/// registered country's centroid; rounded to 4 decimals; within Redis' GEO range.
fn place(geo: &GeoDb, centroids: &Centroids, ip: &str) -> Option<Placement> {
    let IpLookup::Found(rec) = geo.lookup(ip) else {
        return None;
    };
    let (lat, lon, precise) = match (rec.latitude, rec.longitude) {
        (Some(lat), Some(lon)) => (lat, lon, true),
        _ => {
            let c = centroids.get(rec.registered_iso.as_deref()?)?;
            (
                c.lat.trim().parse().ok()?,
                c.long.trim().parse().ok()?,
                false,
            )
        }
    };
    let (lat, lon) = (round4(lat), round4(lon));
    if !valid_coord(lat, lon) {
        return None;
    }
    Some(Placement {
        lat,
        lon,
        iso: rec.country_iso.or(rec.registered_iso),
        precise,
    })
}

/// Finds countries of stored points through the centroid table.
struct CountryOfPoint {
    points: Vec<(String, f64, f64)>,
}

impl CountryOfPoint {
    fn new(c: &Centroids) -> Self {
        let mut points: Vec<(String, f64, f64)> = c
            .iter()
            .filter_map(|(iso, p)| {
                Some((
                    iso.to_ascii_uppercase(),
                    p.lat.trim().parse().ok()?,
                    p.long.trim().parse().ok()?,
                ))
            })
            .collect();
        // Deterministic ties: real two-letter codes before the legacy pseudo-codes, then by code.
        points.sort_by(|a, b| {
            let pseudo = |s: &str| matches!(s, "AP" | "EU" | "AN");
            (pseudo(&a.0), &a.0).cmp(&(pseudo(&b.0), &b.0))
        });
        CountryOfPoint { points }
    }

    /// The country whose centroid is this point (preferring one the day already counted, when
    /// two countries share a centroid), else the nearest.
    fn of(&self, lat: f64, lon: f64, counted: &BTreeMap<String, f64>) -> Option<String> {
        let exact: Vec<&String> = self
            .points
            .iter()
            .filter(|(_, la, lo)| (la - lat).abs() < 1e-9 && (lo - lon).abs() < 1e-9)
            .map(|(iso, _, _)| iso)
            .collect();
        if let Some(iso) = exact
            .iter()
            .find(|iso| counted.contains_key(iso.as_str()))
            .or(exact.first())
        {
            return Some((*iso).clone());
        }
        self.points
            .iter()
            .min_by(|a, b| {
                let d = |p: &(String, f64, f64)| (p.1 - lat).powi(2) + (p.2 - lon).powi(2);
                d(a).total_cmp(&d(b))
            })
            .map(|(iso, _, _)| iso.clone())
    }
}

/// The new content of one day's keys.
#[derive(Default)]
struct DayPlan {
    coord: BTreeMap<String, f64>,
    country: BTreeMap<String, f64>,
    rad_keep: Vec<(Vec<u8>, f64)>,
    rad_add: Vec<(f64, f64, Vec<u8>)>,
    changed: bool,
    stats: Summary,
}

type Scored = Vec<(Vec<u8>, f64)>;

fn zrange(conn: &mut redis::Connection, key: &str) -> redis::RedisResult<Scored> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(conn)
}

fn as_f64(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn plan_day(
    conn: &mut redis::Connection,
    day: &str,
    geo: &GeoDb,
    centroids: &Centroids,
    country_of: &CountryOfPoint,
) -> redis::RedisResult<DayPlan> {
    let coord_old = zrange(conn, &keys::geo_coord(day))?;
    let country_old: BTreeMap<String, f64> = zrange(conn, &keys::geo_country(day))?
        .into_iter()
        .map(|(k, s)| (String::from_utf8_lossy(&k).into_owned(), s))
        .collect();
    let rad_old = zrange(conn, &keys::geo_rad(day))?;

    let mut plan = DayPlan::default();
    for (raw, hits) in &coord_old {
        plan.stats.hits += hits;
        let text = String::from_utf8_lossy(raw);
        let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            });
        let Some(obj) = parsed else {
            // Not ours to interpret: kept as it is, counted nowhere new.
            *plan.coord.entry(text.into_owned()).or_default() += hits;
            continue;
        };
        let old_lat = as_f64(obj.get("lat"));
        let old_lon = as_f64(obj.get("lon"));
        let ip = obj.get("value").and_then(Value::as_str);
        let placed = ip.and_then(|ip| place(geo, centroids, ip));
        match (ip, placed) {
            (Some(_), Some(p)) => {
                let member = pyjson::to_string(&pyjson::object([
                    ("lat", pyjson::float(p.lat)),
                    ("lon", pyjson::float(p.lon)),
                    ("categ", obj.get("categ").cloned().unwrap_or(Value::Null)),
                    ("value", obj.get("value").cloned().unwrap_or(Value::Null)),
                ]));
                if member.as_bytes() == raw.as_slice() {
                    plan.stats.unchanged += 1;
                } else {
                    plan.stats.moved += 1;
                    let was_centroid = match (old_lat, old_lon) {
                        (Some(la), Some(lo)) => country_of
                            .points
                            .iter()
                            .any(|(_, a, b)| (a - la).abs() < 1e-9 && (b - lo).abs() < 1e-9),
                        _ => false,
                    };
                    if was_centroid && p.precise {
                        plan.stats.newly_resolved += 1;
                    }
                }
                if let Some(iso) = p.iso {
                    *plan.country.entry(iso).or_default() += hits;
                }
                *plan.coord.entry(member).or_default() += hits;
            }
            (Some(_), None) => {
                plan.stats.unresolvable += 1;
                if let (Some(la), Some(lo)) = (old_lat, old_lon) {
                    if let Some(iso) = country_of.of(la, lo, &country_old) {
                        *plan.country.entry(iso).or_default() += hits;
                    }
                }
                *plan.coord.entry(text.into_owned()).or_default() += hits;
            }
            (None, _) => {
                // A phone point: the centroid of its country.
                plan.stats.phone_points += 1;
                if let (Some(la), Some(lo)) = (old_lat, old_lon) {
                    if let Some(iso) = country_of.of(la, lo, &country_old) {
                        *plan.country.entry(iso).or_default() += hits;
                    }
                }
                *plan.coord.entry(text.into_owned()).or_default() += hits;
            }
        }
    }

    // GEO_RAD: move the members whose IP resolves elsewhere now.
    let members: Vec<&Vec<u8>> = rad_old.iter().map(|(m, _)| m).collect();
    let positions: Vec<Option<(f64, f64)>> = if members.is_empty() {
        Vec::new()
    } else {
        redis::cmd("GEOPOS")
            .arg(keys::geo_rad(day))
            .arg(&members)
            .query(conn)?
    };
    for ((member, score), pos) in rad_old.iter().zip(positions) {
        let value = serde_json::from_slice::<Value>(member)
            .ok()
            .and_then(|v| v.get("value").and_then(Value::as_str).map(str::to_string));
        let placed = value.and_then(|v| place(geo, centroids, &v));
        match (placed, pos) {
            (Some(p), Some((lon, lat)))
                if (p.lat - lat).abs() > SAME_POINT || (p.lon - lon).abs() > SAME_POINT =>
            {
                plan.rad_add.push((p.lon, p.lat, member.clone()));
                plan.stats.radius_moved += 1;
            }
            _ => plan.rad_keep.push((member.clone(), *score)),
        }
    }

    let coord_same = coord_old.len() == plan.coord.len()
        && coord_old.iter().all(|(m, s)| {
            plan.coord
                .get(String::from_utf8_lossy(m).as_ref())
                .is_some_and(|n| n == s)
        });
    plan.changed = !coord_same || country_old != plan.country || !plan.rad_add.is_empty();
    Ok(plan)
}

fn write_day(pipe: &mut redis::Pipeline, day: &str, plan: &DayPlan) {
    let (coord, country, rad) = (
        keys::geo_coord(day),
        keys::geo_country(day),
        keys::geo_rad(day),
    );
    pipe.cmd("DEL").arg(&coord).arg(&country).arg(&rad).ignore();
    let coord_items: Vec<(&f64, &String)> = plan.coord.iter().map(|(m, s)| (s, m)).collect();
    for chunk in coord_items.chunks(CHUNK) {
        pipe.cmd("ZADD").arg(&coord).arg(chunk).ignore();
    }
    let country_items: Vec<(&f64, &String)> = plan.country.iter().map(|(m, s)| (s, m)).collect();
    for chunk in country_items.chunks(CHUNK) {
        pipe.cmd("ZADD").arg(&country).arg(chunk).ignore();
    }
    let keep: Vec<(&f64, &Vec<u8>)> = plan.rad_keep.iter().map(|(m, s)| (s, m)).collect();
    for chunk in keep.chunks(CHUNK) {
        pipe.cmd("ZADD").arg(&rad).arg(chunk).ignore();
    }
    for chunk in plan.rad_add.chunks(CHUNK) {
        let cmd = pipe.cmd("GEOADD").arg(&rad);
        for (lon, lat, member) in chunk {
            cmd.arg(pyjson::float_repr(*lon))
                .arg(pyjson::float_repr(*lat))
                .arg(member);
        }
        cmd.ignore();
    }
}

/// The days (`YYYYMMDD`) that have geolocation data, sorted.
fn geo_days(conn: &mut redis::Connection) -> redis::RedisResult<BTreeSet<String>> {
    let mut days = BTreeSet::new();
    for pattern in [keys::GEO_COORD_PATTERN, keys::GEO_RAD_PATTERN] {
        let prefix = pattern.trim_end_matches('*');
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query(conn)?;
            days.extend(
                batch
                    .iter()
                    .filter_map(|k| k.strip_prefix(prefix))
                    .map(str::to_string),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(days)
}

fn add(total: &mut Summary, day: &Summary) {
    total.moved += day.moved;
    total.newly_resolved += day.newly_resolved;
    total.unresolvable += day.unresolvable;
    total.unchanged += day.unchanged;
    total.phone_points += day.phone_points;
    total.hits += day.hits;
    total.radius_moved += day.radius_moved;
}

/// Rebuilds the days of `opts`' range with the configured (current) GeoIP database.
pub fn rebuild(cfg: &Config, opts: &Options, progress: &ProgressBar) -> Result<Summary, OpsError> {
    let geo = GeoDb::open(&cfg.resolve(&cfg.redis.path_maxmind_db))?;
    let centroids = match &cfg.redis.path_country_coords {
        Some(p) => Centroids::load(p)?,
        None => Centroids::builtin(),
    };
    let country_of = CountryOfPoint::new(&centroids);
    let target = RedisTarget::from_config(&cfg.redis);
    let db = cfg.redis.data_db;
    let err = redis_err(&target, db);
    let mut conn = connect(&target, db)?;
    let days: Vec<String> = geo_days(&mut conn)
        .map_err(&err)?
        .into_iter()
        .filter(|d| opts.from.as_ref().is_none_or(|f| d >= f))
        .filter(|d| opts.to.as_ref().is_none_or(|t| d <= t))
        .collect();
    progress.set_length(days.len() as u64);
    let mut total = Summary {
        days: days.len(),
        ..Summary::default()
    };
    for day in &days {
        progress.set_message(day.clone());
        let watched = [
            keys::geo_coord(day),
            keys::geo_country(day),
            keys::geo_rad(day),
        ];
        let plan = if opts.dry_run {
            plan_day(&mut conn, day, &geo, &centroids, &country_of).map_err(&err)?
        } else {
            redis::transaction(&mut conn, &watched, |conn, pipe| {
                let plan = plan_day(conn, day, &geo, &centroids, &country_of)?;
                if !plan.changed {
                    return Ok(Some(plan));
                }
                write_day(pipe, day, &plan);
                // `None` means EXEC was aborted by a concurrent write: plan again.
                let done: Option<()> = pipe.query(conn)?;
                Ok(done.map(|()| plan))
            })
            .map_err(&err)?
        };
        add(&mut total, &plan.stats);
        if plan.changed {
            total.days_rewritten += 1;
        }
        progress.inc(1);
    }
    progress.finish_with_message("done");
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_accept_both_spellings() {
        assert_eq!(parse_day("2026-11-20").ok().as_deref(), Some("20261120"));
        assert_eq!(parse_day("20261120").ok().as_deref(), Some("20261120"));
        assert!(parse_day("2026-13-01").is_err());
        assert!(parse_day("yesterday").is_err());
    }

    #[test]
    fn stored_points_find_their_country() {
        let c = Centroids::builtin();
        let lu = c.get("lu").expect("lu in the built-in table");
        let (lat, lon): (f64, f64) = (
            lu.lat.trim().parse().expect("lat"),
            lu.long.trim().parse().expect("lon"),
        );
        let finder = CountryOfPoint::new(&c);
        assert_eq!(finder.of(lat, lon, &BTreeMap::new()).as_deref(), Some("LU"));
        // Near but not on the centroid: still the nearest country.
        assert_eq!(
            finder
                .of(lat + 0.01, lon - 0.01, &BTreeMap::new())
                .as_deref(),
            Some("LU")
        );
    }
}
