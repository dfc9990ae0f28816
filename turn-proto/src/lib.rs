//! The sans-IO TURN core: fed datagrams, stream chunks and time; gives back what to send
//! where and when to call again.
//!
//! This crate never does I/O, and the compiler keeps it so: it depends on no async
//! runtime and no socket crate (CI checks its dependency tree), and its clippy
//! configuration forbids clock reads, OS randomness, locks, threads, files and sockets.
//! Time comes in as `now` arguments, randomness from a seed, shared counts through
//! [`quota::QuotaLedger`]. The `turn-server` crate is the driver around it.
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]

pub mod allocation;
pub mod auth;
pub mod bandwidth;
pub mod codec;
pub mod connection;
pub mod event;
pub mod framing;
pub mod hash;
pub mod names;
pub mod nonce;
pub mod policy;
pub mod proxy_header;
pub mod quota;
pub mod ratelimit;
pub mod server;
pub mod server_config;
pub mod shards;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transmit;

pub use event::{
    BindOutcome, BindRequest, ChannelRoute, Event, NoRelayPort, Relay, RelayBinding, RelayRequest,
    Relayed,
};
pub use names::{AllocId, ConnectionId, FiveTuple, SocketId, Transport};
pub use server::Server;
pub use server_config::{DefaultFamily, ServerConfig};
pub use shards::ShardContext;
pub use stats::Stats;
pub use transmit::PEER_HEADROOM;
pub use transmit::{Destination, Payload, Transmit};
