//! Whether the live views follow MISP's rules (`[ACL]`), and whether the MISP account the
//! server re-checks sessions with can read what the rules need: other users (their
//! organisation and role) and every sharing group with its members.

use super::Check;
use crate::config::Config;
use std::time::Duration;

const ID: &str = "access-control";
const MISP_TIMEOUT: Duration = Duration::from_secs(10);

/// The line, or `None` with login off and access control not asked for (nothing to say).
pub(super) fn check(cfg: &Config) -> Option<Check> {
    let login = cfg.auth.auth_enabled;
    if !cfg.acl.enabled {
        return login.then(|| {
            Check::pass(
                ID,
                "off ([ACL] enabled = False): every signed-in user sees every live row and map \
                 point, whatever MISP would show them (remove the setting to follow MISP's rules)",
            )
        });
    }
    if !login {
        return Some(Check::warn(
            ID,
            "[ACL] enabled is set but login is off: there is no signed-in user to apply MISP's \
             rules for, and everyone sees everything",
            "turn login on ([Auth] auth_enabled = True, with misp_fqdn and a session_secret)",
        ));
    }
    let rules = crate::acl::RULES_FOLLOWED;
    let Some(key) = cfg.http.misp_api_key.as_deref() else {
        return Some(Check::warn(
            ID,
            format!(
                "on, following {rules}; without a site admin's key, users' organisations and \
                 sharing groups are read only at login: a user moved or removed from a sharing \
                 group keeps seeing its data until the session ends"
            ),
            "set [mispdash] misp_api_key to a MISP site admin's API key, so sessions are \
             re-checked every session_recheck_seconds",
        ));
    };
    Some(match account(cfg, key) {
        Ok((who, groups)) => Check::pass(
            ID,
            format!(
                "on, following {rules}; the re-check account {who} is a site admin and reads \
                 {groups} sharing group(s) with their members"
            ),
        ),
        Err(AccountProblem::Unreachable(e)) => Check::warn(
            ID,
            format!(
                "on, following {rules}; MISP at {} did not answer: {e}",
                cfg.auth.misp_fqdn
            ),
            "re-checks fail meanwhile (sessions keep what login read): check [Auth] misp_fqdn \
             and that MISP answers from this machine",
        ),
        Err(AccountProblem::Refused) => Check::fail(
            ID,
            "MISP refused [mispdash] misp_api_key",
            "use a valid API key of a MISP site admin (Administration → List Auth Keys)",
        ),
        Err(AccountProblem::NotSiteAdmin(who)) => Check::fail(
            ID,
            format!(
                "the re-check account {who} is not a site admin: MISP shows it neither other \
                 users nor the sharing groups it is not in, so re-checks cannot follow users"
            ),
            "set [mispdash] misp_api_key to a site admin's key",
        ),
        Err(AccountProblem::NoSharingGroups(why)) => Check::fail(
            ID,
            format!("the re-check account cannot list MISP's sharing groups: {why}"),
            "give the key's user the site admin role, and check that MISP answers \
             /sharing_groups.json",
        ),
    })
}

enum AccountProblem {
    Unreachable(String),
    Refused,
    NotSiteAdmin(String),
    NoSharingGroups(String),
}

/// Who the key's user is and how many sharing groups it reads.
fn account(cfg: &Config, key: &str) -> Result<(String, usize), AccountProblem> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AccountProblem::Unreachable(e.to_string()))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(MISP_TIMEOUT)
            .danger_accept_invalid_certs(!cfg.auth.ssl_verify)
            .build()
            .map_err(|e| AccountProblem::Unreachable(e.to_string()))?;
        let base = cfg.auth.misp_fqdn.trim_end_matches('/');
        let get = |path: &str| {
            client
                .get(format!("{base}{path}"))
                .header("Authorization", key)
                .header("Accept", "application/json")
                .send()
        };
        let r = get("/users/view/me.json")
            .await
            .map_err(|e| AccountProblem::Unreachable(e.to_string()))?;
        if matches!(r.status().as_u16(), 401 | 403) {
            return Err(AccountProblem::Refused);
        }
        let body = r
            .bytes()
            .await
            .map_err(|e| AccountProblem::Unreachable(e.to_string()))?;
        let me: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| AccountProblem::Unreachable(format!("me.json: {e}")))?;
        let who = me
            .pointer("/User/email")
            .and_then(|v| v.as_str())
            .unwrap_or("(no email)")
            .to_string();
        let admin =
            crate::acl::Viewer::from_misp(&me, &Default::default()).is_some_and(|v| v.site_admin);
        if !admin {
            return Err(AccountProblem::NotSiteAdmin(who));
        }
        let r = get("/sharing_groups.json")
            .await
            .map_err(|e| AccountProblem::Unreachable(e.to_string()))?;
        if !r.status().is_success() {
            return Err(AccountProblem::NoSharingGroups(format!(
                "/sharing_groups.json answered {}",
                r.status()
            )));
        }
        let body = r
            .bytes()
            .await
            .map_err(|e| AccountProblem::NoSharingGroups(e.to_string()))?;
        let list: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| AccountProblem::NoSharingGroups(e.to_string()))?;
        Ok((who, crate::acl::listed_sharing_groups(&list).len()))
    })
}
