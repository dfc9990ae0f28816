//! A coturn-compatible TURN/STUN relay.
//!
//! The sans-IO TURN/STUN core (codec, allocations, auth, policy) is its own crate,
//! [`turn_proto`], which cannot do I/O; this crate is everything around it, in layers
//! that each use only those listed before them:
//!
//! - [`config`]: coturn's `turnserver.conf` format and command line, into one typed
//!   [`config::Config`].
//! - [`startup`]: from a `Config` to the core's settings, logging and the embedded default.
//! - [`clock`]: the wall-clock reading handed to the core.
//! - [`io`]: sockets (batched UDP, listeners, relay sockets, TLS), knowing nothing of
//!   shards.
//! - [`metrics`]: the Prometheus exporter (`prometheus` options) and its HTTP listener.
//! - `shard`: one thread per CPU that alone owns a core and its sockets.
//! - [`control`]: the control thread on top: starts the shards, handles signals
//!   (reload, drain, shutdown) and metrics scrapes.
//! - [`healthcheck`]: the `turn-server healthcheck` probe for containers.
pub mod clock;
pub mod config;
pub mod control;
pub mod healthcheck;
pub mod io;
pub mod metrics;
mod shard;
pub mod startup;
