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
pub fn publish_log(ctx: &mut Ctx, name: &str, content_json: &str) {
    // Both forms are built around the one serialisation of the content: the live channel gets
    // it as a JSON string, the cache as an embedded object.
    let mut payload = String::with_capacity(content_json.len() + content_json.len() / 8 + 64);
    payload.push_str("{\"name\": ");
    pyjson::write_str(&mut payload, name);
    payload.push_str(", \"log\": ");
    pyjson::write_json_as_str(&mut payload, content_json);
    payload.push_str(", \"zmqName\": ");
    pyjson::write_str(&mut payload, &ctx.zmq_name);
    payload.push('}');
    ctx.op(Op::Publish {
        channel: ctx.env.channel_live.clone(),
        payload,
    });
    if name != "Keepalive" {
        let mut cached = String::with_capacity(content_json.len() + 64);
        cached.push_str("{\"name\": ");
        pyjson::write_str(&mut cached, name);
        cached.push_str(", \"log\": ");
        cached.push_str(content_json);
        cached.push_str(", \"zmqName\": ");
        pyjson::write_str(&mut cached, &ctx.zmq_name);
        cached.push('}');
        ctx.op(Op::LPush {
            db: Db::Data,
            key: keys::LIVE_CACHE_LOG.into(),
            value: cached,
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
