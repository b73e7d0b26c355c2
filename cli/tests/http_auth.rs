//! Login through MISP with `[Auth] auth_enabled`, against a small local HTTP server that
//! answers like MISP's endpoints (a **stand-in for MISP**, which cannot run here): its login
//! form with CakePHP anti-forgery tokens, the redirect after a good login, and
//! `/users/view/me.json` by session or API key.

mod common;
mod http_support;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::*;
use http_support::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const API_KEY: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Default)]
struct Misp {
    /// session cookie -> logged-in user
    sessions: Mutex<HashMap<String, String>>,
    next: Mutex<u32>,
}

fn me(user: &str) -> Value {
    let access = match user {
        "alice@example.org" => json!(true),
        "carol@example.org" => json!("1"),
        _ => json!(false),
    };
    json!({"User": {"email": user, "disabled": false}, "Role": {"name": "User"},
           "UserSetting": {"dashboard_access": access}})
}

fn cake_cookie(h: &HeaderMap) -> Option<String> {
    h.get("cookie")?
        .to_str()
        .ok()?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("CAKEPHP=").map(str::to_string))
}

async fn login_form(State(m): State<Arc<Misp>>) -> Response {
    let n = {
        let mut g = m.next.lock().expect("lock");
        *g += 1;
        *g
    };
    let html = r#"<html><form action="/users/login" id="UserLoginForm" method="post">
<input type="hidden" name="_method" value="POST"/>
<input type="hidden" name="data[_Token][key]" value="tok-key-1" id="Token1"/>
<input type="email" name="data[User][email]"/><input type="password" name="data[User][password]"/>
<input type="hidden" name="data[_Token][fields]" value="fields%3A1" id="TokenFields"/>
<input type="hidden" name="data[_Token][unlocked]" value="" id="TokenUnlocked"/>
<input type="hidden" name="data[_Token][debug]" value="dbg" id="TokenDebug"/></form></html>"#;
    (
        [("set-cookie", format!("CAKEPHP=s{n}; path=/; HttpOnly"))],
        html,
    )
        .into_response()
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let d = |s: &str| {
                let s = s.replace('+', " ");
                let b = s.as_bytes();
                let mut out = Vec::new();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'%' && i + 2 < b.len() {
                        if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                            out.push(x);
                            i += 3;
                            continue;
                        }
                    }
                    out.push(b[i]);
                    i += 1;
                }
                String::from_utf8_lossy(&out).into_owned()
            };
            (d(k), d(v))
        })
        .collect()
}

async fn login_post(State(m): State<Arc<Misp>>, h: HeaderMap, body: String) -> Response {
    let f = form(&body);
    let Some(cookie) = cake_cookie(&h) else {
        return (StatusCode::FORBIDDEN, "no session").into_response();
    };
    let tokens_ok = f.get("_method").map(String::as_str) == Some("POST")
        && f.get("data[_Token][key]").map(String::as_str) == Some("tok-key-1")
        && f.get("data[_Token][fields]").map(String::as_str) == Some("fields%3A1")
        && f.get("data[_Token][unlocked]").map(String::as_str) == Some("")
        && f.get("data[_Token][debug]").map(String::as_str) == Some("dbg");
    if !tokens_ok {
        return (StatusCode::BAD_REQUEST, "The request has been black-holed").into_response();
    }
    let user = f.get("data[User][email]").cloned().unwrap_or_default();
    let pass = f.get("data[User][password]").cloned().unwrap_or_default();
    let good = matches!(
        (user.as_str(), pass.as_str()),
        ("alice@example.org", "correct horse") | ("bob@example.org", "bob-pw")
    );
    if good {
        m.sessions.lock().expect("lock").insert(cookie, user);
        (StatusCode::FOUND, [("location", "/users/routeafterlogin")]).into_response()
    } else {
        (StatusCode::OK, "<html>login failed</html>").into_response()
    }
}

async fn me_json(State(m): State<Arc<Misp>>, h: HeaderMap) -> Response {
    if h.get("authorization").and_then(|v| v.to_str().ok()) == Some(API_KEY) {
        return axum::Json(me("carol@example.org")).into_response();
    }
    let user = cake_cookie(&h).and_then(|c| m.sessions.lock().expect("lock").get(&c).cloned());
    match user {
        Some(u) => axum::Json(me(&u)).into_response(),
        None => (
            StatusCode::FORBIDDEN,
            "{\"message\": \"Authentication failed\"}",
        )
            .into_response(),
    }
}

/// Starts the MISP stand-in on a free loopback port; it lives as long as the test process.
fn start_misp() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/users/login", get(login_form).post(login_post))
                .route("/users/view/me.json", get(me_json))
                .with_state(Arc::new(Misp::default()));
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(l, app).await;
        });
    });
    port
}

fn auth_setup(misp_port: u16, secret: &str) -> ServerSetup {
    ServerSetup {
        auth: format!(
            "auth_enabled = True\nmisp_fqdn = http://127.0.0.1:{misp_port}\nssl_verify = True\nsession_secret = {secret}\nsession_cookie_samesite = Strict\n"
        ),
        args: vec!["--login-attempts-per-minute".into(), "5".into()],
        ..Default::default()
    }
}

fn set_cookies(r: &reqwest::blocking::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

fn cookie_pair(set: &[String], name: &str) -> Option<String> {
    set.iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
}

/// GET /login: the CSRF cookie and the token of the form.
fn login_page(c: &reqwest::blocking::Client, base: &str) -> (String, String, Vec<String>) {
    let r = c.get(format!("{base}/login")).send().expect("login page");
    assert_eq!(r.status(), 200);
    let set = set_cookies(&r);
    let csrf = cookie_pair(&set, "csrf").expect("csrf cookie");
    let body = r.text().expect("body");
    let at = body
        .find("name=\"csrf_token\" value=\"")
        .expect("token field")
        + 25;
    let token = body[at..at + body[at..].find('"').expect("end")].to_string();
    (csrf, token, set)
}

fn post_login(
    c: &reqwest::blocking::Client,
    base: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> reqwest::blocking::Response {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect();
    c.post(format!("{base}/login"))
        .header("Cookie", cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .expect("post login")
}

/// Posts the test user's right credentials with a valid form token.
fn post_alice(
    c: &reqwest::blocking::Client,
    base: &str,
    cookie: &str,
    token: &str,
) -> reqwest::blocking::Response {
    post_login(
        c,
        base,
        cookie,
        &[
            ("csrf_token", token),
            ("username", "alice@example.org"),
            ("password", "correct horse"),
        ],
    )
}

#[test]
fn login_through_misp() {
    let misp = start_misp();
    let redis = Redis::start();

    // The default secret is refused when auth is on.
    let dir = tmpdir("auth-default");
    let cfg = write_server_config(
        &dir,
        redis.port,
        free_port(),
        &auth_setup(misp, "**Change_Me**"),
    );
    server_refuses_to_start(&cfg, &dir.join("log"), "session_secret");

    let server = start_server(
        redis.port,
        &auth_setup(misp, "a-test-secret-0f9e8d7c6b5a"),
        "auth",
    );
    let base = server.base("http");
    let c = client();

    // Without a session: API 401, pages to the login form; login, health and static open.
    let r = c.get(format!("{base}/_getTopCoord")).send().expect("get");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = c
        .get(format!("{base}/_logs"))
        .header("Accept", "text/event-stream")
        .send()
        .expect("get");
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{base}/"))
        .header("Accept", "text/html")
        .send()
        .expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    for open in [
        "/healthz",
        "/static/style.css",
        "/error_page?error_message=x",
    ] {
        assert_eq!(
            c.get(format!("{base}{open}")).send().expect("get").status(),
            200,
            "{open}"
        );
    }

    // The form: a CSRF token bound to an HttpOnly, SameSite cookie (not Secure over HTTP).
    let (csrf, token, set) = login_page(&c, &base);
    let csrf_set = set.iter().find(|s| s.starts_with("csrf=")).expect("csrf");
    assert!(
        csrf_set.contains("HttpOnly") && csrf_set.contains("SameSite=Strict"),
        "{csrf_set}"
    );
    assert!(!csrf_set.contains("Secure"), "{csrf_set}");

    // No token, or a token of another form: refused before MISP is asked.
    let r = post_login(
        &c,
        &base,
        "",
        &[
            ("username", "alice@example.org"),
            ("password", "correct horse"),
        ],
    );
    assert_eq!(r.status(), 400);
    let r = post_login(
        &c,
        &base,
        &csrf,
        &[
            ("csrf_token", "forged"),
            ("username", "alice@example.org"),
            ("password", "correct horse"),
        ],
    );
    assert_eq!(r.status(), 400);

    // Good credentials: a signed session cookie, then the API answers.
    let r = post_login(
        &c,
        &base,
        &csrf,
        &[
            ("csrf_token", &token),
            ("username", "alice@example.org"),
            ("password", "correct horse"),
            ("submit", "Sign In"),
        ],
    );
    assert_eq!(r.status(), 303, "{:?}", r.headers());
    assert_eq!(r.headers()["location"], "/");
    let set = set_cookies(&r);
    let session_set = set
        .iter()
        .find(|s| s.starts_with("session="))
        .expect("session cookie");
    assert!(
        session_set.contains("HttpOnly")
            && session_set.contains("SameSite=Strict")
            && session_set.contains("Path=/"),
        "{session_set}"
    );
    assert!(!session_set.contains("Secure"));
    let session = cookie_pair(&set, "session").expect("session");
    let r = c
        .get(format!("{base}/_getTopCoord"))
        .header("Cookie", &session)
        .send()
        .expect("get");
    assert_eq!(r.status(), 200);
    let tampered = session.replace("alice", "mallory");
    let r = c
        .get(format!("{base}/_getTopCoord"))
        .header("Cookie", &tampered)
        .send()
        .expect("get");
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{base}/login"))
        .header("Cookie", &session)
        .send()
        .expect("get");
    assert_eq!(r.status(), 303, "a signed-in user is sent to the dashboard");

    // Bad password, and a user MISP does not grant dashboard access: back to the form.
    for (user, pw, msg) in [
        ("alice@example.org", "wrong", "does not match"),
        (
            "bob@example.org",
            "bob-pw",
            "does not have dashboard access",
        ),
    ] {
        let r = post_login(
            &c,
            &base,
            &csrf,
            &[("csrf_token", &token), ("username", user), ("password", pw)],
        );
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
        assert!(loc.starts_with("/login?auth_error=True"), "{loc}");
        assert!(loc.replace("%20", " ").contains(msg), "{loc}");
        assert!(cookie_pair(&set_cookies(&r), "session").is_none());
    }

    // An API key instead of credentials (username left empty).
    let r = post_login(
        &c,
        &base,
        &csrf,
        &[
            ("csrf_token", &token),
            ("username", ""),
            ("password", API_KEY),
        ],
    );
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    assert!(cookie_pair(&set_cookies(&r), "session").is_some());

    // Five attempts a minute from one address: the sixth is refused.
    let r = post_alice(&c, &base, &csrf, &token);
    assert_eq!(r.status(), 303);
    let r = post_alice(&c, &base, &csrf, &token);
    assert_eq!(r.status(), 429);

    // Logout removes the session cookie.
    let r = c
        .get(format!("{base}/logout"))
        .header("Cookie", &session)
        .send()
        .expect("logout");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let cleared = set_cookies(&r)
        .into_iter()
        .find(|s| s.starts_with("session="))
        .expect("cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[test]
fn session_cookies_are_secure_under_tls() {
    let misp = start_misp();
    let redis = Redis::start();
    let mut setup = auth_setup(misp, "another-test-secret-1a2b3c");
    setup.server = "ssl = True\n".into();
    setup.args.push("--self-signed".into());
    let server = start_server(redis.port, &setup, "auth-tls");
    let base = server.base("https");
    let c = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (csrf, token, set) = login_page(&c, &base);
    assert!(set
        .iter()
        .any(|s| s.starts_with("csrf=") && s.contains("Secure")));
    let r = post_alice(&c, &base, &csrf, &token);
    assert_eq!(r.status(), 303);
    let set = set_cookies(&r);
    assert!(
        set.iter()
            .any(|s| s.starts_with("session=") && s.contains("Secure") && s.contains("HttpOnly")),
        "{set:?}"
    );
}
