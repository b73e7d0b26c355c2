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
    handle_frame_spilling(env, clock, zmq_name, content, None, false)
}

/// [`handle_frame`], handing a large message's publications to `spill` as they are made.
pub fn handle_frame_spilling(
    env: &super::Env,
    clock: &crate::clock::Clock,
    zmq_name: &str,
    content: &str,
    spill: Option<&mut dyn super::Spill>,
    backfilled: bool,
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
    ctx.backfilled = backfilled;
    if let Some(spill) = spill.filter(|_| large) {
        ctx.spilling_to(spill);
    }
    let lists = split.as_ref().map(|s| s.lists).unwrap_or_default();
    record_clock_skew(&mut ctx, topic, obj);
    match topic {
        "misp_json" if obj.contains_key("Event") => {
            // Corrected: publishing an event does not count its attributes again.
            ctx.republished = ctx.corrected();
            event(&mut ctx, obj, lists);
            record_applied(&mut ctx, "event", obj.get("Event"), "publish_timestamp");
        }
        "misp_json_event" => event(&mut ctx, obj, lists),
        "misp_json_self" => keepalive(&mut ctx, obj),
        "misp_json_attribute" => {
            attribute(&mut ctx, Wrapper::plain(obj), false, ObjectGeo::Message)
        }
        "misp_json_object" => object(&mut ctx, obj),
        "misp_json_sighting" => {
            sighting(&mut ctx, obj);
            record_applied(&mut ctx, "sighting", obj.get("Sighting"), "date_sighting");
        }
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

/// The names of the tags in these `Tag` lists, sorted, each once.
fn tag_names<'a>(lists: impl IntoIterator<Item = Option<&'a Value>>) -> Vec<String> {
    let mut names: Vec<String> = lists
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Records a publish or a sighting as applied, in the feed's backfill record, so that a
/// backfill (or the filling of a gap in the live feed) does not count it again. Only when it
/// says which one it is (`uuid`) and when (`at`).
fn record_applied(ctx: &mut Ctx, kind: &str, item: Option<&Value>, at: &str) {
    let Some(item) = item.and_then(Value::as_object) else {
        return;
    };
    let (Some(uuid), Some(at)) = (
        item.get("uuid").and_then(text),
        item.get(at).and_then(message::epoch),
    ) else {
        return;
    };
    let at = at.floor() as i64;
    ctx.uncounted = false;
    ctx.op(Op::ZAdd {
        db: Db::Data,
        key: keys::backfill_record(&ctx.zmq_name),
        member: crate::backfill::record_member(kind, &uuid, at),
        score: at as f64,
    });
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
    if ctx.backfilled {
        return;
    }
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
        (Some(info), Some(t)) => {
            trendings::add_event(ctx, &info, t);
            trendings::add_event_tagged(ctx, &info, tag_names([e_obj.get("Tag")]), t);
        }
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
                ObjectGeo::None,
            )
        },
        |ctx, other| match other {
            // The original hands the bare value on; it has no "Event" around it, so no
            // contribution can come of it.
            Value::Object(bare) => attribute(ctx, Wrapper::plain(bare), false, ObjectGeo::None),
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

/// Where a geolocation object's point may come from while one of its attributes is handled
/// (`[mispdash] wider_geolocation`).
#[derive(Clone, Copy)]
enum ObjectGeo<'a> {
    /// Not an object's attribute, or one handled with no object around it.
    None,
    /// A `misp_json_attribute`: the attribute may be one half of a geolocation object.
    Message,
    /// The attribute with which the object handled around it became a complete geolocation:
    /// its point goes here.
    Complete(&'a geo::ObjectPlace),
}

/// `misp_json_attribute`, and each attribute of an event, an object or a sighting.
/// `j` is the wrapper (`{"Attribute": {...}, "Event": {...}, ...}`) or a bare attribute.
fn attribute(ctx: &mut Ctx, j: Wrapper, already_contributed: bool, object_geo: ObjectGeo) {
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

    ctx.point_meta = Some((
        a_obj.get("type").cloned().unwrap_or(Value::Null),
        tag_names([a_obj.get("Tag"), j.get("Event").and_then(|e| e.get("Tag"))]),
    ));
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
    if ctx.env.wider_geo {
        // Without a usable category the attribute is not geolocated (its problem says so).
        if let (Some(categ), Some(_)) = (categ, &categ_text) {
            wider_geolocation(ctx, &j, a_obj, categ, object_geo);
        }
    }
    ctx.point_meta = None;

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
    live::rewind_row(ctx, kind.as_str(), |k| j.get(k));
    ctx.acl_facts = None;
    live::publish_log(ctx, kind.as_str(), |out| {
        pyjson::write_object_overlay_nested(out, j.base, j.over)
    });
    ctx.uncounted = false;
}

/// What `[mispdash] wider_geolocation` adds to an attribute's geolocation (`docs/compat.md`,
/// "Wider geolocation"): the IP of a composite value, the other phone-number types, and the
/// point of a geolocation object. The original's own placements happened just before, and are
/// never repeated here: a composite value is not an IP to the original's lookup, and
/// `phone-number` is not among the other types.
fn wider_geolocation(
    ctx: &mut Ctx,
    j: &Wrapper,
    a: &Map<String, Value>,
    categ: &Value,
    object_geo: ObjectGeo,
) {
    let atype = a.get("type").and_then(Value::as_str).unwrap_or_default();
    if let Some(Value::String(value)) = a.get("value") {
        if let Some(ip) = geo::composite_ip(atype, value) {
            // The member records the IP alone, as the original's records the value it located.
            geo::from_ip(ctx, &Value::String(ip.to_string()), categ);
        }
    }
    if geo::holds_other_phone_number(atype) {
        match a.get("value") {
            Some(v) => geo::from_phone(ctx, v, categ),
            None => ctx.problem(format!("{atype} without \"value\": no geolocation")),
        }
    }
    match object_geo {
        ObjectGeo::None => {}
        ObjectGeo::Message => geo::from_object_attribute(ctx, j.get("Object"), a),
        ObjectGeo::Complete(place) => geo::from_object(ctx, place),
    }
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
    let point = if ctx.env.wider_geo {
        geo::object_point(ctx, o_obj, attrs)
    } else {
        None
    };
    for (i, a) in attrs.iter().enumerate() {
        let object_geo = match &point {
            Some((at, place)) if *at == i => ObjectGeo::Complete(place),
            _ => ObjectGeo::None,
        };
        match event {
            Some(e) => attribute(
                ctx,
                Wrapper::with(o_obj, &[("Event", e), ("Attribute", a)]),
                false,
                object_geo,
            ),
            None => attribute(
                ctx,
                Wrapper::with(o_obj, &[("Attribute", a)]),
                false,
                object_geo,
            ),
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
        attribute(ctx, Wrapper::plain(s_obj), true, ObjectGeo::None);
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

#[cfg(test)]
mod tests {
    //! Wider geolocation (`[mispdash] wider_geolocation`) through whole messages, against a
    //! GeoIP database built for the tests (every address below 128.0.0.0 is in
    //! Esch-sur-Alzette).

    use super::*;
    use crate::clock::Clock;
    use crate::geoip::{esch_city_db, Centroids};
    use crate::rules::Env;
    use serde_json::json;

    fn geo_env(wider: bool) -> Env {
        let mut cfg = crate::config::Config::defaults();
        cfg.wider_geolocation = wider;
        Env::from_config(
            &cfg,
            Some(esch_city_db()),
            Centroids::builtin(),
            Default::default(),
        )
    }

    fn handle_on(env: &Env, feed: &str, topic: &str, body: &Value) -> (Vec<Op>, Vec<String>) {
        let clock = Clock::frozen(1_795_176_000.0);
        match handle_frame(env, &clock, feed, &format!("{topic} {body}")) {
            Outcome::Applied {
                steps, problems, ..
            } => (
                steps
                    .into_iter()
                    .filter_map(|s| match s {
                        super::super::Step::Op(op) => Some(op),
                        super::super::Step::Contribution(_) => None,
                    })
                    .collect(),
                problems,
            ),
            Outcome::Rejected(r) => panic!("rejected: {r}"),
        }
    }

    fn handle(env: &Env, topic: &str, body: &Value) -> (Vec<Op>, Vec<String>) {
        handle_on(env, "misp1", topic, body)
    }

    /// The map's writes of `ops`, keys without their day, in order.
    fn geo(ops: &[Op]) -> Vec<String> {
        let undated = |key: &str| key.split(':').next().unwrap_or(key).to_string();
        ops.iter()
            .filter_map(|op| match op {
                Op::ZIncrBy {
                    key, member, by, ..
                } if key.starts_with("GEO_") => {
                    Some(format!("ZINCRBY {} {by} {member}", undated(key)))
                }
                Op::GeoAdd {
                    key,
                    lon,
                    lat,
                    member,
                    ..
                } => Some(format!("GEOADD {} {lon} {lat} {member}", undated(key))),
                Op::Publish { channel, payload } if channel == "PicToDisplay" => Some(format!(
                    "PUBLISH {channel} {}",
                    String::from_utf8_lossy(payload)
                )),
                Op::LPush { key, value, .. } if key == keys::LIVE_CACHE_MAP => {
                    Some(format!("LPUSH {key} {value}"))
                }
                _ => None,
            })
            .collect()
    }

    fn attribute_msg(atype: &str, category: &str, value: &str) -> Value {
        json!({"action": "add",
            "Attribute": {"id": "1", "event_id": "7", "object_id": "0", "object_relation": null,
                "category": category, "type": atype, "value": value,
                "timestamp": "1795175000", "distribution": "5"},
            "Event": {"id": "7", "info": "e", "Orgc": {"name": "Org 1"}}})
    }

    fn geo_of(env: &Env, atype: &str, category: &str, value: &str) -> Vec<String> {
        let (ops, problems) = handle(
            env,
            "misp_json_attribute",
            &attribute_msg(atype, category, value),
        );
        assert!(problems.is_empty(), "{problems:?}");
        geo(&ops)
    }

    /// What the original writes for a located IP, pinned so that sharing its writes with the
    /// additions cannot change them.
    #[test]
    fn a_plain_ip_and_phone_number_are_written_exactly_as_before() {
        for wider in [false, true] {
            let env = geo_env(wider);
            assert_eq!(
                geo_of(&env, "ip-dst", "Network activity", "8.8.8.8"),
                vec![
                    r#"ZINCRBY GEO_COORD 1 {"lat": 49.4961, "lon": 5.9806, "categ": "Network activity", "value": "8.8.8.8"}"#,
                    "ZINCRBY GEO_COUNTRY 1 LU",
                    r#"GEOADD GEO_RAD 5.9806 49.4961 {"categ": "Network activity", "value": "8.8.8.8"}"#,
                    r#"PUBLISH PicToDisplay {"coord": {"lat": 49.4961, "lon": 5.9806}, "categ": "Network activity", "value": "8.8.8.8", "country": "Luxembourg", "specifName": "Canton d'Esch-sur-Alzette", "cityName": "Esch-sur-Alzette", "regionCode": "LU"}"#,
                    r#"LPUSH TEMP_CACHE_LIVE:Map {"coord": {"lat": 49.4961, "lon": 5.9806}, "categ": "Network activity", "value": "8.8.8.8", "country": "Luxembourg", "specifName": "Canton d'Esch-sur-Alzette", "cityName": "Esch-sur-Alzette", "regionCode": "LU"}"#,
                ],
                "wider: {wider}"
            );
            let phone = geo_of(&env, "phone-number", "Person", "+32 2 555 01 01");
            let centroid = env.centroids.get("BE").expect("Belgium's centroid");
            assert_eq!(
                phone[0],
                format!(
                    r#"ZINCRBY GEO_COORD 1 {{"lat": "{}", "lon": "{}"}}"#,
                    centroid.lat, centroid.long
                )
            );
            assert_eq!(phone.len(), 5, "{phone:?}");
        }
        // The whole message, not only its map: nothing else differs either.
        for (atype, categ, value) in [
            ("ip-dst", "Network activity", "8.8.8.8"),
            ("phone-number", "Person", "+32 2 555 01 01"),
            ("domain", "Network activity", "example.org"),
        ] {
            let msg = attribute_msg(atype, categ, value);
            assert_eq!(
                handle(&geo_env(false), "misp_json_attribute", &msg),
                handle(&geo_env(true), "misp_json_attribute", &msg),
                "{atype}"
            );
        }
    }

    #[test]
    fn composite_values_are_located_at_their_ip_as_the_ip_alone() {
        let env = geo_env(true);
        let plain = geo_of(&env, "ip-dst", "Network activity", "8.8.8.8");
        assert_eq!(plain.len(), 5);
        for (atype, value) in [
            ("ip-dst|port", "8.8.8.8|53"),
            ("ip-src|port", "8.8.8.8|4444"),
            ("domain|ip", "example.org|8.8.8.8"),
        ] {
            assert_eq!(
                geo_of(&env, atype, "Network activity", value),
                plain,
                "{atype} {value}"
            );
            assert!(
                geo_of(&geo_env(false), atype, "Network activity", value).is_empty(),
                "off by default: {atype}"
            );
        }
        // Whatever the category, which the point carries.
        let delivery = geo_of(&env, "ip-src|port", "Payload delivery", "1.2.3.4|80");
        assert_eq!(
            delivery[0],
            r#"ZINCRBY GEO_COORD 1 {"lat": 49.4961, "lon": 5.9806, "categ": "Payload delivery", "value": "1.2.3.4"}"#
        );
        // An address the database does not know, no IP, no `|` (outside `Network activity`,
        // where the original's own lookup takes a bare IP), a type that holds no IP: nothing.
        assert!(geo_of(&env, "ip-dst|port", "Network activity", "200.1.1.1|80").is_empty());
        assert!(geo_of(&env, "domain|ip", "Network activity", "example.org|").is_empty());
        assert!(geo_of(&env, "ip-dst|port", "Payload delivery", "8.8.8.8").is_empty());
        assert!(geo_of(&env, "hostname|port", "Payload delivery", "8.8.8.8|80").is_empty());
    }

    #[test]
    fn composite_parts() {
        assert_eq!(
            geo::composite_ip("ip-dst|port", "1.2.3.4|80"),
            Some("1.2.3.4")
        );
        assert_eq!(
            geo::composite_ip("ip-src|port", "2001:db8::1|443"),
            Some("2001:db8::1")
        );
        assert_eq!(
            geo::composite_ip("domain|ip", "a.example| 5.6.7.8"),
            Some("5.6.7.8")
        );
        assert_eq!(geo::composite_ip("domain|ip", "a.example"), None);
        assert_eq!(geo::composite_ip("filename|md5", "a|b"), None);
    }

    #[test]
    fn phone_numbers_of_every_type_that_holds_one_are_located_as_phone_numbers() {
        let env = geo_env(true);
        let reference = geo_of(&env, "phone-number", "Attribution", "+32 2 555 01 01");
        assert_eq!(reference.len(), 5);
        for atype in ["whois-registrant-phone", "prtn"] {
            assert_eq!(
                geo_of(&env, atype, "Attribution", "+32 2 555 01 01"),
                reference,
                "{atype}"
            );
            assert!(
                geo_of(&geo_env(false), atype, "Attribution", "+32 2 555 01 01").is_empty(),
                "off by default: {atype}"
            );
        }
        assert!(geo_of(
            &env,
            "whois-registrant-email",
            "Attribution",
            "+32 2 555 01 01"
        )
        .is_empty());
    }

    fn geo_attr(id: u32, object: u32, relation: &str, atype: &str, value: Value) -> Value {
        json!({"id": id.to_string(), "event_id": "7", "object_id": object.to_string(),
            "object_relation": relation, "category": "Other", "type": atype, "value": value,
            "timestamp": "1795175000", "distribution": "5"})
    }

    fn brussels(object: u32) -> Vec<Value> {
        vec![
            geo_attr(1, object, "text", "text", json!("HQ")),
            geo_attr(2, object, "latitude", "float", json!("50.85034")),
            geo_attr(3, object, "country", "text", json!("Belgium")),
            geo_attr(4, object, "longitude", "float", json!("4.35171")),
            geo_attr(5, object, "city", "text", json!("Brussels")),
            geo_attr(6, object, "region", "text", json!("Brussels-Capital")),
        ]
    }

    const BRUSSELS: [&str; 5] = [
        r#"ZINCRBY GEO_COORD 1 {"lat": 50.8503, "lon": 4.3517, "categ": "Other", "value": "50.8503, 4.3517"}"#,
        "ZINCRBY GEO_COUNTRY 1 BE",
        r#"GEOADD GEO_RAD 4.3517 50.8503 {"categ": "Other", "value": "50.8503, 4.3517"}"#,
        r#"PUBLISH PicToDisplay {"coord": {"lat": 50.8503, "lon": 4.3517}, "categ": "Other", "value": "50.8503, 4.3517", "country": "Belgium", "specifName": "Brussels-Capital", "cityName": "Brussels", "regionCode": "BE"}"#,
        r#"LPUSH TEMP_CACHE_LIVE:Map {"coord": {"lat": 50.8503, "lon": 4.3517}, "categ": "Other", "value": "50.8503, 4.3517", "country": "Belgium", "specifName": "Brussels-Capital", "cityName": "Brussels", "regionCode": "BE"}"#,
    ];

    fn object_msg(object: u32, attributes: Vec<Value>) -> Value {
        json!({"Object": {"id": object.to_string(), "name": "geolocation",
            "meta-category": "misc", "event_id": "7", "distribution": "5",
            "Attribute": attributes},
            "Event": {"id": "7", "info": "e", "Orgc": {"name": "Org 1"}}})
    }

    #[test]
    fn a_geolocation_object_in_one_message_places_one_point() {
        let env = geo_env(true);
        let (ops, problems) = handle(&env, "misp_json_object", &object_msg(3, brussels(3)));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(geo(&ops), BRUSSELS);
        // With the attribute that completed it (the longitude, 4th): after the live rows of
        // the three before it, before its own.
        let rows_before = ops
            .iter()
            .take_while(
                |op| !matches!(op, Op::Publish { channel, .. } if channel == "PicToDisplay"),
            )
            .filter(|op| matches!(op, Op::Publish { channel, .. } if channel == "1"))
            .count();
        assert_eq!(rows_before, 3);
        assert!(geo(&handle(
            &geo_env(false),
            "misp_json_object",
            &object_msg(3, brussels(3))
        )
        .0)
        .is_empty());

        // Inside a published event, and an object of another template: only the first.
        let mut other = object_msg(4, brussels(4));
        other["Object"]["name"] = json!("gps");
        let event = json!({"Event": {"id": "7", "info": "e", "timestamp": "1795175000",
            "Orgc": {"name": "Org 1"}, "Attribute": [],
            "Object": [object_msg(3, brussels(3))["Object"], other["Object"]]}});
        let (ops, problems) = handle(&env, "misp_json", &event);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(geo(&ops), BRUSSELS);

        // Without country, city or region: nothing is counted by country, the rest is null.
        let bare = vec![
            geo_attr(2, 5, "latitude", "float", json!(-33.8688)),
            geo_attr(4, 5, "longitude", "float", json!(151.2093)),
            geo_attr(3, 5, "country", "text", json!("Commonwealth of Australia")),
        ];
        let (ops, _) = handle(&env, "misp_json_object", &object_msg(5, bare));
        assert_eq!(
            geo(&ops),
            vec![
                r#"ZINCRBY GEO_COORD 1 {"lat": -33.8688, "lon": 151.2093, "categ": "Other", "value": "-33.8688, 151.2093"}"#,
                r#"GEOADD GEO_RAD 151.2093 -33.8688 {"categ": "Other", "value": "-33.8688, 151.2093"}"#,
                r#"PUBLISH PicToDisplay {"coord": {"lat": -33.8688, "lon": 151.2093}, "categ": "Other", "value": "-33.8688, 151.2093", "country": "Commonwealth of Australia", "specifName": null, "cityName": null, "regionCode": null}"#,
                r#"LPUSH TEMP_CACHE_LIVE:Map {"coord": {"lat": -33.8688, "lon": 151.2093}, "categ": "Other", "value": "-33.8688, 151.2093", "country": "Commonwealth of Australia", "specifName": null, "cityName": null, "regionCode": null}"#,
            ]
        );
        // A country given as its code.
        let coded = vec![
            geo_attr(2, 6, "latitude", "float", json!("50.85034")),
            geo_attr(4, 6, "longitude", "float", json!("4.35171")),
            geo_attr(3, 6, "country", "text", json!("be")),
        ];
        let ops = geo(&handle(&env, "misp_json_object", &object_msg(6, coded)).0);
        assert_eq!(ops[1], "ZINCRBY GEO_COUNTRY 1 BE");
        assert!(ops[3].contains(r#""country": "Belgium""#), "{}", ops[3]);
    }

    /// A `misp_json_attribute` of attribute `a` of a geolocation object.
    fn half(a: Value) -> Value {
        let object = a["object_id"].clone();
        json!({"action": "add", "Attribute": a,
            "Event": {"id": "7", "info": "e", "Orgc": {"name": "Org 1"}},
            "Object": {"id": object, "name": "geolocation", "meta-category": "misc",
                "event_id": "7", "distribution": "5"}})
    }

    #[test]
    fn a_geolocation_object_over_several_attribute_messages_is_placed_when_both_came() {
        let attrs = brussels(3);
        let (lat, country, lon, city, region) = (
            half(attrs[1].clone()),
            half(attrs[2].clone()),
            half(attrs[3].clone()),
            half(attrs[4].clone()),
            half(attrs[5].clone()),
        );
        // Latitude first, or longitude first: the point comes with the second.
        for order in [
            [&country, &city, &region, &lat, &lon],
            [&region, &city, &country, &lon, &lat],
        ] {
            let env = geo_env(true);
            let mut placed = Vec::new();
            for msg in order {
                let (ops, problems) = handle(&env, "misp_json_attribute", msg);
                assert!(problems.is_empty(), "{problems:?}");
                placed.push(geo(&ops));
            }
            assert!(placed[..4].iter().all(Vec::is_empty), "{placed:?}");
            assert_eq!(placed[4], BRUSSELS);
        }

        // Halves of another object, or of the same object id from another MISP: no pair.
        let env = geo_env(true);
        assert!(geo(&handle(&env, "misp_json_attribute", &lat).0).is_empty());
        let other_object = half(geo_attr(9, 4, "longitude", "float", json!("4.35171")));
        assert!(geo(&handle(&env, "misp_json_attribute", &other_object).0).is_empty());
        assert!(geo(&handle_on(&env, "misp2", "misp_json_attribute", &lon).0).is_empty());
        // The pair is complete now; an edited coordinate places the object anew.
        let (ops, _) = handle(&env, "misp_json_attribute", &lon);
        assert_eq!(geo(&ops).len(), 4, "no country came: {:?}", geo(&ops));
        let edited = half(geo_attr(2, 3, "latitude", "float", json!("51.2194")));
        let ops = geo(&handle(&env, "misp_json_attribute", &edited).0);
        assert!(ops[0].contains(r#""value": "51.2194, 4.3517""#), "{ops:?}");

        // An object of another template, and the feature off: nothing kept, nothing placed.
        let mut gps = lat.clone();
        gps["Object"]["name"] = json!("gps");
        let mut gps_lon = lon.clone();
        gps_lon["Object"]["name"] = json!("gps");
        for env in [geo_env(true), geo_env(false)] {
            let first = if env.wider_geo { &gps } else { &lat };
            let second = if env.wider_geo { &gps_lon } else { &lon };
            assert!(geo(&handle(&env, "misp_json_attribute", first).0).is_empty());
            assert!(geo(&handle(&env, "misp_json_attribute", second).0).is_empty());
        }

        // A MISP that leaves the object out of the message: its float coordinates pair up.
        let env = geo_env(true);
        let bare = |mut m: Value| {
            if let Some(o) = m.as_object_mut() {
                o.remove("Object");
            }
            m
        };
        assert!(geo(&handle(&env, "misp_json_attribute", &bare(lon.clone())).0).is_empty());
        let ops = geo(&handle(&env, "misp_json_attribute", &bare(lat.clone())).0);
        assert_eq!(ops.len(), 4, "{ops:?}");
    }

    #[test]
    fn unusable_coordinates_are_noted_and_place_nothing() {
        let env = geo_env(true);
        for (relation, value) in [
            ("latitude", json!("91")),
            ("latitude", json!("85.06")),
            ("latitude", json!("-85.0512")),
            ("latitude", json!("north")),
            ("latitude", json!("NaN")),
            ("latitude", json!("inf")),
            ("latitude", json!(null)),
            ("longitude", json!("180.5")),
            ("longitude", json!(-200)),
            ("longitude", json!("")),
        ] {
            let (good_relation, good_value) = if relation == "latitude" {
                ("longitude", json!("4.35171"))
            } else {
                ("latitude", json!("50.85034"))
            };
            let attrs = vec![
                geo_attr(2, 8, relation, "float", value.clone()),
                geo_attr(4, 8, good_relation, "float", good_value),
            ];
            // In one object.
            let (ops, problems) = handle(&env, "misp_json_object", &object_msg(8, attrs.clone()));
            assert!(geo(&ops).is_empty(), "{relation} {value}: {:?}", geo(&ops));
            assert_eq!(problems.len(), 1, "{relation} {value}: {problems:?}");
            assert!(
                problems[0].contains(relation) && problems[0].contains("no map point"),
                "{problems:?}"
            );
            // Over two messages.
            let env = geo_env(true);
            let (ops, problems) = handle(&env, "misp_json_attribute", &half(attrs[0].clone()));
            assert!(geo(&ops).is_empty());
            assert_eq!(problems.len(), 1, "{relation} {value}: {problems:?}");
            let (ops, problems) = handle(&env, "misp_json_attribute", &half(attrs[1].clone()));
            assert!(geo(&ops).is_empty(), "{relation} {value}: {:?}", geo(&ops));
            assert!(problems.is_empty(), "{problems:?}");
        }
        // At the limits, once rounded as IP coordinates are: placed.
        let attrs = vec![
            geo_attr(2, 8, "latitude", "float", json!("-85.05112")),
            geo_attr(4, 8, "longitude", "float", json!(180)),
        ];
        let (ops, problems) = handle(&env, "misp_json_object", &object_msg(8, attrs));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(geo(&ops).len(), 4);
    }
}
