//! The rules: what each MISP message means for the keyspace, decided without touching Redis.
//!
//! A handler reads a parsed message and appends [`Op`]s (writes and publications) to its
//! [`Ctx`]; the store applies them later. Keeping the rules pure makes them testable without
//! Redis and lets the store coalesce a whole batch.
//!
//! Tolerance: the original aborts a whole message on the first missing field (or crashes on a
//! malformed one). Here a missing or malformed field skips only what needs it, and is noted in
//! [`Ctx::problems`] so the message also lands in the dead-letter list for inspection.
//! `docs/compat.md` lists where this changes the keyspace.

mod geo;
mod handlers;
mod live;
mod trendings;
mod users;

use crate::clock::Clock;
use crate::geoip::{Centroids, GeoDb};
use crate::message::Reject;
use crate::store::{Db, Op};
use serde_json::Value;
use std::sync::{Arc, RwLock};

pub use handlers::{handle_frame, handle_frame_spilling};

/// Events whose facts the dispatcher keeps in memory (about 200 bytes each).
pub const EVENT_FACTS_KEPT: u64 = 100_000;

/// Geolocation objects whose parts the dispatcher keeps in memory (about 300 bytes each): MISP
/// sends an object's latitude and longitude as two attribute messages, and the point can only
/// be placed once both came. Past this many objects the least used are forgotten, so a stream
/// of halves that never pair up cannot grow the dispatcher.
pub const GEO_OBJECTS_KEPT: u64 = 10_000;

/// The writes that are not statistics (what `[ACL] aggregate_min_distribution` never holds
/// back): publications, the live caches and the rewind stream, and mispdash's own bookkeeping (the facts recorded
/// for access control, the feeds' clock).
fn is_live_view(op: &Op) -> bool {
    use crate::keys;
    match op {
        Op::Publish { .. } | Op::LPushLive { .. } | Op::RewindAdd { .. } => true,
        Op::LPush { key, .. } => key == keys::LIVE_CACHE_MAP || key == keys::ACL_MAP,
        Op::HSet { key, .. } => key.starts_with("MISPDASH_"),
        _ => false,
    }
}

/// What does not change from one message to the next.
pub struct Env {
    pub channel_live: String,
    pub channel_map: String,
    pub channel_last_contributor: String,
    pub channel_last_awards: String,
    /// Swappable so a new GeoIP database can be loaded without a restart.
    pub geo: RwLock<Option<Arc<GeoDb>>>,
    pub centroids: Centroids,
    pub ranking: crate::config::Ranking,
    pub scoring: crate::config::Scoring,
    /// `[mispdash] large_message_bytes`: see [`Ctx::large`].
    pub large_message_bytes: usize,
    /// `[mispdash] live_cache_max_bytes`: what each live cache may hold in all.
    pub live_cache_max_bytes: usize,
    /// `[mispdash] max_attempts`: see the dispatcher's careful commit.
    pub max_attempts: u32,
    /// `[ACL] enabled`: record each map point's facts (see [`crate::keys::ACL_MAP`]).
    pub record_acl: bool,
    /// `[ACL] aggregate_min_distribution`, as a rank (see [`crate::acl::sharing_rank`]).
    pub aggregate_min_rank: Option<u8>,
    /// What messages said of each event, for those that do not say it (see
    /// [`crate::keys::ACL_EVENTS`]): kept here in message order, and in Redis for restarts.
    pub event_facts: moka::sync::Cache<u64, Arc<crate::acl::EventFacts>>,
    /// `[mispdash] wider_geolocation`: see [`crate::config::Config::wider_geolocation`].
    pub wider_geo: bool,
    /// What the attribute messages of each geolocation object said of where it is, by feed and
    /// object id, until the message that completes its point (see [`GEO_OBJECTS_KEPT`]). Kept
    /// after the point is placed: a message handled again after a failed commit must find
    /// the other half again, and an edited coordinate is placed again with the other one,
    /// as an edited attribute is counted again.
    pub geo_objects: moka::sync::Cache<(String, String), Arc<geo::ObjectPlace>>,
    /// `[mispdash] rewind_hours` and `rewind_max_bytes`: how long the rewind stream keeps the
    /// live view (see [`crate::rewind`]).
    pub rewind: crate::config::RewindConfig,
    /// With the rewind stream on: the paths of `[Dashboard] fieldname_order`, what a row's
    /// entry keeps of its content (see [`crate::rewind::trimmed_log`]).
    pub rewind_paths: Option<Vec<Vec<String>>>,
}

impl Env {
    pub fn from_config(
        cfg: &crate::config::Config,
        geo: Option<GeoDb>,
        centroids: Centroids,
        ranking: crate::config::Ranking,
    ) -> Env {
        Env {
            ranking,
            scoring: cfg.contrib.scoring,
            large_message_bytes: cfg.limits.large_message_bytes,
            live_cache_max_bytes: cfg.limits.live_cache_max_bytes,
            max_attempts: cfg.limits.max_attempts,
            record_acl: cfg.acl.enabled,
            aggregate_min_rank: cfg.acl.aggregate_min_rank,
            event_facts: moka::sync::Cache::new(EVENT_FACTS_KEPT),
            wider_geo: cfg.wider_geolocation,
            geo_objects: moka::sync::Cache::new(GEO_OBJECTS_KEPT),
            rewind: cfg.rewind,
            rewind_paths: cfg
                .rewind
                .enabled()
                .then(|| crate::rewind::column_paths(&cfg.dashboard.fieldname_order)),
            channel_live: cfg.redis.channel_live.clone(),
            channel_map: cfg.redis.channel_map.clone(),
            channel_last_contributor: cfg.redis.channel_last_contributor.clone(),
            channel_last_awards: cfg.redis.channel_last_awards.clone(),
            geo: RwLock::new(geo.map(Arc::new)),
            centroids,
        }
    }

    pub fn geo(&self) -> Option<Arc<GeoDb>> {
        match self.geo.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the GeoIP database for the messages that follow.
    pub fn set_geo(&self, db: Option<GeoDb>) {
        let new = db.map(Arc::new);
        match self.geo.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// A contribution the message earns its organisation. Recorded by the rules; turned into
/// `CONTRIB_*` writes by the gamification engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub zmq_name: String,
    pub org: String,
    pub kind: ContribKind,
    /// The raw category (`Network activity`); `None` for events and discussions.
    pub categ: Option<String>,
    /// The message's `action`, passed through as JSON (`"add"`, `null`, ...).
    pub action: Value,
    pub multiplier: i64,
    pub is_labeled: bool,
    /// When the message was handled (the original scores with the time of handling).
    pub epoch: i64,
    /// The local day of `epoch`, for the per-day keys.
    pub day: String,
    /// Not announced on the contributor channels (a backfilled message: not live).
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContribKind {
    Attribute,
    ObjectAttribute,
    Sighting,
    Event,
    Discussion,
}

impl ContribKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContribKind::Attribute => "Attribute",
            ContribKind::ObjectAttribute => "ObjectAttribute",
            ContribKind::Sighting => "Sighting",
            ContribKind::Event => "Event",
            ContribKind::Discussion => "Discussion",
        }
    }
}

/// What one message produced, in the order the original would have done it. A contribution's
/// writes belong at its position among the ops, so the gamification engine can interleave
/// them exactly: `Step::Contribution` marks that position.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Op(Op),
    /// Boxed: a contribution is twice the size of an operation, and a large event holds
    /// tens of thousands of steps.
    Contribution(Box<Contribution>),
}

/// The working state of one message.
pub struct Ctx<'a> {
    pub env: &'a Env,
    pub now: f64,
    pub now_epoch: i64,
    pub today: String,
    pub zmq_name: String,
    pub steps: Vec<Step>,
    /// Fields that were missing or malformed, and what was skipped because of them.
    pub problems: Vec<String>,
    /// Set while handling a published event in corrected mode: its attributes earn nothing.
    pub republished: bool,
    /// The message is larger than `[mispdash] large_message_bytes`: its live-log entries carry
    /// the event without the event's other attributes and objects. Copying the whole event
    /// into each of its N attributes' entries, as the original does, makes N copies of it.
    pub large: bool,
    /// Where publications go while the message is still being handled (see [`Spill`]).
    spill: Option<&'a mut dyn Spill>,
    /// Bytes of publications among `steps`, counted only while spilling.
    unspilled: usize,
    /// While spilling: where each trending's increment sits in `steps`, so a large event adds
    /// to it rather than holding one increment per attribute (see [`Ctx::op`]).
    increments: std::collections::HashMap<(Db, String, String), usize>,
    /// With `[ACL] enabled`, while an attribute is handled: its facts as JSON, recorded with
    /// each map point it makes.
    pub acl_facts: Option<String>,
    /// While set, what is handled is shared less widely than `[ACL]
    /// aggregate_min_distribution`: only the live views (publications, the live caches and
    /// their facts) are written, nothing is counted.
    pub uncounted: bool,
    /// A message `mispdash backfill` read from MISP's API (see
    /// [`crate::message::Envelope::backfilled_at`]): counted, but not live, so nothing is
    /// published or pushed onto the live caches.
    pub backfilled: bool,
    /// While an attribute is geolocated: its type and its tags and its event's (names,
    /// sorted), recorded with each point it makes (see [`crate::keys::geo_points`]).
    pub point_meta: Option<(Value, Vec<String>)>,
}

/// Takes a large message's publications while it is handled, about every
/// [`SPILL_BYTES`], so that memory holds a piece of its live log, not all of it. Publications
/// are not state (pub/sub keeps nothing), so they may go out before the message's writes are
/// committed; a message that is retried is published again.
pub trait Spill {
    fn spill(&mut self, publications: Vec<Op>);
}

/// How many bytes of publications a spilling message holds before handing them on.
pub const SPILL_BYTES: usize = 1 << 20;

impl<'a> Ctx<'a> {
    /// Publications go to `spill` while the message is handled (see [`Spill`]).
    pub fn spilling_to(&mut self, spill: &'a mut dyn Spill) {
        self.spill = Some(spill);
    }

    /// What is left to publish when handling ends goes out with the message's writes.
    pub fn finish_spilling(&mut self) {
        self.spill = None;
    }

    pub fn new(env: &'a Env, clock: &Clock, zmq_name: &str) -> Self {
        let now = clock.now_f64();
        Ctx {
            env,
            now,
            now_epoch: now.floor() as i64,
            today: clock.today(),
            zmq_name: zmq_name.to_string(),
            steps: Vec::new(),
            problems: Vec::new(),
            republished: false,
            large: false,
            spill: None,
            unspilled: 0,
            increments: std::collections::HashMap::new(),
            acl_facts: None,
            uncounted: false,
            backfilled: false,
            point_meta: None,
        }
    }

    /// Whether `facts` are shared less widely than `[ACL] aggregate_min_distribution`.
    pub fn below_threshold(&self, facts: &crate::acl::Facts) -> bool {
        self.env
            .aggregate_min_rank
            .is_some_and(|min| facts.sharing() < min)
    }

    pub fn op(&mut self, op: Op) {
        if self.uncounted && !is_live_view(&op) {
            return;
        }
        if self.backfilled && is_live_view(&op) && !matches!(op, Op::HSet { .. }) {
            return;
        }
        if let (Op::Publish { payload, .. }, Some(_)) = (&op, &self.spill) {
            self.unspilled += payload.len();
        }
        if self.spill.is_some() {
            if let Some(op) = self.add_to_increment(op) {
                self.steps.push(Step::Op(op));
            }
        } else {
            self.steps.push(Step::Op(op));
        }
        if self.unspilled >= SPILL_BYTES {
            self.spill_now();
        }
    }

    /// Adds a trending's increment to the one the message already holds for the same key and
    /// member; returns the operation when it is not such an increment (or the first of its
    /// kind). A large event of N attributes otherwise holds 2N increments until it commits
    /// (8 MB for 20,000). Only the `TRENDINGS_*` sorted sets, which nothing but these
    /// increments writes, so no other write can come between two merged ones; their scores
    /// are whole counts, which a double adds exactly, so the result is the same.
    fn add_to_increment(&mut self, op: Op) -> Option<Op> {
        let Op::ZIncrBy {
            db,
            key,
            member,
            by,
        } = op
        else {
            return Some(op);
        };
        if !key.starts_with(crate::keys::TRENDINGS_PREFIX) || by.fract() != 0.0 {
            return Some(Op::ZIncrBy {
                db,
                key,
                member,
                by,
            });
        }
        let slot = (db, key, member);
        if let Some(&i) = self.increments.get(&slot) {
            if let Some(Step::Op(Op::ZIncrBy { by: held, .. })) = self.steps.get_mut(i) {
                *held += by;
                return None;
            }
        }
        let (db, key, member) = slot.clone();
        self.increments.insert(slot, self.steps.len());
        Some(Op::ZIncrBy {
            db,
            key,
            member,
            by,
        })
    }

    /// Hands the publications held so far to the spill, and drops the live-cache pushes that
    /// the trim after the batch would drop anyway (they share the publications' memory).
    fn spill_now(&mut self) {
        use crate::keys::{LIVE_CACHE_KEEP, LIVE_CACHE_LOG, LIVE_CACHE_MAP};
        self.unspilled = 0;
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        let cached = |step: &Step, key: &str| matches!(step, Step::Op(Op::LPushLive { key: k, .. } | Op::LPush { key: k, .. }) if k == key);
        let mut excess = [LIVE_CACHE_LOG, LIVE_CACHE_MAP].map(|key| {
            self.steps
                .iter()
                .filter(|s| cached(s, key))
                .count()
                .saturating_sub(LIVE_CACHE_KEEP as usize)
        });
        let mut publications = Vec::new();
        // In place: a large message holds many steps, and a copy of them would double that.
        let dropped = self.steps.extract_if(.., |step| {
            if matches!(step, Step::Op(Op::Publish { .. })) {
                return true;
            }
            for (i, key) in [LIVE_CACHE_LOG, LIVE_CACHE_MAP].iter().enumerate() {
                if excess[i] > 0 && cached(step, key) {
                    excess[i] -= 1;
                    return true;
                }
            }
            false
        });
        for step in dropped {
            if let Step::Op(op @ Op::Publish { .. }) = step {
                publications.push(op);
            }
        }
        spill.spill(publications);
        // The steps moved: find the increments again.
        self.increments.clear();
        for (i, step) in self.steps.iter().enumerate() {
            if let Step::Op(Op::ZIncrBy {
                db, key, member, ..
            }) = step
            {
                if key.starts_with(crate::keys::TRENDINGS_PREFIX) {
                    self.increments
                        .insert((*db, key.clone(), member.clone()), i);
                }
            }
        }
    }

    /// Records a contribution of `org` at this message's position.
    pub fn contribute(
        &mut self,
        org: String,
        kind: ContribKind,
        categ: Option<String>,
        action: Value,
        is_labeled: bool,
    ) {
        if self.uncounted {
            return;
        }
        let multiplier = if kind == ContribKind::Sighting { 2 } else { 1 };
        self.steps.push(Step::Contribution(Box::new(Contribution {
            zmq_name: self.zmq_name.clone(),
            org,
            kind,
            categ,
            action,
            multiplier,
            is_labeled,
            epoch: self.now_epoch,
            day: self.today.clone(),
            quiet: self.backfilled,
        })));
    }

    /// Corrected scoring mode (see `docs/compat.md`).
    pub fn corrected(&self) -> bool {
        self.env.scoring == crate::config::Scoring::Corrected
    }

    pub fn problem(&mut self, what: impl Into<String>) {
        self.problems.push(what.into());
    }
}

/// The result of handling one buffer entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Handled; `problems` lists what was skipped (empty for a clean message).
    Applied {
        topic: String,
        steps: Vec<Step>,
        problems: Vec<String>,
    },
    /// Nothing could be done with it.
    Rejected(Reject),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what is spilled.
    #[derive(Default)]
    struct Collect(Vec<Op>);
    impl Spill for Collect {
        fn spill(&mut self, publications: Vec<Op>) {
            self.0.extend(publications);
        }
    }

    fn env() -> Env {
        let cfg = crate::config::Config::defaults();
        Env::from_config(&cfg, None, Centroids::builtin(), Default::default())
    }

    fn zincr(key: &str, member: &str) -> Op {
        Op::ZIncrBy {
            db: crate::store::Db::Data,
            key: key.into(),
            member: member.into(),
            by: 1.0,
        }
    }

    fn increments(steps: &[Step]) -> Vec<(String, String, f64)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Op(Op::ZIncrBy {
                    key, member, by, ..
                }) => Some((key.clone(), member.clone(), *by)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_spilling_message_adds_up_its_trendings_across_spills() {
        let env = env();
        let clock = Clock::frozen(1_700_000_000.0);
        let mut spill = Collect::default();
        let mut ctx = Ctx::new(&env, &clock, "misp1");
        ctx.spilling_to(&mut spill);
        for i in 0..3000 {
            ctx.op(zincr("TRENDINGS_CATEGS:20231114", "Network activity"));
            ctx.op(zincr(
                "TRENDINGS_TAGS:20231114",
                if i % 2 == 0 { "a" } else { "b" },
            ));
            // Not a trendings key: kept one by one.
            ctx.op(zincr("GEO_COUNTRY:20231114", "BE"));
            ctx.op(Op::Publish {
                channel: "misp_live".into(),
                payload: vec![b'x'; 1000].into(),
            });
        }
        ctx.finish_spilling();
        let steps = std::mem::take(&mut ctx.steps);
        drop(ctx);
        assert!(spill.0.len() >= 2000, "publications were spilled");
        let incs = increments(&steps);
        let trend: Vec<_> = incs
            .iter()
            .filter(|i| i.0.starts_with("TRENDINGS_"))
            .collect();
        assert_eq!(
            trend,
            vec![
                &(
                    "TRENDINGS_CATEGS:20231114".into(),
                    "Network activity".into(),
                    3000.0
                ),
                &("TRENDINGS_TAGS:20231114".into(), "a".into(), 1500.0),
                &("TRENDINGS_TAGS:20231114".into(), "b".into(), 1500.0),
            ]
        );
        assert_eq!(
            incs.iter().filter(|i| i.0.starts_with("GEO_")).count(),
            3000
        );
    }

    /// With `[ACL] aggregate_min_distribution`, a message shared less widely is not counted
    /// (no trending, no geolocation count, no contribution) yet still goes to the live views;
    /// one shared widely enough is counted as before; a later message of the same event that
    /// does not say its distribution (an object) is judged by what the event's message said.
    #[test]
    fn statistics_count_only_messages_shared_widely_enough() {
        let mut cfg = crate::config::Config::defaults();
        cfg.acl.aggregate_min_rank = crate::acl::sharing_rank(1);
        let env = Env::from_config(&cfg, None, Centroids::builtin(), Default::default());
        let clock = Clock::frozen(1_795_176_000.0);
        let frame = |event: u32, dist: u8| {
            format!(
                r#"misp_json_attribute {{"action": "add", "Attribute": {{"id": "1", "event_id": "{event}", "object_id": "0", "category": "Other", "type": "phone-number", "value": "+32 2 555 01 01", "timestamp": "1795175000", "distribution": "5", "Tag": [{{"name": "tlp:amber"}}]}}, "Event": {{"id": "{event}", "org_id": "1", "distribution": "{dist}", "sharing_group_id": "0", "published": true, "Orgc": {{"name": "Org 1"}}}}}}"#
            )
        };
        let outcome = |content: &str| match handle_frame(&env, &clock, "misp1", content) {
            Outcome::Applied { steps, .. } => steps,
            Outcome::Rejected(r) => panic!("rejected: {r}"),
        };
        let counted = |steps: &[Step]| {
            let writes = steps
                .iter()
                .filter(|s| match s {
                    Step::Op(op) => !is_live_view(op),
                    Step::Contribution(_) => true,
                })
                .count();
            let live = steps
                .iter()
                .filter(|s| matches!(s, Step::Op(Op::Publish { .. })))
                .count();
            (writes, live)
        };
        let (writes, live) = counted(&outcome(&frame(10, 0)));
        assert_eq!(writes, 0, "an organisation-only event is not counted");
        assert!(live >= 2, "its live row and map point still go out");
        let (writes, _) = counted(&outcome(&frame(11, 1)));
        assert!(writes >= 4, "a community event is counted: {writes} writes");
        let object = |event: u32| {
            format!(
                r#"misp_json_object {{"action": "add", "Object": {{"id": "3", "event_id": "{event}", "meta-category": "misc", "distribution": "5", "Attribute": [{{"id": "30", "event_id": "{event}", "object_id": "3", "category": "Other", "type": "text", "value": "x", "timestamp": "1795175000", "distribution": "5"}}]}}}}"#
            )
        };
        assert_eq!(
            counted(&outcome(&object(10))).0,
            0,
            "the event said: organisation only"
        );
        assert!(
            counted(&outcome(&object(11))).0 >= 1,
            "the event said: community"
        );
        assert_eq!(
            counted(&outcome(&object(12))).0,
            0,
            "an event nobody described"
        );
    }

    #[test]
    fn a_message_that_does_not_spill_keeps_every_increment() {
        let env = env();
        let clock = Clock::frozen(1_700_000_000.0);
        let mut ctx = Ctx::new(&env, &clock, "misp1");
        for _ in 0..3 {
            ctx.op(zincr("TRENDINGS_CATEGS:20231114", "Network activity"));
        }
        assert_eq!(increments(&ctx.steps).len(), 3);
    }
}
