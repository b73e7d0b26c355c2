//! One handler per MISP topic (spec `ingest.md` §1.6–1.7), in the original's order of effects.

use super::{geo, live, trendings, users, ContribKind, Ctx, Outcome};
use crate::message::{self, get, path, text, Reject};
use crate::store::{Db, Op};
use crate::{keys, pyjson};
use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Handles one frame (`"<topic> <json>"`) that arrived through feed `zmq_name`.
pub fn handle_frame(
    env: &super::Env,
    clock: &crate::clock::Clock,
    zmq_name: &str,
    content: &str,
) -> Outcome {
    handle_frame_spilling(env, clock, zmq_name, content, None)
}

/// [`handle_frame`], handing a large message's publications to `spill` as they are made.
pub fn handle_frame_spilling(
    env: &super::Env,
    clock: &crate::clock::Clock,
    zmq_name: &str,
    content: &str,
    spill: Option<&mut dyn super::Spill>,
) -> Outcome {
    let (topic, body) = match message::split_frame(content) {
        Ok(x) => x,
        Err(r) => return Outcome::Rejected(r),
    };
    let known = matches!(
        topic,
        "misp_json"
            | "misp_json_event"
            | "misp_json_self"
            | "misp_json_attribute"
            | "misp_json_object"
            | "misp_json_sighting"
            | "misp_json_organisation"
            | "misp_json_user"
            | "misp_json_conversation"
            | "misp_json_object_reference"
            | "misp_json_audit"
            | "diagnostic_channel"
    );
    if !known {
        return Outcome::Rejected(Reject::UnknownTopic(topic.to_string()));
    }
    let large = content.len() > env.large_message_bytes;
    // A large event is parsed one listed record at a time: as one JSON tree, a 10 MB event
    // takes about 80 MB of memory.
    let split = if large && matches!(topic, "misp_json" | "misp_json_event") {
        match SplitEvent::parse(topic, body) {
            Ok(split) => split,
            Err(r) => return Outcome::Rejected(r),
        }
    } else {
        None
    };
    let b = match &split {
        Some(s) => Value::Object(s.body.clone()),
        None => match message::parse_body(topic, body) {
            Ok(v) => v,
            Err(r) => return Outcome::Rejected(r),
        },
    };
    let Some(obj) = b.as_object() else {
        return Outcome::Rejected(Reject::NotAnObject {
            topic: topic.to_string(),
        });
    };
    let mut ctx = Ctx::new(env, clock, zmq_name);
    ctx.large = large;
    if let Some(spill) = spill.filter(|_| large) {
        ctx.spilling_to(spill);
    }
    let lists = split.as_ref().map(|s| s.lists).unwrap_or_default();
    record_clock_skew(&mut ctx, topic, obj);
    match topic {
        "misp_json" if obj.contains_key("Event") => {
            // Corrected: publishing an event does not count its attributes again.
            ctx.republished = ctx.corrected();
            event(&mut ctx, obj, lists)
        }
        "misp_json_event" => event(&mut ctx, obj, lists),
        "misp_json_self" => keepalive(&mut ctx, obj),
        "misp_json_attribute" => attribute(&mut ctx, Wrapper::plain(obj), false),
        "misp_json_object" => object(&mut ctx, obj),
        "misp_json_sighting" => sighting(&mut ctx, obj),
        "misp_json_conversation" => conversation(&mut ctx, obj),
        "misp_json_audit" => audit(&mut ctx, obj),
        "misp_json_user" => user(&mut ctx, obj),
        "diagnostic_channel" => diagnostic(&mut ctx, obj),
        // misp_json_organisation, misp_json_object_reference: nothing to record.
        _ => {}
    }
    ctx.finish_spilling();
    Outcome::Applied {
        topic: topic.to_string(),
        steps: ctx.steps,
        problems: ctx.problems,
    }
}

/// The timestamp MISP sets to its own "now" when it sends these topics: an attribute or event
/// just saved, a sighting just made.
fn fresh_timestamp<'a>(topic: &str, b: &'a Map<String, Value>) -> Option<&'a Value> {
    match topic {
        "misp_json_attribute" => path_obj(b, &["Attribute", "timestamp"]),
        "misp_json_event" => path_obj(b, &["Event", "timestamp"]),
        "misp_json_sighting" => path_obj(b, &["Sighting", "date_sighting"]),
        _ => None,
    }
}

fn path_obj<'a>(b: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    path(b.get(*first)?, rest)
}

/// Records how far MISP's clock seems from ours (`keys::CLOCK_SKEW`), for `selftest`'s clock
/// check: day keys and trendings go wrong when the two disagree.
fn record_clock_skew(ctx: &mut Ctx, topic: &str, b: &Map<String, Value>) {
    let Some(ts) = fresh_timestamp(topic, b).and_then(message::epoch) else {
        return;
    };
    let behind = ctx.now - ts;
    ctx.op(Op::HSet {
        db: Db::List,
        key: keys::CLOCK_SKEW.into(),
        fields: vec![(
            ctx.zmq_name.clone(),
            format!("{} {}", behind.round() as i64, ctx.now_epoch),
        )],
    });
}

/// `misp_json_self`: MISP's keepalive, shown as a live "Keepalive" row (not cached).
fn keepalive(ctx: &mut Ctx, b: &Map<String, Value>) {
    match b.get("uptime") {
        Some(uptime) => {
            let log = Value::Array(vec![uptime.clone()]);
            live::publish_log(ctx, "Keepalive", |out| {
                pyjson::write_value_nested(out, &log)
            });
        }
        None => ctx.problem("keepalive without \"uptime\": nothing published"),
    }
}

/// A large event's body with the event's attribute and object lists left unparsed: each
/// listed record is parsed when it is handled and dropped after, so memory follows the largest
/// record, not the whole event.
struct SplitEvent<'a> {
    /// The body, its `Event` without the lists that [`event_header`] leaves out.
    body: Map<String, Value>,
    lists: RawLists<'a>,
}

/// The unparsed `Event.Attribute` and `Event.Object` of a [`SplitEvent`].
#[derive(Clone, Copy, Default)]
struct RawLists<'a> {
    attribute: Option<&'a RawValue>,
    object: Option<&'a RawValue>,
}

impl<'a> SplitEvent<'a> {
    /// `None` when the body has no `Event` object (it is then parsed as usual).
    fn parse(topic: &str, body: &'a str) -> Result<Option<SplitEvent<'a>>, Reject> {
        type RawMap<'a> = IndexMap<String, &'a RawValue>;
        let bad = |e: serde_json::Error| Reject::BadJson {
            topic: topic.to_string(),
            reason: e.to_string(),
        };
        let Ok(top) = serde_json::from_str::<RawMap>(body) else {
            // Not an object, or not JSON: the usual path says which.
            return Ok(None);
        };
        let Some(Ok(event)) = top
            .get("Event")
            .map(|e| serde_json::from_str::<RawMap>(e.get()))
        else {
            return Ok(None);
        };
        let mut lists = RawLists::default();
        let mut header = Map::new();
        for (k, v) in &event {
            match k.as_str() {
                "Attribute" => lists.attribute = Some(v),
                "Object" => lists.object = Some(v),
                k if LISTED_RECORDS.contains(&k) => {}
                _ => {
                    header.insert(k.clone(), serde_json::from_str(v.get()).map_err(bad)?);
                }
            }
        }
        let mut out = Map::new();
        for (k, v) in &top {
            let value = if k == "Event" {
                Value::Object(std::mem::take(&mut header))
            } else {
                serde_json::from_str(v.get()).map_err(bad)?
            };
            out.insert(k.clone(), value);
        }
        Ok(Some(SplitEvent { body: out, lists }))
    }
}

/// Calls `each` with every record of a listed field (`Event.Attribute`, `Event.Object`),
/// parsed (`parsed`) or still raw (`raw`, a large event's), and `other` with the field when it
/// is present but not a list.
fn each_listed(
    ctx: &mut Ctx,
    parsed: Option<&Value>,
    raw: Option<&RawValue>,
    mut each: impl FnMut(&mut Ctx, &Value),
    other: impl FnOnce(&mut Ctx, &Value),
) {
    if let Some(raw) = raw {
        match serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
            Ok(items) => {
                for item in items {
                    // Every part was valid JSON when the body was split.
                    if let Ok(v) = serde_json::from_str::<Value>(item.get()) {
                        each(ctx, &v);
                    }
                }
            }
            Err(_) => {
                if let Ok(v) = serde_json::from_str::<Value>(raw.get()) {
                    other(ctx, &v);
                }
            }
        }
        return;
    }
    match parsed {
        Some(Value::Array(list)) => {
            for v in list {
                each(ctx, v);
            }
        }
        Some(v) => other(ctx, v),
        None => {}
    }
}

/// `misp_json_event`, and `misp_json` (a published event) when it holds an `Event`. `lists`
/// holds a large event's attribute and object lists, which `b` then lacks.
fn event(ctx: &mut Ctx, b: &Map<String, Value>, lists: RawLists) {
    let Some(e) = b.get("Event") else {
        ctx.problem("no \"Event\": message skipped");
        return;
    };
    let Some(e_obj) = e.as_object() else {
        ctx.problem("\"Event\" is not an object: message skipped");
        return;
    };
    // The event's own statistics (its trending, its tags, its contribution) count when it is
    // shared widely enough; its attributes decide for themselves.
    let mut below = false;
    if ctx.env.record_acl || ctx.env.aggregate_min_rank.is_some() {
        let event = live::event_facts(ctx, crate::acl::EventFacts::of(e));
        below = ctx.below_threshold(&crate::acl::Facts {
            event,
            ..Default::default()
        });
    }
    ctx.uncounted = below;
    let ts = e_obj.get("timestamp");
    let ts_epoch = ts.and_then(message::epoch);
    match (e_obj.get("info").and_then(text), ts_epoch) {
        (Some(info), Some(t)) => trendings::add_event(ctx, &info, t),
        (None, _) => ctx.problem("Event without a usable \"info\": no event trending"),
        (_, None) => ctx.problem(format!(
            "Event.timestamp {} is not a usable epoch: no event or tag trending",
            short(ts)
        )),
    }
    if let Some(t) = ts_epoch {
        if let Some(tags) = e_obj.get("Tag") {
            trendings::add_tags(ctx, tags, t);
        }
    }

    ctx.uncounted = false;
    // What each live-log entry carries as the event: the whole event, or for a large message
    // the event without the records it lists (docs/compat.md F10).
    let header = ctx.large.then(|| event_header(e_obj));
    let event_for_rows = header.as_ref().unwrap_or(e);
    each_listed(
        ctx,
        e_obj.get("Attribute"),
        lists.attribute,
        |ctx, a| {
            attribute(
                ctx,
                Wrapper::with(b, &[("Event", event_for_rows), ("Attribute", a)]),
                false,
            )
        },
        |ctx, other| match other {
            // The original hands the bare value on; it has no "Event" around it, so no
            // contribution can come of it.
            Value::Object(bare) => attribute(ctx, Wrapper::plain(bare), false),
            _ => ctx.problem("Event.Attribute is neither a list nor an object: attributes skipped"),
        },
    );
    each_listed(
        ctx,
        e_obj.get("Object"),
        lists.object,
        |ctx, o| object_parts(ctx, o, Some(event_for_rows)),
        |ctx, other| match other {
            // The original hands the bare object on, in which it finds no "Object": nothing.
            Value::Object(_) => {}
            _ => ctx.problem("Event.Object is neither a list nor an object: objects skipped"),
        },
    );

    // The event's own contribution uses the top-level Orgc (misp_json_event's shape); a
    // published event (misp_json) nests it and so gives none, as in the original.
    ctx.uncounted = below;
    if let Some(orgc) = b.get("Orgc") {
        match get(orgc, "name").and_then(text) {
            Some(org) => ctx.contribute(
                org,
                ContribKind::Event,
                None,
                b.get("action").cloned().unwrap_or(Value::Null),
                message::non_empty(b.get("EventTag")),
            ),
            None if get(orgc, "name").is_some_and(|v| !v.is_null()) => {
                ctx.problem("Orgc.name is not text: no event contribution")
            }
            None => {}
        }
    }
    ctx.uncounted = false;
}

/// `misp_json_attribute`, and each attribute of an event, an object or a sighting.
/// `j` is the wrapper (`{"Attribute": {...}, "Event": {...}, ...}`) or a bare attribute.
fn attribute(ctx: &mut Ctx, j: Wrapper, already_contributed: bool) {
    // The attribute is the wrapper's "Attribute", or the wrapper itself when it has none.
    let a_obj: &Map<String, Value> = match j.get("Attribute") {
        Some(Value::Object(a)) => a,
        Some(_) => {
            ctx.problem("\"Attribute\" is not an object: skipped");
            return;
        }
        None => j.base,
    };
    // The original compares with the string "0": an integer 0 makes an ObjectAttribute
    // (corrected mode reads it as the number it is).
    let kind = match a_obj.get("object_id") {
        Some(Value::String(s)) if s == "0" => ContribKind::Attribute,
        Some(Value::Number(n)) if ctx.corrected() && n.as_i64() == Some(0) => {
            ContribKind::Attribute
        }
        Some(_) => ContribKind::ObjectAttribute,
        None => {
            ctx.problem("Attribute without \"object_id\": attribute skipped");
            return;
        }
    };
    if ctx.env.record_acl || ctx.env.aggregate_min_rank.is_some() {
        let mut facts = crate::acl::Facts::of_lookup(|k| j.get(k), |k| a_obj.get(k));
        facts.event = live::event_facts(ctx, facts.event);
        if ctx.env.record_acl {
            ctx.acl_facts = serde_json::to_string(&facts).ok();
        }
        // Shared too narrowly for the statistics: only its live views are written.
        ctx.uncounted = ctx.below_threshold(&facts);
    }
    let ts_value = a_obj.get("timestamp");
    let ts = match ts_value {
        None => Some(ctx.now),
        Some(v) => message::epoch(v),
    };
    let categ = a_obj.get("category");
    let categ_text = categ.and_then(text);
    match (&categ_text, ts) {
        (Some(c), Some(t)) => trendings::add_categ(ctx, c, t),
        (None, _) => ctx.problem("Attribute without a usable \"category\": no category trending, geolocation or contribution"),
        (_, None) => ctx.problem(format!(
            "Attribute.timestamp {} is not a usable epoch: no category or tag trending",
            short(ts_value)
        )),
    }
    if let (Some(t), Some(tags)) = (ts, a_obj.get("Tag")) {
        trendings::add_tags(ctx, tags, t);
    }

    if categ_text.as_deref() == Some("Network activity") {
        match a_obj.get("value") {
            Some(v) => geo::from_ip(ctx, v, categ.unwrap_or(&Value::Null)),
            None => ctx.problem("Attribute without \"value\": no geolocation"),
        }
    }
    if a_obj.get("type").and_then(Value::as_str) == Some("phone-number") {
        match a_obj.get("value") {
            Some(v) => geo::from_phone(ctx, v, categ.unwrap_or(&Value::Null)),
            None => ctx.problem("phone-number without \"value\": no geolocation"),
        }
    }

    if !already_contributed && !ctx.republished {
        match (
            j.get("Event")
                .and_then(|e| path(e, &["Orgc", "name"]))
                .and_then(text),
            &categ_text,
        ) {
            (Some(org), Some(c)) => ctx.contribute(
                org,
                kind,
                Some(c.clone()),
                j.get("action").cloned().unwrap_or(Value::Null),
                message::non_empty(j.get("EventTag")),
            ),
            (None, _) => ctx.problem("no Event.Orgc.name around the attribute: no contribution"),
            (_, None) => {}
        }
    }
    ctx.acl_facts = None;
    live::publish_log(ctx, kind.as_str(), |out| {
        pyjson::write_object_overlay_nested(out, j.base, j.over)
    });
    ctx.uncounted = false;
}

/// `misp_json_object`, and each object of an event: every attribute of the object is handled
/// with the object around it (and the event appended).
fn object(ctx: &mut Ctx, b: &Map<String, Value>) {
    if let Some(o) = b.get("Object") {
        let header = match b.get("Event") {
            Some(Value::Object(e)) if ctx.large => Some(event_header(e)),
            _ => None,
        };
        object_parts(ctx, o, header.as_ref().or(b.get("Event")));
    }
}

/// The fields of an event that list records rather than describe the event.
const LISTED_RECORDS: &[&str] = &[
    "Attribute",
    "Object",
    "ShadowAttribute",
    "RelatedEvent",
    "Galaxy",
    "EventReport",
    "Sighting",
    "CryptographicKey",
];

/// The event's fields that describe it, without the records it lists (attributes, objects,
/// proposals, related events, galaxies, reports, sightings): what a live-log entry of a large
/// message carries as its event, so each entry costs its own attribute, not the whole event.
fn event_header(e: &Map<String, Value>) -> Value {
    Value::Object(
        e.iter()
            .filter(|(k, _)| !LISTED_RECORDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Each attribute of object `o` is handled as the object with the event appended and the
/// attribute in place of the object's attribute list (key order as the original's copies).
fn object_parts(ctx: &mut Ctx, o: &Value, event: Option<&Value>) {
    let Some(o_obj) = o.as_object() else {
        ctx.problem("\"Object\" is not an object: skipped");
        return;
    };
    let attrs = match o_obj.get("Attribute") {
        Some(Value::Array(list)) => list,
        Some(_) => {
            ctx.problem("Object.Attribute is not a list: skipped");
            return;
        }
        None => {
            ctx.problem("Object without \"Attribute\": nothing to do");
            return;
        }
    };
    if event.is_none() {
        ctx.problem("object without \"Event\": its attributes earn no contribution");
    }
    for a in attrs {
        match event {
            Some(e) => attribute(
                ctx,
                Wrapper::with(o_obj, &[("Event", e), ("Attribute", a)]),
                false,
            ),
            None => attribute(ctx, Wrapper::with(o_obj, &[("Attribute", a)]), false),
        }
    }
}

/// `misp_json_sighting`: two points to the event's creator org, the attribute's trendings and
/// live row, then the day's sighting or false-positive counter.
fn sighting(ctx: &mut Ctx, b: &Map<String, Value>) {
    let Some(s) = b.get("Sighting") else {
        ctx.problem("no \"Sighting\": skipped");
        return;
    };
    if !s.is_object() {
        ctx.problem("\"Sighting\" is not an object: skipped");
        return;
    }
    // A sighting says nothing of distributions: its event's, as earlier messages said it.
    let mut below = false;
    if ctx.env.aggregate_min_rank.is_some() {
        let mut facts = crate::acl::Facts::of_content(s);
        facts.event = live::event_facts(ctx, facts.event);
        below = ctx.below_threshold(&facts);
    }
    ctx.uncounted = below;
    let creator = path(s, &["Event", "Orgc", "name"]).and_then(text);
    // Corrected: the points go to the organisation that made the sighting.
    let org = if ctx.corrected() {
        path(s, &["Organisation", "name"])
            .and_then(text)
            .or(creator)
    } else {
        creator
    };
    let categ = path(s, &["Attribute", "category"]).and_then(text);
    match (org, categ) {
        (Some(org), Some(categ)) => ctx.contribute(
            org,
            ContribKind::Sighting,
            Some(categ),
            b.get("action").cloned().unwrap_or(Value::Null),
            false,
        ),
        (None, _) => ctx.problem("Sighting without Event.Orgc.name: no contribution"),
        (_, None) => ctx.problem("Sighting without Attribute.category: no contribution"),
    }
    if let Some(s_obj) = s.as_object() {
        attribute(ctx, Wrapper::plain(s_obj), true);
    }
    ctx.uncounted = below;

    // The original compares with the strings "0"/"1": numeric types count as neither
    // (corrected mode counts them).
    let corrected = ctx.corrected();
    let counter = match get(s, "type") {
        Some(Value::String(t)) if t == "0" => Some(true),
        Some(Value::String(t)) if t == "1" => Some(false),
        Some(Value::Number(n)) if corrected && n.as_i64() == Some(0) => Some(true),
        Some(Value::Number(n)) if corrected && n.as_i64() == Some(1) => Some(false),
        None => {
            ctx.problem("Sighting without \"type\": not counted");
            None
        }
        _ => None,
    };
    if let Some(is_sighting) = counter {
        let date = get(s, "date_sighting");
        match date.and_then(message::epoch) {
            Some(t) => trendings::add_sighting(ctx, is_sighting, t),
            None => ctx.problem(format!(
                "Sighting.date_sighting {} is not a usable epoch: not counted",
                short(date)
            )),
        }
    }
    ctx.uncounted = false;
}

/// `misp_json_conversation`: a discussion post earns its org a contribution and counts in the
/// day's discussion trending. Threads without a post are ignored, as in the original.
fn conversation(ctx: &mut Ctx, b: &Map<String, Value>) {
    let Some(post) = b.get("Post") else {
        return;
    };
    match get(post, "org_name").and_then(text) {
        Some(org) => ctx.contribute(
            org,
            ContribKind::Discussion,
            None,
            Value::String("add".into()),
            false,
        ),
        None => ctx.problem("Post without \"org_name\": no contribution"),
    }
    trendings::add_discussion(ctx);
}

/// `misp_json_audit`: user logins, from any of the three shapes MISP publishes.
fn audit(ctx: &mut Ctx, b: &Map<String, Value>) {
    match users::login_from_audit(b) {
        users::Audit::Login { org } => users::add_login(ctx, &org),
        users::Audit::NotALogin => {}
        users::Audit::LoginWithoutOrg => {
            ctx.problem("login audit entry without an organisation name: not counted")
        }
    }
}

/// `misp_json_user`: nothing is recorded (logins come through the audit log).
fn user(ctx: &mut Ctx, b: &Map<String, Value>) {
    if !(b.contains_key("action")
        && b.contains_key("User")
        && path(&Value::Object(b.clone()), &["Organisation", "name"]).is_some())
    {
        ctx.problem("user message without action, User or Organisation.name (nothing is recorded for users anyway)");
    }
}

/// `diagnostic_channel`: the self-test's probe; the reply is the queue latency in seconds.
fn diagnostic(ctx: &mut Ctx, b: &Map<String, Value>) {
    match b.get("content").and_then(message::epoch) {
        Some(sent) => {
            let latency = ctx.now - sent;
            ctx.op(Op::Set {
                db: Db::List,
                key: keys::DIAGNOSTIC_RESPONSE.into(),
                value: pyjson::float_repr(latency),
            });
        }
        None => ctx.problem("diagnostic probe without a numeric \"content\": no reply"),
    }
}

/// A short rendering of a field for messages.
fn short(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => {
            let s = pyjson::to_string(v);
            if s.len() > 60 {
                format!("{}…", s.chars().take(60).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// A JSON object as the original's handlers see it after `copy = dict(base); copy[k] = v ...`,
/// without copying `base`: reads look at the overrides first, and serialisation writes the
/// base's keys in order with overridden values in place, then the new keys in order.
#[derive(Clone, Copy)]
pub(crate) struct Wrapper<'a> {
    pub base: &'a Map<String, Value>,
    pub over: &'a [(&'a str, &'a Value)],
}

impl<'a> Wrapper<'a> {
    fn plain(base: &'a Map<String, Value>) -> Self {
        Wrapper { base, over: &[] }
    }

    fn with(base: &'a Map<String, Value>, over: &'a [(&'a str, &'a Value)]) -> Self {
        Wrapper { base, over }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.over
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .or_else(|| self.base.get(key))
    }
}
