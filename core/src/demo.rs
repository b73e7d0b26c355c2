//! A built-in, clearly labelled demo feed for when no MISP is configured.
//!
//! Someone trying mispdash for the first time has no MISP to point it at, and an empty dashboard
//! shows nothing of what it does. The demo feed publishes what a busy MISP would: frames of the
//! same shape MISP's `mispzmq.py` sends (one frame, `"<topic> <json>"`), over a real ZMQ PUB
//! socket, so the data goes through exactly the path real data takes (subscriber, buffer,
//! dispatcher, rules, store) and exercises it.
//!
//! Nobody may mistake the result for real intelligence: the feed name shown in the UI is
//! [`DEMO_FEED_NAME`], every organisation ends in "(demo)", every event title starts with
//! "DEMO:", and domains and mail addresses use reserved top-level domains.
//!
//! Frames are deterministic for a seed and a frozen clock, so tests can rely on them.

mod data;

use crate::clock::Clock;
use data::*;
use serde_json::{json, Value};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The feed name of the demo; becomes `zmq_name` in the buffer and `zmqName` in the UI.
pub const DEMO_FEED_NAME: &str = "demo (simulated data)";

/// Every topic the demo emits.
pub const TOPICS: &[&str] = &[
    "misp_json_event",
    "misp_json_attribute",
    "misp_json_object",
    "misp_json_sighting",
    "misp_json_conversation",
    "misp_json_audit",
    "misp_json_self",
    "misp_json",
];

/// How long MISP stays silent before it sends a keep-alive (current MISP behaviour).
pub const KEEPALIVE_AFTER: Duration = Duration::from_secs(10);

/// Share of each kind of frame, in percent, close to a busy MISP's mix: attribute saves dominate,
/// sightings and logins follow, publishes (which replay whole events) are rare.
const MIX: &[(Kind, u32)] = &[
    (Kind::Attribute, 38),
    (Kind::Sighting, 18),
    (Kind::Audit, 12),
    (Kind::Event, 10),
    (Kind::Object, 9),
    (Kind::Conversation, 6),
    (Kind::KeepAlive, 4),
    (Kind::Publish, 3),
];

/// Events kept for attributes, sightings and discussions to refer to, as they would in MISP.
const EVENT_POOL: usize = 40;
/// Attributes kept for sightings to refer to.
const ATTRIBUTE_POOL: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Event,
    Attribute,
    Object,
    Sighting,
    Conversation,
    Audit,
    KeepAlive,
    Publish,
}

/// SplitMix64: tiny, fast, and (unlike the `rand` crate's `StdRng`) guaranteed to give the same
/// sequence forever, which the determinism promise needs.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); the modulo bias is irrelevant for demo data.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn range(&mut self, lo: u32, hi_inclusive: u32) -> u32 {
        lo + self.below((hi_inclusive - lo + 1) as usize) as u32
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut r = self.below(total as usize) as u32;
        for (item, w) in items {
            if r < *w {
                return *item;
            }
            r -= w;
        }
        items[items.len() - 1].0
    }

    fn hex(&mut self, len: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..len).map(|_| HEX[self.below(16)] as char).collect()
    }

    fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    /// A version-4-shaped UUID.
    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        let variant = ["8", "9", "a", "b"][self.below(4)];
        format!(
            "{}-{}-4{}-{}{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            variant,
            &h[17..20],
            &h[20..32]
        )
    }
}

#[derive(Debug, Clone)]
struct DemoOrg {
    id: String,
    name: &'static str,
    uuid: String,
    domain: &'static str,
}

#[derive(Debug, Clone)]
struct DemoEvent {
    id: u64,
    uuid: String,
    info: String,
    org: usize,
    date: String,
    threat_level: u32,
    analysis: u32,
    distribution: u32,
    tags: Vec<usize>,
}

/// An attribute MISP holds, remembered so that later sightings can refer to it.
#[derive(Debug, Clone)]
struct KnownAttribute {
    attribute: Value,
    event_id: u64,
}

/// Generator of realistic MISP ZMQ frames; see the module documentation.
#[derive(Debug, Clone)]
pub struct DemoFeed {
    rng: Rng,
    clock: Clock,
    started: i64,
    orgs: Vec<DemoOrg>,
    events: Vec<DemoEvent>,
    attributes: Vec<KnownAttribute>,
    next_event_id: u64,
    next_attribute_id: u64,
    next_object_id: u64,
    next_sighting_id: u64,
    next_post_id: u64,
    next_thread_id: u64,
    next_log_id: u64,
}

impl DemoFeed {
    pub fn new(seed: u64, clock: Clock) -> DemoFeed {
        let mut rng = Rng(seed);
        let orgs = ORGS
            .iter()
            .enumerate()
            .map(|(i, (name, domain))| DemoOrg {
                id: (i + 1).to_string(),
                name,
                uuid: rng.uuid(),
                domain,
            })
            .collect();
        let mut feed = DemoFeed {
            started: clock.now_epoch(),
            clock,
            orgs,
            events: Vec::new(),
            attributes: Vec::new(),
            next_event_id: 1000 + rng.range(0, 800) as u64,
            next_attribute_id: 50_000 + rng.range(0, 20_000) as u64,
            next_object_id: 7000 + rng.range(0, 2000) as u64,
            next_sighting_id: 300 + rng.range(0, 500) as u64,
            next_post_id: 400 + rng.range(0, 300) as u64,
            next_thread_id: 40 + rng.range(0, 60) as u64,
            next_log_id: 90_000 + rng.range(0, 9000) as u64,
            rng,
        };
        // A MISP that has been running a while: attributes and discussions have events to
        // belong to from the first frame on.
        for _ in 0..8 {
            feed.new_event();
        }
        feed
    }

    /// The next frame as MISP would send it: `"<topic> <json>"`.
    pub fn next_frame(&mut self) -> String {
        let (topic, body) = match self.rng.weighted(MIX) {
            Kind::Event => ("misp_json_event", self.event_message()),
            Kind::Attribute => ("misp_json_attribute", self.attribute_message()),
            Kind::Object => ("misp_json_object", self.object_message()),
            Kind::Sighting => ("misp_json_sighting", self.sighting_message()),
            Kind::Conversation => ("misp_json_conversation", self.conversation_message()),
            Kind::Audit => ("misp_json_audit", self.audit_message()),
            Kind::KeepAlive => {
                let uptime = (self.clock.now_epoch() - self.started).max(0) as u64;
                return keepalive_frame(uptime);
            }
            Kind::Publish => ("misp_json", self.publish_message()),
        };
        format!("{topic} {}", crate::pyjson::to_string(&body))
    }

    fn now(&self) -> String {
        self.clock.now_epoch().to_string()
    }

    fn local(&self, fmt: &str) -> String {
        crate::clock::local_datetime(self.clock.now_f64())
            .map(|d| d.format(fmt).to_string())
            .unwrap_or_else(|| "1970-01-01".to_string())
    }

    // ---- the world: events and values ----

    fn new_event(&mut self) -> usize {
        let info = match self.rng.below(8) {
            0 | 1 => format!(
                "DEMO: phishing campaign impersonating {}",
                self.rng.pick(LURES)
            ),
            2 => format!("DEMO: {} C2 infrastructure update", self.rng.pick(MALWARE)),
            3 => format!(
                "DEMO: ransomware intrusion at a {} organisation",
                self.rng.pick(SECTORS)
            ),
            4 => format!(
                "DEMO: malicious documents dropping {}",
                self.rng.pick(MALWARE)
            ),
            5 => "DEMO: scanning activity from residential proxies".to_string(),
            6 => "DEMO: phone fraud with spoofed caller IDs".to_string(),
            _ => format!("DEMO: weekly IOC digest - {}", self.rng.pick(MALWARE)),
        };
        let mut tags = vec![*self.rng.pick(TLP_TAGS)];
        for _ in 0..self.rng.below(3) {
            let t = 4 + self.rng.below(TAGS.len() - 4);
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let event = DemoEvent {
            id: self.next_event_id,
            uuid: self.rng.uuid(),
            info,
            org: self.rng.below(self.orgs.len()),
            date: self.local("%Y-%m-%d"),
            threat_level: self.rng.range(1, 4),
            analysis: self.rng.range(0, 2),
            distribution: self.rng.range(0, 3),
            tags,
        };
        self.next_event_id += 1;
        if self.events.len() >= EVENT_POOL {
            let gone = self.events.remove(0);
            // Sightings must name the attribute's real event, so its attributes go with it.
            self.attributes.retain(|a| a.event_id != gone.id);
        }
        self.events.push(event);
        self.events.len() - 1
    }

    /// An existing event, recent ones more often (as activity concentrates on fresh events).
    fn some_event(&mut self) -> usize {
        let n = self.events.len();
        if n == 0 {
            return self.new_event();
        }
        let back = self.rng.below(n.min(12)).min(self.rng.below(n));
        n - 1 - back
    }

    fn org_ref(&self, org: usize) -> Value {
        let o = &self.orgs[org];
        json!({"id": o.id, "name": o.name, "uuid": o.uuid})
    }

    fn tag_full(&self, t: usize) -> Value {
        let (id, name, colour) = TAGS[t];
        json!({
            "id": id, "name": name, "colour": colour, "exportable": true, "user_id": "0",
            "hide_tag": false, "numerical_value": null, "is_galaxy": name.starts_with("misp-galaxy:"),
            "is_custom_galaxy": false, "local_only": false, "local": 0
        })
    }

    /// The event header MISP embeds in attribute, object and sighting messages.
    fn event_head(&self, e: usize) -> Value {
        let ev = &self.events[e];
        let org = &self.orgs[ev.org];
        json!({
            "id": ev.id.to_string(),
            "orgc_id": org.id,
            "org_id": org.id,
            "date": ev.date,
            "threat_level_id": ev.threat_level.to_string(),
            "info": ev.info,
            "published": false,
            "uuid": ev.uuid,
            "analysis": ev.analysis.to_string(),
            "distribution": ev.distribution.to_string(),
            "timestamp": self.now(),
            "sharing_group_id": "0",
            "publish_timestamp": "0",
            "Orgc": self.org_ref(ev.org),
        })
    }

    fn domain(&mut self) -> String {
        format!(
            "{}-{}.{}",
            self.rng.pick(WORDS),
            self.rng.pick(WORDS),
            self.rng.pick(DEMO_TLDS)
        )
    }

    fn public_ip(&mut self) -> String {
        let (_, prefixes) = self.rng.pick(IP_PREFIXES);
        let (a, b) = *self.rng.pick(prefixes);
        format!(
            "{a}.{b}.{}.{}",
            self.rng.range(1, 254),
            self.rng.range(1, 254)
        )
    }

    fn phone(&mut self) -> String {
        let (prefix, n) = *self.rng.pick(PHONE_PLANS);
        // A leading 0 or 1 would be a trunk or service prefix in several plans.
        let first = self.rng.range(2, 9);
        // E.164, the form MISP users paste most.
        format!(
            "{}{first}{}",
            prefix.replace(' ', ""),
            self.rng.digits(n - 1)
        )
    }

    fn value_for(&mut self, atype: &str, org: usize) -> String {
        match atype {
            "ip-src" | "ip-dst" => self.public_ip(),
            "domain" => self.domain(),
            "hostname" => format!("{}.{}", self.rng.pick(WORDS), self.domain()),
            "url" => format!(
                "https://{}/{}/{}.php",
                self.domain(),
                self.rng.pick(WORDS),
                self.rng.pick(WORDS)
            ),
            "link" => format!("https://reports.demo.example/{}", self.rng.hex(12)),
            "md5" => self.rng.hex(32),
            "sha1" => self.rng.hex(40),
            "sha256" => self.rng.hex(64),
            "filename" => {
                let stem = self.rng.pick(WORDS);
                let ext = self
                    .rng
                    .pick(&["pdf.exe", "zip", "js", "dll", "docm", "iso"]);
                format!("{stem}_{}.{ext}", self.rng.hex(4))
            }
            "email-src" => format!("{}@{}", self.rng.pick(WORDS), self.domain()),
            "email-subject" => self.rng.pick(EMAIL_SUBJECTS).to_string(),
            "mutex" => format!("Global\\{}", self.rng.hex(12)),
            "regkey" => format!(
                "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\{}",
                self.rng.pick(WORDS)
            ),
            "vulnerability" => format!("CVE-2025-{}", self.rng.range(1000, 59999)),
            "btc" => format!("bc1q{}", self.rng.hex(38)),
            "iban" => format!("DE{}", self.rng.digits(20)),
            "phone-number" => self.phone(),
            "github-username" => format!(
                "{}-{}{}",
                self.rng.pick(WORDS),
                self.rng.pick(WORDS),
                self.rng.range(1, 99)
            ),
            "first-name" => {
                let n = self.rng.pick(FIRST_NAMES);
                let mut c = n.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            }
            "last-name" => self.rng.pick(LAST_NAMES).to_string(),
            "comment" | "text" => format!("observed by {} during triage", self.orgs[org].name),
            _ => self.rng.hex(16),
        }
    }

    /// One attribute as MISP serialises it, and remembers it for later sightings.
    fn attribute(
        &mut self,
        e: usize,
        category: &str,
        atype: &str,
        object: Option<(&str, &str)>,
    ) -> Value {
        let org = self.events[e].org;
        let value = self.value_for(atype, org);
        let id = self.next_attribute_id;
        self.next_attribute_id += 1;
        let (object_id, relation) = match object {
            Some((oid, rel)) => (oid.to_string(), Value::from(rel)),
            None => ("0".to_string(), Value::Null),
        };
        let mut a = json!({
            "id": id.to_string(),
            "type": atype,
            "category": category,
            "to_ids": IDS_TYPES.contains(&atype),
            "uuid": self.rng.uuid(),
            "event_id": self.events[e].id.to_string(),
            "distribution": "5",
            "timestamp": self.now(),
            "comment": *self.rng.pick(COMMENTS),
            "sharing_group_id": "0",
            "deleted": false,
            "disable_correlation": false,
            "object_id": object_id,
            "object_relation": relation,
            "first_seen": null,
            "last_seen": null,
            "value": value,
        });
        if self.rng.chance(45) {
            let n = 1 + self.rng.below(2);
            let mut tags = Vec::new();
            for _ in 0..n {
                let t = self.rng.below(TAGS.len());
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            a["Tag"] = Value::Array(tags.into_iter().map(|t| self.tag_full(t)).collect());
        }
        if self.attributes.len() >= ATTRIBUTE_POOL {
            self.attributes.remove(0);
        }
        // Sightings carry the attribute without its tags, as MISP's sighting export does.
        let mut known = a.clone();
        if let Some(m) = known.as_object_mut() {
            m.remove("Tag");
        }
        self.attributes.push(KnownAttribute {
            attribute: known,
            event_id: self.events[e].id,
        });
        a
    }

    fn random_attribute(&mut self, e: usize) -> Value {
        let cats: Vec<(usize, u32)> = CATEGORIES
            .iter()
            .enumerate()
            .map(|(i, (_, w, _))| (i, *w))
            .collect();
        let (category, _, types) = CATEGORIES[self.rng.weighted(&cats)];
        let atype = self.rng.weighted(types);
        self.attribute(e, category, atype, None)
    }

    // ---- messages ----

    fn event_message(&mut self) -> Value {
        let (e, action) = if self.rng.chance(70) || self.events.is_empty() {
            (self.new_event(), "add")
        } else {
            (self.some_event(), "edit")
        };
        let ev = self.events[e].clone();
        let org = &self.orgs[ev.org];
        let event_tags: Vec<Value> = ev
            .tags
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let (id, name, colour) = TAGS[t];
                json!({
                    "id": (ev.id * 10 + i as u64).to_string(),
                    "event_id": ev.id.to_string(),
                    "tag_id": id,
                    "local": false,
                    "Tag": {"id": id, "name": name, "colour": colour, "exportable": true},
                })
            })
            .collect();
        json!({
            "Event": {
                "id": ev.id.to_string(),
                "orgc_id": org.id,
                "org_id": org.id,
                "date": ev.date,
                "threat_level_id": ev.threat_level.to_string(),
                "info": ev.info,
                "published": false,
                "uuid": ev.uuid,
                "attribute_count": self.rng.range(0, 40).to_string(),
                "analysis": ev.analysis.to_string(),
                "timestamp": self.now(),
                "distribution": ev.distribution.to_string(),
                "proposal_email_lock": false,
                "locked": false,
                "publish_timestamp": "0",
                "sharing_group_id": "0",
                "disable_correlation": false,
                "extends_uuid": "",
            },
            "Org": self.org_ref(ev.org),
            "Orgc": self.org_ref(ev.org),
            "EventTag": event_tags,
            "action": action,
        })
    }

    fn attribute_message(&mut self) -> Value {
        let e = self.some_event();
        let attribute = self.random_attribute(e);
        let action = if self.rng.chance(85) { "add" } else { "edit" };
        json!({
            "Attribute": attribute,
            "Event": self.event_head(e),
            "action": action,
        })
    }

    fn object_message(&mut self) -> Value {
        let e = self.some_event();
        let (name, meta, template, fields) = *self.rng.pick(OBJECT_TEMPLATES);
        let object_id = self.next_object_id.to_string();
        self.next_object_id += 1;
        let attributes: Vec<Value> = fields
            .iter()
            .map(|(rel, cat, atype)| self.attribute(e, cat, atype, Some((&object_id, rel))))
            .collect();
        json!({
            "Object": {
                "id": object_id,
                "name": name,
                "meta-category": meta,
                "description": format!("{name} object"),
                "template_uuid": template,
                "template_version": "25",
                "event_id": self.events[e].id.to_string(),
                "uuid": self.rng.uuid(),
                "timestamp": self.now(),
                "distribution": "5",
                "sharing_group_id": "0",
                "comment": "",
                "deleted": false,
                "first_seen": null,
                "last_seen": null,
                "ObjectReference": [],
                "Attribute": attributes,
            },
            "Event": self.event_head(e),
            "action": "add",
        })
    }

    fn sighting_message(&mut self) -> Value {
        if self.attributes.is_empty() {
            let e = self.some_event();
            self.random_attribute(e);
        }
        // From here the pool is not empty, and every remembered attribute's event is still in
        // the event pool (see `new_event`).
        // Sightings come from sensors, which see network indicators far more than anything.
        let mut pick = self.rng.below(self.attributes.len());
        for _ in 0..3 {
            let cat = self.attributes[pick].attribute["category"].as_str();
            if cat == Some("Network activity") {
                break;
            }
            pick = self.rng.below(self.attributes.len());
        }
        let known = self.attributes[pick].clone();
        let e = self
            .events
            .iter()
            .position(|ev| ev.id == known.event_id)
            .unwrap_or(self.events.len() - 1);
        let ev = &self.events[e];
        let event_org = ev.org;
        let seer = self.rng.below(self.orgs.len());
        let kind = self.rng.weighted(&[("0", 85), ("1", 15)]);
        let event = json!({
            "id": ev.id.to_string(),
            "orgc_id": self.orgs[event_org].id,
            "org_id": self.orgs[event_org].id,
            "uuid": ev.uuid,
            "info": ev.info,
            "Orgc": self.org_ref(event_org),
        });
        let id = self.next_sighting_id;
        self.next_sighting_id += 1;
        json!({
            "Sighting": {
                "id": id.to_string(),
                "attribute_id": known.attribute["id"],
                "event_id": ev.id.to_string(),
                "org_id": self.orgs[seer].id,
                "date_sighting": self.now(),
                "uuid": self.rng.uuid(),
                "source": *self.rng.pick(SIGHTING_SOURCES),
                "type": kind,
                "Event": event,
                "Attribute": known.attribute,
                "Organisation": self.org_ref(seer),
            },
            "action": "add",
        })
    }

    fn conversation_message(&mut self) -> Value {
        let e = self.some_event();
        let org = self.rng.below(self.orgs.len());
        let now = self.local("%Y-%m-%d %H:%M:%S");
        let post_id = self.next_post_id;
        self.next_post_id += 1;
        // Most posts continue an existing thread.
        let thread_id = if self.rng.chance(30) {
            self.next_thread_id += 1;
            self.next_thread_id
        } else {
            self.next_thread_id.saturating_sub(self.rng.below(5) as u64)
        };
        let ev = &self.events[e];
        json!({
            "Post": {
                "id": post_id.to_string(),
                "date": now,
                "user_id": (org * 10 + 1 + self.rng.below(5)).to_string(),
                "contents": *self.rng.pick(POST_TEXTS),
                "post_id": "0",
                "thread_id": thread_id.to_string(),
                "org_name": self.orgs[org].name,
            },
            "Thread": {
                "id": thread_id.to_string(),
                "date_created": now,
                "date_modified": now,
                "distribution": "1",
                "post_count": self.rng.range(1, 9).to_string(),
                "event_id": ev.id.to_string(),
                "title": ev.info,
                "org_id": self.orgs[ev.org].id,
                "sharing_group_id": "0",
            },
        })
    }

    fn audit_message(&mut self) -> Value {
        let org = self.rng.below(self.orgs.len());
        let n = self.rng.below(5);
        let user_id = (org * 10 + 1 + n).to_string();
        let email = format!(
            "{}.{}@{}",
            FIRST_NAMES[(org * 5 + n) % FIRST_NAMES.len()],
            n + 1,
            self.orgs[org].domain
        );
        let id = self.next_log_id;
        self.next_log_id += 1;
        // Most audit traffic the dashboard sees is logins; the rest is ignored by it but is
        // part of what MISP really sends.
        let (action, model, model_id, title) = if self.rng.chance(85) {
            (
                "login",
                "User",
                user_id.clone(),
                format!("User ({user_id}): {email}"),
            )
        } else {
            let e = self.some_event();
            let ev = &self.events[e];
            (
                "edit",
                "Event",
                ev.id.to_string(),
                format!("Event ({}): {}", ev.id, ev.info),
            )
        };
        json!({
            "Log": {
                "id": id.to_string(),
                "title": title,
                "created": self.local("%Y-%m-%d %H:%M:%S"),
                "model": model,
                "model_id": model_id,
                "action": action,
                "user_id": user_id,
                "change": "",
                "email": email,
                "org": self.orgs[org].name,
                "description": null,
                // Documentation range: the user's own address is not meant for the map.
                "ip": format!("198.51.100.{}", self.rng.range(1, 254)),
            },
            "action": "log",
        })
    }

    /// A publish (`misp_json`): the whole event with its tags and a few attributes, `Orgc` nested
    /// inside `Event` as in MISP's JSON export.
    fn publish_message(&mut self) -> Value {
        let e = self.some_event();
        let n = 2 + self.rng.below(3);
        let attributes: Vec<Value> = (0..n).map(|_| self.random_attribute(e)).collect();
        let ev = self.events[e].clone();
        let org = &self.orgs[ev.org];
        let now = self.now();
        json!({
            "Event": {
                "id": ev.id.to_string(),
                "orgc_id": org.id,
                "org_id": org.id,
                "date": ev.date,
                "threat_level_id": ev.threat_level.to_string(),
                "info": ev.info,
                "published": true,
                "uuid": ev.uuid,
                "analysis": ev.analysis.to_string(),
                "distribution": ev.distribution.to_string(),
                "timestamp": now,
                "sharing_group_id": "0",
                "publish_timestamp": now,
                "Orgc": self.org_ref(ev.org),
                "Org": self.org_ref(ev.org),
                "Tag": ev.tags.iter().map(|&t| self.tag_full(t)).collect::<Vec<_>>(),
                "Attribute": attributes,
                "Object": [],
            }
        })
    }
}

/// MISP's keep-alive frame, with the demo's status so it reads as demo in the live log.
pub fn keepalive_frame(uptime_secs: u64) -> String {
    format!("misp_json_self {{\"status\": \"demo\", \"uptime\": {uptime_secs}}}")
}

/// Runs the demo on its own thread, publishing on a ZMQ PUB socket bound at `endpoint` at about
/// `rate` frames per second until `stop` turns true; see [`spawn_publisher_with_keepalive`].
pub fn spawn_publisher(
    endpoint: &str,
    rate: f64,
    seed: u64,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    spawn_publisher_with_keepalive(endpoint, rate, seed, clock, stop, KEEPALIVE_AFTER)
}

/// [`spawn_publisher`] with the silence before a keep-alive chosen, so that tests need not wait
/// ten seconds. A `rate` of zero (or not a number) sends keep-alives only.
///
/// The socket is bound before this returns, so a taken port is reported to the caller instead
/// of dying silently on the thread.
pub fn spawn_publisher_with_keepalive(
    endpoint: &str,
    rate: f64,
    seed: u64,
    clock: Clock,
    stop: Arc<AtomicBool>,
    keepalive_after: Duration,
) -> io::Result<JoinHandle<()>> {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::PUB).map_err(zmq_io)?;
    // Never block shutdown on frames no subscriber will read.
    socket.set_linger(0).map_err(zmq_io)?;
    socket.bind(endpoint).map_err(|e| {
        io::Error::new(
            zmq_io(e).kind(),
            format!("cannot bind demo feed to {endpoint}: {e}"),
        )
    })?;
    let interval = (rate.is_finite() && rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
    tracing::info!(
        "demo feed: publishing simulated MISP data on {endpoint} (about {rate} frames/s)"
    );
    let endpoint = endpoint.to_string();
    std::thread::Builder::new()
        .name("demo-feed".into())
        .spawn(move || {
            // The context must live as long as the socket; moving both in keeps them together.
            let _ctx = ctx;
            let mut feed = DemoFeed::new(seed, clock);
            let started = Instant::now();
            let mut last_sent = Instant::now();
            let mut next_due = Instant::now();
            let step = Duration::from_millis(20);
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                let frame = match interval {
                    Some(iv) if now >= next_due => {
                        next_due += iv;
                        // After a stall (suspended laptop, loaded CI) resume the pace instead of
                        // bursting out the backlog.
                        if now.saturating_duration_since(next_due) > Duration::from_secs(1) {
                            next_due = now + iv;
                        }
                        Some(feed.next_frame())
                    }
                    _ if now.duration_since(last_sent) >= keepalive_after => {
                        Some(keepalive_frame(started.elapsed().as_secs()))
                    }
                    _ => None,
                };
                match frame {
                    Some(f) => {
                        // A PUB socket drops what it cannot queue; only a dead context errs.
                        if let Err(e) = socket.send(f.as_bytes(), zmq::DONTWAIT) {
                            if e != zmq::Error::EAGAIN {
                                tracing::warn!("demo feed on {endpoint}: send failed: {e}");
                            }
                        }
                        last_sent = Instant::now();
                    }
                    None => {
                        let until = match interval {
                            Some(_) => next_due.min(last_sent + keepalive_after),
                            None => last_sent + keepalive_after,
                        };
                        std::thread::sleep(until.saturating_duration_since(now).min(step));
                    }
                }
            }
            tracing::info!("demo feed on {endpoint} stopped");
        })
}

fn zmq_io(e: zmq::Error) -> io::Error {
    let kind = match e {
        zmq::Error::EADDRINUSE => io::ErrorKind::AddrInUse,
        zmq::Error::EADDRNOTAVAIL => io::ErrorKind::AddrNotAvailable,
        zmq::Error::EINVAL | zmq::Error::EPROTONOSUPPORT => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

#[cfg(test)]
mod tests;
