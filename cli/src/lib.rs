//! The `mispdash` command line: argument parsing and wiring only; everything else is in
//! `mispdash_core`. A library so that the Python package runs the very same commands
//! (`python -m mispdash ...`); `main.rs` is the binary.

mod admin;

mod honors;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mispdash_core::app::{self, RunOptions};
use mispdash_core::clock::Clock;
use mispdash_core::config::Config;
use mispdash_core::feed::FeedSpec;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// mispdash: the live MISP situational-awareness dashboard.
///
/// It subscribes to the ZeroMQ feeds of your MISP instances, keeps the statistics in Redis (the
/// same keys as the Python misp-dashboard, so an existing Redis keeps working) and serves the
/// dashboards.
#[derive(Parser)]
#[command(name = "mispdash", version, about, long_about)]
struct Cli {
    /// The misp-dashboard configuration file (the original's config.cfg works unchanged).
    /// Default: ./config/config.cfg when it exists, else .mispdash/demo.cfg (which
    /// scripts/run.sh writes), otherwise built-in defaults with a demo feed.
    #[arg(long, short = 'c', global = true, env = "MISPDASH_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find out why nothing shows up: check the configuration, Redis, each MISP ZeroMQ feed
    /// (reachable, credentials, keep-alives), the notifications MISP sends, the buffer, the
    /// dispatcher (with the original's diagnostic probe), the GeoIP database and the web port.
    /// Prints PASS/WARN/FAIL lines with the fix; exits with status 1 when a check fails.
    Selftest(admin::SelftestArgs),
    /// Delete the dashboard's statistics and buffer (the original's clean.py), asking first.
    /// With --brutal, empty the dashboard's Redis databases entirely.
    Clean(admin::CleanArgs),
    /// List the messages set aside in the dead-letter list (with why), or put them back in the
    /// buffer once the cause is fixed.
    #[command(subcommand)]
    DeadLetters(admin::DeadLettersCommand),
    /// After updating the GeoIP database: place the stored map points of past days again with
    /// it (GEO_COORD, GEO_COUNTRY, GEO_RAD), keeping their hit counts. The running dashboard
    /// picks up a new database file by itself (or on SIGHUP).
    RebuildGeo(admin::RebuildGeoArgs),
    /// Push a recorded or generated feed (JSON Lines) onto the Redis buffer, as if MISP had
    /// sent it: for demos, exercises and reproducing bug reports.
    Replay(admin::ReplayArgs),
    /// Fill the dashboard with what MISP published before it listened: events (and their
    /// sightings) read through MISP's REST API with the feed's API key, counted on the day
    /// they happened. Safe to run again or after an interruption: nothing is counted twice.
    Backfill(admin::BackfillArgs),
    /// Write the live MISP feed(s) of the configuration to a JSON Lines file that `replay`
    /// plays back byte for byte. Stops on Ctrl-C, --count or --duration.
    Record(admin::RecordArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(admin::CompletionsArgs),
    /// Print the man page (roff), or write one per subcommand with --dir.
    Man(admin::ManArgs),
    /// Run the dashboard: subscribers for every MISP instance of the configuration and the
    /// dispatcher that turns their messages into statistics.
    Run {
        /// Only consume the buffer; subscribers run elsewhere (`mispdash subscribe`).
        #[arg(long)]
        no_subscribers: bool,
        /// Only subscribe and fill the buffer; another mispdash consumes it.
        #[arg(long)]
        no_dispatcher: bool,
        /// Never run the built-in demo feed, even when no MISP instance is configured.
        #[arg(long)]
        no_demo: bool,
        /// Never start a local Redis; wait for the configured one instead.
        #[arg(long)]
        no_managed_redis: bool,
        /// Where a Redis started by mispdash keeps its data, and where frames that Redis could
        /// not take before a stop are kept for the next start (`spool/`).
        #[arg(long, default_value = ".mispdash")]
        data_dir: PathBuf,
        /// Do not score contributions (benchmarking aid: measures what gamification costs; the
        /// CONTRIB_* statistics of the messages handled meanwhile are lost).
        #[arg(long, hide = true)]
        no_gamification: bool,
        /// Do not serve the dashboard over HTTP(S) (ingest only).
        #[arg(long)]
        no_server: bool,
        /// With `[Server] ssl` on and no ssl_cert/ssl_key: generate a throw-away self-signed
        /// certificate instead of refusing to start.
        #[arg(long)]
        self_signed: bool,
        /// Milliseconds a computed JSON answer is reused for identical requests (0: never).
        #[arg(long, default_value_t = 1000)]
        http_cache_ms: u64,
        /// Seconds between keep-alive comments on the live streams.
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=300))]
        sse_keepalive_secs: u64,
        /// Seconds a write to a client may stall before its connection is closed.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        write_timeout_secs: u64,
        /// Seconds the live streams' Redis subscription outlives the last open stream.
        #[arg(long, hide = true, default_value_t = 60)]
        stream_linger_secs: u64,
        /// Login attempts allowed per client address, and per account, and minute (with [Auth]
        /// auth_enabled); overrides `[mispdash] login_attempts_per_minute` (default 10).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        login_attempts_per_minute: Option<u32>,
    },
    /// Give an organisation honors by hand: requirements (levels), badges and trophy points,
    /// as the original's give_honors_to_org.py. The awards they earn are recorded and shown
    /// live. Without change flags, or with --interactive, asks what to change.
    GiveHonors(honors::GiveHonorsArgs),
    /// Run one subscriber alone: receive a MISP ZeroMQ feed and push it onto the Redis buffer,
    /// for a dispatcher running elsewhere.
    Subscribe {
        /// Feed name, shown on the dashboard (zmq_name).
        #[arg(
            short = 'n',
            long,
            env = "MISPDASH_FEED_NAME",
            default_value = "MISP Standard ZMQ"
        )]
        name: String,
        /// MISP's ZeroMQ endpoint.
        #[arg(
            short = 'u',
            long,
            env = "MISPDASH_ZMQ_URL",
            default_value = "tcp://localhost:50000"
        )]
        url: String,
        /// PLAIN username (MISP's Plugin.ZeroMQ_username).
        #[arg(long, env = "MISPDASH_ZMQ_USERNAME")]
        username: Option<String>,
        /// PLAIN password (MISP's Plugin.ZeroMQ_password).
        #[arg(long, env = "MISPDASH_ZMQ_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Where frames that Redis could not take before a stop are kept for the next start
        /// (`spool/`).
        #[arg(long, default_value = ".mispdash")]
        data_dir: PathBuf,
    },
}

/// The configuration used without `--config`: `./config/config.cfg` (the original's place),
/// else the demo configuration `scripts/run.sh` writes, so `mispdash selftest` right after it
/// checks what runs.
pub(crate) fn default_config_path() -> Option<PathBuf> {
    ["config/config.cfg", ".mispdash/demo.cfg"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// glibc's allocator, with at most two arenas. Measured on the ingest benchmark it needed
/// about a fifth less CPU than mimalloc told to return memory at once, at a lower peak RSS
/// than mimalloc left to keep it (`docs/performance.md`). Without a cap glibc gives every
/// busy thread (HTTP workers, subscribers, the handler) its own arena, each keeping freed
/// memory, which the memory budget cannot afford. The Python module calls it too: under
/// mod_wsgi the daemon's hundred threads otherwise kept a large event's memory for good.
pub fn tune_allocator() {
    // SAFETY: mallopt only sets a tunable of the C allocator (glibc takes its lock); the
    // binary calls it before any thread starts, the Python module at import, when the host's
    // threads (mod_wsgi's) may exist: the limits then apply to the arenas and blocks to come.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Blocks of 1 MiB and more (a large MISP event, its parts and the buffers around it)
        // are mapped on their own and given back when freed. glibc's default threshold rises
        // with every such block freed, after which they come from the arenas, and one large
        // event pinned tens of MiB for the life of the process (bench/big_event.sh).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// The configuration the commands use: `path`, else the default places, else built-in
/// defaults with `MISPDASH_*` overrides (`false`: no file was read). The managed Redis's
/// password is adopted when one runs for the default data directory.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, bool)> {
    let (mut cfg, from_file) = if let Some(p) = path {
        (Config::load(p)?, true)
    } else if let Some(default) = default_config_path() {
        (Config::load(&default)?, true)
    } else {
        let mut cfg = Config::defaults();
        cfg.apply_env(|k| std::env::var(k).ok())?;
        (cfg, false)
    };
    app::adopt_managed_password(&mut cfg, &app::default_data_dir());
    Ok((cfg, from_file))
}

/// SIGINT (Ctrl-C) and SIGTERM (systemd, containers) both stop cleanly: subscribers stop,
/// what they hold is written, the managed Redis stops. A second one of either ends the process
/// at once, for a stop that hangs.
fn stop_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .context("cannot install the signal handlers")?;
    }
    Ok(stop)
}

/// Runs the command line `args` (the program name first) and returns the exit status: 0,
/// 1 after an error (said once on stderr), 2 for bad arguments (clap's usage message). Logging
/// is set up once per process (`MISPDASH_LOG`).
pub fn main_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // A second call in one process (the Python package) keeps the first setup.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(mispdash_core::log_filter(
            std::env::var("MISPDASH_LOG").ok().as_deref(),
        ))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: not in files, journald or pipes, nor
        // with NO_COLOR set.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print and succeed; mistakes print the usage and fail.
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match real_main(cli) {
        Ok(()) => 0,
        Err(e) => {
            // Once, on stderr (which is also where the log goes).
            eprintln!("mispdash: {}", describe(&e));
            1
        }
    }
}

/// The error and its causes, each said once: most of ours already name their cause in their
/// own message, which anyhow's `{:#}` would repeat.
pub fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    if clock.is_frozen() {
        tracing::warn!(
            "clock frozen by {} (testing aid)",
            mispdash_core::clock::FAKE_NOW_ENV
        );
    }
    match cli.command {
        Command::GiveHonors(a) => honors::give_honors(cli.config.as_deref(), &a, clock)?,
        Command::Selftest(a) => admin::selftest(cli.config.as_deref(), &a)?,
        Command::Clean(a) => admin::clean(cli.config.as_deref(), &a)?,
        Command::DeadLetters(a) => admin::dead_letters(cli.config.as_deref(), &a)?,
        Command::RebuildGeo(a) => admin::rebuild_geo(cli.config.as_deref(), &a)?,
        Command::Replay(a) => admin::replay(cli.config.as_deref(), &a)?,
        Command::Backfill(a) => admin::backfill(cli.config.as_deref(), &a, clock)?,
        Command::Record(a) => admin::record(cli.config.as_deref(), &a)?,
        Command::Completions(a) => admin::completions(&a)?,
        Command::Man(a) => admin::man(&a)?,
        Command::Run {
            no_subscribers,
            no_dispatcher,
            no_demo,
            no_managed_redis,
            data_dir,
            no_gamification,
            no_server,
            self_signed,
            http_cache_ms,
            sse_keepalive_secs,
            write_timeout_secs,
            stream_linger_secs,
            login_attempts_per_minute,
        } => {
            let (mut cfg, from_file) = load_config(cli.config.as_deref())?;
            if !from_file && !no_demo {
                // No configuration at all: nothing real to subscribe to, so show the demo.
                cfg.redis.misp_instances.clear();
            }
            let opts = RunOptions {
                dispatch: !no_dispatcher,
                subscribe: !no_subscribers,
                demo: !no_demo,
                data_dir,
                manage_redis: !no_managed_redis,
                dispatch_opts: mispdash_core::dispatch::DispatchOptions {
                    gamification: !no_gamification,
                    ..Default::default()
                },
                web: (!no_server).then(|| mispdash_core::web::WebOptions {
                    self_signed,
                    cache_ttl: std::time::Duration::from_millis(http_cache_ms),
                    sse_keepalive: std::time::Duration::from_secs(sse_keepalive_secs),
                    login_attempts_per_minute,
                    write_timeout: std::time::Duration::from_secs(write_timeout_secs),
                    stream_linger: std::time::Duration::from_secs(stream_linger_secs),
                    ..Default::default()
                }),
            };
            let stop = stop_on_signal()?;
            app::run(&cfg, &opts, clock, stop)?;
        }
        Command::Subscribe {
            name,
            url,
            username,
            password,
            data_dir,
        } => {
            let (mut cfg, _) = load_config(cli.config.as_deref())?;
            app::adopt_managed_password(&mut cfg, &data_dir);
            if username.is_some() != password.is_some() {
                anyhow::bail!("--username and --password go together");
            }
            let spec = FeedSpec {
                name,
                endpoint: url,
                username,
                password,
            };
            let stop = stop_on_signal()?;
            app::subscribe(&cfg, spec, &data_dir, clock, stop)?;
        }
    }
    Ok(())
}
