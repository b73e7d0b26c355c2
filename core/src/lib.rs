//! mispdash core: MISP ZeroMQ messages in, the original misp-dashboard's Redis keyspace out.
//!
//! The path of a message is one-way (see `docs/architecture.md`): a [`feed`] subscriber pushes
//! each frame onto the Redis buffer list; the [`dispatch`] loop takes batches from it through
//! the reliable [`buffer`], parses each into a typed [`message`], lets the pure [`rules`] decide
//! what to write, and the [`store`] applies a whole batch and its acknowledgement atomically.

pub mod acl;
pub mod app;
pub mod backfill;
pub mod buffer;
pub mod clock;
pub mod config;
pub mod contrib;
pub mod dead_letter;
pub mod demo;
pub mod dispatch;
pub mod feed;
pub mod geoip;
pub mod keys;
pub mod lease;
pub mod managed_redis;
pub mod memory;
pub mod message;
pub mod ops;
pub mod pyjson;
pub mod redis_util;
pub mod refused;
pub mod rewind;
pub mod rules;
pub mod store;
pub mod web;

/// Log targets of libraries that write secrets at their debug or trace level (`cookie_store`
/// prints every cookie it stores, MISP's session cookie included). Whatever level an admin
/// asks for, these stay at `warn`: see [`log_filter`].
pub const SECRET_LOG_TARGETS: &[&str] = &["cookie_store"];

/// Log targets that write a line per item at `info` where one line says enough
/// (`memory_serve`: one per embedded file at start; the server logs their count). At `warn`
/// unless the spec names them.
pub const NOISY_LOG_TARGETS: &[&str] = &["memory_serve"];

/// The log filter for `spec` (`MISPDASH_LOG`, e.g. `debug`), with [`SECRET_LOG_TARGETS`]
/// capped at `warn`, and [`NOISY_LOG_TARGETS`] at `warn` unless the spec names them.
pub fn log_filter(spec: Option<&str>) -> tracing_subscriber::EnvFilter {
    let mut f = spec
        .and_then(|s| tracing_subscriber::EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    for target in NOISY_LOG_TARGETS {
        if spec.is_some_and(|s| s.contains(target)) {
            continue;
        }
        if let Ok(d) = format!("{target}=warn").parse() {
            f = f.add_directive(d);
        }
    }
    for target in SECRET_LOG_TARGETS {
        if let Ok(d) = format!("{target}=warn").parse() {
            f = f.add_directive(d);
        }
    }
    f
}
