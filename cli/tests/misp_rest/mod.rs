//! A **stand-in for MISP's REST API** (MISP cannot run here), shared by the tests of
//! `mispdash backfill` and of gap filling: `/events/restSearch` and `/sightings/restSearch`
//! answered a page at a time as MISP shapes them (`{"response": [...]}`, `X-Result-Count`),
//! with MISP's `publish_timestamp`/`from`/`to` filters, its refusal of a wrong key, and ways to
//! misbehave (an error page, a login page, slowness, one failing page).
#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const KEY: &str = "b4ckf1llb4ckf1llb4ckf1llb4ckf1llb4ckf1ll";

/// The stand-in's data and how it misbehaves.
#[derive(Default)]
pub struct Misp {
    pub events: Mutex<Vec<Value>>,
    pub sightings: Mutex<Vec<Value>>,
    /// Answer this page of events with an error page, once (an interruption).
    pub fail_page_once: Mutex<Option<u64>>,
    /// Answer every request with an HTML error page (MISP broken).
    pub error_page: Mutex<bool>,
    /// Answer every request 200 with a login page (a proxy in front of MISP).
    pub login_page: Mutex<bool>,
    /// Take this long to answer.
    pub delay: Mutex<Duration>,
    /// Event pages served.
    pub pages: Mutex<u64>,
}

/// The tests' pinned clock, as an epoch.
pub fn now() -> i64 {
    crate::common::ORACLE_NOW.parse().expect("pinned clock")
}

/// MISP's `publish_timestamp`/`from`/`to` filters and its paging.
fn page_of(items: &[Value], body: &Value, at: &str, from_to: bool) -> (Vec<Value>, usize) {
    let (lo, hi) = if from_to {
        (
            body.get("from").and_then(Value::as_i64).unwrap_or(0),
            body.get("to").and_then(Value::as_i64).unwrap_or(i64::MAX),
        )
    } else {
        match body.get("publish_timestamp") {
            Some(Value::Array(r)) => (
                r.first().and_then(Value::as_i64).unwrap_or(0),
                r.get(1).and_then(Value::as_i64).unwrap_or(i64::MAX),
            ),
            Some(v) => (v.as_i64().unwrap_or(0), i64::MAX),
            None => (0, i64::MAX),
        }
    };
    let matching: Vec<&Value> = items
        .iter()
        .filter(|v| {
            let t: i64 = v
                .pointer(at)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (lo..=hi).contains(&t)
        })
        .collect();
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(100) as usize;
    let page = body.get("page").and_then(Value::as_u64).unwrap_or(1) as usize;
    let out = matching
        .iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(|v| (*v).clone())
        .collect();
    (out, matching.len())
}

async fn guard(m: &Misp, h: &HeaderMap) -> Option<Response> {
    let delay = *m.delay.lock().expect("lock");
    tokio::time::sleep(delay).await;
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return Some(
            (
                StatusCode::FORBIDDEN,
                "{\"name\": \"Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.\", \"message\": \"Authentication failed.\"}",
            )
                .into_response(),
        );
    }
    if *m.error_page.lock().expect("lock") {
        return Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!DOCTYPE html><html><body><h2>An Internal Error Has Occurred.</h2></body></html>",
            )
                .into_response(),
        );
    }
    if *m.login_page.lock().expect("lock") {
        return Some(
            (
                StatusCode::OK,
                "<!DOCTYPE html><html><body><form action=\"/users/login\">Login</form></body></html>",
            )
                .into_response(),
        );
    }
    None
}

async fn events(State(m): State<Arc<Misp>>, h: HeaderMap, body: String) -> Response {
    if let Some(r) = guard(&m, &h).await {
        return r;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let page = body.get("page").and_then(Value::as_u64).unwrap_or(1);
    *m.pages.lock().expect("lock") += 1;
    {
        let mut fail = m.fail_page_once.lock().expect("lock");
        if *fail == Some(page) {
            *fail = None;
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<html>Internal error</html>",
            )
                .into_response();
        }
    }
    let (items, total) = page_of(
        &m.events.lock().expect("lock"),
        &body,
        "/Event/publish_timestamp",
        false,
    );
    (
        [("x-result-count", total.to_string())],
        axum::Json(json!({"response": items})),
    )
        .into_response()
}

async fn sightings(State(m): State<Arc<Misp>>, h: HeaderMap, body: String) -> Response {
    if let Some(r) = guard(&m, &h).await {
        return r;
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (items, _) = page_of(
        &m.sightings.lock().expect("lock"),
        &body,
        "/Sighting/date_sighting",
        true,
    );
    axum::Json(json!({"response": items})).into_response()
}

/// Starts the stand-in with `misp` on a free loopback port; it lives as long as the test.
pub fn start(misp: Misp) -> (u16, Arc<Misp>) {
    let state = Arc::new(misp);
    let shared = state.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/events/restSearch", post(events))
                .route("/sightings/restSearch", post(sightings))
                .with_state(shared);
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(l, app).await;
        });
    });
    (port, state)
}

/// A test configuration with feed `misp1` at the stand-in, its API key `key`.
pub fn config(dir: &Path, redis: u16, misp: u16, key: &str) -> std::path::PathBuf {
    let instances = format!(
        "[{{\"name\": \"misp1\", \"url\": \"http://127.0.0.1:{misp}\", \"zmq\": \"tcp://127.0.0.1:1\", \"api_key\": \"{key}\"}}]"
    );
    crate::common::write_config(dir, redis, &instances, &crate::common::oracle_mmdb(), None)
}
