//! The JSON answers of the routes: the body and headers of an answer, the short-lived
//! response cache every JSON route goes through (with the Redis deadline), and [`json_route!`],
//! which declares a cached route in one line. Apart from the routes so that the page, stream
//! and login handlers share one way of answering JSON.

use super::error::WebError;
use super::state::Shared;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A JSON answer.
pub(super) fn json_bytes(body: Bytes) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn to_bytes(v: &Value) -> Result<Bytes, WebError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| WebError::Internal(format!("json: {e}")))
}

/// What a route computes: a `Value`, or its answer already written (`super::json_out`).
pub(super) trait JsonBody {
    fn into_body(self) -> Result<Bytes, WebError>;
}

impl JsonBody for Value {
    fn into_body(self) -> Result<Bytes, WebError> {
        to_bytes(&self)
    }
}

impl JsonBody for Bytes {
    fn into_body(self) -> Result<Bytes, WebError> {
        Ok(self)
    }
}

/// Longest time a request waits for Redis before answering 503 (Redis down or restarting).
pub(super) const REDIS_DEADLINE: Duration = Duration::from_secs(5);

/// The answer when the statistics database did not answer within a route's deadline. The
/// shared connection may be a dead one still backing off (Redis restarted meanwhile): the next
/// request makes a new one.
pub(super) fn redis_too_slow(st: &Shared) -> WebError {
    st.redis_lost();
    WebError::Unavailable("Redis did not answer in time".into())
}

/// Answers from the short-lived response cache, computing (once for concurrent identical
/// requests) on a miss.
pub(super) async fn cached<T: JsonBody>(
    st: &Shared,
    key: String,
    compute: impl Future<Output = Result<T, WebError>>,
) -> Result<Response, WebError> {
    cached_bytes(st, key, async { compute.await?.into_body() }).await
}

/// [`cached`], for an answer computed as its body (already serialised).
pub(super) async fn cached_bytes(
    st: &Shared,
    key: String,
    compute: impl Future<Output = Result<Bytes, WebError>>,
) -> Result<Response, WebError> {
    let compute = async {
        // On Redis unavailable, the shared connection may point at a server that is gone or is
        // no longer the master (a failover): the next request asks again where the master is.
        tokio::time::timeout(REDIS_DEADLINE, compute)
            .await
            .map_err(|_| redis_too_slow(st))?
            .map_err(|e| st.noting(e))
    };
    if !st.cache_enabled || key.is_empty() {
        return Ok(json_bytes(compute.await?));
    }
    let body = st
        .cache
        .try_get_with(key, compute)
        .await
        .map_err(|e: Arc<WebError>| (*e).clone())?;
    Ok(json_bytes(body))
}

pub(super) fn cache_key(route: &str, q: &Option<String>) -> String {
    format!("{route}?{}", q.as_deref().unwrap_or(""))
}

/// Declares a cached JSON route: `name => |state, params| future`.
///
/// With `note = path`: `X-Mispdash-Filter-Note` when the note function says something of the
/// request (what a filter could not count), computed beside the cached answer.
macro_rules! json_route {
    ($name:ident, |$st:ident, $p:ident| $body:expr $(, note = $note:path)?) => {
        async fn $name(
            ::axum::extract::State($st): ::axum::extract::State<$crate::web::state::Shared>,
            ::axum::extract::RawQuery(q): ::axum::extract::RawQuery,
        ) -> Result<::axum::response::Response, $crate::web::error::WebError> {
            let $p = $crate::web::params::Params::parse(q.as_deref())?;
            let key = $crate::web::answer::cache_key(stringify!($name), &q);
            let st2 = $st.clone();
            let fut = {
                let $st = &st2;
                let $p = &$p;
                $body
            };
            let r = $crate::web::answer::cached(&$st, key, fut).await?;
            $(let r = $crate::web::answer::with_filter_note(r, $note(&$st, &$p).await);)?
            Ok(r)
        }
    };
}
pub(super) use json_route;

/// The header by which a filtered answer says what it could not count.
const FILTER_NOTE: &str = "x-mispdash-filter-note";

/// `answer` with its [`FILTER_NOTE`], when there is one to say.
pub(super) fn with_filter_note(mut answer: Response, note: Option<String>) -> Response {
    if let Some(note) = note {
        if let Ok(v) = HeaderValue::from_str(&note) {
            answer.headers_mut().insert(FILTER_NOTE, v);
        }
    }
    answer
}
