//! A coturn-compatible TURN/STUN relay.
//!
//! Layout:
//! - [`proto`]: the sans-IO TURN/STUN core (codec, allocations, auth, policy).
//! - `config`: coturn's `turnserver.conf` format and command line, into one typed [`config::Config`].
pub mod config;
pub mod proto;
