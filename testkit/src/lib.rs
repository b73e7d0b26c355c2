//! Real parts for the integration tests of `core/tests` and `cli/tests`: a `redis-server` of
//! the test's own on a free loopback port, killed when dropped, and the small waits every test
//! needs. One copy, so that a fix (a port another test grabbed first, a server that is not
//! ours answering a PING) reaches every test at once.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A loopback port nothing listened on a moment ago (another test may still take it first:
/// [`Redis::start`] tries again when that happens).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Polls `f` every 25 ms until it holds (true) or `limit` passes (false).
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    f()
}

/// A fresh directory named for the test, under this test process's own folder of the system's
/// temporary directory.
///
/// Tests leave their directories behind (a test that panics, a server killed mid-test, files a
/// running `redis-server` still writes), and a test binary cannot clean up as it exits. So every
/// directory of one process lives in `mispdash-test-<pid>`, and the first call of each process
/// removes the folders of processes that no longer run. Without that, every run of the suite
/// kept hundreds of megabytes (the self-test copies the binary), until a CI machine's disk
/// filled up mid-run.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = run_root().join(format!("{name}-{}", free_port()));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// This process's folder for [`tmpdir`], made once, after sweeping the folders of finished runs.
fn run_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let tmp = std::env::temp_dir();
        sweep_finished_runs(&tmp);
        let root = tmp.join(format!("{RUN_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("create the run's temp dir");
        root
    })
}

const RUN_PREFIX: &str = "mispdash-test-";

/// Removes `mispdash-test-<pid>` folders whose process is gone (no `/proc/<pid>`). A folder
/// whose name is not a pid is not ours to judge and stays.
fn sweep_finished_runs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RUN_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            // Best effort: another test process may sweep the same folder at the same time.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A redis-server of the test's own on a loopback port, killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    persist: bool,
    password: Option<String>,
}

impl Redis {
    /// On a free port, in a directory of its own, without persistence.
    pub fn start() -> Redis {
        let dir = tmpdir("redis");
        // A port found free may be taken by a parallel test before redis-server binds it:
        // then that server exits, and we try another port.
        for _ in 0..10 {
            let mut r = Redis::not_started_in(&dir, false);
            if r.try_start() {
                return r;
            }
        }
        panic!("could not start redis-server");
    }

    /// On `port`, in `dir`; with `persist`, AOF is on (fsync always) so that a restart in the
    /// same `dir` keeps the data.
    pub fn start_on(port: u16, dir: &Path, persist: bool) -> Redis {
        let mut r = Redis::not_started_in(dir, persist);
        r.port = port;
        r.restart();
        r
    }

    /// A server on a free port where nothing listens yet: [`Redis::restart`] brings it up.
    pub fn not_started() -> Redis {
        Redis::not_started_in(&tmpdir("redis"), false)
    }

    fn not_started_in(dir: &Path, persist: bool) -> Redis {
        Redis {
            port: free_port(),
            child: None,
            dir: dir.to_path_buf(),
            persist,
            password: None,
        }
    }

    /// Starts redis-server on `self.port`; true once *this* process (checked by pid, not just
    /// by a PING that another test's server could answer) serves it.
    fn try_start(&mut self) -> bool {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--dir", &self.dir.display().to_string()])
            .args(["--appendonly", if self.persist { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh test)");
        let pid = format!("process_id:{}", child.id());
        let up = wait_until(Duration::from_secs(10), || {
            if !matches!(child.try_wait(), Ok(None)) {
                return true; // exited: give up at once
            }
            self.conn_timeout(0, Duration::from_secs(1))
                .ok()
                .and_then(|mut c| {
                    redis::cmd("INFO")
                        .arg("server")
                        .query::<String>(&mut c)
                        .ok()
                })
                .is_some_and(|info| info.lines().any(|l| l.trim() == pid))
        }) && matches!(child.try_wait(), Ok(None));
        if up {
            self.child = Some(child);
        } else {
            let _ = child.kill();
            let _ = child.wait();
        }
        up
    }

    /// A connection to database `db` (with the password set by [`Redis::require_password`]).
    pub fn conn(&self, db: i64) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url(db))?.get_connection()
    }

    /// [`Redis::conn`] that gives up after `timeout`.
    pub fn conn_timeout(
        &self,
        db: i64,
        timeout: Duration,
    ) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url(db))?.get_connection_with_timeout(timeout)
    }

    /// `redis://[:password@]127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: i64) -> String {
        let auth = self
            .password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        format!("redis://{auth}127.0.0.1:{}/{db}", self.port)
    }

    /// Makes the running server require `password` (as an admin's `requirepass` does); later
    /// connections of this helper use it.
    pub fn require_password(&mut self, password: &str) {
        let mut c = self.conn(0).expect("redis");
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(password)
            .query::<()>(&mut c)
            .expect("CONFIG SET requirepass");
        self.password = Some(password.to_string());
    }

    /// Kills the server (no save) if it runs, and starts it again on the same port and
    /// directory (with `persist`, the data is kept).
    pub fn restart(&mut self) {
        self.kill();
        // The new server has no `requirepass`.
        self.password = None;
        assert!(
            self.try_start(),
            "redis-server did not come up on port {}",
            self.port
        );
    }

    /// Kills the server (no save); the port stays this helper's for a [`Redis::restart`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_removes_only_the_folders_of_finished_runs() {
        let parent = tmpdir("sweep");
        let mut done = Command::new("true").spawn().expect("spawn true");
        let dead = done.id();
        done.wait().expect("wait for true");
        let finished = parent.join(format!("{RUN_PREFIX}{dead}"));
        let running = parent.join(format!("{RUN_PREFIX}{}", std::process::id()));
        let not_a_run = parent.join(format!("{RUN_PREFIX}redis-12-34"));
        for d in [&finished, &running, &not_a_run] {
            std::fs::create_dir_all(d.join("inner")).expect("make a folder");
        }
        sweep_finished_runs(&parent);
        assert!(!finished.exists(), "the finished run's folder stayed");
        assert!(running.exists(), "a running process's folder was removed");
        assert!(
            not_a_run.exists(),
            "a folder that is not a run's was removed"
        );
    }
}
