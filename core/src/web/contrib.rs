//! Contributor routes (spec `http.md` §5): monthly rankings, last contributors, awards, ranks,
//! badges and trophies, read from the gamification keys (`CONTRIB_*`).
//!
//! The original looks every organisation up with about 80 sequential Redis calls (and
//! `/_getCategPerContrib` with about 50,000). Here each route issues one pipeline per step: the
//! month's daily sorted sets are read whole and summed in memory, and every organisation's
//! requirement and badge keys come back in one `MGET`. The answers are the same.

use super::error::WebError;
use super::params::{self, Params};
use super::state::AppState;
use crate::config::Ranking;
use crate::keys;
use chrono::{NaiveDate, NaiveDateTime};
use redis::aio::ConnectionManager;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Number of requirement keys (`CONTRIB_REQ_1..=16`) that make the organisation rank.
const REQUIREMENTS: usize = 16;

/// Python's `round(x, 2)` (correctly rounded decimal, as both languages print).
fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// `rankLevel`: 0 and 1 are exact, otherwise the logarithm in base `rankMultiplier`, rounded to
/// two decimals.
pub fn rank_level(points: f64, multiplier: f64) -> Value {
    if points == 0.0 {
        json!(0)
    } else if points == 1.0 {
        json!(1)
    } else {
        json!(round2(points.ln() / multiplier.ln()))
    }
}

/// The monthly rank shown in tables: `int(rankLevel)`.
pub fn rank_int(points: f64, multiplier: f64) -> i64 {
    match rank_level(points, multiplier) {
        Value::Number(n) => n.as_f64().map(|f| f.trunc() as i64).unwrap_or(0),
        _ => 0,
    }
}

/// Points as the original returns them: the integer 0 when no day had a score, else a float.
pub fn points_value(p: Option<f64>) -> Value {
    match p {
        Some(f) => json!(f),
        None => json!(0),
    }
}

/// MISP serves organisation logos; without `[RedisGlobal] misp_web_url` there is no MISP to
/// ask (the original then points at `http://0.0.0.0`), so a logo of our own stands in.
fn logo_path(st: &AppState, org: &str) -> String {
    match st.cfg.misp_web_url_set {
        true => format!("{}/img/orgs/{org}.png", st.cfg.misp_web_url),
        false => "/static/org.svg".into(),
    }
}

/// Sum per organisation of `CONTRIB_DAY` over `days`, keeping first-seen order (days in the
/// given order, each day highest score first) so that ties sort as in the original.
async fn sum_days(
    c: &mut ConnectionManager,
    days: &[NaiveDate],
) -> Result<Vec<(String, f64)>, WebError> {
    let mut pipe = redis::pipe();
    for d in days {
        pipe.cmd("ZREVRANGE")
            .arg(keys::contrib_day(&params::day_key_date(d)))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES");
    }
    let per_day: Vec<Vec<(String, f64)>> = pipe.query_async(c).await?;
    let mut order: Vec<(String, f64)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (org, score) in per_day.into_iter().flatten() {
        match index.get(&org) {
            Some(&i) => order[i].1 += score,
            None => {
                index.insert(org.clone(), order.len());
                order.push((org, score));
            }
        }
    }
    Ok(order)
}

/// Monthly points of each organisation for the month of `date` (absent: no score that month).
async fn month_points(
    c: &mut ConnectionManager,
    date: &NaiveDateTime,
) -> Result<HashMap<String, f64>, WebError> {
    Ok(sum_days(c, &params::month_days(date))
        .await?
        .into_iter()
        .collect())
}

/// Requirement count (`orgRank`) and honour badges of each organisation, one `MGET`.
async fn ranks_and_badges(
    c: &mut ConnectionManager,
    orgs: &[String],
    badges: usize,
) -> Result<Vec<(usize, Vec<usize>)>, WebError> {
    if orgs.is_empty() {
        return Ok(vec![]);
    }
    let per = REQUIREMENTS + badges;
    let mut cmd = redis::cmd("MGET");
    for org in orgs {
        for i in 1..=REQUIREMENTS {
            cmd.arg(keys::contrib_org(org, &format!("CONTRIB_REQ_{i}")));
        }
        for i in 1..=badges {
            cmd.arg(keys::contrib_org(org, &format!("BADGE_{i}")));
        }
    }
    let vals: Vec<Option<Vec<u8>>> = cmd.query_async(c).await?;
    Ok(vals
        .chunks(per)
        .map(|chunk| {
            let rank = chunk[..REQUIREMENTS.min(chunk.len())]
                .iter()
                .filter(|v| v.is_some())
                .count();
            let badges = chunk
                .iter()
                .skip(REQUIREMENTS)
                .enumerate()
                .filter(|(_, v)| v.is_some())
                .map(|(i, _)| i + 1)
                .collect();
            (rank, badges)
        })
        .collect())
}

/// The ranking table: `(org, points)` in order, enriched as the original's contributor objects.
async fn contributor_rows(
    st: &AppState,
    c: &mut ConnectionManager,
    list: &[(String, Option<f64>)],
) -> Result<Vec<Map<String, Value>>, WebError> {
    let orgs: Vec<String> = list.iter().map(|(o, _)| o.clone()).collect();
    let rb = ranks_and_badges(c, &orgs, st.ranking.badges.len()).await?;
    Ok(list
        .iter()
        .zip(rb)
        .map(|((org, pnts), (org_rank, badges))| {
            let mut m = Map::new();
            m.insert("honorBadge".into(), json!(badges));
            m.insert("logo_path".into(), json!(logo_path(st, org)));
            m.insert("org".into(), json!(org));
            m.insert("orgRank".into(), json!(org_rank));
            m.insert("pnts".into(), points_value(*pnts));
            m.insert(
                "rank".into(),
                json!(rank_int(pnts.unwrap_or(0.0), st.ranking.rank_multiplier)),
            );
            m
        })
        .collect())
}

/// The month's ranking (most points first, ties in first-seen order), at most `max` entries.
async fn ranking_of_month(
    c: &mut ConnectionManager,
    date: &NaiveDateTime,
    max: usize,
) -> Result<Vec<(String, Option<f64>)>, WebError> {
    let mut list = sum_days(c, &params::month_days(date)).await?;
    // A stable sort keeps ties in first-seen order, as Python's sorted(..., reverse=True).
    list.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    list.truncate(max);
    Ok(list.into_iter().map(|(o, p)| (o, Some(p))).collect())
}

/// `/_getTopContributor?date=` (100) and the halls of fame (10, previous month by default).
pub async fn top_contributors(
    st: &AppState,
    p: &Params,
    max: usize,
    default_previous_month: bool,
) -> Result<Value, WebError> {
    let date = match p
        .get("date")
        .and_then(params::parse_float)
        .and_then(params::local_naive)
    {
        Some(d) => d,
        None if default_previous_month => last_day_of_previous_month(&params::now_naive(&st.clock)),
        None => params::now_naive(&st.clock),
    };
    let mut c = st.data.conn().await?;
    let list = ranking_of_month(&mut c, &date, max).await?;
    let rows = contributor_rows(st, &mut c, &list).await?;
    Ok(Value::Array(rows.into_iter().map(Value::Object).collect()))
}

fn last_day_of_previous_month(now: &NaiveDateTime) -> NaiveDateTime {
    use chrono::Datelike;
    let first = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap_or(now.date());
    let prev = first.pred_opt().unwrap_or(first);
    prev.and_time(now.time())
}

/// Set once a Redis said it has no `ZUNION` (before 6.2): the sums are then read day by day.
static NO_ZUNION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For each category, every organisation's contributions over `days` (`CONTRIB_CATEG:<day>:
/// <categ>` summed). Redis sums them (`ZUNION`, one command per category instead of one per
/// category and day: 16 instead of 496 for a month, the heaviest route's cost); the counts are
/// whole numbers, so the sums are exact in any order. Without `ZUNION` (Redis before 6.2, or a
/// user not allowed it) the day keys are read and summed here.
async fn month_sums_per_categ(
    c: &mut ConnectionManager,
    categs: &[String],
    days: &[NaiveDate],
) -> Result<Vec<HashMap<String, f64>>, WebError> {
    use std::sync::atomic::Ordering;
    let day_keys = |categ: &str| -> Vec<String> {
        days.iter()
            .map(|d| keys::contrib_categ(&params::day_key_date(d), categ))
            .collect()
    };
    if !NO_ZUNION.load(Ordering::Relaxed) {
        let mut pipe = redis::pipe();
        for categ in categs {
            pipe.cmd("ZUNION")
                .arg(days.len())
                .arg(day_keys(categ))
                .arg("WITHSCORES");
        }
        let summed: redis::RedisResult<Vec<Vec<(String, f64)>>> = pipe.query_async(c).await;
        match summed {
            Ok(sets) => return Ok(sets.into_iter().map(|s| s.into_iter().collect()).collect()),
            // A refusal by the server (unknown command, NOPERM): Redis is there, sum here.
            Err(e) if !(e.is_io_error() || e.is_connection_dropped() || e.is_timeout()) => {
                if e.to_string()
                    .to_ascii_lowercase()
                    .contains("unknown command")
                {
                    NO_ZUNION.store(true, Ordering::Relaxed);
                }
                tracing::debug!("ZUNION refused ({e}): summing the day keys here");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut pipe = redis::pipe();
    for categ in categs {
        for k in day_keys(categ) {
            pipe.cmd("ZRANGE").arg(k).arg(0).arg(-1).arg("WITHSCORES");
        }
    }
    let sets: Vec<Vec<(String, f64)>> = pipe.query_async(c).await?;
    Ok(sets
        .chunks(days.len())
        .map(|per_day| {
            let mut sums: HashMap<String, f64> = HashMap::new();
            for (org, s) in per_day.iter().flatten() {
                *sums.entry(org.clone()).or_insert(0.0) += s;
            }
            sums
        })
        .collect())
}

/// `/_getCategPerContrib?date=`: the monthly ranking plus, per category of `ranking.cfg`, the
/// month's contributions of each organisation.
pub async fn categ_per_contrib(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let date = params::date_or_now(p, "date", &st.clock);
    let mut c = st.data.conn().await?;
    let list = ranking_of_month(&mut c, &date, 100).await?;
    let mut rows = contributor_rows(st, &mut c, &list).await?;
    let days = params::month_days(&date);
    let categs = &st.ranking.categories;
    let sums = if categs.is_empty() || days.is_empty() {
        vec![]
    } else {
        month_sums_per_categ(&mut c, categs, &days).await?
    };
    for (categ, sums) in categs.iter().zip(&sums) {
        for row in rows.iter_mut() {
            let org = row.get("org").and_then(Value::as_str).unwrap_or("");
            let v = points_value(sums.get(org).copied());
            row.insert(categ.clone(), v);
        }
    }
    Ok(Value::Array(
        rows.into_iter().map(|r| Value::Object(sorted(r))).collect(),
    ))
}

/// Keys in code-point order, as Flask's `jsonify` writes them.
pub fn sorted(m: Map<String, Value>) -> Map<String, Value> {
    let mut v: Vec<(String, Value)> = m.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().collect()
}

/// The 8 days from today back to today − 7.
fn last_8_days(st: &AppState) -> Vec<String> {
    let now = params::now_naive(&st.clock);
    (0..8)
        .map(|i| params::day_key(&(now - chrono::Duration::days(i))))
        .collect()
}

/// The `max_number_of_last_contributor` highest members (with scores) of the per-day key
/// `key(day)` for each of the last 8 days, newest day first, in one round trip.
async fn top_of_last_8_days(
    st: &AppState,
    c: &mut redis::aio::ConnectionManager,
    key: fn(&str) -> String,
) -> Result<Vec<Vec<(String, f64)>>, WebError> {
    let n = st.cfg.max_last_contributors as isize;
    if n <= 0 {
        return Ok(vec![]);
    }
    let mut pipe = redis::pipe();
    for d in last_8_days(st) {
        pipe.cmd("ZREVRANGE")
            .arg(key(&d))
            .arg(0)
            .arg(n - 1)
            .arg("WITHSCORES");
    }
    Ok(pipe.query_async(c).await?)
}

/// `/_getLastContributors`: organisations that contributed in the last 8 days, newest day
/// first, each once, with the time of its last contribution.
pub async fn last_contributors(st: &AppState) -> Result<Value, WebError> {
    let mut c = st.data.conn().await?;
    let per_day = top_of_last_8_days(st, &mut c, keys::contrib_last).await?;
    let mut seen = std::collections::HashSet::new();
    let list: Vec<(String, f64)> = per_day
        .into_iter()
        .flatten()
        .filter(|(o, _)| seen.insert(o.clone()))
        .collect();
    let points = month_points(&mut c, &params::now_naive(&st.clock)).await?;
    let with_points: Vec<(String, Option<f64>)> = list
        .iter()
        .map(|(o, _)| (o.clone(), points.get(o).copied()))
        .collect();
    let rows = contributor_rows(st, &mut c, &with_points).await?;
    Ok(Value::Array(
        rows.into_iter()
            .zip(list)
            .map(|(mut r, (_, epoch))| {
                r.insert("epoch".into(), json!(epoch));
                Value::Object(sorted(r))
            })
            .collect(),
    ))
}

/// `/_getLatestAwards`: awards of the last 8 days (the `date` parameter is ignored, as in the
/// original).
pub async fn latest_awards(st: &AppState) -> Result<Value, WebError> {
    let mut c = st.data.conn().await?;
    let per_day = top_of_last_8_days(st, &mut c, keys::contrib_last_awards).await?;
    let awards: Vec<(Value, f64)> = per_day
        .into_iter()
        .flatten()
        .filter_map(|(m, s)| serde_json::from_str::<Value>(&m).ok().map(|v| (v, s)))
        .collect();
    let orgs: Vec<String> = awards
        .iter()
        .map(|(v, _)| {
            v.get("org")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let rb = ranks_and_badges(&mut c, &orgs, st.ranking.badges.len()).await?;
    Ok(Value::Array(
        awards
            .into_iter()
            .zip(orgs)
            .zip(rb)
            .map(|(((v, score), org), (org_rank, _))| {
                json!({
                    "award": v.get("award").cloned().unwrap_or(Value::Null),
                    "epoch": score,
                    "logo_path": logo_path(st, &org),
                    "org": org,
                    "orgRank": org_rank,
                })
            })
            .collect(),
    ))
}

/// `/_getAllOrg`.
pub async fn all_orgs(st: &AppState) -> Result<Value, WebError> {
    let mut c = st.data.conn().await?;
    let v: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys::CONTRIB_ALL_ORG)
        .query_async(&mut c)
        .await?;
    Ok(json!(v))
}

/// The organisation named by `org`, required.
pub fn required_org(p: &Params) -> Result<&str, WebError> {
    p.get("org")
        .ok_or_else(|| WebError::bad("the org parameter is required"))
}

/// Where `points` stands between two rank thresholds `floor(multiplier^x)`.
pub fn rank_progress(points: f64, r: &Ranking) -> (Value, Value) {
    let mut prev = 0.0;
    for x in 1..=r.level_max {
        let threshold = r.rank_multiplier.powi(x as i32).floor();
        if prev <= points && points < threshold {
            return (json!(threshold - points), json!(prev));
        }
        prev = threshold;
    }
    (json!(0), json!(r.rank_multiplier.powi(r.level_max as i32)))
}

/// One organisation's points this month (`None` without any), its rank and its badges.
async fn org_standing(
    st: &AppState,
    org: &str,
) -> Result<(Option<f64>, usize, Vec<usize>), WebError> {
    let mut c = st.data.conn().await?;
    let points = month_points(&mut c, &params::now_naive(&st.clock))
        .await?
        .get(org)
        .copied();
    let rb = ranks_and_badges(&mut c, &[org.to_string()], st.ranking.badges.len()).await?;
    let (org_rank, badges) = rb.into_iter().next().unwrap_or_default();
    Ok((points, org_rank, badges))
}

/// `/_getOrgRank?org=`: the organisation's monthly points, rank and progress.
pub async fn org_rank(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let org = required_org(p)?;
    let (points, org_rank, badges) = org_standing(st, org).await?;
    let pf = points.unwrap_or(0.0);
    let (remaining, step) = rank_progress(pf, &st.ranking);
    let remaining = match (points, remaining) {
        // The original subtracts from an int 0 when there are no points: an int.
        (None, Value::Number(n)) => n.as_f64().map(|f| json!(f as i64)).unwrap_or(json!(0)),
        (_, v) => v,
    };
    Ok(json!({
        "honorBadge": badges,
        "org": org,
        "orgRank": org_rank,
        "points": points_value(points),
        "rank": rank_level(pf, st.ranking.rank_multiplier),
        "remainingPts": remaining,
        "stepPts": step,
    }))
}

/// `/_getContributionOrgStatus?org=`: which requirements the organisation fulfils. Without
/// `org` the original looks up an organisation literally named `None`; kept.
pub async fn contribution_status(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let org = p.get("org").unwrap_or("None");
    let mut c = st.data.conn().await?;
    let mut cmd = redis::cmd("MGET");
    for i in 1..=REQUIREMENTS {
        cmd.arg(keys::contrib_org(org, &format!("CONTRIB_REQ_{i}")));
    }
    cmd.arg(keys::contrib_org(org, "points"));
    let vals: Vec<Option<String>> = cmd.query_async(&mut c).await?;
    let fulfilled: Vec<bool> = vals
        .iter()
        .take(REQUIREMENTS)
        .map(Option::is_some)
        .collect();
    let rank = fulfilled.iter().filter(|f| **f).count();
    let mut status = Map::new();
    for (i, f) in fulfilled.iter().enumerate() {
        let v = if *f {
            1
        } else if i < rank {
            0
        } else {
            -1
        };
        status.insert((i + 1).to_string(), json!(v));
    }
    let total = vals
        .get(REQUIREMENTS)
        .cloned()
        .flatten()
        .map(|s| match s.trim().parse::<i64>() {
            Ok(i) => json!(i),
            Err(_) => s
                .trim()
                .parse::<f64>()
                .map(|f| json!(f))
                .unwrap_or(json!(0)),
        })
        .unwrap_or(json!(0));
    Ok(json!({"rank": rank, "status": status, "totPoints": total}))
}

/// `/_getHonorBadges?org=` (org `None` when absent, as in the original).
pub async fn honor_badges(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let org = p.get("org").unwrap_or("None");
    let mut c = st.data.conn().await?;
    let rb = ranks_and_badges(&mut c, &[org.to_string()], st.ranking.badges.len()).await?;
    Ok(json!(rb
        .into_iter()
        .next()
        .map(|(_, b)| b)
        .unwrap_or_default()))
}

/// Trophy level of a position: 0 for the first, else the interval of the cumulative
/// `trophyMapping` percentages that holds `pos / total * 100`.
pub fn trophy_rank(pos: usize, total: usize, r: &Ranking) -> usize {
    if pos == 0 || total == 0 {
        return 0;
    }
    let ratio = pos as f64 / total as f64 * 100.0;
    let mut lower = 0.0;
    for (i, step) in r.trophy_mapping.iter().enumerate() {
        let upper = lower + step;
        if lower < ratio && ratio <= upper {
            return i + 1;
        }
        lower = upper;
    }
    r.trophy_mapping.len()
}

/// The trophy shown for a level: the best is `trophyNum`, counted from the other end.
pub fn trophy_true_rank(rank: usize, r: &Ranking) -> i64 {
    r.trophy_titles.len() as i64 - 1 - rank as i64
}

/// `/_getTrophies?org=`: per category where the organisation has trophy points.
pub async fn trophies(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let org = required_org(p)?;
    let categs = &st.ranking.categories;
    let mut pipe = redis::pipe();
    for categ in categs {
        let k = keys::contrib_trophy(categ);
        pipe.cmd("ZCARD").arg(&k);
        pipe.cmd("ZREVRANK").arg(&k).arg(org);
        pipe.cmd("ZSCORE").arg(&k).arg(org);
    }
    let mut c = st.data.conn().await?;
    let vals: Vec<redis::Value> = if categs.is_empty() {
        vec![]
    } else {
        pipe.query_async(&mut c).await?
    };
    let mut out = Vec::new();
    for (categ, chunk) in categs.iter().zip(vals.chunks(3)) {
        let card: usize = redis::from_redis_value(&chunk[0]).unwrap_or(0);
        let pos: Option<usize> = chunk
            .get(1)
            .and_then(|v| redis::from_redis_value(v).ok())
            .flatten();
        let score: Option<f64> = chunk
            .get(2)
            .and_then(|v| redis::from_redis_value(v).ok())
            .flatten();
        let (Some(pos), Some(score)) = (pos, score) else {
            continue;
        };
        if card == 0 {
            continue;
        }
        let rank = trophy_rank(pos, card, &st.ranking);
        out.push(json!({
            "categ": categ,
            "trophy_points": score,
            "trophy_rank": rank,
            "trophy_title": st.ranking.trophy_titles.get(rank).cloned().unwrap_or_default(),
            "trophy_true_rank": trophy_true_rank(rank, &st.ranking),
        }));
    }
    Ok(Value::Array(out))
}

fn trophy_table(set: Vec<(String, f64)>, r: &Ranking) -> Value {
    let total = set.len();
    Value::Array(
        set.into_iter()
            .enumerate()
            .map(|(pos, (org, s))| json!([org, s, trophy_true_rank(trophy_rank(pos, total, r), r)]))
            .collect(),
    )
}

/// `/_getAllOrgsTrophyRanking/<categ>`; without a category (a 500 in the original) every
/// category of `ranking.cfg`, as an object.
pub async fn trophy_ranking(st: &AppState, categ: Option<&str>) -> Result<Value, WebError> {
    let mut c = st.data.conn().await?;
    match categ {
        Some(categ) => {
            let set: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
                .arg(keys::contrib_trophy(categ))
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut c)
                .await?;
            Ok(trophy_table(set, &st.ranking))
        }
        None => {
            let categs = &st.ranking.categories;
            let mut pipe = redis::pipe();
            for categ in categs {
                pipe.cmd("ZREVRANGE")
                    .arg(keys::contrib_trophy(categ))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES");
            }
            let sets: Vec<Vec<(String, f64)>> = if categs.is_empty() {
                vec![]
            } else {
                pipe.query_async(&mut c).await?
            };
            let mut m = Map::new();
            for (categ, set) in categs.iter().zip(sets) {
                m.insert(categ.clone(), trophy_table(set, &st.ranking));
            }
            Ok(Value::Object(sorted(m)))
        }
    }
}

/// One organisation's points for each of the last 8 days: `[local midnight, points]`.
async fn org_overtime_of(
    st: &AppState,
    c: &mut ConnectionManager,
    org: &str,
) -> Result<Value, WebError> {
    let now = params::now_naive(&st.clock);
    let days: Vec<NaiveDate> = (0..8)
        .map(|i| (now - chrono::Duration::days(i)).date())
        .collect();
    let mut pipe = redis::pipe();
    for d in &days {
        pipe.cmd("ZSCORE")
            .arg(keys::contrib_day(&params::day_key_date(d)))
            .arg(org);
    }
    let scores: Vec<Option<f64>> = pipe.query_async(c).await?;
    let data: Vec<Value> = days
        .iter()
        .zip(scores)
        .map(|(d, s)| {
            let midnight = params::mktime(&d.and_time(chrono::NaiveTime::MIN));
            json!([midnight, points_value(s)])
        })
        .collect();
    Ok(json!({"data": data, "label": org}))
}

/// `/_getOrgOvertime?org=` (a 500 in the original without `org`; a 400 here).
pub async fn org_overtime(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let org = required_org(p)?;
    let mut c = st.data.conn().await?;
    org_overtime_of(st, &mut c, org).await
}

/// `/_getTop5Overtime`: the daily points of this month's top 5.
pub async fn top5_overtime(st: &AppState) -> Result<Value, WebError> {
    let mut c = st.data.conn().await?;
    let top = ranking_of_month(&mut c, &params::now_naive(&st.clock), 5).await?;
    let mut out = Vec::new();
    for (org, _) in top {
        out.push(org_overtime_of(st, &mut c, &org).await?);
    }
    Ok(Value::Array(out))
}

/// Enrichment of a contributor for the live streams: the same fields as the tables, in the
/// original's insertion order (the SSE payloads are `json.dumps` output, not sorted).
pub async fn contributor_for_stream(
    st: &AppState,
    org: &str,
) -> Result<Map<String, Value>, WebError> {
    let (points, org_rank, badges) = org_standing(st, org).await?;
    let mut m = Map::new();
    m.insert(
        "rank".into(),
        json!(rank_int(points.unwrap_or(0.0), st.ranking.rank_multiplier)),
    );
    m.insert("orgRank".into(), json!(org_rank));
    m.insert("honorBadge".into(), json!(badges));
    m.insert("logo_path".into(), json!(logo_path(st, org)));
    m.insert("org".into(), json!(org));
    m.insert("pnts".into(), points_value(points));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_levels() {
        assert_eq!(rank_level(0.0, 2.0), json!(0));
        assert_eq!(rank_level(1.0, 2.0), json!(1));
        assert_eq!(rank_level(1115.0, 2.0), json!(10.12));
        assert_eq!(rank_int(1115.0, 2.0), 10);
        assert_eq!(rank_level(127.0, 2.0), json!(6.99));
    }

    #[test]
    fn progress_between_thresholds() {
        let r = Ranking::default();
        assert_eq!(rank_progress(1115.0, &r), (json!(933.0), json!(1024.0)));
        assert_eq!(rank_progress(0.0, &r), (json!(2.0), json!(0.0)));
    }

    #[test]
    fn trophy_levels() {
        let r = Ranking::default();
        assert_eq!(trophy_rank(0, 10, &r), 0);
        assert_eq!(trophy_true_rank(0, &r), 12);
        // 1/50 = 2% is in (0, 2]: level 1.
        assert_eq!(trophy_rank(1, 50, &r), 1);
        // 10% is in (2, 11]: level 2.
        assert_eq!(trophy_rank(1, 10, &r), 2);
    }
}
