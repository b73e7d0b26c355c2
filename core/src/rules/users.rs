//! Logins, counted from MISP's audit log (`misp_json_audit`).
//!
//! MISP has published logins in three shapes over its versions: the classic `Log` entry
//! (`{"Log": {"action": "login", "org": ..}, "action": "log"}`, what the original reads), the
//! newer `AuditLog` entry (`{"AuditLog": {"action": "login", ..}}`), and a flat entry without
//! wrapper (`{"action": "login", "org": .., ..}`). The org's name sits in `org`, or in an
//! `Organisation`/`Org` object's `name`.

use super::Ctx;
use crate::clock::day_of_epoch;
use crate::keys;
use crate::message::{get, text};
use crate::store::{Db, Op};
use serde_json::{Map, Value};

pub enum Audit {
    Login { org: String },
    LoginWithoutOrg,
    NotALogin,
}

fn org_of(entry: &Value, outer: &Map<String, Value>) -> Option<String> {
    let direct = get(entry, "org").and_then(|v| match v {
        Value::Object(_) => get(v, "name").and_then(text),
        other => text(other),
    });
    direct
        .or_else(|| {
            get(entry, "Organisation")
                .and_then(|o| get(o, "name"))
                .and_then(text)
        })
        .or_else(|| {
            get(entry, "Org")
                .and_then(|o| get(o, "name"))
                .and_then(text)
        })
        .or_else(|| {
            outer
                .get("Organisation")
                .and_then(|o| get(o, "name"))
                .and_then(text)
        })
        .or_else(|| outer.get("Org").and_then(|o| get(o, "name")).and_then(text))
}

fn is_login(entry: &Value) -> bool {
    get(entry, "action").and_then(Value::as_str) == Some("login")
}

pub fn login_from_audit(b: &Map<String, Value>) -> Audit {
    let outer = Value::Object(b.clone());
    let (entry, org_missing_default) = if let Some(log) = b.get("Log") {
        // Classic shape: only with the outer action "log", and `org` defaults to "" as in the
        // original.
        if b.get("action").and_then(Value::as_str) != Some("log") {
            return Audit::NotALogin;
        }
        (log, Some(String::new()))
    } else if let Some(log) = b.get("AuditLog") {
        (log, None)
    } else if b.contains_key("action") && !b.contains_key("Log") {
        (&outer, None)
    } else {
        return Audit::NotALogin;
    };
    if !is_login(entry) {
        return Audit::NotALogin;
    }
    match org_of(entry, b) {
        Some(org) => Audit::Login { org },
        None => match (get(entry, "org"), org_missing_default) {
            (None, Some(default)) => Audit::Login { org: default },
            _ => Audit::LoginWithoutOrg,
        },
    }
}

/// Records a login at dispatch time (the original does not use MISP's `created`).
pub fn add_login(ctx: &mut Ctx, org: &str) {
    let ts = ctx.now_epoch;
    ctx.op(Op::ZAdd {
        db: Db::Data,
        key: keys::login_timestamp(org),
        member: ts.to_string(),
        score: ts as f64,
    });
    if let Some(day) = day_of_epoch(ts as f64) {
        ctx.op(Op::ZIncrBy {
            db: Db::Data,
            key: keys::login_org(&day),
            member: org.to_string(),
            by: 1.0,
        });
    }
    ctx.op(Op::SAdd {
        db: Db::Data,
        key: keys::LOGIN_ALL_ORG.into(),
        member: org.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(v: Value) -> Option<String> {
        match login_from_audit(v.as_object().expect("object")) {
            Audit::Login { org } => Some(org),
            _ => None,
        }
    }

    #[test]
    fn three_shapes() {
        assert_eq!(
            shape(json!({"Log": {"action": "login", "org": "CIRCL"}, "action": "log"})),
            Some("CIRCL".into())
        );
        assert_eq!(
            shape(
                json!({"AuditLog": {"action": "login", "request_type": 0}, "Organisation": {"name": "CIRCL"}})
            ),
            Some("CIRCL".into())
        );
        assert_eq!(
            shape(json!({"action": "login", "org": {"name": "CIRCL"}, "email": "a@b"})),
            Some("CIRCL".into())
        );
        assert_eq!(
            shape(json!({"Log": {"action": "edit", "org": "X"}, "action": "log"})),
            None
        );
        assert_eq!(shape(json!({"action": "log"})), None);
        assert_eq!(
            shape(json!({"Log": {"action": "login"}, "action": "log"})),
            Some(String::new())
        );
    }
}
