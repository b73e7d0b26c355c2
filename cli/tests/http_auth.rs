//! Login through MISP with `[Auth] auth_enabled`, against the **stand-in for MISP** of
//! `misp_standin` (MISP cannot run here).

mod common;
mod http_support;
mod misp_standin;

use common::*;
use http_support::*;
use misp_standin::*;
use std::time::Duration;

/// Login on, over plain HTTP, with `session_cookie_secure = False` (the Debian package's
/// choice: a plain-HTTP server behind a TLS proxy), so cookies follow the request's scheme.
fn auth_setup(misp_port: u16, secret: &str) -> ServerSetup {
    ServerSetup {
        auth: format!(
            "auth_enabled = True\nmisp_fqdn = http://127.0.0.1:{misp_port}\nssl_verify = True\nsession_secret = {secret}\nsession_cookie_samesite = Strict\nsession_cookie_secure = False\n"
        ),
        args: vec!["--login-attempts-per-minute".into(), "5".into()],
        ..Default::default()
    }
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

    // So is a secret shorter than 32 characters.
    let dir = tmpdir("auth-short");
    let cfg = write_server_config(
        &dir,
        redis.port,
        free_port(),
        &auth_setup(misp, "0123456789abcdef0123456789abcde"),
    );
    let log = server_refuses_to_start(&cfg, &dir.join("log"), "session_secret");
    assert!(log.contains("at least 32"), "{log}");

    let server = start_server(redis.port, &auth_setup(misp, SECRET), "auth");
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
    // One character of the signed token changed.
    let mut tampered = session.clone();
    let last = tampered.pop().expect("a value");
    tampered.push(if last == '0' { '1' } else { '0' });
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
    for (user, pw, code, msg) in [
        (
            "alice@example.org",
            "wrong",
            "credentials",
            "does not match",
        ),
        (
            "bob@example.org",
            "bob-pw",
            "access",
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
        assert_eq!(loc, format!("/login?auth_error={code}"));
        assert!(cookie_pair(&set_cookies(&r), "session").is_none());
        let form = c.get(format!("{base}{loc}")).send().expect("form");
        assert!(form.text().expect("body").contains(msg), "{loc}");
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
    let mut setup = auth_setup(misp, "another-test-secret-1a2b3c-4d5e6f7a8b9c");
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

/// Whether the login form's cookie is `Secure`, asked with these extra headers.
fn csrf_secure(c: &reqwest::blocking::Client, base: &str, headers: &[(&str, &str)]) -> bool {
    let mut req = c.get(format!("{base}/login"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().expect("login page");
    let set = set_cookies(&r);
    let csrf = set.iter().find(|s| s.starts_with("csrf=")).expect("csrf");
    csrf.contains("; Secure")
}

/// `session_cookie_secure` does what it says: with True (the default) the cookies are `Secure`
/// even over plain HTTP, and a login whose form cookie the browser therefore kept back is told
/// why (not a loop back to the form); with False they are `Secure` when the request came over
/// HTTPS, which a trusted proxy tells with `X-Forwarded-Proto` (from anyone else the header is
/// ignored).
#[test]
fn secure_cookies_follow_the_setting_and_a_trusted_proxys_scheme() {
    let misp = start_misp();
    let redis = Redis::start();
    let c = client();

    let mut setup = auth_setup(misp, SECRET);
    setup.auth = setup.auth.replace("session_cookie_secure = False\n", "");
    let server = start_server(redis.port, &setup, "auth-secure-default");
    let base = server.base("http");
    assert!(csrf_secure(&c, &base, &[]));
    let (_, token, _) = login_page(&c, &base);
    // What a browser sends after dropping the HTTPS-only cookie: the form without it.
    let r = post_login(
        &c,
        &base,
        "",
        &[
            ("csrf_token", &token),
            ("username", "alice@example.org"),
            ("password", "correct horse"),
        ],
    );
    assert_eq!(r.status(), 400);
    let text = r.text().expect("body");
    assert!(
        text.contains("plain HTTP") && text.contains("session_cookie_secure"),
        "{text}"
    );
    drop(server);

    let mut setup = auth_setup(misp, SECRET);
    setup.mispdash = "trusted_proxies = 127.0.0.1\n".into();
    let server = start_server(redis.port, &setup, "auth-secure-proxy");
    let base = server.base("http");
    assert!(!csrf_secure(&c, &base, &[]));
    assert!(csrf_secure(&c, &base, &[("X-Forwarded-Proto", "https")]));
    assert!(!csrf_secure(&c, &base, &[("X-Forwarded-Proto", "http")]));
    // A login through the proxy: the session cookie is Secure too.
    let r = c
        .get(format!("{base}/login"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .expect("form");
    let csrf = cookie_pair(&set_cookies(&r), "csrf").expect("csrf");
    let body = r.text().expect("body");
    let at = body.find("name=\"csrf_token\" value=\"").expect("token") + 25;
    let token = &body[at..at + 32];
    let r = c
        .post(format!("{base}/login"))
        .header("Cookie", &csrf)
        .header("X-Forwarded-Proto", "https")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf_token={token}&username=alice%40example.org&password=correct+horse"
        ))
        .send()
        .expect("login");
    assert_eq!(r.status(), 303);
    let set = set_cookies(&r);
    assert!(
        set.iter()
            .any(|s| s.starts_with("session=") && s.contains("; Secure")),
        "{set:?}"
    );
    drop(server);

    // Not a trusted proxy: the header is anyone's to write, and is ignored.
    let server = start_server(
        redis.port,
        &auth_setup(misp, SECRET),
        "auth-secure-untrusted",
    );
    let base = server.base("http");
    assert!(!csrf_secure(&c, &base, &[("X-Forwarded-Proto", "https")]));
}

/// Links cannot put words on the dashboard's pages: `/login` and `/error_page` show fixed
/// texts chosen by a code; a login body announced too large is refused at once (not after
/// the read timeout); `/healthz` says up or down, not Redis's error text.
#[test]
fn links_choose_texts_by_code_and_large_bodies_are_refused_at_once() {
    let misp = start_misp();
    let redis = Redis::start();
    let server = start_server(redis.port, &auth_setup(misp, SECRET), "auth-texts");
    let base = server.base("http");
    let c = client();
    let phish = "Call+%2B1-555-0100+to+restore+your+account";
    let r = c
        .get(format!(
            "{base}/login?auth_error=True&auth_error_message={phish}"
        ))
        .send()
        .expect("login");
    let text = r.text().expect("body");
    assert!(
        text.contains("Login failed") && !text.contains("555-0100"),
        "{text}"
    );
    let r = c
        .get(format!(
            "{base}/error_page?error_message={phish}&error_code=7"
        ))
        .send()
        .expect("error page");
    assert_eq!(r.status(), 200);
    let text = r.text().expect("body");
    assert!(
        text.contains("no details were given") && !text.contains("555-0100"),
        "{text}"
    );
    let text = c
        .get(format!("{base}/error_page?error_code=2"))
        .send()
        .expect("error page")
        .text()
        .expect("body");
    assert!(text.contains("MISP cannot be reached"), "{text}");

    // 10 MB announced, nothing sent: 413 at once.
    let started = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    std::io::Write::write_all(
        &mut s,
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\r\n",
    )
    .expect("send");
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut s, &mut head).expect("answer");
    assert_eq!(&head, b"HTTP/1.1 413");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Redis down: unavailable, and nothing of its error text.
    drop(redis);
    let r = c.get(format!("{base}/healthz")).send().expect("healthz");
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = serde_json::from_str(&r.text().expect("body")).expect("json");
    assert_eq!(
        v,
        serde_json::json!({"status": "unavailable", "redis": "down"})
    );
}

/// Logs alice in through a fresh login form; returns her session cookie (`session=...`).
fn login_alice(c: &reqwest::blocking::Client, base: &str) -> String {
    let (csrf, token, _) = login_page(c, base);
    let r = post_alice(c, base, &csrf, &token);
    assert_eq!(r.status(), 303, "{:?}", r.headers());
    cookie_pair(&set_cookies(&r), "session").expect("session cookie")
}

fn status_with(c: &reqwest::blocking::Client, url: &str, cookie: &str) -> u16 {
    c.get(url)
        .header("Cookie", cookie)
        .send()
        .expect("get")
        .status()
        .as_u16()
}

/// Sessions live in Redis: logout ends one for good (also across a restart, which keeps the
/// others), MISP's session is logged out right after the credentials check and its cookie
/// never reaches the log (at trace level), authenticated answers are `private, no-store`, and
/// with a site admin's key a user who lost `dashboard_access` is logged out at the re-check.
#[test]
fn sessions_are_kept_server_side_and_revocable() {
    let (misp, stand_in) = start_misp_with();
    let redis = Redis::start();
    let mut setup = auth_setup(misp, SECRET);
    setup.mispdash = format!("misp_api_key = {ADMIN_KEY}\nsession_recheck_seconds = 5\n");
    setup.log_level = Some("trace".into());
    let mut server = start_server(redis.port, &setup, "auth-sessions");
    let base = server.base("http");
    let c = client();
    let api = format!("{base}/_getTopCoord");

    let first = login_alice(&c, &base);
    let second = login_alice(&c, &base);
    assert_ne!(first, second);
    // MISP's sessions, opened only to check the password, were logged out at once.
    assert_eq!(stand_in.logged_out.lock().expect("lock").len(), 2);
    assert!(stand_in.sessions.lock().expect("lock").is_empty());

    // Authenticated answers stay out of caches.
    for (path, accept) in [("/_getTopCoord", "application/json"), ("/", "text/html")] {
        let r = c
            .get(format!("{base}{path}"))
            .header("Cookie", &first)
            .header("Accept", accept)
            .send()
            .expect("get");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "private, no-store", "{path}");
    }
    // The login form and health checks are not a user's own.
    let r = c.get(format!("{base}/healthz")).send().expect("get");
    assert_ne!(r.headers()["cache-control"], "private, no-store");

    // Redis holds a digest of each token, never the token.
    let mut data = redis.conn(2).expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("MISPDASH_SESSION:*")
        .query(&mut data)
        .expect("keys");
    assert_eq!(keys.len(), 2, "{keys:?}");
    let token = first.trim_start_matches("session=");
    for k in &keys {
        let v: String = redis::cmd("GET").arg(k).query(&mut data).expect("get");
        assert!(v.contains("alice@example.org") && !v.contains(token), "{v}");
        let ttl: i64 = redis::cmd("TTL").arg(k).query(&mut data).expect("ttl");
        assert!(ttl > 0, "sessions expire");
    }

    // A live stream of the first session, open when it logs out.
    let stream = c
        .get(format!("{base}/_maps"))
        .header("Cookie", &first)
        .header("Accept", "text/event-stream")
        .send()
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stream = stream;
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut sink);
        let _ = tx.send(());
    });

    // Logout ends the first session; the second is untouched.
    let r = c
        .get(format!("{base}/logout"))
        .header("Cookie", &first)
        .send()
        .expect("logout");
    assert_eq!(r.status(), 303);
    assert_eq!(status_with(&c, &api, &first), 401);
    assert_eq!(status_with(&c, &api, &second), 200);
    // Its open stream ends too, at the next check (every re-check interval, here 5 s).
    assert!(
        rx.recv_timeout(Duration::from_secs(15)).is_ok(),
        "the stream outlived its session"
    );

    // A restart brings back neither the ended session nor loses the other.
    server.process.kill9();
    let log = std::fs::read_to_string(server.dir.join("server.log")).expect("log");
    let server = start_server(redis.port, &setup, "auth-sessions-2");
    let base = server.base("http");
    let api = format!("{base}/_getTopCoord");
    assert_eq!(status_with(&c, &api, &first), 401);
    assert_eq!(status_with(&c, &api, &second), 200);

    // Even at trace level, MISP's session cookie and the password stay out of the log.
    assert!(log.contains("login of \"alice@example.org\""), "{log}");
    assert!(
        !log.contains("CAKEPHP=s"),
        "MISP's session cookie in the log"
    );
    assert!(!log.contains("correct horse"), "a password in the log");

    // MISP's admin removes alice's dashboard access: the next re-check ends her session.
    assert!(
        revoke_alice(&stand_in, &c, &api, &second, Duration::from_secs(15)),
        "the session outlived the re-check"
    );
    assert!(*stand_in.rechecks.lock().expect("lock") >= 1);
    assert!(server
        .process
        .log_text()
        .contains("no longer grants it dashboard access"));
}

/// The viewer (`viewer` of its Redis record) of `user`'s only session.
fn viewer_of(redis: &Redis, user: &str) -> serde_json::Value {
    let mut data = redis.conn(2).expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("MISPDASH_SESSION:*")
        .query(&mut data)
        .expect("keys");
    let records: Vec<serde_json::Value> = keys
        .iter()
        .filter_map(|k| redis::cmd("GET").arg(k).query::<String>(&mut data).ok())
        .filter_map(|v| serde_json::from_str(&v).ok())
        .filter(|v: &serde_json::Value| v["user"] == user)
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    records[0]["viewer"].clone()
}

/// Who a user is in MISP's terms is read at login, by password (with MISP's session, before
/// it is logged out) and by API key: the organisation, the site admin flag, the sharing groups
/// MISP lists for the user. At each re-check (with the site admin's key) it follows MISP: a
/// user removed from a sharing group, then moved to another organisation, is described so.
#[test]
fn who_the_user_is_in_misp_is_read_at_login_and_followed_at_rechecks() {
    let (misp, stand_in) = start_misp_with();
    let redis = Redis::start();
    let mut setup = auth_setup(misp, SECRET);
    setup.mispdash = format!("misp_api_key = {ADMIN_KEY}\nsession_recheck_seconds = 2\n");
    setup.args = vec![];
    let server = start_server(redis.port, &setup, "auth-viewer");
    let base = server.base("http");
    let c = client();
    let alice = login_alice(&c, &base);
    assert_eq!(
        viewer_of(&redis, "alice@example.org"),
        serde_json::json!({"org_id": 1, "site_admin": false, "sharing_groups": [7, 8]})
    );
    assert_eq!(stand_in.logged_out.lock().expect("lock").len(), 1);
    let (csrf, token, _) = login_page(&c, &base);
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
    assert_eq!(
        viewer_of(&redis, "carol@example.org"),
        serde_json::json!({"org_id": 3, "site_admin": false, "sharing_groups": []})
    );

    // Organisation 1 leaves sharing group 8.
    stand_in.sharing_groups.lock().expect("lock")[1].1.clear();
    let api = format!("{base}/_getTopCoord");
    let follows = |want: serde_json::Value| {
        wait_until(Duration::from_secs(15), || {
            // A request makes the due re-check start.
            status_with(&c, &api, &alice);
            viewer_of(&redis, "alice@example.org") == want
        })
    };
    assert!(
        follows(serde_json::json!({"org_id": 1, "site_admin": false, "sharing_groups": [7]})),
        "{}",
        viewer_of(&redis, "alice@example.org")
    );
    // Alice moves to organisation 2 (a member of 7 only).
    stand_in
        .moved
        .lock()
        .expect("lock")
        .insert("alice@example.org".into(), 2);
    stand_in.sharing_groups.lock().expect("lock")[0].1 = vec![2];
    assert!(
        follows(serde_json::json!({"org_id": 2, "site_admin": false, "sharing_groups": [7]})),
        "{}",
        viewer_of(&redis, "alice@example.org")
    );
    assert!(server
        .process
        .log_text()
        .contains("MISP describes \"alice@example.org\" differently now"));
}

/// MISP's admin removes alice's dashboard access; whether her session `cookie` then ends
/// (`api` answers 401) within `limit`, at a re-check.
fn revoke_alice(
    stand_in: &Misp,
    c: &reqwest::blocking::Client,
    api: &str,
    cookie: &str,
    limit: Duration,
) -> bool {
    stand_in
        .revoked
        .lock()
        .expect("lock")
        .push("alice@example.org".into());
    wait_until(limit, || status_with(c, api, cookie) == 401)
}

/// MISP taking 7 s to answer a re-check (longer than the 5 s a request has for Redis): the
/// session's requests meanwhile are answered as before (not 503), and MISP is asked once for
/// them all; once MISP says the user lost access, the session ends.
#[test]
fn a_slow_misp_recheck_holds_up_nothing() {
    let (misp, stand_in) = start_misp_with();
    let redis = Redis::start();
    let mut setup = auth_setup(misp, SECRET);
    setup.mispdash = format!("misp_api_key = {ADMIN_KEY}\nsession_recheck_seconds = 2\n");
    let server = start_server(redis.port, &setup, "auth-slow-recheck");
    let base = server.base("http");
    let c = client();
    let api = format!("{base}/_getTopCoord");
    let session = login_alice(&c, &base);
    *stand_in.recheck_delay.lock().expect("lock") = Duration::from_secs(7);
    std::thread::sleep(Duration::from_secs(3));
    let before = *stand_in.rechecks.lock().expect("lock");
    for _ in 0..9 {
        let t0 = std::time::Instant::now();
        assert_eq!(status_with(&c, &api, &session), 200);
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        *stand_in.rechecks.lock().expect("lock") - before,
        1,
        "one re-check at a time"
    );
    *stand_in.recheck_delay.lock().expect("lock") = Duration::ZERO;
    assert!(
        revoke_alice(&stand_in, &c, &api, &session, Duration::from_secs(20)),
        "the session outlived the re-check"
    );
}

/// One HTTP/1.1 request on a kept-alive raw connection; the answer's status, `None` when the
/// connection was closed (its body read to the end, so the next request starts clean).
fn roundtrip(s: &mut std::net::TcpStream, path: &str, cookie: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nCookie: {cookie}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &got[head_end..];
        let done = if chunked {
            body.ends_with(b"0\r\n\r\n")
        } else {
            body.len() >= length
        };
        if done {
            return Some(status);
        }
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Every place taken by anonymous connections that each send a request every second (no login
/// needed for `/healthz`), and more of them arriving: each newcomer takes the place of the
/// idlest anonymous connection, while a signed-in user's connection, idle the longest of
/// all, stays open and answers her next request.
#[test]
fn signed_in_connections_keep_their_places() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let misp = start_misp();
    let redis = Redis::start();
    let mut setup = auth_setup(misp, SECRET);
    setup.mispdash =
        "connection_timeout = 30\nmax_connections = 20\nmax_connections_per_address = 100\n".into();
    let server = start_server(redis.port, &setup, "auth-places");
    let base = server.base("http");
    let session = login_alice(&client(), &base);
    let api = "/_getTopCoord";
    let mut alice = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    alice
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(roundtrip(&mut alice, api, &session), Some(200));

    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let port = server.port;
    let trickler = || {
        let (stop, closed) = (stop.clone(), closed.clone());
        std::thread::spawn(move || {
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                closed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            while !stop.load(Ordering::Relaxed) {
                if roundtrip(&mut s, "/healthz", "none=1") != Some(200) {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    // 19 fill the places beside alice's, 10 more arrive over 3 s.
    let mut threads: Vec<_> = (0..19).map(|_| trickler()).collect();
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..10 {
        threads.push(trickler());
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        closed.load(Ordering::Relaxed) >= 9,
        "the newcomers found places by closing idle anonymous connections ({} closed)",
        closed.load(Ordering::Relaxed)
    );
    // Alice's connection was idle for about 6 s, longer than any other.
    assert_eq!(
        roundtrip(&mut alice, api, &session),
        Some(200),
        "the signed-in user's connection was closed"
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
}

/// `/metrics` is behind login when auth is on, unless `[mispdash] metrics_public`.
#[test]
fn metrics_need_a_session_unless_configured_open() {
    let misp = start_misp();
    let redis = Redis::start();
    let server = start_server(redis.port, &auth_setup(misp, SECRET), "auth-metrics");
    let c = client();
    let url = format!("{}/metrics", server.base("http"));
    assert_eq!(c.get(&url).send().expect("get").status(), 401);
    let session = login_alice(&c, &server.base("http"));
    assert_eq!(status_with(&c, &url, &session), 200);

    let mut open = auth_setup(misp, SECRET);
    open.mispdash = "metrics_public = true\n".into();
    let server = start_server(redis.port, &open, "auth-metrics-open");
    let r = c
        .get(format!("{}/metrics", server.base("http")))
        .send()
        .expect("get");
    assert_eq!(r.status(), 200);
    let body = r.text().expect("body");
    assert!(body.contains("mispdash_connections_open"), "{body}");
}

/// Posts a wrong password for `user` as if forwarded for `forwarded` (when given).
fn attempt(
    c: &reqwest::blocking::Client,
    base: &str,
    form: &(String, String),
    user: &str,
    forwarded: Option<&str>,
) -> reqwest::blocking::Response {
    let mut req = c
        .post(format!("{base}/login"))
        .header("Cookie", &form.0)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf_token={}&username={user}&password=wrong",
            form.1
        ));
    if let Some(f) = forwarded {
        req = req.header("X-Forwarded-For", f);
    }
    req.send().expect("post")
}

/// Behind a configured reverse proxy each forwarded client is limited on its own; a client
/// that is not a trusted proxy cannot escape its limit with the header; an account is limited
/// whatever the address; a refusal says when to try again.
#[test]
fn login_limits_behind_a_trusted_proxy() {
    let misp = start_misp();
    let redis = Redis::start();
    let mut setup = auth_setup(misp, SECRET);
    setup.mispdash = "trusted_proxies = 127.0.0.1\n".into();
    let server = start_server(redis.port, &setup, "auth-proxy");
    let base = server.base("http");
    let via_proxy = client();
    let (csrf, token, _) = login_page(&via_proxy, &base);
    let form = (csrf, token);

    // Five a minute per forwarded address (auth_setup's limit); others are not affected.
    for i in 0..5 {
        let r = attempt(
            &via_proxy,
            &base,
            &form,
            &format!("a{i}"),
            Some("192.0.2.1"),
        );
        assert_eq!(r.status(), 303);
    }
    let r = attempt(&via_proxy, &base, &form, "a5", Some("192.0.2.1"));
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=61).contains(&retry), "{retry}");
    assert!(r.text().expect("body").contains("address"));
    let r = attempt(&via_proxy, &base, &form, "b0", Some("192.0.2.2"));
    assert_eq!(
        r.status(),
        303,
        "another forwarded client has its own limit"
    );
    // A spoofed left part does not make a new client: the proxy's right-most hop counts.
    let r = attempt(&via_proxy, &base, &form, "b1", Some("6.6.6.6, 192.0.2.1"));
    assert_eq!(r.status(), 429);

    // One account tried from many addresses.
    for i in 1..=5 {
        let r = attempt(
            &via_proxy,
            &base,
            &form,
            "victim@example.org",
            Some(&format!("198.51.100.{i}")),
        );
        assert_eq!(r.status(), 303);
    }
    let r = attempt(
        &via_proxy,
        &base,
        &form,
        "Victim@Example.org",
        Some("198.51.100.9"),
    );
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().expect("body").contains("account"));

    // From a peer that is not a trusted proxy the header is ignored.
    let direct = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().expect("ip"))
        .build()
        .expect("client");
    let (csrf, token, _) = login_page(&direct, &base);
    let form = (csrf, token);
    let codes: Vec<u16> = (0..6)
        .map(|i| {
            attempt(
                &direct,
                &base,
                &form,
                &format!("c{i}"),
                Some(&format!("203.0.113.{i}")),
            )
            .status()
            .as_u16()
        })
        .collect();
    assert_eq!(codes, [303, 303, 303, 303, 303, 429]);
}

/// Posts `user`/`password` as forwarded for `from` by the trusted proxy.
fn attempt_as(
    c: &reqwest::blocking::Client,
    base: &str,
    form: &(String, String),
    user: &str,
    password: &str,
    from: &str,
) -> u16 {
    c.post(format!("{base}/login"))
        .header("Cookie", &form.0)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Forwarded-For", from)
        .body(format!(
            "csrf_token={}&username={}&password={}",
            form.1,
            user.replace('@', "%40"),
            password.replace(' ', "+")
        ))
        .send()
        .expect("post")
        .status()
        .as_u16()
}

/// Lockouts lock attackers out, not users: eleven bad passwords for alice from one address,
/// and more from addresses she never used, leave her signing in from the address she uses;
/// the attacking address waits longer after each failure; an IPv6 /64 is one address.
#[test]
fn an_account_under_attack_lets_its_owner_in() {
    let misp = start_misp();
    let redis = Redis::start();
    let mut setup = auth_setup(misp, SECRET);
    setup.mispdash = "trusted_proxies = 127.0.0.1\n".into();
    // Enough a minute per address that the per-pair delay shows first.
    setup.args = vec!["--login-attempts-per-minute".into(), "30".into()];
    let server = start_server(redis.port, &setup, "auth-lockout");
    let base = server.base("http");
    let c = client();
    let (csrf, token, _) = login_page(&c, &base);
    let form = (csrf, token);
    let alice = "alice@example.org";

    // Alice's usual address.
    assert_eq!(
        attempt_as(&c, &base, &form, alice, "correct horse", "192.0.2.10"),
        303
    );
    // The attacker: three failures, then a delay that doubles.
    let codes: Vec<u16> = (0..11)
        .map(|_| attempt_as(&c, &base, &form, alice, "guess", "198.51.100.66"))
        .collect();
    assert_eq!(&codes[..4], &[303, 303, 303, 429], "{codes:?}");
    // Others from many addresses: the account's limit (30 a minute here) for unknown ones.
    let mut refused = false;
    for i in 0..40 {
        if attempt_as(&c, &base, &form, alice, "guess", &format!("203.0.113.{i}")) == 429 {
            refused = true;
            break;
        }
    }
    assert!(refused, "the account's limit for unknown addresses");
    // Alice from her address: in.
    assert_eq!(
        attempt_as(&c, &base, &form, alice, "correct horse", "192.0.2.10"),
        303
    );

    // One /64: each address in it counts as the same client (30 a minute).
    let codes: Vec<u16> = (1..=31)
        .map(|i| {
            attempt_as(
                &c,
                &base,
                &form,
                &format!("u{i}"),
                "x",
                &format!("2001:db8:1:2::{i:x}"),
            )
        })
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 1, "{codes:?}");
    assert_eq!(codes[30], 429);
}
