//! A coturn-compatible TURN/STUN relay.
//!
//! The sans-IO TURN/STUN core (codec, allocations, auth, policy) is its own crate,
//! [`turn_proto`], which cannot do I/O; this crate is everything around it.
//!
//! Layout:
//! - [`config`]: coturn's `turnserver.conf` format and command line, into one typed
//!   [`config::Config`].
//! - [`startup`]: from a `Config` to the core's settings, logging and the embedded default.
//! - [`io`]: the tokio driver (sockets, timers, signals) around the core.
//! - [`healthcheck`]: the `turn-server healthcheck` probe for containers.
//! - [`metrics`]: the Prometheus exporter (`prometheus` options).
pub mod config;
pub mod healthcheck;
pub mod io;
pub mod metrics;
pub mod startup;
