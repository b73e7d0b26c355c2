//! The original's `config.cfg`, read unchanged, with the original's defaults for what is missing.
//!
//! Migrating admins point mispdash at the file they already have, so every section and option
//! of the original is understood with its meaning (not its accidental string semantics: the
//! original reads `debug = False` as true; we read booleans as booleans). A value we cannot use
//! stops start-up with the file, section, option and the reason; an option we do not know only
//! warns, so a newer or older file still starts.

mod ini;
pub mod ranking;

pub use ranking::Ranking;

use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the configuration cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {reason}")]
    Unreadable { file: PathBuf, reason: String },
    #[error("{file}: not a valid INI file: {reason}")]
    Syntax { file: PathBuf, reason: String },
    #[error("{file}: [{section}] {option}: {reason}")]
    Value {
        file: PathBuf,
        section: String,
        option: String,
        reason: String,
    },
}

/// One MISP instance of `[RedisGlobal] misp_instances`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MispInstance {
    /// Feed name; becomes `zmq_name` in the buffer envelope and `zmqName` in live payloads.
    pub name: String,
    /// MISP web URL (unused by ingest, kept for the web side).
    #[serde(default)]
    pub url: Option<String>,
    /// ZeroMQ endpoint of MISP's publisher, e.g. `tcp://misp.example:50000`.
    pub zmq: String,
    /// MISP's `Plugin.ZeroMQ_username`, when the publisher requires PLAIN authentication.
    #[serde(default)]
    pub zmq_username: Option<String>,
    /// MISP's `Plugin.ZeroMQ_password`.
    #[serde(default)]
    pub zmq_password: Option<String>,
    /// mispdash: an API key of this MISP, for `mispdash backfill` (else
    /// `MISPDASH_MISP_API_KEY`). The original ignores the field.
    #[serde(default)]
    pub api_key: Option<String>,
    /// mispdash: whether `backfill` checks this MISP's certificate (default `[Auth]
    /// ssl_verify`).
    #[serde(default)]
    pub ssl_verify: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub debug: bool,
    pub ssl: bool,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub auth_enabled: bool,
    pub misp_fqdn: String,
    pub ssl_verify: bool,
    pub session_secret: String,
    /// `[mispdash] session_secret_file`: the secret is read from this file instead (mispdash
    /// addition: a package generates it at install, beside an unmodified `config.cfg`).
    pub session_secret_file: Option<PathBuf>,
    pub session_cookie_secure: bool,
    pub session_cookie_samesite: String,
    pub permanent_session_lifetime_days: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DashboardConfig {
    pub graph_log_refresh_rate: u32,
    pub rotation_wait_time: u32,
    pub max_img_rotation: u32,
    pub hours_spanned: u32,
    pub zoomlevel: u32,
    pub max_cache_history: u32,
    pub size_dashboard_left_width: u32,
    pub size_open_street_pannel_perc: u32,
    pub size_world_pannel_perc: u32,
    pub item_to_plot: String,
    pub fieldname_order: serde_json::Value,
    pub char_separator: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeoConfig {
    pub update_frequency: u32,
    pub zoomlevel: u32,
    pub clustering_distance: f64,
}

impl GeoConfig {
    /// The clustering threshold in degrees, from `clusteringDistance`.
    ///
    /// The original derives it from the number of characters of `str(float(distance))`, not
    /// from the distance itself (`10` gives `"10.0"`, 4 characters, hence 10^-3 degrees).
    /// Points are merged exactly as in existing installations only if that formula is kept.
    pub fn cluster_threshold(&self) -> f64 {
        let len = crate::pyjson::float_repr(self.clustering_distance).len() as i32;
        10f64.powi(len - 7)
    }
}

/// How contributions are scored: `compatible` reproduces the original's scoring quirks (so an
/// existing installation's ranks and awards go on as before); `corrected` fixes the ones that
/// are plain bugs (see `docs/compat.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scoring {
    #[default]
    Compatible,
    Corrected,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContribConfig {
    pub max_number_of_last_contributor: u32,
    pub min_between_reload: u32,
    pub additional_help_text: Vec<String>,
    /// `[CONTRIB] scoring` (mispdash addition).
    pub scoring: Scoring,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// The `[Log]` options the file sets: mispdash logs to stderr and says at start that they
    /// are not used (`docs/compat.md`, Configuration).
    pub given: Vec<String>,
    pub directory: PathBuf,
    pub dispatcher_filename: String,
    pub subscriber_filename: String,
    pub helpers_filename: String,
    pub update_filename: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    /// Not in the original (which has no Redis auth); `[RedisGlobal] password` or
    /// `MISPDASH_REDIS_PASSWORD`.
    pub password: Option<String>,
    pub misp_web_url: String,
    /// Whether `misp_web_url` was given (the default is the original's `http://0.0.0.0`).
    pub misp_web_url_set: bool,
    pub misp_instances: Vec<MispInstance>,
    /// `[RedisLIST] db`: the buffer list's database.
    pub list_db: i64,
    pub list_name: String,
    /// `[RedisLog] db`.
    pub log_db: i64,
    pub stream_log_cache_key: String,
    pub stream_map_cache_key: String,
    pub channel_live: String,
    pub channel_last_contributor: String,
    pub channel_last_awards: String,
    /// `[RedisMap] db`.
    pub map_db: i64,
    pub channel_map: String,
    pub path_maxmind_db: PathBuf,
    /// `None` when the option is absent: mispdash then uses its built-in centroid table.
    pub path_country_coords: Option<PathBuf>,
    /// `[RedisDB] db`: where all persistent data lives.
    pub data_db: i64,
    pub db_version_key: String,
    /// Not in the original: `[RedisGlobal] sentinels` and `sentinel_master`. When set, every
    /// connection asks these Sentinels where the master is (and asks again after losing it);
    /// `host` and `port` are then not used.
    pub sentinel: Option<SentinelConfig>,
    /// Not in the original: `[RedisGlobal] wait_replicas` (0: off). After each push of the
    /// subscriber, `WAIT` for this many replicas, so that a failover loses no message the
    /// subscriber let go of. (The dispatcher needs none: a failover rolls its commits and the
    /// buffer back together, so what it loses it handles again.)
    pub wait_replicas: u32,
    /// `[RedisGlobal] wait_timeout_ms`: how long `WAIT` may take before going on (default 1000).
    pub wait_timeout_ms: u64,
}

/// Redis Sentinels to ask for the current master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    /// `host:port` of each Sentinel, in the order given.
    pub nodes: Vec<(String, u16)>,
    /// The master's name in the Sentinels' configuration (`sentinel monitor NAME ...`).
    pub master: String,
    /// `[RedisGlobal] sentinel_password`, when the Sentinels require one (`requirepass` in
    /// their configuration); the data nodes use `password`.
    pub password: Option<String>,
}

/// The whole configuration, as read from the original's `config.cfg`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from, for messages; `None` for built-in defaults.
    pub source: Option<PathBuf>,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub dashboard: DashboardConfig,
    pub geo: GeoConfig,
    pub contrib: ContribConfig,
    pub log: LogConfig,
    pub redis: RedisConfig,
    /// `[mispdash] ranking_cfg`: where `ranking.cfg` is read from (built-in defaults otherwise).
    pub ranking_path: Option<PathBuf>,
    /// `[mispdash]` bounds on what one message may cost (mispdash additions).
    pub limits: Limits,
    /// `[mispdash]` protections of the HTTP server (mispdash additions).
    pub http: HttpGuard,
    /// `[ACL]`: the live views follow MISP's access rules (a mispdash addition).
    pub acl: AclConfig,
    /// `[mispdash] wider_geolocation` (a mispdash addition, off by default): also place the IP
    /// of composite values, MISP geolocation objects and every phone-number type on the map.
    /// Off, the GEO_* keys and the map are exactly the original's (`docs/compat.md` Q4), which
    /// an installation comparing its maps with the original's history needs.
    pub wider_geolocation: bool,
    /// `[mispdash] rewind_hours` and `rewind_max_bytes` (mispdash additions): how much of the
    /// live view the rewind stream keeps (`keys::REWIND`).
    pub rewind: RewindConfig,
    /// Options that were not recognised, as `(section, option)`, for a warning at start.
    pub unknown: Vec<(String, String)>,
}

/// Bounds that keep one message, however large, from exhausting memory (`[mispdash]`,
/// additions of mispdash; `docs/compat.md` F10-F11).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// `large_message_bytes`: above this size of a message, each of its live-log entries
    /// carries the event without the event's other attributes and objects. The original copies
    /// the whole event into every attribute's entry, which is quadratic in the event's size.
    pub large_message_bytes: usize,
    /// `live_cache_max_bytes`: the live caches (`TEMP_CACHE_LIVE:*`) hold at most this many
    /// bytes each, as well as at most 101 entries.
    pub live_cache_max_bytes: usize,
    /// `max_attempts`: how many times a message that cannot be committed (Redis refuses its
    /// writes, or the dispatcher stops or crashes while applying it) is tried, across
    /// restarts, before it is set aside in the dead-letter list.
    pub max_attempts: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            large_message_bytes: 64 << 10,
            live_cache_max_bytes: 16 << 20,
            max_attempts: 3,
        }
    }
}

/// What the live page can rewind (`[mispdash]`, additions of mispdash): the live rows and map
/// points of the last `hours`, kept in a Redis stream in mispdash's namespace
/// (`keys::REWIND`). A day at a hundred rows a second would hold gigabytes, so the stream is
/// also bounded in bytes: whichever bound is reached first drops the oldest entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewindConfig {
    /// `rewind_hours` (0 to 168): how far back the page can go; 0 keeps nothing (off).
    pub hours: u32,
    /// `rewind_max_bytes`: what the stream's entries may hold in all (their JSON text; Redis
    /// adds its own bookkeeping, see `docs/performance.md`).
    pub max_bytes: usize,
}

impl Default for RewindConfig {
    fn default() -> Self {
        RewindConfig {
            hours: 24,
            max_bytes: 256 << 20,
        }
    }
}

impl RewindConfig {
    /// Whether anything is kept.
    pub fn enabled(&self) -> bool {
        self.hours > 0
    }
}

/// What the HTTP server allows one client, and whom it believes (`[mispdash]`, additions of
/// mispdash; `docs/compat.md` S1-S6). Without these, a client that opens connections and sends
/// nothing, or a login body slowly, holds the server's memory and files for ever.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpGuard {
    /// `connection_timeout` (seconds): what each phase of a connection may take before it says
    /// anything: the TLS handshake, the first bytes, a request's headers, a login's body, and
    /// the answer to an HTTP/2 ping. An idle HTTP/1 connection is closed after it too.
    pub connection_timeout: u64,
    /// `max_connections`: connections open at once in all (lowered to what the open-files
    /// limit allows); more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// `max_connections_per_address`: connections open at once from one address (an IPv6
    /// client's /64, which one host usually holds whole; a trusted proxy's connections are not
    /// counted per address).
    pub max_connections_per_address: usize,
    /// `max_streams_per_client`: live streams open at once per session (per address without
    /// login).
    pub max_streams_per_client: usize,
    /// `trusted_proxies`: addresses or networks (`127.0.0.1`, `10.0.0.0/8`) of reverse proxies
    /// whose `X-Forwarded-For` names the client; from anyone else the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `login_attempts_per_minute`: login attempts per client address, and per account name.
    pub login_attempts_per_minute: u32,
    /// `session_recheck_seconds`: how often a session's user is asked of MISP again (needs
    /// `misp_api_key`).
    pub session_recheck_seconds: u32,
    /// `misp_api_key`: a MISP site admin's API key with which sessions are re-checked (the
    /// user's `dashboard_access` and whether the account is disabled). Unset: sessions are
    /// ended only by logout or expiry, and the start log says so.
    pub misp_api_key: Option<String>,
    /// `metrics_public`: serve `/metrics` without a session when auth is on.
    pub metrics_public: bool,
}

impl Default for HttpGuard {
    fn default() -> Self {
        HttpGuard {
            connection_timeout: 10,
            max_connections: 4096,
            max_connections_per_address: 256,
            max_streams_per_client: 32,
            trusted_proxies: Vec::new(),
            login_attempts_per_minute: 10,
            session_recheck_seconds: 900,
            misp_api_key: None,
            metrics_public: false,
        }
    }
}

/// `[ACL]` (a mispdash addition, `docs/acl.md`): with login on, the live log and map show each
/// user only what MISP would show them. On by default with login; `enabled = False` turns it
/// off.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AclConfig {
    /// `enabled`: apply MISP's rules to the live views (needs `[Auth] auth_enabled`); the
    /// dispatcher then records each map point's facts (`keys::ACL_MAP`).
    pub enabled: bool,
    /// `unpublished_private`, `sightings_policy`, `host_org_id`: MISP's settings of the same
    /// meaning (`MISP.unpublishedprivate`, `Plugin.Sightings_policy`, `MISP.host_org_id`).
    pub policy: crate::acl::Policy,
    /// `aggregate_min_distribution` (0-4, MISP's distribution levels; unset: every message
    /// counts): messages shared less widely (see `acl::sharing_rank`) are not counted into the
    /// statistics (trendings, geolocation, contributions) from then on. As a rank.
    pub aggregate_min_rank: Option<u8>,
}

/// A list of addresses or networks, comma or space separated.
fn parse_networks(v: &str) -> Result<Vec<ipnet::IpNet>, String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{t:?} is not an IP address or network (e.g. 10.0.0.0/8)"))
        })
        .collect()
}

/// The default `fieldname_order` of `config.cfg.default`.
pub const DEFAULT_FIELDNAME_ORDER: &str = r#"["Attribute.timestamp", "Event.id", "Attribute.Tag", "Attribute.category", "Attribute.type", ["Attribute.value", "Attribute.comment"]]"#;

const DEFAULT_MISP_INSTANCES: &str =
    r#"[{"name": "misp1", "url": "http://localhost", "zmq": "tcp://localhost:50000"}]"#;

/// Options per section that mispdash understands; anything else warns.
const KNOWN: &[(&str, &[&str])] = &[
    (
        "Server",
        &["host", "port", "debug", "ssl", "ssl_cert", "ssl_key"],
    ),
    (
        "Auth",
        &[
            "auth_enabled",
            "misp_fqdn",
            "ssl_verify",
            "session_secret",
            "session_cookie_secure",
            "session_cookie_samesite",
            "permanent_session_lifetime",
        ],
    ),
    (
        "Dashboard",
        &[
            "graph_log_refresh_rate",
            "rotation_wait_time",
            "max_img_rotation",
            "hours_spanned",
            "zoomlevel",
            "maxcachehistory",
            "size_dashboard_left_width",
            "size_openstreet_pannel_perc",
            "size_world_pannel_perc",
            "item_to_plot",
            "fieldname_order",
            "char_separator",
        ],
    ),
    (
        "GEO",
        &["updatefrequency", "zoomlevel", "clusteringdistance"],
    ),
    (
        "CONTRIB",
        &[
            "max_number_of_last_contributor",
            "min_between_reload",
            "additional_help_text",
            "scoring",
        ],
    ),
    (
        "Log",
        &[
            "directory",
            "dispatcher_filename",
            "subscriber_filename",
            "helpers_filename",
            "update_filename",
        ],
    ),
    (
        "RedisGlobal",
        &[
            "host",
            "port",
            "password",
            "misp_web_url",
            "misp_instances",
            "zmq_url",
            "sentinels",
            "sentinel_master",
            "sentinel_password",
            "wait_replicas",
            "wait_timeout_ms",
        ],
    ),
    ("RedisLIST", &["db", "listname"]),
    (
        "RedisLog",
        &[
            "db",
            "streamlogcachekey",
            "streammapcachekey",
            "channel",
            "channellastcontributor",
            "channellastawards",
        ],
    ),
    (
        "RedisMap",
        &[
            "db",
            "channeldisp",
            "pathmaxminddb",
            "path_countrycode_to_coord_json",
        ],
    ),
    ("RedisDB", &["db", "dbversion"]),
    (
        "ACL",
        &[
            "enabled",
            "unpublished_private",
            "sightings_policy",
            "host_org_id",
            "aggregate_min_distribution",
        ],
    ),
    (
        "mispdash",
        &[
            "ranking_cfg",
            "large_message_bytes",
            "live_cache_max_bytes",
            "max_attempts",
            "connection_timeout",
            "max_connections",
            "max_connections_per_address",
            "max_streams_per_client",
            "trusted_proxies",
            "login_attempts_per_minute",
            "session_recheck_seconds",
            "misp_api_key",
            "metrics_public",
            "session_secret_file",
            "wider_geolocation",
            "rewind_hours",
            "rewind_max_bytes",
        ],
    ),
];

impl Config {
    /// The original's defaults, as if `config.cfg` were empty.
    pub fn defaults() -> Config {
        let ini = ini::Ini::empty();
        // Parsing the empty file cannot fail: every default below is valid.
        Self::from_ini(&ini, Path::new("<defaults>")).expect("built-in defaults are valid")
    }

    /// Reads `path` and applies the environment overrides (see [`Config::apply_env`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            file: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut cfg = Self::parse(&text, path)?;
        cfg.source = Some(path.to_path_buf());
        cfg.apply_env(|k| std::env::var(k).ok())?;
        if let Some(file) = cfg.auth.session_secret_file.clone() {
            let secret = std::fs::read_to_string(&file).map_err(|e| ConfigError::Unreadable {
                file: file.clone(),
                reason: format!("{e} ([mispdash] session_secret_file)"),
            })?;
            let secret = secret.trim();
            if secret.is_empty() {
                return Err(ConfigError::Value {
                    file: path.to_path_buf(),
                    section: "mispdash".into(),
                    option: "session_secret_file".into(),
                    reason: format!("{} is empty", file.display()),
                });
            }
            cfg.auth.session_secret = secret.to_string();
        }
        Ok(cfg)
    }

    /// Parses the text of a `config.cfg`; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let ini = ini::Ini::parse(text).map_err(|reason| ConfigError::Syntax {
            file: path.to_path_buf(),
            reason,
        })?;
        Self::from_ini(&ini, path)
    }

    /// Environment overrides so a container needs no file: `MISPDASH_REDIS_HOST`,
    /// `MISPDASH_REDIS_PORT`, `MISPDASH_REDIS_PASSWORD`, or `MISPDASH_REDIS_URL`
    /// (`redis://[:password@]host:port`); `MISPDASH_REDIS_SENTINELS` and
    /// `MISPDASH_REDIS_SENTINEL_MASTER` for `[RedisGlobal] sentinels` and `sentinel_master`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let env_err = |option: &str, reason: String| ConfigError::Value {
            file: PathBuf::from("<environment>"),
            section: "RedisGlobal".into(),
            option: option.into(),
            reason,
        };
        if let Some(url) = get("MISPDASH_REDIS_URL").filter(|s| !s.is_empty()) {
            let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
                .map_err(|e| env_err("MISPDASH_REDIS_URL", e.to_string()))?;
            match info.addr {
                redis::ConnectionAddr::Tcp(host, port) => {
                    self.redis.host = host;
                    self.redis.port = port;
                }
                other => {
                    return Err(env_err(
                        "MISPDASH_REDIS_URL",
                        format!("only tcp addresses are supported, not {other}"),
                    ))
                }
            }
            if let Some(pw) = info.redis.password {
                self.redis.password = Some(pw);
            }
        }
        if let Some(host) = get("MISPDASH_REDIS_HOST").filter(|s| !s.is_empty()) {
            self.redis.host = host;
        }
        if let Some(port) = get("MISPDASH_REDIS_PORT").filter(|s| !s.is_empty()) {
            self.redis.port = port
                .trim()
                .parse()
                .map_err(|_| env_err("MISPDASH_REDIS_PORT", format!("{port:?} is not a port")))?;
        }
        if let Some(pw) = get("MISPDASH_REDIS_PASSWORD").filter(|s| !s.is_empty()) {
            self.redis.password = Some(pw);
        }
        let sentinels = get("MISPDASH_REDIS_SENTINELS").filter(|s| !s.trim().is_empty());
        let master = get("MISPDASH_REDIS_SENTINEL_MASTER").filter(|s| !s.trim().is_empty());
        if sentinels.is_some() || master.is_some() {
            let known = self.redis.sentinel.clone();
            let nodes = match (sentinels, &known) {
                (Some(list), _) => parse_sentinels(&list)
                    .map_err(|e| env_err("MISPDASH_REDIS_SENTINELS", format!("{list:?}: {e}")))?,
                (None, Some(k)) => k.nodes.clone(),
                (None, None) => {
                    return Err(env_err(
                        "MISPDASH_REDIS_SENTINELS",
                        "missing: MISPDASH_REDIS_SENTINEL_MASTER needs the Sentinels to ask".into(),
                    ))
                }
            };
            let master = match (master, &known) {
                (Some(m), _) => m.trim().to_string(),
                (None, Some(k)) => k.master.clone(),
                (None, None) => {
                    return Err(env_err(
                        "MISPDASH_REDIS_SENTINEL_MASTER",
                        "missing: with MISPDASH_REDIS_SENTINELS, name the master they watch".into(),
                    ))
                }
            };
            self.redis.sentinel = Some(SentinelConfig {
                nodes,
                master,
                password: known.and_then(|k| k.password),
            });
        }
        Ok(())
    }

    fn from_ini(ini: &ini::Ini, path: &Path) -> Result<Config, ConfigError> {
        let r = Reader { ini, path };
        let server = ServerConfig {
            host: r.string("Server", "host", "localhost"),
            port: r.parse_with("Server", "port", "8001", parse_port)?,
            debug: r.boolean("Server", "debug", false)?,
            ssl: r.boolean("Server", "ssl", false)?,
            ssl_cert: r.opt("Server", "ssl_cert").map(PathBuf::from),
            ssl_key: r.opt("Server", "ssl_key").map(PathBuf::from),
        };
        let auth = AuthConfig {
            auth_enabled: r.boolean("Auth", "auth_enabled", false)?,
            misp_fqdn: r.string("Auth", "misp_fqdn", "https://misp.local"),
            ssl_verify: r.boolean("Auth", "ssl_verify", true)?,
            session_secret: r.string("Auth", "session_secret", "**Change_Me**"),
            session_secret_file: r
                .opt("mispdash", "session_secret_file")
                .map(|p| PathBuf::from(p.trim()))
                .filter(|p| !p.as_os_str().is_empty()),
            session_cookie_secure: r.boolean("Auth", "session_cookie_secure", true)?,
            session_cookie_samesite: r.parse_with(
                "Auth",
                "session_cookie_samesite",
                "Strict",
                |v| match v.to_ascii_lowercase().as_str() {
                    "strict" => Ok("Strict".to_string()),
                    "lax" => Ok("Lax".to_string()),
                    "none" => Ok("None".to_string()),
                    _ => Err("must be Strict, Lax or None".to_string()),
                },
            )?,
            permanent_session_lifetime_days: r.number("Auth", "permanent_session_lifetime", 1)?,
        };
        let dashboard = DashboardConfig {
            graph_log_refresh_rate: r.number("Dashboard", "graph_log_refresh_rate", 1)?,
            rotation_wait_time: r.number("Dashboard", "rotation_wait_time", 30)?,
            max_img_rotation: r.number("Dashboard", "max_img_rotation", 10)?,
            hours_spanned: r.number("Dashboard", "hours_spanned", 48)?,
            zoomlevel: r.number("Dashboard", "zoomlevel", 15)?,
            max_cache_history: r.number("Dashboard", "maxCacheHistory", 30)?,
            size_dashboard_left_width: r.number("Dashboard", "size_dashboard_left_width", 5)?,
            size_open_street_pannel_perc: r.number(
                "Dashboard",
                "size_openStreet_pannel_perc",
                55,
            )?,
            size_world_pannel_perc: r.number("Dashboard", "size_world_pannel_perc", 35)?,
            item_to_plot: r.string("Dashboard", "item_to_plot", "Attribute.category"),
            fieldname_order: r.json("Dashboard", "fieldname_order", DEFAULT_FIELDNAME_ORDER)?,
            char_separator: r.string("Dashboard", "char_separator", "||"),
        };
        let geo = GeoConfig {
            update_frequency: r.number("GEO", "updateFrequency", 60)?,
            zoomlevel: r.number("GEO", "zoomlevel", 11)?,
            clustering_distance: r.parse_with("GEO", "clusteringDistance", "10", |v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .ok_or_else(|| "must be a positive number".to_string())
            })?,
        };
        let contrib = ContribConfig {
            max_number_of_last_contributor: r.number(
                "CONTRIB",
                "max_number_of_last_contributor",
                10,
            )?,
            min_between_reload: r.number("CONTRIB", "min_between_reload", 5)?,
            additional_help_text: r.parse_with(
                "CONTRIB",
                "additional_help_text",
                r#"["Sightings multiplies earned points by 2", "Editing an attribute earns you the same as creating one"]"#,
                |v| serde_json::from_str::<Vec<String>>(v).map_err(|e| format!("not a JSON list of strings: {e}")),
            )?,
            scoring: r.parse_with("CONTRIB", "scoring", "compatible", |v| {
                match v.to_ascii_lowercase().as_str() {
                    "compatible" => Ok(Scoring::Compatible),
                    "corrected" => Ok(Scoring::Corrected),
                    _ => Err("must be compatible or corrected".into()),
                }
            })?,
        };
        let log = LogConfig {
            given: [
                "directory",
                "dispatcher_filename",
                "subscriber_filename",
                "helpers_filename",
                "update_filename",
            ]
            .into_iter()
            .filter(|o| r.opt("Log", o).is_some())
            .map(String::from)
            .collect(),
            directory: PathBuf::from(r.string("Log", "directory", "logs")),
            dispatcher_filename: r.string("Log", "dispatcher_filename", "zmq_dispatcher.log"),
            subscriber_filename: r.string("Log", "subscriber_filename", "zmq_subscriber.log"),
            helpers_filename: r.string("Log", "helpers_filename", "helpers.log"),
            update_filename: r.string("Log", "update_filename", "updates.log"),
        };
        let misp_instances = r.parse_with(
            "RedisGlobal",
            "misp_instances",
            DEFAULT_MISP_INSTANCES,
            parse_instances,
        )?;
        let redis = RedisConfig {
            host: r.string("RedisGlobal", "host", "localhost"),
            port: r.parse_with("RedisGlobal", "port", "6250", parse_port)?,
            password: r.opt("RedisGlobal", "password"),
            misp_web_url: r.string("RedisGlobal", "misp_web_url", "http://0.0.0.0"),
            misp_web_url_set: r.opt("RedisGlobal", "misp_web_url").is_some(),
            misp_instances,
            list_db: r.db("RedisLIST", "db", 3)?,
            list_name: r.nonempty("RedisLIST", "listName", "bufferList")?,
            log_db: r.db("RedisLog", "db", 0)?,
            stream_log_cache_key: r.string("RedisLog", "streamLogCacheKey", "streamLogCache"),
            stream_map_cache_key: r.string("RedisLog", "streamMapCacheKey", "streamMapsCache"),
            channel_live: r.nonempty("RedisLog", "channel", "1")?,
            channel_last_contributor: r.nonempty(
                "RedisLog",
                "channelLastContributor",
                "lastContributor",
            )?,
            channel_last_awards: r.nonempty("RedisLog", "channelLastAwards", "lastAwards")?,
            map_db: r.db("RedisMap", "db", 1)?,
            channel_map: r.nonempty("RedisMap", "channelDisp", "PicToDisplay")?,
            path_maxmind_db: PathBuf::from(r.string(
                "RedisMap",
                "pathMaxMindDB",
                "./data/GeoLite2-City/GeoLite2-City.mmdb",
            )),
            path_country_coords: r
                .opt("RedisMap", "path_countrycode_to_coord_JSON")
                .map(PathBuf::from),
            data_db: r.db("RedisDB", "db", 2)?,
            db_version_key: r.nonempty("RedisDB", "dbVersion", "db_version")?,
            sentinel: r.sentinel()?,
            wait_replicas: r.parse_with("RedisGlobal", "wait_replicas", "0", |v| {
                v.parse::<u32>()
                    .map_err(|_| "must be a number of replicas (0: off)".to_string())
            })?,
            wait_timeout_ms: r.parse_with("RedisGlobal", "wait_timeout_ms", "1000", |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|t| (1..=10_000).contains(t))
                    .ok_or_else(|| "must be a number of milliseconds from 1 to 10000".to_string())
            })?,
        };
        let ranking_path = r.opt("mispdash", "ranking_cfg").map(PathBuf::from);
        let d = Limits::default();
        let positive = |option: &str, default: usize| {
            r.parse_with("mispdash", option, &default.to_string(), |v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| "must be a positive whole number of bytes".to_string())
            })
        };
        let limits = Limits {
            large_message_bytes: positive("large_message_bytes", d.large_message_bytes)?,
            live_cache_max_bytes: positive("live_cache_max_bytes", d.live_cache_max_bytes)?,
            max_attempts: r.parse_with(
                "mispdash",
                "max_attempts",
                &d.max_attempts.to_string(),
                |v| {
                    v.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| "must be a whole number from 1 to 100".to_string())
                },
            )?,
        };
        let g = HttpGuard::default();
        let whole = |option: &str, default: usize, max: usize| {
            r.parse_with("mispdash", option, &default.to_string(), |v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| format!("must be a whole number from 1 to {max}"))
            })
        };
        let http = HttpGuard {
            connection_timeout: whole("connection_timeout", g.connection_timeout as usize, 3600)?
                as u64,
            max_connections: whole("max_connections", g.max_connections, 1_000_000)?,
            max_connections_per_address: whole(
                "max_connections_per_address",
                g.max_connections_per_address,
                1_000_000,
            )?,
            max_streams_per_client: whole(
                "max_streams_per_client",
                g.max_streams_per_client,
                100_000,
            )?,
            trusted_proxies: r.parse_with("mispdash", "trusted_proxies", "", parse_networks)?,
            login_attempts_per_minute: whole(
                "login_attempts_per_minute",
                g.login_attempts_per_minute as usize,
                10_000,
            )? as u32,
            session_recheck_seconds: whole(
                "session_recheck_seconds",
                g.session_recheck_seconds as usize,
                604_800,
            )? as u32,
            misp_api_key: r
                .opt("mispdash", "misp_api_key")
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
            metrics_public: r.boolean("mispdash", "metrics_public", g.metrics_public)?,
        };
        let aggregate_min_rank = r.parse_with("ACL", "aggregate_min_distribution", "", |v| {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<u8>()
                .ok()
                .filter(|d| *d <= 4)
                .and_then(crate::acl::sharing_rank)
                .map(Some)
                .ok_or_else(|| {
                    "must be a MISP distribution level: 0 (organisation only), 4 (sharing \
                     group), 1 (community), 2 (connected communities) or 3 (all)"
                        .to_string()
                })
        })?;
        let acl = AclConfig {
            aggregate_min_rank,
            // On with login unless said otherwise: a dashboard that shows every organisation's
            // confidential events to every signed-in user cannot be deployed on a shared MISP.
            enabled: r.boolean("ACL", "enabled", auth.auth_enabled)?,
            policy: crate::acl::Policy {
                unpublished_private: r.boolean("ACL", "unpublished_private", false)?,
                sightings_policy: r.parse_with("ACL", "sightings_policy", "0", |v| {
                    v.parse::<u8>()
                        .ok()
                        .filter(|n| *n <= 3)
                        .ok_or_else(|| "must be MISP's Sightings_policy, 0 to 3".to_string())
                })?,
                host_org_id: r.parse_with("ACL", "host_org_id", "", |v| {
                    if v.trim().is_empty() {
                        return Ok(None);
                    }
                    v.trim()
                        .parse::<u64>()
                        .map(Some)
                        .map_err(|_| "must be MISP's host organisation id (a number)".to_string())
                })?,
            },
        };
        let wider_geolocation = r.boolean("mispdash", "wider_geolocation", false)?;
        let rd = RewindConfig::default();
        let rewind = RewindConfig {
            hours: r.parse_with("mispdash", "rewind_hours", &rd.hours.to_string(), |v| {
                v.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|h| *h <= 168)
                    .ok_or_else(|| {
                        "must be a whole number of hours from 0 (off) to 168".to_string()
                    })
            })?,
            max_bytes: r.parse_with(
                "mispdash",
                "rewind_max_bytes",
                &rd.max_bytes.to_string(),
                |v| {
                    v.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n >= 1 << 16)
                        .ok_or_else(|| {
                            "must be a whole number of bytes, at least 65536".to_string()
                        })
                },
            )?,
        };
        let unknown = r.unknown();
        Ok(Config {
            source: None,
            server,
            auth,
            dashboard,
            geo,
            contrib,
            log,
            redis,
            ranking_path,
            limits,
            http,
            acl,
            wider_geolocation,
            rewind,
            unknown,
        })
    }

    /// The file a relative path in the configuration refers to: relative paths are taken from
    /// the working directory, as the original does.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        p.to_path_buf()
    }
}

fn parse_port(v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| "must be a TCP port (1-65535)".to_string())
}

/// `host:port, host:port, ...` (an IPv6 address in brackets: `[::1]:26379`).
fn parse_sentinels(v: &str) -> Result<Vec<(String, u16)>, String> {
    let nodes = v
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            let (host, port) = n
                .rsplit_once(':')
                .ok_or_else(|| format!("{n:?} is not host:port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("{n:?} has no host"));
            }
            let port = parse_port(port).map_err(|e| format!("{n:?}: {e}"))?;
            Ok((host.to_string(), port))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if nodes.is_empty() {
        return Err("no Sentinel given".into());
    }
    Ok(nodes)
}

fn parse_instances(v: &str) -> Result<Vec<MispInstance>, String> {
    let list: Vec<MispInstance> = serde_json::from_str(v)
        .map_err(|e| format!("not a JSON list of {{\"name\", \"url\", \"zmq\"}} objects: {e}"))?;
    let mut names = std::collections::HashSet::new();
    for inst in &list {
        if inst.name.is_empty() {
            return Err("an instance has an empty \"name\"".into());
        }
        if !names.insert(inst.name.as_str()) {
            return Err(format!("instance name {:?} appears twice", inst.name));
        }
        let scheme_ok = ["tcp://", "ipc://", "inproc://", "pgm://", "epgm://"]
            .iter()
            .any(|s| inst.zmq.starts_with(s));
        if !scheme_ok {
            return Err(format!(
                "instance {:?}: \"zmq\" = {:?} is not a ZeroMQ endpoint like tcp://host:50000",
                inst.name, inst.zmq
            ));
        }
        if inst.zmq_username.is_some() != inst.zmq_password.is_some() {
            return Err(format!(
                "instance {:?}: zmq_username and zmq_password go together",
                inst.name
            ));
        }
    }
    Ok(list)
}

/// Typed access to the INI with the original's defaults and located errors.
struct Reader<'a> {
    ini: &'a ini::Ini,
    path: &'a Path,
}

impl Reader<'_> {
    fn opt(&self, section: &str, option: &str) -> Option<String> {
        self.ini.get(section, option)
    }

    /// `[RedisGlobal] sentinels` (`host:port, host:port, ...`) with `sentinel_master`: both or
    /// neither.
    fn sentinel(&self) -> Result<Option<SentinelConfig>, ConfigError> {
        let list = self
            .opt("RedisGlobal", "sentinels")
            .filter(|v| !v.trim().is_empty());
        let master = self
            .opt("RedisGlobal", "sentinel_master")
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty());
        let (list, master) = match (list, master) {
            (None, None) => return Ok(None),
            (Some(l), Some(m)) => (l, m),
            (Some(_), None) => {
                return Err(self.err(
                    "RedisGlobal",
                    "sentinel_master",
                    "missing: with sentinels, name the master they watch (their `sentinel \
                     monitor NAME ...`)"
                        .into(),
                ))
            }
            (None, Some(_)) => {
                return Err(self.err(
                    "RedisGlobal",
                    "sentinels",
                    "missing: sentinel_master needs the Sentinels to ask (host:port, ...)".into(),
                ))
            }
        };
        let nodes = parse_sentinels(&list).map_err(|reason| {
            self.err("RedisGlobal", "sentinels", format!("{list:?}: {reason}"))
        })?;
        Ok(Some(SentinelConfig {
            nodes,
            master,
            password: self
                .opt("RedisGlobal", "sentinel_password")
                .filter(|p| !p.is_empty()),
        }))
    }

    fn string(&self, section: &str, option: &str, default: &str) -> String {
        self.opt(section, option)
            .unwrap_or_else(|| default.to_string())
    }

    fn err(&self, section: &str, option: &str, reason: String) -> ConfigError {
        ConfigError::Value {
            file: self.path.to_path_buf(),
            section: section.into(),
            option: option.into(),
            reason,
        }
    }

    fn parse_with<T>(
        &self,
        section: &str,
        option: &str,
        default: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.string(section, option, default);
        f(raw.trim()).map_err(|reason| self.err(section, option, format!("{raw:?}: {reason}")))
    }

    fn nonempty(&self, section: &str, option: &str, default: &str) -> Result<String, ConfigError> {
        self.parse_with(section, option, default, |v| {
            if v.is_empty() {
                Err("must not be empty".into())
            } else {
                Ok(v.to_string())
            }
        })
    }

    fn number(&self, section: &str, option: &str, default: u32) -> Result<u32, ConfigError> {
        self.parse_with(section, option, &default.to_string(), |v| {
            v.parse::<u32>()
                .map_err(|_| "must be a whole number".to_string())
        })
    }

    fn db(&self, section: &str, option: &str, default: i64) -> Result<i64, ConfigError> {
        self.parse_with(section, option, &default.to_string(), |v| {
            v.parse::<i64>()
                .ok()
                .filter(|d| (0..=1_000_000).contains(d))
                .ok_or_else(|| "must be a Redis database number (0, 1, 2, ...)".to_string())
        })
    }

    /// Python's `getboolean` vocabulary.
    fn boolean(&self, section: &str, option: &str, default: bool) -> Result<bool, ConfigError> {
        let d = if default { "True" } else { "False" };
        self.parse_with(section, option, d, |v| {
            match v.to_ascii_lowercase().as_str() {
                "1" | "yes" | "true" | "on" => Ok(true),
                "0" | "no" | "false" | "off" => Ok(false),
                _ => Err("must be a boolean (True/False, yes/no, on/off, 1/0)".into()),
            }
        })
    }

    fn json(
        &self,
        section: &str,
        option: &str,
        default: &str,
    ) -> Result<serde_json::Value, ConfigError> {
        self.parse_with(section, option, default, |v| {
            serde_json::from_str(v).map_err(|e| format!("not valid JSON: {e}"))
        })
    }

    fn unknown(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (section, options) in self.ini.sections() {
            match KNOWN.iter().find(|(s, _)| s.eq_ignore_ascii_case(&section)) {
                None => {
                    for o in options {
                        out.push((section.to_string(), o.to_string()));
                    }
                }
                Some((_, known)) => {
                    for o in options {
                        if !known.iter().any(|k| k.eq_ignore_ascii_case(&o)) {
                            out.push((section.to_string(), o.to_string()));
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_threshold_follows_the_digit_count() {
        let t = |clustering_distance| {
            GeoConfig {
                update_frequency: 60,
                zoomlevel: 15,
                clustering_distance,
            }
            .cluster_threshold()
        };
        assert!((t(10.0) - 0.001).abs() < 1e-15);
        assert!((t(100.0) - 0.01).abs() < 1e-15);
        assert!((t(2.5) - 0.0001).abs() < 1e-15);
    }

    const ORIGINAL_DEFAULT: &str = r#"[Server]
host = localhost
port = 8001
debug = False
ssl = False
# If you set SSL to True with a cert/key then an adhoc (self-signed) certificate is created
# ssl_cert = cert.pem
# ssl_key = key.pem

[Auth]
auth_enabled = False
misp_fqdn = https://misp.local
ssl_verify = True
session_secret = **Change_Me**
session_cookie_secure = True
session_cookie_samesite = Strict
permanent_session_lifetime = 1

[Dashboard]
graph_log_refresh_rate = 1
fieldname_order=["Attribute.timestamp", "Event.id", "Attribute.Tag", "Attribute.category", "Attribute.type", ["Attribute.value", "Attribute.comment"]]
char_separator=||

[RedisGlobal]
host=localhost
port=6250
misp_web_url = http://0.0.0.0
misp_instances = [{
    "name": "misp1",
    "url": "http://localhost",
    "zmq": "tcp://localhost:50000"
    }]

[RedisLIST]
db=3
listName=bufferList
"#;

    #[test]
    fn reads_the_original_layout() {
        let c = Config::parse(ORIGINAL_DEFAULT, Path::new("config.cfg")).expect("parses");
        assert_eq!(c.server.port, 8001);
        assert!(!c.server.debug, "False must read as false");
        assert_eq!(c.redis.port, 6250);
        assert_eq!(c.redis.misp_instances.len(), 1);
        assert_eq!(c.redis.misp_instances[0].name, "misp1");
        assert_eq!(c.redis.misp_instances[0].zmq, "tcp://localhost:50000");
        assert_eq!(c.redis.list_db, 3);
        assert_eq!(c.redis.data_db, 2);
        assert_eq!(c.dashboard.char_separator, "||");
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    }

    #[test]
    fn access_control_is_on_with_login_unless_turned_off() {
        let p = Path::new("c.cfg");
        let c = Config::parse(ORIGINAL_DEFAULT, p).expect("parses");
        assert!(!c.acl.enabled, "login off: nothing to apply");
        let login = ORIGINAL_DEFAULT.replace("auth_enabled = False", "auth_enabled = True");
        assert!(Config::parse(&login, p).expect("parses").acl.enabled);
        let off = format!("{login}\n[ACL]\nenabled = False\n");
        assert!(!Config::parse(&off, p).expect("parses").acl.enabled);
        let bad = format!("{login}\n[ACL]\nsightings_policy = 7\n");
        assert!(Config::parse(&bad, p)
            .expect_err("bad policy")
            .to_string()
            .contains("[ACL] sightings_policy"));
    }

    #[test]
    fn bad_values_name_section_and_option() {
        let e = Config::parse("[RedisGlobal]\nport = sixty\n", Path::new("x.cfg"))
            .expect_err("bad port");
        let msg = e.to_string();
        assert!(
            msg.contains("x.cfg") && msg.contains("[RedisGlobal] port"),
            "{msg}"
        );
        let e = Config::parse("[Server]\ndebug = maybe\n", Path::new("x.cfg")).expect_err("bool");
        assert!(e.to_string().contains("[Server] debug"));
        let e = Config::parse(
            "[RedisGlobal]\nmisp_instances = [{\"name\": 1}]\n",
            Path::new("x"),
        )
        .expect_err("json");
        assert!(e.to_string().contains("misp_instances"));
    }

    #[test]
    fn wider_geolocation_is_off_unless_asked_for() {
        let p = Path::new("c.cfg");
        let c = Config::parse(ORIGINAL_DEFAULT, p).expect("parses");
        assert!(!c.wider_geolocation, "the original's map by default");
        let on = format!("{ORIGINAL_DEFAULT}\n[mispdash]\nwider_geolocation = True\n");
        let c = Config::parse(&on, p).expect("parses");
        assert!(c.wider_geolocation);
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
        let bad = format!("{ORIGINAL_DEFAULT}\n[mispdash]\nwider_geolocation = wide\n");
        assert!(Config::parse(&bad, p)
            .expect_err("not a boolean")
            .to_string()
            .contains("[mispdash] wider_geolocation"));
    }

    #[test]
    fn rewind_keeps_a_day_unless_told_otherwise() {
        let p = Path::new("c.cfg");
        let c = Config::parse(ORIGINAL_DEFAULT, p).expect("parses");
        assert_eq!(c.rewind, RewindConfig::default());
        assert!(c.rewind.enabled() && c.rewind.hours == 24);
        let set = format!(
            "{ORIGINAL_DEFAULT}\n[mispdash]\nrewind_hours = 0\nrewind_max_bytes = 1048576\n"
        );
        let c = Config::parse(&set, p).expect("parses");
        assert!(!c.rewind.enabled(), "0 turns it off");
        assert_eq!(c.rewind.max_bytes, 1 << 20);
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
        for (option, bad) in [
            ("rewind_hours", "169"),
            ("rewind_hours", "-1"),
            ("rewind_hours", "a day"),
            ("rewind_max_bytes", "1000"),
        ] {
            let text = format!("{ORIGINAL_DEFAULT}\n[mispdash]\n{option} = {bad}\n");
            let e = Config::parse(&text, p).expect_err(bad).to_string();
            assert!(e.contains(&format!("[mispdash] {option}")), "{e}");
        }
    }

    #[test]
    fn unknown_options_are_reported() {
        let c = Config::parse("[Server]\nfoo = 1\n[Other]\nbar = 2\n", Path::new("x")).expect("ok");
        assert_eq!(c.unknown.len(), 2);
    }

    #[test]
    fn sentinels_with_their_master_name() {
        let p = Path::new("x.cfg");
        let text = format!(
            "{ORIGINAL_DEFAULT}\n[RedisGlobal]\nsentinels = 127.0.0.1:26379, [::1]:26380,\n\
             sentinel_master = dash\nsentinel_password = s3\nwait_replicas = 1\n"
        );
        let c = Config::parse(&text, p).expect("valid");
        assert_eq!(
            c.redis.sentinel,
            Some(SentinelConfig {
                nodes: vec![("127.0.0.1".into(), 26379), ("::1".into(), 26380)],
                master: "dash".into(),
                password: Some("s3".into()),
            })
        );
        assert_eq!((c.redis.wait_replicas, c.redis.wait_timeout_ms), (1, 1000));
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
        // The original's file has neither.
        let c = Config::parse(ORIGINAL_DEFAULT, p).expect("valid");
        assert_eq!((c.redis.sentinel, c.redis.wait_replicas), (None, 0));
        for (extra, option) in [
            (
                "sentinels = 127.0.0.1:26379",
                "[RedisGlobal] sentinel_master",
            ),
            ("sentinel_master = dash", "[RedisGlobal] sentinels"),
            (
                "sentinels = 127.0.0.1\nsentinel_master = d",
                "[RedisGlobal] sentinels",
            ),
            (
                "sentinels = h:0\nsentinel_master = d",
                "[RedisGlobal] sentinels",
            ),
            (
                "sentinels = ,\nsentinel_master = d",
                "[RedisGlobal] sentinels",
            ),
            ("wait_timeout_ms = 0", "[RedisGlobal] wait_timeout_ms"),
            ("wait_replicas = -1", "[RedisGlobal] wait_replicas"),
        ] {
            let text = format!("{ORIGINAL_DEFAULT}\n[RedisGlobal]\n{extra}\n");
            let e = Config::parse(&text, p).expect_err(extra).to_string();
            assert!(e.contains(option), "{extra}: {e}");
        }
        let mut c = Config::defaults();
        c.apply_env(|k| match k {
            "MISPDASH_REDIS_SENTINELS" => Some("10.0.0.1:26379,10.0.0.2:26379".into()),
            "MISPDASH_REDIS_SENTINEL_MASTER" => Some("m".into()),
            _ => None,
        })
        .expect("valid");
        let s = c.redis.sentinel.expect("sentinels");
        assert_eq!((s.nodes.len(), s.master.as_str()), (2, "m"));
        let mut c = Config::defaults();
        let e = c
            .apply_env(|k| (k == "MISPDASH_REDIS_SENTINEL_MASTER").then(|| "m".into()))
            .expect_err("no sentinels");
        assert!(e.to_string().contains("MISPDASH_REDIS_SENTINELS"), "{e}");
    }

    #[test]
    fn environment_overrides_redis_address() {
        let mut c = Config::defaults();
        c.apply_env(|k| match k {
            "MISPDASH_REDIS_URL" => Some("redis://:pw@10.0.0.5:6379".into()),
            "MISPDASH_REDIS_PORT" => Some("7000".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(c.redis.host, "10.0.0.5");
        assert_eq!(c.redis.port, 7000);
        assert_eq!(c.redis.password.as_deref(), Some("pw"));
    }
}
