//! Login through MISP (spec `http.md` §9) when `[Auth] auth_enabled` is on.
//!
//! The dashboard shows who logs in and what every organisation shares, so it must not be
//! readable by anyone who can reach the port. A user signs in with MISP credentials (checked
//! through MISP's own login form, as the original does) or with a MISP API key (username left
//! empty), and MISP must grant the `dashboard_access` user setting.
//!
//! Sessions live in Redis (`MISPDASH_SESSION:<digest of the token>`, with the session's
//! lifetime as expiry), so that logout ends them for good, a restart does not bring them back,
//! and every process of a deployment (Apache's daemons, `mispdash run`) sees the same. The
//! browser holds only a random token in a signed, `HttpOnly`, `SameSite` cookie. It is `Secure`
//! whenever the browser came over HTTPS, however that is known (the server's TLS, Apache's,
//! a trusted proxy's `X-Forwarded-Proto`), and always with `session_cookie_secure = True`:
//! browsers send a host's cookies to all its ports, its plain HTTP ones included. Since such
//! a cookie never comes back over plain HTTP, a login there is refused with a message that
//! says so, not the original's silent login loop. With `[mispdash] misp_api_key`, each session's user is asked of
//! MISP again every `session_recheck_seconds`: a user who lost `dashboard_access`, or was
//! disabled or deleted, is logged out.
//!
//! The login form carries a CSRF token bound to a signed cookie; attempts are rate-limited per
//! client address (the forwarded one behind a trusted proxy; an IPv6 /64 as one), failures
//! delay the next attempt for that account from that address, and the account's own limit
//! applies only to addresses it never signed in from, so that an attacker cannot lock its
//! owner out (see [`Auth::attempt_allowed`]); requests to MISP
//! have a timeout, and the MISP session opened to check a password is logged out at once. A
//! `session_secret` that is the default or shorter than 32 characters is refused at start.

use super::db::Db;
use super::error::WebError;
use super::lock;
use cookie::{Cookie, CookieJar, Key, SameSite};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
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
/// Shortest `session_secret` accepted: the cookie key is derived from it, and a short one can
/// be guessed offline from any signed cookie.
pub const MIN_SECRET_CHARS: usize = 32;
/// When MISP cannot be reached for a re-check, the session is kept and asked again after this.
const RECHECK_RETRY_SECS: i64 = 60;

/// Why authentication cannot be set up.
#[derive(Debug, Error)]
pub enum AuthSetupError {
    #[error("[Auth] session_secret is the default {DEFAULT_SECRET:?} (or empty) while auth_enabled is on: anyone could forge a session. Set a long random secret, e.g. the output of `openssl rand -hex 32`")]
    DefaultSecret,
    #[error("[Auth] session_secret has {0} characters: at least {MIN_SECRET_CHARS} are needed, or the key that signs the session cookies can be guessed. Set a long random secret, e.g. the output of `openssl rand -hex 32`")]
    ShortSecret(usize),
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

impl LoginError {
    /// The code a failed login's redirect carries (`/login?auth_error=<code>`): the login page
    /// shows the fixed text of a code, never text from a link, which anyone could write.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::BadCredentials => "credentials",
            LoginError::NoDashboardAccess => "access",
            LoginError::Unreachable(_) => "unreachable",
            LoginError::Protocol(_) => "protocol",
        }
    }

    /// The failure a code names (see [`LoginError::code`]); its text is the error's own.
    fn of_code(code: &str) -> Option<LoginError> {
        Some(match code {
            "credentials" => LoginError::BadCredentials,
            "access" => LoginError::NoDashboardAccess,
            "unreachable" => LoginError::Unreachable(String::new()),
            "protocol" => LoginError::Protocol(String::new()),
            _ => return None,
        })
    }
}

/// The text the login page shows for a failure code; `None` for no failure. An unknown code
/// (an old bookmark, the original's `True`) reads as a plain failure.
pub fn login_error_text(code: &str) -> Option<String> {
    if code.is_empty() {
        return None;
    }
    Some(
        LoginError::of_code(code)
            .map(|e| e.to_string())
            .unwrap_or_else(|| "Login failed".into()),
    )
}

/// A session as kept in Redis.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub user: String,
    /// MISP's id of the user, for re-checks; `None` if MISP did not say.
    #[serde(default)]
    pub misp_id: Option<String>,
    pub created: i64,
    /// When MISP last confirmed the user's access.
    pub checked: i64,
    pub expires: i64,
    /// Who the user is in MISP's terms (organisation, site admin, sharing groups), read at
    /// login and at each re-check; `None` for sessions opened before mispdash read it, or
    /// when MISP did not say.
    #[serde(default)]
    pub viewer: Option<crate::acl::Viewer>,
}

/// A session found for a request: what it says, and the digest that names it (the key of
/// per-session limits, never the token itself).
#[derive(Debug, Clone)]
pub struct Current {
    pub session: Session,
    pub digest: String,
}

impl Auth {
    /// The session of a request (see [`Auth::session`]), read from `data`.
    pub async fn current_session(
        self: &Arc<Self>,
        data: &Db,
        cookie_headers: &[&str],
    ) -> Result<Option<Current>, WebError> {
        let Some(digest) = self.token_digest(cookie_headers) else {
            return Ok(None);
        };
        self.current_by_digest(data, digest).await
    }

    /// The session named by `digest`, as Redis has it. When MISP's re-check of its user is
    /// due, it starts in the background and this answers at once: the request never waits for
    /// MISP (which may take its 10 s while the request has 5 s for Redis), and a session is
    /// re-checked once at a time however many requests it makes meanwhile.
    pub async fn current_by_digest(
        self: &Arc<Self>,
        data: &Db,
        digest: String,
    ) -> Result<Option<Current>, WebError> {
        let found = self.session_by_digest(data, digest).await?;
        if let Some(c) = &found {
            if self.recheck_due(&c.session) {
                self.spawn_recheck(data, c.digest.clone());
            }
        }
        Ok(found)
    }

    /// Starts the re-check of session `digest`, unless one is running.
    fn spawn_recheck(self: &Arc<Self>, data: &Db, digest: String) {
        if !lock(&self.rechecking).insert(digest.clone()) {
            return;
        }
        let (auth, data) = (self.clone(), data.clone());
        tokio::spawn(async move {
            // Bounded, so that a Redis that stopped answering does not keep the session marked
            // as being re-checked for ever.
            let r = tokio::time::timeout(
                MISP_TIMEOUT * 2 + Duration::from_secs(10),
                auth.recheck_session(&data, digest.clone()),
            )
            .await;
            lock(&auth.rechecking).remove(&digest);
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("re-check of a session stopped: {e}"),
                Err(_) => {
                    tracing::warn!("re-check of a session took too long; tried again later")
                }
            }
        });
    }
}

/// Who MISP says logged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub name: String,
    pub misp_id: Option<String>,
    pub viewer: Option<crate::acl::Viewer>,
}

/// What a re-check learnt of a session's user.
#[derive(Debug, Clone, PartialEq)]
enum Recheck {
    /// MISP no longer grants the user dashboard access (or no longer knows them).
    NoAccess,
    /// Access kept; who the user is now.
    Access(Option<crate::acl::Viewer>),
}

/// A refused login attempt: over which limit, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    pub what: &'static str,
    pub retry_after_secs: u64,
}

pub struct Auth {
    key: Key,
    misp: reqwest::Url,
    ssl_verify: bool,
    same_site: SameSite,
    lifetime_secs: i64,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
    recheck_secs: i64,
    admin_key: Option<String>,
    /// `[Auth] session_cookie_secure`: cookies are `Secure` even over plain HTTP.
    secure_always: bool,
    /// Sessions whose re-check with MISP is running.
    rechecking: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Recent failed logins per account and address group.
    failures: moka::sync::Cache<(String, IpAddr), Failures>,
    /// Address groups each account signed in from (for as long as a session lasts).
    known: moka::sync::Cache<(String, IpAddr), ()>,
}

/// Failed logins of one account from one address group, and until when the next waits.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    until: std::time::Instant,
}

/// The longest an account waits between attempts from one address after failures.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(15 * 60);

/// How an account name is counted: trimmed, lower case; `None` for an API key login or a
/// name no account can have.
fn account_key(account: &str) -> Option<String> {
    let account = account.trim().to_lowercase();
    (!account.is_empty() && account.len() <= MAX_FIELD).then_some(account)
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
    Ok(hex::encode(b))
}

impl Auth {
    /// `None` when auth is off.
    pub fn from_config(
        c: &crate::config::AuthConfig,
        guard: &crate::config::HttpGuard,
    ) -> Result<Option<Auth>, AuthSetupError> {
        if !c.auth_enabled {
            return Ok(None);
        }
        if c.session_secret.trim().is_empty() || c.session_secret == DEFAULT_SECRET {
            return Err(AuthSetupError::DefaultSecret);
        }
        let chars = c.session_secret.chars().count();
        if chars < MIN_SECRET_CHARS {
            return Err(AuthSetupError::ShortSecret(chars));
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
        let per_min =
            NonZeroU32::new(guard.login_attempts_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        if guard.misp_api_key.is_none() {
            tracing::info!(
                "sessions are not re-checked against MISP ([mispdash] misp_api_key unset): a \
                 user who loses dashboard_access keeps a session until logout or expiry"
            );
        }
        Ok(Some(Auth {
            key,
            misp,
            ssl_verify: c.ssl_verify,
            same_site,
            lifetime_secs: i64::from(c.permanent_session_lifetime_days.max(1)) * 86_400,
            by_address: RateLimiter::keyed(Quota::per_minute(per_min)),
            by_account: RateLimiter::keyed(Quota::per_minute(per_min)),
            recheck_secs: i64::from(guard.session_recheck_seconds.max(1)),
            admin_key: guard.misp_api_key.clone(),
            secure_always: c.session_cookie_secure,
            rechecking: Default::default(),
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(MAX_FAILURE_DELAY * 2)
                .build(),
            known: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(
                    u64::from(c.permanent_session_lifetime_days.clamp(1, 90)) * 86_400,
                ))
                .build(),
        }))
    }

    /// Whether the cookies of an answer are `Secure`, given whether the request came over
    /// HTTPS (`Https`, in the request module). Every cookie builder below takes `https` and asks this.
    pub fn cookie_secure(&self, https: bool) -> bool {
        https || self.secure_always
    }

    /// How often a live stream asks whether its session still holds: as often as sessions
    /// are re-checked, at most every 30 s.
    pub fn stream_check_interval(&self) -> Duration {
        Duration::from_secs(self.recheck_secs.clamp(1, 30) as u64)
    }

    /// The Redis key of the session whose token has this digest.
    fn session_key(digest: &str) -> String {
        format!("{}{digest}", crate::keys::SESSION_PREFIX)
    }

    /// The token of a request's genuine session cookie, as its digest.
    fn token_digest(&self, cookie_headers: &[&str]) -> Option<String> {
        let jar = Self::jar(cookie_headers);
        let c = jar.signed(&self.key).get(SESSION_COOKIE)?;
        let token = c.value();
        (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// Opens a session for `who` in Redis; returns its `Set-Cookie` value.
    pub async fn open_session(
        &self,
        db: &Db,
        who: &Verified,
        https: bool,
    ) -> Result<String, WebError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| WebError::Internal(format!("randomness: {e}")))?;
        let token = hex::encode(raw);
        let now = now_secs();
        let s = Session {
            user: who.name.clone(),
            misp_id: who.misp_id.clone(),
            created: now,
            checked: now,
            expires: now + self.lifetime_secs,
            viewer: who.viewer.clone(),
        };
        let value = serde_json::to_string(&s)
            .map_err(|e| WebError::Internal(format!("session record: {e}")))?;
        let mut c = db.conn().await?;
        redis::cmd("SET")
            .arg(Self::session_key(&hex::encode(Sha256::digest(
                token.as_bytes(),
            ))))
            .arg(value)
            .arg("EX")
            .arg(self.lifetime_secs.max(1))
            .query_async::<()>(&mut c)
            .await?;
        Ok(self.signed_header(self.build(SESSION_COOKIE, token, https)))
    }

    /// The session of a request: its cookie genuine, its record in Redis, not expired, and
    /// its user confirmed by MISP within the re-check interval (when one is configured).
    pub async fn session(
        &self,
        db: &Db,
        cookie_headers: &[&str],
    ) -> Result<Option<Current>, WebError> {
        let Some(digest) = self.token_digest(cookie_headers) else {
            return Ok(None);
        };
        self.session_by_digest(db, digest).await
    }

    /// [`Auth::session`] by the session's digest: what a live stream asks now and then, so
    /// that a logout or a re-check that ends the session also ends its open streams. Redis
    /// only: MISP's re-check runs apart ([`Auth::current_by_digest`]).
    pub async fn session_by_digest(
        &self,
        db: &Db,
        digest: String,
    ) -> Result<Option<Current>, WebError> {
        let key = Self::session_key(&digest);
        let mut c = db.conn().await?;
        let value: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut c).await?;
        let Some(s) = value.and_then(|v| serde_json::from_str::<Session>(&v).ok()) else {
            return Ok(None);
        };
        if s.expires <= now_secs() {
            return Ok(None);
        }
        Ok(Some(Current { session: s, digest }))
    }

    /// Whether MISP should be asked again about this session's user.
    fn recheck_due(&self, s: &Session) -> bool {
        self.admin_key.is_some() && now_secs() - s.checked >= self.recheck_secs
    }

    /// Asks MISP whether the user of session `digest` still has dashboard access, and ends
    /// the session if not. MISP failing or slow leaves it as it was, asked again in
    /// [`RECHECK_RETRY_SECS`].
    async fn recheck_session(&self, db: &Db, digest: String) -> Result<(), WebError> {
        let Some(admin_key) = &self.admin_key else {
            return Ok(());
        };
        let Some(Current { session: mut s, .. }) =
            self.session_by_digest(db, digest.clone()).await?
        else {
            return Ok(());
        };
        // Done meanwhile (by another process of the deployment).
        if !self.recheck_due(&s) {
            return Ok(());
        }
        let key = Self::session_key(&digest);
        match self.recheck(admin_key, s.misp_id.as_deref()).await {
            Ok(Recheck::Access(viewer)) => {
                if viewer != s.viewer {
                    tracing::info!(
                        "MISP describes {:?} differently now (organisation, role or sharing \
                         groups): the live views follow",
                        s.user
                    );
                }
                s.viewer = viewer;
                s.checked = now_secs();
            }
            Ok(Recheck::NoAccess) => {
                tracing::info!(
                    "session of {:?} ended: MISP no longer grants it dashboard access",
                    s.user
                );
                let mut c = db.conn().await?;
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<()>(&mut c)
                    .await?;
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(
                    "cannot re-check the session of {:?} with MISP ({e}); kept, asked again \
                     in {RECHECK_RETRY_SECS} s",
                    s.user
                );
                s.checked = now_secs() - self.recheck_secs + RECHECK_RETRY_SECS;
            }
        }
        if let Ok(v) = serde_json::to_string(&s) {
            let mut c = db.conn().await?;
            // XX: a logout meanwhile stays a logout; KEEPTTL: the expiry stays what it was.
            redis::cmd("SET")
                .arg(&key)
                .arg(v)
                .arg("XX")
                .arg("KEEPTTL")
                .query_async::<()>(&mut c)
                .await?;
        }
        Ok(())
    }

    /// Ends the request's session in Redis (logout).
    pub async fn end_session(&self, db: &Db, cookie_headers: &[&str]) -> Result<(), WebError> {
        if let Some(digest) = self.token_digest(cookie_headers) {
            let mut c = db.conn().await?;
            redis::cmd("DEL")
                .arg(Self::session_key(&digest))
                .query_async::<()>(&mut c)
                .await?;
        }
        Ok(())
    }

    /// Asks MISP, with the configured admin key, whether user `misp_id` still has dashboard
    /// access, and who they are now: their organisation and role, and the sharing groups of
    /// that organisation (the admin sees them all, with their members). A user MISP no longer
    /// knows has no access.
    async fn recheck(&self, admin_key: &str, misp_id: Option<&str>) -> Result<Recheck, LoginError> {
        let Some(id) = misp_id.filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        else {
            return Err(LoginError::Protocol("MISP gave no user id at login".into()));
        };
        let client = self.client()?;
        let r = client
            .get(self.url(&format!("/users/view/{id}.json")))
            .header("Authorization", admin_key)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        match r.status().as_u16() {
            404 => return Ok(Recheck::NoAccess),
            401 | 403 => {
                return Err(LoginError::Protocol(
                    "MISP refused [mispdash] misp_api_key (it must be a site admin's key)".into(),
                ))
            }
            _ => {}
        }
        let me = read_json(r).await?;
        if !dashboard_access(&me) {
            return Ok(Recheck::NoAccess);
        }
        let Some(org) = crate::acl::Viewer::from_misp(&me, &Default::default()) else {
            return Ok(Recheck::Access(None));
        };
        let all = self
            .sharing_groups(&client, Some(admin_key))
            .await?
            .ok_or_else(|| LoginError::Protocol("MISP did not list its sharing groups".into()))?;
        Ok(Recheck::Access(Some(crate::acl::Viewer {
            sharing_groups: crate::acl::sharing_groups_of_org(&all, org.org_id),
            ..org
        })))
    }

    /// MISP's `/sharing_groups.json` as the caller sees it (with `key`, or the client's MISP
    /// session): `None` when MISP refused or answered no list.
    async fn sharing_groups(
        &self,
        client: &reqwest::Client,
        key: Option<&str>,
    ) -> Result<Option<Value>, LoginError> {
        let mut req = client
            .get(self.url("/sharing_groups.json"))
            .header("Accept", "application/json");
        if let Some(k) = key {
            req = req.header("Authorization", k);
        }
        let r = req.send().await.map_err(unreachable)?;
        if !r.status().is_success() {
            return Ok(None);
        }
        let b = r.bytes().await.map_err(unreachable)?;
        Ok(serde_json::from_slice(&b).ok())
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

    fn build(&self, name: &'static str, value: String, https: bool) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.cookie_secure(https))
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

    /// `Set-Cookie` value that removes the session.
    pub fn clear_session_cookie(&self, https: bool) -> String {
        let mut c = self.build(SESSION_COOKIE, String::new(), https);
        c.make_removal();
        c.encoded().to_string()
    }

    /// `Set-Cookie` value binding a CSRF token to the browser.
    pub fn csrf_cookie(&self, token: &str, https: bool) -> String {
        self.signed_header(self.build(CSRF_COOKIE, token.to_string(), https))
    }

    /// Whether the browser holds a genuine CSRF cookie (checked before a form is read).
    pub fn has_csrf_cookie(&self, cookie_headers: &[&str]) -> bool {
        Self::jar(cookie_headers)
            .signed(&self.key)
            .get(CSRF_COOKIE)
            .is_some()
    }

    /// Whether the form's token is the one of the browser's signed CSRF cookie.
    pub fn csrf_ok(&self, cookie_headers: &[&str], form_token: &str) -> bool {
        let jar = Self::jar(cookie_headers);
        jar.signed(&self.key)
            .get(CSRF_COOKIE)
            .is_some_and(|c| !form_token.is_empty() && constant_eq(c.value(), form_token))
    }

    /// Counts a login attempt from `ip` for `account`, or says which limit refuses it:
    ///
    /// - the address (an IPv6 address's /64), whatever the account;
    /// - the account from this address, for a while after repeated failures (a delay that
    ///   doubles with each failure from the third, up to 15 minutes; a success clears it);
    /// - the account, only from addresses it never signed in from: someone trying one name
    ///   from many addresses is slowed down, its owner signing in from a known address is not.
    ///
    /// An API key login (no account name) is limited by address only.
    pub fn attempt_allowed(&self, ip: IpAddr, account: &str) -> Result<(), Limited> {
        let group = super::conn::address_group(ip);
        let now = DefaultClock::default().now();
        let wait = |n: governor::NotUntil<_>| n.wait_time_from(now).as_secs().max(1) + 1;
        self.by_address.retain_recent();
        self.by_address.check_key(&group).map_err(|n| Limited {
            what: "address",
            retry_after_secs: wait(n),
        })?;
        let Some(account) = account_key(account) else {
            return Ok(());
        };
        let pair = (account, group);
        if let Some(f) = self.failures.get(&pair) {
            let left = f.until.saturating_duration_since(std::time::Instant::now());
            if !left.is_zero() {
                return Err(Limited {
                    what: "account from this address",
                    retry_after_secs: left.as_secs() + 1,
                });
            }
        }
        if !self.known.contains_key(&pair) {
            self.by_account.retain_recent();
            self.by_account.check_key(&pair.0).map_err(|n| Limited {
                what: "account",
                retry_after_secs: wait(n),
            })?;
        }
        Ok(())
    }

    /// What a login attempt from `ip` for `account` came to: a success makes the address known
    /// to the account and clears its failures; a refusal of the credentials counts one more
    /// (MISP unreachable is nobody's failure).
    pub fn attempt_result(&self, ip: IpAddr, account: &str, result: Result<(), &LoginError>) {
        let Some(account) = account_key(account) else {
            return;
        };
        let pair = (account, super::conn::address_group(ip));
        match result {
            Ok(()) => {
                self.failures.invalidate(&pair);
                self.known.insert(pair, ());
            }
            Err(LoginError::BadCredentials | LoginError::NoDashboardAccess) => {
                let count = self.failures.get(&pair).map_or(0, |f| f.count) + 1;
                let delay = match count {
                    0..=2 => Duration::ZERO,
                    n => Duration::from_secs(1u64 << (n - 3).min(10)).min(MAX_FAILURE_DELAY),
                };
                self.failures.insert(
                    pair,
                    Failures {
                        count,
                        until: std::time::Instant::now() + delay,
                    },
                );
            }
            Err(_) => {}
        }
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
    /// user's name and MISP id for the session.
    pub async fn check(&self, username: &str, password: &str) -> Result<Verified, LoginError> {
        if username.len() > MAX_FIELD || password.len() > MAX_FIELD || password.is_empty() {
            return Err(LoginError::BadCredentials);
        }
        let client = self.client()?;
        let (me, sharing_groups) = if username.is_empty() {
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
            let me = read_json(r).await?;
            let sgs = match dashboard_access(&me) {
                true => self.sharing_groups(&client, Some(password)).await?,
                false => None,
            };
            (me, sgs)
        } else {
            self.form_login(&client, username, password).await?
        };
        if !dashboard_access(&me) {
            return Err(LoginError::NoDashboardAccess);
        }
        let name = me
            .pointer("/User/email")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(if username.is_empty() {
                "api-key user"
            } else {
                username
            })
            .to_string();
        let misp_id = me.pointer("/User/id").and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let listed = match &sharing_groups {
            Some(list) => crate::acl::listed_sharing_groups(list),
            None => {
                tracing::warn!(
                    "MISP did not list the sharing groups of {name:?}: until a re-check does, \
                     the live views show them none of the sharing groups' data"
                );
                Default::default()
            }
        };
        let viewer = crate::acl::Viewer::from_misp(&me, &listed);
        if viewer.is_none() {
            tracing::warn!(
                "MISP did not say which organisation {name:?} belongs to: the live views show \
                 them only what every organisation may see"
            );
        }
        Ok(Verified {
            name,
            misp_id,
            viewer,
        })
    }

    /// MISP's own login form: fetch it for its anti-forgery tokens, post the credentials, and on
    /// the redirect MISP gives after a good login, read `/users/view/me.json` and the sharing
    /// groups MISP shows the user with that session.
    async fn form_login(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> Result<(Value, Option<Value>), LoginError> {
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
        let me = read_json(r).await;
        let sgs = match &me {
            Ok(m) if dashboard_access(m) => self.sharing_groups(client, None).await,
            _ => Ok(None),
        };
        // The MISP session was only needed for those answers: end it, so that no session of
        // the user's stays open in MISP on the dashboard's behalf.
        if let Err(e) = client.get(self.url("/users/logout")).send().await {
            tracing::debug!("logging out of MISP after the credentials check failed: {e}");
        }
        Ok((me?, sgs?))
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

    const SECRET: &str = "a test secret of at least 32 characters";

    fn guard(attempts: u32) -> crate::config::HttpGuard {
        crate::config::HttpGuard {
            login_attempts_per_minute: attempts,
            ..Default::default()
        }
    }

    fn auth(secret: &str) -> Auth {
        Auth::from_config(&cfg(secret), &guard(5))
            .expect("ok")
            .expect("on")
    }

    #[test]
    fn default_or_short_secrets_are_refused() {
        assert!(matches!(
            Auth::from_config(&cfg(DEFAULT_SECRET), &guard(5)),
            Err(AuthSetupError::DefaultSecret)
        ));
        assert!(matches!(
            Auth::from_config(&cfg("0123456789abcdef0123456789abcde"), &guard(5)),
            Err(AuthSetupError::ShortSecret(31))
        ));
        assert!(Auth::from_config(&cfg(SECRET), &guard(5))
            .expect("ok")
            .is_some());
    }

    #[test]
    fn session_cookies_are_signed_tokens() {
        let a = auth(SECRET);
        let token = "ab".repeat(32);
        let set = a.signed_header(a.build(SESSION_COOKIE, token.clone(), true));
        assert!(
            set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Strict"),
            "{set}"
        );
        let pair = set.split(';').next().expect("pair");
        let digest = a.token_digest(&[pair]).expect("genuine");
        assert_eq!(digest, hex::encode(Sha256::digest(token.as_bytes())));
        // Another secret does not accept it, a tampered or bare value is refused.
        let b = auth("another test secret of 32 characters or more");
        assert!(b.token_digest(&[pair]).is_none());
        assert!(a.token_digest(&[&pair.replace("abab", "abac")]).is_none());
        assert!(a.token_digest(&[&format!("session={token}")]).is_none());
    }

    #[test]
    fn csrf_token_must_match_its_cookie() {
        let a = auth(SECRET);
        let set = a.csrf_cookie("abc123", false);
        let pair = set.split(';').next().expect("pair");
        assert!(a.csrf_ok(&[pair], "abc123"));
        assert!(!a.csrf_ok(&[pair], "other"));
        assert!(!a.csrf_ok(&["csrf=abc123"], "abc123"));
    }

    #[test]
    fn attempts_are_limited_per_address_and_per_account() {
        let a = Auth::from_config(&cfg(SECRET), &guard(3))
            .expect("ok")
            .expect("on");
        let ip: IpAddr = [127, 0, 0, 9].into();
        let allowed = (0..10)
            .filter(|i| a.attempt_allowed(ip, &format!("user{i}")).is_ok())
            .count();
        assert_eq!(allowed, 3);
        let refused = a.attempt_allowed(ip, "x").expect_err("over");
        assert_eq!(refused.what, "address");
        assert!(refused.retry_after_secs >= 1);
        // One account from many addresses, whatever the case of its name.
        let tries: Vec<_> = (0..5u8)
            .map(|i| {
                a.attempt_allowed([10, 0, 0, i].into(), if i % 2 == 0 { "Eve" } else { "eve" })
            })
            .collect();
        assert_eq!(tries.iter().filter(|t| t.is_ok()).count(), 3);
        assert_eq!(tries[4].as_ref().expect_err("over").what, "account");
        // API-key logins (no account name) are limited by address only.
        assert!(a.attempt_allowed([10, 0, 1, 1].into(), "").is_ok());
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
