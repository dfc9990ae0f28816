//! An allocation and what hangs off it: permissions, channels, rate limits
//! (RFC 8656 §2.2, §9, §12).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::bandwidth::TokenBucket;
use super::codec::TransactionId;
use super::event::Relay;
use super::names::FiveTuple;

/// A permission for one peer IP (ports are ignored, RFC 8656 §9).
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    /// The peer address.
    pub ip: IpAddr,
    /// When it lapses unless refreshed (300 s after the last refresh).
    pub expires: Instant,
}

/// A channel binding (RFC 8656 §12).
#[derive(Debug, Clone, Copy)]
pub struct Channel {
    /// 0x4000-0x4FFF.
    pub number: u16,
    /// The peer transport address.
    pub peer: SocketAddr,
    /// When it lapses unless refreshed (600 s).
    pub expires: Instant,
    /// The expiry last reported to the driver in a route ([`crate::Event::ChannelBound`]);
    /// None while the driver holds no route for it.
    pub routed: Option<Instant>,
}

/// Packets and bytes in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets relayed.
    pub packets: u64,
    /// Payload bytes relayed.
    pub bytes: u64,
    /// Packets dropped by `max-bps`.
    pub dropped: u64,
}

impl Traffic {
    /// Adds another shard's figures.
    pub fn merge(&mut self, other: &Traffic) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.dropped += other.dropped;
    }
}

/// One client's relay.
#[derive(Debug)]
pub struct Allocation {
    /// The client's 5-tuple.
    pub tuple: FiveTuple,
    /// The relay transport address (before `external-ip` mapping) and its socket.
    pub relay: Relay,
    /// The IPv6 relay address of a dual allocation (RFC 8656 §7.2,
    /// ADDITIONAL-ADDRESS-FAMILY), next to the IPv4 `relay`.
    pub additional: Option<Relay>,
    /// An RFC 6062 TCP allocation: the relay address listens for TCP and peers are
    /// reached through Connect; Send, ChannelBind and UDP peer data do not apply.
    pub tcp: bool,
    /// RFC 6062 peer connections it holds (connecting, waiting for their bind, joined),
    /// against `max-tcp-relay-connections`.
    pub tcp_connections: u32,
    /// The username that created it; only it may use the allocation.
    pub username: Box<str>,
    /// Real user id for `user-quota`.
    pub user: Box<str>,
    /// Cached long-term key (coturn checks later requests against it, §2.3).
    pub key: Option<super::auth::LongTermKey>,
    /// The Allocate transaction, to answer a retransmission the same way.
    pub transaction: TransactionId,
    /// The allocation's lifetime end.
    pub expires: Instant,
    /// Installed permissions.
    pub permissions: Vec<Permission>,
    /// Bound channels.
    pub channels: Vec<Channel>,
    /// `max-bps` limiter, client to peer.
    pub upstream_limit: Option<TokenBucket>,
    /// `max-bps` limiter, peer to client.
    pub downstream_limit: Option<TokenBucket>,
    /// Client to peer counters.
    pub upstream: Traffic,
    /// Peer to client counters.
    pub downstream: Traffic,
    /// RESERVATION-TOKEN handed out with this allocation, if any.
    pub reservation: Option<u64>,
    /// The current MOBILITY-TICKET (RFC 8016), if the client asked for one.
    pub ticket: Option<[u8; 16]>,
    /// The 5-tuple the allocation moved away from, still accepted until the instant given,
    /// for requests the client had in flight when it moved.
    pub previous_tuple: Option<(FiveTuple, Instant)>,
}

impl Allocation {
    /// The relay that reaches `peer`: the one of its address family, if any.
    ///
    /// None for an IPv4-mapped peer (`::ffff:a.b.c.d`): IPv6 relay sockets are
    /// IPv6-only, so nothing sent there would leave, and the IPv4 address it names is
    /// for an IPv4 relay to reach (the client is answered 443, Peer Address Family
    /// Mismatch, and can ask again with the IPv4 form).
    pub fn relay_for(&self, peer: SocketAddr) -> Option<Relay> {
        if let IpAddr::V6(v6) = peer.ip()
            && v6.to_ipv4_mapped().is_some()
        {
            return None;
        }
        if self.relay.address.is_ipv4() == peer.is_ipv4() {
            return Some(self.relay);
        }
        self.additional
            .filter(|relay| relay.address.is_ipv4() == peer.is_ipv4())
    }

    /// The permission for `ip`, when live.
    fn permission(&self, ip: IpAddr, now: Instant) -> Option<&Permission> {
        self.permissions
            .iter()
            .find(|p| p.ip == ip && p.expires > now)
    }

    /// The route for `channel` as it stands at `now`: None when the driver must not
    /// relay it alone (see [`crate::event::ChannelRoute`] for which allocations have
    /// routes), else its expiry.
    pub fn route_expiry(&self, channel: &Channel, now: Instant) -> Option<Instant> {
        if self.tcp || self.tuple.transport.is_stream() || self.upstream_limit.is_some() {
            return None;
        }
        let permission = self.permission(channel.peer.ip(), now)?;
        (channel.expires > now).then(|| channel.expires.min(permission.expires))
    }

    /// True when `ip` has a live permission.
    pub fn permits(&self, ip: IpAddr, now: Instant) -> bool {
        self.permission(ip, now).is_some()
    }

    /// Installs or refreshes the permission for `ip`; false when `max` would be exceeded.
    pub fn permit(&mut self, ip: IpAddr, expires: Instant, max: usize) -> bool {
        if let Some(existing) = self.permissions.iter_mut().find(|p| p.ip == ip) {
            existing.expires = expires;
            return true;
        }
        if self.permissions.len() >= max {
            return false;
        }
        self.permissions.push(Permission { ip, expires });
        true
    }

    /// The live channel with `number`.
    pub fn channel(&self, number: u16, now: Instant) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
    }

    /// The live channel bound to `peer`.
    pub fn channel_to(&self, peer: SocketAddr, now: Instant) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
    }

    /// Drops lapsed permissions and channels. A lapsed channel's number and peer stay
    /// unusable for others until then (RFC 8656 §12: 5 more minutes); we free them at once
    /// since a lapsed binding was the same client's.
    pub fn sweep(&mut self, now: Instant) {
        self.permissions.retain(|p| p.expires > now);
        self.channels.retain(|c| c.expires > now);
    }
}
