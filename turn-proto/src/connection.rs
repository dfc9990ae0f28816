//! RFC 6062 TCP relay connections: the table the core keeps of peer connections of TCP
//! allocations, and the driver operations it asks for.
//!
//! A peer connection is opened by a Connect request (§5.2) or accepted on the relayed
//! address (§5.3), then waits for the client to open a data connection and send a
//! ConnectionBind carrying its CONNECTION-ID (§5.4). Once joined, the driver copies bytes
//! both ways and the core only counts them and applies `max-bps`. What the driver does
//! for them is asked as [`crate::Event`]s (`Connect`, `Join`, `Close`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::names::{AllocId, FiveTuple};

/// How long the server tries to reach a peer named in a Connect (RFC 6062 §5.2: at
/// least 30 s) before answering 447.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a peer connection waits for its ConnectionBind before it is closed
/// (RFC 6062 §5.2, §5.3: 30 s).
pub const BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// Which way relayed bytes flow on a joined connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client data connection to peer.
    Upstream,
    /// Peer to client data connection.
    Downstream,
}

/// Where a peer connection stands.
#[derive(Debug, Clone, Copy)]
pub(crate) enum State {
    /// Connect sent; the driver is connecting. The answer is signed like the request.
    Connecting {
        /// The Connect transaction, to answer it.
        transaction: super::codec::TransactionId,
        /// True when the response needs FINGERPRINT.
        fingerprint: bool,
        /// True when the request used MESSAGE-INTEGRITY-SHA256.
        sha256: bool,
    },
    /// Connected or accepted; waiting for the ConnectionBind until the instant given.
    Pending(Instant),
    /// Joined with this client data connection.
    Joined(FiveTuple),
}

/// One peer connection of a TCP allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection {
    /// The allocation it belongs to.
    pub(crate) allocation: AllocId,
    /// The peer's transport address.
    pub(crate) peer: SocketAddr,
    /// Where it stands.
    pub(crate) state: State,
}
