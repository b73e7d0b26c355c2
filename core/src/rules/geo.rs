//! Geolocation of `Network activity` values (IP addresses) and phone numbers (spec §3), and,
//! with `[mispdash] wider_geolocation`, of the IP in composite values, of MISP geolocation
//! objects and of every attribute type that holds a phone number (`docs/compat.md`, "Wider
//! geolocation").
//!
//! What reaches Redis must be spelled as the original spells it: IP coordinates are floats
//! rounded to 4 decimals, phone coordinates are the centroid table's strings, members and
//! payloads keep the original's key order. The additions write the same keys in the same
//! spellings, so the original's pages and `rebuild-geo` read them like any other point.

use super::{live, Ctx};
use crate::geoip::{IpLookup, PhoneLookup};
use crate::store::{Db, Op};
use crate::{keys, pyjson};
use serde_json::{Map, Value};
use std::sync::Arc;

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
    place_point(
        ctx,
        Point {
            lat,
            lon,
            categ,
            value,
            iso: rec
                .country_iso
                .clone()
                .or_else(|| rec.registered_iso.clone()),
            country: rec
                .country_name
                .clone()
                .or_else(|| rec.registered_name.clone()),
            region: rec.subdivision.clone(),
            city: rec.city.clone(),
        },
    );
}

/// A point placed at floating-point coordinates: an IP's, or a geolocation object's.
struct Point<'a> {
    lat: f64,
    lon: f64,
    categ: &'a Value,
    value: &'a Value,
    iso: Option<String>,
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
}

/// The original's IP writes (spec §3.2 steps 5-8): one spelling for every point at
/// floating-point coordinates, so that a point mispdash adds reads like one the original
/// wrote.
fn place_point(ctx: &mut Ctx, p: Point) {
    let today = ctx.today.clone();
    let coord_member = pyjson::object([
        ("lat", pyjson::float(p.lat)),
        ("lon", pyjson::float(p.lon)),
        ("categ", p.categ.clone()),
        ("value", p.value.clone()),
    ]);
    ctx.op(Op::ZIncrBy {
        db: Db::Data,
        key: keys::geo_coord(&today),
        member: pyjson::to_string(&coord_member),
        by: 1.0,
    });
    if let Some(iso) = &p.iso {
        ctx.op(Op::ZIncrBy {
            db: Db::Data,
            key: keys::geo_country(&today),
            member: iso.clone(),
            by: 1.0,
        });
    }
    let rad_member = pyjson::object([("categ", p.categ.clone()), ("value", p.value.clone())]);
    ctx.op(Op::GeoAdd {
        db: Db::Data,
        key: keys::geo_rad(&today),
        lon: pyjson::float_repr(p.lon),
        lat: pyjson::float_repr(p.lat),
        member: pyjson::to_string(&rad_member),
    });
    record_point(
        ctx,
        &coord_member,
        &rad_member,
        (p.lat, p.lon),
        p.iso.as_deref(),
    );
    let opt = |s: Option<String>| s.map(Value::String).unwrap_or(Value::Null);
    let payload = pyjson::object([
        (
            "coord",
            pyjson::object([("lat", pyjson::float(p.lat)), ("lon", pyjson::float(p.lon))]),
        ),
        ("categ", p.categ.clone()),
        ("value", p.value.clone()),
        ("country", opt(p.country)),
        ("specifName", opt(p.region)),
        ("cityName", opt(p.city)),
        ("regionCode", opt(p.iso)),
    ]);
    live::publish_map(ctx, &payload);
}

/// The point in mispdash's own key with what the original's members leave out (the
/// attribute's type and tags, the country), for the routes' `type` and `tags` filters (see
/// [`keys::geo_points`]).
fn record_point(
    ctx: &mut Ctx,
    coord_member: &Value,
    rad_member: &Value,
    (lat, lon): (f64, f64),
    iso: Option<&str>,
) {
    let (atype, tags) = ctx.point_meta.clone().unwrap_or((Value::Null, Vec::new()));
    let member = pyjson::object([
        ("coord", Value::String(pyjson::to_string(coord_member))),
        ("rad", Value::String(pyjson::to_string(rad_member))),
        ("lat", pyjson::float(lat)),
        ("lon", pyjson::float(lon)),
        (
            "country",
            iso.map_or(Value::Null, |c| Value::String(c.to_string())),
        ),
        ("type", atype),
        (
            "tags",
            Value::Array(tags.into_iter().map(Value::String).collect()),
        ),
    ]);
    let today = ctx.today.clone();
    ctx.op(Op::ZIncrBy {
        db: Db::Data,
        key: keys::geo_points(&today),
        member: pyjson::to_string(&member),
        by: 1.0,
    });
}

pub fn from_phone(ctx: &mut Ctx, value: &Value, categ: &Value) {
    let Some(number) = value.as_str() else {
        ctx.problem("phone number value is not text: not geolocated");
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
    record_point(ctx, &coord, &rad_member, (lat, lon), Some(&iso));
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

/// The attribute types that hold a phone number besides `phone-number` (which the original
/// already places): the registrant's number of a whois record and a premium-rate telephone
/// number (`prtn`), MISP's other types whose value is a phone number.
const OTHER_PHONE_TYPES: &[&str] = &["whois-registrant-phone", "prtn"];

/// Whether wider geolocation places an attribute of type `atype` as a phone number (the
/// original's `phone-number` is placed whatever the setting).
pub fn holds_other_phone_number(atype: &str) -> bool {
    OTHER_PHONE_TYPES.contains(&atype)
}

/// The IP of a composite value (`ip-src|port`, `ip-dst|port`: the IP first; `domain|ip`: the
/// IP last). The original hands the whole value to its IP lookup, which refuses it.
pub fn composite_ip<'a>(atype: &str, value: &'a str) -> Option<&'a str> {
    let (first, last) = value.split_once('|')?;
    let ip = match atype {
        "ip-src|port" | "ip-dst|port" => first,
        "domain|ip" => last,
        _ => return None,
    };
    Some(ip.trim()).filter(|ip| !ip.is_empty())
}

/// The name of the MISP object template whose `latitude` and `longitude` place a point.
pub const GEOLOCATION_OBJECT: &str = "geolocation";

/// One coordinate of a geolocation object, with the category of the attribute that gave it
/// (the point's `categ`).
#[derive(Debug, Clone, PartialEq)]
struct Coordinate {
    degrees: f64,
    categ: Value,
}

/// Where a MISP geolocation object says it is, gathered from its attributes (`object_relation`
/// `latitude`, `longitude`, `country`, `city`, `region`), in one message or across several.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectPlace {
    latitude: Option<Coordinate>,
    longitude: Option<Coordinate>,
    country: Option<String>,
    city: Option<String>,
    region: Option<String>,
}

/// What one attribute of a geolocation object told [`ObjectPlace::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A usable latitude or longitude: the point may be complete now.
    Coordinate,
    /// The country, city or region: they describe the point, they do not place it.
    Detail,
    /// Anything else, or a coordinate that cannot be used.
    Nothing,
}

impl ObjectPlace {
    /// Takes in what attribute `a` of the object says. A coordinate that is not a number, or
    /// not within what Redis' GEOADD accepts once rounded as IP coordinates are, is noted as
    /// a problem and left out: a point at a wrong place is worse than none.
    pub fn take(&mut self, ctx: &mut Ctx, a: &Map<String, Value>) -> Part {
        let relation = a.get("object_relation").and_then(Value::as_str);
        let text = || {
            a.get("value")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        match relation {
            Some(r @ ("latitude" | "longitude")) => {
                let is_lat = r == "latitude";
                let limit = if is_lat { MAX_LAT } else { 180.0 };
                let given = a.get("value");
                let degrees = match given {
                    Some(Value::Number(n)) => n.as_f64(),
                    Some(Value::String(t)) => t.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|d| d.is_finite())
                .map(round4);
                let object = a
                    .get("object_id")
                    .map(pyjson::to_string)
                    .unwrap_or_else(|| "(no id)".into());
                let shown = given.map(pyjson::to_string).unwrap_or("(absent)".into());
                match degrees {
                    Some(d) if (-limit..=limit).contains(&d) => {
                        let c = Coordinate {
                            degrees: d,
                            categ: a.get("category").cloned().unwrap_or(Value::Null),
                        };
                        if is_lat {
                            self.latitude = Some(c);
                        } else {
                            self.longitude = Some(c);
                        }
                        Part::Coordinate
                    }
                    Some(_) => {
                        ctx.problem(format!(
                            "geolocation object {object}: {r} {shown} is outside -{limit}..{limit}: no map point"
                        ));
                        Part::Nothing
                    }
                    None => {
                        ctx.problem(format!(
                            "geolocation object {object}: {r} {shown} is not a number: no map point"
                        ));
                        Part::Nothing
                    }
                }
            }
            Some("country") => {
                self.country = text();
                Part::Detail
            }
            Some("city") => {
                self.city = text();
                Part::Detail
            }
            Some("region") => {
                self.region = text();
                Part::Detail
            }
            _ => Part::Nothing,
        }
    }

    /// What `newer` says replaces what was known: MISP sends an edited attribute again.
    fn update(&mut self, newer: ObjectPlace) {
        let ObjectPlace {
            latitude,
            longitude,
            country,
            city,
            region,
        } = newer;
        self.latitude = latitude.or(self.latitude.take());
        self.longitude = longitude.or(self.longitude.take());
        self.country = country.or(self.country.take());
        self.city = city.or(self.city.take());
        self.region = region.or(self.region.take());
    }

    pub fn is_complete(&self) -> bool {
        self.latitude.is_some() && self.longitude.is_some()
    }

    /// The object's country as `GEO_COUNTRY` counts it and the map names it. The template's
    /// `country` is free text: an alpha-2 code or an English name leads to a code; any other
    /// spelling is shown as given and counted in no country, like an IP whose record has none.
    fn country(&self) -> (Option<String>, Option<String>) {
        let Some(given) = self.country.as_deref() else {
            return (None, None);
        };
        let by_code = (given.len() == 2)
            .then(|| crate::geoip::country_name(given).map(|_| given.to_ascii_uppercase()))
            .flatten();
        let iso = by_code.or_else(|| crate::geoip::country_code(given).map(str::to_string));
        let name = iso
            .as_deref()
            .and_then(crate::geoip::country_name)
            .map(str::to_string)
            .unwrap_or_else(|| given.to_string());
        (iso, Some(name))
    }
}

/// For an object handled whole (`misp_json_object`, an event's object): where a geolocation
/// object is, and the index of the attribute with which it becomes complete (its point goes
/// with that attribute, where an IP's would). `None` for other objects and for a geolocation
/// object without both coordinates.
pub fn object_point(
    ctx: &mut Ctx,
    o: &Map<String, Value>,
    attributes: &[Value],
) -> Option<(usize, ObjectPlace)> {
    if o.get("name").and_then(Value::as_str) != Some(GEOLOCATION_OBJECT) {
        return None;
    }
    let mut place = ObjectPlace::default();
    let mut completed_at = None;
    for (i, a) in attributes.iter().enumerate() {
        let Some(a) = a.as_object() else { continue };
        if place.take(ctx, a) == Part::Coordinate && place.is_complete() && completed_at.is_none() {
            completed_at = Some(i);
        }
    }
    Some((completed_at?, place))
}

/// Places the point of a complete geolocation object, spelt as an IP's point: its value is
/// the rounded coordinates as text (`"50.8503, 4.3517"`), the place itself being what the
/// object describes.
pub fn from_object(ctx: &mut Ctx, place: &ObjectPlace) {
    let (Some(lat), Some(lon)) = (&place.latitude, &place.longitude) else {
        return;
    };
    let value = Value::String(format!(
        "{}, {}",
        pyjson::float_repr(lat.degrees),
        pyjson::float_repr(lon.degrees)
    ));
    let categ = if lat.categ.is_null() {
        &lon.categ
    } else {
        &lat.categ
    };
    let (iso, country) = place.country();
    place_point(
        ctx,
        Point {
            lat: lat.degrees,
            lon: lon.degrees,
            categ,
            value: &value,
            iso,
            country,
            region: place.region.clone(),
            city: place.city.clone(),
        },
    );
}

/// `misp_json_attribute` of an object's attribute: MISP sends each attribute of a new
/// geolocation object in a message of its own, so what each says is kept (in
/// [`super::Env::geo_objects`]) until the message that completes the point. The message says
/// which object the attribute belongs to (`Object.name`); a MISP that leaves the object out
/// is trusted for a `float` latitude or longitude, the only attributes that place a point.
pub fn from_object_attribute(ctx: &mut Ctx, object: Option<&Value>, a: &Map<String, Value>) {
    let object_id = match a.get("object_id") {
        Some(Value::String(id)) if id != "0" && !id.is_empty() => id.clone(),
        Some(Value::Number(n)) if n.as_u64() != Some(0) => n.to_string(),
        _ => return,
    };
    let geolocation = match object {
        Some(o) => o.get("name").and_then(Value::as_str) == Some(GEOLOCATION_OBJECT),
        None => {
            matches!(
                a.get("object_relation").and_then(Value::as_str),
                Some("latitude" | "longitude")
            ) && a.get("type").and_then(Value::as_str) == Some("float")
        }
    };
    if !geolocation {
        return;
    }
    let mut said = ObjectPlace::default();
    let part = said.take(ctx, a);
    if part == Part::Nothing {
        return;
    }
    let key = (ctx.zmq_name.clone(), object_id);
    let mut place = ctx
        .env
        .geo_objects
        .get(&key)
        .map(|known| (*known).clone())
        .unwrap_or_default();
    place.update(said);
    ctx.env.geo_objects.insert(key, Arc::new(place.clone()));
    if part == Part::Coordinate {
        from_object(ctx, &place);
    }
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
