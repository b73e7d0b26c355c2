//! The record of live streams refused for `[mispdash] max_streams_per_client`, as every web
//! node writes it in Redis (`keys::STREAMS_REFUSED`, see `web::refusals`) and as `/status` and
//! `mispdash selftest` read it, with what an admin should do about each client.

use serde_json::{json, Value};
use std::collections::HashMap;

/// What to do about it, for the log, `/status` and `selftest`.
pub fn hint(forwarded: bool, max: usize) -> String {
    if forwarded {
        format!(
            "the requests come through a proxy that is not in [mispdash] trusted_proxies, so \
             every browser behind it counts as one client with at most {max} live streams \
             (a page holds one): add the proxy's address to trusted_proxies"
        )
    } else {
        format!(
            "one client holds at most {max} live streams (a page holds one): close pages it \
             does not need, or raise [mispdash] max_streams_per_client"
        )
    }
}

/// The record as read from Redis, most recent first; entries that are not ours are skipped.
pub fn parse_record(
    entries: &HashMap<String, String>,
    counts: &HashMap<String, u64>,
) -> Vec<Value> {
    let mut out: Vec<Value> = entries
        .iter()
        .filter_map(|(client, text)| {
            let v: Value = serde_json::from_str(text).ok()?;
            let last = v.get("last")?.as_f64()?;
            let forwarded = v.get("forwarded").and_then(Value::as_bool).unwrap_or(false);
            let max = v.get("max").and_then(Value::as_u64).unwrap_or(0) as usize;
            Some(json!({
                "client": client,
                "last": last,
                "refused": counts.get(client).copied().unwrap_or(0),
                "forwarded": forwarded,
                "max": max,
                "hint": hint(forwarded, max),
            }))
        })
        .collect();
    out.sort_by(|a, b| {
        let t = |v: &Value| v["last"].as_f64().unwrap_or(0.0);
        t(b).total_cmp(&t(a))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_reads_back_most_recent_first_with_its_hint() {
        let entries = HashMap::from([
            (
                "address 10.0.0.1".to_string(),
                r#"{"last": 100.5, "forwarded": true, "max": 32}"#.to_string(),
            ),
            (
                "user alice".to_string(),
                r#"{"last": 200, "forwarded": false, "max": 32}"#.to_string(),
            ),
            ("junk".to_string(), "not json".to_string()),
        ]);
        let counts = HashMap::from([("address 10.0.0.1".to_string(), 7)]);
        let got = parse_record(&entries, &counts);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["client"], "user alice");
        assert_eq!(got[0]["refused"], 0);
        assert_eq!(got[1]["refused"], 7);
        assert!(got[1]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("trusted_proxies")));
        assert!(got[0]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("max_streams_per_client")));
    }
}
