//! From a buffer entry to a topic and a parsed body, and the forgiving field access the rules
//! use.
//!
//! MISP sends ids and timestamps as strings or numbers depending on the version and the code
//! path, and the dashboard must keep every document it passes through byte-compatible with the
//! original, so bodies stay `serde_json::Value` (order-preserving) and the rules read them
//! through the helpers here rather than by indexing raw JSON.

use serde_json::Value;
use thiserror::Error;

/// Why a buffer entry cannot be handled at all; it goes to the dead-letter list with this.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Reject {
    #[error("buffer entry is not a JSON envelope {{\"zmq_name\", \"content\"}}: {0}")]
    Envelope(String),
    #[error("frame has no space between topic and body")]
    NoSpace,
    #[error("body of topic {topic:?} is not valid JSON: {reason}")]
    BadJson { topic: String, reason: String },
    #[error("body of topic {topic:?} is not a JSON object")]
    NotAnObject { topic: String },
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
}

/// What the subscriber wrapped around a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub zmq_name: String,
    pub content: String,
    /// Set by `mispdash backfill` (`"mispdash_backfilled_at"`, epoch seconds): the message
    /// was read from MISP's API afterwards, and this is when it happened in MISP. Its counts
    /// go to that instant, and it is not live: nothing of it is published or cached as such.
    pub backfilled_at: Option<f64>,
    /// With `backfilled_at`: the message fills a gap of the live feed (`"mispdash_gap_fill"`),
    /// so it is shown live as it would have been.
    pub gap_fill: bool,
}

/// The envelope field `mispdash backfill` adds (see [`Envelope::backfilled_at`]).
pub const BACKFILLED_AT: &str = "mispdash_backfilled_at";
/// The envelope field of a gap fill (see [`Envelope::gap_fill`]).
pub const GAP_FILL: &str = "mispdash_gap_fill";

/// Parses `{"zmq_name": ..., "content": ...}`, as written by our subscriber, the original's
/// `zmq_subscriber.py`, or the original's `diagnostic.py` probe.
pub fn parse_envelope(raw: &str) -> Result<Envelope, Reject> {
    // The usual envelope (two string fields, each once) straight into its struct; anything
    // else (numbers, duplicate keys, extra fields...) takes the general path below, which
    // gives the same result for the usual case but builds a whole tree first.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Plain {
        zmq_name: String,
        content: String,
    }
    if let Ok(Plain { zmq_name, content }) = serde_json::from_str::<Plain>(raw) {
        return Ok(Envelope {
            zmq_name,
            content,
            backfilled_at: None,
            gap_fill: false,
        });
    }
    let v: Value = serde_json::from_str(raw).map_err(|e| Reject::Envelope(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Reject::Envelope("not an object".into()))?;
    let text = |k: &str| -> Result<String, Reject> {
        match obj.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(py_str(other)),
            None => Err(Reject::Envelope(format!("no {k:?}"))),
        }
    };
    Ok(Envelope {
        zmq_name: text("zmq_name")?,
        content: text("content")?,
        backfilled_at: obj
            .get(BACKFILLED_AT)
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite() && *t > 0.0),
        gap_fill: obj.get(GAP_FILL).and_then(Value::as_bool) == Some(true),
    })
}

/// Splits a frame at its first space into topic and body text.
pub fn split_frame(content: &str) -> Result<(&str, &str), Reject> {
    content.split_once(' ').ok_or(Reject::NoSpace)
}

/// Parses a body the way Python's `json.loads` does for the documents MISP sends (duplicate
/// keys: last value wins in the first key's position; leading/trailing white space allowed).
pub fn parse_body(topic: &str, body: &str) -> Result<Value, Reject> {
    serde_json::from_str(body).map_err(|e| Reject::BadJson {
        topic: topic.to_string(),
        reason: e.to_string(),
    })
}

/// Python's `str()` of a JSON value, for values the original formats into keys or members.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(_) => crate::pyjson::to_string(v),
        _ => crate::pyjson::to_string(v),
    }
}

/// A text-like field: strings as they are, numbers as Python prints them; anything else
/// (null, objects, lists) is not usable as a key or member.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) => Some(py_str(v)),
        _ => None,
    }
}

/// Python's `float(x)` for a MISP timestamp given as a number or a numeric string.
pub fn epoch(v: &Value) -> Option<f64> {
    let f = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => parse_py_float(s)?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// The subset of Python's `float(str)` grammar that numeric MISP fields use: surrounding white
/// space, sign, digits, decimal point, exponent, underscores between digits.
fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    let cleaned: String = t.chars().filter(|c| *c != '_').collect();
    let lower = cleaned.to_ascii_lowercase();
    // Rust accepts "inf"/"nan" too; Python does as well, but they make no date.
    if lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

/// Field access on objects, `None` when absent or when the value is not an object.
pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|m| m.get(key))
}

/// `v[k1][k2]...`, each step through an object.
pub fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |cur, k| get(cur, k))
}

/// Python truthiness of `len(x) > 0` for a field that should be a list.
pub fn non_empty(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_and_frame() {
        let e =
            parse_envelope(r#"{"zmq_name": "misp1", "content": "misp_json_self {\"uptime\": 3}"}"#)
                .expect("valid");
        assert_eq!(e.zmq_name, "misp1");
        let (topic, body) = split_frame(&e.content).expect("has space");
        assert_eq!(topic, "misp_json_self");
        assert_eq!(parse_body(topic, body).expect("json"), json!({"uptime": 3}));
        assert_eq!(split_frame("misp_json_self"), Err(Reject::NoSpace));
        assert!(parse_envelope("[1]").is_err());
    }

    #[test]
    fn epochs_accept_strings_and_numbers() {
        assert_eq!(epoch(&json!("1700000000")), Some(1.7e9));
        assert_eq!(epoch(&json!(1700000000)), Some(1.7e9));
        assert_eq!(epoch(&json!(" 17.5 ")), Some(17.5));
        assert_eq!(epoch(&json!("yesterday")), None);
        assert_eq!(epoch(&json!(null)), None);
        assert_eq!(epoch(&json!("nan")), None);
    }

    #[test]
    fn python_str_of_values() {
        assert_eq!(py_str(&json!(5)), "5");
        assert_eq!(py_str(&json!(1.0)), "1.0");
        assert_eq!(text(&json!(null)), None);
    }
}
