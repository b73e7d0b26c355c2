//! Gaps in a live feed, filled through MISP's REST API.
//!
//! ZeroMQ drops what MISP publishes while no subscriber is connected, and MISP sends what it
//! queued while its publisher was down within a second or two of the publisher's restart,
//! often before a subscriber is back. So when a feed reconnects after a disconnection, the
//! window it was away (with a margin each side) is read back with [`crate::backfill`]: what
//! arrived live is in the feed's backfill record (the dispatcher writes it for every publish
//! and sighting it applies) and is skipped; the rest is pushed as live messages counted at
//! the time they happened. Each gap and what became of it is kept in `MISPDASH_GAPS:<feed>`
//! for `/status`.

use crate::backfill::{self, Source};
use crate::config::RedisConfig;
use crate::keys;
use crate::redis_util::RedisTarget;
use serde_json::json;
use std::time::{Duration, Instant};

/// Gaps kept per feed for `/status` (the oldest are dropped).
const GAPS_KEPT: usize = 20;

/// What a feed needs to fill its gaps.
#[derive(Debug, Clone)]
pub struct GapFill {
    pub redis: RedisConfig,
    pub source: Source,
    /// How long to wait after reconnecting before reading MISP: what MISP queued arrives
    /// live first, and is applied (and recorded) before the gap is read.
    pub settle: Duration,
    /// Seconds added before and after the window the feed was away: clocks and MISP's
    /// queue are not exact, and the record makes a wider window cost nothing twice.
    pub margin_secs: i64,
}

impl GapFill {
    /// The gap fill of a configured feed, when it has a URL and an API key.
    pub fn for_feed(
        cfg: &crate::config::Config,
        feed: &str,
        env_key: Option<&str>,
    ) -> Option<GapFill> {
        let source = backfill::sources(cfg, Some(feed), env_key)
            .ok()?
            .into_iter()
            .next()?;
        Some(GapFill {
            redis: cfg.redis.clone(),
            source,
            settle: Duration::from_secs(5),
            margin_secs: 60,
        })
    }

    /// Fills the gap from `from` to `to` (epochs) on a thread of its own, so the feed keeps
    /// receiving meanwhile.
    pub fn spawn(&self, from: f64, to: f64) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("gap-fill {}", self.source.name))
            .spawn(move || me.fill(from, to));
        if let Err(e) = spawned {
            tracing::error!(
                "feed {:?}: cannot start filling the gap ({e}); run `mispdash backfill` for it",
                self.source.name
            );
        }
    }

    fn fill(&self, from: f64, to: f64) {
        let name = &self.source.name;
        let id = format!("{}", from.floor() as i64);
        let mut gap = json!({"from": from.floor() as i64, "to": to.ceil() as i64,
            "state": "filling"});
        self.record(&id, &gap);
        tracing::info!(
            "feed {name:?}: was away for {:.0} s; reading that window back from MISP",
            to - from
        );
        std::thread::sleep(self.settle);
        self.wait_for_buffer();
        let opts = backfill::Options {
            since: from.floor() as i64 - self.margin_secs,
            until: Some(to.ceil() as i64 + self.margin_secs),
            page_size: 100,
            timeout: Duration::from_secs(60),
            dry_run: false,
            sightings: true,
            gap_fill: true,
        };
        match backfill::run(
            &self.redis,
            &self.source,
            &opts,
            &indicatif::ProgressBar::hidden(),
        ) {
            Ok(r) => {
                tracing::info!(
                    "feed {name:?}: gap filled: {} event(s) and {} sighting(s) it had missed",
                    r.events_added,
                    r.sightings_added
                );
                gap["state"] = "filled".into();
                gap["events"] = r.events_added.into();
                gap["sightings"] = r.sightings_added.into();
            }
            Err(e) => {
                tracing::warn!(
                    "feed {name:?}: the gap could not be filled: {e}; `mispdash backfill \
                     --since` with its start fills it later"
                );
                gap["state"] = "open".into();
                gap["error"] = e.to_string().into();
            }
        }
        self.record(&id, &gap);
    }

    /// Waits (at most a minute) until the buffer is empty: what arrived live before the
    /// window is read is then applied and in the record.
    fn wait_for_buffer(&self) {
        let target = RedisTarget::from_config(&self.redis);
        let Ok(mut c) = target.connect(self.redis.list_db) else {
            return;
        };
        let processing = keys::processing_list(&self.redis.list_name);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let lens: redis::RedisResult<(usize, usize)> = redis::pipe()
                .cmd("LLEN")
                .arg(&self.redis.list_name)
                .cmd("LLEN")
                .arg(&processing)
                .query(&mut c);
            match lens {
                Ok((0, 0)) | Err(_) => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Writes a gap's state (kept in the list database, `GAPS_KEPT` per feed).
    fn record(&self, id: &str, gap: &serde_json::Value) {
        let target = RedisTarget::from_config(&self.redis);
        let key = keys::feed_gaps(&self.source.name);
        let written = target.connect(self.redis.list_db).and_then(|mut c| {
            redis::pipe()
                .cmd("HSET")
                .arg(&key)
                .arg(id)
                .arg(gap.to_string())
                .query::<()>(&mut c)?;
            let mut ids: Vec<i64> = redis::cmd("HKEYS")
                .arg(&key)
                .query::<Vec<String>>(&mut c)?
                .iter()
                .filter_map(|k| k.parse().ok())
                .collect();
            ids.sort_unstable();
            if ids.len() > GAPS_KEPT {
                let old: Vec<i64> = ids[..ids.len() - GAPS_KEPT].to_vec();
                redis::cmd("HDEL").arg(&key).arg(old).query::<()>(&mut c)?;
            }
            Ok(())
        });
        if let Err(e) = written {
            tracing::warn!(
                "feed {:?}: cannot record the gap in Redis: {e}",
                self.source.name
            );
        }
    }
}
