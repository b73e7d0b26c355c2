//! The accept loop: admission against the connection limits, plain or TLS, HTTP/1.1 and
//! HTTP/2 on one port, timeouts, and the closing of idle connections. Apart from the routes
//! because it knows nothing of them: it serves whatever [`Router`] it is given.

use super::state::Shared;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Accepts connections until shutdown, each served on its own task.
///
/// Each is admitted against the connection limits first (see [`super::conn`]); one over them
/// is closed at once. Every phase before a request is bounded by `[mispdash]
/// connection_timeout`: the TLS handshake, the first bytes, a request's headers (and the
/// silence between two requests of an HTTP/1 connection), an HTTP/2 ping's answer.
///
/// A write that cannot complete within `write_timeout` means the client stopped reading (a
/// stream client stalled, or gone without a FIN): its connection is closed and counted in
/// `slow_clients_dropped`. Streams send a keep-alive comment regularly, so a live client always
/// has something to read.
pub async fn serve(
    st: Shared,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    write_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let timeout = Duration::from_secs(st.cfg.guard.connection_timeout);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
    // A ping after half the timeout without a frame, and half for its answer: a silent
    // HTTP/2 peer is gone within the timeout, a live one answers pings.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(timeout / 2)
        .keep_alive_timeout(timeout / 2);
    // Plain HTTP/1 connections, told by their first bytes ([`speaks_http2`]), get hyper's
    // HTTP/1 builder: hyper-util's `auto` builder, which tells the protocols apart itself,
    // made every connection about 6 KiB larger for as long as it lives (a wall screen's
    // stream, for weeks; `docs/performance.md`). HTTP/2 with prior knowledge and TLS
    // connections (ALPN) keep it.
    let mut h1 = hyper::server::conn::http1::Builder::new();
    h1.timer(TokioTimer::new()).header_read_timeout(timeout);
    let mut refusals_said = std::time::Instant::now() - Duration::from_secs(60);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let ticket =
            match st.admission.admit(peer.ip()) {
                Ok(t) => t,
                Err(why) => {
                    // Closed here, at once: left in the backlog it would hold up everyone.
                    drop(tcp);
                    if refusals_said.elapsed() >= Duration::from_secs(10) {
                        refusals_said = std::time::Instant::now();
                        match why {
                            super::conn::Refusal::Total => tracing::warn!(
                            "{} connections open, the most allowed ([mispdash] max_connections); \
                             new ones are closed ({} so far)",
                            st.admission.open(),
                            st.admission.refused.load(std::sync::atomic::Ordering::Relaxed)
                        ),
                            super::conn::Refusal::PerAddress => tracing::warn!(
                                "{} holds {} connections, the most allowed from one address \
                             ([mispdash] max_connections_per_address); new ones are closed",
                                peer.ip(),
                                st.cfg.guard.max_connections_per_address
                            ),
                        }
                    }
                    continue;
                }
            };
        let _ = tcp.set_nodelay(true);
        let mut io = tokio_io_timeout::TimeoutStream::new(tcp);
        io.set_write_timeout(Some(write_timeout));
        let io = Box::pin(io);
        let activity = ticket.activity.clone();
        let svc = app
            .clone()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(activity.clone());
                req.map(Body::new)
            });
        let svc = hyper_util::service::TowerToHyperService::new(svc);
        let watcher = graceful.watcher();
        let st = st.clone();
        let admission = st.admission.clone();
        match &acceptor {
            None => {
                let h1 = h1.clone();
                let builder = builder.clone();
                tokio::spawn(async move {
                    let Some(http2) = speaks_http2(&io, timeout, &admission).await else {
                        return;
                    };
                    let io = TokioIo::new(super::conn::FirstBytes::new(io, timeout, admission));
                    // A task of its own per protocol: one task holding either connection
                    // would be as large as an HTTP/2 one for every connection.
                    if http2 {
                        tokio::spawn(async move {
                            let conn = builder.serve_connection_with_upgrades(io, svc);
                            let conn = watcher.watch(conn.into_owned());
                            serve_until_idle(&st, conn, &ticket, timeout).await;
                            drop(ticket);
                        });
                    } else {
                        tokio::spawn(async move {
                            let conn = watcher.watch(h1.serve_connection(io, svc));
                            let conn = async { conn.await.map_err(Into::into) };
                            serve_until_idle(&st, conn, &ticket, timeout).await;
                            drop(ticket);
                        });
                    }
                });
            }
            Some(acc) => {
                let acc = acc.clone();
                let builder = builder.clone();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(timeout, acc.accept(io)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            admission
                                .timed_out
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                    };
                    let io = super::conn::FirstBytes::new(tls, timeout, admission);
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
                    serve_until_idle(&st, watcher.watch(conn.into_owned()), &ticket, timeout).await;
                    drop(ticket);
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}

/// Serves a connection until it ends, or until it has carried no request for `idle` or its
/// place is needed by a new client (see [`super::conn::Admission::admit`]): then it is dropped,
/// which closes the socket. Only a connection without a request in progress is closed so, so
/// no answer is cut; a browser opens a new connection for its next request.
/// Whether a plain connection opens with HTTP/2's preface (HTTP/2 with prior knowledge: its
/// first three bytes are `PRI`, which no HTTP/1 method begins with), read without taking the
/// bytes. `None` when it closed or said nothing for `timeout`: counted as [`FirstBytes`]
/// counts a silent connection, and dropped.
///
/// [`FirstBytes`]: super::conn::FirstBytes
async fn speaks_http2(
    io: &std::pin::Pin<Box<tokio_io_timeout::TimeoutStream<tokio::net::TcpStream>>>,
    timeout: Duration,
    admission: &super::conn::Admission,
) -> Option<bool> {
    const PREFACE: &[u8] = b"PRI";
    let tcp = io.get_ref();
    let mut head = [0u8; 3];
    let peeked = tokio::time::timeout(timeout, async {
        loop {
            let n = tcp.peek(&mut head).await.ok()?;
            if n == 0 {
                return None;
            }
            // A client that sends its first bytes one at a time: enough to tell once they
            // differ from the preface, else wait for the rest.
            if n >= PREFACE.len() || head[..n] != PREFACE[..n] {
                return Some(head[..n] == *PREFACE);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    match peeked {
        Ok(answer) => answer,
        Err(_) => {
            admission
                .timed_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            None
        }
    }
}

async fn serve_until_idle<F>(st: &Shared, conn: F, ticket: &super::conn::Ticket, idle: Duration)
where
    F: std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
{
    tokio::select! {
        r = conn => count_timeout(st, r),
        _ = super::conn::until_closed(&ticket.activity, idle) => {}
    }
}

/// Counts connections closed because a write timed out (a client that stopped reading).
fn count_timeout(st: &Shared, r: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    let Err(e) = r else {
        return;
    };
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<super::conn::Silent>())
            {
                // Counted by the admission as silent, not as a slow reader.
                return;
            }
        }
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            st.hub
                .dropped_slow
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!("a client stopped reading; its connection was closed");
            return;
        }
        cur = err.source();
    }
}
