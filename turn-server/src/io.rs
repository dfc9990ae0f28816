//! Sockets, at the bottom of the driver: they know nothing of shards or of the core's
//! state. Batched UDP I/O, client listener sockets, TCP listeners and the caps on their
//! connections, client streams that can move between shards, relay sockets, binding
//! sockets to an interface, TLS.

pub mod admission;
pub(crate) mod batch;
pub mod client_stream;
pub mod device;
pub mod relay;
pub mod relay_ports;
pub mod tcp;
pub mod tls;
pub mod udp;
