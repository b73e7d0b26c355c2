//! Plain pages and embedded static files.
//!
//! The page routes of the original (`/`, `/geo`, `/contrib`, `/users`, `/trendings`) exist so
//! that links and bookmarks keep working; until the dashboard UI replaces them they show a
//! short page linking the others and the data routes. No page has inline script (the CSP
//! forbids it), and every dynamic text is HTML-escaped. Static files are compiled into the
//! binary and served with a strong `ETag` and a cache lifetime.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/style.css"),
    },
    // The organisation logo shown when `[RedisGlobal] misp_web_url` is not set (MISP serves
    // the real ones); drawn for mispdash.
    Asset {
        path: "org.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../web/org.svg"),
    },
    Asset {
        path: "favicon.ico",
        content_type: "image/vnd.microsoft.icon",
        body: include_bytes!("../../web/favicon.ico"),
    },
];

/// Browsers may keep static files a day; the `ETag` makes revalidation cheap after that.
const STATIC_CACHE: &str = "public, max-age=86400";

fn etags() -> &'static Vec<String> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let d = Sha256::digest(a.body);
                let hex: String = d.iter().take(12).map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// An embedded file, or `None` when there is no such file.
pub fn asset(path: &str, headers: &HeaderMap) -> Option<Response> {
    let i = ASSETS.iter().position(|a| a.path == path)?;
    let a = &ASSETS[i];
    let tag = etags().get(i).cloned().unwrap_or_default();
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, a.body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(STATIC_CACHE),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    Some(resp)
}

/// Minimal HTML escaping for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const NAV: &[(&str, &str)] = &[
    ("/", "Live Dashboard"),
    ("/geo", "Geolocalisation"),
    ("/contrib", "Contributors"),
    ("/users", "Users"),
    ("/trendings", "Trendings"),
];

/// A whole page. `body` must already be escaped.
pub fn html_page(title: &str, body: &str, logout: bool) -> Response {
    let mut nav = String::from("<span class=\"brand\">mispdash</span>");
    for (href, label) in NAV {
        nav.push_str(&format!("<a href=\"{href}\">{label}</a>"));
    }
    if logout {
        nav.push_str("<a href=\"/logout\">Logout</a>");
    }
    let text = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} - mispdash</title><link rel=\"stylesheet\" href=\"/static/style.css\">\
<link rel=\"icon\" href=\"/favicon.ico\"></head><body><header>{nav}</header><main>{body}</main></body></html>\n",
        escape(title)
    );
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// `/error_page?error_code=`: the fixed text of a code (the codes the original's diagnostic
/// knows: 1 a redirect loop, 2 MISP unreachable), a general one for any other.
pub fn error_page(code: &str) -> Response {
    let message = match code.trim() {
        "1" => {
            "The browser did not keep the dashboard's session: its cookies may be refused \
             (cookies off, or the dashboard reached over plain HTTP while its cookies are HTTPS-only)."
        }
        "2" => "MISP cannot be reached for authentication.",
        _ => "Something went wrong, and no details were given.",
    };
    let body = format!(
        "<h1>Error</h1><div class=\"alert\">{}</div><p><a href=\"/\">Back to the dashboard</a></p>",
        escape(message)
    );
    html_page("Error", &body, false)
}

/// The login form, with its CSRF token and an optional error.
pub fn login_page(csrf_token: &str, error: Option<&str>) -> Response {
    let alert = error
        .map(|e| format!("<div class=\"alert\">{}</div>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{alert}<form class=\"login\" id=\"UserLoginForm\" method=\"post\" action=\"/login\">\
<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
<label for=\"username\">Username</label><input type=\"text\" id=\"username\" name=\"username\" size=\"32\" maxlength=\"255\" autocomplete=\"off\" autofocus>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" maxlength=\"255\" autocomplete=\"current-password\">\
<button type=\"submit\" name=\"submit\" value=\"Sign In\">Sign In</button></form>\
<p class=\"muted\">Use your MISP account, or leave the username empty and give a MISP API key as the password.</p>",
        escape(csrf_token)
    );
    html_page("Sign in", &body, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn assets_have_etags_and_revalidate() {
        let r = asset("style.css", &HeaderMap::new()).expect("embedded");
        assert_eq!(r.status(), StatusCode::OK);
        let tag = r.headers().get(header::ETAG).cloned().expect("etag");
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag);
        let r = asset("style.css", &h).expect("embedded");
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(asset("nope.js", &HeaderMap::new()).is_none());
    }
}
