//! Helpers of the page tests: the browser script (`core/web/e2e/browse.mjs`, headless Debian
//! Chromium through playwright-core), run while the test publishes, and seed2's dashboard.
#![allow(dead_code)]

use crate::common::*;
use crate::http_support::*;
use std::path::PathBuf;
use std::process::Command;

pub fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/web")
}

/// The browser script's command (`core/web/e2e/browse.mjs`) for pages of `base`.
pub fn browse_command(base: &str, out: &std::path::Path, args: &[&str]) -> Command {
    let dir = web_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && dir.join("dist/status.html").is_file(),
        "the web UI is not installed and built: run scripts/setup.sh test"
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .arg("e2e/browse.mjs")
        .args(["--base", base, "--out"])
        .arg(out)
        .args(args);
    cmd
}

/// Runs the browser script; returns its report, or panics with what it said.
pub fn browse(base: &str, out: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let o = browse_command(base, out, args)
        .output()
        .expect("node runs (scripts/setup.sh test installs it)");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "no report from the browser script:\n{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert!(
        o.status.success(),
        "the browser saw problems: {:#}",
        report["problems"]
    );
    report
}

/// Runs a node script while `publish` is called every 300 ms (what the page must show arrives
/// meanwhile), until the script ends; its exit status and what it printed.
pub fn run_while_publishing(
    mut cmd: Command,
    mut publish: impl FnMut(),
) -> (std::process::ExitStatus, String) {
    let mut node = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    // Read while it runs: a report larger than the pipe's buffer would block the script.
    let mut out = node.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut out, &mut stdout).expect("read");
        stdout
    });
    let status = loop {
        if let Some(s) = node.try_wait().expect("wait") {
            break s;
        }
        publish();
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    (status, reader.join().expect("reader"))
}

/// The browser script (`browse.mjs`) while `publish` is called every 300 ms; panics with its
/// report when it saw problems.
pub fn browse_while_publishing(cmd: Command, publish: impl FnMut()) {
    let (status, stdout) = run_while_publishing(cmd, publish);
    assert!(status.success(), "the browser saw problems:\n{stdout}");
}

/// A real Redis holding seed2's recorded keyspace, and the server on it.
pub fn seed2_server(tag: &str) -> (Redis, Server) {
    let redis = seed2_redis();
    let server = start_server(redis.port, &ServerSetup::default(), tag);
    (redis, server)
}

/// A live stream held open (and read, as a screen would, so that the server never drops it as
/// too slow) until the server stops: an idle server holds no Redis subscription, so what a
/// test publishes before its page opens reaches the server's history only while someone
/// listens.
pub struct Listener;

/// Opens a [`Listener`] and waits until the server has subscribed.
pub fn listen(base: &str, redis: &Redis) -> Listener {
    let resp = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .expect("client")
        .get(format!("{base}/_mispdash/stream?topics=live,map"))
        .send()
        .expect("stream");
    assert_eq!(resp.status(), 200, "the stream opens");
    let subscribed = wait_until(std::time::Duration::from_secs(10), || {
        redis
            .conn(0)
            .ok()
            .and_then(|mut c| redis::cmd("PUBSUB").arg("NUMPAT").query::<i64>(&mut c).ok())
            .is_some_and(|n| n >= 3)
    });
    assert!(subscribed, "the server subscribes for a listener");
    std::thread::spawn(move || {
        let mut resp = resp;
        let _ = std::io::copy(&mut resp, &mut std::io::sink());
    });
    Listener
}
