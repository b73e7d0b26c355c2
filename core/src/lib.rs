//! mispdash core: MISP ZeroMQ messages in, the original misp-dashboard's Redis keyspace out.
//!
//! The path of a message is one-way (see `docs/architecture.md`): a [`feed`] subscriber pushes
//! each frame onto the Redis buffer list; the [`dispatch`] loop takes batches from it through
//! the reliable [`buffer`], parses each into a typed [`message`], lets the pure [`rules`] decide
//! what to write, and the [`store`] applies a whole batch and its acknowledgement atomically.

pub mod app;
pub mod buffer;
pub mod clock;
pub mod config;
pub mod contrib;
pub mod demo;
pub mod dispatch;
pub mod feed;
pub mod geoip;
pub mod keys;
pub mod lease;
pub mod managed_redis;
pub mod message;
pub mod ops;
pub mod pyjson;
pub mod redis_util;
pub mod rules;
pub mod store;
pub mod web;
