//! The dashboard's HTTP routes without a socket: the same router, state and live-stream
//! subscription as the server, called request by request from another host program (the
//! Python bindings, so Apache mod_wsgi and MISP's Python tooling serve it in-process).
//!
//! Calls block the calling thread, never the runtime: a host with one thread per request (a
//! WSGI server) calls from many threads at once, and each waits for its own answer while the
//! runtime's workers serve them all.

use super::{build_state, routes, runtime, state::AppState, stream, StartError, WebOptions};
use crate::clock::Clock;
use crate::config::Config;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tower::ServiceExt;

/// A request made by the host program itself (a read helper, `status()`), not by a client:
/// the routes skip the login check for it. Only code in this process can attach it; nothing
/// a client sends becomes a request extension.
#[derive(Debug, Clone, Copy)]
pub struct InProcessCall;

/// The routes, ready to answer. Dropping it ends the live streams and the runtime.
pub struct Embedded {
    rt: Option<tokio::runtime::Runtime>,
    app: Router,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
}

impl Embedded {
    /// Builds the state and starts the live-stream subscription; nothing listens.
    pub fn new(cfg: &Config, opts: WebOptions, clock: Clock) -> Result<Embedded, StartError> {
        let rt = runtime(&opts)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        // The host (Apache, a WSGI server) terminates TLS when there is any: `[Server] ssl`
        // does not apply here.
        let state = build_state(cfg, &opts, clock, false, shutdown_rx.clone())?;
        if state.auth.is_none() {
            tracing::warn!(
                "authentication is off ([Auth] auth_enabled): every route is open to anyone who can reach the host's server"
            );
        }
        let app = routes::router(state.clone());
        rt.spawn(stream::run_subscriber(state.clone(), shutdown_rx));
        Ok(Embedded {
            rt: Some(rt),
            app,
            state,
            shutdown,
        })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        // Only `Drop` takes it.
        self.rt.as_ref().expect("the runtime lives until drop")
    }

    /// Answers one request from a client at `peer` (the address the host saw).
    pub fn call(&self, mut req: Request<Body>, peer: SocketAddr) -> Response<Body> {
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = self.app.clone();
        match self.rt().block_on(app.oneshot(req)) {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// Answers a request of the host program itself (no login needed).
    pub fn call_in_process(&self, mut req: Request<Body>) -> Response<Body> {
        req.extensions_mut().insert(InProcessCall);
        self.call(req, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The next piece of a response's body, waiting for it (a live stream's next event);
    /// `None` at its end.
    pub fn next_chunk(&self, body: &mut Body) -> Option<Result<Bytes, axum::Error>> {
        self.rt().block_on(async {
            loop {
                match body.frame().await? {
                    Ok(frame) => match frame.into_data() {
                        Ok(data) if data.is_empty() => continue,
                        Ok(data) => return Some(Ok(data)),
                        // Trailers: nothing a WSGI host can pass on.
                        Err(_) => continue,
                    },
                    Err(e) => return Some(Err(e)),
                }
            }
        })
    }

    /// The whole body of an answer that is not a stream.
    pub fn collect(&self, body: Body) -> Result<Bytes, axum::Error> {
        self.rt()
            .block_on(async { body.collect().await.map(|c| c.to_bytes()) })
    }

    /// The `/status` JSON, as the route builds it.
    pub fn status(&self) -> serde_json::Value {
        self.rt().block_on(super::ops::status(&self.state))
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // Without waiting: this may run at interpreter exit, where a worker blocked on Redis
        // must not hold the process.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
