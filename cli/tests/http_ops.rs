//! Operations and hardening of the server: security headers, static files with caching, 400
//! JSON errors for bad input, `/healthz`, `/status`, `/metrics`, the access log, and TLS with
//! HTTP/2 (real sockets, a real Redis, certificates generated for the test).

mod common;
mod http_support;

use common::*;
use http_support::*;
use serde_json::Value;
use std::time::Duration;

fn get_json(c: &reqwest::blocking::Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().expect("get");
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url}: not JSON: {text}")),
    )
}

#[test]
fn headers_errors_static_files_and_operations() {
    let mut redis = Redis::start();
    // A feed's health hash and the buffer, as the ingest side writes them.
    let mut c = redis.conn(3).expect("redis");
    redis::cmd("HSET")
        .arg("MISPDASH_FEED:misp1")
        .arg(&[
            ("connected", "1"),
            ("messages", "42"),
            ("last_message", "1795175990.5"),
            ("last_keepalive", "1795175980.0"),
            ("endpoint", "tcp://127.0.0.1:50000"),
            ("connects", "3"),
            ("disconnects", "2"),
            ("disconnected_since", "0"),
        ])
        .query::<()>(&mut c)
        .expect("hset");
    redis::cmd("RPUSH")
        .arg("bufferList")
        .arg(&["a", "b", "c"])
        .query::<()>(&mut c)
        .expect("rpush");
    redis::cmd("RPUSH")
        .arg("bufferList:dead")
        .arg("x")
        .query::<()>(&mut c)
        .expect("rpush");
    let server = start_server(redis.port, &ServerSetup::default(), "ops");
    let base = server.base("http");
    let http = client();

    // Security headers on pages and JSON; JSON is JSON, never HTML.
    for path in [
        "/",
        "/geo",
        "/contrib?org=%3Cscript%3E",
        "/_getTopCoord",
        "/_get_log_head",
    ] {
        let r = http.get(format!("{base}{path}")).send().expect("get");
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        let ct = h["content-type"].to_str().expect("ct").to_string();
        let body = r.text().expect("body");
        if path.starts_with("/_") {
            assert_eq!(ct, "application/json", "{path}");
        } else {
            assert!(ct.starts_with("text/html"));
            // Scripts only from files (the CSP allows no inline script), and reflected input
            // escaped: every `<script` of a page is the tag of a module file.
            let scripts = body.matches("<script").count();
            let from_files = body
                .matches("<script type=\"module\" crossorigin src=\"/assets/")
                .count();
            assert_eq!(scripts, from_files, "inline or injected script: {body}");
        }
    }
    // Static files: embedded, cacheable, revalidated with the ETag.
    let r = http
        .get(format!("{base}/static/style.css"))
        .send()
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .expect("cc")
        .contains("max-age"));
    let etag = r.headers()["etag"].clone();
    let r = http
        .get(format!("{base}/static/style.css"))
        .header("If-None-Match", etag)
        .send()
        .expect("get");
    assert_eq!(r.status(), 304);
    let r = http.get(format!("{base}/favicon.ico")).send().expect("get");
    assert_eq!(r.headers()["content-type"], "image/vnd.microsoft.icon");

    // Bad input: 400 with a JSON error, never a 500.
    for path in [
        "/_getTrendingEvents?topNum=abc",
        "/_getTrendingTags?topNum=0",
        "/_getTrendingCategs?dateS=0&dateE=1795176000",
        "/_getCoordsByRadius?dateStart=1795089600&dateEnd=1795176000&centerLat=95&centerLon=2&radius=10",
        "/_getCoordsByRadius?dateStart=1795089600&dateEnd=1795176000&centerLat=48&centerLon=2&radius=-5",
        "/_getCoordsByRadius?dateStart=0&dateEnd=1795176000&centerLat=48&centerLon=2&radius=5",
        "/_getOrgRank",
    ] {
        let (status, v) = get_json(&http, &format!("{base}{path}"));
        assert_eq!(status, 400, "{path}: {v}");
        assert!(v["error"].is_string(), "{path}: {v}");
    }
    let long = "x".repeat(5000);
    let (status, _) = get_json(&http, &format!("{base}/_getOrgRank?org={long}"));
    assert_eq!(status, 400);
    let (status, _) = get_json(&http, &format!("{base}/no/such/route"));
    assert_eq!(status, 404);
    let r = http
        .post(format!("{base}/_getTopCoord"))
        .send()
        .expect("post");
    assert_eq!(r.status(), 405);
    let v: Value = serde_json::from_str(&r.text().expect("body")).expect("405 is JSON");
    assert_eq!(v["status"], 405, "{v}");
    // Every refusal of the HTTP layer is JSON too.
    let huge_target = format!("{base}/_getOrgRank?org={}", "y".repeat(20_000));
    let (status, v) = get_json(&http, &huge_target);
    assert_eq!(status, 414, "{v}");
    assert!(v["error"].is_string());
    let r = http
        .get(format!("{base}/_getHitMap"))
        .header("x-padding", "z".repeat(70_000))
        .send()
        .expect("get");
    assert_eq!(r.status(), 431);
    let v: Value = serde_json::from_str(&r.text().expect("body")).expect("431 is JSON");
    assert_eq!(v["status"], 431);
    let (status, v) = get_json(&http, &format!("{base}/static/%FF%FE"));
    assert!(status == 400 || status == 404, "{status}: {v}");
    assert!(
        v["error"].is_string(),
        "a path that is not UTF-8 gets JSON: {v}"
    );
    let r = http
        .head(format!("{base}/_getHitMap"))
        .send()
        .expect("head");
    assert_eq!(r.status(), 200);
    // What the original lets through unbounded still works within the bounds.
    let (status, v) = get_json(
        &http,
        &format!("{base}/_getTrendingEvents?dateS=1763640000&dateE=1795176000"),
    );
    assert_eq!(status, 200);
    assert_eq!(v.as_array().map(Vec::len), Some(366));

    // /status: the feed, the buffer, the GeoIP database, the streams.
    let (status, s) = get_json(&http, &format!("{base}/status"));
    assert_eq!(status, 200);
    let feed = &s["feeds"][0];
    assert_eq!(feed["name"], "misp1");
    assert_eq!(feed["connected"], true);
    assert_eq!(feed["messages"], 42);
    assert_eq!(feed["last_message"], 1795175990.5);
    assert_eq!(feed["last_keepalive"], 1795175980.0);
    assert_eq!(feed["connects"], 3);
    assert_eq!(feed["disconnects"], 2);
    assert_eq!(feed["disconnected_since"], Value::Null, "connected");
    assert_eq!(s["buffer"]["length"], 3);
    assert_eq!(s["buffer"]["dead_letters"], 1);
    assert_eq!(s["geoip"]["loaded"], false);
    assert!(s["geoip"]["error"].is_string());
    assert_eq!(s["redis"]["reachable"], true);

    // /metrics: Prometheus text with the request counters and the ingest gauges.
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .expect("get")
        .text()
        .expect("text");
    assert!(
        text.contains("mispdash_http_requests_total{route=\"/_getTopCoord\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("mispdash_http_request_duration_seconds_bucket"));
    assert!(text.contains("mispdash_buffer_length 3"));
    assert!(text.contains("mispdash_dead_letters 1"));
    assert!(text.contains("mispdash_feed_connected{feed=\"misp1\"} 1"));
    assert!(text.contains("mispdash_redis_up 1"));

    // One access-log line per request.
    let log = server.process.log_text();
    assert!(
        log.lines().any(|l| l.contains("mispdash::access")
            && l.contains("GET /_getTopCoord")
            && l.contains(" 200 ")),
        "{log}"
    );

    // /healthz follows Redis.
    let (status, _) = get_json(&http, &format!("{base}/healthz"));
    assert_eq!(status, 200);
    redis.kill();
    let down = wait_until(Duration::from_secs(15), || {
        http.get(format!("{base}/healthz"))
            .send()
            .map(|r| r.status() == 503)
            .unwrap_or(false)
    });
    assert!(down, "healthz reports Redis down");
    let (status, v) = get_json(&http, &format!("{base}/_getTrendingDisc"));
    assert_eq!(status, 503, "{v}");
}

#[test]
fn tls_with_a_configured_certificate_and_http2() {
    let redis = Redis::start();
    let dir = tmpdir("tls-cert");
    let (setup, pem) = tls_setup(&dir);
    let server = start_server(redis.port, &setup, "tls");
    let root = reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem");
    let base = server.base("https");
    // HTTP/2 negotiated by ALPN.
    let h2 = reqwest::blocking::Client::builder()
        .add_root_certificate(root.clone())
        .tls_built_in_root_certs(false)
        .build()
        .expect("client");
    let r = h2.get(format!("{base}/healthz")).send().expect("https");
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert!(r.headers().contains_key("strict-transport-security"));
    // HTTP/1.1 still served.
    let h1 = reqwest::blocking::Client::builder()
        .add_root_certificate(root)
        .tls_built_in_root_certs(false)
        .http1_only()
        .build()
        .expect("client");
    let r = h1
        .get(format!("{base}/_getTopCoord"))
        .send()
        .expect("https");
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.text().expect("body"), "[]");
    // A client that does not trust the certificate is refused.
    let untrusting = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .expect("client");
    assert!(untrusting.get(format!("{base}/healthz")).send().is_err());
    // Plain HTTP on the TLS port gets no answer.
    assert!(client()
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send()
        .is_err());
}

#[test]
fn tls_without_certificate_needs_an_explicit_self_signed() {
    let redis = Redis::start();
    let setup = ServerSetup {
        server: "ssl = True\n".into(),
        ..Default::default()
    };
    let dir = tmpdir("tls-refused");
    let cfg = write_server_config(&dir, redis.port, free_port(), &setup);
    server_refuses_to_start(&cfg, &dir.join("log"), "ssl_cert");

    let setup = ServerSetup {
        server: "ssl = True\n".into(),
        args: vec!["--self-signed".into()],
        ..Default::default()
    };
    let server = start_server(redis.port, &setup, "tls-self");
    let c = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let r = c
        .get(format!("{}/healthz", server.base("https")))
        .send()
        .expect("https");
    assert_eq!(r.status(), 200);
    assert!(server.process.log_text().contains("self-signed"));
}

/// Without `misp_web_url` there is no MISP to serve organisation logos: a logo of our own
/// stands in (not `http://0.0.0.0/...`); `/error_page` without a message says something useful.
#[test]
fn logos_without_misp_web_url_and_a_bare_error_page() {
    let redis = Redis::start();
    let mut c = redis.conn(2).expect("redis");
    redis::cmd("ZADD")
        .arg("CONTRIB_DAY:20261120")
        .arg(5)
        .arg("Org A")
        .query::<()>(&mut c)
        .expect("zadd");
    let setup = ServerSetup {
        no_misp_web_url: true,
        ..ServerSetup::default()
    };
    let server = start_server(redis.port, &setup, "no-web-url");
    let base = server.base("http");
    let http = client();
    let (status, v) = get_json(&http, &format!("{base}/_getTopContributor"));
    assert_eq!(status, 200);
    assert_eq!(v[0]["org"], "Org A", "{v}");
    assert_eq!(v[0]["logo_path"], "/static/org.svg");
    let r = http
        .get(format!("{base}/static/org.svg"))
        .send()
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let page = http
        .get(format!("{base}/error_page"))
        .send()
        .expect("get")
        .text()
        .expect("text");
    assert!(page.contains("no details were given"), "{page}");
    assert!(!page.contains("False"));
}

/// After Redis was away, `/healthz` must say so, and say it is back within seconds of its
/// return (a stale connection once kept it "unavailable" for about two minutes).
#[test]
fn healthz_recovers_within_seconds_after_redis_comes_back() {
    let mut redis = Redis::start();
    let server = start_server(redis.port, &ServerSetup::default(), "healthz-back");
    let base = server.base("http");
    let http = client();
    let healthz = |http: &reqwest::blocking::Client| get_json(http, &format!("{base}/healthz")).0;
    assert_eq!(healthz(&http), 200);
    redis.kill();
    for _ in 0..3 {
        assert_eq!(healthz(&http), 503, "Redis is down");
        std::thread::sleep(Duration::from_millis(500));
    }
    redis.restart();
    let back = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || healthz(&http) == 200),
        "/healthz still unavailable 10 s after Redis came back"
    );
    eprintln!(
        "/healthz answered ok {:?} after Redis came back",
        back.elapsed()
    );
}

/// `/_getTopOrglogin` is computed in a Redis script (see `web::users`); its answer must be the
/// straight computation's: points per login day over the 8 days up to the date, ties in
/// first-seen order, organisations without points counted as 0, and a day with more logins
/// than one `ZMSCORE` piece (5,000).
#[test]
fn top_org_login_is_the_straight_computation() {
    let redis = Redis::start();
    let mut c = redis.conn(2).expect("redis");
    // The 8 days up to 2026-11-20 (noon UTC: the same day in any time zone), newest first.
    let days: Vec<String> = (13..=20).rev().map(|d| format!("202611{d:02}")).collect();
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    let mut pipe = redis::pipe();
    for (i, day) in days.iter().enumerate() {
        let orgs = if i == 3 { 12_000 } else { 40 };
        for o in 0..orgs {
            if next() % 3 == 0 {
                continue;
            }
            let org = format!("Org {o:05}");
            pipe.cmd("ZADD")
                .arg(format!("LOGIN_ORG:{day}"))
                .arg(next() % 4)
                .arg(&org)
                .ignore();
            // Whole, fractional, missing: ties come from the small whole scores.
            match next() % 4 {
                0 => {}
                1 => {
                    pipe.cmd("ZADD")
                        .arg(format!("CONTRIB_DAY:{day}"))
                        .arg(f64::from(next() % 1000) / 7.0)
                        .arg(&org)
                        .ignore();
                }
                _ => {
                    pipe.cmd("ZADD")
                        .arg(format!("CONTRIB_DAY:{day}"))
                        .arg(next() % 3)
                        .arg(&org)
                        .ignore();
                }
            }
        }
    }
    pipe.query::<()>(&mut c).expect("fill");

    // The straight computation, as the original does it.
    let mut acc: Vec<(String, i64, f64)> = Vec::new();
    for day in &days {
        let orgs: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("LOGIN_ORG:{day}"))
            .arg(0)
            .arg(-1)
            .query(&mut c)
            .expect("zrange");
        for org in orgs {
            let pts: Option<f64> = redis::cmd("ZSCORE")
                .arg(format!("CONTRIB_DAY:{day}"))
                .arg(&org)
                .query(&mut c)
                .expect("zscore");
            match acc.iter_mut().find(|a| a.0 == org) {
                Some(a) => {
                    a.1 += 1;
                    a.2 += pts.unwrap_or(0.0);
                }
                None => acc.push((org, 1, 0.0 + pts.unwrap_or(0.0))),
            }
        }
    }
    let mut expected: Vec<(String, f64)> =
        acc.into_iter().map(|(o, n, p)| (o, p / n as f64)).collect();
    expected.sort_by(|a, b| b.1.partial_cmp(&a.1).expect("no NaN"));
    expected.truncate(12);
    let expected = serde_json::json!(expected
        .iter()
        .map(|(o, r)| serde_json::json!([o, r]))
        .collect::<Vec<_>>());
    let ties = expected
        .as_array()
        .expect("array")
        .windows(2)
        .filter(|w| w[0][1] == w[1][1])
        .count();
    assert!(ties > 0, "the data makes ties: {expected}");

    let server = start_server(redis.port, &ServerSetup::default(), "orglogin");
    let http = client();
    let (status, got) = get_json(
        &http,
        &format!("{}/_getTopOrglogin?date=1795176000", server.base("http")),
    );
    assert_eq!(status, 200);
    assert_eq!(got, expected);
    // No login at all in those days (2020-01-01): an empty list.
    let (status, got) = get_json(
        &http,
        &format!("{}/_getTopOrglogin?date=1577880000", server.base("http")),
    );
    assert_eq!((status, got), (200, serde_json::json!([])));
}
