//! The live log: every handled attribute (and MISP's keepalives) is published for the live
//! dashboard, and all but keepalives are kept in the live cache for clients that connect later.

use super::Ctx;
use crate::store::{ops::LiveEntry, Db, Op};
use crate::{keys, pyjson};
use bytes::Bytes;
use serde_json::Value;

/// Publishes `{"name", "log": <JSON text of content>, "zmqName"}` on the live channel and, unless
/// it is a keepalive, caches `{"name", "log": <content as object>, "zmqName"}`. Every cached
/// entry goes to the `Attribute` cache whatever its name, as in the original (that is what makes
/// object attributes show up on the live page).
///
/// `write_content` writes the content in its nested spelling (as the inside of a JSON string,
/// see `pyjson::write_value_nested`): the publication is written once, and the cached form is
/// derived from it only if the batch keeps it.
pub fn publish_log(ctx: &mut Ctx, name: &str, write_content: impl FnOnce(&mut String)) {
    let mut payload = String::with_capacity(1024);
    payload.push_str("{\"name\": ");
    pyjson::write_str(&mut payload, name);
    payload.push_str(", \"log\": \"");
    let start = payload.len();
    write_content(&mut payload);
    let end = payload.len();
    payload.push_str("\", \"zmqName\": ");
    pyjson::write_str(&mut payload, &ctx.zmq_name);
    payload.push('}');
    // A large event makes thousands of these at once: keep only what they use.
    payload.shrink_to_fit();
    let payload = Bytes::from(payload);
    ctx.op(Op::Publish {
        channel: ctx.env.channel_live.clone(),
        payload: payload.clone(),
    });
    if name != "Keepalive" {
        ctx.op(Op::LPushLive {
            db: Db::Data,
            key: keys::LIVE_CACHE_LOG.into(),
            entry: LiveEntry::new(payload, start..end),
        });
    }
}

/// The rewind stream's entry of a live row (with `[mispdash] rewind_hours` on): the fields of
/// its columns, read through `top` (the content's top-level fields), and with `[ACL] enabled`
/// the facts the dispatcher decided for it (`ctx.acl_facts`, so call it before they are
/// cleared). Nothing for a message that is not live (backfilled).
pub fn rewind_row<'v>(ctx: &mut Ctx, name: &str, top: impl Fn(&str) -> Option<&'v Value>) {
    if ctx.backfilled {
        return;
    }
    let Some(paths) = ctx.env.rewind_paths.as_deref() else {
        return;
    };
    let log = crate::rewind::trimmed_log(top, paths);
    let value = crate::rewind::row_entry(name, &ctx.zmq_name, &log, ctx.acl_facts.as_deref());
    rewind_add(ctx, crate::rewind::ROW, value);
}

fn rewind_add(ctx: &mut Ctx, field: &'static str, value: String) {
    let at_ms = (ctx.now * 1000.0).floor().max(0.0) as u64;
    ctx.op(Op::RewindAdd {
        db: Db::Data,
        key: keys::REWIND.into(),
        at_ms,
        field,
        value,
    });
}

/// With `[ACL] enabled`: remembers what `e` says of its event when it says who owns it and
/// how it is distributed (in memory, and in Redis when it changed), else completes it from
/// what earlier messages said.
pub fn event_facts(ctx: &mut Ctx, mut e: crate::acl::EventFacts) -> crate::acl::EventFacts {
    let keep = ctx.env.record_acl || ctx.env.aggregate_min_rank.is_some();
    let Some(id) = e.id.filter(|_| keep) else {
        return e;
    };
    if e.org_id.is_some() && e.distribution.is_some() {
        let known = ctx.env.event_facts.get(&id);
        if known.as_deref() != Some(&e) {
            ctx.env
                .event_facts
                .insert(id, std::sync::Arc::new(e.clone()));
            if let Ok(json) = serde_json::to_string(&e) {
                ctx.op(Op::HSet {
                    db: Db::Data,
                    key: keys::ACL_EVENTS.into(),
                    fields: vec![(id.to_string(), json)],
                });
            }
        }
    } else if let Some(known) = ctx.env.event_facts.get(&id) {
        e.complete_from(&known);
    }
    e
}

/// Publishes a map point on the map channel and caches the same text. With `[ACL] enabled`,
/// the point's facts go first, on mispdash's own channel and list (see [`keys::ACL_MAP`]).
pub fn publish_map(ctx: &mut Ctx, payload: &Value) {
    let text = pyjson::to_string(payload);
    if let Some(facts) = ctx.acl_facts.clone() {
        let record = format!(
            "{{\"id\": \"{}\", \"facts\": {facts}}}",
            crate::acl::map_point_id(&text)
        );
        ctx.op(Op::Publish {
            channel: keys::ACL_MAP.into(),
            payload: record.clone().into(),
        });
        ctx.op(Op::LPush {
            db: Db::Data,
            key: keys::ACL_MAP.into(),
            value: record,
        });
    }
    if ctx.env.rewind_paths.is_some() && !ctx.backfilled {
        let entry = crate::rewind::point_entry(&text, ctx.acl_facts.as_deref());
        rewind_add(ctx, crate::rewind::POINT, entry);
    }
    ctx.op(Op::Publish {
        channel: ctx.env.channel_map.clone(),
        payload: text.clone().into(),
    });
    ctx.op(Op::LPush {
        db: Db::Data,
        key: keys::LIVE_CACHE_MAP.into(),
        value: text,
    });
}
