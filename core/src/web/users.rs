//! User-login routes (spec `http.md` §6): punch card, logged organisations, contribution per
//! login, login versus contribution.
//!
//! Login timestamps are read with `ZRANGEBYSCORE` limited to the window asked for, instead of
//! reading every organisation's whole login history once per day as the original does; the
//! counts are the same.

use super::contrib::points_value;
use super::error::WebError;
use super::params::{self, Params};
use super::state::AppState;
use crate::keys;
use chrono::{Datelike, NaiveDateTime, Timelike};
use redis::aio::ConnectionManager;
use serde_json::{json, Value};

/// The organisations whose logins count: the one asked for, or every one that ever logged in.
async fn orgs_for(c: &mut ConnectionManager, p: &Params) -> Result<Vec<String>, WebError> {
    match p.get("org") {
        Some(o) => Ok(vec![o.to_string()]),
        None => Ok(redis::cmd("SMEMBERS")
            .arg(keys::LOGIN_ALL_ORG)
            .query_async(c)
            .await?),
    }
}

/// Login instants (epoch seconds) of `orgs` within `[from, to]`.
async fn logins_between(
    c: &mut ConnectionManager,
    orgs: &[String],
    from: i64,
    to: i64,
) -> Result<Vec<f64>, WebError> {
    if orgs.is_empty() {
        return Ok(vec![]);
    }
    let mut pipe = redis::pipe();
    for org in orgs {
        pipe.cmd("ZRANGEBYSCORE")
            .arg(keys::login_timestamp(org))
            .arg(from)
            .arg(to)
            .arg("WITHSCORES");
    }
    let sets: Vec<Vec<(String, f64)>> = pipe.query_async(c).await?;
    Ok(sets.into_iter().flatten().map(|(_, s)| s).collect())
}

/// `/_getUserLogins?date=&org=`: a 7×24 punch card of the 7 days up to `date`, rows Sunday
/// first, hours in local time.
pub async fn user_logins(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let date = params::date_or_now(p, "date", &st.clock);
    let mut c = st.data.conn().await?;
    let orgs = orgs_for(&mut c, p).await?;
    let first = (date - chrono::Duration::days(6)).date();
    let from = params::mktime(&first.and_time(chrono::NaiveTime::MIN));
    let to =
        params::mktime(&(date.date() + chrono::Duration::days(1)).and_time(chrono::NaiveTime::MIN))
            - 1;
    let stamps = logins_between(&mut c, &orgs, from, to).await?;
    // Indexed by Monday = 0, as Python's weekday().
    let mut week = [[0i64; 24]; 7];
    for s in stamps {
        if let Some(t) = params::local_naive(s) {
            if t.date() >= first && t.date() <= date.date() {
                week[t.weekday().num_days_from_monday() as usize][t.hour() as usize] += 1;
            }
        }
    }
    let order = [6usize, 0, 1, 2, 3, 4, 5];
    Ok(json!(order
        .iter()
        .map(|&i| week[i].to_vec())
        .collect::<Vec<_>>()))
}

/// `/_getAllLoggedOrg`.
pub async fn all_logged_orgs(st: &AppState) -> Result<Value, WebError> {
    let mut c = st.data.conn().await?;
    let v: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys::LOGIN_ALL_ORG)
        .query_async(&mut c)
        .await?;
    Ok(json!(v))
}

static TOP_ORG_LOGIN: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();

/// KEYS: the days' `LOGIN_ORG:<day>`, then their `CONTRIB_DAY:<day>`, newest day first.
/// Returns `[org, login days, points on them]` for the best 12 by points per login day, ties
/// in first-seen order, as the original's stable sort. Points are summed day by day in that
/// order and returned with 17 digits, so the caller's division gives the very same ratio.
/// `unpack` is bounded by Lua's C stack (8,000), hence the pieces of 5,000.
const TOP_ORG_LOGIN_LUA: &str = r"
local days = #KEYS / 2
local logins, points, order = {}, {}, {}
for d = 1, days do
  local orgs = redis.call('ZRANGE', KEYS[d], 0, -1)
  local i = 1
  while i <= #orgs do
    local j = math.min(i + 4999, #orgs)
    local scores = redis.call('ZMSCORE', KEYS[days + d], unpack(orgs, i, j))
    for k = i, j do
      local org, s = orgs[k], scores[k - i + 1]
      local p = s and tonumber(s) or 0
      if logins[org] then
        logins[org] = logins[org] + 1
        points[org] = points[org] + p
      else
        logins[org] = 1
        points[org] = 0 + p
        order[#order + 1] = org
      end
    end
    i = j + 1
  end
end
local top = {}
for _, org in ipairs(order) do
  local r = points[org] / logins[org]
  local pos = #top + 1
  while pos > 1 and top[pos - 1][2] < r do pos = pos - 1 end
  if pos <= 12 then
    table.insert(top, pos, {org, r})
    top[13] = nil
  end
end
local out = {}
for i, t in ipairs(top) do
  out[i] = {t[1], logins[t[1]], string.format('%.17g', points[t[1]])}
end
return out
";

/// `/_getTopOrglogin?date=`: per organisation that logged in during the 8 days up to `date`,
/// its contribution points on those login days divided by the number of login days; best 12.
pub async fn top_org_login(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let date = params::date_or_now(p, "date", &st.clock);
    let days: Vec<String> = (0..8)
        .map(|i| params::day_key(&(date - chrono::Duration::days(i))))
        .collect();
    // Done in Redis, which returns only the best 12: with 10,000 organisations, parsing
    // every login and score in redis-rs was most of the time (45-51 ms; now see
    // docs/performance.md).
    let script = TOP_ORG_LOGIN.get_or_init(|| redis::Script::new(TOP_ORG_LOGIN_LUA));
    let mut invocation = script.prepare_invoke();
    for d in &days {
        invocation.key(keys::login_org(d));
    }
    for d in &days {
        invocation.key(keys::contrib_day(d));
    }
    let mut c = st.data.conn().await?;
    let best: Vec<(String, i64, String)> = invocation.invoke_async(&mut c).await?;
    let mut ratios: Vec<(String, f64)> = best
        .into_iter()
        .map(|(org, n, pts)| (org, pts.parse::<f64>().unwrap_or(0.0) / n.max(1) as f64))
        .collect();
    // Already in order; sorted again (stable) so the order never rests on the script alone.
    ratios.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    ratios.truncate(12);
    Ok(json!(ratios
        .into_iter()
        .map(|(o, r)| json!([o, r]))
        .collect::<Vec<_>>()))
}

/// `/_getLoginVSCOntribution?date=`: `[organisations that logged in and contributed that day,
/// those that only logged in]`.
pub async fn login_vs_contribution(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let day = params::day_key(&params::date_or_now(p, "date", &st.clock));
    let mut c = st.data.conn().await?;
    let logged: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys::login_org(&day))
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await?;
    if logged.is_empty() {
        return Ok(json!([0, 0]));
    }
    let mut cmd = redis::cmd("ZMSCORE");
    cmd.arg(keys::contrib_day(&day));
    for o in &logged {
        cmd.arg(o);
    }
    let scores: Vec<Option<f64>> = cmd.query_async(&mut c).await?;
    let with = scores.iter().filter(|s| s.is_some()).count();
    Ok(json!([with, logged.len() - with]))
}

fn floor_hour(d: &NaiveDateTime) -> NaiveDateTime {
    d.date().and_hms_opt(d.hour(), 0, 0).unwrap_or(*d)
}

/// `/_getUserLoginsAndContribOvertime?date=&org=`: hourly logins and the day's contribution
/// points over the 145 hours ending at `date`'s hour.
pub async fn logins_and_contrib_overtime(st: &AppState, p: &Params) -> Result<Value, WebError> {
    let date = params::date_or_now(p, "date", &st.clock);
    let now = st.clock.now_f64();
    let end = floor_hour(&date);
    let start = end - chrono::Duration::hours(144);
    let hours: Vec<NaiveDateTime> = (0..=144)
        .map(|h| start + chrono::Duration::hours(h))
        .collect();
    let stamps: Vec<i64> = hours.iter().map(params::mktime).collect();
    let mut c = st.data.conn().await?;
    let orgs = orgs_for(&mut c, p).await?;
    let from = stamps.first().copied().unwrap_or(0);
    let to = stamps.last().copied().unwrap_or(0) + 3599;
    let logins = logins_between(&mut c, &orgs, from, to).await?;
    let mut login_counts = vec![0i64; stamps.len()];
    for l in logins {
        let l = l.floor() as i64;
        if let Some(i) = stamps.iter().rposition(|s| *s <= l) {
            if l < stamps[i] + 3600 {
                login_counts[i] += 1;
            }
        }
    }
    // The day totals of contribution points, one lookup per distinct day.
    let mut days: Vec<String> = hours.iter().map(params::day_key).collect();
    days.dedup();
    let mut pipe = redis::pipe();
    for d in &days {
        match p.get("org") {
            Some(org) => {
                pipe.cmd("ZSCORE").arg(keys::contrib_day(d)).arg(org);
            }
            None => {
                pipe.cmd("ZRANGE")
                    .arg(keys::contrib_day(d))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES");
            }
        }
    }
    let vals: Vec<redis::Value> = pipe.query_async(&mut c).await?;
    let totals: Vec<Option<f64>> = vals
        .iter()
        .map(|v| {
            if p.get("org").is_some() {
                redis::from_redis_value::<Option<f64>>(v).ok().flatten()
            } else {
                let set: Vec<(String, f64)> = redis::from_redis_value(v).unwrap_or_default();
                (!set.is_empty()).then(|| set.iter().map(|(_, s)| s).sum())
            }
        })
        .collect();
    let contrib: Vec<Value> = hours
        .iter()
        .zip(&stamps)
        .map(|(h, ts)| {
            let day = params::day_key(h);
            let total = if (*ts as f64) <= now {
                days.iter()
                    .position(|d| *d == day)
                    .and_then(|i| totals.get(i).copied().flatten())
            } else {
                None
            };
            json!([ts, points_value(total)])
        })
        .collect();
    let login: Vec<Value> = stamps
        .iter()
        .zip(login_counts)
        .map(|(ts, n)| json!([ts, n]))
        .collect();
    Ok(json!({"contrib": contrib, "login": login}))
}
