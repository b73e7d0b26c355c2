//! Who may see a live message: MISP's own visibility rules, applied to what its ZeroMQ feed
//! publishes (which MISP sends to every subscriber whatever its distribution).
//!
//! The rules follow MISP's models (`docs/acl.md` names the files and the version followed):
//! an event is visible to a site admin, to its owner organisation (`org_id`; the creator,
//! `orgc_id`, does not count), and to others when its distribution is this community,
//! connected communities or all (1-3), or a sharing group the user's organisation belongs to
//! (4), and, with MISP's `unpublishedprivate`, only once published. An attribute or an object
//! inside needs in addition its own distribution to pass (5, inherit, passes: the event's
//! condition already applies). A sighting needs its attribute visible and MISP's sightings
//! policy to allow it.
//!
//! The decision is split in two so that it costs once per message, not once per viewer: the
//! rules turn a message's [`Facts`] into an [`Audience`] (the owner, and what everyone else
//! needs: sharing groups, maybe a list of organisations), and each viewer is then a
//! membership test of a few integers ([`Audience::admits`]). What a message does not say is
//! never read as "everyone": an unknown distribution or owner leaves others out.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// What `/status` and `selftest` name as the rules followed (`docs/acl.md` gives the files).
pub const RULES_FOLLOWED: &str = "MISP 2.5's access rules (Event::createEventConditions, \
     MispAttribute::buildConditions, SharingGroup::authorizedIds, the sightings policy)";

/// MISP's distribution levels.
pub const ORG_ONLY: u8 = 0;
pub const SHARING_GROUP: u8 = 4;
pub const INHERIT: u8 = 5;

/// A signed-in user, in MISP's terms: what the rules need of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Viewer {
    pub org_id: u64,
    pub site_admin: bool,
    /// The sharing groups MISP authorises the user's organisation for (its `authorizedIds`).
    pub sharing_groups: BTreeSet<u64>,
}

/// MISP's settings that change who sees what (`[ACL]` in config.cfg mirrors them); the
/// defaults are MISP's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// `MISP.unpublishedprivate`: unpublished events only for their owner organisation.
    pub unpublished_private: bool,
    /// `Plugin.Sightings_policy` (0-3, MISP's default 0).
    pub sightings_policy: u8,
    /// `MISP.host_org_id`, for sightings policy 3.
    pub host_org_id: Option<u64>,
}

/// What a message says of its event (each field `None` when it does not say).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFacts {
    pub id: Option<u64>,
    pub org_id: Option<u64>,
    pub distribution: Option<u8>,
    pub sharing_group_id: Option<u64>,
    pub published: Option<bool>,
}

/// What a message says of an attribute's or an object's own distribution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFacts {
    pub distribution: Option<u8>,
    pub sharing_group_id: Option<u64>,
}

/// Everything the rules read of one live message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub event: EventFacts,
    pub attribute: Option<ItemFacts>,
    /// The attribute belongs to an object (`object_id` not 0).
    pub in_object: bool,
    pub object: Option<ItemFacts>,
    /// For a sighting: the organisation that made it.
    pub sighting_org: Option<u64>,
}

/// Who, besides site admins, may see one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience {
    /// The event's owner organisation: it sees everything of its events.
    owner: Option<u64>,
    /// What any other organisation needs; `None`: no other organisation sees it.
    others: Option<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Requirement {
    /// Sharing groups the viewer's organisation must all belong to (empty: none needed).
    sharing_groups: Vec<u64>,
    /// When set, only these organisations (a sightings policy).
    only_orgs: Option<Vec<u64>>,
}

impl Audience {
    /// Site admins only: what a message whose event is unknown gets.
    pub fn admins_only() -> Audience {
        Audience::default()
    }

    /// Everyone: what messages without MISP data (keep-alives) get.
    pub fn everyone() -> Audience {
        Audience {
            owner: None,
            others: Some(Requirement::default()),
        }
    }

    /// The rules: who may see a message with these facts, under MISP's `policy`.
    pub fn decide(f: &Facts, policy: &Policy) -> Audience {
        let owner = f.event.org_id;
        let mut needs = Vec::new();
        let mut ok = event_open(&f.event, policy, &mut needs);
        match &f.attribute {
            Some(a) => ok &= item_open(a, &mut needs),
            // A sighting's attribute summary says nothing of the attribute's distribution:
            // unless an earlier message said it, others do not see the sighting.
            None if f.sighting_org.is_some() => ok = false,
            None => {}
        }
        if f.in_object {
            // An object attribute whose object's distribution is unknown stays with the owner.
            ok &= f.object.as_ref().is_some_and(|o| item_open(o, &mut needs));
        }
        let mut others = ok.then(|| {
            needs.sort_unstable();
            needs.dedup();
            Requirement {
                sharing_groups: needs,
                only_orgs: None,
            }
        });
        if let (Some(sighter), Some(req)) = (f.sighting_org, others.as_mut()) {
            match policy.sightings_policy {
                2 => {}
                3 => {
                    let mut orgs = vec![sighter];
                    orgs.extend(policy.host_org_id);
                    req.only_orgs = Some(orgs);
                }
                // 0, and 1 (MISP also shows it to organisations that sighted the event before,
                // which the feed does not tell; stricter here) and anything unknown.
                _ => req.only_orgs = Some(vec![sighter]),
            }
        }
        Audience { owner, others }
    }

    /// Whether `v` may see the message.
    pub fn admits(&self, v: &Viewer) -> bool {
        if v.site_admin || self.owner == Some(v.org_id) {
            return true;
        }
        self.others.as_ref().is_some_and(|r| {
            r.sharing_groups
                .iter()
                .all(|g| v.sharing_groups.contains(g))
                && r.only_orgs.as_ref().is_none_or(|o| o.contains(&v.org_id))
        })
    }

    /// Whether every signed-in user may see it.
    pub fn is_everyone(&self) -> bool {
        self.others
            .as_ref()
            .is_some_and(|r| r.sharing_groups.is_empty() && r.only_orgs.is_none())
    }
}

/// The event's condition for organisations other than its owner; the sharing group it needs,
/// if any, is added to `needs`.
fn event_open(e: &EventFacts, policy: &Policy, needs: &mut Vec<u64>) -> bool {
    if policy.unpublished_private && e.published != Some(true) {
        return false;
    }
    match e.distribution {
        Some(1..=3) => true,
        Some(SHARING_GROUP) => e.sharing_group_id.map(|g| needs.push(g)).is_some(),
        // 0 (organisation only), 5 (an event has nothing to inherit from), unknown.
        _ => false,
    }
}

/// An attribute's or object's own condition (inherit passes: the event's applies).
fn item_open(i: &ItemFacts, needs: &mut Vec<u64>) -> bool {
    match i.distribution {
        Some(1..=3) | Some(INHERIT) => true,
        Some(SHARING_GROUP) => i.sharing_group_id.map(|g| needs.push(g)).is_some(),
        _ => false,
    }
}

/// How widely a distribution level shares, from organisation only (0) to all communities (4),
/// a sharing group ranking just above organisation only; `None` for inherit (no constraint of
/// its own).
pub fn sharing_rank(distribution: u8) -> Option<u8> {
    match distribution {
        ORG_ONLY => Some(0),
        SHARING_GROUP => Some(1),
        d @ 1..=3 => Some(d + 1),
        _ => None,
    }
}

/// What the statistics count, in words, with `[ACL] aggregate_min_distribution` as a rank.
pub fn statistics_scope(min_rank: Option<u8>) -> &'static str {
    match min_rank {
        None | Some(0) => "every event",
        Some(1) => "events shared beyond their organisation (sharing groups and wider)",
        Some(2) => "events shared with this community or wider",
        Some(3) => "events shared with connected communities or wider",
        Some(_) => "events shared with all communities",
    }
}

impl Facts {
    /// How widely the message is shared: the narrowest of its event's, its object's and its
    /// own distributions (a level not said counts as organisation only).
    pub fn sharing(&self) -> u8 {
        let event = self.event.distribution.and_then(sharing_rank).unwrap_or(0);
        [&self.object, &self.attribute]
            .into_iter()
            .flatten()
            .filter_map(|i| match i.distribution {
                Some(d) => sharing_rank(d),
                None => Some(0),
            })
            .fold(event, u8::min)
    }
}

/// MISP writes ids and flags as numbers or as strings of digits; a sharing group id of 0 (or
/// none) means none.
fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(u64::from(*b)),
        _ => None,
    }
}

fn distribution(v: Option<&Value>) -> Option<u8> {
    number(v)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|d| *d <= INHERIT)
}

fn sharing_group(v: Option<&Value>) -> Option<u64> {
    number(v).filter(|g| *g != 0)
}

fn item(o: &Value) -> ItemFacts {
    ItemFacts {
        distribution: distribution(o.get("distribution")),
        sharing_group_id: sharing_group(o.get("sharing_group_id")),
    }
}

impl EventFacts {
    /// What an `Event` object says.
    pub fn of(e: &Value) -> EventFacts {
        EventFacts {
            id: number(e.get("id")),
            org_id: number(e.get("org_id")),
            distribution: distribution(e.get("distribution")),
            sharing_group_id: sharing_group(e.get("sharing_group_id")),
            published: number(e.get("published")).map(|p| p != 0),
        }
    }

    /// Fills what this message does not say from what an earlier one said of the same event.
    pub fn complete_from(&mut self, earlier: &EventFacts) {
        if self.id.is_some() && earlier.id.is_some() && self.id != earlier.id {
            return;
        }
        self.id = self.id.or(earlier.id);
        self.org_id = self.org_id.or(earlier.org_id);
        if self.distribution.is_none() {
            self.distribution = earlier.distribution;
            self.sharing_group_id = earlier.sharing_group_id;
        }
        self.published = self.published.or(earlier.published);
    }
}

impl Facts {
    /// What a live-log entry's MISP content says, in each of the shapes the dispatcher writes:
    /// an attribute message (`{"Attribute", "Event", "Object"?}`), an event's attribute (the
    /// same with the event around it), an object's attribute (the object's own fields with
    /// `Attribute` and `Event` in them), a sighting (its `org_id`, `Event` and `Attribute`).
    pub fn of_content(c: &Value) -> Facts {
        let attribute = match c.get("Attribute") {
            Some(a @ Value::Object(_)) => a,
            _ => c,
        };
        Facts::of_lookup(|k| c.get(k), |k| attribute.get(k))
    }

    /// [`Facts::of_content`] of a content's JSON text, decoding only the fields the rules read:
    /// a live message carries its whole event (every attribute of it), and the hub reads the
    /// facts of every row it publishes. `None` unless the text is a JSON object.
    pub fn of_text(text: &str) -> Option<Facts> {
        let top = pick(text, TOP_FIELDS)?;
        Some(Facts::of_content(&Value::Object(top)))
    }

    /// [`Facts::of_content`] through lookups of the content's top-level fields (`top`) and of
    /// its attribute's (`attr`): how the dispatcher reads them without building the content.
    pub fn of_lookup<'v>(
        top: impl Fn(&str) -> Option<&'v Value>,
        attr: impl Fn(&str) -> Option<&'v Value>,
    ) -> Facts {
        let is_sighting = top("attribute_id").is_some() && top("date_sighting").is_some();
        let mut event = top("Event").map(EventFacts::of).unwrap_or_default();
        if event.id.is_none() {
            event.id = number(attr("event_id")).or(number(top("event_id")));
        }
        let in_object = !is_sighting && number(attr("object_id")).is_some_and(|o| o != 0);
        // An object's attribute carries the object's fields around it; an attribute message
        // carries its object as `Object`.
        let object = if !is_sighting && top("Attribute").is_some() && top("meta-category").is_some()
        {
            Some(ItemFacts {
                distribution: distribution(top("distribution")),
                sharing_group_id: sharing_group(top("sharing_group_id")),
            })
        } else {
            top("Object").filter(|o| o.is_object()).map(item)
        };
        Facts {
            event,
            // A sighting's attribute summary has no distribution: only the attribute's own
            // message said it (see `Audience::decide`).
            attribute: (!is_sighting).then(|| ItemFacts {
                distribution: distribution(attr("distribution")),
                sharing_group_id: sharing_group(attr("sharing_group_id")),
            }),
            in_object,
            object,
            sighting_org: if is_sighting {
                number(top("org_id"))
            } else {
                None
            },
        }
    }
}

/// The fields [`Facts::of_lookup`] reads at the top of a content, and inside its `Event`,
/// `Attribute` and `Object` (the same names serve: each reads a few of them).
const TOP_FIELDS: &[&str] = &[
    "attribute_id",
    "date_sighting",
    "event_id",
    "object_id",
    "org_id",
    "distribution",
    "sharing_group_id",
    "meta-category",
];
const NESTED_FIELDS: &[&str] = &[
    "id",
    "org_id",
    "event_id",
    "object_id",
    "distribution",
    "sharing_group_id",
    "published",
];

/// The object in `text` with only `fields` decoded, and `Event`, `Attribute` and `Object`
/// with only [`NESTED_FIELDS`] (an `Attribute` that is not an object, as around an object's
/// attributes, is kept as an empty list: the rules only ask whether it is there).
fn pick(text: &str, fields: &[&str]) -> Option<serde_json::Map<String, Value>> {
    type Raw<'a> = std::collections::HashMap<String, &'a serde_json::value::RawValue>;
    let raw: Raw<'_> = serde_json::from_str(text).ok()?;
    let mut out = serde_json::Map::new();
    for (k, v) in raw {
        let value = if matches!(k.as_str(), "Event" | "Attribute" | "Object") {
            match pick(v.get(), NESTED_FIELDS) {
                Some(m) => Value::Object(m),
                None if k == "Attribute" => Value::Array(Vec::new()),
                None => continue,
            }
        } else if fields.contains(&k.as_str()) {
            match serde_json::from_str(v.get()) {
                Ok(v) => v,
                Err(_) => continue,
            }
        } else {
            continue;
        };
        out.insert(k, value);
    }
    Some(out)
}

/// What names a live map point (its payload as published): the facts the dispatcher records
/// for a point carry it, so that the server pairs them with the point whatever the order of
/// other points between.
pub fn map_point_id(payload: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(payload.as_bytes())[..8])
}

/// One map point's facts as the dispatcher records them in mispdash's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointFacts {
    pub id: String,
    pub facts: Facts,
}

/// Pairs map points with their recorded facts: per point id, the facts in the order they were
/// recorded (identical points of several events each get their own).
#[derive(Debug, Default)]
pub struct PointFactsQueue {
    by_id: std::collections::HashMap<String, std::collections::VecDeque<Facts>>,
    len: usize,
}

/// Recorded facts waiting for their point, at most: beyond, all are forgotten (points that
/// come later without facts are for site admins only).
const POINT_FACTS_MAX: usize = 4096;

impl PointFactsQueue {
    pub fn push(&mut self, p: PointFacts) {
        if self.len >= POINT_FACTS_MAX {
            self.by_id.clear();
            self.len = 0;
        }
        self.by_id.entry(p.id).or_default().push_back(p.facts);
        self.len += 1;
    }

    /// Adds the records of the dispatcher's list (`keys::ACL_MAP`, newest first), in the order
    /// they were recorded; records that do not parse are skipped.
    pub fn extend_from_list(&mut self, newest_first: &[String]) {
        for f in newest_first.iter().rev() {
            if let Ok(p) = serde_json::from_str::<PointFacts>(f) {
                self.push(p);
            }
        }
    }

    /// The facts recorded for the point whose payload is `payload`, oldest first.
    pub fn take(&mut self, payload: &str) -> Option<Facts> {
        let id = map_point_id(payload);
        let q = self.by_id.get_mut(&id)?;
        let f = q.pop_front();
        if q.is_empty() {
            self.by_id.remove(&id);
        }
        if f.is_some() {
            self.len -= 1;
        }
        f
    }
}

impl Viewer {
    /// The viewer MISP describes: its `/users/view/me.json` answer (or a site admin's view of
    /// the user) and the sharing groups MISP lists for the user. `None` when MISP did not say
    /// which organisation the user belongs to.
    pub fn from_misp(me: &Value, sharing_groups: &BTreeSet<u64>) -> Option<Viewer> {
        let org_id = number(me.pointer("/User/org_id"))
            .or_else(|| number(me.pointer("/Organisation/id")))?;
        let site_admin = number(me.pointer("/Role/perm_site_admin")).is_some_and(|v| v != 0);
        Some(Viewer {
            org_id,
            site_admin,
            sharing_groups: sharing_groups.clone(),
        })
    }
}

/// The entries of MISP's `/sharing_groups.json` answer (`{"response": [...]}` or a bare list).
fn sharing_group_entries(answer: &Value) -> impl Iterator<Item = &Value> {
    answer
        .get("response")
        .or(Some(answer))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The ids of the sharing groups in MISP's `/sharing_groups.json` answer (`{"response": [...]}`
/// or a bare list), as MISP lists them for the user who asked: its `authorizedIds`.
pub fn listed_sharing_groups(answer: &Value) -> BTreeSet<u64> {
    sharing_group_entries(answer)
        .filter_map(|sg| number(sg.pointer("/SharingGroup/id")))
        .collect()
}

/// The sharing groups of `/sharing_groups.json` as a site admin sees them (all of them) that
/// organisation `org_id` is authorised for, as MISP's `authorizedIds` decides: a member
/// organisation, or the local server's "all organisations" entry.
pub fn sharing_groups_of_org(answer: &Value, org_id: u64) -> BTreeSet<u64> {
    sharing_group_entries(answer)
        .filter(|sg| {
            let member = sg
                .get("SharingGroupOrg")
                .and_then(Value::as_array)
                .is_some_and(|orgs| orgs.iter().any(|o| number(o.get("org_id")) == Some(org_id)));
            let all_local = sg
                .get("SharingGroupServer")
                .and_then(Value::as_array)
                .is_some_and(|servers| {
                    servers.iter().any(|s| {
                        number(s.get("all_orgs")) == Some(1)
                            && number(s.get("server_id")).unwrap_or(0) == 0
                    })
                });
            member || all_local
        })
        .filter_map(|sg| number(sg.pointer("/SharingGroup/id")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWNER: u64 = 1;
    const OTHER: u64 = 2;
    const SG: u64 = 7;

    fn viewer(org: u64, admin: bool, sgs: &[u64]) -> Viewer {
        Viewer {
            org_id: org,
            site_admin: admin,
            sharing_groups: sgs.iter().copied().collect(),
        }
    }

    fn event(dist: u8, sg: Option<u64>, published: bool) -> EventFacts {
        EventFacts {
            id: Some(10),
            org_id: Some(OWNER),
            distribution: Some(dist),
            sharing_group_id: sg,
            published: Some(published),
        }
    }

    fn it(dist: u8, sg: Option<u64>) -> Option<ItemFacts> {
        Some(ItemFacts {
            distribution: Some(dist),
            sharing_group_id: sg,
        })
    }

    fn facts(e: EventFacts, a: Option<ItemFacts>) -> Facts {
        Facts {
            event: e,
            attribute: a,
            ..Facts::default()
        }
    }

    /// Who of: the owner, another organisation, another one in the sharing group, a site
    /// admin of another organisation.
    fn who(f: &Facts, policy: &Policy) -> [bool; 4] {
        let a = Audience::decide(f, policy);
        [
            a.admits(&viewer(OWNER, false, &[])),
            a.admits(&viewer(OTHER, false, &[])),
            a.admits(&viewer(OTHER, false, &[SG])),
            a.admits(&viewer(99, true, &[])),
        ]
    }

    #[test]
    fn events_by_distribution() {
        let p = Policy::default();
        let cases: &[(u8, Option<u64>, [bool; 4])] = &[
            (0, None, [true, false, false, true]),
            (1, None, [true, true, true, true]),
            (2, None, [true, true, true, true]),
            (3, None, [true, true, true, true]),
            (4, Some(SG), [true, false, true, true]),
            // A sharing-group event without its group: only the owner.
            (4, None, [true, false, false, true]),
            // Inherit means nothing for an event.
            (5, None, [true, false, false, true]),
        ];
        for (d, sg, want) in cases {
            assert_eq!(
                who(&facts(event(*d, *sg, true), None), &p),
                *want,
                "event dist {d}"
            );
        }
    }

    #[test]
    fn attributes_need_the_event_and_their_own_distribution() {
        let p = Policy::default();
        let cases: &[(u8, u8, Option<u64>, [bool; 4])] = &[
            (3, 5, None, [true, true, true, true]),
            (3, 0, None, [true, false, false, true]),
            (3, 1, None, [true, true, true, true]),
            (3, 4, Some(SG), [true, false, true, true]),
            (0, 3, None, [true, false, false, true]),
            (4, 5, None, [true, false, true, true]),
            // Event in the group, attribute in another one the viewer lacks.
            (4, 4, Some(8), [true, false, false, true]),
        ];
        for (ed, ad, asg, want) in cases {
            let esg = (*ed == 4).then_some(SG);
            let f = facts(event(*ed, esg, true), it(*ad, *asg));
            assert_eq!(who(&f, &p), *want, "event {ed}, attribute {ad}");
        }
        // Both groups needed.
        let f = facts(event(4, Some(SG), true), it(4, Some(8)));
        assert!(Audience::decide(&f, &p).admits(&viewer(OTHER, false, &[SG, 8])));
    }

    #[test]
    fn object_attributes_need_the_object_too() {
        let p = Policy::default();
        let mut f = facts(event(3, None, true), it(5, None));
        f.in_object = true;
        f.object = it(0, None);
        assert_eq!(who(&f, &p), [true, false, false, true]);
        f.object = it(5, None);
        assert_eq!(who(&f, &p), [true, true, true, true]);
        f.object = it(4, Some(SG));
        assert_eq!(who(&f, &p), [true, false, true, true]);
        // The object's distribution unknown: owner and admins only.
        f.object = None;
        assert_eq!(who(&f, &p), [true, false, false, true]);
    }

    #[test]
    fn unpublished_events_with_unpublishedprivate() {
        let private = Policy {
            unpublished_private: true,
            ..Policy::default()
        };
        let f = facts(event(3, None, false), it(5, None));
        assert_eq!(who(&f, &Policy::default()), [true, true, true, true]);
        assert_eq!(who(&f, &private), [true, false, false, true]);
        let f = facts(event(3, None, true), it(5, None));
        assert_eq!(who(&f, &private), [true, true, true, true]);
        // Not saying whether it is published is not published.
        let mut e = event(3, None, true);
        e.published = None;
        assert_eq!(who(&facts(e, None), &private), [true, false, false, true]);
    }

    #[test]
    fn owner_not_creator_decides() {
        // The creator organisation (orgc_id) of an event owned by OWNER sees no more than any
        // other organisation.
        let c = json!({"Event": {"id": "10", "org_id": "1", "orgc_id": "2", "distribution": "0",
            "sharing_group_id": "0", "published": true}, "Attribute": {"distribution": "5",
            "object_id": "0"}});
        let a = Audience::decide(&Facts::of_content(&c), &Policy::default());
        assert!(a.admits(&viewer(1, false, &[])));
        assert!(!a.admits(&viewer(2, false, &[])));
    }

    #[test]
    fn messages_that_say_nothing_go_to_admins_only() {
        let a = Audience::decide(&Facts::default(), &Policy::default());
        assert_eq!(
            [
                a.admits(&viewer(OWNER, false, &[])),
                a.admits(&viewer(99, true, &[]))
            ],
            [false, true]
        );
        // The owner known, the distribution not: owner and admins.
        let mut e = event(3, None, true);
        e.distribution = None;
        assert_eq!(
            who(&facts(e, None), &Policy::default()),
            [true, false, false, true]
        );
        assert!(Audience::everyone().is_everyone());
        assert!(!Audience::admins_only().is_everyone());
    }

    #[test]
    fn sightings_by_policy() {
        let sighting = |policy: u8| {
            let mut f = facts(event(3, None, true), it(5, None));
            f.sighting_org = Some(OTHER);
            let p = Policy {
                sightings_policy: policy,
                host_org_id: Some(5),
                ..Policy::default()
            };
            let a = Audience::decide(&f, &p);
            [
                a.admits(&viewer(OWNER, false, &[])),
                a.admits(&viewer(OTHER, false, &[])),
                a.admits(&viewer(3, false, &[])),
                a.admits(&viewer(5, false, &[])),
            ]
        };
        assert_eq!(sighting(0), [true, true, false, false]);
        assert_eq!(sighting(1), [true, true, false, false]);
        assert_eq!(sighting(2), [true, true, true, true]);
        assert_eq!(sighting(3), [true, true, false, true]);
        // A sighting of an event the sighter cannot see: not even the sighter.
        let mut f = facts(event(0, None, true), it(5, None));
        f.sighting_org = Some(OTHER);
        assert!(!Audience::decide(&f, &Policy::default()).admits(&viewer(OTHER, false, &[])));
        // The attribute's distribution unknown (no earlier message said it): the owner only.
        f = facts(event(3, None, true), None);
        f.sighting_org = Some(OTHER);
        let a = Audience::decide(&f, &Policy::default());
        assert!(a.admits(&viewer(OWNER, false, &[])));
        assert!(!a.admits(&viewer(OTHER, false, &[])));
    }

    #[test]
    fn facts_of_each_content_shape() {
        // misp_json_attribute: the attribute, its event, its object.
        let c = json!({"Attribute": {"id": "5", "event_id": "10", "object_id": "3",
            "distribution": "4", "sharing_group_id": "7"}, "Event": {"id": "10", "org_id": 1,
            "distribution": 3, "sharing_group_id": "0", "published": false},
            "Object": {"id": "3", "distribution": "5", "sharing_group_id": "0"}});
        let f = Facts::of_content(&c);
        assert_eq!(f.event, event(3, None, false));
        assert_eq!(f.attribute, it(4, Some(7)));
        assert!(f.in_object);
        assert_eq!(f.object, it(5, None));
        // An object's attribute from misp_json: the object's fields around it.
        let c = json!({"id": "3", "name": "file", "meta-category": "file", "distribution": "0",
            "sharing_group_id": "0", "Attribute": {"object_id": "3", "distribution": "5"},
            "Event": {"id": "10", "org_id": "1", "distribution": "3", "published": true}});
        let f = Facts::of_content(&c);
        assert_eq!(f.object, it(0, None));
        assert!(f.in_object);
        // misp_json_object: no event, only its id.
        let c = json!({"id": "3", "event_id": "10", "meta-category": "file", "distribution": "1",
            "Attribute": {"object_id": "3", "event_id": "10", "distribution": "5"}});
        let f = Facts::of_content(&c);
        assert_eq!(f.event.id, Some(10));
        assert_eq!(f.event.org_id, None);
        // A sighting: its organisation, the event's owner, no distribution.
        let c = json!({"id": "1", "attribute_id": "5", "event_id": "10", "org_id": "2",
            "date_sighting": "1795176000", "type": "0",
            "Event": {"id": "10", "org_id": "1", "orgc_id": "1"},
            "Attribute": {"id": "5", "value": "x", "category": "Network activity"}});
        let f = Facts::of_content(&c);
        assert_eq!(f.sighting_org, Some(2));
        assert_eq!(f.event.org_id, Some(1));
        assert_eq!(f.event.distribution, None);
        assert_eq!(f.attribute, None);
    }

    #[test]
    fn facts_of_text_are_those_of_the_whole_content() {
        let shapes = [
            json!({"Attribute": {"id": "5", "event_id": "10", "object_id": "3", "value": "x",
                "distribution": "4", "sharing_group_id": "7", "Tag": [{"name": "tlp:red"}]},
                "Event": {"id": "10", "org_id": 1, "orgc_id": 2, "distribution": 3,
                "sharing_group_id": "0", "published": false, "Attribute": [{"id": "9"}]},
                "Object": {"id": "3", "distribution": "5", "sharing_group_id": "0"}}),
            json!({"id": "3", "name": "file", "meta-category": "file", "distribution": "0",
                "sharing_group_id": "0", "Attribute": {"object_id": "3", "distribution": "5"},
                "Event": {"id": "10", "org_id": "1", "distribution": "3", "published": true}}),
            json!({"id": "3", "event_id": "10", "meta-category": "file", "distribution": "1",
                "Attribute": [{"object_id": "3", "event_id": "10", "distribution": "5"}]}),
            json!({"id": "1", "attribute_id": "5", "event_id": "10", "org_id": "2",
                "date_sighting": "1795176000", "type": "0",
                "Event": {"id": "10", "org_id": "1", "orgc_id": "1"},
                "Attribute": {"id": "5", "value": "x", "category": "Network activity"}}),
            json!({"Event": "not an object", "Attribute": 5}),
            json!({}),
        ];
        for c in shapes {
            assert_eq!(
                Facts::of_text(&c.to_string()),
                Some(Facts::of_content(&c)),
                "{c}"
            );
        }
        assert_eq!(Facts::of_text("[1, 2]"), None);
        assert_eq!(Facts::of_text("not json"), None);
    }

    #[test]
    fn earlier_messages_complete_what_one_lacks() {
        let mut e = EventFacts {
            id: Some(10),
            ..EventFacts::default()
        };
        e.complete_from(&event(4, Some(SG), true));
        assert_eq!(e, event(4, Some(SG), true));
        // Another event's facts are not taken.
        let mut other = EventFacts {
            id: Some(11),
            ..EventFacts::default()
        };
        other.complete_from(&event(3, None, true));
        assert_eq!(other.distribution, None);
    }

    #[test]
    fn how_widely_a_message_is_shared() {
        assert_eq!(facts(event(3, None, true), it(5, None)).sharing(), 4);
        assert_eq!(facts(event(3, None, true), it(1, None)).sharing(), 2);
        assert_eq!(facts(event(4, Some(SG), true), it(5, None)).sharing(), 1);
        assert_eq!(facts(event(2, None, true), it(0, None)).sharing(), 0);
        let mut f = facts(event(3, None, true), it(5, None));
        f.in_object = true;
        f.object = it(4, Some(SG));
        assert_eq!(f.sharing(), 1);
        // Unknown: the narrowest.
        assert_eq!(Facts::default().sharing(), 0);
    }

    #[test]
    fn point_facts_pair_with_their_points_in_order() {
        let mut q = PointFactsQueue::default();
        let point = r#"{"coord": {"lat": 1.0, "lon": 2.0}, "value": "x"}"#;
        let first = facts(event(0, None, true), it(5, None));
        let second = facts(event(3, None, true), it(5, None));
        for f in [&first, &second] {
            q.push(PointFacts {
                id: map_point_id(point),
                facts: f.clone(),
            });
        }
        assert_eq!(q.take("another point"), None);
        assert_eq!(q.take(point), Some(first));
        assert_eq!(q.take(point), Some(second));
        assert_eq!(q.take(point), None);
    }

    #[test]
    fn viewers_and_sharing_groups_from_misp_answers() {
        let me = json!({"User": {"id": "4", "org_id": "2", "email": "bob@example.org"},
            "Role": {"perm_site_admin": false}, "Organisation": {"id": "2"}});
        let sgs = json!({"response": [
            {"SharingGroup": {"id": "7"}, "SharingGroupOrg": [{"org_id": "2"}, {"org_id": "1"}],
             "SharingGroupServer": [{"all_orgs": false, "server_id": "0"}]},
            {"SharingGroup": {"id": "8"}, "SharingGroupOrg": [{"org_id": "1"}],
             "SharingGroupServer": [{"all_orgs": true, "server_id": "0"}]},
            {"SharingGroup": {"id": "9"}, "SharingGroupOrg": [{"org_id": "1"}],
             "SharingGroupServer": [{"all_orgs": true, "server_id": "3"}]}]});
        assert_eq!(
            listed_sharing_groups(&sgs),
            [7, 8, 9].into_iter().collect::<BTreeSet<u64>>()
        );
        assert_eq!(
            sharing_groups_of_org(&sgs, 2),
            [7, 8].into_iter().collect::<BTreeSet<u64>>()
        );
        let v = Viewer::from_misp(&me, &sharing_groups_of_org(&sgs, 2)).expect("viewer");
        assert_eq!(v, viewer(2, false, &[7, 8]));
        let admin = json!({"User": {"org_id": 1}, "Role": {"perm_site_admin": "1"}});
        assert!(
            Viewer::from_misp(&admin, &BTreeSet::new())
                .expect("admin")
                .site_admin
        );
        assert!(Viewer::from_misp(&json!({"User": {}}), &BTreeSet::new()).is_none());
    }
}
