//! The rewind stream (`keys::REWIND`): the live rows and map points of the last
//! `[mispdash] rewind_hours`, so that the live page can show the view as it was at any moment
//! of them and export a window of it.
//!
//! The dispatcher writes it in the transaction of each batch, as it writes the live caches
//! (`store::Op::RewindAdd`, then one `Op::RewindTrim`), and only for live messages: what
//! `mispdash backfill` reads from MISP's API was never on the live view. The web server reads it
//! (`web::rewind`). Entry ids are the dispatcher's clock in milliseconds (`MISPDASH_FAKE_NOW`
//! pins it), so a window of epoch seconds is a range of ids; an entry is kept at least as new
//! as the one before it, so a clock set back cannot make Redis refuse the batch.
//!
//! What an entry holds is what the page shows and what decides who may see it, not the whole
//! message: a live row's message carries its whole event (every attribute of it), which a day
//! of rows cannot afford. A row keeps the fields of `[Dashboard] fieldname_order` (so rows,
//! the page's filters and the CSV read as from the live cache) and the facts access control
//! decides with (`acl::Facts`, as the dispatcher completed them); a map point keeps its
//! published text and its facts.

use crate::acl::Facts;
use serde::Deserialize;
use serde_json::Value;

/// The stream's entry field of a live row.
pub const ROW: &str = "row";
/// The stream's entry field of a map point.
pub const POINT: &str = "point";

/// [`crate::store::Op::RewindAddMany`]: KEYS stream, byte counter; ARGV triples of
/// (milliseconds, field, value), oldest first. The rows and points of one millisecond share an
/// entry (its field-value pairs, oldest first, at most [`MAX_PAIRS`]): a batch drained at full
/// speed writes a few entries rather than one per row, which made `XADD` one and a half Redis
/// commands per message. Each entry gets the id `<ms>-<seq>` with `ms` never below the newest
/// entry's (Redis refuses an id that does not grow, and a clock may be set back: what comes at
/// an earlier millisecond joins the newest one); an empty stream is deleted first, because it
/// keeps its last id. Returns the counter.
pub const APPEND_LUA: &str = r"
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local ms, seq = -1, 0
if top[1] then
  local a, b = string.match(top[1][1], '^(%d+)%-(%d+)$')
  ms, seq = tonumber(a), tonumber(b) + 1
else
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], 0)
end
local bytes, i = 0, 1
while i <= #ARGV do
  local at = tonumber(ARGV[i])
  if at > ms then ms, seq = at, 0 end
  local args = {KEYS[1], string.format('%d-%d', ms, seq)}
  repeat
    args[#args + 1] = ARGV[i + 1]
    args[#args + 1] = ARGV[i + 2]
    bytes = bytes + #ARGV[i + 2]
    i = i + 3
  until i > #ARGV or tonumber(ARGV[i]) > ms or #args >= 2 + 2 * 50
  redis.call('XADD', unpack(args))
  seq = seq + 1
end
return redis.call('INCRBY', KEYS[2], bytes)
";

/// The most rows and points one entry holds (spelt out in [`APPEND_LUA`]): it bounds what one
/// page of the web server's reads holds (`web::rewind`), and Lua's `unpack` spreads a bounded
/// number of values.
pub const MAX_PAIRS: usize = 50;

/// [`crate::store::Op::RewindTrim`]: KEYS stream, byte counter; ARGV the oldest millisecond to
/// keep, the most bytes to keep. An entry weighs the values of all its pairs. Drops the oldest entries while they are older than that or the
/// entries hold more than that, a page at a time (the oldest entry alone is read when nothing
/// is to go, which is the common case); deletes both keys when nothing is left. A counter that
/// is missing while the stream is not (deleted by hand) is counted again once. Returns how many
/// entries went.
pub const TRIM_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 0
end
local function size(fields)
  local n = 0
  for j = 2, #fields, 2 do n = n + #fields[j] end
  return n
end
local min, max = tonumber(ARGV[1]), tonumber(ARGV[2])
local total = tonumber(redis.call('GET', KEYS[2]))
if not total then
  total = 0
  local from = '-'
  while true do
    local page = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1000)
    for _, e in ipairs(page) do total = total + size(e[2]) end
    if #page < 1000 then break end
    from = '(' .. page[#page][1]
  end
end
local dropped, count = 0, 1
while true do
  local page = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', count)
  if not page[1] then break end
  local last = nil
  for _, e in ipairs(page) do
    local ms = tonumber(string.match(e[1], '^(%d+)'))
    if ms >= min and total <= max then break end
    total = total - size(e[2])
    dropped = dropped + 1
    last = e[1]
  end
  if not last then break end
  local a, b = string.match(last, '^(%d+)%-(%d+)$')
  redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', tonumber(a), tonumber(b) + 1))
  if last ~= page[#page][1] then break end
  count = 200
end
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  redis.call('SET', KEYS[2], total)
end
return dropped
";

/// The dotted paths of `[Dashboard] fieldname_order` (a composite column's several), as the
/// live log's columns read them (`web::live::LogFormat`).
pub fn column_paths(fieldname_order: &Value) -> Vec<Vec<String>> {
    let split = |v: &Value| -> Vec<String> {
        let text = match v {
            Value::String(s) => s.clone(),
            other => crate::web::live::py_str(other),
        };
        text.split('.').map(str::to_string).collect()
    };
    let mut out: Vec<Vec<String>> = Vec::new();
    if let Value::Array(items) = fieldname_order {
        for item in items {
            match item {
                Value::Array(parts) => out.extend(parts.iter().map(split)),
                other => out.push(split(other)),
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The part of a live row's content that its columns read: each of `paths`, where the content
/// has it (looked up through `top`, the content's top-level fields), nested as in the content.
/// A row built from it is the row built from the whole content. It borrows the content and
/// is written straight into the entry: cloning the kept values into a new tree, then writing
/// that, was a tenth of the drain's time.
pub fn trimmed_log<'p, 'v>(
    top: impl Fn(&str) -> Option<&'v Value>,
    paths: &'p [Vec<String>],
) -> Trimmed<'p, 'v> {
    let mut out = Vec::new();
    for path in paths {
        let Some((first, rest)) = path.split_first() else {
            continue;
        };
        let Some(mut v) = top(first) else {
            continue;
        };
        let mut found = true;
        for k in rest {
            match v.as_object().and_then(|o| o.get(k)) {
                Some(next) => v = next,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if found {
            insert_at(&mut out, path, v);
        }
    }
    Trimmed(out)
}

/// The fields [`trimmed_log`] keeps, in the order their paths came (as a `serde_json::Map`
/// with `preserve_order` would hold them), written as that map would be.
#[derive(Debug)]
pub struct Trimmed<'p, 'v>(Vec<(&'p str, Node<'p, 'v>)>);

#[derive(Debug)]
enum Node<'p, 'v> {
    Leaf(&'v Value),
    Object(Vec<(&'p str, Node<'p, 'v>)>),
}

/// Sets `value` at `path` in `m`, making the objects on the way (a path that runs into a value
/// kept whole, because a shorter path kept it, is already in it); the first value set at a
/// path stays.
fn insert_at<'p, 'v>(m: &mut Vec<(&'p str, Node<'p, 'v>)>, path: &'p [String], value: &'v Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = m;
    for k in parents {
        let i = match cur.iter().position(|(key, _)| *key == k.as_str()) {
            Some(i) => i,
            None => {
                cur.push((k.as_str(), Node::Object(Vec::new())));
                cur.len() - 1
            }
        };
        match &mut cur[i].1 {
            Node::Object(o) => cur = o,
            Node::Leaf(_) => return,
        }
    }
    if !cur.iter().any(|(key, _)| *key == last.as_str()) {
        cur.push((last.as_str(), Node::Leaf(value)));
    }
}

fn serialize_fields<S: serde::Serializer>(
    fields: &[(&str, Node<'_, '_>)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(fields.len()))?;
    for (k, v) in fields {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl serde::Serialize for Node<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Leaf(v) => v.serialize(s),
            Node::Object(fields) => serialize_fields(fields, s),
        }
    }
}

impl serde::Serialize for Trimmed<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_fields(&self.0, s)
    }
}

/// A live row's entry: `{"name", "zmqName", "log": <trimmed content>, "facts"?}`.
pub fn row_entry(
    name: &str,
    zmq_name: &str,
    log: &impl serde::Serialize,
    facts: Option<&str>,
) -> String {
    let mut s = Vec::with_capacity(512);
    s.extend_from_slice(b"{\"name\":");
    // Writing strings and a borrowed tree into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut s, name);
    s.extend_from_slice(b",\"zmqName\":");
    let _ = serde_json::to_writer(&mut s, zmq_name);
    s.extend_from_slice(b",\"log\":");
    let _ = serde_json::to_writer(&mut s, log);
    if let Some(f) = facts {
        s.extend_from_slice(b",\"facts\":");
        s.extend_from_slice(f.as_bytes());
    }
    s.push(b'}');
    // serde_json writes UTF-8, and `facts` is a str.
    String::from_utf8(s).unwrap_or_default()
}

/// A map point's entry: `{"point": <the point as published>, "facts"?}`. `point` is JSON text
/// (what the dispatcher publishes), `facts` that of [`Facts`].
pub fn point_entry(point: &str, facts: Option<&str>) -> String {
    let mut s = String::with_capacity(point.len() + 16);
    s.push_str("{\"point\":");
    s.push_str(point);
    if let Some(f) = facts {
        s.push_str(",\"facts\":");
        s.push_str(f);
    }
    s.push('}');
    s
}

/// A stream entry's id: the dispatcher's clock in milliseconds, and a sequence within it; as a
/// row's or point's id, also which of the entry's pairs it is (see [`APPEND_LUA`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
    pub part: usize,
}

impl EntryId {
    /// `"<ms>-<seq>"`, as Redis spells it.
    pub fn parse(s: &str) -> Option<EntryId> {
        let (ms, seq) = s.split_once('-')?;
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
            part: 0,
        })
    }

    /// The id of the entry's pair `part`.
    pub fn part(self, part: usize) -> EntryId {
        EntryId { part, ..self }
    }

    /// When the entry was written, in epoch seconds.
    pub fn epoch(&self) -> f64 {
        self.ms as f64 / 1000.0
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The first pair keeps the entry's own id: an entry of one pair, as entries were
        // before they held several, names its row as it did.
        match self.part {
            0 => write!(f, "{}-{}", self.ms, self.seq),
            p => write!(f, "{}-{}.{p}", self.ms, self.seq),
        }
    }
}

/// A row's entry as read back.
#[derive(Debug, Deserialize)]
pub struct StoredRow {
    pub name: String,
    #[serde(rename = "zmqName")]
    pub zmq_name: Value,
    /// The trimmed content, as text (the row and the filters read it lazily).
    pub log: Box<serde_json::value::RawValue>,
    #[serde(default)]
    pub facts: Option<Facts>,
}

/// A map point's entry as read back.
#[derive(Debug, Deserialize)]
pub struct StoredPoint {
    pub point: Value,
    #[serde(default)]
    pub facts: Option<Facts>,
}

/// One entry of the stream, read back.
#[derive(Debug)]
pub enum Stored {
    Row(StoredRow),
    Point(StoredPoint),
}

impl Stored {
    /// The entry of field `field` holding `value`; `None` for anything else (a field another
    /// version wrote, a value that is not ours).
    pub fn parse(field: &str, value: &str) -> Option<Stored> {
        match field {
            ROW => serde_json::from_str(value).ok().map(Stored::Row),
            POINT => serde_json::from_str(value).ok().map(Stored::Point),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Value {
        serde_json::from_str(crate::config::DEFAULT_FIELDNAME_ORDER).expect("default order")
    }

    #[test]
    fn a_pair_after_the_first_is_named_after_its_entry() {
        let e = EntryId::parse("1795176000000-2").expect("an entry id");
        assert_eq!(e.part(0).to_string(), "1795176000000-2");
        assert_eq!(e.part(3).to_string(), "1795176000000-2.3");
        assert_eq!(e.part(3).epoch(), 1_795_176_000.0);
        assert!(APPEND_LUA.contains(&format!("2 + 2 * {MAX_PAIRS}")));
    }

    #[test]
    fn paths_are_every_column_part_once() {
        let order = json!([
            "Attribute.timestamp",
            ["Attribute.value", "Event.id"],
            "Event.id"
        ]);
        assert_eq!(
            column_paths(&order),
            vec![
                vec!["Attribute".to_string(), "timestamp".into()],
                vec!["Attribute".into(), "value".into()],
                vec!["Event".into(), "id".into()],
            ]
        );
        assert!(column_paths(&json!("not a list")).is_empty());
    }

    /// The row the live page shows is the same from the trimmed content as from the whole
    /// message, for the default columns and for composite, missing and nested ones; and the
    /// trimmed content holds nothing else (no other attribute of the event).
    #[test]
    fn a_row_from_the_trimmed_content_is_the_row_of_the_whole_content() {
        let content = json!({
            "Event": {"id": "42", "info": "big", "Orgc": {"name": "CIRCL", "id": "1"},
                "Attribute": [{"id": "1", "value": "other"}, {"id": "2", "value": "more"}]},
            "Attribute": {"timestamp": "1795175000", "category": "Network activity",
                "type": "ip-dst", "value": "203.0.113.7", "comment": null,
                "Tag": [{"name": "tlp:green", "colour": "#33ff00"}]},
            "action": "add"
        });
        let orders_second = || {
            json!([
                "Event.Orgc.name",
                ["Attribute.value", "Event.info", "Nope.x"],
                "Event",
                "Event.id"
            ])
        };
        let orders = [order(), orders_second()];
        for o in orders {
            let paths = column_paths(&o);
            let m = content.as_object().expect("object");
            let trimmed = serde_json::to_value(trimmed_log(|k| m.get(k), &paths)).expect("json");
            let fmt = crate::web::live::LogFormat::new(&o, "||");
            assert_eq!(fmt.row(&trimmed), fmt.row(&content), "{o}");
        }
        let m = content.as_object().expect("object");
        // Written in the paths' order, a value kept whole once: the text the entry holds.
        let paths = column_paths(&orders_second());
        assert_eq!(
            serde_json::to_string(&trimmed_log(|k| m.get(k), &paths)).expect("json"),
            format!(
                r#"{{"Attribute":{{"value":"203.0.113.7"}},"Event":{}}}"#,
                content["Event"]
            )
        );
        let paths = column_paths(&order());
        let trimmed = trimmed_log(|k| m.get(k), &paths);
        assert_eq!(
            serde_json::to_value(&trimmed).expect("json"),
            json!({"Event": {"id": "42"}, "Attribute": {"timestamp": "1795175000",
                "category": "Network activity", "type": "ip-dst", "value": "203.0.113.7",
                "comment": null, "Tag": [{"name": "tlp:green", "colour": "#33ff00"}]}})
        );
    }

    #[test]
    fn entries_read_back_as_written() {
        let facts = Facts {
            event: crate::acl::EventFacts {
                id: Some(42),
                org_id: Some(1),
                distribution: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        let facts_text = serde_json::to_string(&facts).expect("facts");
        let log = json!({"Event": {"id": "42"}});
        let row = row_entry("Attribute", "misp \"1\"", &log, Some(&facts_text));
        match Stored::parse(ROW, &row) {
            Some(Stored::Row(r)) => {
                assert_eq!(r.name, "Attribute");
                assert_eq!(r.zmq_name, json!("misp \"1\""));
                assert_eq!(r.log.get(), log.to_string());
                assert_eq!(r.facts, Some(facts.clone()));
            }
            other => panic!("not a row: {other:?}"),
        }
        let point = point_entry(r#"{"coord": {"lat": 1, "lon": 2}}"#, None);
        match Stored::parse(POINT, &point) {
            Some(Stored::Point(p)) => {
                assert_eq!(p.point, json!({"coord": {"lat": 1, "lon": 2}}));
                assert!(p.facts.is_none());
            }
            other => panic!("not a point: {other:?}"),
        }
        assert!(Stored::parse("other", &point).is_none());
        assert!(Stored::parse(ROW, "not json").is_none());
    }

    #[test]
    fn ids_parse_and_order_by_time_then_sequence() {
        let a = EntryId::parse("1795176000000-0").expect("id");
        let b = EntryId::parse("1795176000000-12").expect("id");
        let c = EntryId::parse("1795176000001-0").expect("id");
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1795176000000-12");
        assert_eq!(c.epoch(), 1_795_176_000.001);
        for bad in ["", "12", "a-1", "1-b", "-1"] {
            assert!(EntryId::parse(bad).is_none(), "{bad}");
        }
    }
}
