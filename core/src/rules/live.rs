//! The live log: every handled attribute (and MISP's keepalives) is published for the live
//! dashboard, and all but keepalives are kept in the live cache for clients that connect later.

use super::Ctx;
use crate::store::{Db, Op};
use crate::{keys, pyjson};
use serde_json::Value;

/// Publishes `{"name", "log": <JSON text of content>, "zmqName"}` on the live channel and, unless
/// it is a keepalive, caches `{"name", "log": <content as object>, "zmqName"}`. Every cached
/// entry goes to the `Attribute` cache whatever its name, as in the original (that is what makes
/// object attributes show up on the live page).
pub fn publish_log(ctx: &mut Ctx, name: &str, content: &Value) {
    let log_text = pyjson::to_string(content);
    let payload = pyjson::object([
        ("name", Value::String(name.into())),
        ("log", Value::String(log_text)),
        ("zmqName", Value::String(ctx.zmq_name.clone())),
    ]);
    ctx.op(Op::Publish {
        channel: ctx.env.channel_live.clone(),
        payload: pyjson::to_string(&payload),
    });
    if name != "Keepalive" {
        let cached = pyjson::object([
            ("name", Value::String(name.into())),
            ("log", content.clone()),
            ("zmqName", Value::String(ctx.zmq_name.clone())),
        ]);
        ctx.op(Op::LPush {
            db: Db::Data,
            key: keys::LIVE_CACHE_LOG.into(),
            value: pyjson::to_string(&cached),
        });
    }
}

/// Publishes a map point on the map channel and caches the same text.
pub fn publish_map(ctx: &mut Ctx, payload: &Value) {
    let text = pyjson::to_string(payload);
    ctx.op(Op::Publish {
        channel: ctx.env.channel_map.clone(),
        payload: text.clone(),
    });
    ctx.op(Op::LPush {
        db: Db::Data,
        key: keys::LIVE_CACHE_MAP.into(),
        value: text,
    });
}
