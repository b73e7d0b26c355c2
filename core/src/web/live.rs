//! The live log and map (spec `http.md` §3): row formatting of `[Dashboard] fieldname_order`,
//! and the live-log filters of the `filters` cookie (the JSON history of both caches is
//! `live_cache`'s).
//!
//! Row values are what the original's dashboard table expects: one entry per column keyed
//! `"0"`, `"1"`, …; `timestamp` fields as UTC `YYYY-MM-DD HH:MM:SS`; list fields as
//! `{"name", "data"}` with column 2's list JSON-encoded (the page parses it); composite columns
//! joined by `char_separator`, each part spelled as Python's `str()` would.

use serde_json::{Map, Value};

/// One column of the live log: a dotted path, or several joined into one cell.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    Path(Vec<String>),
    Composite(Vec<Vec<String>>),
}

/// How live-log rows are built, from `[Dashboard] fieldname_order` and `char_separator`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFormat {
    columns: Vec<Column>,
    separator: String,
}

fn split_path(s: &str) -> Vec<String> {
    s.split('.').map(str::to_string).collect()
}

impl LogFormat {
    pub fn new(fieldname_order: &Value, separator: &str) -> LogFormat {
        let columns = match fieldname_order {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::Array(parts) => {
                        Column::Composite(parts.iter().map(|p| split_path(&py_str(p))).collect())
                    }
                    other => Column::Path(split_path(&py_str(other))),
                })
                .collect(),
            _ => vec![],
        };
        LogFormat {
            columns,
            separator: separator.to_string(),
        }
    }

    /// `/_get_log_head`: one title per column, composite paths joined by `" | "`.
    pub fn header(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| match c {
                Column::Path(p) => p.join("."),
                Column::Composite(ps) => ps
                    .iter()
                    .map(|p| p.join("."))
                    .collect::<Vec<_>>()
                    .join(" | "),
            })
            .collect()
    }

    /// The row of one MISP object (`{"Event": …, "Attribute": …}`).
    pub fn row(&self, log: &impl Lookup) -> Value {
        let mut row = Map::new();
        for (i, col) in self.columns.iter().enumerate() {
            let v = match col {
                Column::Path(p) => field(log, p).unwrap_or_else(|| Value::String(String::new())),
                Column::Composite(ps) => Value::String(
                    ps.iter()
                        .map(|p| {
                            field(log, p)
                                .map(|v| py_str(&v))
                                .unwrap_or_else(|| "None".into())
                        })
                        .collect::<Vec<_>>()
                        .join(&self.separator),
                ),
            };
            row.insert(i.to_string(), v);
        }
        // Column 2 is the tag column for the page: its list travels as a JSON string.
        if let Some(Value::Object(tag)) = row.get_mut("2") {
            if let Some(data) = tag.get("data").filter(|d| d.is_array()) {
                let text = crate::pyjson::to_string(data);
                tag.insert("data".into(), Value::String(text));
            }
        }
        Value::Object(row)
    }
}

/// Access to the fields of a MISP object by dotted path.
pub trait Lookup {
    /// The JSON value at `path`, as is (`None` when a component is missing or not an object).
    fn at(&self, path: &[String]) -> Option<Value>;
}

impl Lookup for Value {
    fn at(&self, path: &[String]) -> Option<Value> {
        let mut cur = self;
        for k in path {
            cur = cur.as_object()?.get(k)?;
        }
        Some(cur.clone())
    }
}

pub(super) type RawMap<'a> = std::collections::HashMap<String, &'a serde_json::value::RawValue>;

/// A MISP object read lazily from its JSON text: only the objects on a requested path are
/// decoded. A live message carries the whole event (every attribute) while a row needs six
/// small fields; decoding all of it for every message and every cached entry is what would
/// otherwise cost the most.
pub struct LazyLog<'a> {
    top: RawMap<'a>,
}

impl<'a> LazyLog<'a> {
    /// `None` unless the text is a JSON object.
    pub fn parse(text: &'a str) -> Option<LazyLog<'a>> {
        serde_json::from_str::<RawMap<'a>>(text)
            .ok()
            .map(|top| LazyLog { top })
    }
}

impl Lookup for LazyLog<'_> {
    fn at(&self, path: &[String]) -> Option<Value> {
        let (first, rest) = path.split_first()?;
        let mut raw = *self.top.get(first)?;
        for k in rest {
            let m: RawMap<'_> = serde_json::from_str(raw.get()).ok()?;
            raw = *m.get(k)?;
        }
        serde_json::from_str(raw.get()).ok()
    }
}

/// A log whose text may not be a JSON object ([`LazyLog::parse`] gave `None`): it is read as
/// `null` then, which has no fields.
impl Lookup for Option<LazyLog<'_>> {
    fn at(&self, path: &[String]) -> Option<Value> {
        match self {
            Some(log) => log.at(path),
            None => Value::Null.at(path),
        }
    }
}

/// The value at a dotted path, shaped for display: missing or `null` is `None`; a list becomes
/// `{"name": <last component>, "data": <list>}`; a `timestamp` becomes UTC text.
fn field(log: &impl Lookup, path: &[String]) -> Option<Value> {
    let v = log.at(path)?;
    if v.is_null() {
        return None;
    }
    let cur = &v;
    let last = path.last().map(String::as_str).unwrap_or("");
    if cur.is_array() {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(last.to_string()));
        m.insert("data".into(), cur.clone());
        return Some(Value::Object(m));
    }
    if last == "timestamp" {
        if let Some(text) = utc_text(cur) {
            return Some(Value::String(text));
        }
    }
    Some(cur.clone())
}

fn utc_text(v: &Value) -> Option<String> {
    let secs = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        })?,
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// Python's `str()` of a JSON value.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a JSON value (dicts and lists as Python prints them).
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v);
    out
}

fn write_repr(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Value::Number(n) => {
            let t = n.to_string();
            if t.contains(['.', 'e', 'E']) {
                out.push_str(&crate::pyjson::float_repr(t.parse().unwrap_or(f64::NAN)));
            } else {
                out.push_str(&t);
            }
        }
        Value::String(s) => repr_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, it);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, it)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_str(out, k);
                out.push_str(": ");
                write_repr(out, it);
            }
            out.push('}');
        }
    }
}

fn repr_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// The live-log filters of the `filters` cookie: field path → wanted value(s). A value with a
/// `!` means "not equal to the value without its `!`s"; several values for one field (the page
/// writes a list when a field appears twice) pass a row equal to any wanted value and to none of
/// the refused ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters(Vec<(Vec<String>, Vec<String>)>);

impl Filters {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// From the JSON text of the cookie; anything that is not a JSON object means no filter
    /// (the original answers 500 then).
    pub fn from_json(text: &str) -> Filters {
        let Ok(Value::Object(m)) = serde_json::from_str::<Value>(text) else {
            return Filters::default();
        };
        Filters(
            m.into_iter()
                .map(|(k, v)| {
                    let vals = match v {
                        Value::Array(a) => a.iter().map(py_str).collect(),
                        other => vec![py_str(&other)],
                    };
                    (split_path(&k), vals)
                })
                .collect(),
        )
    }

    /// From the request's `Cookie` headers: the cookie `filters`, either an RFC 6265 quoted
    /// string or a percent-encoded value. A raw value with characters a cookie may not hold
    /// (what the original page writes: JSON with quotes and spaces) is ignored, as the
    /// original's web framework ignores it.
    pub fn from_cookie_headers<'a>(headers: impl Iterator<Item = &'a str>) -> Filters {
        for h in headers {
            for pair in h.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name.trim() != "filters" {
                    continue;
                }
                let value = value.trim();
                if let Some(text) = unquote_cookie(value) {
                    return Filters::from_json(&text);
                }
                if value.bytes().all(is_cookie_octet) {
                    return Filters::from_json(&super::params::percent_decode(value));
                }
                return Filters::default();
            }
        }
        Filters::default()
    }

    /// Whether a MISP object passes every filter.
    pub fn pass(&self, log: &impl Lookup) -> bool {
        self.0.iter().all(|(path, wanted)| {
            let Some(v) = field(log, path) else {
                return false;
            };
            let s = py_str(&v);
            let mut any_positive = false;
            let mut matched_positive = false;
            for w in wanted {
                if w.contains('!') {
                    if s == w.trim_matches('!') {
                        return false;
                    }
                } else {
                    any_positive = true;
                    matched_positive |= s == *w;
                }
            }
            !any_positive || matched_positive
        })
    }
}

fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// An RFC 6265 quoted cookie value with Python's backslash escapes (`\"`, `\\`, `\ooo`).
fn unquote_cookie(v: &str) -> Option<String> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let oct = &b[i + 1..(i + 4).min(b.len())];
            if oct.len() == 3 && oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                out.push((oct[0] - b'0') * 64 + (oct[1] - b'0') * 8 + (oct[2] - b'0'));
                i += 4;
            } else {
                out.push(b[i + 1]);
                i += 2;
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Whether a live entry is an attribute row (formatted) rather than passed through.
pub fn is_row_name(name: &str) -> bool {
    name == "Attribute" || name == "ObjectAttribute"
}

/// The SSE payload of one live-log message (`{"name", "log": "<json>", "zmqName"}` published
/// by the dispatcher): `{"log": <row or passed-through log>, "name", "zmqName"}` spelled as
/// `json.dumps`. Also returns the log's JSON text of attribute rows, as published, for clients
/// with filters (kept as text: re-serialising a whole event per message would cost more than
/// the rare filtering client re-parsing it).
pub fn live_payload(fmt: &LogFormat, published: &str) -> Option<(String, Option<String>)> {
    let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(published) else {
        return None;
    };
    let name = m.remove("name").unwrap_or(Value::Null);
    let zmq = m.remove("zmqName")?;
    let is_row = name.as_str().is_some_and(is_row_name);
    let (log, text) = match m.remove("log") {
        // Attribute rows are read lazily from the text; other logs (keep-alives) are small.
        Some(Value::String(s)) if is_row => (Value::Null, Some(s)),
        Some(Value::String(s)) => match serde_json::from_str(&s) {
            Ok(v) => (v, Some(s)),
            Err(_) => (Value::String(s), None),
        },
        Some(v) => (v, None),
        None => (Value::Null, None),
    };
    let (shown, raw) = if name.as_str().is_some_and(is_row_name) {
        let raw = text.or_else(|| serde_json::to_string(&log).ok());
        let row = match raw.as_deref().and_then(LazyLog::parse) {
            Some(lazy) => fmt.row(&lazy),
            None => fmt.row(&log),
        };
        (row, raw)
    } else {
        (log, None)
    };
    let mut e = Map::new();
    e.insert("log".into(), shown);
    e.insert("name".into(), name);
    e.insert("zmqName".into(), zmq);
    Some((crate::pyjson::to_string(&Value::Object(e)), raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt() -> LogFormat {
        let order: Value =
            serde_json::from_str(crate::config::DEFAULT_FIELDNAME_ORDER).expect("default");
        LogFormat::new(&order, "||")
    }

    #[test]
    fn header_joins_composites() {
        assert_eq!(
            fmt().header(),
            vec![
                "Attribute.timestamp",
                "Event.id",
                "Attribute.Tag",
                "Attribute.category",
                "Attribute.type",
                "Attribute.value | Attribute.comment"
            ]
        );
    }

    #[test]
    fn rows_format_timestamps_tags_and_composites() {
        let log = json!({
            "Event": {"id": "1234"},
            "Attribute": {"timestamp": "1714641243", "category": "Network activity",
                "type": "ip-dst", "value": "203.0.113.7",
                "Tag": [{"id": "3", "name": "tlp:white", "colour": "#ffffff"}]}
        });
        let row = fmt().row(&log);
        assert_eq!(
            row,
            json!({"0": "2024-05-02 09:14:03", "1": "1234",
                "2": {"name": "Tag", "data": "[{\"id\": \"3\", \"name\": \"tlp:white\", \"colour\": \"#ffffff\"}]"},
                "3": "Network activity", "4": "ip-dst", "5": "203.0.113.7||None"})
        );
    }

    #[test]
    fn lazy_reading_gives_the_same_rows_and_filters() {
        let text = r#"{"Event": {"id": "7", "Attribute": [{"id": "1"}], "info": "x"},
            "Attribute": {"timestamp": 1714641243, "category": "Other", "type": "text",
            "value": "v", "comment": null, "Tag": [{"name": "t"}]}}"#;
        let full: Value = serde_json::from_str(text).expect("json");
        let lazy = LazyLog::parse(text).expect("object");
        assert_eq!(fmt().row(&lazy), fmt().row(&full));
        let maybe = LazyLog::parse(text);
        assert_eq!(fmt().row(&maybe), fmt().row(&full));
        let f = Filters::from_json(r#"{"Event.id": "7", "Attribute.type": "!url"}"#);
        assert!(f.pass(&lazy) && f.pass(&full));
        // Not an object: read as `null`.
        let not_object = LazyLog::parse("[1]");
        assert!(not_object.is_none());
        assert_eq!(fmt().row(&not_object), fmt().row(&Value::Null));
        assert!(!f.pass(&not_object) && !f.pass(&Value::Null));
    }

    #[test]
    fn python_repr_of_values() {
        assert_eq!(
            py_repr(&json!({"a": [1, 2.0, null, true, "it's"]})),
            "{'a': [1, 2.0, None, True, \"it's\"]}"
        );
        assert_eq!(py_str(&json!("x")), "x");
    }

    #[test]
    fn filters_from_cookies() {
        let quoted = r#"session=x; filters="{\"Attribute.category\": \"Network activity\"}""#;
        let f = Filters::from_cookie_headers(std::iter::once(quoted));
        assert!(!f.is_empty());
        let log = json!({"Attribute": {"category": "Network activity"}});
        assert!(f.pass(&log));
        assert!(!f.pass(&json!({"Attribute": {"category": "Other"}})));
        assert!(!f.pass(&json!({"Event": {}})));
        // The raw JSON the original page writes is not a valid cookie value: ignored.
        let raw = r#"filters={"Attribute.category":"Network activity"}"#;
        assert!(Filters::from_cookie_headers(std::iter::once(raw)).is_empty());
        let enc = "filters=%7B%22Attribute.type%22%3A%22!ip-dst%22%7D";
        let f = Filters::from_cookie_headers(std::iter::once(enc));
        assert!(!f.pass(&json!({"Attribute": {"type": "ip-dst"}})));
        assert!(f.pass(&json!({"Attribute": {"type": "domain"}})));
        let bad = "filters=%7Bnot-json";
        assert!(Filters::from_cookie_headers(std::iter::once(bad)).is_empty());
    }

    #[test]
    fn filters_with_several_values() {
        let f = Filters::from_json(r#"{"Attribute.type": ["ip-dst", "domain", "!x"]}"#);
        assert!(f.pass(&json!({"Attribute": {"type": "domain"}})));
        assert!(!f.pass(&json!({"Attribute": {"type": "url"}})));
    }

    #[test]
    fn live_payload_is_python_json() {
        let published = r#"{"name": "Keepalive", "log": "[86400]", "zmqName": "misp1"}"#;
        let (data, raw) = live_payload(&fmt(), published).expect("valid");
        assert_eq!(
            data,
            r#"{"log": [86400], "name": "Keepalive", "zmqName": "misp1"}"#
        );
        assert!(raw.is_none());
        assert!(live_payload(&fmt(), "not json").is_none());
    }
}
