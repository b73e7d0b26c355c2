//! Contributions and gamification: monthly ranking, requirements, trophies, awards.
//!
//! The original makes dozens of Redis round trips per contribution (before/after snapshots of
//! 16 requirements, 5 badges and 16 trophy rankings). Here the state a batch needs is read in
//! one pipeline ([`Snapshot::load`]), every contribution of the batch is scored in memory in
//! order, exactly as the original would have seen the state at that moment, and the resulting
//! writes and publications join the batch's transaction.

pub mod honors;
pub mod scoring;

use crate::config::{Ranking, Scoring};
use crate::keys;
use crate::pyjson;
use crate::rules::{ContribKind, Contribution};
use crate::store::ops::DbNumbers;
use crate::store::{Db, Op};
use scoring::{Facts, DAY};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// What the scoring needs to know about one organisation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgState {
    pub points: i64,
    /// Requirements 1..=level_max.
    pub reqs: Vec<bool>,
    /// Honor badges 1..=N (given by hand only).
    pub badges: Vec<bool>,
    pub attr_week: i64,
    pub sight_week: i64,
    pub event_week: i64,
    pub event_month: i64,
}

/// A trophy sorted set held in memory: member → score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSet(pub BTreeMap<String, f64>);

impl ZSet {
    /// Redis's ZREVRANK: higher scores first, equal scores by member in reverse byte order.
    pub fn revrank(&self, member: &str) -> Option<usize> {
        let s = *self.0.get(member)?;
        Some(
            self.0
                .iter()
                .filter(|(m, v)| **v > s || (**v == s && m.as_str() > member))
                .count(),
        )
    }
}

/// The state a batch of contributions reads, kept up to date as they are scored.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub orgs: HashMap<String, OrgState>,
    /// Trophy zsets of the `[HonorTrophyCateg]` categories.
    pub trophies: HashMap<String, ZSet>,
}

/// Field names of `CONTRIB_ORG:<org>:<field>`.
const POINTS: &str = "points";
const ATTR_WEEK: &str = "ATTR_WEEK_COUNT";
const SIGHT_WEEK: &str = "SIGHT_WEEK_COUNT";
const EVENT_WEEK: &str = "EVENT_WEEK_COUNT";
const EVENT_MONTH: &str = "EVENT_MONTH_COUNT";

pub(crate) fn req_field(i: usize) -> String {
    format!("CONTRIB_REQ_{i}")
}

impl Snapshot {
    /// Reads what scoring `orgs` needs, in one round trip.
    pub fn load(
        conn: &mut redis::Connection,
        dbs: DbNumbers,
        ranking: &Ranking,
        orgs: &[String],
    ) -> redis::RedisResult<Snapshot> {
        let levels = ranking.level_max as usize;
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg(dbs.data).ignore();
        for org in orgs {
            let mut fields = vec![POINTS.to_string(), ATTR_WEEK.into(), SIGHT_WEEK.into()];
            fields.extend([EVENT_WEEK.to_string(), EVENT_MONTH.into()]);
            fields.extend((1..=levels).map(req_field));
            fields.extend((1..=ranking.badges.len()).map(honors::badge_field));
            let c = pipe.cmd("MGET");
            for f in &fields {
                c.arg(keys::contrib_org(org, f));
            }
        }
        for categ in &ranking.categories {
            pipe.cmd("ZRANGE")
                .arg(keys::contrib_trophy(categ))
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES");
        }
        pipe.cmd("SELECT").arg(dbs.list).ignore();
        let replies: Vec<redis::Value> = pipe.query(conn)?;
        let mut it = replies.into_iter();
        let mut snap = Snapshot::default();
        let num = |v: &Option<String>| -> i64 {
            v.as_deref()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .unwrap_or(0)
        };
        for org in orgs {
            let vals: Vec<Option<String>> = match it.next() {
                Some(v) => redis::from_redis_value(&v)?,
                None => Vec::new(),
            };
            let get = |i: usize| vals.get(i).cloned().flatten();
            let state = OrgState {
                points: num(&get(0)),
                attr_week: num(&get(1)),
                sight_week: num(&get(2)),
                event_week: num(&get(3)),
                event_month: num(&get(4)),
                reqs: (0..levels).map(|i| get(5 + i).is_some()).collect(),
                badges: (0..ranking.badges.len())
                    .map(|i| get(5 + levels + i).is_some())
                    .collect(),
            };
            snap.orgs.insert(org.clone(), state);
        }
        for categ in &ranking.categories {
            let pairs: Vec<(String, f64)> = match it.next() {
                Some(v) => redis::from_redis_value(&v)?,
                None => Vec::new(),
            };
            snap.trophies
                .insert(categ.clone(), ZSet(pairs.into_iter().collect()));
        }
        Ok(snap)
    }
}

/// Channels the awards and contributions are announced on.
#[derive(Debug, Clone)]
pub struct Channels {
    pub last_contributor: String,
    pub last_awards: String,
}

/// Scores contributions against a [`Snapshot`].
pub struct Engine<'a> {
    pub ranking: &'a Ranking,
    pub mode: Scoring,
    pub channels: &'a Channels,
    cumulative: Vec<f64>,
}

impl<'a> Engine<'a> {
    pub fn new(ranking: &'a Ranking, mode: Scoring, channels: &'a Channels) -> Self {
        Engine {
            ranking,
            mode,
            channels,
            cumulative: scoring::cumulative(&ranking.trophy_mapping),
        }
    }

    /// The original's normalisation (`Support Tool` → `support_tool`); corrected mode then
    /// adopts the configuration's spelling when it differs only in case (`support_Tool`), so the
    /// points table, the datatable and the trophies see the category.
    pub fn normalise(&self, categ: &str) -> String {
        let n = categ.to_lowercase().replace(' ', "_");
        if self.mode == Scoring::Corrected {
            if let Some(c) = self
                .ranking
                .categories
                .iter()
                .find(|c| c.eq_ignore_ascii_case(&n))
            {
                return c.clone();
            }
        }
        n
    }

    /// The org's true trophy rank in one category, if the category is a trophy category and the
    /// org is ranked in it.
    fn trophy_rank(&self, snap: &Snapshot, categ: &str, org: &str) -> Option<i64> {
        let z = snap.trophies.get(categ)?;
        if z.0.is_empty() {
            return None;
        }
        let pos = z.revrank(org)?;
        let num = self.ranking.trophy_titles.len() as i64 - 1;
        Some(num - scoring::pos_to_rank(pos, z.0.len(), &self.cumulative) as i64)
    }

    /// `(category, true rank)` of every trophy the org holds, in the configured order.
    pub(crate) fn trophies_of(&self, snap: &Snapshot, org: &str) -> Vec<(String, i64)> {
        let num = self.ranking.trophy_titles.len() as i64 - 1;
        self.ranking
            .categories
            .iter()
            .filter_map(|c| {
                let z = snap.trophies.get(c)?;
                if z.0.is_empty() {
                    return None;
                }
                let pos = z.revrank(org)?;
                let rank = scoring::pos_to_rank(pos, z.0.len(), &self.cumulative) as i64;
                Some((c.clone(), num - rank))
            })
            .collect()
    }

    /// The writes and publications of one contribution, in the original's order; updates the
    /// snapshot as Redis would be updated.
    pub fn score(&self, snap: &mut Snapshot, c: &Contribution) -> Vec<Op> {
        // A contribution writes about twenty operations: growing the vector one push at a
        // time was half of this function's time in the drain's profile.
        let mut ops = Vec::with_capacity(24);
        let org = c.org.as_str();
        let day = c.day.as_str();
        let epoch = c.epoch;
        let week = 7 * DAY;
        let data = |key: String| (Db::Data, key);
        let categ_norm = c.categ.as_deref().map(|x| self.normalise(x));

        let mut pnts = self.ranking.default_pnts_per_contribution;
        if let (Some(raw), Some(norm)) = (&c.categ, &categ_norm) {
            pnts = self.ranking.points_for(norm) * c.multiplier;
            let (db, key) = data(keys::contrib_day(day));
            ops.push(Op::ZIncrBy {
                db,
                key,
                member: org.into(),
                by: pnts as f64,
            });
            let (db, key) = data(keys::contrib_categ(day, norm));
            ops.push(Op::ZIncrBy {
                db,
                key,
                member: org.into(),
                by: 1.0,
            });
            let log = pyjson::object([
                ("org", Value::String(org.into())),
                ("categ", Value::String(raw.clone())),
                ("action", c.action.clone()),
                ("epoch", Value::from(epoch)),
            ]);
            ops.push(self.announce(&self.channels.last_contributor, &log, &c.zmq_name));
        } else if self.mode == Scoring::Corrected {
            // Events and discussions count in the monthly ranking too.
            let (db, key) = data(keys::contrib_day(day));
            ops.push(Op::ZIncrBy {
                db,
                key,
                member: org.into(),
                by: pnts as f64,
            });
        }
        ops.push(Op::SAdd {
            db: Db::Data,
            key: keys::CONTRIB_ALL_ORG.into(),
            member: org.into(),
        });
        let (db, key) = data(keys::contrib_last(day));
        ops.push(Op::ZAdd {
            db,
            key: key.clone(),
            member: org.into(),
            score: epoch as f64,
        });
        ops.push(Op::Expire {
            db,
            key,
            secs: week,
        });

        let levels = self.ranking.level_max as usize;
        let state = snap
            .orgs
            .entry(org.to_string())
            .or_insert_with(|| OrgState {
                reqs: vec![false; levels],
                badges: vec![false; self.ranking.badges.len()],
                ..OrgState::default()
            });
        let old_reqs = state.reqs.clone();
        // Only the trophy of this contribution's category can change: the org's place in every
        // other category's ranking is untouched.
        let trophy_categ = categ_norm.clone().unwrap_or_default();
        let old_trophy = self.trophy_rank(snap, &trophy_categ, org);

        let state = snap.orgs.entry(org.to_string()).or_default();
        state.points += pnts;
        let total = state.points;
        ops.push(Op::IncrBy {
            db: Db::Data,
            key: keys::contrib_org(org, POINTS),
            by: pnts,
        });
        ops.push(Op::ZIncrBy {
            db: Db::Data,
            key: keys::contrib_trophy(&trophy_categ),
            member: org.into(),
            by: 1.0,
        });

        let counter = |ops: &mut Vec<Op>, field: &str, ttl: i64| {
            let key = keys::contrib_org(org, field);
            ops.push(Op::IncrBy {
                db: Db::Data,
                key: key.clone(),
                by: 1,
            });
            ops.push(Op::Expire {
                db: Db::Data,
                key,
                secs: ttl,
            });
        };
        let counts_as_attribute = match self.mode {
            Scoring::Compatible => c.kind == ContribKind::Attribute,
            Scoring::Corrected => matches!(
                c.kind,
                ContribKind::Attribute | ContribKind::ObjectAttribute
            ),
        };
        match c.kind {
            _ if counts_as_attribute => {
                counter(&mut ops, ATTR_WEEK, week);
                state.attr_week += 1;
            }
            ContribKind::Sighting => {
                counter(&mut ops, SIGHT_WEEK, week);
                state.sight_week += 1;
                let (db, key) = data(keys::contrib_categ(day, "sighting"));
                ops.push(Op::ZIncrBy {
                    db,
                    key,
                    member: org.into(),
                    by: 1.0,
                });
            }
            ContribKind::Discussion => {
                let (db, key) = data(keys::contrib_categ(day, "discussion"));
                ops.push(Op::ZIncrBy {
                    db,
                    key,
                    member: org.into(),
                    by: 1.0,
                });
            }
            ContribKind::Event => {
                counter(&mut ops, EVENT_WEEK, week);
                let month_ttl = match self.mode {
                    Scoring::Compatible => week,
                    Scoring::Corrected => self.ranking.recent_days * DAY,
                };
                counter(&mut ops, EVENT_MONTH, month_ttl);
                state.event_week += 1;
                state.event_month += 1;
            }
            ContribKind::Attribute | ContribKind::ObjectAttribute => {}
        }

        let facts = Facts {
            kind: c.kind,
            total,
            is_labeled: c.is_labeled,
            attr_week: state.attr_week,
            sight_week: state.sight_week,
            event_week: state.event_week,
            event_month: state.event_month,
        };
        for (i, ttl) in scoring::grants(self.ranking, self.mode, &facts) {
            let key = keys::contrib_org(org, &req_field(i));
            ops.push(Op::Set {
                db: Db::Data,
                key: key.clone(),
                value: "1".into(),
            });
            ops.push(Op::Expire {
                db: Db::Data,
                key,
                secs: ttl,
            });
            if let Some(slot) = state.reqs.get_mut(i - 1) {
                *slot = true;
            }
        }
        let new_reqs = state.reqs.clone();

        if let Some(z) = snap.trophies.get_mut(&trophy_categ) {
            *z.0.entry(org.to_string()).or_insert(0.0) += 1.0;
        }
        let new_trophy = self.trophy_rank(snap, &trophy_categ, org);

        let mut awards: Vec<Value> = scoring::status_awards(self.mode, &old_reqs, &new_reqs)
            .into_iter()
            .map(|i| {
                Value::Array(vec![
                    Value::String("contribution_status".into()),
                    Value::from(i),
                ])
            })
            .collect();
        if let Some(rank) = new_trophy {
            if rank > old_trophy.unwrap_or(0) {
                awards.push(Value::Array(vec![
                    Value::String("trophy".into()),
                    Value::Array(vec![Value::String(trophy_categ.clone()), Value::from(rank)]),
                ]));
            }
        }
        for award in awards {
            ops.extend(self.award_ops(org, award, day, epoch, &c.zmq_name));
        }
        ops
    }

    /// Records an award in `CONTRIB_LAST_AWARDS:<day>` and announces it on the awards channel.
    pub fn award_ops(
        &self,
        org: &str,
        award: Value,
        day: &str,
        epoch: i64,
        zmq_name: &str,
    ) -> Vec<Op> {
        let member = pyjson::object([
            ("org", Value::String(org.into())),
            ("award", award),
            ("epoch", Value::from(epoch)),
        ]);
        let key = keys::contrib_last_awards(day);
        vec![
            Op::ZAdd {
                db: Db::Data,
                key: key.clone(),
                member: pyjson::to_string(&member),
                score: epoch as f64,
            },
            Op::Expire {
                db: Db::Data,
                key,
                secs: 7 * DAY,
            },
            self.announce(&self.channels.last_awards, &member, zmq_name),
        ]
    }

    /// `{"name": "CONTRIBUTION", "log": <log as JSON text>, "zmqName"}`, written in one pass
    /// (the log in its nested spelling) rather than serialised twice.
    fn announce(&self, channel: &str, log: &Value, zmq_name: &str) -> Op {
        let mut payload = String::with_capacity(160);
        payload.push_str("{\"name\": \"CONTRIBUTION\", \"log\": \"");
        pyjson::write_value_nested(&mut payload, log);
        payload.push_str("\", \"zmqName\": ");
        pyjson::write_str(&mut payload, zmq_name);
        payload.push('}');
        Op::Publish {
            channel: channel.into(),
            payload: payload.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revrank_orders_ties_by_reverse_member_bytes() {
        let z = ZSet(
            [
                ("a".to_string(), 1.0),
                ("b".to_string(), 1.0),
                ("c".to_string(), 2.0),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(z.revrank("c"), Some(0));
        assert_eq!(z.revrank("b"), Some(1));
        assert_eq!(z.revrank("a"), Some(2));
        assert_eq!(z.revrank("x"), None);
    }

    fn contribution(kind: ContribKind, categ: Option<&str>) -> Contribution {
        Contribution {
            zmq_name: "misp1".into(),
            org: "CIRCL".into(),
            kind,
            categ: categ.map(String::from),
            action: Value::String("add".into()),
            multiplier: if kind == ContribKind::Sighting { 2 } else { 1 },
            is_labeled: false,
            epoch: 1_700_000_000,
            day: "20231114".into(),
            quiet: false,
        }
    }

    #[test]
    fn first_attribute_of_a_lone_org_earns_the_top_trophy() {
        let r = Ranking::default();
        let ch = Channels {
            last_contributor: "lastContributor".into(),
            last_awards: "lastAwards".into(),
        };
        let e = Engine::new(&r, Scoring::Compatible, &ch);
        let mut snap = Snapshot::default();
        for c in &r.categories {
            snap.trophies.insert(c.clone(), ZSet::default());
        }
        let ops = e.score(
            &mut snap,
            &contribution(ContribKind::Attribute, Some("Network activity")),
        );
        let awards: Vec<&String> = ops
            .iter()
            .filter_map(|o| match o {
                Op::ZAdd { key, member, .. } if key.starts_with("CONTRIB_LAST_AWARDS") => {
                    Some(member)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            awards,
            vec![
                r#"{"org": "CIRCL", "award": ["trophy", ["network_activity", 12]], "epoch": 1700000000}"#
            ]
        );
        assert_eq!(snap.orgs["CIRCL"].points, 1);
        assert_eq!(snap.orgs["CIRCL"].attr_week, 1);
    }

    #[test]
    fn corrected_mode_matches_support_tool_and_credits_events_monthly() {
        let r = Ranking::default();
        let ch = Channels {
            last_contributor: "l".into(),
            last_awards: "a".into(),
        };
        let e = Engine::new(&r, Scoring::Corrected, &ch);
        assert_eq!(e.normalise("Support Tool"), "support_Tool");
        let mut snap = Snapshot::default();
        let ops = e.score(&mut snap, &contribution(ContribKind::Event, None));
        assert!(ops
            .iter()
            .any(|o| matches!(o, Op::ZIncrBy { key, .. } if key.starts_with("CONTRIB_DAY:"))));
        let compat = Engine::new(&r, Scoring::Compatible, &ch);
        assert_eq!(compat.normalise("Support Tool"), "support_tool");
        let ops = compat.score(
            &mut Snapshot::default(),
            &contribution(ContribKind::Event, None),
        );
        assert!(!ops
            .iter()
            .any(|o| matches!(o, Op::ZIncrBy { key, .. } if key.starts_with("CONTRIB_DAY:"))));
    }
}
