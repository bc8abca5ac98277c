//! ledger-worker keeps one [`Source`](ledger_pipeline::Source) flowing into
//! its sinks for months: typed configuration from a TOML file, environment
//! and flags ([`config`]), the run loop that retries and rebuilds after
//! faults, graceful shutdown on SIGTERM/SIGINT, and the health and
//! Prometheus endpoints ([`http`], [`metrics`]).

pub mod config;
pub mod http;
pub mod metrics;
