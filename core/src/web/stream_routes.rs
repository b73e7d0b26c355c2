//! The live-stream routes (`/_logs`, `/_maps`, `/_eventStream*`, `/_mispdash/stream`) and the
//! rewind routes, with what opening a stream takes: the client's ticket against the stream
//! limits, `Last-Event-ID`, the SSE headers. Apart from the plain JSON routes because each of
//! these holds a connection (or answers from the live caches) and counts against its client.

use super::answer::{cached, cached_bytes, redis_too_slow, REDIS_DEADLINE};
use super::error::WebError;
use super::hub::{self, Kind};
use super::live::Filters;
use super::params::Params;
use super::request::{client_address, cookie_headers, viewer_of, wants_json, RewindAsk, Session};
use super::state::Shared;
use super::stream;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn sse_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// The client a live stream counts against: its session, or its address without login.
fn stream_ticket(
    st: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    session: Option<&super::auth::Current>,
) -> Result<hub::StreamTicket, WebError> {
    let address = super::conn::address_group(client_address(st, peer, headers));
    let client = match session {
        Some(c) => format!("session {}", c.digest),
        None => format!("address {address}"),
    };
    let max = st.cfg.guard.max_streams_per_client;
    let digest = session.map(|c| c.digest.clone());
    st.streams.open(client, digest, max).map_err(|why| match why {
        hub::StreamRefusal::PerClient => {
            st.refusals.report(
                &st.list,
                super::refusals::Refusal {
                    client: match session {
                        Some(c) => format!("user {}", c.session.user),
                        None => format!("address {address}"),
                    },
                    forwarded: headers.contains_key("x-forwarded-for")
                        && !st.admission.is_trusted(peer.ip()),
                    max,
                },
            );
            WebError::TooManyRequests {
                what: format!(
                    "this client already holds {max} live streams ([mispdash] max_streams_per_client)"
                ),
                retry_after: 10,
            }
        }
        hub::StreamRefusal::Total(slots) => {
            tracing::warn!(
                "all {slots} live-stream slots of the server's threads are taken; a stream was \
                 refused (see apache/README.md on sizing the thread pool)"
            );
            WebError::Refused {
                status: StatusCode::SERVICE_UNAVAILABLE,
                reason: format!("the server holds its most live streams ({slots}); try again later"),
            }
        }
    })
}

/// The response cache's key for what `viewer` may see (one entry per distinct viewer).
fn viewer_key(base: &str, viewer: Option<&crate::acl::Viewer>) -> String {
    use std::hash::{Hash, Hasher};
    match viewer {
        None => base.to_string(),
        Some(v) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            v.hash(&mut h);
            format!("{base}@{:016x}", h.finish())
        }
    }
}

pub(super) async fn logs(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let filters = Filters::from_cookie_headers(cookie_headers(&headers).into_iter());
    let viewer = viewer_of(&st, session.as_deref());
    if wants_json(&headers) {
        if filters.is_empty() {
            let st2 = st.clone();
            let f = Filters::default();
            let key = viewer_key("logs", viewer.as_ref());
            return cached_bytes(&st, key, async move {
                st2.live_memos
                    .logs_json(st2.live_sources(), &f, viewer.as_ref())
                    .await
            })
            .await;
        }
        let st2 = st.clone();
        return cached_bytes(&st, String::new(), async move {
            st2.live_memos
                .logs_json(st2.live_sources(), &filters, viewer.as_ref())
                .await
        })
        .await;
    }
    open_stream(&st, peer, &headers, session.as_deref(), Kind::Live, filters).await
}

pub(super) async fn maps(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if wants_json(&headers) {
        let st2 = st.clone();
        let viewer = viewer_of(&st, session.as_deref());
        let key = viewer_key("maps", viewer.as_ref());
        return cached_bytes(&st, key, async move {
            st2.live_memos
                .maps_json(st2.live_sources(), viewer.as_ref())
                .await
        })
        .await;
    }
    let filters = Filters::default();
    open_stream(&st, peer, &headers, session.as_deref(), Kind::Map, filters).await
}

/// A route that only streams (`/_eventStreamLastContributor`, `/_eventStreamAwards`).
pub(super) fn stream_only(
    kind: Kind,
) -> impl Fn(
    State<Shared>,
    ConnectInfo<SocketAddr>,
    Session,
    HeaderMap,
) -> futures_util::future::BoxFuture<'static, Result<Response, WebError>>
       + Clone {
    move |State(st): State<Shared>,
          ConnectInfo(peer): ConnectInfo<SocketAddr>,
          session: Session,
          headers: HeaderMap| {
        Box::pin(async move {
            open_stream(
                &st,
                peer,
                &headers,
                session.as_deref(),
                kind,
                Filters::default(),
            )
            .await
        })
    }
}

/// The SSE answer of a stream route, counted against its client's streams.
async fn open_stream(
    st: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    session: Option<&super::auth::Current>,
    kind: Kind,
    filters: Filters,
) -> Result<Response, WebError> {
    let ticket = stream_ticket(st, peer, headers, session)?;
    Ok(sse_headers(
        stream::sse_response(
            st,
            kind,
            last_event_id(headers),
            filters,
            viewer_of(st, session),
            ticket,
        )
        .await,
    ))
}

/// `/_mispdash/stream?topics=live,map,contributors,awards&live=<id>…`: the combined live
/// stream of the pages (see [`stream::mux_response`]); `<topic>=<id>` is the last event id the
/// page saw of that topic.
pub(super) async fn combined_stream(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let p = Params::parse(q.as_deref())?;
    let mut topics: Vec<(Kind, Option<u64>)> = vec![];
    for name in p
        .get("topics")
        .unwrap_or("")
        .split(',')
        .filter(|t| !t.is_empty())
    {
        let kind = match name {
            "live" => Kind::Live,
            "map" => Kind::Map,
            "contributors" => Kind::Contributor,
            "awards" => Kind::Awards,
            other => {
                return Err(WebError::bad(format!(
                    "unknown topic {other:?} (live, map, contributors, awards)"
                )))
            }
        };
        if topics.iter().any(|(k, _)| *k == kind) {
            continue;
        }
        let since = match p.get(name) {
            None | Some("") => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| WebError::bad(format!("{name}={v:?} is not an event id")))?,
            ),
        };
        topics.push((kind, since));
    }
    if topics.is_empty() {
        return Err(WebError::bad(
            "topics: name at least one of live, map, contributors, awards",
        ));
    }
    let filters = Filters::from_cookie_headers(cookie_headers(&headers).into_iter());
    let ticket = stream_ticket(&st, peer, &headers, session.as_deref())?;
    let viewer = viewer_of(&st, session.as_deref());
    Ok(sse_headers(
        stream::mux_response(&st, topics, filters, viewer, ticket).await,
    ))
}

/// `/_mispdash/rewind`: the live rows and map points of a window of the rewind stream, for
/// what the session may see and through the live log's filters (see [`super::rewind`]).
pub(super) async fn rewind_json(
    State(st): State<Shared>,
    ask: RewindAsk,
) -> Result<Response, WebError> {
    let st2 = st.clone();
    cached(&st, String::new(), async move {
        let RewindAsk {
            params,
            filters,
            viewer,
        } = ask;
        Ok(super::rewind::window_json(&st2, &params, &filters, viewer.as_ref()).await?)
    })
    .await
}

/// `/_mispdash/rewind.csv`: a window's rows as CSV text (a download), oldest first;
/// `X-Mispdash-Complete: false` when the window held more than one export gives.
pub(super) async fn rewind_csv(
    State(st): State<Shared>,
    ask: RewindAsk,
) -> Result<Response, WebError> {
    let csv = tokio::time::timeout(
        REDIS_DEADLINE * 6,
        super::rewind::window_csv(&st, &ask.params, &ask.filters, ask.viewer.as_ref()),
    )
    .await
    .map_err(|_| redis_too_slow(&st))?
    .map_err(|e| st.noting(e.into()))?;
    let mut r = (StatusCode::OK, csv.text).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"mispdash-rewind.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-mispdash-complete",
        HeaderValue::from_static(if csv.complete { "true" } else { "false" }),
    );
    h.insert("x-mispdash-rows", HeaderValue::from(csv.rows));
    Ok(r)
}
