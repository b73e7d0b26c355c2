//! The JSON history of the live caches (`/_logs` and `/_maps` asked for JSON), formatted once
//! per change of the cache rather than once per request.
//!
//! The live-log cache holds the whole MISP message around each attribute (about 3.7 kB each,
//! 380 kB for the 101 entries), and its rows are formatted by `[Dashboard] fieldname_order`:
//! reading and formatting all of it for every request made `/_logs` the slowest route by far
//! (1 % of `/healthz`'s rate without the answer cache). The caches change only at their ends
//! (pushed at the head, trimmed at the tail), so their length and both ends say whether they
//! changed: a request reads those three (a few kB, one round trip) and answers from what was
//! formatted last while they are the same. Any writer is seen (the dispatcher, the original's
//! during a migration, an admin clearing the cache), with no key of our own to keep in step.
//! Filters and access control are applied per request, over the entries formatted once.

use super::db::Db;
use super::error::WebError;
use super::hub::KnownEvents;
use super::json_out::JsonOut;
use super::live::LogFormat;
use super::live::{is_row_name, Filters, LazyLog};
use crate::keys;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// What says whether a live cache changed: its length and its two ends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListMark {
    len: usize,
    head: Option<String>,
    tail: Option<String>,
}

impl ListMark {
    fn of(items: &[String]) -> ListMark {
        ListMark {
            len: items.len(),
            head: items.first().cloned(),
            tail: items.last().cloned(),
        }
    }
}

/// The last formatting of one cache, with the mark of the entries it was made from.
struct Memoed<T> {
    mark: ListMark,
    value: T,
}

/// One cache's formatting, kept between requests.
pub struct ListMemo<T>(Mutex<Option<Arc<Memoed<T>>>>);

impl<T> Default for ListMemo<T> {
    fn default() -> Self {
        ListMemo(Mutex::new(None))
    }
}

impl<T> ListMemo<T> {
    /// The formatting of list `key` now: the one kept when the list's mark is unchanged, else
    /// made by `build` from the whole list (newest first) and kept.
    async fn through(
        &self,
        data: &Db,
        key: &str,
        build: impl FnOnce(&[String]) -> T,
    ) -> Result<Arc<Memoed<T>>, WebError> {
        let mut c = data.conn().await?;
        let kept = super::lock(&self.0).clone();
        if let Some(kept) = kept {
            let (len, head, tail): (usize, Option<String>, Option<String>) = redis::pipe()
                .cmd("LLEN")
                .arg(key)
                .cmd("LINDEX")
                .arg(key)
                .arg(0)
                .cmd("LINDEX")
                .arg(key)
                .arg(-1)
                .query_async(&mut c)
                .await?;
            if kept.mark == (ListMark { len, head, tail }) {
                return Ok(kept);
            }
        }
        let items: Vec<String> = redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(&mut c)
            .await?;
        let made = Arc::new(Memoed {
            mark: ListMark::of(&items),
            value: build(&items),
        });
        *super::lock(&self.0) = Some(made.clone());
        Ok(made)
    }
}

/// What the live caches' formattings are kept in (one per server).
#[derive(Default)]
pub struct LiveMemos {
    logs: ListMemo<LogEntries>,
    maps: ListMemo<MapEntries>,
}

/// What the live caches are read from and formatted with: the server's, lent per request.
pub struct Sources<'a> {
    pub data: &'a Db,
    pub log_format: &'a LogFormat,
    /// MISP's rules, when the live views follow them.
    pub acl: Option<&'a crate::acl::Policy>,
    /// What is known of events, for rows that name theirs without describing it.
    pub known: &'a KnownEvents,
}

/// The live log formatted: each entry as `/_logs` gives it, and the whole answer.
struct LogEntries {
    entries: Vec<LogEntry>,
    all: Bytes,
}

struct LogEntry {
    /// The entry as it appears in the answer (compact JSON).
    json: Box<[u8]>,
    /// Of an attribute row: what filters and access control read.
    row: Option<RowFacts>,
}

struct RowFacts {
    /// The log's JSON text, as cached (filters read its fields).
    text: Box<str>,
    /// With access control on: what the row says of its event (`None`: not JSON).
    facts: Option<crate::acl::Facts>,
}

fn to_json(v: &Value) -> Box<[u8]> {
    // A `Value` always serialises (its keys are strings).
    serde_json::to_vec(v).unwrap_or_default().into_boxed_slice()
}

/// Formats the live-log cache's entries (newest first). An attribute row becomes
/// `{"log": <row>, "name", "zmqName"}`; any other entry is given as cached; an entry that is not
/// JSON is left out.
fn format_logs(src: &Sources<'_>, items: &[String]) -> LogEntries {
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Ok(m) = serde_json::from_str::<super::live::RawMap<'_>>(item) else {
            continue;
        };
        let name: Value = m
            .get("name")
            .and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or(Value::Null);
        if name.as_str().is_some_and(is_row_name) {
            let text: Option<String> = match m.get("log") {
                // A log cached as a JSON string (double-encoded) is read through.
                Some(r) if r.get().starts_with('"') => serde_json::from_str(r.get()).ok(),
                Some(r) => Some(r.get().to_string()),
                None => None,
            };
            let text = text.unwrap_or_else(|| "null".into());
            let log = LazyLog::parse(&text);
            let mut e = Map::new();
            e.insert("log".into(), src.log_format.row(&log));
            e.insert("name".into(), name);
            e.insert(
                "zmqName".into(),
                m.get("zmqName")
                    .and_then(|r| serde_json::from_str(r.get()).ok())
                    .unwrap_or(Value::Null),
            );
            let facts = src.acl.and_then(|_| super::hub::facts_of(&text));
            entries.push(LogEntry {
                json: to_json(&Value::Object(e)),
                row: Some(RowFacts {
                    text: text.into_boxed_str(),
                    facts,
                }),
            });
        } else if let Ok(v) = serde_json::from_str::<Value>(item) {
            entries.push(LogEntry {
                json: to_json(&v),
                row: None,
            });
        }
    }
    let size = entries.iter().map(|e| e.json.len() + 1).sum();
    let all = JsonOut::array_of(entries.iter().map(|e| &e.json[..]), size);
    LogEntries { entries, all }
}

/// The map cache: its entries as cached (what the access facts are matched by) and the whole
/// answer.
struct MapEntries {
    items: Vec<(String, Box<[u8]>)>,
    all: Bytes,
}

fn format_maps(items: &[String]) -> MapEntries {
    let items: Vec<(String, Box<[u8]>)> = items
        .iter()
        .filter_map(|s| {
            let v: Value = serde_json::from_str(s).ok()?;
            Some((s.clone(), to_json(&v)))
        })
        .collect();
    let size = items.iter().map(|(_, j)| j.len() + 1).sum();
    let all = JsonOut::array_of(items.iter().map(|(_, j)| &j[..]), size);
    MapEntries { items, all }
}

impl LiveMemos {
    /// `/_logs` (JSON): the cached live log, newest first, formatted and filtered (by the
    /// `filters` cookie, and with access control on by what `viewer` may see).
    pub async fn logs_json(
        &self,
        src: Sources<'_>,
        filters: &Filters,
        viewer: Option<&crate::acl::Viewer>,
    ) -> Result<Bytes, WebError> {
        let memo = self
            .logs
            .through(src.data, keys::LIVE_CACHE_LOG, |items| {
                format_logs(&src, items)
            })
            .await?;
        let formatted = &memo.value;
        let acl = viewer.zip(src.acl);
        if filters.is_empty() && acl.is_none() {
            return Ok(formatted.all.clone());
        }
        if acl.is_some() {
            // The events that rows name without describing, read at once.
            let known = src.known;
            let mut missing: Vec<u64> = formatted
                .entries
                .iter()
                .filter_map(|e| e.row.as_ref()?.facts.as_ref())
                .filter_map(|f| known.missing(f))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            known.fetch(src.data, &missing).await;
        }
        let shown = formatted.entries.iter().filter(|e| {
            let Some(row) = &e.row else {
                return true;
            };
            if !filters.is_empty() && !filters.pass(&LazyLog::parse(&row.text)) {
                return false;
            }
            match acl {
                Some((v, policy)) => src.known.audience_of(row.facts.clone(), policy).admits(v),
                None => true,
            }
        });
        Ok(JsonOut::array_of(
            shown.map(|e| &e.json[..]),
            formatted.all.len(),
        ))
    }

    /// `/_maps` (JSON): the cached map points, newest first; with access control on, those
    /// `viewer` may see (by the facts the dispatcher recorded beside them, `keys::ACL_MAP`; a
    /// point without is for site admins only).
    pub async fn maps_json(
        &self,
        src: Sources<'_>,
        viewer: Option<&crate::acl::Viewer>,
    ) -> Result<Bytes, WebError> {
        let memo = self
            .maps
            .through(src.data, keys::LIVE_CACHE_MAP, format_maps)
            .await?;
        let formatted = &memo.value;
        let (Some(v), Some(policy)) = (viewer, src.acl) else {
            return Ok(formatted.all.clone());
        };
        let mut c = src.data.conn().await?;
        let mut q = crate::acl::PointFactsQueue::default();
        q.extend_from_list(&super::hub::recorded_point_facts(&mut c).await?);
        // Oldest first, as the facts were recorded, then back to newest first.
        let mut shown: Vec<&[u8]> = formatted
            .items
            .iter()
            .rev()
            .filter(|(s, _)| {
                q.take(s)
                    .is_some_and(|f| crate::acl::Audience::decide(&f, policy).admits(v))
                    || v.site_admin
            })
            .map(|(_, j)| &j[..])
            .collect();
        shown.reverse();
        Ok(JsonOut::array_of(shown.into_iter(), formatted.all.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_the_length_and_both_ends() {
        let items: Vec<String> = ["c", "b", "a"].map(String::from).to_vec();
        let m = ListMark::of(&items);
        assert_eq!(m.len, 3);
        assert_eq!(m.head.as_deref(), Some("c"));
        assert_eq!(m.tail.as_deref(), Some("a"));
        assert_eq!(
            ListMark::of(&[]),
            ListMark {
                len: 0,
                head: None,
                tail: None
            }
        );
        // Pushed at the head and trimmed at the tail: the length stays, both ends change.
        let pushed: Vec<String> = ["d", "c", "b"].map(String::from).to_vec();
        assert_ne!(ListMark::of(&pushed), m);
    }

    #[test]
    fn map_points_are_given_compact_and_non_json_ones_left_out() {
        let maps = format_maps(&["{\"a\": 1, \"b\": [1, 2]}".into(), "not json".into()]);
        assert_eq!(&maps.all[..], b"[{\"a\":1,\"b\":[1,2]}]");
    }
}
