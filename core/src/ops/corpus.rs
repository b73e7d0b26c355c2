//! JSON Lines corpora of MISP ZeroMQ messages: `mispdash replay` feeds one into the buffer,
//! `mispdash record` writes a live feed to one. For demos, exercises and bug reports: a
//! recording of the feed that misbehaved replays into a test dashboard exactly.
//!
//! The format is the shared `gen_corpus.py`/`zmq_replay.py` one, one frame per line:
//!
//! * `{"topic": T, "payload": P}`: the frame is `T`, a space, and `P` in compact JSON with
//!   non-ASCII characters as they are (Python's `json.dumps(P, ensure_ascii=False,
//!   separators=(",", ":"))`; numbers keep their spelling from the file);
//! * `{"topic": T, "raw": S}`: the frame is `T`, a space, and `S` verbatim;
//! * `{"frame_b64": B}`: the frame is the bytes of base64 `B`.
//!
//! Other fields are ignored by those tools; mispdash adds and reads `"zmq_name"`, the feed a
//! recorded frame came from. `record` writes `payload` only when it reproduces the frame byte
//! for byte (MISP's PHP JSON escapes `/`, for one), `raw` otherwise, `frame_b64` for frames that
//! are not text: what is replayed is exactly what was received.

use super::{connect, redis_err, OpsError};
use crate::config::Config;
use crate::feed::{envelope, FeedSpec};
use crate::keys;
use crate::pyjson;
use crate::redis_util::RedisTarget;
use base64::Engine as _;
use indicatif::ProgressBar;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Envelopes per LPUSH when replaying at full speed.
const BATCH: usize = 500;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// One corpus line → the frame it stands for, and the feed name it carries (if any).
pub fn line_to_frame(line: &str) -> Result<(Vec<u8>, Option<String>), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let zmq_name = obj
        .get("zmq_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(b) = obj.get("frame_b64") {
        let b = b.as_str().ok_or("\"frame_b64\" is not a string")?;
        let bytes = b64()
            .decode(b)
            .map_err(|e| format!("\"frame_b64\" is not base64: {e}"))?;
        return Ok((bytes, zmq_name));
    }
    let topic = obj
        .get("topic")
        .and_then(Value::as_str)
        .ok_or("no \"topic\" (nor \"frame_b64\")")?;
    let body = if let Some(raw) = obj.get("raw") {
        raw.as_str().ok_or("\"raw\" is not a string")?.to_string()
    } else if let Some(p) = obj.get("payload") {
        serde_json::to_string(p).map_err(|e| format!("payload: {e}"))?
    } else {
        return Err("no \"payload\", \"raw\" or \"frame_b64\"".into());
    };
    Ok((format!("{topic} {body}").into_bytes(), zmq_name))
}

/// A received frame → the corpus line that replays it exactly.
pub fn frame_to_line(frame: &[u8], zmq_name: &str) -> String {
    let mut fields: Vec<(&str, Value)> = Vec::new();
    let text = std::str::from_utf8(frame).ok();
    match text.and_then(|t| t.split_once(' ')) {
        Some((topic, body)) => {
            fields.push(("topic", Value::from(topic)));
            let payload = serde_json::from_str::<Value>(body)
                .ok()
                .filter(|p| serde_json::to_string(p).is_ok_and(|s| s == body));
            match payload {
                Some(p) => fields.push(("payload", p)),
                None => fields.push(("raw", Value::from(body))),
            }
        }
        None => fields.push(("frame_b64", Value::from(b64().encode(frame)))),
    }
    fields.push(("zmq_name", Value::from(zmq_name)));
    let obj: serde_json::Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Value::Object(obj).to_string()
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Envelopes pushed onto the buffer.
    pub pushed: u64,
    /// Frames that are not UTF-8, filed in the dead-letter list as the subscriber files them.
    pub dead_lettered: u64,
}

/// Lines that hold a message (blank lines are skipped, as the shared tools do).
pub fn count_messages(path: &Path) -> Result<u64, OpsError> {
    let f = std::fs::File::open(path).map_err(|source| OpsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut n = 0;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|source| OpsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !line.trim().is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

/// Pushes every message of `path` onto the configured buffer, in file order (the dispatcher
/// takes them in that order), as feed `name` unless a line names its own. `rate` > 0 paces the
/// pushes to that many messages per second.
pub fn replay(
    cfg: &Config,
    path: &Path,
    name: &str,
    rate: f64,
    progress: &ProgressBar,
) -> Result<ReplaySummary, OpsError> {
    let total = count_messages(path)?;
    progress.set_length(total);
    let io = |source| OpsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let target = RedisTarget::from_config(&cfg.redis);
    let db = cfg.redis.list_db;
    let err = redis_err(&target, db);
    let mut conn = connect(&target, db)?;
    let list = &cfg.redis.list_name;
    let dead = keys::dead_letter_list(list);
    let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
    let batch = if interval.is_some() { 1 } else { BATCH };
    let start = Instant::now();
    let mut summary = ReplaySummary::default();
    let mut pending: Vec<String> = Vec::new();
    let flush = |pending: &mut Vec<String>,
                 conn: &mut redis::Connection,
                 summary: &mut ReplaySummary|
     -> Result<(), OpsError> {
        if pending.is_empty() {
            return Ok(());
        }
        redis::cmd("LPUSH")
            .arg(list)
            .arg(pending.as_slice())
            .query::<()>(conn)
            .map_err(&err)?;
        summary.pushed += pending.len() as u64;
        progress.inc(pending.len() as u64);
        pending.clear();
        Ok(())
    };
    let mut sent = 0u64;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let (frame, line_name) = line_to_frame(&line).map_err(|reason| OpsError::Corpus {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        })?;
        let feed = line_name.as_deref().unwrap_or(name);
        if let Some(iv) = interval {
            let due = start + iv.mul_f64(sent as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        sent += 1;
        match String::from_utf8(frame) {
            Ok(text) => pending.push(envelope(feed, &text)),
            Err(e) => {
                // Keep the order: what came before goes first.
                flush(&mut pending, &mut conn, &mut summary)?;
                let record = pyjson::to_string(&pyjson::object([
                    ("reason", Value::from("frame is not UTF-8")),
                    ("zmq_name", Value::from(feed)),
                    ("frame_b64", Value::from(b64().encode(e.as_bytes()))),
                    ("epoch", pyjson::float(now_epoch())),
                ]));
                redis::cmd("LPUSH")
                    .arg(&dead)
                    .arg(record)
                    .query::<()>(&mut conn)
                    .map_err(&err)?;
                summary.dead_lettered += 1;
                progress.inc(1);
            }
        }
        if pending.len() >= batch {
            flush(&mut pending, &mut conn, &mut summary)?;
        }
    }
    flush(&mut pending, &mut conn, &mut summary)?;
    progress.finish_with_message("done");
    Ok(summary)
}

/// What `record` listens to and for how long.
#[derive(Debug, Clone, Default)]
pub struct RecordOptions {
    /// Output file; `None` for standard output.
    pub output: Option<PathBuf>,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Only these instances (by name); all configured ones when empty.
    pub feeds: Vec<String>,
}

/// Subscribes to the configured MISP feeds (with their PLAIN credentials) and writes every
/// frame as a corpus line until `stop`, the count or the duration. Returns the lines written.
pub fn record(
    cfg: &Config,
    opts: &RecordOptions,
    stop: &AtomicBool,
    progress: &ProgressBar,
) -> Result<u64, OpsError> {
    let specs: Vec<FeedSpec> = cfg
        .redis
        .misp_instances
        .iter()
        .filter(|i| opts.feeds.is_empty() || opts.feeds.contains(&i.name))
        .map(FeedSpec::from)
        .collect();
    if specs.is_empty() {
        return Err(OpsError::Invalid(if opts.feeds.is_empty() {
            "no MISP instance is configured ([RedisGlobal] misp_instances)".into()
        } else {
            format!("no configured MISP instance is named {:?}", opts.feeds)
        }));
    }
    let zerr = |spec: &FeedSpec, e: zmq::Error| OpsError::Zmq {
        endpoint: spec.endpoint.clone(),
        reason: e.to_string(),
    };
    let ctx = zmq::Context::new();
    let mut sockets = Vec::new();
    for spec in &specs {
        let s = ctx.socket(zmq::SUB).map_err(|e| zerr(spec, e))?;
        s.set_linger(0).map_err(|e| zerr(spec, e))?;
        if let Some(user) = &spec.username {
            s.set_plain_username(Some(user))
                .map_err(|e| zerr(spec, e))?;
            s.set_plain_password(spec.password.as_deref())
                .map_err(|e| zerr(spec, e))?;
        }
        s.connect(&spec.endpoint).map_err(|e| zerr(spec, e))?;
        s.set_subscribe(b"").map_err(|e| zerr(spec, e))?;
        sockets.push(s);
    }
    let out_path = opts
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("<stdout>"));
    let io = |source| OpsError::Io {
        path: out_path.clone(),
        source,
    };
    let mut out: Box<dyn Write> = match &opts.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(io)?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let start = Instant::now();
    let mut written = 0u64;
    while !stop.load(Ordering::Relaxed)
        && opts.count.is_none_or(|c| written < c)
        && opts.duration.is_none_or(|d| start.elapsed() < d)
    {
        let mut items: Vec<zmq::PollItem> = sockets
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        zmq::poll(&mut items, 200).map_err(|e| zerr(&specs[0], e))?;
        let ready: Vec<bool> = items.iter().map(|i| i.is_readable()).collect();
        for (i, is_ready) in ready.into_iter().enumerate() {
            if !is_ready {
                continue;
            }
            while let Ok(frame) = sockets[i].recv_bytes(zmq::DONTWAIT) {
                writeln!(out, "{}", frame_to_line(&frame, &specs[i].name)).map_err(io)?;
                written += 1;
                progress.inc(1);
                if opts.count.is_some_and(|c| written >= c) {
                    break;
                }
            }
        }
        out.flush().map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_lines_become_compact_frames() {
        let (frame, name) = line_to_frame(
            r#"{"topic": "misp_json_self", "payload": {"status": "ok", "uptime": 1.50, "n": "é/"}}"#,
        )
        .expect("valid");
        assert_eq!(
            String::from_utf8(frame).expect("utf-8"),
            r#"misp_json_self {"status":"ok","uptime":1.50,"n":"é/"}"#
        );
        assert_eq!(name, None);
        let (frame, name) =
            line_to_frame(r#"{"topic": "t", "raw": "{not json", "zmq_name": "m2"}"#).expect("raw");
        assert_eq!(frame, b"t {not json");
        assert_eq!(name.as_deref(), Some("m2"));
        let (frame, _) = line_to_frame(r#"{"frame_b64": "/w=="}"#).expect("b64");
        assert_eq!(frame, vec![0xff]);
        assert!(line_to_frame(r#"{"edge": "x"}"#).is_err());
    }

    #[test]
    fn recorded_lines_replay_the_same_bytes() {
        for frame in [
            &br#"misp_json_self {"status":"ok","uptime":5}"#[..],
            br#"misp_json_event {"Event":{"info":"a\/b \u00e9"}}"#,
            b"no-space-frame",
            b"\xff\xfe binary",
            "misp_json_audit {\"x\":\"\u{e9}\"}".as_bytes(),
        ] {
            let line = frame_to_line(frame, "misp1");
            let (back, name) = line_to_frame(&line).expect("parse");
            assert_eq!(back, frame, "{line}");
            assert_eq!(name.as_deref(), Some("misp1"));
        }
    }
}
