//! The fixed vocabulary of the demo feed.
//!
//! Everything that names an organisation, a campaign or a domain is visibly fake: organisations
//! end in "(demo)", event titles start with "DEMO:", domains and mailboxes use the reserved
//! `.example`/`.test` top-level domains. Only the IP prefixes and phone numbering plans are real,
//! because the point of the demo is a lively world map; the prefixes were chosen so that both
//! DB-IP Lite and the 2018 GeoLite2 City database place every address of the /16 in the same
//! country, and the phone numbers use numbering plans whose English country name the original's
//! pycountry table knows (it aborts on e.g. Russia or South Korea).

/// Organisation name and the mail domain of its users.
pub(super) const ORGS: &[(&str, &str)] = &[
    ("Northwind CERT (demo)", "northwind-cert.example"),
    ("Contoso Bank CSIRT (demo)", "contoso-bank.example"),
    ("Globex Energy SOC (demo)", "globex-energy.example"),
    ("Initech Health ISAC (demo)", "initech-health.example"),
    ("Umbrella Telecom CERT (demo)", "umbrella-telecom.example"),
    ("Fabrikam Gov CSIRT (demo)", "fabrikam-gov.example"),
    ("Tailspin Rail SOC (demo)", "tailspin-rail.example"),
    ("Wingtip University CERT (demo)", "wingtip-uni.example"),
    ("Litware Cloud Security (demo)", "litware-cloud.example"),
    ("Adatum Insurance CERT (demo)", "adatum-insurance.example"),
];

pub(super) const FIRST_NAMES: &[&str] = &[
    "alice",
    "bruno",
    "chloe",
    "dmitri",
    "elena",
    "farid",
    "greta",
    "hiro",
    "ines",
    "jonas",
    "katarzyna",
    "luis",
    "maria",
    "noah",
    "olga",
    "pierre",
    "quentin",
    "rosa",
    "sven",
    "tariq",
];

pub(super) const LAST_NAMES: &[&str] = &[
    "Schmidt", "Dubois", "Rossi", "Novak", "Silva", "Tanaka", "Kowalski", "Jensen", "Moreau",
    "Ivanova", "Garcia", "Okafor",
];

/// `(id, name, colour)` of the tags MISP instances commonly carry.
pub(super) const TAGS: &[(&str, &str, &str)] = &[
    ("1", "tlp:white", "#ffffff"),
    ("2", "tlp:green", "#339900"),
    ("3", "tlp:amber", "#ffc000"),
    ("4", "tlp:red", "#cc0033"),
    (
        "5",
        "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\"",
        "#0088cc",
    ),
    (
        "6",
        "misp-galaxy:mitre-attack-pattern=\"Command and Scripting Interpreter - T1059\"",
        "#0088cc",
    ),
    ("7", "circl:incident-classification=\"phishing\"", "#1a0033"),
    ("8", "circl:incident-classification=\"malware\"", "#1a0033"),
    ("9", "kill-chain:Command and Control", "#7a4500"),
    ("10", "kill-chain:Delivery", "#7a4500"),
    ("11", "osint:source-type=\"blog-post\"", "#00223b"),
    ("12", "ecsirt:malicious-code=\"ransomware\"", "#c2185b"),
    ("13", "workflow:state=\"complete\"", "#33ff00"),
    ("14", "admiralty-scale:source-reliability=\"b\"", "#0064a8"),
];

/// Index into [`TAGS`] of the TLP tags, of which an event carries exactly one.
pub(super) const TLP_TAGS: &[usize] = &[0, 1, 1, 1, 2, 2, 3];

pub(super) const MALWARE: &[&str] = &[
    "Emotet",
    "QakBot",
    "AgentTesla",
    "RedLine",
    "Cobalt Strike",
    "LockBit",
    "IcedID",
    "AsyncRAT",
    "Formbook",
    "Remcos",
];

pub(super) const LURES: &[&str] = &[
    "a parcel carrier",
    "the national tax office",
    "a webmail provider",
    "an online bank",
    "a video-conferencing service",
    "a payroll platform",
    "a cloud storage provider",
];

pub(super) const SECTORS: &[&str] = &[
    "healthcare",
    "energy",
    "finance",
    "telecom",
    "government",
    "education",
    "transport",
];

pub(super) const POST_TEXTS: &[&str] = &[
    "We see the same C2 since Monday.",
    "Any sample hash for this?",
    "Confirmed on our side, blocking at the proxy.",
    "False positive for us: that IP is a shared CDN node.",
    "Added two more domains from our sandbox.",
    "Vu aussi dans nos journaux, merci pour le partage.",
    "Can we raise this to TLP:AMBER?",
];

pub(super) const COMMENTS: &[&str] = &[
    "",
    "",
    "",
    "from sandbox run",
    "seen in proxy logs",
    "détecté par l'équipe SOC",
    "gesehen in unseren Logs",
    "shared by partner CERT",
];

pub(super) const WORDS: &[&str] = &[
    "secure", "update", "login", "verify", "cdn", "sync", "portal", "account", "mail", "cloud",
    "track", "invoice", "office", "vault", "relay", "ember", "yonder", "nimbus", "quartz",
];

pub(super) const DEMO_TLDS: &[&str] = &["example", "test"];

/// ISO country code and /16 prefixes inside it (see the module documentation for how they were
/// chosen). Spread over every continent so the map shows the whole world.
pub(super) const IP_PREFIXES: &[(&str, &[(u8, u8)])] = &[
    ("US", &[(24, 5), (71, 200), (98, 210)]),
    ("CA", &[(70, 50), (99, 230), (142, 160)]),
    ("MX", &[(187, 140), (189, 200)]),
    ("BR", &[(177, 40), (201, 20)]),
    ("AR", &[(186, 130), (190, 190)]),
    ("GB", &[(81, 150), (86, 150), (2, 120)]),
    ("FR", &[(86, 200), (82, 120)]),
    ("DE", &[(80, 130), (84, 140), (91, 40)]),
    ("NL", &[(145, 50), (84, 80), (77, 160)]),
    ("ES", &[(83, 40), (88, 20), (80, 30)]),
    ("IT", &[(79, 20), (93, 40), (151, 20)]),
    ("SE", &[(78, 70), (90, 230), (83, 250)]),
    ("PL", &[(83, 20), (89, 64), (31, 60)]),
    ("LU", &[(158, 64)]),
    ("UA", &[(93, 72), (46, 200)]),
    ("RU", &[(95, 24), (85, 140), (178, 64)]),
    ("TR", &[(78, 160), (88, 240), (85, 100)]),
    ("IR", &[(2, 176)]),
    ("EG", &[(41, 40), (156, 200), (197, 32)]),
    ("NG", &[(105, 112), (197, 210)]),
    ("KE", &[(41, 80), (105, 160), (197, 232)]),
    ("ZA", &[(105, 224)]),
    ("IN", &[(117, 200), (49, 36), (122, 160)]),
    ("CN", &[(218, 20), (61, 135), (123, 120)]),
    ("KR", &[(211, 200), (175, 200), (121, 140)]),
    ("JP", &[(126, 10), (60, 100)]),
    ("VN", &[(113, 160), (14, 160), (171, 240)]),
    ("SG", &[(116, 88), (220, 255)]),
    ("ID", &[(36, 70), (114, 120)]),
    ("AU", &[(1, 120), (101, 160), (110, 140)]),
];

/// Phone numbers as `(country prefix with its area code, digits that follow)`: a fixed-line
/// area whose remaining digits may be anything, so random digits give valid numbers.
pub(super) const PHONE_PLANS: &[(&str, usize)] = &[
    ("+33 1", 8),    // France, Paris
    ("+49 30", 8),   // Germany, Berlin
    ("+44 20 7", 7), // United Kingdom, London
    ("+32 2 5", 6),  // Belgium, Brussels
    ("+41 44", 7),   // Switzerland, Zurich
    ("+34 91", 7),   // Spain, Madrid
    ("+39 06", 8),   // Italy, Rome
    ("+48 22", 7),   // Poland, Warsaw
    ("+46 8", 7),    // Sweden, Stockholm
    ("+1 212 6", 6), // United States, New York
    ("+1 416 9", 6), // Canada, Toronto
    ("+55 11 3", 7), // Brazil, São Paulo
    ("+52 55 5", 7), // Mexico, Mexico City
    ("+27 21 4", 6), // South Africa, Cape Town
    ("+91 11 2", 7), // India, Delhi
    ("+81 3 5", 7),  // Japan, Tokyo
    ("+61 2 9", 7),  // Australia, Sydney
];

/// `(type, weight)` pairs of one category.
pub(super) type TypeWeights = &'static [(&'static str, u32)];

/// `(category, weight, [(type, weight)])` for attributes; weights mimic a busy MISP, where
/// network indicators and payload hashes dominate.
pub(super) const CATEGORIES: &[(&str, u32, TypeWeights)] = &[
    (
        "Network activity",
        40,
        &[
            ("ip-dst", 40),
            ("ip-src", 25),
            ("domain", 15),
            ("hostname", 10),
            ("url", 10),
        ],
    ),
    (
        "Payload delivery",
        20,
        &[
            ("sha256", 25),
            ("md5", 20),
            ("filename", 20),
            ("url", 15),
            ("email-src", 10),
            ("ip-src", 10),
        ],
    ),
    (
        "Artifacts dropped",
        8,
        &[("sha1", 40), ("filename", 40), ("mutex", 20)],
    ),
    (
        "External analysis",
        8,
        &[("link", 50), ("vulnerability", 30), ("comment", 20)],
    ),
    (
        "Financial fraud",
        6,
        &[("phone-number", 40), ("btc", 35), ("iban", 25)],
    ),
    (
        "Other",
        6,
        &[("comment", 40), ("phone-number", 30), ("text", 30)],
    ),
    ("Persistence mechanism", 4, &[("regkey", 100)]),
    (
        "Social network",
        4,
        &[("github-username", 70), ("phone-number", 30)],
    ),
    (
        "Person",
        4,
        &[("phone-number", 60), ("first-name", 20), ("last-name", 20)],
    ),
];

/// Types that are indicators for an IDS (MISP's default `to_ids`).
pub(super) const IDS_TYPES: &[&str] = &[
    "ip-dst",
    "ip-src",
    "domain",
    "hostname",
    "url",
    "sha256",
    "md5",
    "sha1",
    "filename",
    "email-src",
    "mutex",
    "regkey",
];

/// `(object_relation, category, type)` of each attribute of an object.
pub(super) type ObjectFields = &'static [(&'static str, &'static str, &'static str)];

/// `(name, meta-category, template uuid, [(relation, category, type)])` of the objects sent.
pub(super) const OBJECT_TEMPLATES: &[(&str, &str, &str, ObjectFields)] = &[
    (
        "file",
        "file",
        "d3a1c0e2-5a7b-4c8e-9f10-0d1e2f3a4b5c",
        &[
            ("filename", "Payload delivery", "filename"),
            ("md5", "Payload delivery", "md5"),
            ("sha256", "Payload delivery", "sha256"),
        ],
    ),
    (
        "domain-ip",
        "network",
        "4b6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e",
        &[
            ("domain", "Network activity", "domain"),
            ("ip", "Network activity", "ip-dst"),
        ],
    ),
    (
        "person",
        "misc",
        "9c8b7a69-5847-4362-a514-0f1e2d3c4b5a",
        &[
            ("first-name", "Person", "first-name"),
            ("last-name", "Person", "last-name"),
            ("phone-number", "Person", "phone-number"),
        ],
    ),
    (
        "email",
        "network",
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        &[
            ("from", "Payload delivery", "email-src"),
            ("subject", "Payload delivery", "email-subject"),
        ],
    ),
];

pub(super) const EMAIL_SUBJECTS: &[&str] = &[
    "Your parcel could not be delivered",
    "Invoice overdue - action required",
    "Password expires today",
    "Updated payroll information",
];

pub(super) const SIGHTING_SOURCES: &[&str] =
    &["IDS", "proxy", "spamtrap", "sandbox", "honeypot", ""];
