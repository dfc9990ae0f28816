//! How the core and its driver name what both see: allocations, relay sockets, RFC 6062
//! peer connections, and the 5-tuple that names a client. Plain identifiers with no
//! behaviour, at the bottom of the crate so every module can use them.

use std::net::SocketAddr;

/// Names an allocation to the driver; the generation makes a stale id harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllocId {
    /// Slot in the allocation table.
    pub index: u32,
    /// Bumped each time the slot is reused.
    pub generation: u32,
}

/// A relay socket (a UDP socket, or a TCP listener for RFC 6062) as the driver numbers
/// it. The core keeps it with the allocation and names it in every transmit to a peer,
/// so the driver reaches the socket by index, with no lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub u32);

/// CONNECTION-ID (RFC 6062 §6.2.1): names one peer connection to the client and the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u32);

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
