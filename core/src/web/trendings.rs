//! Trending routes (spec `http.md` §7): events, categories, tags, sightings, discussions,
//! typeahead vocabularies and timelines, over a day range ending at `dateE`.

use super::answer::JsonBody;
use super::error::WebError;
use super::json_out::JsonOut;
use super::narrow::{Accepts, Narrow};
use super::params::{self, Params};
use super::state::AppState;
use crate::keys;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The days of a range, newest first, as `(timestamp, day key)`; each timestamp keeps
/// `dateE`'s time of day, as in the original.
fn range_days(st: &AppState, p: &Params) -> Result<Vec<(i64, String)>, WebError> {
    let (_, end, days) = params::trending_range(p, &st.clock)?;
    if days < 0 {
        return Ok(vec![]);
    }
    Ok((0..=days)
        .map(|i| {
            let d = end - chrono::Duration::days(i);
            (params::mktime(&d), params::day_key(&d))
        })
        .collect())
}

async fn ranges(
    st: &AppState,
    keys: &[String],
    stop: isize,
) -> Result<Vec<Vec<(String, f64)>>, WebError> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("ZREVRANGE")
            .arg(k)
            .arg(0)
            .arg(stop)
            .arg("WITHSCORES");
    }
    let mut c = st.data.conn().await?;
    Ok(pipe.query_async(&mut c).await?)
}

/// The members of each key, highest score first, without their scores (half the reply).
async fn members(st: &AppState, keys: &[String]) -> Result<Vec<Vec<String>>, WebError> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("ZREVRANGE").arg(k).arg(0).arg(-1);
    }
    let mut c = st.data.conn().await?;
    Ok(pipe.query_async(&mut c).await?)
}

/// The decayed ranking of labels over the range: each day's count weighs
/// `(numDay - i²) / numDay` (i = 0 for the newest day; the weight turns negative for old days,
/// a quirk kept so the top labels are the original's). Only the best `top` labels are kept
/// (all with `None`), each day's list filtered to them in its own order.
fn generic(days: &[(i64, String)], per_day: Vec<Vec<(String, f64)>>, top: Option<usize>) -> Bytes {
    let num_day = days.len() as f64;
    let mut order: Vec<(&str, f64)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, day) in per_day.iter().enumerate() {
        let w = (num_day - (i * i) as f64) / num_day;
        for (label, count) in day {
            let add = count * w;
            match index.get(label.as_str()) {
                Some(&j) => order[j].1 += add,
                None => {
                    index.insert(label, order.len());
                    order.push((label, add));
                }
            }
        }
    }
    order.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    if let Some(n) = top {
        order.truncate(n);
    }
    let kept: std::collections::HashSet<&str> = order.iter().map(|(l, _)| *l).collect();
    let size: usize = per_day.iter().flatten().map(|(l, _)| l.len() + 24).sum();
    let mut out = JsonOut::with_capacity(size.min(1 << 20) + 32 * days.len());
    out.raw(b"[");
    let mut first_day = true;
    for ((ts, _), list) in days.iter().zip(per_day.iter()) {
        out.comma(&mut first_day).raw(b"[").value(ts).raw(b",[");
        let mut first = true;
        for (l, s) in list.iter().filter(|(l, _)| kept.contains(l.as_str())) {
            out.comma(&mut first)
                .raw(b"[")
                .value(l)
                .raw(b",")
                .value(s)
                .raw(b"]");
        }
        out.raw(b"]]");
    }
    out.raw(b"]");
    out.done()
}

/// `/_getTrendingEvents?dateS&dateE&topNum&specificLabel`; with `tags`/`not_tags`, the events
/// whose tags pass (read from mispdash's own key, see [`super::narrow`]).
pub async fn events(st: &AppState, p: &Params) -> Result<Bytes, WebError> {
    let narrow = Narrow::parse(
        p,
        "/_getTrendingEvents",
        Accepts {
            tags: true,
            ..Accepts::default()
        },
    )?;
    let days = range_days(st, p)?;
    if narrow.has_tags() {
        let tagged: Vec<String> = days
            .iter()
            .map(|(_, d)| keys::trendings_events_tagged(d))
            .collect();
        let per_day: Vec<Vec<(String, f64)>> = ranges(st, &tagged, -1)
            .await?
            .into_iter()
            .map(|day| {
                let mut labels: Vec<(String, f64)> = Vec::new();
                for (member, n) in day {
                    let Ok(v) = serde_json::from_str::<Value>(&member) else {
                        continue;
                    };
                    let names: Vec<&str> = v
                        .get("tags")
                        .and_then(Value::as_array)
                        .map(|t| t.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let Some(info) = v.get("info").and_then(Value::as_str) else {
                        continue;
                    };
                    if !narrow.tags_ok(&names) {
                        continue;
                    }
                    match labels.iter_mut().find(|(l, _)| l == info) {
                        Some((_, c)) => *c += n,
                        None => labels.push((info.to_string(), n)),
                    }
                }
                labels.sort_by(|a, b| {
                    b.1.partial_cmp(&a.1)
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then_with(|| b.0.cmp(&a.0))
                });
                labels
            })
            .collect();
        if let Some(label) = p.get("specificLabel") {
            let label = label.replace("\\n", "\n");
            return Value::Array(
                days.iter()
                    .zip(per_day)
                    .map(
                        |((ts, _), list)| match list.iter().find(|(l, _)| *l == label) {
                            Some((l, s)) => json!([ts, [[l, s]]]),
                            None => json!([ts, []]),
                        },
                    )
                    .collect(),
            )
            .into_body();
        }
        let top = params::top_num(p)?;
        return Ok(generic(&days, per_day, Some(top)));
    }
    let keys: Vec<String> = days
        .iter()
        .map(|(_, d)| keys::trendings_events(d))
        .collect();
    if let Some(label) = p.get("specificLabel") {
        let label = label.replace("\\n", "\n");
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("ZSCORE").arg(k).arg(&label);
        }
        let mut c = st.data.conn().await?;
        let scores: Vec<Option<f64>> = if keys.is_empty() {
            vec![]
        } else {
            pipe.query_async(&mut c).await?
        };
        return Value::Array(
            days.iter()
                .zip(scores)
                .map(|((ts, _), s)| match s {
                    Some(s) => json!([ts, [[label, s]]]),
                    None => json!([ts, []]),
                })
                .collect(),
        )
        .into_body();
    }
    let top = params::top_num(p)?;
    let per_day = ranges(st, &keys, -1).await?;
    Ok(generic(&days, per_day, Some(top)))
}

/// `/_getTrendingCategs?dateS&dateE&topNum` (`specificLabel` ignored, as in the original).
/// With `categ`: those categories only.
pub async fn categs(st: &AppState, p: &Params) -> Result<Bytes, WebError> {
    let narrow = Narrow::parse(
        p,
        "/_getTrendingCategs",
        Accepts {
            categ: true,
            ..Accepts::default()
        },
    )?;
    let days = range_days(st, p)?;
    let top = params::top_num(p)?;
    let keys: Vec<String> = days
        .iter()
        .map(|(_, d)| keys::trendings_categs(d))
        .collect();
    let mut per_day = ranges(st, &keys, -1).await?;
    for day in &mut per_day {
        day.retain(|(label, _)| narrow.categ_ok(Some(label)));
    }
    Ok(generic(&days, per_day, Some(top)))
}

/// `/_getTrendingDisc?dateS&dateE`: generic, every label.
pub async fn disc(st: &AppState, p: &Params) -> Result<Bytes, WebError> {
    let days = range_days(st, p)?;
    let keys: Vec<String> = days.iter().map(|(_, d)| keys::trendings_disc(d)).collect();
    let per_day = ranges(st, &keys, -1).await?;
    Ok(generic(&days, per_day, None))
}

fn parse_member(m: &str) -> Value {
    serde_json::from_str(m).unwrap_or_else(|_| Value::String(m.to_string()))
}

/// `/_getTrendingTags?dateS&dateE&topNum`: each day's top tags, parsed.
/// With `tags`/`not_tags`: each day's top tags among those whose name passes.
pub async fn tags(st: &AppState, p: &Params) -> Result<Bytes, WebError> {
    let narrow = Narrow::parse(
        p,
        "/_getTrendingTags",
        Accepts {
            tags: true,
            ..Accepts::default()
        },
    )?;
    let days = range_days(st, p)?;
    let top = params::top_num(p)?;
    let keys: Vec<String> = days.iter().map(|(_, d)| keys::trendings_tags(d)).collect();
    let stop = if narrow.is_empty() {
        top as isize - 1
    } else {
        -1
    };
    let per_day = ranges(st, &keys, stop).await?;
    let mut out = JsonOut::with_capacity(
        64 + per_day
            .iter()
            .flatten()
            .map(|(m, _)| m.len() + 24)
            .sum::<usize>(),
    );
    out.raw(b"[");
    let mut first_day = true;
    for ((ts, _), list) in days.iter().zip(per_day) {
        out.comma(&mut first_day).raw(b"[").value(ts).raw(b",[");
        let mut first = true;
        let shown = list.into_iter().filter_map(|(m, s)| {
            if narrow.is_empty() {
                return Some((member_json(&m), s));
            }
            let tag = parse_member(&m);
            narrow
                .tag_ok(tag.get("name").and_then(Value::as_str).unwrap_or(""))
                .then(|| (member_json(&m), s))
        });
        for (tag, s) in shown.take(top) {
            out.comma(&mut first)
                .raw(b"[")
                .raw(&tag)
                .raw(b",")
                .value(&s)
                .raw(b"]");
        }
        out.raw(b"]]");
    }
    out.raw(b"]");
    Ok(out.done())
}

/// A trending member (a tag's JSON text as the dispatcher stored it) as the answer spells it:
/// parsed (kept as a string when it is not JSON) and written again, once per distinct member.
/// The tags of a deployment are few and come back in every answer.
fn member_json(m: &str) -> Bytes {
    static SPELLED: std::sync::OnceLock<moka::sync::Cache<String, Bytes>> =
        std::sync::OnceLock::new();
    let spelled = SPELLED.get_or_init(|| moka::sync::Cache::new(4096));
    if let Some(b) = spelled.get(m) {
        return b;
    }
    let b = Bytes::from(serde_json::to_vec(&parse_member(m)).unwrap_or_default());
    spelled.insert(m.to_string(), b.clone());
    b
}

/// What `/_getTrendingEvents`'s `X-Mispdash-Filter-Note` says: with `tags` or `not_tags`, how
/// many days of the range have events but none in mispdash's own key (they predate it).
pub async fn filter_note(st: &AppState, p: &Params) -> Option<String> {
    let wants = ["tags", "not_tags"]
        .iter()
        .any(|k| p.get(k).is_some_and(|v| !v.trim().is_empty()));
    if !wants {
        return None;
    }
    let days = range_days(st, p).ok()?;
    if days.is_empty() {
        return None;
    }
    let mut pipe = redis::pipe();
    for (_, d) in &days {
        pipe.cmd("EXISTS").arg(keys::trendings_events(d));
        pipe.cmd("EXISTS").arg(keys::trendings_events_tagged(d));
    }
    let mut c = st.data.conn().await.ok()?;
    let found: Vec<bool> = pipe.query_async(&mut c).await.ok()?;
    let mut before: Vec<&String> = days
        .iter()
        .zip(found.chunks(2))
        .filter(|(_, f)| f.first() == Some(&true) && f.get(1) != Some(&true))
        .map(|((_, d), _)| d)
        .collect();
    before.sort();
    let first = before.first()?;
    Some(format!(
        "{} day(s) of the range ({}{}) predate the records the tag filters read: their events \
         are not counted",
        before.len(),
        first,
        before
            .last()
            .filter(|l| l != &first)
            .map(|l| format!(" to {l}"))
            .unwrap_or_default()
    ))
}

/// `/_getTrendingSightings?dateS&dateE`.
pub async fn sightings(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let days = range_days(st, p)?;
    if days.is_empty() {
        return Ok(json!([]));
    }
    let mut cmd = redis::cmd("MGET");
    for (_, d) in &days {
        cmd.arg(keys::trendings_sightings(d))
            .arg(keys::trendings_false_positive(d));
    }
    let mut c = st.data.conn().await?;
    let vals: Vec<Option<String>> = cmd.query_async(&mut c).await?;
    let num = |v: &Option<String>| -> Value {
        match v.as_deref().map(str::trim) {
            None => json!(0),
            Some(s) => s
                .parse::<i64>()
                .map(|i| json!(i))
                .or_else(|_| s.parse::<f64>().map(|f| json!(f)))
                .unwrap_or(json!(0)),
        }
    };
    Ok(Value::Array(
        days.iter()
            .zip(vals.chunks(2))
            .map(|((ts, _), pair)| {
                json!([ts, {
                    "false_positive": num(&pair.get(1).cloned().flatten()),
                    "sightings": num(&pair.first().cloned().flatten()),
                }])
            })
            .collect(),
    ))
}

/// `/_getTypeaheadData?dateS&dateE`: every event and category label of the range, and the
/// names of each day's top 12 tags.
pub async fn typeahead(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let days = range_days(st, p)?;
    let n = days.len();
    let mut keys: Vec<String> = days
        .iter()
        .map(|(_, d)| keys::trendings_categs(d))
        .collect();
    keys.extend(days.iter().map(|(_, d)| keys::trendings_events(d)));
    // Members only: the scores are not shown, and leaving them out halves the replies.
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("ZREVRANGE").arg(k).arg(0).arg(-1);
    }
    for (_, d) in &days {
        pipe.cmd("ZREVRANGE")
            .arg(keys::trendings_tags(d))
            .arg(0)
            .arg(11);
    }
    let mut c = st.data.conn().await?;
    let sets: Vec<Vec<String>> = if n == 0 {
        vec![]
    } else {
        pipe.query_async(&mut c).await?
    };
    let mut sets = sets.into_iter();
    let union = |it: &mut dyn Iterator<Item = String>| -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for m in it {
            if !seen.contains(&m) {
                seen.insert(m.clone());
                out.push(m);
            }
        }
        out
    };
    let categs = union(&mut sets.by_ref().take(n).flatten());
    let events = union(&mut sets.by_ref().take(n).flatten());
    let tags = union(&mut sets.flatten().map(|m| match parse_member(&m) {
        Value::Object(mut o) => match o.remove("name") {
            Some(Value::String(s)) => s,
            _ => m,
        },
        _ => m,
    }));
    Ok(json!({
        "TRENDINGS_CATEGS": categs,
        "TRENDINGS_EVENTS": events,
        "TRENDINGS_TAGS": tags,
    }))
}

/// `/_getGenericTrendingOvertime?dateS&dateE&choice=events|categs|tags`: for each label, the
/// runs of days it appears on as `{name, start, end}`; a one-day gap does not break a run (the
/// original's rule, kept).
pub async fn overtime(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let days = range_days(st, p)?;
    let key_of: fn(&str) -> String = match p.get("choice") {
        Some("categs") => keys::trendings_categs,
        Some("tags") => keys::trendings_tags,
        _ => keys::trendings_events,
    };
    let keys: Vec<String> = days.iter().map(|(_, d)| key_of(d)).collect();
    let per_day = members(st, &keys).await?;
    // Each label's days, labels in first-seen order.
    let mut stamps: indexmap::IndexMap<String, Vec<i64>> = indexmap::IndexMap::new();
    for ((ts, _), list) in days.iter().zip(per_day) {
        for m in list {
            stamps.entry(m).or_default().push(*ts);
        }
    }
    let mut out = Vec::new();
    for (name, mut ts) in stamps {
        ts.sort_unstable();
        let mut seg: Option<(i64, i64)> = None;
        for t in ts {
            seg = match seg {
                None => Some((t, t + 86400)),
                Some((s, e)) if t - e > 86400 => {
                    out.push(segment(&name, s, e));
                    Some((t, t + 86400))
                }
                Some((s, _)) => Some((s, t + 86400)),
            };
        }
        if let Some((s, e)) = seg {
            out.push(segment(&name, s, e));
        }
    }
    Ok(Value::Array(out))
}

fn segment(name: &str, start: i64, end: i64) -> Value {
    let mut m = Map::new();
    m.insert("end".into(), json!(end));
    m.insert("name".into(), json!(name));
    m.insert("start".into(), json!(start));
    Value::Object(m)
}
