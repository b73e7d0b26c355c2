//! Helpers of the HTTP tests: load a recorded keyspace into a real Redis, start `mispdash run`
//! as a server only (no subscriber, no dispatcher) on a free loopback port, and wait for it.
#![allow(dead_code)]

use crate::common::{free_port, tmpdir, wait_child, wait_until, Mispdash, Redis};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes every key of a `redis_dump.py` file into `redis` (zset scores, list order, hashes,
/// sets and expiries as recorded), so the server can be asked about the oracle's own data.
/// A Redis holding the original's seed2 keyspace (`corpus/seed2.redis.json`).
pub fn seed2_redis() -> Redis {
    let redis = Redis::start();
    load_dump(
        &redis,
        &crate::common::read_json(&crate::common::shared().join("corpus/seed2.redis.json")),
    );
    redis
}

pub fn load_dump(redis: &Redis, dump: &Value) {
    let dbs = dump["dbs"].as_object().expect("dump has dbs");
    for (db, keys) in dbs {
        let mut c = redis.conn(db.parse().expect("db number")).expect("redis");
        let mut pipe = redis::pipe();
        for (k, v) in keys.as_object().expect("keys") {
            let val = &v["value"];
            match v["type"].as_str().expect("type") {
                "string" => {
                    pipe.cmd("SET").arg(k).arg(val.as_str().expect("string"));
                }
                "list" => {
                    let items: Vec<&str> = val
                        .as_array()
                        .expect("list")
                        .iter()
                        .map(|x| x.as_str().expect("item"))
                        .collect();
                    pipe.cmd("RPUSH").arg(k).arg(items);
                }
                "set" => {
                    let items: Vec<&str> = val
                        .as_array()
                        .expect("set")
                        .iter()
                        .map(|x| x.as_str().expect("member"))
                        .collect();
                    pipe.cmd("SADD").arg(k).arg(items);
                }
                "zset" => {
                    let mut cmd = redis::cmd("ZADD");
                    cmd.arg(k);
                    for pair in val.as_array().expect("zset") {
                        cmd.arg(pair[1].to_string())
                            .arg(pair[0].as_str().expect("member"));
                    }
                    pipe.add_command(cmd);
                }
                "hash" => {
                    let mut cmd = redis::cmd("HSET");
                    cmd.arg(k);
                    for (f, x) in val.as_object().expect("hash") {
                        cmd.arg(f).arg(x.as_str().expect("field"));
                    }
                    pipe.add_command(cmd);
                }
                other => panic!("unexpected type {other}"),
            }
            if let Some(days) = v["ttl_days"].as_i64().filter(|d| *d > 0) {
                pipe.cmd("EXPIRE").arg(k).arg(days * 86400);
            }
        }
        pipe.query::<()>(&mut c).expect("load the dump");
    }
}

/// What a test server needs in its configuration beyond Redis and the port.
#[derive(Default, Clone)]
pub struct ServerSetup {
    /// Extra lines of `[Server]` (e.g. ssl).
    pub server: String,
    /// The `[Auth]` section's lines.
    pub auth: String,
    /// Extra arguments of `mispdash run`.
    pub args: Vec<String>,
    /// Leave `[RedisGlobal] misp_web_url` out (the tests' configuration names it).
    pub no_misp_web_url: bool,
    /// The `[mispdash]` section's lines.
    pub mispdash: String,
    /// `MISPDASH_LOG` (default `info`).
    pub log_level: Option<String>,
}

/// A `mispdash run` serving HTTP only.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    pub process: Mispdash,
}

impl Server {
    pub fn base(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and starts it again on the same
    /// port with the same configuration, logging to `server-<n>.log`.
    pub fn restart(&mut self, setup: &ServerSetup, n: u32) {
        self.process.kill9();
        self.start_again(setup, n);
    }

    /// Starts the server again (after the test killed it) on the same port, logging to
    /// `server-<n>.log`.
    pub fn start_again(&mut self, setup: &ServerSetup, n: u32) {
        let mut args = SERVER_ONLY.to_vec();
        args.extend(setup.args.iter().map(String::as_str));
        let level = setup.log_level.as_deref().unwrap_or("info");
        let log = self.dir.join(format!("server-{n}.log"));
        self.process =
            Mispdash::start_logging(&self.dir.join("config.cfg"), &args, &log, true, level);
        let port = self.port;
        let up = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || !self.process.is_running()
        });
        assert!(
            up && self.process.is_running(),
            "the server did not start again:\n{}",
            self.process.log_text()
        );
    }
}

pub fn write_server_config(dir: &Path, redis_port: u16, port: u16, setup: &ServerSetup) -> PathBuf {
    let web_url = match setup.no_misp_web_url {
        true => "",
        false => "misp_web_url = http://0.0.0.0\n",
    };
    let text = format!(
        "[Server]\nhost = 127.0.0.1\nport = {port}\n{}\n[Auth]\n{}\n[RedisGlobal]\nhost = 127.0.0.1\nport = {redis_port}\n{web_url}misp_instances = []\n\n[RedisMap]\npathMaxMindDB = {}/no-such.mmdb\n\n[mispdash]\n{}\n",
        setup.server,
        setup.auth,
        dir.display(),
        setup.mispdash,
    );
    let p = dir.join("config.cfg");
    std::fs::write(&p, text).expect("write config");
    p
}

/// `mispdash run` with the web server only.
const SERVER_ONLY: [&str; 4] = [
    "run",
    "--no-subscribers",
    "--no-dispatcher",
    "--no-managed-redis",
];

/// Starts a server-only mispdash against `redis_port` and waits until its port accepts
/// connections (or the process exits, which then panics with its log).
pub fn start_server(redis_port: u16, setup: &ServerSetup, tag: &str) -> Server {
    let dir = tmpdir(tag);
    let port = free_port();
    let cfg = write_server_config(&dir, redis_port, port, setup);
    let mut args = SERVER_ONLY.to_vec();
    args.extend(setup.args.iter().map(String::as_str));
    let level = setup.log_level.as_deref().unwrap_or("info");
    let mut process = Mispdash::start_logging(&cfg, &args, &dir.join("server.log"), true, level);
    let up = wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() || !process.is_running()
    });
    assert!(
        up && process.is_running(),
        "the server did not start:\n{}",
        process.log_text()
    );
    Server { port, dir, process }
}

/// A certificate for 127.0.0.1 generated for the test, and the `[Server]` lines that serve it;
/// returns the setup and the certificate's PEM for clients to trust.
pub fn tls_setup(dir: &Path) -> (ServerSetup, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    (
        ServerSetup {
            server: format!(
                "ssl = True\nssl_cert = {}\nssl_key = {}\n",
                cert.display(),
                key.display()
            ),
            ..Default::default()
        },
        ck.cert.pem(),
    )
}

/// Starts a server-only mispdash on `cfg` that must refuse to start; returns its log, which
/// must name `option` (the setting to fix).
pub fn server_refuses_to_start(cfg: &Path, log: &Path, option: &str) -> String {
    let mut p = Mispdash::start(cfg, &SERVER_ONLY, log);
    let status = wait_child(
        &mut p.child,
        Duration::from_secs(20),
        &format!("mispdash refusing to start without a proper {option}"),
    );
    assert!(!status.success(), "mispdash started:\n{}", p.log_text());
    let text = p.log_text();
    assert!(text.contains(option), "{text}");
    text
}

/// A blocking client that keeps no cookies and follows no redirects.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The `Set-Cookie` headers of an answer.
pub fn set_cookies(r: &reqwest::blocking::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

pub fn cookie_pair(set: &[String], name: &str) -> Option<String> {
    set.iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
}

/// GET /login: the CSRF cookie and the token of the form.
pub fn login_page(c: &reqwest::blocking::Client, base: &str) -> (String, String, Vec<String>) {
    let r = c.get(format!("{base}/login")).send().expect("login page");
    assert_eq!(r.status(), 200);
    let set = set_cookies(&r);
    let csrf = cookie_pair(&set, "csrf").expect("csrf cookie");
    let body = r.text().expect("body");
    let at = body
        .find("name=\"csrf_token\" value=\"")
        .expect("token field")
        + 25;
    let token = body[at..at + body[at..].find('"').expect("end")].to_string();
    (csrf, token, set)
}

pub fn post_login(
    c: &reqwest::blocking::Client,
    base: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> reqwest::blocking::Response {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect();
    c.post(format!("{base}/login"))
        .header("Cookie", cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .expect("post login")
}

/// Signs in through the login form (`user` empty: `password` is an API key) and returns the
/// session cookie (`session=...`).
pub fn login_session(
    c: &reqwest::blocking::Client,
    base: &str,
    user: &str,
    password: &str,
) -> String {
    let (csrf, token, _) = login_page(c, base);
    let r = post_login(
        c,
        base,
        &csrf,
        &[
            ("csrf_token", token.as_str()),
            ("username", user),
            ("password", password),
        ],
    );
    assert_eq!(r.status(), 303, "login of {user:?}");
    cookie_pair(&set_cookies(&r), "session").expect("session cookie")
}
