//! The middleware every route goes through: error answers as JSON (and the request size
//! limits), the access log and request metrics, and the connection-activity tracking that
//! tells the accept loop which connections are idle. Apart from the routes because none of it
//! depends on which route answers.

use super::error::WebError;
use super::state::Shared;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Longest request target and most header bytes answered normally; beyond, 414 and 431 as
/// JSON. (Past the HTTP library's own limits, about 400 KB of request head, it refuses the
/// request itself, with an empty body.)
const MAX_URI_BYTES: usize = 8 << 10;
const MAX_HEADER_BYTES: usize = 64 << 10;

/// Every error answer is JSON (`docs/compat.md` H6): the refusals of the framework itself
/// (405 without a body, a path that is not UTF-8 as plain text, 413) are rewritten here, and
/// oversized request targets and headers are refused here as JSON.
pub(super) async fn json_errors(req: Request, next: Next) -> Response {
    if req.uri().to_string().len() > MAX_URI_BYTES {
        return WebError::Refused {
            status: StatusCode::URI_TOO_LONG,
            reason: format!("request target longer than {MAX_URI_BYTES} bytes"),
        }
        .into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return WebError::Refused {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            reason: format!("request headers larger than {MAX_HEADER_BYTES} bytes"),
        }
        .into_response();
    }
    let resp = next.run(req).await;
    let status = resp.status();
    let typed = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || typed {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let reason = match text.is_empty() {
        true => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase(),
        false => crate::buffer::cut(&text, 300).into_owned(),
    };
    let mut out = WebError::Refused { status, reason }.into_response();
    // Keep what the refusal said beside its body (e.g. `Allow` on a 405).
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// One access-log line per request (target `mispdash::access`) and the request metrics.
pub(super) async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let version = req.version();
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    st.metrics
        .observe(route_label(matched.as_ref()), status, secs);
    tracing::info!(
        target: "mispdash::access",
        "{peer} \"{method} {path} {version:?}\" {status} {:.3}ms",
        secs * 1000.0
    );
    resp
}

/// The metrics label of a request: the route it matched, as the router tells it
/// ([`MatchedPath`], present because [`observe`] is added with `Router::layer`, which runs it
/// inside each route), never the raw path, so the labels are bounded; "other" for what no
/// route matched (the embedded pages' files, unknown paths).
fn route_label(matched: Option<&MatchedPath>) -> &str {
    match matched.map(MatchedPath::as_str) {
        // The label the static files had before the labels came from the router.
        Some("/static/{*path}") => "/static",
        Some(route) => route,
        None => "other",
    }
}

/// Marks the request's connection busy until its answer, body included, is sent: a live
/// stream keeps its connection busy, a kept-alive connection between requests is idle (see
/// [`super::conn::Activity`]).
pub(super) async fn track_activity(req: Request, next: Next) -> Response {
    let Some(activity) = req
        .extensions()
        .get::<Arc<super::conn::Activity>>()
        .cloned()
    else {
        return next.run(req).await;
    };
    let busy = activity.begin();
    next.run(req)
        .await
        .map(|body| Body::new(super::conn::Tracked::new(body, busy)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    /// The label `route_label` gives a request through a router layered as `routes::router`
    /// layers [`observe`] (`Router::layer`, with a fallback service for everything else).
    async fn label_of(path: &str) -> String {
        let app = Router::new()
            .route("/_logs", get(|| async { "" }))
            .route("/static/{*path}", get(|| async { "" }))
            .route("/_getAllOrgsTrophyRanking/{categ}", get(|| async { "" }))
            .fallback_service(Router::new().route("/assets/x.js", get(|| async { "" })))
            .layer(axum::middleware::from_fn(
                |req: Request, next: Next| async move {
                    let label = route_label(req.extensions().get::<MatchedPath>()).to_string();
                    let mut r = next.run(req).await;
                    r.headers_mut()
                        .insert("x-label", label.parse().expect("header value"));
                    r
                },
            ));
        let req = Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("request");
        let r = app.oneshot(req).await.expect("answer");
        r.headers()["x-label"].to_str().expect("text").to_string()
    }

    #[tokio::test]
    async fn route_labels_are_bounded() {
        assert_eq!(label_of("/_logs").await, "/_logs");
        assert_eq!(label_of("/static/x.css").await, "/static");
        assert_eq!(
            label_of("/_getAllOrgsTrophyRanking/Network%20activity").await,
            "/_getAllOrgsTrophyRanking/{categ}"
        );
        assert_eq!(label_of("/assets/x.js").await, "other");
        assert_eq!(label_of("/random/path").await, "other");
    }
}
