//! Geolocation routes (spec `http.md` §4): top coordinates, country hit map, radius query.

use super::error::WebError;
use super::narrow::{Accepts, Narrow};
use super::params::{self, Params};
use super::state::AppState;
use crate::keys;
use serde_json::{json, Value};

/// `/_getTopCoord?date=`: the 6 most frequent coordinates of a day.
/// With `categ` or `bbox` (see [`super::narrow`]): the 6 most frequent of those that pass.
pub async fn top_coord(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let narrow = Narrow::parse(
        p,
        "/_getTopCoord",
        Accepts {
            categ: true,
            bbox: true,
            types: true,
            tags: true,
            ..Accepts::default()
        },
    )?;
    let day = params::day_key(&params::date_or_now(p, "date", &st.clock));
    if narrow.needs_points() {
        let mut per_coord: Vec<(String, f64)> = Vec::new();
        for (point, hits) in points(st, std::slice::from_ref(&day), &narrow).await? {
            let coord = point.get("coord").and_then(Value::as_str).unwrap_or("");
            match per_coord.iter_mut().find(|(c, _)| c == coord) {
                Some((_, n)) => *n += hits,
                None => per_coord.push((coord.to_string(), hits)),
            }
        }
        return Ok(pairs(ranked(per_coord).into_iter().take(6).collect()));
    }
    let mut c = st.data.conn().await?;
    let stop: isize = if narrow.is_empty() { 5 } else { -1 };
    let v: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
        .arg(keys::geo_coord(&day))
        .arg(0)
        .arg(stop)
        .arg("WITHSCORES")
        .query_async(&mut c)
        .await?;
    Ok(pairs(
        v.into_iter()
            .filter(|(m, _)| narrow.coord_member_ok(m))
            .take(6)
            .collect(),
    ))
}

/// `/_getHitMap?date=`: every country of a day, most hits first.
/// With `country`: those countries only.
pub async fn hit_map(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let narrow = Narrow::parse(
        p,
        "/_getHitMap",
        Accepts {
            country: true,
            types: true,
            tags: true,
            ..Accepts::default()
        },
    )?;
    let day = params::day_key(&params::date_or_now(p, "date", &st.clock));
    if narrow.needs_points() {
        let mut per_country: Vec<(String, f64)> = Vec::new();
        for (point, hits) in points(st, std::slice::from_ref(&day), &narrow).await? {
            let Some(code) = point.get("country").and_then(Value::as_str) else {
                continue;
            };
            match per_country.iter_mut().find(|(c, _)| c == code) {
                Some((_, n)) => *n += hits,
                None => per_country.push((code.to_string(), hits)),
            }
        }
        return Ok(pairs(ranked(per_country)));
    }
    let mut c = st.data.conn().await?;
    let v: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
        .arg(keys::geo_country(&day))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut c)
        .await?;
    Ok(pairs(
        v.into_iter()
            .filter(|(code, _)| narrow.country_ok(code))
            .collect(),
    ))
}

/// Most hits first, then as Redis orders equal scores in reverse (the member, descending).
fn ranked(mut v: Vec<(String, f64)>) -> Vec<(String, f64)> {
    v.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| b.0.as_bytes().cmp(a.0.as_bytes()))
    });
    v
}

/// The points of `days` in mispdash's own key (`keys::geo_points`) that pass `narrow`, with
/// their hits.
async fn points(
    st: &AppState,
    days: &[String],
    narrow: &Narrow,
) -> Result<Vec<(Value, f64)>, WebError> {
    if days.is_empty() {
        return Ok(vec![]);
    }
    let mut pipe = redis::pipe();
    for d in days {
        pipe.cmd("ZRANGE")
            .arg(keys::geo_points(d))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES");
    }
    let mut c = st.data.conn().await?;
    let per_day: Vec<Vec<(String, f64)>> = pipe.query_async(&mut c).await?;
    Ok(per_day
        .into_iter()
        .flatten()
        .filter_map(|(m, n)| serde_json::from_str::<Value>(&m).ok().map(|v| (v, n)))
        .filter(|(v, _)| narrow.point_ok(v))
        .collect())
}

/// What the geo routes' `X-Mispdash-Filter-Note` says: with `type` or `tags`, how many days
/// of the range have points but none in mispdash's own key (they predate it).
pub async fn filter_note(st: &AppState, p: &Params) -> Option<String> {
    let wants = ["type", "tags", "not_tags"]
        .iter()
        .any(|k| p.get(k).is_some_and(|v| !v.trim().is_empty()));
    if !wants {
        return None;
    }
    let days: Vec<String> = match (p.get("dateStart"), p.get("dateEnd")) {
        (Some(s), Some(e)) => {
            let s = params::parse_float(s).and_then(params::local_naive)?;
            let e = params::parse_float(e).and_then(params::local_naive)?;
            let n = params::days_between(&s, &e);
            if !(0..=params::MAX_RANGE_DAYS).contains(&n) {
                return None;
            }
            (0..=n)
                .map(|i| params::day_key(&(s + chrono::Duration::days(i))))
                .collect()
        }
        _ => vec![params::day_key(&params::date_or_now(p, "date", &st.clock))],
    };
    let mut pipe = redis::pipe();
    for d in &days {
        pipe.cmd("EXISTS").arg(keys::geo_coord(d));
        pipe.cmd("EXISTS").arg(keys::geo_points(d));
    }
    let mut c = st.data.conn().await.ok()?;
    let found: Vec<bool> = pipe.query_async(&mut c).await.ok()?;
    let before: Vec<&String> = days
        .iter()
        .zip(found.chunks(2))
        .filter(|(_, f)| f.first() == Some(&true) && f.get(1) != Some(&true))
        .map(|(d, _)| d)
        .collect();
    let first = before.first()?;
    Some(format!(
        "{} day(s) of the range ({}{}) predate the records the type and tag filters read: \
         their points are not counted",
        before.len(),
        first,
        before
            .last()
            .filter(|l| l != &first)
            .map(|l| format!(" to {l}"))
            .unwrap_or_default()
    ))
}

pub fn pairs(v: Vec<(String, f64)>) -> Value {
    Value::Array(v.into_iter().map(|(m, s)| json!([m, s])).collect())
}

/// A latitude or longitude as the client sent it, checked the way Redis would check it (Redis
/// refuses latitudes beyond ±85.05112878 and the original then answers 500).
fn coordinate(p: &Params, name: &str, limit: f64) -> Result<Option<String>, WebError> {
    let Some(raw) = p.get(name) else {
        return Ok(None);
    };
    let Some(v) = params::parse_float(raw) else {
        return Ok(None);
    };
    if !v.is_finite() || v.abs() > limit {
        return Err(WebError::bad(format!(
            "{name} must be a number between -{limit} and {limit}"
        )));
    }
    Ok(Some(raw.trim().to_string()))
}

/// Largest accepted radius: half the Earth's circumference covers every point already.
pub const MAX_RADIUS_KM: f64 = 20_040.0;

/// `/_getCoordsByRadius?dateStart&dateEnd&centerLat&centerLon&radius`: points within a radius,
/// clustered. A missing or unreadable parameter gives `[]` as in the original; a coordinate or
/// radius Redis would refuse, or a range beyond the bound, gives a 400.
/// With `categ` or `bbox`: the points that pass, clustered.
pub async fn coords_by_radius(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let narrow = Narrow::parse(
        p,
        "/_getCoordsByRadius",
        Accepts {
            categ: true,
            bbox: true,
            types: true,
            tags: true,
            ..Accepts::default()
        },
    )?;
    let start = p
        .get("dateStart")
        .and_then(params::parse_float)
        .and_then(params::local_naive);
    let end = p
        .get("dateEnd")
        .and_then(params::parse_float)
        .and_then(params::local_naive);
    let lat = coordinate(p, "centerLat", 85.051_128_78)?;
    let lon = coordinate(p, "centerLon", 180.0)?;
    let radius = p.get("radius").and_then(params::parse_float);
    let (Some(start), Some(end), Some(lat), Some(lon), Some(radius)) =
        (start, end, lat, lon, radius)
    else {
        return Ok(Value::Array(vec![]));
    };
    if !radius.is_finite() || !(0.0..=MAX_RADIUS_KM).contains(&radius) {
        return Err(WebError::bad(format!(
            "radius must be a number of km from 0 to {MAX_RADIUS_KM}"
        )));
    }
    let radius = radius.ceil() as i64;
    let days = params::days_between(&start, &end);
    if days > params::MAX_RANGE_DAYS {
        return Err(WebError::bad(format!(
            "dateStart..dateEnd spans {days} days; at most {} are allowed",
            params::MAX_RANGE_DAYS
        )));
    }
    if days < 0 {
        return Ok(Value::Array(vec![]));
    }
    if narrow.needs_points() {
        let day_keys: Vec<String> = (0..=days)
            .map(|i| params::day_key(&(start + chrono::Duration::days(i))))
            .collect();
        let (clat, clon) = (
            lat.parse::<f64>().unwrap_or(0.0),
            lon.parse::<f64>().unwrap_or(0.0),
        );
        let mut near: Vec<(String, (f64, f64))> = Vec::new();
        for (point, _) in points(st, &day_keys, &narrow).await? {
            let (Some(plat), Some(plon), Some(rad)) = (
                point.get("lat").and_then(Value::as_f64),
                point.get("lon").and_then(Value::as_f64),
                point.get("rad").and_then(Value::as_str),
            ) else {
                continue;
            };
            if km_between((clat, clon), (plat, plon)) <= radius as f64
                && !near.iter().any(|(m, _)| m == rad)
            {
                near.push((rad.to_string(), (plon, plat)));
            }
        }
        return Ok(cluster(near.into_iter(), st.cfg.clustering_threshold));
    }
    let mut pipe = redis::pipe();
    for i in 0..=days {
        let day = params::day_key(&(start + chrono::Duration::days(i)));
        pipe.cmd("GEORADIUS")
            .arg(keys::geo_rad(&day))
            .arg(&lon)
            .arg(&lat)
            .arg(radius)
            .arg("km")
            .arg("WITHCOORD");
    }
    let mut c = st.data.conn().await?;
    let per_day: Vec<Vec<(String, (f64, f64))>> = pipe.query_async(&mut c).await?;
    let passes = |(member, (lon, lat)): &(String, (f64, f64))| {
        narrow.place_ok(*lat, *lon)
            && (narrow.categs.is_empty()
                || narrow.categ_ok(
                    serde_json::from_str::<Value>(member)
                        .ok()
                        .as_ref()
                        .and_then(|v| v.get("categ"))
                        .and_then(Value::as_str),
                ))
    };
    Ok(cluster(
        per_day.into_iter().flatten().filter(passes),
        st.cfg.clustering_threshold,
    ))
}

/// Great-circle distance in km (Redis's own formula for GEORADIUS: haversine on a sphere of
/// 6372.7976 km).
fn km_between((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dlat = p2 - p1;
    let dlon = (lon2 - lon1).to_radians();
    let a = (dlat / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6_372.797_560_856 * a.sqrt().asin()
}

/// Merges points whose longitude and latitude are both within `threshold` of a cluster's first
/// point. Each cluster is emitted once (the original repeats earlier days' clusters on every
/// later day of a multi-day range: compat.md).
pub fn cluster(points: impl Iterator<Item = (String, (f64, f64))>, threshold: f64) -> Value {
    let mut clusters: Vec<(Vec<String>, (f64, f64))> = Vec::new();
    for (member, (lon, lat)) in points {
        match clusters.iter_mut().find(|(_, (clon, clat))| {
            (lon - clon).abs() <= threshold && (lat - clat).abs() <= threshold
        }) {
            Some((members, _)) => members.push(member),
            None => clusters.push((vec![member], (lon, lat))),
        }
    }
    Value::Array(
        clusters
            .into_iter()
            .map(|(m, (lon, lat))| json!([m, [lon, lat]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_points_share_the_first_point_coordinates() {
        let pts = vec![
            ("a".to_string(), (6.1319, 49.6117)),
            ("b".to_string(), (6.1320, 49.6110)),
            ("c".to_string(), (7.0, 49.6117)),
        ];
        let v = cluster(pts.into_iter(), 0.001);
        assert_eq!(
            v,
            json!([[["a", "b"], [6.1319, 49.6117]], [["c"], [7.0, 49.6117]]])
        );
    }
}
