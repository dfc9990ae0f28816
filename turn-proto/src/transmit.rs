//! What the core asks the driver to send, and where.

use std::net::SocketAddr;
use std::ops::Range;

use super::names::{FiveTuple, SocketId};

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Back to a client on its 5-tuple.
    Client(FiveTuple),
    /// To a peer, from a relay socket.
    Peer {
        /// The relay socket that sends (the allocation's, of the peer's family).
        socket: SocketId,
        /// The peer.
        peer: SocketAddr,
    },
    /// To another shard, which owns the allocation this UDP input names (see
    /// [`super::shards`]): the driver passes the whole input on with its 5-tuple.
    Shard {
        /// The shard's index.
        shard: u8,
        /// The 5-tuple the input came on.
        tuple: FiveTuple,
    },
}

/// Which bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The bytes the core wrote into the caller's output buffer.
    Output,
    /// A range of the input the caller passed in (relayed data, not copied).
    Input(Range<usize>),
}

/// One datagram or stream write for the driver to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Where to send.
    pub destination: Destination,
    /// What to send.
    pub payload: Payload,
}
