//! Trendings: per-day counts of event titles, categories, tags, discussions and sightings.
//! Days come from MISP's own timestamps (local dates), except discussions, which use now.

use super::Ctx;
use crate::clock::day_of_epoch;
use crate::message::get;
use crate::store::{Db, Op};
use crate::{keys, pyjson};
use serde_json::Value;

fn day_or_problem(ctx: &mut Ctx, ts: f64, what: &str) -> Option<String> {
    let day = day_of_epoch(ts);
    if day.is_none() {
        ctx.problem(format!("timestamp {ts} has no calendar date: no {what}"));
    }
    day
}

pub fn add_event(ctx: &mut Ctx, info: &str, ts: f64) {
    if let Some(day) = day_or_problem(ctx, ts, "event trending") {
        ctx.op(zincr(keys::trendings_events(&day), info.to_string()));
    }
}

/// The event with its tags, in mispdash's own key (see [`keys::trendings_events_tagged`]).
pub fn add_event_tagged(ctx: &mut Ctx, info: &str, tags: Vec<String>, ts: f64) {
    if let Some(day) = crate::clock::day_of_epoch(ts) {
        let member = crate::pyjson::object([
            ("info", Value::String(info.to_string())),
            (
                "tags",
                Value::Array(tags.into_iter().map(Value::String).collect()),
            ),
        ]);
        ctx.op(zincr(
            keys::trendings_events_tagged(&day),
            crate::pyjson::to_string(&member),
        ));
    }
}

pub fn add_categ(ctx: &mut Ctx, categ: &str, ts: f64) {
    if let Some(day) = day_or_problem(ctx, ts, "category trending") {
        ctx.op(zincr(keys::trendings_categs(&day), categ.to_string()));
    }
}

/// Each tag is counted as the JSON `{"id", "name", "colour"}` of its values as MISP sent them.
/// A tag that lacks one of them (or is not an object) is skipped alone.
pub fn add_tags(ctx: &mut Ctx, tags: &Value, ts: f64) {
    let Value::Array(list) = tags else {
        ctx.problem("\"Tag\" is not a list: tags skipped");
        return;
    };
    if list.is_empty() {
        return;
    }
    let Some(day) = day_or_problem(ctx, ts, "tag trending") else {
        return;
    };
    for t in list {
        let fields = (get(t, "id"), get(t, "name"), get(t, "colour"));
        match fields {
            (Some(id), Some(name), Some(colour)) => {
                let member = pyjson::object([
                    ("id", id.clone()),
                    ("name", name.clone()),
                    ("colour", colour.clone()),
                ]);
                ctx.op(zincr(
                    keys::trendings_tags(&day),
                    pyjson::to_string(&member),
                ));
            }
            _ => ctx.problem("a tag without id, name or colour was skipped"),
        }
    }
}

pub fn add_discussion(ctx: &mut Ctx) {
    let day = ctx.today.clone();
    ctx.op(zincr(
        keys::trendings_disc(&day),
        keys::TRENDINGS_DISC_LABEL.to_string(),
    ));
}

pub fn add_sighting(ctx: &mut Ctx, is_sighting: bool, ts: f64) {
    if let Some(day) = day_or_problem(ctx, ts, "sighting count") {
        let key = if is_sighting {
            keys::trendings_sightings(&day)
        } else {
            keys::trendings_false_positive(&day)
        };
        ctx.op(Op::IncrBy {
            db: Db::Data,
            key,
            by: 1,
        });
    }
}

fn zincr(key: String, member: String) -> Op {
    Op::ZIncrBy {
        db: Db::Data,
        key,
        member,
        by: 1.0,
    }
}
