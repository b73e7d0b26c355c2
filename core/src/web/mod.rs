//! The HTTP(S) server: the original dashboard's JSON API and live streams (spec `http.md`),
//! login through MISP, operations endpoints, on axum/hyper with rustls.
//!
//! Layout: [`routes`] maps paths to the readers ([`geo`], [`contrib`], [`users`],
//! [`trendings`], [`live`]) and the streams ([`stream`], through [`stream_routes`]), all
//! answering JSON through [`answer`]; [`auth`] guards them when `[Auth] auth_enabled` is on
//! ([`login_routes`]); [`middleware`] wraps every route; [`ops`] serves `/healthz`, `/status`
//! and `/metrics`; [`tls`] builds the rustls configuration. [`start`] binds the port and
//! serves ([`serve`]) on its own Tokio runtime in a thread, so the rest of `mispdash run` stays
//! synchronous.
//!
//! The modules come in two layers. [`state`] holds what every handler shares, built from
//! handle modules that never read it back ([`db`], [`hub`], [`live_cache`], [`auth`],
//! [`refusals`], [`metrics`], [`conn`], ...); the handler modules ([`routes`],
//! [`stream_routes`], [`stream`], [`ops`], the readers) take the state and the handles they
//! need. The test `no_module_that_state_holds_reads_state` keeps it so.

mod answer;
pub mod auth;
pub mod conn;
pub mod contrib;
pub mod db;
pub mod embed;
pub mod error;
pub mod geo;
pub mod hub;
pub mod json_out;
pub mod live;
pub mod live_cache;
mod login_routes;
pub mod metrics;
mod middleware;
pub mod narrow;
pub mod ops;
pub mod pages;
pub mod params;
pub mod refusals;
mod request;
pub mod rewind;
mod routes;
mod serve;
pub mod state;
pub mod stream;
mod stream_routes;
pub mod tls;
pub mod trendings;
pub mod users;

use crate::clock::Clock;
use crate::config::{Config, Ranking};
use crate::redis_util::RedisTarget;
use db::Db;
use state::{AppState, GeoInfo, WebConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why the server cannot start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Auth(#[from] auth::AuthSetupError),
    #[error(transparent)]
    Ranking(#[from] crate::config::ConfigError),
    #[error("cannot start the HTTP runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Setup(String),
}

/// Server options beyond `config.cfg`.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Generate a self-signed certificate when `[Server] ssl` is on without `ssl_cert`/`ssl_key`.
    pub self_signed: bool,
    /// How long a computed JSON answer is reused for identical requests (0: never). The
    /// dashboard polls the same questions from every open page; the data moves at the pace of
    /// MISP, so a second of reuse costs nothing and spares Redis.
    pub cache_ttl: Duration,
    /// Interval of the SSE keep-alive comments.
    pub sse_keepalive: Duration,
    /// Login attempts allowed per client address (and per account) and minute; overrides
    /// `[mispdash] login_attempts_per_minute`.
    pub login_attempts_per_minute: Option<u32>,
    /// Worker threads of the server's runtime (0: one per core).
    pub workers: usize,
    /// Overrides `[Server] host`/`port` (tests and benchmarks).
    pub listen: Option<SocketAddr>,
    /// A connection whose writes stall this long is closed (a client that stopped reading).
    pub write_timeout: Duration,
    /// The threads of a WSGI server's pool (mod_wsgi's `threads`), when the dashboard runs in
    /// one: each live stream holds a thread there for as long as it is open, so streams get
    /// at most [`hub::stream_slots`] of them in all and a quarter of those per client, and the rest
    /// stay free for page requests. `None` for the standalone server, whose streams are
    /// tasks.
    pub host_threads: Option<usize>,
    /// How long the live streams' Redis subscription outlives the last stream (a reloading
    /// page, a screen that reconnects): an idle server holds none.
    pub stream_linger: Duration,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            self_signed: false,
            cache_ttl: Duration::from_secs(1),
            sse_keepalive: Duration::from_secs(15),
            login_attempts_per_minute: None,
            workers: 0,
            listen: None,
            write_timeout: Duration::from_secs(30),
            host_threads: None,
            stream_linger: Duration::from_secs(60),
        }
    }
}

/// A running server.
pub struct WebHandle {
    pub local_addr: SocketAddr,
    pub tls: bool,
    thread: Option<JoinHandle<()>>,
}

impl WebHandle {
    /// Waits for the server thread (it ends when the stop flag is set).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A mutex's guard even when a thread panicked while holding it: the web layer's mutexes
/// guard counts and small maps that a panic never leaves in a state worth refusing.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// GeoIP facts for `/status`. The file is opened once and dropped: the server never locates
/// anything, and keeping a city database in memory would triple its footprint.
fn geo_info(cfg: &Config) -> GeoInfo {
    let path = cfg.redis.path_maxmind_db.display().to_string();
    match crate::geoip::GeoDb::open(&cfg.redis.path_maxmind_db) {
        Ok(db) => GeoInfo {
            path,
            loaded: true,
            database_type: Some(db.database_type().to_string()),
            build_epoch: Some(db.build_epoch()),
            error: None,
        },
        Err(e) => GeoInfo {
            path,
            loaded: false,
            database_type: None,
            build_epoch: None,
            error: Some(e.to_string()),
        },
    }
}

/// The embedded pages (see `core/build.rs`): HTML revalidated at every load (`no-cache`, with
/// its ETag), assets (content-hashed names) kept a year.
fn ui_router() -> axum::Router {
    let serve = memory_serve::load!()
        .index_file(None)
        .html_cache_control(memory_serve::CacheControl::NoCache)
        .cache_control(memory_serve::CacheControl::Long);
    // memory-serve logs a line per file at `info` (quieted in `log_filter`): one line here.
    let files = serve.manifest().len();
    tracing::info!("web pages: {files} embedded file(s) served");
    serve.into_router()
}

/// Lets the process hold many open streams: raises the soft open-files limit to the hard one.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// The server's runtime: one worker per core unless told.
fn runtime(opts: &WebOptions) -> Result<tokio::runtime::Runtime, StartError> {
    raise_fd_limit();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("http");
    if opts.workers > 0 {
        rt.worker_threads(opts.workers);
    }
    rt.build().map_err(StartError::Runtime)
}

/// Everything the routes share, from the configuration: what the server and the in-process
/// ([`embed`]) dashboard both serve from.
fn build_state(
    cfg: &Config,
    opts: &WebOptions,
    clock: Clock,
    tls_on: bool,
    shutdown_rx: watch::Receiver<bool>,
) -> Result<Arc<AppState>, StartError> {
    let mut guard = cfg.http.clone();
    if let Some(n) = opts.login_attempts_per_minute {
        guard.login_attempts_per_minute = n;
    }
    let stream_slots = opts.host_threads.map(hub::stream_slots);
    // In a WSGI server a stream's thread learns that its client left only when a write
    // fails, which through Apache takes two writes or so: keep-alives every 5 s give the
    // thread back within seconds rather than most of a minute.
    let keepalive = match opts.host_threads {
        Some(_) => opts.sse_keepalive.min(Duration::from_secs(5)),
        None => opts.sse_keepalive,
    };
    if let Some(slots) = stream_slots {
        let per_client = hub::streams_per_client(slots).min(guard.max_streams_per_client);
        tracing::info!(
            "{} threads serve requests: at most {slots} of them hold live streams (one per \
             open page), {per_client} per client; the others are kept for page requests",
            opts.host_threads.unwrap_or_default()
        );
        guard.max_streams_per_client = per_client;
    }
    let auth = auth::Auth::from_config(&cfg.auth, &guard)?.map(Arc::new);
    let ranking = match &cfg.ranking_path {
        Some(p) => Ranking::load(p)?,
        None => Ranking::default(),
    };
    let target = RedisTarget::from_config(&cfg.redis);
    let cache = moka::future::Cache::builder()
        .max_capacity(64 << 20)
        .weigher(|k: &String, v: &bytes::Bytes| (k.len() + v.len()).min(u32::MAX as usize) as u32)
        .time_to_live(opts.cache_ttl.max(Duration::from_millis(1)))
        .build();
    let acl = (cfg.acl.enabled && auth.is_some()).then(|| cfg.acl.policy.clone());
    if cfg.acl.enabled && auth.is_none() {
        tracing::warn!(
            "[ACL] enabled is set but login is off ([Auth] auth_enabled): without signed-in \
             users there is no one to apply MISP's rules for; everyone sees everything"
        );
    }
    let hub = hub::Hub::new(keepalive, opts.stream_linger, shutdown_rx);
    if let Some(p) = &acl {
        hub.set_acl(p.clone());
        tracing::info!(
            "access control on: the live log and map show each user what MISP would show \
             them (the dispatcher must run with the same [ACL] setting to record map points' \
             facts)"
        );
    }
    Ok(Arc::new(AppState {
        clock,
        data: Db::new(&target, cfg.redis.data_db),
        list: Db::new(&target, cfg.redis.list_db),
        cfg: WebConfig {
            guard: guard.clone(),
            ..WebConfig::from_config(cfg)
        },
        ranking,
        hub,
        live_memos: Default::default(),
        cache,
        metrics: metrics::Metrics::new(),
        auth,
        tls: tls_on,
        geoip: geo_info(cfg),
        rates: metrics::FeedRates::default(),
        version: env!("CARGO_PKG_VERSION"),
        cache_enabled: !opts.cache_ttl.is_zero(),
        admission: Arc::new(conn::Admission::new(
            guard.max_connections,
            guard.max_connections_per_address,
            guard.trusted_proxies.clone(),
        )),
        streams: hub::StreamCounts::new(stream_slots),
        refusals: refusals::Refusals::default(),
        ui: ui_router(),
        acl,
    }))
}

/// Checks the configuration, binds the port and serves in a thread until `stop` is set.
/// Everything that can be wrong with the configuration (TLS files, default secret, port in
/// use) is reported here, before `mispdash run` goes on.
pub fn start(
    cfg: &Config,
    opts: WebOptions,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> Result<WebHandle, StartError> {
    let tls_config = tls::server_config(&cfg.server, opts.self_signed)?;
    let rt = runtime(&opts)?;
    let addr_text = match opts.listen {
        Some(a) => a.to_string(),
        None if cfg.server.host.contains(':') => {
            format!("[{}]:{}", cfg.server.host, cfg.server.port)
        }
        None => format!("{}:{}", cfg.server.host, cfg.server.port),
    };
    let listener = rt
        .block_on(TcpListener::bind(addr_text.as_str()))
        .map_err(|source| StartError::Bind {
            addr: addr_text.clone(),
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: addr_text.clone(),
        source,
    })?;
    let tls_on = tls_config.is_some();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = build_state(cfg, &opts, clock, tls_on, shutdown_rx.clone())?;
    let scheme = if tls_on { "https" } else { "http" };
    tracing::info!("dashboard at {scheme}://{local_addr}/");
    if state.auth.is_none() {
        tracing::warn!(
            "authentication is off ([Auth] auth_enabled): every route is open to anyone who can reach {local_addr}"
        );
    }
    let app = routes::router(state.clone());
    let write_timeout = opts.write_timeout;
    let thread = std::thread::Builder::new()
        .name("http-server".into())
        .spawn(move || {
            rt.block_on(async move {
                tokio::spawn(stream::run_subscriber(state.clone(), shutdown_rx.clone()));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let _ = shutdown_tx.send(true);
                });
                serve::serve(state, listener, tls_config, app, write_timeout, shutdown_rx).await;
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| StartError::Setup(format!("cannot start the server thread: {e}")))?;
    Ok(WebHandle {
        local_addr,
        tls: tls_on,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod layering {
    use std::collections::{BTreeMap, BTreeSet};

    /// The `super::<module>` paths of one source file outside its test module.
    fn references(src: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
        let code = match src.find("#[cfg(test)]\nmod tests") {
            Some(i) => {
                let end = src[i..].find("\n}\n").map_or(src.len(), |j| i + j + 3);
                format!("{}{}", &src[..i], &src[end..])
            }
            None => src.to_string(),
        };
        let re = regex::Regex::new(r"super::(\w+)").expect("pattern");
        re.captures_iter(&code)
            .map(|c| c[1].to_string())
            .filter(|m| modules.contains(m))
            .collect()
    }

    #[test]
    fn no_module_that_state_holds_reads_state() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
        let mut sources = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).expect("read src/web") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let name = path
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .into_owned();
                sources.insert(name, std::fs::read_to_string(&path).expect("read a module"));
            }
        }
        let modules: BTreeSet<String> = sources.keys().cloned().collect();
        let graph: BTreeMap<&str, BTreeSet<String>> = sources
            .iter()
            .map(|(m, s)| {
                let mut refs = references(s, &modules);
                refs.remove(m);
                (m.as_str(), refs)
            })
            .collect();
        let reach = |from: &str| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![from.to_string()];
            while let Some(m) = todo.pop() {
                for n in graph.get(m.as_str()).into_iter().flatten() {
                    if seen.insert(n.clone()) {
                        todo.push(n.clone());
                    }
                }
            }
            seen
        };
        let held = reach("state");
        assert!(
            held.contains("hub"),
            "the scan found state's modules: {held:?}"
        );
        let back: Vec<&String> = held.iter().filter(|m| reach(m).contains("state")).collect();
        assert!(
            back.is_empty(),
            "modules that state is built from read state back (directly or through others): \
             {back:?}"
        );
    }
}
