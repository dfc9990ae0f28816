//! A coturn-compatible TURN/STUN relay.
//!
//! Layout:
//! - `config`: coturn's `turnserver.conf` format and command line, into one typed [`config::Config`].
