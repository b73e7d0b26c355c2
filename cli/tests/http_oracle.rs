//! The JSON API against the original's recorded answers (`../shared/corpus/*.http.json`): the
//! same questions are asked with the shared `http_probe.py` and compared with
//! `oracle_compare.py http --strict`. Every difference must be one of the original's 500s that
//! `docs/compat.md` ("HTTP") names, and each named one must still differ.

mod common;
mod http_support;

use common::*;
use http_support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Requests the original answers with a 500 and mispdash answers properly, with the
/// `docs/compat.md` item that says what it answers instead.
const HTTP_FIXES: &[(&str, &str)] = &[
    (
        "logs/filter-quoted-cookie",
        "H1 live-log-filters: the filter is applied (rows of other categories dropped), no 500",
    ),
    (
        "_getOrgRank/no-org",
        "H2 missing-org: 400 with a JSON error",
    ),
    (
        "_getTrophies/no-org",
        "H2 missing-org: 400 with a JSON error",
    ),
    (
        "_getOrgOvertime/no-org",
        "H2 missing-org: 400 with a JSON error",
    ),
    (
        "_getAllOrgsTrophyRanking",
        "H3 all-trophy-rankings: every category's ranking, as an object",
    ),
];

/// Routes that read the gamification keys (`CONTRIB_*`). While the ingest does not write them
/// yet, their answers after a replay differ from the original's; once it does, this list stops
/// applying and the comparison is exact. Each listed route must differ while the keys are
/// missing (a stale entry fails the test).
const CONTRIB_ROUTES: &[&str] = &[
    "_getLastContributors",
    "_getTopContributor",
    "_getFameContributor",
    "_getFameQualContributor",
    "_getTop5Overtime",
    "_getCategPerContrib",
    "_getLatestAwards",
    "_getAllOrg",
    "_getOrgOvertime",
    "_getOrgRank",
    "_getContributionOrgStatus",
    "_getTrophies",
    "_getAllOrgsTrophyRanking",
    "_getTopOrglogin",
    "_getLoginVSCOntribution",
    "_getUserLoginsAndContribOvertime",
];

/// The request ids named by `oracle_compare.py` lines (`http <id>: ...`, `http <id>[0]...`).
fn differing_ids(diff: &str, ids: &[String]) -> BTreeSet<String> {
    diff.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("http ")?;
            ids.iter()
                .filter(|id| {
                    rest.strip_prefix(id.as_str())
                        .and_then(|t| t.chars().next())
                        .is_some_and(|c| matches!(c, ':' | '[' | '.' | '<'))
                })
                .max_by_key(|id| id.len())
                .cloned()
        })
        .collect()
}

fn ids_of(expected: &Value) -> Vec<String> {
    expected["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

/// Probes `base` with the request list of `expected` and returns the probe file.
fn probe(base: &str, expected: &Path, out: &Path) -> Value {
    let o = tool(
        "http_probe.py",
        &[
            "--base",
            base,
            "--requests-from",
            expected.to_str().expect("utf-8 path"),
            "-o",
            out.to_str().expect("utf-8 path"),
        ],
    );
    assert!(
        o.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    read_json(out)
}

fn response<'a>(probe: &'a Value, id: &str) -> &'a Value {
    probe["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no answer for {id}"))
}

/// What the fixes answer instead of the original's 500s, checked against the oracle's own
/// answers where there is one.
fn check_fixes(actual: &Value, expected: &Value) {
    for id in [
        "_getOrgRank/no-org",
        "_getTrophies/no-org",
        "_getOrgOvertime/no-org",
    ] {
        let r = response(actual, id);
        assert_eq!(r["status"], 400, "{id}: {r}");
        assert!(
            r["json"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("org")),
            "{id}: {r}"
        );
    }
    let filtered = response(actual, "logs/filter-quoted-cookie");
    assert_eq!(filtered["status"], 200);
    let rows = filtered["json"].as_array().expect("rows");
    let all = response(actual, "logs")["json"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["log"]["3"] == "Network activity")
        .count();
    assert!(
        !rows.is_empty() && rows.len() == all,
        "{} rows of {all}",
        rows.len()
    );
    assert!(rows.iter().all(|r| r["log"]["3"] == "Network activity"));
    let every = &response(actual, "_getAllOrgsTrophyRanking")["json"];
    let categs = every.as_object().expect("object of categories");
    assert_eq!(categs.len(), 16);
    for (categ, ranking) in categs {
        let one = &response(expected, &format!("_getAllOrgsTrophyRanking/{categ}"))["json"];
        assert_eq!(ranking, one, "ranking of {categ}");
    }
}

fn compare_with_fixes(
    expected_path: &Path,
    actual_path: &Path,
    allowed_routes: &[&str],
) -> (BTreeSet<String>, String) {
    let expected = read_json(expected_path);
    let (_, diff) = compare_max("http", expected_path, actual_path, 100_000);
    let found = differing_ids(&diff, &ids_of(&expected));
    let unexplained: Vec<&String> = found
        .iter()
        .filter(|id| !HTTP_FIXES.iter().any(|(f, _)| f == id))
        .filter(|id| !allowed_routes.contains(&id.split('/').next().unwrap_or("")))
        .collect();
    assert!(
        unexplained.is_empty(),
        "answers that differ from the original's: {unexplained:?}\n{}",
        diff.lines().take(60).collect::<Vec<_>>().join("\n")
    );
    let stale: Vec<&str> = HTTP_FIXES
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !found.contains(*id))
        .collect();
    assert!(
        stale.is_empty(),
        "named fixes that no longer differ: {stale:?}"
    );
    (found, diff)
}

/// Every route on the original's own keyspace (its Redis dump loaded as recorded), for both
/// corpora: exact but for the named fixes.
#[test]
fn answers_match_the_original_on_its_keyspace() {
    for seed in ["seed2", "seed1"] {
        let corpus = shared().join("corpus");
        let redis = Redis::start();
        load_dump(
            &redis,
            &read_json(&corpus.join(format!("{seed}.redis.json"))),
        );
        let server = start_server(redis.port, &ServerSetup::default(), &format!("http-{seed}"));
        let expected_path = corpus.join(format!("{seed}.http.json"));
        let actual_path = server.dir.join("actual.http.json");
        let actual = probe(&server.base("http"), &expected_path, &actual_path);
        compare_with_fixes(&expected_path, &actual_path, &[]);
        check_fixes(&actual, &read_json(&expected_path));
    }
}

fn server_port_of(config: &Path) -> u16 {
    let text = std::fs::read_to_string(config).expect("config");
    let server = text.split("[Server]").nth(1).expect("[Server] section");
    server
        .lines()
        .find_map(|l| l.trim().strip_prefix("port = "))
        .and_then(|p| p.trim().parse().ok())
        .expect("[Server] port")
}

/// The whole path: seed2 replayed through ZeroMQ into `mispdash run`, whose own server is then
/// asked every question.
#[test]
fn answers_after_replaying_seed2() {
    let corpus = shared().join("corpus");
    let r = replay(&corpus.join("seed2.jsonl"), "http-replay");
    let port = server_port_of(&r.dir.join("config.cfg"));
    let actual_path = r.dir.join("actual.http.json");
    let expected_path = corpus.join("seed2.http.json");
    let actual = probe(
        &format!("http://127.0.0.1:{port}"),
        &expected_path,
        &actual_path,
    );
    let mut c = r.redis.conn(2).expect("redis");
    let contrib_keys: Vec<String> = redis::cmd("KEYS")
        .arg("CONTRIB_*")
        .query(&mut c)
        .expect("keys");
    if contrib_keys.is_empty() {
        let (found, _) = compare_with_fixes(&expected_path, &actual_path, CONTRIB_ROUTES);
        let stale: Vec<&&str> = CONTRIB_ROUTES
            .iter()
            .filter(|route| !found.iter().any(|id| id.split('/').next() == Some(**route)))
            .collect();
        assert!(
            stale.is_empty(),
            "routes listed as reading CONTRIB_* that do not differ: {stale:?}"
        );
    } else {
        compare_with_fixes(&expected_path, &actual_path, &[]);
        check_fixes(&actual, &read_json(&expected_path));
    }
    assert!(r.redis.conn(0).is_ok());
}

/// `/_getCategPerContrib` has Redis sum each category's month (`ZUNION`); where Redis refuses
/// it (before 6.2, or a user not allowed it: here an ACL takes it from the default user) the
/// server sums the day keys itself, with the answer the original recorded either way.
#[test]
fn categ_per_contrib_answers_the_same_without_zunion() {
    let corpus = shared().join("corpus");
    let recorded = read_json(&corpus.join("seed2.http.json"));
    let entry = recorded["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .find(|r| r["id"] == "_getCategPerContrib/now")
        .expect("the recorded answer");
    let path = entry["path"].as_str().expect("path");
    let redis = seed2_redis();
    let setup = ServerSetup {
        args: vec!["--http-cache-ms".into(), "0".into()],
        ..ServerSetup::default()
    };
    let server = start_server(redis.port, &setup, "http-categ-zunion");
    let get = || -> Value {
        let r = client()
            .get(format!("{}{path}", server.base("http")))
            .header("Accept", "application/json")
            .send()
            .expect("answer");
        assert_eq!(r.status(), 200);
        serde_json::from_str(&r.text().expect("body")).expect("json")
    };
    let with_zunion = get();
    assert_eq!(with_zunion, entry["json"], "the answer with ZUNION");
    let mut c = redis.conn(0).expect("redis");
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-zunion")
        .query::<()>(&mut c)
        .expect("ACL");
    let refused: redis::RedisResult<redis::Value> =
        redis::cmd("ZUNION").arg(1).arg("x").query(&mut c);
    assert!(refused.is_err(), "ZUNION is still allowed");
    assert_eq!(get(), entry["json"], "the answer without ZUNION");
}
