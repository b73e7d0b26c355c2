//! Login through MISP (spec `http.md` §9) when `[Auth] auth_enabled` is on.
//!
//! The dashboard shows who logs in and what every organisation shares, so it must not be
//! readable by anyone who can reach the port. A user signs in with MISP credentials (checked
//! through MISP's own login form, as the original does) or with a MISP API key (username left
//! empty), and MISP must grant the `dashboard_access` user setting. The session lives in a
//! signed, `HttpOnly`, `SameSite` cookie whose `Secure` flag follows TLS (a `Secure` cookie over
//! plain HTTP is dropped by browsers, which made the original's login loop). The login form
//! carries a CSRF token bound to a signed cookie, attempts are rate-limited per client address,
//! and requests to MISP have a timeout. The default `session_secret` is refused at start: with
//! it anyone could forge a session.

use super::error::WebError;
use cookie::{Cookie, CookieJar, Key, SameSite};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use sha2::{Digest, Sha512};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;
use thiserror::Error;

/// The original's placeholder secret.
pub const DEFAULT_SECRET: &str = "**Change_Me**";
pub const SESSION_COOKIE: &str = "session";
pub const CSRF_COOKIE: &str = "csrf";
/// Time allowed to each request to MISP.
const MISP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest username or password accepted (the original's form limit).
const MAX_FIELD: usize = 255;

/// Why authentication cannot be set up.
#[derive(Debug, Error)]
pub enum AuthSetupError {
    #[error("[Auth] session_secret is the default {DEFAULT_SECRET:?} (or empty) while auth_enabled is on: anyone could forge a session. Set a long random secret, e.g. the output of `openssl rand -hex 32`")]
    DefaultSecret,
    #[error("[Auth] misp_fqdn {0:?} is not an http(s) URL")]
    BadFqdn(String),
    #[error("cannot build the HTTP client for MISP: {0}")]
    Client(String),
}

/// Why a login failed.
#[derive(Debug, Error, PartialEq)]
pub enum LoginError {
    #[error(
        "Username and Password does not match when connecting to MISP or incorrect MISP permission"
    )]
    BadCredentials,
    #[error("User does not have dashboard access")]
    NoDashboardAccess,
    #[error("MISP cannot be reached for authentication")]
    Unreachable(String),
    #[error("MISP answered in an unexpected way")]
    Protocol(String),
}

/// What a valid session says.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: String,
    pub expires: i64,
}

pub struct Auth {
    key: Key,
    misp: reqwest::Url,
    ssl_verify: bool,
    same_site: SameSite,
    lifetime_secs: i64,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random token for CSRF protection (hex of 16 bytes from the OS).
pub fn random_token() -> Result<String, WebError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| WebError::Internal(format!("randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Auth {
    /// `None` when auth is off. `attempts_per_minute` bounds login attempts per address.
    pub fn from_config(
        c: &crate::config::AuthConfig,
        attempts_per_minute: u32,
    ) -> Result<Option<Auth>, AuthSetupError> {
        if !c.auth_enabled {
            return Ok(None);
        }
        if c.session_secret.trim().is_empty() || c.session_secret == DEFAULT_SECRET {
            return Err(AuthSetupError::DefaultSecret);
        }
        let misp = reqwest::Url::parse(c.misp_fqdn.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| AuthSetupError::BadFqdn(c.misp_fqdn.clone()))?;
        // The cookie key needs 64 bytes; the configured secret is stretched by SHA-512.
        let digest = Sha512::digest(c.session_secret.as_bytes());
        let key = Key::from(digest.as_slice());
        let same_site = match c.session_cookie_samesite.as_str() {
            "Lax" => SameSite::Lax,
            "None" => SameSite::None,
            _ => SameSite::Strict,
        };
        let per_min = NonZeroU32::new(attempts_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(Some(Auth {
            key,
            misp,
            ssl_verify: c.ssl_verify,
            same_site,
            lifetime_secs: i64::from(c.permanent_session_lifetime_days.max(1)) * 86_400,
            limiter: RateLimiter::keyed(Quota::per_minute(per_min)),
        }))
    }

    fn jar(cookie_headers: &[&str]) -> CookieJar {
        let mut jar = CookieJar::new();
        for h in cookie_headers {
            for c in Cookie::split_parse_encoded(h.to_string()).flatten() {
                jar.add_original(c.into_owned());
            }
        }
        jar
    }

    /// The session of a request, when its cookie is genuine and not expired.
    pub fn session(&self, cookie_headers: &[&str]) -> Option<Session> {
        let jar = Self::jar(cookie_headers);
        let c = jar.signed(&self.key).get(SESSION_COOKIE)?;
        let v: Value = serde_json::from_str(c.value()).ok()?;
        let s = Session {
            user: v.get("user")?.as_str()?.to_string(),
            expires: v.get("exp")?.as_i64()?,
        };
        (s.expires > now_secs()).then_some(s)
    }

    fn build(&self, name: &'static str, value: String, secure: bool) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(self.same_site)
            .build()
    }

    fn signed_header(&self, c: Cookie<'static>) -> String {
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key).add(c);
        jar.delta()
            .next()
            .map(|c| c.encoded().to_string())
            .unwrap_or_default()
    }

    /// `Set-Cookie` value of a new session for `user`.
    pub fn session_cookie(&self, user: &str, secure: bool) -> String {
        let v = serde_json::json!({"user": user, "exp": now_secs() + self.lifetime_secs});
        self.signed_header(self.build(SESSION_COOKIE, v.to_string(), secure))
    }

    /// `Set-Cookie` value that removes the session.
    pub fn clear_session_cookie(&self, secure: bool) -> String {
        let mut c = self.build(SESSION_COOKIE, String::new(), secure);
        c.make_removal();
        c.encoded().to_string()
    }

    /// `Set-Cookie` value binding a CSRF token to the browser.
    pub fn csrf_cookie(&self, token: &str, secure: bool) -> String {
        self.signed_header(self.build(CSRF_COOKIE, token.to_string(), secure))
    }

    /// Whether the form's token is the one of the browser's signed CSRF cookie.
    pub fn csrf_ok(&self, cookie_headers: &[&str], form_token: &str) -> bool {
        let jar = Self::jar(cookie_headers);
        jar.signed(&self.key)
            .get(CSRF_COOKIE)
            .is_some_and(|c| !form_token.is_empty() && constant_eq(c.value(), form_token))
    }

    /// Counts a login attempt from `ip`; false when it is over the limit.
    pub fn attempt_allowed(&self, ip: IpAddr) -> bool {
        self.limiter.retain_recent();
        self.limiter.check_key(&ip).is_ok()
    }

    fn client(&self) -> Result<reqwest::Client, LoginError> {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(MISP_TIMEOUT)
            .danger_accept_invalid_certs(!self.ssl_verify)
            .build()
            .map_err(|e| LoginError::Protocol(e.to_string()))
    }

    fn url(&self, path: &str) -> reqwest::Url {
        let mut u = self.misp.clone();
        let base = u.path().trim_end_matches('/').to_string();
        u.set_path(&format!("{base}{path}"));
        u
    }

    /// Checks credentials (or, with an empty username, an API key) against MISP; returns the
    /// user's name for the session.
    pub async fn check(&self, username: &str, password: &str) -> Result<String, LoginError> {
        if username.len() > MAX_FIELD || password.len() > MAX_FIELD || password.is_empty() {
            return Err(LoginError::BadCredentials);
        }
        let client = self.client()?;
        let me = if username.is_empty() {
            let r = client
                .get(self.url("/users/view/me.json"))
                .header("Authorization", password)
                .header("Accept", "application/json")
                .send()
                .await
                .map_err(unreachable)?;
            if matches!(r.status().as_u16(), 401 | 403 | 404) {
                return Err(LoginError::BadCredentials);
            }
            read_json(r).await?
        } else {
            self.form_login(&client, username, password).await?
        };
        if !dashboard_access(&me) {
            return Err(LoginError::NoDashboardAccess);
        }
        Ok(me
            .pointer("/User/email")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(if username.is_empty() {
                "api-key user"
            } else {
                username
            })
            .to_string())
    }

    /// MISP's own login form: fetch it for its anti-forgery tokens, post the credentials, and on
    /// the redirect MISP gives after a good login, read `/users/view/me.json` with that session.
    async fn form_login(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> Result<Value, LoginError> {
        let mut url = self.url("/users/login");
        let mut page = None;
        for _ in 0..5 {
            let r = client.get(url.clone()).send().await.map_err(unreachable)?;
            if r.status().is_redirection() {
                let loc = r
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| LoginError::Protocol("redirect without Location".into()))?;
                url = url
                    .join(loc)
                    .map_err(|e| LoginError::Protocol(e.to_string()))?;
                continue;
            }
            page = Some(r.text().await.map_err(unreachable)?);
            break;
        }
        let page = page.ok_or_else(|| LoginError::Protocol("too many redirects".into()))?;
        let key = hidden_input(&page, "data[_Token][key]").ok_or_else(|| {
            LoginError::Protocol("no data[_Token][key] in MISP's login form".into())
        })?;
        let fields = hidden_input(&page, "data[_Token][fields]").ok_or_else(|| {
            LoginError::Protocol("no data[_Token][fields] in MISP's login form".into())
        })?;
        let mut form: Vec<(&str, String)> = vec![
            ("_method", "POST".into()),
            ("data[_Token][key]", key),
            ("data[_Token][fields]", fields),
            ("data[_Token][unlocked]", String::new()),
            ("data[User][email]", username.into()),
            ("data[User][password]", password.into()),
        ];
        if let Some(debug) = hidden_input(&page, "data[_Token][debug]") {
            form.push(("data[_Token][debug]", debug));
        }
        let r = client
            .post(self.url("/users/login"))
            .form(&form)
            .send()
            .await
            .map_err(unreachable)?;
        let ok = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|l| l.contains("/users/routeafterlogin"));
        if !ok {
            return Err(LoginError::BadCredentials);
        }
        let r = client
            .get(self.url("/users/view/me.json"))
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        read_json(r).await
    }
}

fn unreachable(e: reqwest::Error) -> LoginError {
    LoginError::Unreachable(e.to_string())
}

async fn read_json(r: reqwest::Response) -> Result<Value, LoginError> {
    if !r.status().is_success() {
        return Err(LoginError::Protocol(format!(
            "/users/view/me.json answered {}",
            r.status()
        )));
    }
    let b = r.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&b).map_err(|e| LoginError::Protocol(format!("me.json: {e}")))
}

/// MISP's `dashboard_access` user setting, as an object field or in the list form newer MISP
/// versions return; a disabled user never has access.
pub fn dashboard_access(me: &Value) -> bool {
    let truthy = |v: &Value| match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        Value::String(s) => matches!(s.as_str(), "1" | "true" | "True"),
        _ => false,
    };
    if me.pointer("/User/disabled").is_some_and(truthy) {
        return false;
    }
    match me.get("UserSetting") {
        Some(Value::Object(m)) => m.get("dashboard_access").is_some_and(truthy),
        Some(Value::Array(items)) => items.iter().any(|i| {
            let s = i.get("UserSetting").unwrap_or(i);
            s.get("setting").and_then(Value::as_str) == Some("dashboard_access")
                && s.get("value").is_some_and(truthy)
        }),
        _ => false,
    }
}

/// The `value` of the `<input>` whose `name` is `name`, wherever the attributes are.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find("value=\"")? + 7;
    let rest = &tag[v..];
    let value = &rest[..rest.find('"')?];
    (!value.is_empty() && !value.contains(char::is_whitespace)).then(|| value.to_string())
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(secret: &str) -> crate::config::AuthConfig {
        let mut c = crate::config::Config::defaults().auth;
        c.auth_enabled = true;
        c.session_secret = secret.into();
        c
    }

    #[test]
    fn default_secret_is_refused() {
        assert!(matches!(
            Auth::from_config(&cfg(DEFAULT_SECRET), 5),
            Err(AuthSetupError::DefaultSecret)
        ));
        assert!(Auth::from_config(&cfg("a long enough secret"), 5)
            .expect("ok")
            .is_some());
    }

    #[test]
    fn sessions_are_signed() {
        let a = Auth::from_config(&cfg("secret one"), 5)
            .expect("ok")
            .expect("on");
        let set = a.session_cookie("alice@example.org", true);
        assert!(
            set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Strict"),
            "{set}"
        );
        let pair = set.split(';').next().expect("pair");
        let s = a.session(&[pair]).expect("valid session");
        assert_eq!(s.user, "alice@example.org");
        // Another secret does not accept it, and a tampered value is refused.
        let b = Auth::from_config(&cfg("secret two"), 5)
            .expect("ok")
            .expect("on");
        assert!(b.session(&[pair]).is_none());
        let tampered = pair.replace("alice", "mallory");
        assert!(a.session(&[&tampered]).is_none());
    }

    #[test]
    fn csrf_token_must_match_its_cookie() {
        let a = Auth::from_config(&cfg("secret"), 5)
            .expect("ok")
            .expect("on");
        let set = a.csrf_cookie("abc123", false);
        let pair = set.split(';').next().expect("pair");
        assert!(a.csrf_ok(&[pair], "abc123"));
        assert!(!a.csrf_ok(&[pair], "other"));
        assert!(!a.csrf_ok(&["csrf=abc123"], "abc123"));
    }

    #[test]
    fn attempts_are_limited() {
        let a = Auth::from_config(&cfg("secret"), 3)
            .expect("ok")
            .expect("on");
        let ip: IpAddr = [127, 0, 0, 9].into();
        let allowed = (0..10).filter(|_| a.attempt_allowed(ip)).count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn tokens_from_the_login_form() {
        let html = r#"<form><input type="hidden" name="data[_Token][key]" value="k3y" id="Token1"/>
<input type="hidden" value="f%3Aa" name="data[_Token][fields]"/></form>"#;
        assert_eq!(
            hidden_input(html, "data[_Token][key]").as_deref(),
            Some("k3y")
        );
        assert_eq!(
            hidden_input(html, "data[_Token][fields]").as_deref(),
            Some("f%3Aa")
        );
        assert_eq!(hidden_input(html, "data[_Token][debug]"), None);
    }

    #[test]
    fn dashboard_access_forms() {
        assert!(dashboard_access(
            &json!({"UserSetting": {"dashboard_access": true}})
        ));
        assert!(dashboard_access(
            &json!({"UserSetting": {"dashboard_access": "1"}})
        ));
        assert!(!dashboard_access(&json!({"UserSetting": []})));
        assert!(dashboard_access(
            &json!({"UserSetting": [{"setting": "dashboard_access", "value": "1"}]})
        ));
        assert!(!dashboard_access(
            &json!({"User": {"disabled": true}, "UserSetting": {"dashboard_access": 1}})
        ));
    }
}
