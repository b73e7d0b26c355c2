//! Paths, handlers and middleware, and the connection loop (plain or TLS, HTTP/1.1 and HTTP/2).

use super::conn::Https;
use super::error::WebError;
use super::live::Filters;
use super::params::Params;
use super::state::Shared;
use super::stream::{self, Kind};
use super::{contrib, geo, ops, pages, trendings, users};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::Value;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;

/// A JSON answer.
fn json_bytes(body: Bytes) -> Response {
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

/// Longest time a request waits for Redis before answering 503 (Redis down or restarting).
const REDIS_DEADLINE: Duration = Duration::from_secs(5);

/// Answers from the short-lived response cache, computing (once for concurrent identical
/// requests) on a miss.
async fn cached(
    st: &Shared,
    key: String,
    compute: impl Future<Output = Result<Value, WebError>>,
) -> Result<Response, WebError> {
    let compute = async {
        tokio::time::timeout(REDIS_DEADLINE, compute)
            .await
            .map_err(|_| WebError::Unavailable("Redis did not answer in time".into()))?
    };
    if !st.cache_enabled || key.is_empty() {
        return Ok(json_bytes(to_bytes(&compute.await?)?));
    }
    let body = st
        .cache
        .try_get_with(key, async { to_bytes(&compute.await?) })
        .await
        .map_err(|e: Arc<WebError>| (*e).clone())?;
    Ok(json_bytes(body))
}

fn cache_key(route: &str, q: &Option<String>) -> String {
    format!("{route}?{}", q.as_deref().unwrap_or(""))
}

/// Declares a cached JSON route: `name => |state, params| future`.
macro_rules! json_route {
    ($name:ident, |$st:ident, $p:ident| $body:expr) => {
        async fn $name(
            State($st): State<Shared>,
            RawQuery(q): RawQuery,
        ) -> Result<Response, WebError> {
            let $p = Params::parse(q.as_deref())?;
            let key = cache_key(stringify!($name), &q);
            let st2 = $st.clone();
            let fut = {
                let $st = &st2;
                let $p = &$p;
                $body
            };
            cached(&$st, key, fut).await
        }
    };
    // With a note: `X-Mispdash-Filter-Note` when `$note` says something of the request (what
    // a filter could not count), computed beside the cached answer.
    ($name:ident, |$st:ident, $p:ident| $body:expr, note = $note:path) => {
        async fn $name(
            State($st): State<Shared>,
            RawQuery(q): RawQuery,
        ) -> Result<Response, WebError> {
            let $p = Params::parse(q.as_deref())?;
            let key = cache_key(stringify!($name), &q);
            let st2 = $st.clone();
            let fut = {
                let $st = &st2;
                let $p = &$p;
                $body
            };
            let mut r = cached(&$st, key, fut).await?;
            if let Some(note) = $note(&$st, &$p).await {
                if let Ok(v) = HeaderValue::from_str(&note) {
                    r.headers_mut().insert(FILTER_NOTE, v);
                }
            }
            Ok(r)
        }
    };
}

/// The header by which a filtered answer says what it could not count.
const FILTER_NOTE: &str = "x-mispdash-filter-note";

json_route!(
    top_coord,
    |st, p| geo::top_coord(st, p),
    note = geo::filter_note
);
json_route!(
    hit_map,
    |st, p| geo::hit_map(st, p),
    note = geo::filter_note
);
json_route!(
    coords_by_radius,
    |st, p| geo::coords_by_radius(st, p),
    note = geo::filter_note
);
json_route!(last_contributors, |st, _p| contrib::last_contributors(st));
json_route!(top_contributor, |st, p| contrib::top_contributors(
    st, p, 100, false
));
json_route!(fame, |st, p| contrib::top_contributors(st, p, 10, true));
json_route!(top5_overtime, |st, _p| contrib::top5_overtime(st));
json_route!(org_overtime, |st, p| contrib::org_overtime(st, p));
json_route!(categ_per_contrib, |st, p| contrib::categ_per_contrib(st, p));
json_route!(latest_awards, |st, _p| contrib::latest_awards(st));
json_route!(all_org, |st, _p| contrib::all_orgs(st));
json_route!(org_rank, |st, p| contrib::org_rank(st, p));
json_route!(contribution_status, |st, p| contrib::contribution_status(
    st, p
));
json_route!(honor_badges, |st, p| contrib::honor_badges(st, p));
json_route!(trophies, |st, p| contrib::trophies(st, p));
json_route!(trophy_all, |st, _p| contrib::trophy_ranking(st, None));
json_route!(user_logins, |st, p| users::user_logins(st, p));
json_route!(all_logged_org, |st, _p| users::all_logged_orgs(st));
json_route!(top_org_login, |st, p| users::top_org_login(st, p));
json_route!(login_vs_contrib, |st, p| users::login_vs_contribution(
    st, p
));
json_route!(logins_contrib_overtime, |st, p| {
    users::logins_and_contrib_overtime(st, p)
});
json_route!(
    trending_events,
    |st, p| trendings::events(st, p),
    note = trendings::filter_note
);
json_route!(trending_categs, |st, p| trendings::categs(st, p));
json_route!(trending_tags, |st, p| trendings::tags(st, p));
json_route!(trending_sightings, |st, p| trendings::sightings(st, p));
json_route!(trending_disc, |st, p| trendings::disc(st, p));
json_route!(typeahead, |st, p| trendings::typeahead(st, p));
json_route!(generic_overtime, |st, p| trendings::overtime(st, p));

async fn trophy_categ(
    State(st): State<Shared>,
    Path(categ): Path<String>,
) -> Result<Response, WebError> {
    if categ.len() > super::params::MAX_PARAM_LEN {
        return Err(WebError::bad("category name too long"));
    }
    let key = format!("trophy_categ/{categ}");
    let st2 = st.clone();
    cached(&st, key, async move {
        contrib::trophy_ranking(&st2, Some(&categ)).await
    })
    .await
}

/// The original's rule: JSON when any `Accept` entry matches `application/json` (wildcards
/// included), Server-Sent Events otherwise (an `EventSource`, or no `Accept` at all).
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|entry| {
            let mut parts = entry.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            !refused && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
        })
}

fn cookie_headers(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

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
) -> Result<stream::StreamTicket, WebError> {
    let address = super::conn::address_group(client_address(st, peer, headers));
    let client = match session {
        Some(c) => format!("session {}", c.digest),
        None => format!("address {address}"),
    };
    let max = st.cfg.guard.max_streams_per_client;
    let digest = session.map(|c| c.digest.clone());
    stream::StreamCounts::open(st, client, digest, max).map_err(|why| match why {
        stream::StreamRefusal::PerClient => {
            super::refusals::report(
                st,
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
        stream::StreamRefusal::Total(slots) => {
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

/// The client's address, as [`super::conn::client_ip`] tells it.
fn client_address(st: &Shared, peer: SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    super::conn::client_ip(&st.admission, peer.ip(), &forwarded)
}

type Session = Option<axum::Extension<super::auth::Current>>;

/// Whom the live views are filtered for: `None` when access control is off, or for the host
/// program's own questions (the Python package's read helpers, which carry no session). A
/// session without a MISP description (opened before mispdash read it, or MISP did not say)
/// sees what every organisation may see.
fn viewer_of(
    st: &super::AppState,
    session: Option<&super::auth::Current>,
) -> Option<crate::acl::Viewer> {
    st.acl.as_ref()?;
    let s = session?;
    Some(s.session.viewer.clone().unwrap_or(crate::acl::Viewer {
        org_id: 0,
        site_admin: false,
        sharing_groups: Default::default(),
    }))
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

async fn logs(
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
            return cached(&st, key, async move {
                super::live::logs_json(&st2, &f, viewer.as_ref()).await
            })
            .await;
        }
        let st2 = st.clone();
        return cached(&st, String::new(), async move {
            super::live::logs_json(&st2, &filters, viewer.as_ref()).await
        })
        .await;
    }
    open_stream(&st, peer, &headers, session.as_deref(), Kind::Live, filters).await
}

async fn maps(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if wants_json(&headers) {
        let st2 = st.clone();
        let viewer = viewer_of(&st, session.as_deref());
        let key = viewer_key("maps", viewer.as_ref());
        return cached(&st, key, async move {
            super::live::maps_json(&st2, viewer.as_ref()).await
        })
        .await;
    }
    let filters = Filters::default();
    open_stream(&st, peer, &headers, session.as_deref(), Kind::Map, filters).await
}

/// A route that only streams (`/_eventStreamLastContributor`, `/_eventStreamAwards`).
fn stream_only(
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
async fn combined_stream(
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
async fn rewind_json(
    State(st): State<Shared>,
    session: Session,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let p = Params::parse(q.as_deref())?;
    let filters = Filters::from_cookie_headers(cookie_headers(&headers).into_iter());
    let viewer = viewer_of(&st, session.as_deref());
    let st2 = st.clone();
    cached(&st, String::new(), async move {
        Ok(super::rewind::window_json(&st2, &p, &filters, viewer.as_ref()).await?)
    })
    .await
}

/// `/_mispdash/rewind.csv`: a window's rows as CSV text (a download), oldest first;
/// `X-Mispdash-Complete: false` when the window held more than one export gives.
async fn rewind_csv(
    State(st): State<Shared>,
    session: Session,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let p = Params::parse(q.as_deref())?;
    let filters = Filters::from_cookie_headers(cookie_headers(&headers).into_iter());
    let viewer = viewer_of(&st, session.as_deref());
    let csv = tokio::time::timeout(
        REDIS_DEADLINE * 6,
        super::rewind::window_csv(&st, &p, &filters, viewer.as_ref()),
    )
    .await
    .map_err(|_| WebError::Unavailable("Redis did not answer in time".into()))??;
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

/// `/_get_log_head`: served as JSON (the original says `text/html`; compat.md).
async fn log_head(State(st): State<Shared>) -> Response {
    json_bytes(Bytes::from(st.cfg.header_json.clone()))
}

async fn healthz(State(st): State<Shared>) -> Response {
    let (code, v) = ops::healthz(&st).await;
    let mut r = json_bytes(Bytes::from(v.to_string()));
    *r.status_mut() = code;
    r
}

/// `/status`: the status JSON, or in a browser (`Accept: text/html`) the status page. The JSON
/// also carries the server's clock and time zone offset, which pages use for "now".
async fn status(State(st): State<Shared>, session: Session, headers: HeaderMap) -> Response {
    if wants_page(&headers) {
        return ui_file(&st, "/status.html", &headers).await;
    }
    let mut v = ops::status(&st).await;
    let now = st.clock.now_f64();
    let offset = crate::clock::local_datetime(now)
        .map(|d| chrono::Offset::fix(d.offset()).local_minus_utc())
        .unwrap_or(0);
    if let Some(m) = v.as_object_mut() {
        m.insert("now".into(), serde_json::json!(now));
        m.insert("utc_offset_seconds".into(), serde_json::json!(offset));
        m.insert(
            "time_zone".into(),
            serde_json::json!(crate::clock::zone_name()),
        );
        m.insert(
            "auth".into(),
            serde_json::json!({
                "enabled": st.auth.is_some(),
                "user": session.as_ref().map(|c| c.session.user.clone()),
            }),
        );
        let viewer = viewer_of(&st, session.as_deref());
        m.insert(
            "access_control".into(),
            serde_json::json!({
                "enabled": st.acl.is_some(),
                "follows": st.acl.as_ref().map(|_| crate::acl::RULES_FOLLOWED),
                "unpublished_private": st.acl.as_ref().map(|p| p.unpublished_private),
                "sightings_policy": st.acl.as_ref().map(|p| p.sightings_policy),
                "recheck_key": st.cfg.guard.misp_api_key.is_some(),
                "statistics_count": crate::acl::statistics_scope(st.cfg.aggregate_min_rank),
                "statistics_threshold": st.cfg.aggregate_min_rank.is_some(),
                "you": viewer.as_ref().map(|v| serde_json::json!({
                    "org_id": v.org_id,
                    "site_admin": v.site_admin,
                    "sharing_groups": v.sharing_groups.len(),
                })),
            }),
        );
    }
    json_bytes(Bytes::from(v.to_string()))
}

/// What the pages need of the configuration: the live map's rotation, the chart's item, the
/// geo refresh, the ranking's titles and thresholds (the original rendered these into its
/// templates; our pages are static files, so they ask).
async fn ui_settings(State(st): State<Shared>) -> Response {
    let r = &st.ranking;
    let mut v = st.cfg.ui.clone();
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "ranking".into(),
            serde_json::json!({
                "rank_multiplier": r.rank_multiplier,
                "level_max": r.level_max,
                "rank_titles": r.rank_titles,
                "requirement_points": r.requirement_points,
                "categories": r.categories,
                "points_per_category": r.categories.iter().map(|c| r.points_for(c)).collect::<Vec<_>>(),
                "badges": r.badges,
                "trophy_mapping": r.trophy_mapping,
                "trophy_titles": r.trophy_titles,
            }),
        );
    }
    json_bytes(Bytes::from(v.to_string()))
}

/// A page built in `core/web` (`/`, `/users`, `/trendings`): its HTML file.
fn ui_page(
    file: &'static str,
) -> impl Fn(State<Shared>, HeaderMap) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>> + Clone
{
    move |State(st): State<Shared>, headers: HeaderMap| {
        Box::pin(async move { ui_file(&st, file, &headers).await })
    }
}

/// Whether a request is a browser's navigation (it asks for HTML) rather than a program's.
fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// One file of the embedded pages, as memory-serve serves it (ETag and `If-None-Match`,
/// compression by `Accept-Encoding`).
async fn ui_file(st: &Shared, path: &'static str, headers: &HeaderMap) -> Response {
    let mut req = Request::builder().uri(path);
    for h in [header::ACCEPT_ENCODING, header::IF_NONE_MATCH] {
        if let Some(v) = headers.get(&h) {
            req = req.header(h, v.clone());
        }
    }
    let req = req.body(Body::empty()).unwrap_or_default();
    match st.ui.clone().oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(e) => match e {},
    }
}

async fn metrics(State(st): State<Shared>) -> Response {
    let mut r = (StatusCode::OK, ops::metrics(&st).await).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn favicon(headers: HeaderMap) -> Response {
    pages::asset("favicon.ico", &headers).unwrap_or_else(|| WebError::NotFound.into_response())
}

async fn static_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    pages::asset(&path, &headers).unwrap_or_else(|| WebError::NotFound.into_response())
}

/// `/error_page?error_code=<n>`: a fixed text per code (the original showed `error_message`,
/// any text a link gives, which is enough for phishing under the dashboard's name).
async fn error_page(RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref()).unwrap_or_default();
    pages::error_page(p.get("error_code").unwrap_or(""))
}

fn with_cookies(mut r: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// `GET /login`: without auth, straight to the dashboard (the original logs every visitor in);
/// with auth, the form and a fresh CSRF token.
async fn login_form(
    State(st): State<Shared>,
    Https(https): Https,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some(auth) = &st.auth else {
        return Ok(Redirect::to("/").into_response());
    };
    if auth
        .session(&st.data, &cookie_headers(&headers))
        .await?
        .is_some()
    {
        return Ok(Redirect::to("/").into_response());
    }
    let p = Params::parse(q.as_deref()).unwrap_or_default();
    let error = super::auth::login_error_text(p.get("auth_error").unwrap_or(""));
    let token = super::auth::random_token()?;
    let mut r = pages::login_page(&token, error.as_deref());
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(with_cookies(r, &[auth.csrf_cookie(&token, https)]))
}

fn login_failed(e: &super::auth::LoginError) -> Response {
    Redirect::to(&format!("/login?auth_error={}", e.code())).into_response()
}

/// The most a login form needs: two fields of at most 255 characters, a token, a button.
const LOGIN_BODY_MAX: usize = 8 << 10;

/// `POST /login`: CSRF check, rate limits, then MISP decides.
///
/// A body announced larger than [`LOGIN_BODY_MAX`] is refused with 413 at once. Nothing is
/// read before the browser's CSRF cookie is found genuine, and then at most
/// [`LOGIN_BODY_MAX`] bytes within `[mispdash] connection_timeout`: a body sent larger is
/// refused with 413, a slow one with 408, so no one can make the server hold
/// megabytes per connection.
async fn login_submit(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Https(https): Https,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let Some(auth) = &st.auth else {
        return Ok(Redirect::to("/").into_response());
    };
    let too_large = || WebError::Refused {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        reason: format!("a login form has at most {LOGIN_BODY_MAX} bytes"),
    };
    // Announced too large: refused before waiting for any of it.
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > LOGIN_BODY_MAX as u64)
    {
        return Err(too_large());
    }
    let cookies = cookie_headers(&headers);
    let stale_form = || {
        WebError::bad("the login form expired or was not sent by this site; reload the login page")
    };
    if !auth.has_csrf_cookie(&cookies) {
        if !https && auth.cookie_secure(false) {
            tracing::warn!(
                "a login over plain HTTP came without its form's cookie: [Auth] \
                 session_cookie_secure = True makes the cookies HTTPS-only, so browsers keep \
                 them only from https:// addresses (and localhost)"
            );
            return Err(WebError::bad(
                "this dashboard is reached over plain HTTP, and its login cookies are sent over \
                 HTTPS only ([Auth] session_cookie_secure = True): open it with https://, or ask \
                 its administrator to serve it over TLS",
            ));
        }
        return Err(stale_form());
    }
    let timeout = Duration::from_secs(st.cfg.guard.connection_timeout);
    let body = match tokio::time::timeout(timeout, axum::body::to_bytes(body, LOGIN_BODY_MAX)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return Err(too_large()),
        Err(_) => {
            return Err(WebError::Refused {
                status: StatusCode::REQUEST_TIMEOUT,
                reason: "the login form was not sent in time".into(),
            })
        }
    };
    let form = Params::parse(Some(&String::from_utf8_lossy(&body)))?;
    if !auth.csrf_ok(&cookies, form.get("csrf_token").unwrap_or("")) {
        return Err(stale_form());
    }
    let ip = client_address(&st, peer, &headers);
    let user = form.get("username").unwrap_or("");
    if let Err(limited) = auth.attempt_allowed(ip, user) {
        tracing::warn!(
            "login attempt from {ip} for {:?} refused: too many for this {}",
            crate::buffer::cut(user, 100),
            limited.what
        );
        return Err(WebError::TooManyRequests {
            what: format!("too many login attempts for this {}", limited.what),
            retry_after: limited.retry_after_secs,
        });
    }
    let checked = auth.check(user, form.get("password").unwrap_or("")).await;
    auth.attempt_result(ip, user, checked.as_ref().map(|_| ()));
    match checked {
        Ok(who) => {
            let cookie = auth.open_session(&st.data, &who, https).await?;
            tracing::info!("login of {:?} from {ip}", who.name);
            Ok(with_cookies(Redirect::to("/").into_response(), &[cookie]))
        }
        Err(e) => {
            tracing::warn!(
                "login of {:?} from {ip} refused: {e} ({e:?})",
                crate::buffer::cut(user, 100)
            );
            Ok(login_failed(&e))
        }
    }
}

/// `/logout`: the session ends in Redis (the cookie alone would outlive it otherwise), then
/// in the browser.
async fn logout(
    State(st): State<Shared>,
    Https(https): Https,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let r = Redirect::to("/login").into_response();
    let Some(auth) = &st.auth else {
        return Ok(r);
    };
    auth.end_session(&st.data, &cookie_headers(&headers))
        .await?;
    Ok(with_cookies(r, &[auth.clear_session_cookie(https)]))
}

/// Refuses requests without a valid session when auth is on: browsers navigating to a page are
/// sent to the login form, API and stream clients get a 401 (the original redirects them too,
/// and their scripts then parse a login page). What a session is shown is the user's own:
/// `Cache-Control: private, no-store` keeps it out of shared caches and the browser's disk.
async fn require_session(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    if st.auth.is_none() {
        return next.run(req).await;
    }
    // The host program's own question (the Python bindings' read helpers).
    if req
        .extensions()
        .get::<super::embed::InProcessCall>()
        .is_some()
    {
        return next.run(req).await;
    }
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let found = match tokio::time::timeout(
        REDIS_DEADLINE,
        super::auth::current_session(&st, &cookie_headers(req.headers())),
    )
    .await
    {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return e.into_response(),
        Err(_) => {
            return WebError::Unavailable("Redis did not answer in time".into()).into_response()
        }
    };
    if let Some(current) = found {
        // The connection's place is kept for it before anonymous ones (see conn::Admission).
        if let Some(activity) = req.extensions().get::<Arc<super::conn::Activity>>() {
            activity.mark_signed_in();
        }
        req.extensions_mut().insert(current);
        let mut r = next.run(req).await;
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        return r;
    }
    if wants_page(req.headers()) {
        Redirect::to("/login").into_response()
    } else {
        WebError::Unauthorized.into_response()
    }
}

/// The metrics label of a path: the route it matched, never the raw path (bounded).
fn route_label(path: &str) -> &'static str {
    const ROUTES: &[&str] = &[
        "/",
        "/geo",
        "/contrib",
        "/users",
        "/trendings",
        "/login",
        "/logout",
        "/error_page",
        "/favicon.ico",
        "/_logs",
        "/_maps",
        "/_mispdash/rewind",
        "/_mispdash/rewind.csv",
        "/_get_log_head",
        "/_getTopCoord",
        "/_getHitMap",
        "/_getCoordsByRadius",
        "/_getLastContributors",
        "/_eventStreamLastContributor",
        "/_eventStreamAwards",
        "/_getTopContributor",
        "/_getFameContributor",
        "/_getFameQualContributor",
        "/_getTop5Overtime",
        "/_getOrgOvertime",
        "/_getCategPerContrib",
        "/_getLatestAwards",
        "/_getAllOrg",
        "/_getOrgRank",
        "/_getContributionOrgStatus",
        "/_getHonorBadges",
        "/_getTrophies",
        "/_getAllOrgsTrophyRanking",
        "/_getUserLogins",
        "/_getAllLoggedOrg",
        "/_getTopOrglogin",
        "/_getLoginVSCOntribution",
        "/_getUserLoginsAndContribOvertime",
        "/_getTrendingEvents",
        "/_getTrendingCategs",
        "/_getTrendingTags",
        "/_getTrendingSightings",
        "/_getTrendingDisc",
        "/_getTypeaheadData",
        "/_getGenericTrendingOvertime",
        "/healthz",
        "/status",
        "/metrics",
    ];
    if let Some(r) = ROUTES.iter().find(|r| **r == path) {
        return r;
    }
    if path.starts_with("/static/") {
        "/static"
    } else if path.starts_with("/_getAllOrgsTrophyRanking/") {
        "/_getAllOrgsTrophyRanking/{categ}"
    } else {
        "other"
    }
}

/// Longest request target and most header bytes answered normally; beyond, 414 and 431 as
/// JSON. (Past the HTTP library's own limits, about 400 KB of request head, it refuses the
/// request itself, with an empty body.)
const MAX_URI_BYTES: usize = 8 << 10;
const MAX_HEADER_BYTES: usize = 64 << 10;

/// Every error answer is JSON (`docs/compat.md` H6): the refusals of the framework itself
/// (405 without a body, a path that is not UTF-8 as plain text, 413) are rewritten here, and
/// oversized request targets and headers are refused here as JSON.
async fn json_errors(req: Request, next: Next) -> Response {
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
async fn observe(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let version = req.version();
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    st.metrics.observe(route_label(&path), status, secs);
    tracing::info!(
        target: "mispdash::access",
        "{peer} \"{method} {path} {version:?}\" {status} {:.3}ms",
        secs * 1000.0
    );
    resp
}

/// Every route of the original (spec §1) plus the operations endpoints.
pub fn router(st: Shared) -> Router {
    let protected = Router::new()
        .route("/", get(ui_page("/index.html")))
        .route("/geo", get(ui_page("/geo.html")))
        .route("/contrib", get(ui_page("/contrib.html")))
        .route("/_mispdash/ui", get(ui_settings))
        .route("/users", get(ui_page("/users.html")))
        .route("/trendings", get(ui_page("/trendings.html")))
        .route("/_logs", get(logs))
        .route("/_mispdash/stream", get(combined_stream))
        .route("/_maps", get(maps))
        .route("/_mispdash/rewind", get(rewind_json))
        .route("/_mispdash/rewind.csv", get(rewind_csv))
        .route("/_get_log_head", get(log_head))
        .route("/_getTopCoord", get(top_coord))
        .route("/_getHitMap", get(hit_map))
        .route("/_getCoordsByRadius", get(coords_by_radius))
        .route("/_getLastContributors", get(last_contributors))
        .route(
            "/_eventStreamLastContributor",
            get(stream_only(Kind::Contributor)),
        )
        .route("/_eventStreamAwards", get(stream_only(Kind::Awards)))
        .route("/_getTopContributor", get(top_contributor))
        .route("/_getFameContributor", get(fame))
        .route("/_getFameQualContributor", get(fame))
        .route("/_getTop5Overtime", get(top5_overtime))
        .route("/_getOrgOvertime", get(org_overtime))
        .route("/_getCategPerContrib", get(categ_per_contrib))
        .route("/_getLatestAwards", get(latest_awards))
        .route("/_getAllOrg", get(all_org))
        .route("/_getOrgRank", get(org_rank))
        .route("/_getContributionOrgStatus", get(contribution_status))
        .route("/_getHonorBadges", get(honor_badges))
        .route("/_getTrophies", get(trophies))
        .route("/_getAllOrgsTrophyRanking", get(trophy_all))
        .route("/_getAllOrgsTrophyRanking/{categ}", get(trophy_categ))
        .route("/_getUserLogins", get(user_logins))
        .route("/_getAllLoggedOrg", get(all_logged_org))
        .route("/_getTopOrglogin", get(top_org_login))
        .route("/_getLoginVSCOntribution", get(login_vs_contrib))
        .route(
            "/_getUserLoginsAndContribOvertime",
            get(logins_contrib_overtime),
        )
        .route("/_getTrendingEvents", get(trending_events))
        .route("/_getTrendingCategs", get(trending_categs))
        .route("/_getTrendingTags", get(trending_tags))
        .route("/_getTrendingSightings", get(trending_sightings))
        .route("/_getTrendingDisc", get(trending_disc))
        .route("/_getTypeaheadData", get(typeahead))
        .route("/_getGenericTrendingOvertime", get(generic_overtime))
        .route("/status", get(status));
    // `/metrics` tells request counts and feed health: behind login unless configured open
    // (a Prometheus scraper without a session).
    let metrics_open = st.cfg.guard.metrics_public || st.auth.is_none();
    let protected = match metrics_open {
        true => protected,
        false => protected.route("/metrics", get(metrics)),
    }
    .route_layer(middleware::from_fn_with_state(st.clone(), require_session));
    let open = Router::new()
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", get(logout).post(logout))
        .route("/error_page", get(error_page))
        .route("/static/{*path}", get(static_file))
        // Asked for by every page, the login form included.
        .route("/favicon.ico", get(favicon))
        .route("/healthz", get(healthz));
    let open = match metrics_open {
        true => open.route("/metrics", get(metrics)),
        false => open,
    };
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: {}; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        st.cfg.misp_web_url
    );
    let csp = HeaderValue::from_str(&csp).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        )
    });
    // Anything else is a file of the embedded pages (`/assets/...`), or a 404 that
    // `json_errors` turns into JSON.
    let mut app = protected
        .merge(open)
        .fallback_service(st.ui.clone())
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(st.clone(), observe))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ));
    if st.tls {
        app = app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    app.layer(middleware::from_fn(track_activity))
        .with_state(st)
}

/// Marks the request's connection busy until its answer, body included, is sent: a live
/// stream keeps its connection busy, a kept-alive connection between requests is idle (see
/// [`super::conn::Activity`]).
async fn track_activity(req: Request, next: Next) -> Response {
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
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let st = st.clone();
        let admission = st.admission.clone();
        match &acceptor {
            None => {
                tokio::spawn(async move {
                    let io = super::conn::FirstBytes::new(io, timeout, admission);
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
                    serve_until_idle(&st, watcher.watch(conn.into_owned()), &ticket, timeout).await;
                    drop(ticket);
                });
            }
            Some(acc) => {
                let acc = acc.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn accept_rule_of_the_original() {
        assert!(wants_json(&accept("application/json")));
        assert!(wants_json(&accept(
            "application/json, text/javascript, */*; q=0.01"
        )));
        assert!(wants_json(&accept("*/*")));
        assert!(!wants_json(&accept("text/event-stream")));
        assert!(!wants_json(&HeaderMap::new()));
        assert!(!wants_json(&accept("application/json;q=0")));
    }

    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(route_label("/_logs"), "/_logs");
        assert_eq!(route_label("/static/x.css"), "/static");
        assert_eq!(route_label("/random/path"), "other");
    }
}
