//! Wiring of `mispdash run` and `mispdash subscribe`: what runs, in which thread, on which
//! Redis. The binary only parses arguments and calls these.

use crate::clock::Clock;
use crate::config::Config;
use crate::dispatch::{DispatchOptions, Dispatcher};
use crate::feed::{self, FeedHandle, FeedSpec};
use crate::geoip::{Centroids, GeoDb};
use crate::managed_redis::{self, ManagedRedis};
use crate::redis_util::RedisTarget;
use crate::rules::Env;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Geo(#[from] crate::geoip::GeoError),
    #[error("cannot start a local Redis: {0}")]
    ManagedRedis(#[from] managed_redis::ManagedRedisError),
    #[error("cannot start the web server: {0}")]
    Web(#[from] crate::web::StartError),
    #[error("cannot start {what}: {source}")]
    Thread {
        what: String,
        source: std::io::Error,
    },
}

/// Options of `mispdash run` beyond the configuration file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run the dispatcher (consume the buffer).
    pub dispatch: bool,
    /// Run one subscriber per configured MISP instance.
    pub subscribe: bool,
    /// Run the built-in demo feed when no MISP instance is configured.
    pub demo: bool,
    /// Where a managed Redis keeps its data.
    pub data_dir: PathBuf,
    /// Start a managed Redis when none answers at a local configured address.
    pub manage_redis: bool,
    pub dispatch_opts: DispatchOptions,
    /// Serve the dashboard's HTTP(S) API on `[Server] host`/`port` (`None`: no server).
    pub web: Option<crate::web::WebOptions>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            dispatch: true,
            subscribe: true,
            demo: true,
            data_dir: PathBuf::from(".mispdash"),
            manage_redis: true,
            dispatch_opts: DispatchOptions::default(),
            web: Some(crate::web::WebOptions::default()),
        }
    }
}

/// Loads the GeoIP database and the centroid table the configuration names. A missing GeoIP
/// database is not fatal (the dashboard still shows everything but maps); a centroid table
/// that is named but unreadable is, because its coordinates would silently change.
pub fn load_geo(cfg: &Config) -> Result<(Option<GeoDb>, Centroids), AppError> {
    let centroids = match &cfg.redis.path_country_coords {
        Some(p) => Centroids::load(p)?,
        None => Centroids::builtin(),
    };
    let geo = match GeoDb::open(&cfg.redis.path_maxmind_db) {
        Ok(db) => {
            tracing::info!(
                "GeoIP database {} ({}, built {})",
                cfg.redis.path_maxmind_db.display(),
                db.database_type(),
                db.build_epoch()
            );
            Some(db)
        }
        Err(e) => {
            tracing::warn!("{e}; IP addresses will not be placed on the maps until it is fixed ([RedisMap] pathMaxMindDB)");
            None
        }
    };
    Ok((geo, centroids))
}

/// `ranking.cfg` from `[mispdash] ranking_cfg` when set, else the built-in defaults (equal to
/// the original's shipped file).
pub fn load_ranking(cfg: &Config) -> Result<crate::config::Ranking, AppError> {
    match &cfg.ranking_path {
        Some(p) => Ok(crate::config::Ranking::load(p)?),
        None => Ok(crate::config::Ranking::default()),
    }
}

/// How often `mispdash run` gives the heap's free pages back (see [`crate::memory`]).
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1") || host.starts_with("127.")
}

/// Says which options of the file are not used, once at start.
fn warn_about_options(cfg: &Config) {
    for (section, option) in &cfg.unknown {
        tracing::warn!("configuration: unknown option [{section}] {option} ignored");
    }
    if !cfg.log.given.is_empty() {
        tracing::info!(
            "configuration: [Log] {} not used: mispdash logs to stderr (the terminal, or the \
             journal under systemd); redirect it to a file to keep one",
            cfg.log.given.join(", ")
        );
    }
}

/// Where `mispdash run` keeps its managed Redis and spool unless told otherwise:
/// `$MISPDASH_DATA_DIR`, else `.mispdash`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("MISPDASH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".mispdash"))
}

/// Lets a command reach the Redis that `mispdash run` manages with `data_dir`: its password
/// (see [`managed_redis::adopt_password`]).
pub fn adopt_managed_password(cfg: &mut Config, data_dir: &Path) {
    if cfg.redis.sentinel.is_some() {
        return;
    }
    let mut target = RedisTarget::from_config(&cfg.redis);
    if managed_redis::adopt_password(&mut target, &data_dir.join("redis")) {
        tracing::debug!(
            "using the managed Redis's password from {}",
            data_dir.display()
        );
        cfg.redis.password = target.password;
    }
}

/// Runs until `stop` is set (by a signal handler of the caller).
pub fn run(
    cfg: &Config,
    opts: &RunOptions,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> Result<(), AppError> {
    warn_about_options(cfg);
    let mut cfg = cfg.clone();
    let managed_dir = opts.data_dir.join("redis");
    let mut target = RedisTarget::from_config(&cfg.redis);
    // With Sentinels, the Redis servers are theirs: nothing to manage.
    let manage = opts.manage_redis && target.sentinel.is_none();
    if target.sentinel.is_some() {
        tracing::info!(
            "Redis: the {target}, asked again after every lost connection ([RedisGlobal] host \
             and port are not used)"
        );
    }
    // A managed Redis already running (another `mispdash run` of this data directory).
    if target.sentinel.is_none()
        && managed_redis::adopt_or_check(&mut target, &managed_dir, opts.manage_redis)?
    {
        cfg.redis.password = target.password.clone();
    }
    let _managed: Option<ManagedRedis> = if manage
        && is_local(&target.host)
        && !managed_redis::is_reachable(&target)
    {
        tracing::warn!(
            "no Redis answers at {target}; starting a managed redis-server on 127.0.0.1:{} with its data in {} (password in its {} file)",
            target.port,
            managed_dir.display(),
            managed_redis::PASSWORD_FILE
        );
        let m = ManagedRedis::start(&managed_dir, target.port)?;
        cfg.redis.password = Some(m.password().to_string());
        Some(m)
    } else {
        None
    };
    let cfg = &cfg;
    let target = RedisTarget::from_config(&cfg.redis);

    // The server first: a configuration it refuses (TLS files, default session secret, port in
    // use) stops start-up before anything else runs.
    let web = match &opts.web {
        Some(w) => Some(crate::web::start(cfg, w.clone(), clock, stop.clone())?),
        None => None,
    };

    let mut feeds: Vec<FeedHandle> = Vec::new();
    let mut demo_thread = None;
    if opts.subscribe {
        let mut specs: Vec<FeedSpec> = cfg
            .redis
            .misp_instances
            .iter()
            .map(FeedSpec::from)
            .collect();
        if specs.is_empty() && opts.demo {
            let port = free_port().map_err(|e| AppError::Thread {
                what: "the demo feed".into(),
                source: e,
            })?;
            let endpoint = format!("tcp://127.0.0.1:{port}");
            tracing::warn!(
                "no MISP instance configured ([RedisGlobal] misp_instances): running the built-in DEMO feed \"{}\" on {endpoint}; everything shown is simulated",
                crate::demo::DEMO_FEED_NAME
            );
            demo_thread = Some(
                crate::demo::spawn_publisher(&endpoint, 2.0, 7, clock, stop.clone()).map_err(
                    |e| AppError::Thread {
                        what: "the demo feed".into(),
                        source: e,
                    },
                )?,
            );
            specs.push(FeedSpec {
                name: crate::demo::DEMO_FEED_NAME.into(),
                endpoint,
                username: None,
                password: None,
            });
        }
        for spec in specs {
            let name = spec.name.clone();
            tracing::info!("subscribing to {} at {}", spec.name, spec.endpoint);
            let h = feed::spawn_with_options(
                spec,
                target.clone(),
                cfg.redis.list_db,
                cfg.redis.list_name.clone(),
                clock,
                stop.clone(),
                feed_options(cfg, &name, &opts.data_dir),
            )
            .map_err(|e| AppError::Thread {
                what: format!("subscriber {name}"),
                source: e,
            })?;
            feeds.push(h);
        }
    }

    let mut dispatcher_thread = None;
    let mut geo_reload = None;
    if opts.dispatch {
        let (geo, centroids) = load_geo(cfg)?;
        let env = Arc::new(Env::from_config(cfg, geo, centroids, load_ranking(cfg)?));
        // A replaced GeoIP file, or SIGHUP, is picked up without a restart.
        geo_reload = Some(
            crate::ops::geo_reload::spawn(
                cfg.resolve(&cfg.redis.path_maxmind_db),
                env.clone(),
                stop.clone(),
            )
            .map_err(|e| AppError::Thread {
                what: "the GeoIP reloader".into(),
                source: e,
            })?,
        );
        let mut d = Dispatcher::new(cfg, env, clock, opts.dispatch_opts);
        let stop_d = stop.clone();
        dispatcher_thread = Some(
            std::thread::Builder::new()
                .name("dispatcher".into())
                .spawn(move || d.run(&stop_d))
                .map_err(|e| AppError::Thread {
                    what: "the dispatcher".into(),
                    source: e,
                })?,
        );
    }

    let mut trimmer = crate::memory::Trimmer::new(TRIM_EVERY);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        trimmer.tick();
    }
    tracing::info!("stopping");
    if let Some(w) = web {
        w.join();
    }
    if let Some(t) = dispatcher_thread {
        let _ = t.join();
    }
    if let Some(t) = geo_reload {
        let _ = t.join();
    }
    for f in feeds {
        f.stop();
        f.join();
    }
    if let Some(t) = demo_thread {
        let _ = t.join();
    }
    Ok(())
}

/// `mispdash subscribe`: one subscriber alone, feeding the buffer for a dispatcher elsewhere.
pub fn subscribe(
    cfg: &Config,
    spec: FeedSpec,
    data_dir: &std::path::Path,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> Result<(), AppError> {
    warn_about_options(cfg);
    let target = RedisTarget::from_config(&cfg.redis);
    let name = spec.name.clone();
    let h = feed::spawn_with_options(
        spec,
        target,
        cfg.redis.list_db,
        cfg.redis.list_name.clone(),
        clock,
        stop.clone(),
        feed_options(cfg, &name, data_dir),
    )
    .map_err(|e| AppError::Thread {
        what: format!("subscriber {name}"),
        source: e,
    })?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    h.stop();
    h.join();
    Ok(())
}

/// Subscribers keep what Redis could not take before a stop in `<data_dir>/spool`, and fill
/// the gaps of feeds that have an API key (see `feed::gaps`).
fn feed_options(cfg: &Config, feed: &str, data_dir: &std::path::Path) -> feed::FeedOptions {
    let key = std::env::var("MISPDASH_MISP_API_KEY").ok();
    feed::FeedOptions {
        spool_dir: Some(data_dir.join("spool")),
        gap_fill: feed::gaps::GapFill::for_feed(cfg, feed, key.as_deref()).map(Arc::new),
        wait: (cfg.redis.wait_replicas > 0).then(|| {
            (
                cfg.redis.wait_replicas,
                std::time::Duration::from_millis(cfg.redis.wait_timeout_ms),
            )
        }),
        ..Default::default()
    }
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
