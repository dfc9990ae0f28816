//! What the control thread and the other shards send a shard, over its bounded queue.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::metrics::report::{ReportOptions, Snapshot};
use turn_proto::server::Reconfigured;
use turn_proto::{FiveTuple, ServerConfig};

/// Commands a shard's queue carries.
pub(crate) enum Command {
    /// UDP input another shard received for an allocation this shard owns.
    Input {
        /// The 5-tuple it came on.
        tuple: FiveTuple,
        /// The datagram.
        data: Box<[u8]>,
    },
    /// SIGHUP: the new configuration; the reply says what it changed here.
    Reconfigure {
        config: Box<ServerConfig>,
        reply: oneshot::Sender<Reconfigured>,
    },
    /// A reloaded certificate, for the shard that serves TCP and TLS.
    Tls(Arc<rustls::ServerConfig>),
    /// SIGUSR1: refuse new allocations.
    Drain,
    /// Live allocations, for the end of a drain.
    Count(oneshot::Sender<usize>),
    /// The shard's figures for a metrics scrape.
    Snapshot {
        options: ReportOptions,
        reply: oneshot::Sender<Snapshot>,
    },
    /// End every allocation and stop.
    Shutdown,
}

/// Commands queued per shard before handed-over input is dropped.
pub(crate) const QUEUE: usize = 4096;
