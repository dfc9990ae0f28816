//! The sans-IO TURN core: fed datagrams, stream chunks and time; gives back what to send
//! where and when to call again. No sockets, no clock reads, no tokio.

pub mod allocation;
pub mod auth;
pub mod bandwidth;
pub mod codec;
pub mod connection;
pub mod framing;
pub mod nonce;
pub mod policy;
pub mod proxy_header;
pub mod quota;
pub mod ratelimit;
pub mod server;
pub mod server_config;
pub mod shards;
pub mod transmit;

pub use allocation::AllocId;
pub use server::{NoRelayPort, RelayBinding, RelayPorts, RelayRequest, Server, Stats};
pub use server_config::ServerConfig;
pub use shards::ShardContext;
pub use transmit::{Destination, FiveTuple, Payload, Transmit, Transport};
