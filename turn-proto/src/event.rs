//! What the core asks of the driver besides sending: relay sockets to bind and close,
//! RFC 6062 peer connections to open, join and close, and the channel bindings a driver
//! may relay on its own (a kernel fast path).
//!
//! The core never calls into the driver. After every call into [`crate::Server`], the
//! driver drains [`crate::Server::poll_event`] and carries each [`Event`] out. Two
//! events are answered: [`Event::Bind`] with [`crate::Server::relay_bound`] (which
//! finishes the Allocate, as quinn-proto's `Incoming` is finished by `accept`), and
//! [`Event::Connect`] with [`crate::Server::handle_tcp_connected`]. The rest need no
//! answer.

use std::net::SocketAddr;
use std::time::Instant;

use crate::names::{AllocId, ConnectionId, FiveTuple, SocketId};

/// A bound relay transport address and the driver's socket for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    /// The local relay transport address (before `external-ip` mapping).
    pub address: SocketAddr,
    /// The driver's socket bound to it.
    pub socket: SocketId,
}

/// One relay address to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayRequest {
    /// True for an IPv6 relay address.
    pub ipv6: bool,
    /// The server address the client reached (relay on the same IP when possible).
    pub server: SocketAddr,
    /// The client, to find the local address that reaches it when the server address is
    /// a wildcard.
    pub client: SocketAddr,
    /// EVEN-PORT: the relay port must be even.
    pub even_port: bool,
    /// EVEN-PORT with R: also hold port + 1 for a later RESERVATION-TOKEN.
    pub reserve_next: bool,
    /// RESERVATION-TOKEN: use this socket, held since an earlier reservation.
    pub reserved: Option<Relay>,
}

/// What the driver is asked to bind for a new allocation ([`Event::Bind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindRequest {
    /// The allocation being created; the answer names it.
    pub allocation: AllocId,
    /// An RFC 6062 TCP allocation: listen for TCP on the relay address instead of
    /// binding a UDP socket.
    pub tcp: bool,
    /// The relay address.
    pub relay: RelayRequest,
    /// The IPv6 half of a dual allocation (RFC 8656 §7.2), when asked for and possible.
    pub additional: Option<RelayRequest>,
}

/// No relay port could be bound (range exhausted, address gone): 508.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no relay port available")]
pub struct NoRelayPort;

/// Addresses bound for a [`RelayRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayBinding {
    /// The relay address.
    pub relay: Relay,
    /// The next port, held for a later reservation (`reserve_next`).
    pub reserved: Option<Relay>,
}

/// The driver's answer to a [`BindRequest`], for [`crate::Server::relay_bound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindOutcome {
    /// The relay address, or why there is none (the Allocate then gets 508).
    pub relay: Result<RelayBinding, NoRelayPort>,
    /// The dual allocation's IPv6 half, when one was asked for; without it the Allocate
    /// succeeds with the IPv4 half and an ADDRESS-ERROR-CODE.
    pub additional: Option<Result<Relay, NoRelayPort>>,
}

/// A bound channel (RFC 8656 §12) the driver may relay itself: ChannelData from
/// `client` with `number` goes to `peer` from `relay`, and datagrams from `peer` to
/// `relay` go to `client` as ChannelData with `number`. Only UDP allocations of UDP
/// clients without `max-bps` have routes: everything else needs the core per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRoute {
    /// The allocation the channel belongs to.
    pub allocation: AllocId,
    /// The client's 5-tuple.
    pub client: FiveTuple,
    /// The channel number.
    pub number: u16,
    /// The relay address (of the peer's family) and its socket.
    pub relay: Relay,
    /// The peer transport address.
    pub peer: SocketAddr,
    /// When the route lapses unless refreshed: the earlier of the channel's and the
    /// peer permission's expiry. The core also says so with [`Event::ChannelUnbound`].
    pub expires: Instant,
}

/// One thing for the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Event {
    /// Bind relay sockets for a new allocation; answer with
    /// [`crate::Server::relay_bound`].
    Bind(BindRequest),
    /// Close this relay socket or TCP listener (its allocation or reservation ended).
    Release(Relay),
    /// Open an RFC 6062 peer connection from `relay` to `peer`; report the outcome
    /// within [`crate::connection::CONNECT_TIMEOUT`] through
    /// [`crate::Server::handle_tcp_connected`].
    Connect {
        /// Names the connection from now on.
        connection: ConnectionId,
        /// The TCP allocation's relay address (the connection's source).
        relay: Relay,
        /// The peer.
        peer: SocketAddr,
    },
    /// The client data connection `data` now carries `connection`'s bytes
    /// (RFC 6062 §5.4): stop framing it, pipe it to the peer connection.
    Join {
        /// The peer connection.
        connection: ConnectionId,
        /// The client's data connection.
        data: FiveTuple,
    },
    /// Close the peer connection and, when joined, its data connection.
    Close {
        /// The peer connection.
        connection: ConnectionId,
    },
    /// A channel became relayable, or was refreshed (a new `expires`): install or update
    /// the route.
    ChannelBound(ChannelRoute),
    /// A channel stopped being relayable (expired, its permission lapsed, the peer is
    /// now denied, the allocation moved, ended or got a `max-bps` limit): remove the
    /// route; from now on its packets must go through the core.
    ChannelUnbound(ChannelRoute),
}
