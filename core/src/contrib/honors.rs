//! Honors given by hand (`mispdash give-honors`): requirements, badges and trophy points for an
//! organisation, with the awards they earn recorded and announced like the dispatcher's.
//!
//! Differences from the original's `give_honors_to_org.py` (all bugs there): awards are
//! published with the `log` field the server's award stream reads (not `data`); a requirement
//! award names the requirement, not the rank; a trophy in a category the organisation had none
//! in is compared with "no trophy" instead of crashing; badge numbers and categories are
//! checked.

use super::{req_field, Channels, Engine, Snapshot};
use crate::config::{Ranking, Scoring};
use crate::keys;
use crate::store::ops::DbNumbers;
use crate::store::{Batch, Db, Op};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum HonorsError {
    #[error("requirement {0} does not exist (1 to {1})")]
    Requirement(usize, usize),
    #[error("badge {0} does not exist (1 to {1})")]
    Badge(usize, usize),
    #[error("{0:?} is not a trophy category ({1})")]
    Category(String, String),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What to change for one organisation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Honors {
    pub grant_requirements: Vec<usize>,
    pub revoke_requirements: Vec<usize>,
    pub grant_badges: Vec<usize>,
    pub revoke_badges: Vec<usize>,
    /// Points added to (or, negative, removed from) a trophy category.
    pub trophy_points: Vec<(String, f64)>,
}

impl Honors {
    pub fn is_empty(&self) -> bool {
        *self == Honors::default()
    }

    /// Checks every number and category against the ranking configuration.
    pub fn validate(&self, r: &Ranking) -> Result<(), HonorsError> {
        let levels = r.level_max as usize;
        for i in self
            .grant_requirements
            .iter()
            .chain(&self.revoke_requirements)
        {
            if *i == 0 || *i > levels {
                return Err(HonorsError::Requirement(*i, levels));
            }
        }
        let badges = r.badges.len();
        for b in self.grant_badges.iter().chain(&self.revoke_badges) {
            if *b == 0 || *b > badges {
                return Err(HonorsError::Badge(*b, badges));
            }
        }
        for (c, _) in &self.trophy_points {
            if !r.categories.contains(c) {
                return Err(HonorsError::Category(c.clone(), r.categories.join(", ")));
            }
        }
        Ok(())
    }
}

/// The organisation's honors as they stand.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub points: i64,
    pub requirements: Vec<bool>,
    pub badges: Vec<bool>,
    /// `(category, true rank, points)` of each trophy held.
    pub trophies: Vec<(String, i64, f64)>,
}

pub fn badge_field(n: usize) -> String {
    format!("BADGE_{n}")
}

/// Reads an organisation's standing.
pub fn standing(
    conn: &mut redis::Connection,
    dbs: DbNumbers,
    ranking: &Ranking,
    channels: &Channels,
    org: &str,
) -> Result<Standing, HonorsError> {
    let snap = Snapshot::load(conn, dbs, ranking, &[org.to_string()])?;
    let engine = Engine::new(ranking, Scoring::Compatible, channels);
    Ok(standing_of(&engine, &snap, org))
}

fn standing_of(engine: &Engine, snap: &Snapshot, org: &str) -> Standing {
    let state = snap.orgs.get(org).cloned().unwrap_or_default();
    let trophies = engine
        .trophies_of(snap, org)
        .into_iter()
        .map(|(c, rank)| {
            let pts = snap
                .trophies
                .get(&c)
                .and_then(|z| z.0.get(org).copied())
                .unwrap_or(0.0);
            (c, rank, pts)
        })
        .collect();
    Standing {
        points: state.points,
        requirements: state.reqs,
        badges: state.badges,
        trophies,
    }
}

/// Applies `honors` to `org` in one transaction, records and announces the awards they earn,
/// and returns those awards.
#[allow(clippy::too_many_arguments)]
pub fn give(
    conn: &mut redis::Connection,
    dbs: DbNumbers,
    ranking: &Ranking,
    mode: Scoring,
    channels: &Channels,
    org: &str,
    honors: &Honors,
    epoch: i64,
    day: &str,
) -> Result<Vec<Value>, HonorsError> {
    honors.validate(ranking)?;
    let mut snap = Snapshot::load(conn, dbs, ranking, &[org.to_string()])?;
    let engine = Engine::new(ranking, mode, channels);
    let before = standing_of(&engine, &snap, org);

    let mut batch = Batch::new();
    let state = snap.orgs.entry(org.to_string()).or_default();
    for i in &honors.grant_requirements {
        // Given by hand, they do not expire (until the dispatcher grants them again).
        batch.push(Op::Set {
            db: Db::Data,
            key: keys::contrib_org(org, &req_field(*i)),
            value: "1".into(),
        });
        if let Some(s) = state.reqs.get_mut(i - 1) {
            *s = true;
        }
    }
    for i in &honors.revoke_requirements {
        batch.push(Op::Del {
            db: Db::Data,
            key: keys::contrib_org(org, &req_field(*i)),
        });
        if let Some(s) = state.reqs.get_mut(i - 1) {
            *s = false;
        }
    }
    for b in &honors.grant_badges {
        batch.push(Op::Set {
            db: Db::Data,
            key: keys::contrib_org(org, &badge_field(*b)),
            value: "1".into(),
        });
        if let Some(s) = state.badges.get_mut(b - 1) {
            *s = true;
        }
    }
    for b in &honors.revoke_badges {
        batch.push(Op::Del {
            db: Db::Data,
            key: keys::contrib_org(org, &badge_field(*b)),
        });
        if let Some(s) = state.badges.get_mut(b - 1) {
            *s = false;
        }
    }
    for (categ, pts) in &honors.trophy_points {
        batch.push(Op::ZIncrBy {
            db: Db::Data,
            key: keys::contrib_trophy(categ),
            member: org.into(),
            by: *pts,
        });
        let z = snap.trophies.entry(categ.clone()).or_default();
        *z.0.entry(org.to_string()).or_insert(0.0) += pts;
    }
    let after = standing_of(&engine, &snap, org);

    let mut awards: Vec<Value> =
        super::scoring::status_awards(mode, &before.requirements, &after.requirements)
            .into_iter()
            .map(|i| {
                Value::Array(vec![
                    Value::String("contribution_status".into()),
                    Value::from(i),
                ])
            })
            .collect();
    for (n, (was, is)) in before.badges.iter().zip(&after.badges).enumerate() {
        if *is && !*was {
            awards.push(Value::Array(vec![
                Value::String("badge".into()),
                Value::from(n + 1),
            ]));
        }
    }
    for (c, rank, _) in &after.trophies {
        let old = before
            .trophies
            .iter()
            .find(|(x, _, _)| x == c)
            .map_or(0, |(_, r, _)| *r);
        if *rank > old {
            awards.push(Value::Array(vec![
                Value::String("trophy".into()),
                Value::Array(vec![Value::String(c.clone()), Value::from(*rank)]),
            ]));
        }
    }
    for a in &awards {
        batch.extend(engine.award_ops(org, a.clone(), day, epoch, GIVE_HONORS_ZMQ_NAME));
    }
    let mut resp = crate::store::Resp::default();
    resp.write_ops(&batch.finish(), dbs);
    resp.exec_transaction(conn)?;
    Ok(awards)
}

/// The `zmqName` of awards given by hand, as the original names it.
pub const GIVE_HONORS_ZMQ_NAME: &str = "GIVE_HONOR_ZMQ";
