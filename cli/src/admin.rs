//! The administration subcommands' arguments and terminal side (spinners, progress bars,
//! confirmations, exit codes); the work itself is in `mispdash_core::ops`.

use anyhow::Context;
use clap::{Args, CommandFactory};
use indicatif::{ProgressBar, ProgressStyle};
use mispdash_core::config::Config;
use mispdash_core::ops::{self, selftest};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit status of `selftest` when a check failed.
const EXIT_FAILED_CHECK: i32 = 1;
/// Exit status when a destructive command was not confirmed.
const EXIT_NOT_CONFIRMED: i32 = 2;

#[derive(Args)]
pub struct SelftestArgs {
    /// Print the report as JSON (for monitoring scripts) instead of text.
    #[arg(long)]
    json: bool,
    /// Report a MISP feed as silent when it sends nothing for this many seconds after
    /// connecting. MISP sends a keep-alive after 10 seconds without data, so the default
    /// leaves it room (a wait of exactly 10 s would race it).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 13.0,
        env = "MISPDASH_SELFTEST_SILENCE"
    )]
    silence: f64,
    /// How long to wait for the dispatcher to answer the diagnostic probe.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| anyhow::anyhow!("{what}: {s} is not a duration"))
}

/// The configuration file the admin commands use: `--config`/`MISPDASH_CONFIG`, else the one
/// `mispdash run` would use (see [`crate::default_config_path`]).
fn config_source(path: Option<&Path>) -> selftest::ConfigSource {
    match path
        .map(Path::to_path_buf)
        .or_else(crate::default_config_path)
    {
        Some(p) => selftest::ConfigSource::File(p),
        None => selftest::ConfigSource::Defaults,
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let mut cfg = match config_source(path) {
        selftest::ConfigSource::File(p) => Config::load(&p)?,
        selftest::ConfigSource::Defaults => {
            let mut cfg = Config::defaults();
            cfg.apply_env(|k| std::env::var(k).ok())?;
            cfg
        }
    };
    mispdash_core::app::adopt_managed_password(&mut cfg, &mispdash_core::app::default_data_dir());
    Ok(cfg)
}

fn spinner() -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

fn bar(len: u64, unit: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let template = format!("{{msg}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{eta}})");
    pb.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb
}

pub fn selftest(config: Option<&Path>, a: &SelftestArgs) -> anyhow::Result<()> {
    let opts = selftest::Options {
        silence: seconds("--silence", a.silence)?,
        reply_timeout: seconds("--timeout", a.timeout)?,
        ..selftest::Options::default()
    };
    let pb = spinner();
    let report = selftest::run(&config_source(config), &opts, &pb);
    pb.finish_and_clear();
    if a.json {
        println!("{}", report.render_json());
    } else {
        print!("{}", report.render_text());
    }
    if report.has_failures() {
        std::process::exit(EXIT_FAILED_CHECK);
    }
    Ok(())
}

/// Asks before a destructive command; refuses without a terminal unless `--yes` was given, so a
/// script never deletes data by accident.
fn confirm(prompt: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "mispdash: refusing to go on without confirmation: standard input is not a terminal \
             (add --yes to confirm)"
        );
        std::process::exit(EXIT_NOT_CONFIRMED);
    }
    let ok = dialoguer::Confirm::new()
        .with_prompt(prompt)
        .default(false)
        .interact()
        .context("cannot read the confirmation")?;
    if !ok {
        eprintln!("mispdash: nothing done");
        std::process::exit(EXIT_NOT_CONFIRMED);
    }
    Ok(())
}

#[derive(Args)]
pub struct CleanArgs {
    /// Empty the dashboard's databases completely (every key of the configured [RedisDB],
    /// [RedisLIST], [RedisLog] and [RedisMap] dbs), not only its statistics. Other databases
    /// of the Redis server are left alone.
    #[arg(short = 'b', long)]
    brutal: bool,
    /// Do not ask for confirmation (needed when standard input is not a terminal).
    #[arg(short = 'y', long)]
    yes: bool,
}

pub fn clean(config: Option<&Path>, a: &CleanArgs) -> anyhow::Result<()> {
    use ops::clean::Mode;
    let cfg = load_config(config)?;
    let mode = if a.brutal { Mode::Brutal } else { Mode::Soft };
    eprintln!("{}", ops::clean::describe(&cfg, mode));
    confirm("Delete these keys?", a.yes)?;
    let pb = bar(0, "keys");
    let summary = ops::clean::clean(&cfg, mode, &pb)?;
    pb.finish_and_clear();
    let per_db: Vec<String> = summary
        .per_db
        .iter()
        .map(|(db, n)| format!("{n} in db {db}"))
        .collect();
    println!(
        "Deleted {} key(s): {}.",
        summary.deleted(),
        per_db.join(", ")
    );
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum DeadLettersCommand {
    /// The newest dead letters: when, from which feed, the topic, the size and why.
    List {
        /// How many to show, newest first.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
        /// JSON Lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Push dead letters back onto the buffer (and out of the dead-letter list): the ones
    /// numbered as `list` shows them, or all with --all.
    Requeue {
        /// Numbers from `dead-letters list` (0 is the newest).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        index: Vec<usize>,
        #[arg(long)]
        all: bool,
    },
}

pub fn dead_letters(config: Option<&Path>, a: &DeadLettersCommand) -> anyhow::Result<()> {
    let cfg = load_config(config)?;
    match a {
        DeadLettersCommand::List { limit, json } => {
            let (letters, total) = ops::dead_letters::list(&cfg, *limit)?;
            for d in &letters {
                if *json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "index": d.index,
                            "epoch": d.epoch,
                            "zmq_name": d.zmq_name,
                            "topic": d.topic,
                            "bytes": d.bytes,
                            "applied": d.applied,
                            "reason": d.reason,
                            "requeueable": d.requeue_as.is_some(),
                        })
                    );
                    continue;
                }
                let when = d
                    .epoch
                    .and_then(|e| chrono::DateTime::from_timestamp(e as i64, 0))
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:>4}  {when}  {}  {}  {} bytes  applied: {}{}\n      {}",
                    d.index,
                    d.zmq_name.as_deref().unwrap_or("-"),
                    d.topic.as_deref().unwrap_or("-"),
                    d.bytes,
                    if d.applied.is_empty() {
                        "-"
                    } else {
                        &d.applied
                    },
                    if d.requeue_as.is_some() {
                        ""
                    } else {
                        "  (cannot be requeued)"
                    },
                    d.reason
                );
            }
            if !*json {
                println!(
                    "{} dead letter(s) in all{}",
                    total,
                    if total > letters.len() {
                        format!(", {} shown (--limit)", letters.len())
                    } else {
                        String::new()
                    }
                );
            }
        }
        DeadLettersCommand::Requeue { index, all } => {
            let which = (!*all).then_some(index.as_slice());
            let r = ops::dead_letters::requeue(&cfg, which)?;
            println!("{} dead letter(s) pushed back onto the buffer.", r.requeued);
            if !r.not_requeueable.is_empty() {
                println!(
                    "Not requeued (they hold no message that can be handled, e.g. a frame that is not UTF-8): {:?}",
                    r.not_requeueable
                );
            }
            if !r.missing.is_empty() {
                anyhow::bail!("no dead letter numbered {:?} (any more)", r.missing);
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct RebuildGeoArgs {
    /// First day to rebuild (YYYY-MM-DD or YYYYMMDD); default: the oldest day stored.
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Last day to rebuild (YYYY-MM-DD or YYYYMMDD); default: the newest day stored.
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Only report what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn rebuild_geo(config: Option<&Path>, a: &RebuildGeoArgs) -> anyhow::Result<()> {
    use ops::rebuild_geo::{parse_day, rebuild, Options};
    let cfg = load_config(config)?;
    let opts = Options {
        from: a.from.as_deref().map(parse_day).transpose()?,
        to: a.to.as_deref().map(parse_day).transpose()?,
        dry_run: a.dry_run,
    };
    let pb = bar(0, "days");
    let s = rebuild(&cfg, &opts, &pb)?;
    pb.finish_and_clear();
    println!(
        "GeoIP database: {}",
        cfg.resolve(&cfg.redis.path_maxmind_db).display()
    );
    println!(
        "days: {} with geolocation data, {} {}",
        s.days,
        s.days_rewritten,
        if a.dry_run {
            "would be rewritten (dry run: nothing written)"
        } else {
            "rewritten"
        }
    );
    println!(
        "points moved: {} (newly resolved from a country centroid: {})",
        s.moved, s.newly_resolved
    );
    println!(
        "points no longer resolvable (kept where they were): {}",
        s.unresolvable
    );
    println!(
        "points unchanged: {}; phone-number points (not from GeoIP): {}",
        s.unchanged, s.phone_points
    );
    println!("radius index entries moved: {}", s.radius_moved);
    println!("hits: {} (preserved)", s.hits);
    Ok(())
}

#[derive(Args)]
pub struct ReplayArgs {
    /// JSON Lines corpus: a file written by `mispdash record`, or by the gen_corpus.py tool
    /// (one {"topic", "payload"}, {"topic", "raw"} or {"frame_b64"} object per line).
    file: PathBuf,
    /// Messages per second (0: as fast as possible).
    #[arg(long, value_name = "N", default_value_t = 0.0)]
    rate: f64,
    /// Feed name (zmq_name) for the lines that do not carry their own.
    #[arg(short = 'n', long, default_value = "replay")]
    name: String,
}

pub fn replay(config: Option<&Path>, a: &ReplayArgs) -> anyhow::Result<()> {
    if !(a.rate.is_finite() && a.rate >= 0.0) {
        anyhow::bail!("--rate must be a number of messages per second (0: no limit)");
    }
    let cfg = load_config(config)?;
    let pb = bar(0, "messages");
    let s = ops::corpus::replay(&cfg, &a.file, &a.name, a.rate, &pb)?;
    pb.finish_and_clear();
    println!(
        "Pushed {} message(s) onto {:?} (db {}){}.",
        s.pushed,
        cfg.redis.list_name,
        cfg.redis.list_db,
        if s.dead_lettered > 0 {
            format!(
                "; {} frame(s) that are not UTF-8 went to the dead-letter list, as the subscriber files them",
                s.dead_lettered
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

#[derive(Args)]
pub struct BackfillArgs {
    /// Only this MISP instance of the configuration (default: every one).
    #[arg(long, value_name = "NAME")]
    feed: Option<String>,
    /// From when: a duration back from now (30d, 12h, 2w) or a date (2026-11-01).
    #[arg(long, value_name = "WHEN", default_value = "30d")]
    since: String,
    /// Until when (same forms; default: now).
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Say what would be added; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Events only, no sightings.
    #[arg(long)]
    no_sightings: bool,
    /// Events per page asked of MISP.
    #[arg(long, value_name = "N", default_value_t = 100)]
    page_size: u32,
    /// Seconds one answer of MISP may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    timeout: f64,
}

/// `30d`, `12h`, `90m`, `2w` back from `now`, a date (local midnight) or an epoch.
fn instant(what: &str, text: &str, now: i64) -> anyhow::Result<i64> {
    let t = text.trim();
    let unit = |c: char| match c {
        'm' => Some(60),
        'h' => Some(3_600),
        'd' => Some(86_400),
        'w' => Some(604_800),
        _ => None,
    };
    if let Some(last) = t.chars().last() {
        if let (Some(u), Ok(n)) = (unit(last), t[..t.len() - 1].parse::<i64>()) {
            if n >= 0 {
                return Ok(now - n * u);
            }
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        use chrono::TimeZone;
        if let Some(dt) = d
            .and_hms_opt(0, 0, 0)
            .and_then(|n| chrono::Local.from_local_datetime(&n).earliest())
        {
            return Ok(dt.timestamp());
        }
    }
    if let Ok(e) = t.parse::<i64>() {
        if e > 0 {
            return Ok(e);
        }
    }
    anyhow::bail!("{what} {text:?}: give a duration back from now (30d, 12h, 2w), a date (2026-11-01) or an epoch")
}

pub fn backfill(
    config: Option<&Path>,
    a: &BackfillArgs,
    clock: mispdash_core::clock::Clock,
) -> anyhow::Result<()> {
    use mispdash_core::backfill;
    let cfg = load_config(config)?;
    let now = clock.now_epoch();
    let since = instant("--since", &a.since, now)?;
    let until = a
        .until
        .as_deref()
        .map(|u| instant("--until", u, now))
        .transpose()?;
    if until.is_some_and(|u| u < since) {
        anyhow::bail!("--until is before --since");
    }
    if a.page_size == 0 || a.page_size > 10_000 {
        anyhow::bail!("--page-size must be from 1 to 10000");
    }
    let opts = backfill::Options {
        since,
        until,
        page_size: a.page_size,
        timeout: seconds("--timeout", a.timeout)?,
        dry_run: a.dry_run,
        sightings: !a.no_sightings,
        gap_fill: false,
    };
    let key = std::env::var("MISPDASH_MISP_API_KEY").ok();
    let sources = backfill::sources(&cfg, a.feed.as_deref(), key.as_deref())?;
    for source in &sources {
        eprintln!(
            "{}: reading events published since {} from {}{}",
            source.name,
            mispdash_core::clock::day_of_epoch(since as f64).unwrap_or_default(),
            source.url,
            if a.dry_run {
                " (dry run: nothing is changed)"
            } else {
                ""
            }
        );
        let pb = bar(0, "events");
        let r = backfill::run(&cfg.redis, source, &opts, &pb)?;
        pb.finish_and_clear();
        let verb = if a.dry_run { "would add" } else { "added" };
        println!(
            "{}: {} event(s) read: {verb} {} ({} attribute(s)), {} already applied{}",
            source.name,
            r.events_read,
            r.events_added,
            r.attributes_added,
            r.events_known,
            if r.events_unusable > 0 {
                format!(", {} without uuid or time (skipped)", r.events_unusable)
            } else {
                String::new()
            }
        );
        if opts.sightings {
            println!(
                "{}: {} sighting(s) read: {verb} {}, {} already applied",
                source.name, r.sightings_read, r.sightings_added, r.sightings_known
            );
        }
    }
    if !a.dry_run {
        println!(
            "The dispatcher (mispdash run) counts them from the buffer {:?} (db {}), each on the \
             day it happened in MISP.",
            cfg.redis.list_name, cfg.redis.list_db
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct RecordArgs {
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Record only this MISP instance of the configuration (repeatable; default: all).
    #[arg(long = "feed", value_name = "NAME")]
    feeds: Vec<String>,
}

pub fn record(config: Option<&Path>, a: &RecordArgs) -> anyhow::Result<()> {
    let cfg = load_config(config)?;
    let opts = ops::corpus::RecordOptions {
        output: a.output.clone(),
        count: a.count,
        duration: a.duration.map(|d| seconds("--duration", d)).transpose()?,
        feeds: a.feeds.clone(),
    };
    let stop = crate::stop_on_signal()?;
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} recording: {pos} message(s) [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    let n = ops::corpus::record(&cfg, &opts, &stop, &pb)?;
    pb.finish_and_clear();
    eprintln!("Recorded {n} message(s).");
    Ok(())
}

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// Prints a completion script, e.g. `mispdash completions bash > /etc/bash_completion.d/mispdash`.
pub fn completions(a: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "mispdash", &mut std::io::stdout());
    Ok(())
}

#[derive(Args)]
pub struct ManArgs {
    /// Write mispdash.1 and one page per subcommand (mispdash-run.1, ...) into this directory
    /// instead of printing mispdash.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The man page(s), from the same definitions as `--help`.
pub fn man(a: &ManArgs) -> anyhow::Result<()> {
    let cmd = crate::Cli::command();
    match &a.dir {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
        }
    }
    Ok(())
}
