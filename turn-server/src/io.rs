//! The tokio driver around the sans-IO core: sockets, timers, signals.
//!
//! One shard per CPU (`relay-threads`): a thread with a current-thread runtime that owns
//! a [`turn_proto::Server`], its own SO_REUSEPORT socket of every UDP listener, and
//! every relay socket it bound; the relay path shares nothing between threads, so it
//! takes no lock. Buffers are allocated once per shard. Shard 0 also serves the TCP and
//! TLS clients. The main thread is the control thread: signals, metrics, drain.

mod batch;
pub mod driver;
pub mod relay;
mod shard;
mod shared_quotas;
pub mod stream;
mod tcp_relay;
pub mod tls;
pub mod udp;
mod worker;
