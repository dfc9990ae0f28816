//! What the core asks the driver to send, and the 5-tuple that names a client.

use std::net::SocketAddr;
use std::ops::Range;

use super::allocation::AllocId;

/// The client-facing transport of a 5-tuple (RFC 8656 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain UDP.
    Udp,
    /// Plain TCP (RFC 8656 §5: messages framed on the stream).
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// True for stream transports, where ChannelData is padded to 4 bytes (§12.5).
    pub fn is_stream(self) -> bool {
        !matches!(self, Self::Udp)
    }
}

/// Client address, server address and transport: the key of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// Transport between client and server.
    pub transport: Transport,
    /// The client's address as the server sees it.
    pub client: SocketAddr,
    /// The server address the client sent to.
    pub server: SocketAddr,
}

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Back to a client on its 5-tuple.
    Client(FiveTuple),
    /// To a peer, from an allocation's relay address.
    Peer {
        /// The allocation whose relay socket sends.
        allocation: AllocId,
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
