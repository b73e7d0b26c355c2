//! What a request tells of its client, for the JSON, stream and login routes alike: what it
//! accepts (JSON, an event stream, a page), its cookies, its address, and whom its session's
//! views are filtered for. Apart from the handlers so that each of them can use these without
//! depending on the others.

use super::state::Shared;
use axum::http::{header, HeaderMap};
use std::net::SocketAddr;

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

pub(super) fn cookie_headers(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// Whether a request is a browser's navigation (it asks for HTML) rather than a program's.
pub(super) fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The client's address, as [`super::conn::client_ip`] tells it.
pub(super) fn client_address(
    st: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> std::net::IpAddr {
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    super::conn::client_ip(&st.admission, peer.ip(), &forwarded)
}

pub(super) type Session = Option<axum::Extension<super::auth::Current>>;

/// Whom the live views are filtered for: `None` when access control is off, or for the host
/// program's own questions (the Python package's read helpers, which carry no session). A
/// session without a MISP description (opened before mispdash read it, or MISP did not say)
/// sees what every organisation may see.
pub(super) fn viewer_of(
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

/// What both rewind routes read of a request: the window asked for, the live log's filters (the
/// page's cookie) and whom the rows are for.
pub(super) struct RewindAsk {
    pub params: super::params::Params,
    pub filters: super::live::Filters,
    pub viewer: Option<crate::acl::Viewer>,
}

impl axum::extract::FromRequestParts<Shared> for RewindAsk {
    type Rejection = super::error::WebError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &Shared,
    ) -> Result<Self, Self::Rejection> {
        Ok(RewindAsk {
            params: super::params::Params::parse(parts.uri.query())?,
            filters: super::live::Filters::from_cookie_headers(
                cookie_headers(&parts.headers).into_iter(),
            ),
            viewer: viewer_of(st, parts.extensions.get::<super::auth::Current>()),
        })
    }
}

/// Whether the browser reached the dashboard over HTTPS: on a TLS connection, or through a
/// trusted reverse proxy that says so in `X-Forwarded-Proto` (its own value, the last one; from
/// anyone else the header is ignored, since a client could write it). Decides the cookies'
/// `Secure` flag: a cookie set over HTTPS without it would also be sent to the host's plain
/// HTTP ports.
#[derive(Clone, Copy, Debug)]
pub struct Https(pub bool);

impl Https {
    pub fn of(st: &super::state::AppState, parts: &axum::http::request::Parts) -> bool {
        if parts
            .extensions
            .get::<super::conn::ArrivedOverTls>()
            .map_or(st.tls, |a| a.0)
        {
            return true;
        }
        let Some(axum::extract::ConnectInfo(peer)) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        else {
            return false;
        };
        if !st.admission.is_trusted(peer.ip()) {
            return false;
        }
        parts
            .headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }
}

impl axum::extract::FromRequestParts<super::state::Shared> for Https {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &super::state::Shared,
    ) -> Result<Self, Self::Rejection> {
        Ok(Https(Https::of(st, parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
}
