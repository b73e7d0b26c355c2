//! Geolocation of `Network activity` values (IP addresses) and phone numbers (spec §3).
//!
//! What reaches Redis must be spelled as the original spells it: IP coordinates are floats
//! rounded to 4 decimals, phone coordinates are the centroid table's strings, members and
//! payloads keep the original's key order.

use super::{live, Ctx};
use crate::geoip::{IpLookup, PhoneLookup};
use crate::store::{Db, Op};
use crate::{keys, pyjson};
use serde_json::Value;

/// Redis GEOADD's latitude limit (Web Mercator).
const MAX_LAT: f64 = 85.05112878;

fn valid_coord(lat: f64, lon: f64) -> bool {
    (-180.0..=180.0).contains(&lon) && (-MAX_LAT..=MAX_LAT).contains(&lat)
}

/// `float("{:.4f}".format(x))`: correctly rounded to 4 decimals, kept as a float.
fn round4(x: f64) -> f64 {
    format!("{x:.4}").parse().unwrap_or(x)
}

pub fn from_ip(ctx: &mut Ctx, value: &Value, categ: &Value) {
    let Some(geo) = ctx.env.geo() else {
        // No database loaded: nothing can be located (the admin was warned at start).
        return;
    };
    let Some(ip) = value.as_str() else {
        return;
    };
    let rec = match geo.lookup(ip) {
        IpLookup::Found(rec) => rec,
        IpLookup::NotAnIp => {
            tracing::debug!("Can't resolve IP: {ip}");
            return;
        }
        IpLookup::NotFound => {
            tracing::debug!("Address not in database: {ip}");
            return;
        }
    };
    let (lat, lon) = match (rec.latitude, rec.longitude) {
        (Some(lat), Some(lon)) => (lat, lon),
        _ => {
            // The original falls back to the *registered* country's centroid.
            let Some(iso) = rec.registered_iso.as_deref() else {
                ctx.problem(format!(
                    "{ip}: no location and no registered country: not geolocated"
                ));
                return;
            };
            let centroid = ctx
                .env
                .centroids
                .get(iso)
                .map(|c| (c.lat.clone(), c.long.clone()));
            match centroid.and_then(|(la, lo)| {
                Some((
                    la.trim().parse::<f64>().ok()?,
                    lo.trim().parse::<f64>().ok()?,
                ))
            }) {
                Some(c) => c,
                None => {
                    ctx.problem(format!(
                        "{ip}: no location and no centroid for country {iso:?}: not geolocated"
                    ));
                    return;
                }
            }
        }
    };
    let (lat, lon) = (round4(lat), round4(lon));
    if !valid_coord(lat, lon) {
        tracing::debug!("{ip}: coordinates ({lat}, {lon}) outside Redis' GEO range");
        return;
    }
    let today = ctx.today.clone();
    let coord_member = pyjson::object([
        ("lat", pyjson::float(lat)),
        ("lon", pyjson::float(lon)),
        ("categ", categ.clone()),
        ("value", value.clone()),
    ]);
    ctx.op(Op::ZIncrBy {
        db: Db::Data,
        key: keys::geo_coord(&today),
        member: pyjson::to_string(&coord_member),
        by: 1.0,
    });
    let iso = rec
        .country_iso
        .clone()
        .or_else(|| rec.registered_iso.clone());
    let name = rec
        .country_name
        .clone()
        .or_else(|| rec.registered_name.clone());
    if let Some(iso) = &iso {
        ctx.op(Op::ZIncrBy {
            db: Db::Data,
            key: keys::geo_country(&today),
            member: iso.clone(),
            by: 1.0,
        });
    }
    let rad_member = pyjson::object([("categ", categ.clone()), ("value", value.clone())]);
    ctx.op(Op::GeoAdd {
        db: Db::Data,
        key: keys::geo_rad(&today),
        lon: pyjson::float_repr(lon),
        lat: pyjson::float_repr(lat),
        member: pyjson::to_string(&rad_member),
    });
    let opt = |s: Option<String>| s.map(Value::String).unwrap_or(Value::Null);
    let payload = pyjson::object([
        (
            "coord",
            pyjson::object([("lat", pyjson::float(lat)), ("lon", pyjson::float(lon))]),
        ),
        ("categ", categ.clone()),
        ("value", value.clone()),
        ("country", opt(name)),
        ("specifName", opt(rec.subdivision.clone())),
        ("cityName", opt(rec.city.clone())),
        ("regionCode", opt(iso)),
    ]);
    live::publish_map(ctx, &payload);
}

pub fn from_phone(ctx: &mut Ctx, value: &Value, categ: &Value) {
    let Some(number) = value.as_str() else {
        ctx.problem("phone-number value is not text: not geolocated");
        return;
    };
    let (iso, name) = match crate::geoip::phone_country(number) {
        PhoneLookup::Country { iso, name } => (iso, name),
        PhoneLookup::Unparsable => {
            tracing::debug!("Can't resolve phone number country: {number}");
            return;
        }
        PhoneLookup::NotValid => {
            tracing::debug!("Phone number not valid: {number}");
            return;
        }
        PhoneLookup::NoCountry => {
            tracing::debug!("Phone number {number} belongs to no country");
            return;
        }
    };
    let Some(c) = ctx.env.centroids.get(&iso) else {
        ctx.problem(format!(
            "no centroid for country {iso:?} of phone number: not geolocated"
        ));
        return;
    };
    let (lat_s, lon_s) = (c.lat.clone(), c.long.clone());
    let coords = (lat_s.trim().parse::<f64>(), lon_s.trim().parse::<f64>());
    let (Ok(lat), Ok(lon)) = coords else {
        ctx.problem(format!(
            "centroid of {iso:?} is not numeric: not geolocated"
        ));
        return;
    };
    if !valid_coord(lat, lon) {
        return;
    }
    let today = ctx.today.clone();
    let coord = pyjson::object([
        ("lat", Value::String(lat_s.clone())),
        ("lon", Value::String(lon_s.clone())),
    ]);
    ctx.op(Op::ZIncrBy {
        db: Db::Data,
        key: keys::geo_coord(&today),
        member: pyjson::to_string(&coord),
        by: 1.0,
    });
    ctx.op(Op::ZIncrBy {
        db: Db::Data,
        key: keys::geo_country(&today),
        member: iso.clone(),
        by: 1.0,
    });
    let rad_member = pyjson::object([("categ", categ.clone()), ("value", value.clone())]);
    ctx.op(Op::GeoAdd {
        db: Db::Data,
        key: keys::geo_rad(&today),
        lon: lon_s,
        lat: lat_s,
        member: pyjson::to_string(&rad_member),
    });
    let payload = pyjson::object([
        ("coord", coord),
        ("categ", categ.clone()),
        ("value", value.clone()),
        ("country", Value::String(name)),
        ("specifName", Value::String(String::new())),
        ("cityName", Value::String(String::new())),
        ("regionCode", Value::String(iso)),
    ]);
    live::publish_map(ctx, &payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_pythons() {
        assert_eq!(round4(37.751), 37.751);
        assert_eq!(round4(48.85661), 48.8566);
        assert_eq!(round4(-97.82199999), -97.822);
        assert!(!valid_coord(-90.0, 0.0));
        assert!(valid_coord(85.0, 180.0));
    }
}
