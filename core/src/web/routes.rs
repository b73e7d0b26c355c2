//! The paths of the dashboard ([`router`]): the cached JSON routes, the pages and the
//! operations endpoints are here; the stream routes, login, the middleware and the answer
//! machinery are in their own modules ([`super::stream_routes`], [`super::login_routes`],
//! [`super::middleware`], [`super::answer`]), the accept loop in [`super::serve`].

use super::answer::{cached, json_bytes, json_route};
use super::error::WebError;
use super::hub::Kind;
use super::login_routes::{login_form, login_submit, logout, require_session};
use super::middleware::{json_errors, observe, track_activity};
use super::params::Params;
use super::request::{viewer_of, wants_page, Session};
use super::state::Shared;
use super::stream_routes::{combined_stream, logs, maps, rewind_csv, rewind_json, stream_only};
use super::{contrib, geo, ops, pages, trendings, users};
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use std::future::Future;
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;

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
