//! The tokio driver around the sans-IO core: sockets, timers, signals.
//!
//! One shard is one thread with a current-thread runtime that owns a [`crate::proto::Server`],
//! its client listeners and every relay socket it bound; nothing is shared between
//! threads, so the relay path takes no lock. Buffers are allocated once per shard.

pub mod driver;
pub mod relay;
mod shard;
pub mod stream;
mod tcp_relay;
pub mod tls;
pub mod udp;
