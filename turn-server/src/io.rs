//! Sockets, at the bottom of the driver: they know nothing of shards or of the core's
//! state. Batched UDP I/O, client listener sockets, TCP listeners, relay sockets, TLS.

pub(crate) mod batch;
pub mod relay;
pub mod tcp;
pub mod tls;
pub mod udp;
