//! Filters of mispdash's own on the geo and trending routes, answered by the server (the pages
//! used to filter in the browser what the routes sent whole). Without these parameters every
//! answer is the original's.
//!
//! - `categ=Network activity,Payload delivery`: attribute categories (exact names). Geo points
//!   carry their category in the original's members (`GEO_COORD`, `GEO_RAD`); the category
//!   trending is keyed by it.
//! - `country=LU,BE`: ISO 3166 codes, for the country hit map (`GEO_COUNTRY`).
//! - `bbox=minLat,minLon,maxLat,maxLon`: a region, for geo points (a box across the
//!   antimeridian has `minLon` > `maxLon`).
//! - `tags=tlp:*,misp-galaxy:*` and `not_tags=tlp:red`: tag names matched by glob pattern,
//!   case-insensitive; `not_tags` wins. On the tag trending each tag is matched; on the geo
//!   routes and the event trending, an attribute or event passes when one of its tags (and its
//!   event's) matches `tags` and none matches `not_tags`.
//! - `type=ip-dst,domain|ip`: attribute types, for the geo routes.
//!
//! `type` and `tags` on the geo routes, and `tags` on the event trending, read keys of
//! mispdash's own (`keys::geo_points`, `keys::trendings_events_tagged`) written from the
//! version that added them: days before have none, and the answer's `X-Mispdash-Filter-Note`
//! header says how many days of the range that leaves out.
//!
//! A filter a route cannot answer from its keys is refused with a 400 that says which routes
//! take it, never ignored: an analyst must not read an unfiltered answer as a filtered one.

use super::error::WebError;
use super::params::Params;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::Value;

/// Most values in one list parameter.
const MAX_VALUES: usize = 64;

/// A geographic box; longitudes may wrap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lat: f64,
    pub min_lon: f64,
    pub max_lat: f64,
    pub max_lon: f64,
}

impl BBox {
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        let lon_in = if self.min_lon <= self.max_lon {
            (self.min_lon..=self.max_lon).contains(&lon)
        } else {
            lon >= self.min_lon || lon <= self.max_lon
        };
        (self.min_lat..=self.max_lat).contains(&lat) && lon_in
    }
}

/// The filters of one request.
#[derive(Debug, Default)]
pub struct Narrow {
    pub categs: Vec<String>,
    pub countries: Vec<String>,
    pub bbox: Option<BBox>,
    pub types: Vec<String>,
    tags: Option<GlobSet>,
    not_tags: Option<GlobSet>,
}

/// Which filters a route takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Accepts {
    pub categ: bool,
    pub country: bool,
    pub bbox: bool,
    pub tags: bool,
    pub types: bool,
}

fn list(p: &Params, name: &str) -> Result<Vec<String>, WebError> {
    let values: Vec<String> = p
        .get_all(name)
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if values.len() > MAX_VALUES {
        return Err(WebError::bad(format!(
            "{name}: at most {MAX_VALUES} values"
        )));
    }
    Ok(values)
}

fn globs(name: &str, patterns: &[String]) -> Result<Option<GlobSet>, WebError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = GlobBuilder::new(p)
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| WebError::bad(format!("{name}: {p:?} is not a pattern: {e}")))?;
        b.add(g);
    }
    b.build()
        .map(Some)
        .map_err(|e| WebError::bad(format!("{name}: {e}")))
}

impl Narrow {
    /// The filters in `p`, refusing those `route` (named in the message) does not take.
    pub fn parse(p: &Params, route: &str, accepts: Accepts) -> Result<Narrow, WebError> {
        let refuse = |name: &str, takers: &str| -> WebError {
            WebError::bad(format!(
                "{route} does not take {name} (it is taken by {takers})"
            ))
        };
        let categs = list(p, "categ")?;
        if !categs.is_empty() && !accepts.categ {
            return Err(refuse(
                "categ",
                "/_getTopCoord, /_getCoordsByRadius and /_getTrendingCategs",
            ));
        }
        let countries: Vec<String> = list(p, "country")?
            .into_iter()
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if let Some(bad) = countries
            .iter()
            .find(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()))
        {
            return Err(WebError::bad(format!(
                "country: {bad:?} is not an ISO 3166 two-letter code"
            )));
        }
        if !countries.is_empty() && !accepts.country {
            return Err(refuse("country", "/_getHitMap"));
        }
        let bbox = match p.get("bbox").filter(|b| !b.trim().is_empty()) {
            None => None,
            Some(raw) => {
                if !accepts.bbox {
                    return Err(refuse("bbox", "/_getTopCoord and /_getCoordsByRadius"));
                }
                Some(parse_bbox(raw)?)
            }
        };
        let (tags, not_tags) = (list(p, "tags")?, list(p, "not_tags")?);
        if (!tags.is_empty() || !not_tags.is_empty()) && !accepts.tags {
            return Err(refuse(
                "tags or not_tags",
                "/_getTrendingTags, /_getTrendingEvents and the geo routes",
            ));
        }
        let types = list(p, "type")?;
        if !types.is_empty() && !accepts.types {
            return Err(refuse(
                "type",
                "/_getTopCoord, /_getHitMap and /_getCoordsByRadius",
            ));
        }
        Ok(Narrow {
            categs,
            countries,
            bbox,
            types,
            tags: globs("tags", &tags)?,
            not_tags: globs("not_tags", &not_tags)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.categs.is_empty()
            && self.countries.is_empty()
            && self.bbox.is_none()
            && self.types.is_empty()
            && !self.has_tags()
    }

    pub fn has_tags(&self) -> bool {
        self.tags.is_some() || self.not_tags.is_some()
    }

    /// Whether the filters need what only mispdash's own keys record (types, tags of points).
    pub fn needs_points(&self) -> bool {
        !self.types.is_empty() || self.has_tags()
    }

    /// An attribute or event with these tags: one matches `tags` (when given), none
    /// `not_tags`.
    pub fn tags_ok(&self, names: &[&str]) -> bool {
        self.tags
            .as_ref()
            .is_none_or(|g| names.iter().any(|n| g.is_match(n)))
            && !self
                .not_tags
                .as_ref()
                .is_some_and(|g| names.iter().any(|n| g.is_match(n)))
    }

    /// Whether a point of `keys::geo_points` passes every filter (the country too).
    pub fn point_ok(&self, p: &Value) -> bool {
        let lat = p.get("lat").and_then(Value::as_f64);
        let lon = p.get("lon").and_then(Value::as_f64);
        let place = match (lat, lon) {
            (Some(lat), Some(lon)) => self.place_ok(lat, lon),
            _ => self.bbox.is_none(),
        };
        let categ = p
            .get("rad")
            .and_then(Value::as_str)
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .and_then(|r| r.get("categ").and_then(Value::as_str).map(str::to_string));
        let ty = p.get("type").and_then(Value::as_str);
        let tags: Vec<&str> = p
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        place
            && self.categ_ok(categ.as_deref())
            && (self.types.is_empty() || ty.is_some_and(|t| self.types.iter().any(|x| x == t)))
            && self.tags_ok(&tags)
            && (self.countries.is_empty()
                || p.get("country")
                    .and_then(Value::as_str)
                    .is_some_and(|c| self.country_ok(c)))
    }

    pub fn categ_ok(&self, categ: Option<&str>) -> bool {
        self.categs.is_empty() || categ.is_some_and(|c| self.categs.iter().any(|x| x == c))
    }

    pub fn country_ok(&self, code: &str) -> bool {
        self.countries.is_empty() || self.countries.iter().any(|c| c == code)
    }

    pub fn place_ok(&self, lat: f64, lon: f64) -> bool {
        self.bbox.is_none_or(|b| b.contains(lat, lon))
    }

    pub fn tag_ok(&self, name: &str) -> bool {
        self.tags.as_ref().is_none_or(|g| g.is_match(name))
            && !self.not_tags.as_ref().is_some_and(|g| g.is_match(name))
    }

    /// Whether a `GEO_COORD` member (`{"lat","lon","categ","value"}`, or a phone point's
    /// `{"lat","lon"}`, which has no category) passes the category and region filters.
    pub fn coord_member_ok(&self, member: &str) -> bool {
        if self.categs.is_empty() && self.bbox.is_none() {
            return true;
        }
        let Ok(v) = serde_json::from_str::<Value>(member) else {
            return false;
        };
        // Phone points spell their coordinates as strings ("49.0000").
        let num = |k: &str| match v.get(k) {
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(n) => n.as_f64(),
            None => None,
        };
        let place = match (num("lat"), num("lon")) {
            (Some(lat), Some(lon)) => self.place_ok(lat, lon),
            _ => self.bbox.is_none(),
        };
        place && self.categ_ok(v.get("categ").and_then(Value::as_str))
    }
}

fn parse_bbox(raw: &str) -> Result<BBox, WebError> {
    let bad = || {
        WebError::bad(
            "bbox must be minLat,minLon,maxLat,maxLon in degrees (latitudes -90..90, \
             longitudes -180..180, minLat <= maxLat)",
        )
    };
    let n: Vec<f64> = raw
        .split(',')
        .map(|v| v.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [min_lat, min_lon, max_lat, max_lon] = n[..] else {
        return Err(bad());
    };
    let lat = |v: f64| v.is_finite() && (-90.0..=90.0).contains(&v);
    let lon = |v: f64| v.is_finite() && (-180.0..=180.0).contains(&v);
    if !(lat(min_lat) && lat(max_lat) && lon(min_lon) && lon(max_lon)) || min_lat > max_lat {
        return Err(bad());
    }
    Ok(BBox {
        min_lat,
        min_lon,
        max_lat,
        max_lon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q)).expect("params")
    }

    const ALL: Accepts = Accepts {
        categ: true,
        country: true,
        bbox: true,
        tags: true,
        types: true,
    };

    #[test]
    fn tags_by_pattern_and_exclusion() {
        let n = Narrow::parse(
            &params("tags=tlp:*,misp-galaxy:*&not_tags=TLP:RED"),
            "r",
            ALL,
        )
        .expect("ok");
        assert!(n.tag_ok("tlp:green"));
        assert!(n.tag_ok("misp-galaxy:threat-actor=\"APT 28\""));
        assert!(!n.tag_ok("tlp:red"));
        assert!(!n.tag_ok("osint:source-type=\"blog-post\""));
        let none = Narrow::parse(&params(""), "r", ALL).expect("ok");
        assert!(none.is_empty() && none.tag_ok("anything"));
    }

    #[test]
    fn points_by_type_tags_and_country() {
        let n = Narrow::parse(
            &params("type=ip-dst&tags=tlp:*&not_tags=tlp:red&country=LU"),
            "r",
            ALL,
        )
        .expect("ok");
        assert!(n.needs_points());
        let point = |ty: &str, tags: &[&str], country: &str| {
            serde_json::json!({"coord": "{}", "rad": "{\"categ\": \"Network activity\", \"value\": \"x\"}",
                "lat": 49.6, "lon": 6.1, "country": country, "type": ty, "tags": tags})
        };
        assert!(n.point_ok(&point("ip-dst", &["tlp:green", "osint"], "LU")));
        assert!(!n.point_ok(&point("ip-src", &["tlp:green"], "LU")));
        assert!(!n.point_ok(&point("ip-dst", &["tlp:green", "tlp:red"], "LU")));
        assert!(!n.point_ok(&point("ip-dst", &["osint"], "LU")));
        assert!(!n.point_ok(&point("ip-dst", &["tlp:green"], "BE")));
    }

    #[test]
    fn regions_and_categories() {
        let n = Narrow::parse(
            &params("bbox=40,-10,60,30&categ=Network%20activity"),
            "r",
            ALL,
        )
        .expect("ok");
        assert!(n.coord_member_ok(
            r#"{"lat": 49.6117, "lon": 6.1319, "categ": "Network activity", "value": "x"}"#
        ));
        assert!(!n.coord_member_ok(
            r#"{"lat": 49.6117, "lon": 6.1319, "categ": "Payload delivery", "value": "x"}"#
        ));
        assert!(!n.coord_member_ok(
            r#"{"lat": 35.0, "lon": 6.1, "categ": "Network activity", "value": "x"}"#
        ));
        // A phone point has no category: out when categories are asked for; its coordinates
        // are strings.
        assert!(!n.coord_member_ok(r#"{"lat": "50.0000", "lon": "4.0000"}"#));
        let region = Narrow::parse(&params("bbox=40,-10,60,30"), "r", ALL).expect("ok");
        assert!(region.coord_member_ok(r#"{"lat": "50.0000", "lon": "4.0000"}"#));
        assert!(!region.coord_member_ok(r#"{"lat": "20.0000", "lon": "77.0000"}"#));
        // Across the antimeridian.
        let pacific = parse_bbox("-50,170,10,-170").expect("box");
        assert!(pacific.contains(0.0, 179.0) && pacific.contains(0.0, -175.0));
        assert!(!pacific.contains(0.0, 0.0));
    }

    #[test]
    fn what_a_route_cannot_answer_is_refused() {
        let only_tags = Accepts {
            tags: true,
            ..Accepts::default()
        };
        for q in ["categ=X", "country=LU", "bbox=0,0,1,1"] {
            let e = Narrow::parse(&params(q), "/_getTrendingTags", only_tags).expect_err("refused");
            assert!(
                e.to_string().contains("/_getTrendingTags does not take"),
                "{e}"
            );
        }
        for q in [
            "bbox=1,2,3",
            "bbox=91,0,92,1",
            "bbox=10,0,5,1",
            "country=LUX",
            "tags=[",
        ] {
            assert!(Narrow::parse(&params(q), "r", ALL).is_err(), "{q}");
        }
        let n = Narrow::parse(&params("country=lu,be"), "r", ALL).expect("ok");
        assert!(n.country_ok("LU") && n.country_ok("BE") && !n.country_ok("FR"));
    }
}
