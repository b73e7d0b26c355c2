//! What every request handler shares: configuration, Redis handles, the stream hub, the
//! response cache, metrics and the authentication settings.

use super::db::Db;
use super::error::WebError;
use super::hub::Hub;
use super::metrics::Metrics;
use crate::clock::Clock;
use crate::config::{Config, Ranking};
use bytes::Bytes;
use std::sync::Arc;

/// The values of `config.cfg` the serving side needs, resolved once.
pub struct WebConfig {
    pub misp_web_url: String,
    /// Whether the configuration names `misp_web_url` (see `contrib::logo_path`).
    pub misp_web_url_set: bool,
    pub max_last_contributors: usize,
    pub clustering_threshold: f64,
    pub log_format: super::live::LogFormat,
    pub header_json: String,
    pub channel_live: String,
    pub channel_map: String,
    pub channel_contrib: String,
    pub channel_awards: String,
    pub list_name: String,
    pub geoip_path: std::path::PathBuf,
    pub trending_max_display: usize,
    /// `[mispdash]` protections of the server.
    pub guard: crate::config::HttpGuard,
    /// `[ACL] aggregate_min_distribution`, as a rank: what the statistics count.
    pub aggregate_min_rank: Option<u8>,
    /// What the pages need of the configuration (`/_mispdash/ui`), without the ranking.
    pub ui: serde_json::Value,
    /// `[mispdash] rewind_hours` and `rewind_max_bytes`: what the rewind stream keeps.
    pub rewind: crate::config::RewindConfig,
}

impl WebConfig {
    pub fn from_config(cfg: &Config) -> WebConfig {
        let log_format = super::live::LogFormat::new(
            &cfg.dashboard.fieldname_order,
            &cfg.dashboard.char_separator,
        );
        let header_json = crate::pyjson::to_string(&serde_json::Value::Array(
            log_format
                .header()
                .into_iter()
                .map(serde_json::Value::String)
                .collect(),
        ));
        WebConfig {
            misp_web_url: cfg.redis.misp_web_url.clone(),
            misp_web_url_set: cfg.redis.misp_web_url_set,
            max_last_contributors: cfg.contrib.max_number_of_last_contributor as usize,
            clustering_threshold: cfg.geo.cluster_threshold(),
            log_format,
            header_json,
            channel_live: cfg.redis.channel_live.clone(),
            channel_map: cfg.redis.channel_map.clone(),
            channel_contrib: cfg.redis.channel_last_contributor.clone(),
            channel_awards: cfg.redis.channel_last_awards.clone(),
            list_name: cfg.redis.list_name.clone(),
            geoip_path: cfg.redis.path_maxmind_db.clone(),
            trending_max_display: 15,
            guard: cfg.http.clone(),
            aggregate_min_rank: cfg.acl.aggregate_min_rank,
            rewind: cfg.rewind,
            ui: serde_json::json!({
                "dashboard": {
                    "rotation_wait_time": cfg.dashboard.rotation_wait_time,
                    "max_img_rotation": cfg.dashboard.max_img_rotation,
                    "hours_spanned": cfg.dashboard.hours_spanned,
                    "graph_log_refresh_rate": cfg.dashboard.graph_log_refresh_rate,
                    "zoomlevel": cfg.dashboard.zoomlevel,
                    "item_to_plot": cfg.dashboard.item_to_plot,
                    "char_separator": cfg.dashboard.char_separator,
                },
                "geo": {
                    "update_frequency_minutes": cfg.geo.update_frequency,
                    "zoomlevel": cfg.geo.zoomlevel,
                },
                "contrib": {
                    "min_between_reload": cfg.contrib.min_between_reload,
                    "additional_help_text": cfg.contrib.additional_help_text,
                },
                "rewind": {"hours": cfg.rewind.hours},
                "misp_web_url": if cfg.redis.misp_web_url_set { Some(cfg.redis.misp_web_url.as_str()) } else { None },
            }),
        }
    }
}

/// GeoIP database facts for `/status`, read once at start.
#[derive(Debug, Clone)]
pub struct GeoInfo {
    pub path: String,
    pub loaded: bool,
    pub database_type: Option<String>,
    pub build_epoch: Option<u64>,
    pub error: Option<String>,
}

pub struct AppState {
    pub clock: Clock,
    pub data: Db,
    pub list: Db,
    pub cfg: WebConfig,
    pub ranking: Ranking,
    pub hub: Hub,
    /// The live caches as `/_logs` and `/_maps` give them, formatted once per change.
    pub live_memos: super::live_cache::LiveMemos,
    pub cache: moka::future::Cache<String, Bytes>,
    pub metrics: Metrics,
    pub auth: Option<Arc<super::auth::Auth>>,
    pub tls: bool,
    pub geoip: GeoInfo,
    pub rates: super::metrics::FeedRates,
    pub version: &'static str,
    /// Whether JSON answers are reused for the cache lifetime.
    pub cache_enabled: bool,
    /// Open connections, and those refused or timed out.
    pub admission: Arc<super::conn::Admission>,
    /// Live streams open per client (session or address).
    pub streams: super::hub::StreamCounts,
    /// Streams refused for the per-client cap, and when each client was last reported.
    pub refusals: super::refusals::Refusals,
    /// The embedded pages (core/web/dist), served by memory-serve.
    pub ui: axum::Router,
    /// MISP's rules, when the live views follow them (`[ACL] enabled` with login on).
    pub acl: Option<crate::acl::Policy>,
}

impl AppState {
    /// Redis failed to answer (gone, restarted, or no longer the master after a failover):
    /// both shared connections are dropped, so the next request of any route (`/status` reads
    /// the list database) connects anew, asking the Sentinels again where the master is.
    pub fn redis_lost(&self) {
        self.data.reset();
        self.list.reset();
    }

    /// What the live caches' answers are read from and formatted with.
    pub fn live_sources(&self) -> super::live_cache::Sources<'_> {
        super::live_cache::Sources {
            data: &self.data,
            log_format: &self.cfg.log_format,
            acl: self.acl.as_ref(),
            known: &self.hub.live.known_events,
        }
    }

    /// `e`, after [`AppState::redis_lost`] when it says Redis is unavailable: what every
    /// handler's Redis failure goes through.
    pub fn noting(&self, e: WebError) -> WebError {
        if let WebError::Unavailable(_) = e {
            self.redis_lost();
        }
        e
    }
}

pub type Shared = Arc<AppState>;
