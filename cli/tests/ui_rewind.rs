//! Rewinding the live page in a real browser (headless Debian Chromium through
//! `core/web/e2e/browse.mjs`): messages go through the real dispatcher at two pinned instants;
//! the page, its server's clock pinned after both, is moved back with the time slider and must
//! show in its log exactly the rows of that moment (newest first) and on its map that moment's
//! point; played forward at 60x, the second moment's rows arrive; "Back to live" shows the live
//! log again. Screenshots of the rewound page are left in the folder the test prints.

mod acl_messages;
mod browser_support;
mod common;
mod http_support;
mod rewind_support;

use browser_support::*;
use common::*;
use http_support::*;
use rewind_support::*;

#[test]
fn the_slider_shows_the_log_and_the_map_as_they_were() {
    let redis = Redis::start();
    let server = start_server(redis.port, &ServerSetup::default(), "ui-rewind");
    // The server's clock (the page's "now") is pinned at the oracle's instant: the first moment
    // two hours before it, the second one hour before.
    let now: u64 = ORACLE_NOW.parse().expect("epoch");
    let (t1, t2) = (now - 7200, now - 3600);
    let first = ["+32 2 555 04 01", "+32 2 555 04 02", "+32 2 555 04 03"];
    let second = ["+32 2 555 04 04", "+32 2 555 04 05"];
    let frames = |values: &[&str], from: u32| -> Vec<String> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| frame(from + i as u32, v))
            .collect()
    };
    dispatch_at(&redis, &server.dir, t1, &frames(&first, 1), 6);
    dispatch_at(&redis, &server.dir, t2, &frames(&second, 10), 10);
    let newest_first = |values: &[&str]| -> String {
        let mut v: Vec<&str> = values.to_vec();
        v.reverse();
        v.join("|")
    };
    let at_t1 = newest_first(&first);
    let at_t2 = newest_first(&[first.as_slice(), second.as_slice()].concat());
    let out = server.dir.join("screenshots");
    let steps = [
        // Live: every row, from the live cache.
        format!("rows:#log > tbody:first-of-type > tr=>{at_t2}"),
        "wait:#rewind-when=>Live".to_string(),
        // Dragged back to ten seconds after the first moment.
        format!("set:#rewind-at=>{}", t1 + 10),
        format!("rows:#log-rewound > tr=>{at_t1}"),
        "hidden:#log > tbody:first-of-type".into(),
        // The moment in the server's zone (today's: without its day), and how long ago.
        "wait:#rewind-when=>10:00:10 UTC · 1 h 59 min ago".into(),
        "wait:#log-title=>Log as it was".into(),
        "wait:#count=>3 row(s) as at 2026-11-20 10:00:10".into(),
        format!("wait:#map-now=>Other: {} (Belgium)", first[2]),
        "shot:rewound".into(),
        // Before the oldest moment kept: the slider stops at it (the server says which).
        format!("set:#rewind-at=>{}", t1 - 3600),
        "wait:#rewind-when=>10:00:00 UTC · 2 h 00 min ago".into(),
        format!("rows:#log-rewound > tr=>{at_t1}"),
        // Just before the second moment, then played forward at 60x: its rows arrive.
        "set:#rewind-speed=>60".into(),
        format!("set:#rewind-at=>{}", t2 - 60),
        format!("rows:#log-rewound > tr=>{at_t1}"),
        "click:#rewind-play".into(),
        "wait:#rewind-when=>· 60×".into(),
        format!("rows:#log-rewound > tr=>{at_t2}"),
        format!("wait:#map-now=>Other: {} (Belgium)", second[1]),
        "shot:played".into(),
        // Back to live.
        "click:#rewind-live".into(),
        "wait:#rewind-when=>Live".into(),
        "hidden:#log-rewound".into(),
        format!("rows:#log > tbody:first-of-type > tr=>{at_t2}"),
        "wait:#log-title=>Live log".into(),
    ];
    let mut args: Vec<String> = vec![
        "--page".into(),
        "/".into(),
        "--axe".into(),
        "--themes".into(),
        "dark,light".into(),
    ];
    for s in &steps {
        args.extend(["--step".into(), s.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = browse(&server.base("http"), &out, &args);
    assert_eq!(report["pages"].as_array().map(Vec::len), Some(2));
    eprintln!("screenshots in {}", out.display());
}

/// seed2 through the real dispatcher in two halves at two pinned instants, the page's clock
/// pinned after both: moved back between them, the log shows the 300 rows of that moment (the
/// newest the original published for the first half), newest first.
#[test]
fn seed2_rewound_in_the_browser_shows_the_rows_of_that_moment() {
    let redis = Redis::start();
    let server = start_server(redis.port, &ServerSetup::default(), "ui-rewind-seed2");
    let now: u64 = ORACLE_NOW.parse().expect("epoch");
    let (t1, t2) = (now - 7200, now - 3600);
    let halves = seed2_halves();
    drain_at(&redis, &server.dir, t1, &halves.first);
    drain_at(&redis, &server.dir, t2, &halves.second);
    // Each of the first ten rows by the start of its value (a long value is cut in the middle,
    // its start kept), or its event's id when it has no value; "|" separates the steps' texts.
    let needles: Vec<String> = shown_rows(&halves.first_rows, 10)
        .iter()
        .map(|r| {
            let cell = |i: &str| r[i].as_str().unwrap_or("").to_string();
            let value = cell("5");
            let start: String = value
                .split("||")
                .next()
                .unwrap_or("")
                .chars()
                .take_while(|c| *c != '|')
                .take(6)
                .collect();
            if start.trim().is_empty() {
                cell("1")
            } else {
                start
            }
        })
        .collect();
    let steps = [
        "wait:#rewind-when=>Live".to_string(),
        format!("set:#rewind-at=>{}", t1 + 10),
        "wait:#count=>300 row(s) as at 2026-11-20 10:00:10".into(),
        format!(
            "rows:#log-rewound > tr:nth-child(-n+10)=>{}",
            needles.join("|")
        ),
        "shot:seed2-rewound".into(),
    ];
    let mut args: Vec<String> = vec!["--page".into(), "/".into()];
    for s in &steps {
        args.extend(["--step".into(), s.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = server.dir.join("screenshots");
    browse(&server.base("http"), &out, &args);
    eprintln!("screenshots in {}", out.display());
}
