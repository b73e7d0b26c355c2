//! Login through MISP: the form, its submission (CSRF, rate limits, bounded body), logout, and
//! the middleware that keeps the protected routes behind a session. Apart from the routes
//! because it is the one part that writes cookies and reads a request body.

use super::answer::REDIS_DEADLINE;
use super::error::WebError;
use super::pages;
use super::params::Params;
use super::request::Https;
use super::request::{client_address, cookie_headers, wants_page};
use super::state::Shared;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
pub(super) async fn login_form(
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
pub(super) async fn login_submit(
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
pub(super) async fn logout(
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
pub(super) async fn require_session(
    State(st): State<Shared>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(auth) = st.auth.clone() else {
        return next.run(req).await;
    };
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
        auth.current_session(&st.data, &cookie_headers(req.headers())),
    )
    .await
    {
        Ok(Ok(found)) => found,
        // As for the routes: the next request asks again where the master is.
        Ok(Err(e)) => return st.noting(e).into_response(),
        Err(_) => return super::answer::redis_too_slow(&st).into_response(),
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
