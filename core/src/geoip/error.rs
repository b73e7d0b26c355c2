//! Errors raised when loading geolocation data. Lookups themselves never fail: a value that
//! cannot be resolved is an ordinary outcome ([`super::IpLookup`], [`super::PhoneLookup`]).

use std::path::PathBuf;

/// Why a geolocation data file could not be used. Each variant keeps the path, because the
/// operator has to fix a file named in the configuration.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read, or it is not a valid MaxMind DB file.
    #[error("cannot open the GeoIP database {}: {reason}", .path.display())]
    Open { path: PathBuf, reason: String },

    /// The file is a MaxMind DB, but neither a City database (GeoIP2/GeoLite2 schema) nor the
    /// flat DB-IP city schema, e.g. a Country or ASN database.
    #[error(
        "the GeoIP database {} has an unsupported layout (database_type {database_type:?}): \
         expected a GeoIP2/GeoLite2 City database or the DB-IP Lite city database",
        .path.display()
    )]
    UnknownLayout {
        path: PathBuf,
        database_type: String,
    },

    /// The country-centroid table could not be read or is not a JSON object.
    #[error("cannot load the country centroid table {}: {reason}", .path.display())]
    Centroids { path: PathBuf, reason: String },
}
