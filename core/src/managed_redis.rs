//! A Redis server that mispdash starts and stops itself.
//!
//! `mispdash run` has to work on a fresh machine where nobody has configured Redis: when nothing
//! answers at the configured address, the command starts a private `redis-server` on loopback with
//! its data in a directory of ours, and stops it again when mispdash ends. Persistence is on (AOF
//! with `everysec` plus the RDB save points), so the dashboard's history survives restarts like it
//! would on an admin-run Redis.
//!
//! Other local users must not read the statistics or inject messages into the buffer, so the
//! server requires a password: a fresh random one at each start, kept in `password` (mode
//! 0600) in its 0700 data directory and given to the server in a 0600 configuration file
//! there, never on its command line (which anyone can read in `/proc`). mispdash's other
//! commands on the same machine find it there ([`adopt_password`]).
//!
//! Nor may a local user stand in for it: while mispdash is stopped anyone can listen on its
//! port. The server also listens on a Unix socket inside the 0700 directory, which no one
//! else can create; the password goes over TCP only once that socket has said the server on
//! the port is ours ([`managed_port`]), and a program on the port that is not ours is refused
//! with a message ([`check_port`]).
//!
//! The server must never outlive mispdash, or a later start would find the port taken by an
//! orphan nobody stops. Three mechanisms cover the ways mispdash can end:
//! * a normal end drops [`ManagedRedis`], which asks the server for `SHUTDOWN SAVE` and kills it
//!   if it has not exited after a timeout;
//! * a `kill -9` of mispdash cannot run any code of ours, so the child is spawned with the Linux
//!   parent-death signal (`prctl(PR_SET_PDEATHSIG, SIGTERM)`): the kernel sends it SIGTERM, on
//!   which Redis saves and exits by itself;
//! * Ctrl-C in a terminal signals the whole foreground process group; the child gets a process
//!   group of its own so that only mispdash sees the SIGINT and can stop Redis in order (after
//!   its own last writes) instead of Redis vanishing under it.
//!
//! Caveat of the parent-death signal: Linux sends it when the *thread* that spawned the child
//! exits, not the process. Call [`ManagedRedis::start`] from a thread that lives as long as the
//! server should (the main thread in `mispdash run`).

use crate::redis_util::RedisTarget;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Where Debian and most distributions put the server when it is not on `PATH` (e.g. `/usr/sbin`
/// is missing from a non-root user's `PATH`).
pub const FALLBACK_BINARIES: &[&str] = &["/usr/bin/redis-server", "/usr/sbin/redis-server"];

/// The port the managed server last listened on, inside the data directory.
pub const PORT_FILE: &str = "port";
/// The server's Unix socket inside the data directory (mode 0700: only mispdash's user).
pub const SOCKET_FILE: &str = "redis.sock";

/// Name of the log file inside the data directory.
pub const LOG_FILE: &str = "redis-server.log";
/// The managed server's password, inside the data directory (mode 0600).
pub const PASSWORD_FILE: &str = "password";
/// The configuration file that gives the server its password (mode 0600).
const CONF_FILE: &str = "redis.conf";

/// How long a new server has to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server that answers `LOADING` may take to read a large AOF/RDB before we give up.
const LOADING_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `SHUTDOWN SAVE` may take (an RDB save of a large dataset) before we kill the server.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the port probes wait: anything on loopback answers in far less.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Lines of the server log quoted in a start-up error.
const LOG_TAIL_LINES: usize = 20;

/// Why a managed Redis could not be started or stopped.
#[derive(Debug, Error)]
pub enum ManagedRedisError {
    #[error(
        "redis-server is not installed (looked for {searched}); run scripts/setup.sh or \
         `apt-get install redis-server`, or point [RedisGlobal] host/port at a running Redis"
    )]
    NotInstalled { searched: String },
    #[error("port 0 cannot be used for the managed Redis; configure a real [RedisGlobal] port")]
    InvalidPort,
    #[error(
        "127.0.0.1:{port} is already in use by something that is not Redis; free the port or \
         set another [RedisGlobal] port"
    )]
    PortTakenByOther { port: u16 },
    #[error(
        "a Redis server not started by this mispdash already listens on 127.0.0.1:{port}; use \
         it by setting [RedisGlobal] host/port/password to match, or choose another port"
    )]
    PortTakenByRedis { port: u16 },
    #[error(
        "127.0.0.1:{port} asks for a password, but the Redis that mispdash manages there (data \
         in {dir}) is not running: its password is not sent to an unknown program. Stop what \
         listens on the port (`ss -ltnp 'sport = :{port}'` shows it), or set [RedisGlobal] \
         password for a Redis of your own there"
    )]
    UnknownServerAsksPassword { port: u16, dir: PathBuf },
    #[error(
        "a Redis without a password answers on 127.0.0.1:{port}, where mispdash managed its own \
         (data in {dir}): anyone on this machine can read and change what it holds, so it is \
         not used. Stop it so that mispdash starts its own again, or, to use it anyway, run \
         with --no-managed-redis"
    )]
    UnprotectedServerOnManagedPort { port: u16, dir: PathBuf },
    #[error("cannot prepare the Redis data directory {dir}: {source}")]
    DataDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "redis-server failed to start on 127.0.0.1:{port}: {reason}; last lines of {log}:\n{tail}"
    )]
    StartFailed {
        port: u16,
        reason: String,
        log: PathBuf,
        tail: String,
    },
    #[error("redis-server (pid {pid}) did not exit after SHUTDOWN SAVE within {secs} s and was killed; writes of the last second may be lost")]
    StopTimedOut { pid: u32, secs: u64 },
    #[error("cannot stop redis-server (pid {pid}): {source}")]
    Stop {
        pid: u32,
        #[source]
        source: io::Error,
    },
}

/// A `redis-server` child process owned by mispdash; dropping it stops the server.
#[derive(Debug)]
pub struct ManagedRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    password: String,
}

impl ManagedRedis {
    /// Starts a server found on `PATH` or in the usual system locations; see
    /// [`ManagedRedis::start_with`].
    pub fn start(dir: &Path, port: u16) -> Result<ManagedRedis, ManagedRedisError> {
        let binary = find_redis_server()?;
        Self::start_with(&binary, dir, port)
    }

    /// Starts `binary` on 127.0.0.1:`port` with its data in `dir`, and returns once it answers
    /// PING. Taking the binary explicitly lets tests (and admins with a self-built Redis) choose
    /// it without touching `PATH`.
    pub fn start_with(
        binary: &Path,
        dir: &Path,
        port: u16,
    ) -> Result<ManagedRedis, ManagedRedisError> {
        if port == 0 {
            return Err(ManagedRedisError::InvalidPort);
        }
        if !is_executable_file(binary) {
            return Err(ManagedRedisError::NotInstalled {
                searched: binary.display().to_string(),
            });
        }
        match probe_port(port) {
            PortState::Free => {}
            PortState::Redis => return Err(ManagedRedisError::PortTakenByRedis { port }),
            PortState::Other => return Err(ManagedRedisError::PortTakenByOther { port }),
        }
        let dir = prepare_dir(dir)?;
        let data_err = |source| ManagedRedisError::DataDir {
            dir: dir.clone(),
            source,
        };
        let password = new_password(&dir).map_err(data_err)?;
        write_private(&dir.join(PORT_FILE), &format!("{port}\n")).map_err(data_err)?;
        let conf = write_private(
            &dir.join(CONF_FILE),
            &format!("# Written by mispdash at each start.\nrequirepass {password}\n"),
        )
        .map_err(data_err)?;
        let log = dir.join(LOG_FILE);
        let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);

        // The server's own start-up complaints (a bad option, say) go to stderr before it opens
        // its log file; sending stdout/stderr to the same file (append mode) keeps them with it.
        let out = open_log(&log, &dir)?;
        let err = out
            .try_clone()
            .map_err(|source| ManagedRedisError::DataDir {
                dir: dir.clone(),
                source,
            })?;

        let mut cmd = Command::new(binary);
        cmd.arg(&conf)
            .args(server_args(&dir, &log, port))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        arrange_death_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| ManagedRedisError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })?;
        tracing::info!(
            "started managed redis-server (pid {}) on 127.0.0.1:{port}, data in {}",
            child.id(),
            dir.display()
        );
        let mut me = ManagedRedis {
            child: Some(child),
            port,
            dir,
            log,
            password,
        };
        if let Err(reason) = me.wait_ready() {
            // Do not leave a half-started server behind; its log says what went wrong.
            me.kill_now();
            return Err(ManagedRedisError::StartFailed {
                port,
                reason,
                tail: log_tail(&me.log, log_start, LOG_TAIL_LINES),
                log: me.log.clone(),
            });
        }
        Ok(me)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address to connect to (always loopback) and the password.
    pub fn target(&self) -> RedisTarget {
        RedisTarget::direct("127.0.0.1", self.port, Some(self.password.clone()))
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Process id of the server while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Stops the server, saving its data, and reports whether that went cleanly; dropping does
    /// the same but can only log a failure.
    pub fn stop(mut self) -> Result<(), ManagedRedisError> {
        self.stop_inner()
    }

    /// Polls until the child answers PING, checking that the answer comes from our child and not
    /// from a server that grabbed the port in between.
    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let mut deadline = started + START_TIMEOUT;
        let target = self.target();
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => return Err(format!("it exited at once ({status})")),
                    Ok(None) => {}
                    Err(e) => return Err(format!("cannot watch the process: {e}")),
                }
            }
            let last_err = match ping_info(&target) {
                Ok(pid) => {
                    if pid == self.pid() {
                        return Ok(());
                    }
                    return Err(format!(
                        "another Redis (pid {}) answers on the port",
                        pid.map_or_else(|| "?".to_string(), |p| p.to_string())
                    ));
                }
                Err(e) if e.kind() == redis::ErrorKind::BusyLoadingError => {
                    // Alive and reading its data set: a large one may need much longer than a
                    // cold start.
                    deadline = started + LOADING_TIMEOUT;
                    e.to_string()
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "no PING answer within {} s ({last_err})",
                    deadline.duration_since(started).as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_inner(&mut self) -> Result<(), ManagedRedisError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(());
        }
        // SHUTDOWN SAVE writes a final RDB even if no save point is due. When the command cannot
        // be sent, SIGTERM does the same from the server's side.
        if request_shutdown(&self.target()).is_err() {
            signal(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => {
                    tracing::info!("managed redis-server (pid {pid}) stopped");
                    return Ok(());
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ManagedRedisError::StopTimedOut {
                        pid,
                        secs: STOP_TIMEOUT.as_secs(),
                    });
                }
                Err(source) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ManagedRedisError::Stop { pid, source });
                }
            }
        }
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ManagedRedis {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::warn!("{e}");
        }
    }
}

/// Writes `text` to `path`, readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> io::Result<PathBuf> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode through open(2): make it private anyway.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    Ok(path.to_path_buf())
}

/// A new password for the server about to start in `dir` (32 random bytes, hex): one that
/// leaked (to a program that stood in for the server, say) is of no use after a restart.
fn new_password(dir: &Path) -> io::Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| io::Error::other(e.to_string()))?;
    let p = hex::encode(raw);
    write_private(&dir.join(PASSWORD_FILE), &format!("{p}\n"))?;
    Ok(p)
}

/// The password of the managed server whose data is in `dir`, if one was made.
pub fn read_password(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(PASSWORD_FILE)).ok()?;
    let p = text.trim();
    (!p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| p.to_string())
}

/// Gives `target` the managed server's password when it has none and the server on its port
/// is the one mispdash manages with `dir` ([`managed_port`]): how `mispdash selftest`,
/// `dead-letters` and the others reach the Redis that `mispdash run` manages. Anything else on
/// the port never gets the password.
pub fn adopt_password(target: &mut RedisTarget, dir: &Path) -> bool {
    if target.password.is_some() || !is_loopback(&target.host) || read_password(dir).is_none() {
        return false;
    }
    adopt_if_ours(target, dir, managed_port(dir))
}

/// [`adopt_password`] with the managed server's port already asked ([`managed_port`]).
fn adopt_if_ours(target: &mut RedisTarget, dir: &Path, managed: Option<u16>) -> bool {
    if target.password.is_some() || !is_loopback(&target.host) || managed != Some(target.port) {
        return false;
    }
    let Some(p) = read_password(dir) else {
        return false;
    };
    target.password = Some(p);
    true
}

/// What `mispdash run` does with the Redis at `target` before using or starting one: adopts
/// the managed server's password when that server is what answers there (true), else, when
/// it manages Redis, refuses a stranger on the managed port ([`check_port`]). The managed
/// server is asked once for both.
pub fn adopt_or_check(
    target: &mut RedisTarget,
    dir: &Path,
    manage: bool,
) -> Result<bool, ManagedRedisError> {
    let managed = if target.password.is_none() && is_loopback(&target.host) {
        managed_port(dir)
    } else {
        None
    };
    if adopt_if_ours(target, dir, managed) {
        return Ok(true);
    }
    if manage {
        check_port_with(target, dir, managed)?;
    }
    Ok(false)
}

pub(crate) fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// The TCP port of the server mispdash manages with `dir`, asked through its Unix socket with
/// its password; `None` when it does not run. Only a server that mispdash started can have
/// that socket (the directory is 0700), and while it runs it holds its port: the answer proves
/// that what listens on the port is ours.
pub fn managed_port(dir: &Path) -> Option<u16> {
    use std::os::unix::fs::FileTypeExt;
    let password = read_password(dir)?;
    let socket = dir.join(SOCKET_FILE);
    if !fs::symlink_metadata(&socket).ok()?.file_type().is_socket() {
        return None;
    }
    let info = redis::ConnectionInfo {
        addr: redis::ConnectionAddr::Unix(socket),
        redis: redis::RedisConnectionInfo {
            password: Some(password),
            ..Default::default()
        },
    };
    let client = redis::Client::open(info).ok()?;
    let mut conn = client.get_connection_with_timeout(PROBE_TIMEOUT).ok()?;
    conn.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut conn).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("tcp_port:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Refuses the port that mispdash's managed Redis last listened on (with `dir`) when what
/// answers there now is not the managed server: a program asking for a password (it would
/// learn the password), or a Redis without one (anyone local could read and change it).
pub fn check_port(target: &RedisTarget, dir: &Path) -> Result<(), ManagedRedisError> {
    check_port_with(target, dir, managed_port(dir))
}

/// [`check_port`] with the managed server's port already asked.
fn check_port_with(
    target: &RedisTarget,
    dir: &Path,
    managed: Option<u16>,
) -> Result<(), ManagedRedisError> {
    let last_port = fs::read_to_string(dir.join(PORT_FILE))
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok());
    if target.password.is_some()
        || !is_loopback(&target.host)
        || last_port != Some(target.port)
        || read_password(dir).is_none()
    {
        return Ok(());
    }
    if managed == Some(target.port) {
        return Ok(());
    }
    let port = target.port;
    match raw_ping(port) {
        Some(a) if a.starts_with(b"-NOAUTH") => Err(ManagedRedisError::UnknownServerAsksPassword {
            port,
            dir: dir.to_path_buf(),
        }),
        Some(a) if a.starts_with(b"+PONG") => {
            Err(ManagedRedisError::UnprotectedServerOnManagedPort {
                port,
                dir: dir.to_path_buf(),
            })
        }
        _ => Ok(()),
    }
}

/// Whether a Redis server answers PING at `target` within about a second; what `mispdash run`
/// asks before deciding to start its own.
pub fn is_reachable(target: &RedisTarget) -> bool {
    let Ok(client) = target.client(0) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(PROBE_TIMEOUT) else {
        return false;
    };
    if conn.set_read_timeout(Some(PROBE_TIMEOUT)).is_err()
        || conn.set_write_timeout(Some(PROBE_TIMEOUT)).is_err()
    {
        return false;
    }
    matches!(redis::cmd("PING").query::<String>(&mut conn), Ok(s) if s == "PONG")
}

/// The `redis-server` to run: first on `PATH`, then the usual system locations.
pub fn find_redis_server() -> Result<PathBuf, ManagedRedisError> {
    let path = std::env::var_os("PATH");
    let fallbacks: Vec<&Path> = FALLBACK_BINARIES.iter().map(Path::new).collect();
    locate_binary("redis-server", path.as_deref(), &fallbacks).ok_or_else(|| {
        ManagedRedisError::NotInstalled {
            searched: format!("redis-server on PATH, {}", FALLBACK_BINARIES.join(", ")),
        }
    })
}

/// Looks `name` up in a `PATH`-style list, then in `fallbacks`; separate from the environment so
/// that it can be tested without changing the process's `PATH`.
pub fn locate_binary(
    name: &str,
    path_var: Option<&std::ffi::OsStr>,
    fallbacks: &[&Path],
) -> Option<PathBuf> {
    let on_path = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name));
    on_path
        .chain(fallbacks.iter().map(|p| p.to_path_buf()))
        .find(|p| is_executable_file(p))
}

fn is_executable_file(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The server's whole configuration on the command line, so no config file of the system
/// (Debian's `/etc/redis/redis.conf` binds 6379 and daemonizes) leaks in.
fn server_args(dir: &Path, log: &Path, port: u16) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    let mut opt = |name: &str, value: &std::ffi::OsStr| {
        args.push(format!("--{name}").into());
        args.push(value.to_os_string());
    };
    opt("port", port.to_string().as_ref());
    opt("bind", "127.0.0.1".as_ref());
    // Only loopback can reach it, and only with the password (see the module documentation);
    // protected mode would add nothing but warnings about "localhost" over IPv6.
    opt("protected-mode", "no".as_ref());
    opt("daemonize", "no".as_ref());
    opt("supervised", "no".as_ref());
    opt("dir", dir.as_os_str());
    // The socket that proves the server is ours (see the module documentation).
    opt("unixsocket", dir.join(SOCKET_FILE).as_os_str());
    opt("unixsocketperm", "700".as_ref());
    opt("logfile", log.as_os_str());
    opt("loglevel", "notice".as_ref());
    opt("appendonly", "yes".as_ref());
    opt("appendfsync", "everysec".as_ref());
    // Redis 7's defaults, spelled out because an empty `save` would disable RDB snapshots.
    opt("save", "3600 1 300 100 60 10000".as_ref());
    opt("dbfilename", "dump.rdb".as_ref());
    // Plenty for the dashboard's handful of databases; the original uses the default 16 too.
    opt("databases", "16".as_ref());
    args
}

/// Makes the child die with us (see the module documentation) and keeps it out of our
/// process group.
fn arrange_death_with_parent(cmd: &mut Command) {
    // SAFETY-relevant: getpid() is read before fork; the closure runs in the child between fork
    // and exec and only makes async-signal-safe system calls (prctl, getppid, setpgid).
    let parent = unsafe { libc::getpid() };
    let hook = move || -> io::Result<()> {
        // SAFETY: plain system calls with constant, valid arguments.
        unsafe {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl, in which case no signal will
            // ever come: refuse to run as an orphan.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    };
    // SAFETY: the hook only calls async-signal-safe functions and never allocates.
    unsafe {
        cmd.pre_exec(hook);
    }
}

fn prepare_dir(dir: &Path) -> Result<PathBuf, ManagedRedisError> {
    let err = |source| ManagedRedisError::DataDir {
        dir: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    // The data holds the dashboard's whole history; keep it private even if the directory
    // already existed with looser permissions.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    // Redis resolves relative paths against its own working directory; an absolute path keeps
    // the log and data where the caller meant them.
    dir.canonicalize().map_err(err)
}

fn open_log(log: &Path, dir: &Path) -> Result<File, ManagedRedisError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| ManagedRedisError::DataDir {
            dir: dir.to_path_buf(),
            source,
        })
}

/// The last `lines` lines the server logged since `from` (the log's size before this start), so
/// an error quotes this start's complaint and not an old run's.
fn log_tail(log: &Path, from: u64, lines: usize) -> String {
    let mut text = String::new();
    let read = File::open(log).and_then(|mut f| {
        f.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        text = String::from_utf8_lossy(&buf).into_owned();
        Ok(())
    });
    if let Err(e) = read {
        return format!("(cannot read the log: {e})");
    }
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let tail = all[start..].join("\n");
    if tail.trim().is_empty() {
        "(the log is empty)".into()
    } else {
        tail
    }
}

/// What listens on a loopback port.
#[derive(Debug, PartialEq, Eq)]
enum PortState {
    Free,
    Redis,
    Other,
}

/// Tells a free port from one held by Redis (any RESP answer to an inline PING, including
/// `-NOAUTH`) or by something else.
fn probe_port(port: u16) -> PortState {
    match raw_ping(port) {
        None => PortState::Free,
        Some(a)
            if a.starts_with(b"+PONG")
                || a.starts_with(b"-NOAUTH")
                || a.starts_with(b"-LOADING") =>
        {
            PortState::Redis
        }
        Some(_) => PortState::Other,
    }
}

/// An inline PING on loopback `port` over a raw socket, so that no client library behaviour
/// (AUTH, HELLO) gets in the way: the start of the answer; empty when the program on the port
/// said nothing, `None` when nothing listens.
fn raw_ping(port: u16) -> Option<Vec<u8>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).ok()?;
    let _ = s.set_read_timeout(Some(PROBE_TIMEOUT));
    let _ = s.set_write_timeout(Some(PROBE_TIMEOUT));
    if s.write_all(b"PING\r\n").is_err() {
        return Some(Vec::new());
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let _ = s.shutdown(Shutdown::Both);
    Some(buf[..n].to_vec())
}

/// PINGs and returns the server's `process_id` from `INFO server`.
fn ping_info(target: &RedisTarget) -> redis::RedisResult<Option<u32>> {
    let client = target.client(0)?;
    let mut conn = client.get_connection_with_timeout(PROBE_TIMEOUT)?;
    conn.set_read_timeout(Some(PROBE_TIMEOUT))?;
    redis::cmd("PING").query::<String>(&mut conn)?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut conn)?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok()))
}

/// Sends `SHUTDOWN SAVE`; success shows as the server closing the connection.
fn request_shutdown(target: &RedisTarget) -> Result<(), ()> {
    let client = target.client(0).map_err(|_| ())?;
    let mut conn = client
        .get_connection_with_timeout(PROBE_TIMEOUT)
        .map_err(|_| ())?;
    let _ = conn.set_read_timeout(Some(STOP_TIMEOUT));
    match redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut conn) {
        Ok(()) => Ok(()),
        // The connection drops when the server exits: that is the success case.
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() => {
            Ok(())
        }
        Err(e) => {
            tracing::warn!("redis SHUTDOWN SAVE refused: {e}");
            Err(())
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_binary(dir: &Path, mode: u32) -> PathBuf {
        let bin = dir.join("redis-server");
        fs::write(&bin, "#!/bin/sh\n").expect("write fake binary");
        fs::set_permissions(&bin, fs::Permissions::from_mode(mode)).expect("chmod fake binary");
        bin
    }

    #[test]
    fn locate_prefers_path_then_fallbacks() {
        let a = tempfile::tempdir().expect("tempdir");
        let bin = fake_binary(a.path(), 0o755);
        let path = std::env::join_paths([Path::new("/nonexistent"), a.path()]).expect("PATH");
        assert_eq!(
            locate_binary("redis-server", Some(&path), &[]),
            Some(bin.clone())
        );
        assert_eq!(
            locate_binary("redis-server", None, &[Path::new("/nonexistent/x"), &bin]),
            Some(bin)
        );
        assert_eq!(locate_binary("redis-server", None, &[]), None);
    }

    #[test]
    fn non_executable_is_not_a_binary() {
        let a = tempfile::tempdir().expect("tempdir");
        let f = fake_binary(a.path(), 0o644);
        assert!(!is_executable_file(&f));
        assert!(!is_executable_file(a.path()));
    }

    #[test]
    fn log_tail_keeps_last_lines_since_offset() {
        let a = tempfile::tempdir().expect("tempdir");
        let f = a.path().join("log");
        fs::write(&f, "old\n1\n2\n3\n").expect("write log");
        assert_eq!(log_tail(&f, 4, 2), "2\n3");
        assert_eq!(log_tail(&f, 12, 2), "(the log is empty)");
    }
}
