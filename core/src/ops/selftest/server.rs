//! The web side: is `[Server] host:port` free for the dashboard, answered by it, or held by
//! another program? The last case is a classic after a migration (the old `server.py` still
//! running, or another service on 8001), and only a request tells it from the first two.

use super::Check;
use crate::config::Config;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Where to connect for a listen address: a wildcard address is reached through loopback.
fn connect_host(host: &str) -> &str {
    match host {
        "" | "0.0.0.0" | "*" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    }
}

pub(super) fn check(cfg: &Config) -> Check {
    let host = connect_host(&cfg.server.host);
    let port = cfg.server.port;
    let where_ = format!("{host}:{port}");
    let addrs: Vec<_> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Check::fail(
                "server",
                format!("cannot resolve [Server] host {:?}: {e}", cfg.server.host),
                "correct [Server] host",
            )
        }
    };
    let open = addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, TIMEOUT).is_ok());
    if !open {
        return match TcpListener::bind((cfg.server.host.as_str(), port)) {
            Ok(_) => Check::warn(
                "server",
                format!(
                    "nothing listens on {where_}: the web server is not running (the port is free)"
                ),
                "start the dashboard (`mispdash run`)",
            ),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Check::fail(
                "server",
                format!(
                    "port {port} cannot be used by this user (ports below 1024 need privileges)"
                ),
                "choose a [Server] port of 1024 or more, or put a reverse proxy in front",
            ),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Check::fail(
                "server",
                format!(
                    "[Server] host {:?} is not an address of this machine",
                    cfg.server.host
                ),
                "set [Server] host to an address of this machine, 127.0.0.1, or 0.0.0.0 for all",
            ),
            Err(e) => Check::warn(
                "server",
                format!("nothing answers on {where_}, and the port cannot be bound: {e}"),
                "free the port or choose another [Server] port",
            ),
        };
    }
    let scheme = if cfg.server.ssl { "https" } else { "http" };
    let url_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let url = format!("{scheme}://{url_host}:{port}/healthz");
    match healthz(&url) {
        Ok((status, server, body)) => {
            let server = server.map(|s| format!(", Server: {s}")).unwrap_or_default();
            let body: String = body.trim().chars().take(160).collect();
            match status {
                200..=299 => Check::pass(
                    "server",
                    format!("the dashboard answers {url} (HTTP {status}{server})"),
                ),
                503 => Check::warn(
                    "server",
                    format!("the dashboard answers {url} but reports a problem: {body}"),
                    "see the other lines of this report and the dashboard's log",
                ),
                _ => Check::fail(
                    "server",
                    format!(
                        "port {port} is taken by another program: GET {url} gave HTTP {status}{server}"
                    ),
                    "stop that program (an old misp-dashboard server.py?) or choose another [Server] port",
                ),
            }
        }
        Err(e) => Check::fail(
            "server",
            format!("port {port} is taken by a program that does not answer {scheme} like the dashboard ({e})"),
            "stop that program or choose another [Server] port",
        ),
    }
}

/// `GET url` once: the status, the `Server` header and the body. The dashboard's own
/// certificate is often self-signed; the question here is who answers, not whether the
/// certificate is trusted.
fn healthz(url: &str) -> Result<(u16, Option<String>, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client.get(url).send().await.map_err(|e| {
            // reqwest's own message is "error sending request"; the cause says what happened.
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            msg
        })?;
        let status = resp.status().as_u16();
        let server = resp
            .headers()
            .get("server")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.unwrap_or_default();
        Ok((status, server, body))
    })
}
