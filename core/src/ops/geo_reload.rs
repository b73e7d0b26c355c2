//! The running dashboard picks up a replaced GeoIP database without a restart.
//!
//! The original opens its reader once, so after MaxMind's monthly update the dispatcher must be
//! restarted (spec §3.6). Here a thread watches the configured file and swaps the database in
//! [`Env`] when the file changes, and at once on `SIGHUP` (the usual "reload" signal, for
//! update scripts). The file is polled (its size, modification time and inode) rather than
//! watched with inotify: the original's installer replaces a *symlinked directory*, and a poll
//! of the path follows symlink swaps that an inotify watch on the old target would miss. A change
//! is loaded once the file has stayed the same for one poll, so a copy in progress is not read
//! half-written; a file that does not open keeps the previous database in service.

use crate::geoip::GeoDb;
use crate::rules::Env;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the file is looked at.
const POLL: Duration = Duration::from_secs(1);

/// What identifies a version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    len: u64,
    mtime_ns: i128,
    inode: u64,
}

fn signature(path: &Path) -> Option<Signature> {
    let m = std::fs::metadata(path).ok()?;
    Some(Signature {
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        inode: m.ino(),
    })
}

/// Starts the watcher; it ends when `stop` is set.
pub fn spawn(
    path: PathBuf,
    env: Arc<Env>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    std::thread::Builder::new()
        .name("geoip-reload".into())
        .spawn(move || watch(&path, &env, &stop, &hup))
}

fn reload(path: &Path, env: &Env, why: &str) -> bool {
    match GeoDb::open(path) {
        Ok(db) => {
            tracing::info!(
                "GeoIP database reloaded ({why}): {} ({}, built {})",
                path.display(),
                db.database_type(),
                db.build_epoch()
            );
            env.set_geo(Some(db));
            true
        }
        Err(e) => {
            tracing::error!("{e} ({why}); the previous GeoIP database stays in use");
            false
        }
    }
}

fn watch(path: &Path, env: &Env, stop: &AtomicBool, hup: &AtomicBool) {
    // The version in service (None: none loaded, or not known).
    let mut loaded = signature(path).filter(|_| env.geo().is_some());
    let mut candidate: Option<Signature> = None;
    let mut next_poll = Instant::now() + POLL;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if hup.swap(false, Ordering::Relaxed) {
            if reload(path, env, "SIGHUP") {
                loaded = signature(path);
            }
            candidate = None;
            continue;
        }
        if Instant::now() < next_poll {
            continue;
        }
        next_poll = Instant::now() + POLL;
        let now = signature(path);
        match (now, candidate) {
            (None, _) => candidate = None,
            (Some(sig), _) if Some(sig) == loaded => candidate = None,
            (Some(sig), Some(c)) if c == sig => {
                // Unchanged for a whole poll: the writer is done. A version that does not open
                // is remembered too, so it is not retried every second.
                reload(path, env, "the file changed");
                loaded = Some(sig);
                candidate = None;
            }
            (Some(sig), _) => candidate = Some(sig),
        }
    }
}
