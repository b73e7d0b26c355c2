//! A **stand-in for MISP** (which cannot run here), shared by the tests that log in: a small
//! local HTTP server answering like MISP's endpoints: its login form with CakePHP
//! anti-forgery tokens, the redirect after a good login, `/users/logout`, `/users/view/me.json`
//! by session or API key, `/users/view/<id>.json` with a site admin's key, and
//! `/sharing_groups.json` (all groups for the site admin's key, else those of the caller's
//! organisation, as MISP's `authorizedIds` decides).
#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const API_KEY: &str = "0123456789abcdef0123456789abcdef01234567";
/// A site admin's key, for the dashboard's re-checks of sessions.
pub const ADMIN_KEY: &str = "fedcba9876543210fedcba9876543210fedcba98";
pub const SECRET: &str = "a-test-secret-0f9e8d7c6b5a-4e3d2c1b0a99";

#[derive(Default)]
pub struct Misp {
    /// session cookie -> logged-in user
    pub sessions: Mutex<HashMap<String, String>>,
    pub next: Mutex<u32>,
    /// MISP sessions logged out.
    pub logged_out: Mutex<Vec<String>>,
    /// Users whose dashboard_access the admin removed.
    pub revoked: Mutex<Vec<String>>,
    /// Re-checks asked with the admin key.
    pub rechecks: Mutex<u32>,
    /// How long a re-check's answer takes (a slow MISP).
    pub recheck_delay: Mutex<std::time::Duration>,
    /// Users moved to another organisation than [`org_of`]'s.
    pub moved: Mutex<HashMap<String, u64>>,
    /// Sharing groups: id -> member organisations (set by [`start_misp_with`]).
    pub sharing_groups: Mutex<Vec<(u64, Vec<u64>)>>,
}

/// Each test user's organisation: alice in 1, bob in 2, carol (the API key's user) in 3.
pub fn org_of(m: &Misp, user: &str) -> u64 {
    if let Some(o) = m.moved.lock().expect("lock").get(user) {
        return *o;
    }
    match user {
        "alice@example.org" => 1,
        "bob@example.org" => 2,
        _ => 3,
    }
}

/// The sharing groups the stand-in starts with: 7 with organisations 1 and 2, 8 with 1 only.
pub const SHARING_GROUPS: [(u64, &[u64]); 2] = [(7, &[1, 2]), (8, &[1])];

pub const USERS: [(&str, &str); 3] = [
    ("alice@example.org", "11"),
    ("bob@example.org", "12"),
    ("carol@example.org", "13"),
];

pub fn me(m: &Misp, user: &str) -> Value {
    let access = match user {
        _ if m.revoked.lock().expect("lock").iter().any(|u| u == user) => json!(false),
        "alice@example.org" => json!(true),
        "carol@example.org" => json!("1"),
        _ => json!(false),
    };
    let id = USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map_or("99", |(_, id)| id);
    let org = org_of(m, user);
    json!({"User": {"id": id, "email": user, "disabled": false, "org_id": org.to_string()},
           "Role": {"name": "User", "perm_site_admin": false},
           "Organisation": {"id": org.to_string(), "name": format!("Org {org}")},
           "UserSetting": {"dashboard_access": access}})
}

/// `/sharing_groups.json` in MISP's shape, as `org` sees it (`None`: a site admin, all).
fn sharing_groups_answer(m: &Misp, org: Option<u64>) -> Value {
    let list: Vec<Value> = m
        .sharing_groups
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, orgs)| org.is_none_or(|o| orgs.contains(&o)))
        .map(|(id, orgs)| {
            json!({"SharingGroup": {"id": id.to_string(), "name": format!("SG {id}"), "active": true},
                   "SharingGroupOrg": orgs.iter().map(|o| json!({"org_id": o.to_string()})).collect::<Vec<_>>(),
                   "SharingGroupServer": [{"all_orgs": false, "server_id": "0"}]})
        })
        .collect();
    json!({"response": list})
}

pub async fn sharing_groups_json(State(m): State<Arc<Misp>>, h: HeaderMap) -> Response {
    let key = h.get("authorization").and_then(|v| v.to_str().ok());
    if key == Some(ADMIN_KEY) {
        return axum::Json(sharing_groups_answer(&m, None)).into_response();
    }
    let user = if key == Some(API_KEY) {
        Some("carol@example.org".to_string())
    } else {
        cake_cookie(&h).and_then(|c| m.sessions.lock().expect("lock").get(&c).cloned())
    };
    match user {
        Some(u) => axum::Json(sharing_groups_answer(&m, Some(org_of(&m, &u)))).into_response(),
        None => (
            StatusCode::FORBIDDEN,
            "{\"message\": \"Authentication failed\"}",
        )
            .into_response(),
    }
}

pub fn cake_cookie(h: &HeaderMap) -> Option<String> {
    h.get("cookie")?
        .to_str()
        .ok()?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("CAKEPHP=").map(str::to_string))
}

pub async fn login_form(State(m): State<Arc<Misp>>) -> Response {
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

pub fn form(body: &str) -> HashMap<String, String> {
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

pub async fn login_post(State(m): State<Arc<Misp>>, h: HeaderMap, body: String) -> Response {
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

pub async fn me_json(State(m): State<Arc<Misp>>, h: HeaderMap) -> Response {
    if h.get("authorization").and_then(|v| v.to_str().ok()) == Some(API_KEY) {
        return axum::Json(me(&m, "carol@example.org")).into_response();
    }
    if h.get("authorization").and_then(|v| v.to_str().ok()) == Some(ADMIN_KEY) {
        return axum::Json(json!({"User": {"id": "1", "email": "admin@example.org",
            "org_id": "1", "disabled": false}, "Role": {"name": "admin", "perm_site_admin": true},
            "Organisation": {"id": "1"}, "UserSetting": {}}))
        .into_response();
    }
    let user = cake_cookie(&h).and_then(|c| m.sessions.lock().expect("lock").get(&c).cloned());
    match user {
        Some(u) => axum::Json(me(&m, &u)).into_response(),
        None => (
            StatusCode::FORBIDDEN,
            "{\"message\": \"Authentication failed\"}",
        )
            .into_response(),
    }
}

pub async fn logout_misp(State(m): State<Arc<Misp>>, h: HeaderMap) -> Response {
    if let Some(c) = cake_cookie(&h) {
        m.sessions.lock().expect("lock").remove(&c);
        m.logged_out.lock().expect("lock").push(c);
    }
    (StatusCode::FOUND, [("location", "/users/login")]).into_response()
}

/// `/users/view/<id>.json`: a site admin may read any user.
pub async fn view_user(
    State(m): State<Arc<Misp>>,
    axum::extract::Path(file): axum::extract::Path<String>,
    h: HeaderMap,
) -> Response {
    if h.get("authorization").and_then(|v| v.to_str().ok()) != Some(ADMIN_KEY) {
        return (
            StatusCode::FORBIDDEN,
            "{\"message\": \"Authentication failed\"}",
        )
            .into_response();
    }
    *m.rechecks.lock().expect("lock") += 1;
    let delay = *m.recheck_delay.lock().expect("lock");
    tokio::time::sleep(delay).await;
    let id = file.trim_end_matches(".json");
    match USERS.iter().find(|(_, i)| *i == id) {
        Some((user, _)) => axum::Json(me(&m, user)).into_response(),
        None => (StatusCode::NOT_FOUND, "{\"message\": \"Invalid user\"}").into_response(),
    }
}

/// Starts the MISP stand-in on a free loopback port; it lives as long as the test process.
pub fn start_misp() -> u16 {
    start_misp_with().0
}

/// [`start_misp`], with a handle on the stand-in's state.
pub fn start_misp_with() -> (u16, Arc<Misp>) {
    let state = Arc::new(Misp::default());
    *state.sharing_groups.lock().expect("lock") = SHARING_GROUPS
        .iter()
        .map(|(id, orgs)| (*id, orgs.to_vec()))
        .collect();
    let shared = state.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/users/login", get(login_form).post(login_post))
                .route("/users/logout", get(logout_misp))
                .route("/users/view/me.json", get(me_json))
                .route("/users/view/{file}", get(view_user))
                .route("/sharing_groups.json", get(sharing_groups_json))
                .with_state(shared);
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(l, app).await;
        });
    });
    (port, state)
}
