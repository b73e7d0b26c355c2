//! The `mispdash` binary: argument parsing and wiring only; everything else is in
//! `mispdash_core`.

mod honors;

/// The dispatcher allocates and frees many short-lived JSON trees and strings per message;
/// mimalloc handles that pattern markedly faster than glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mispdash_core::app::{self, RunOptions};
use mispdash_core::clock::Clock;
use mispdash_core::config::Config;
use mispdash_core::feed::FeedSpec;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Default: ./config/config.cfg when it exists, otherwise built-in defaults with a demo feed.
    #[arg(long, short = 'c', global = true, env = "MISPDASH_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// Where a Redis started by mispdash keeps its data.
        #[arg(long, default_value = ".mispdash")]
        data_dir: PathBuf,
        /// Do not score contributions (benchmarking aid: measures what gamification costs; the
        /// CONTRIB_* statistics of the messages handled meanwhile are lost).
        #[arg(long, hide = true)]
        no_gamification: bool,
    },
    /// Give an organisation honors by hand: requirements (levels), badges and trophy points,
    /// as the original's give_honors_to_org.py. The awards they earn are recorded and shown
    /// live. Without change flags, or with --interactive, asks what to change.
    GiveHonors(honors::GiveHonorsArgs),
    /// Run one subscriber alone: receive a MISP ZeroMQ feed and push it onto the Redis buffer,
    /// for a dispatcher running elsewhere.
    Subscribe {
        /// Feed name, shown on the dashboard (zmq_name).
        #[arg(short = 'n', long, default_value = "MISP Standard ZMQ")]
        name: String,
        /// MISP's ZeroMQ endpoint.
        #[arg(short = 'u', long, default_value = "tcp://localhost:50000")]
        url: String,
        /// PLAIN username (MISP's Plugin.ZeroMQ_username).
        #[arg(long, env = "MISPDASH_ZMQ_USERNAME")]
        username: Option<String>,
        /// PLAIN password (MISP's Plugin.ZeroMQ_password).
        #[arg(long, env = "MISPDASH_ZMQ_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, bool)> {
    if let Some(p) = path {
        return Ok((Config::load(p)?, true));
    }
    let default = Path::new("config/config.cfg");
    if default.exists() {
        return Ok((Config::load(default)?, true));
    }
    let mut cfg = Config::defaults();
    cfg.apply_env(|k| std::env::var(k).ok())?;
    Ok((cfg, false))
}

fn stop_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::Relaxed))
        .context("cannot install the signal handler")?;
    Ok(stop)
}

/// mimalloc keeps freed pages committed for a while and commits whole arenas eagerly; for a
/// long-running dashboard with a memory budget, return memory at once instead. Indices of
/// mimalloc 2's `mi_option_e`, which the sys crate does not name: arena_eager_commit = 4,
/// purge_delay = 15.
fn tune_allocator() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: setting an option is a plain store in mimalloc's option table.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

fn main() {
    tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MISPDASH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = real_main() {
        tracing::error!("{e:#}");
        eprintln!("mispdash: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    if clock.is_frozen() {
        tracing::warn!(
            "clock frozen by {} (testing aid)",
            mispdash_core::clock::FAKE_NOW_ENV
        );
    }
    match cli.command {
        Command::GiveHonors(a) => honors::give_honors(cli.config.as_deref(), &a, clock)?,
        Command::Run {
            no_subscribers,
            no_dispatcher,
            no_demo,
            no_managed_redis,
            data_dir,
            no_gamification,
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
            };
            let stop = stop_on_signal()?;
            app::run(&cfg, &opts, clock, stop)?;
        }
        Command::Subscribe {
            name,
            url,
            username,
            password,
        } => {
            let (cfg, _) = load_config(cli.config.as_deref())?;
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
            app::subscribe(&cfg, spec, clock, stop)?;
        }
    }
    Ok(())
}
