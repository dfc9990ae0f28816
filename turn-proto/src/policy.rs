//! Which peers an allocation may reach (turn-anchors.md §1.4 and §4.3).
//!
//! coturn's order, with stronger defaults: the special-purpose ranges (private nets,
//! loopback, metadata, multicast, documentation, ...) are denied unless an operator opens
//! them with `allowed-peer-ip` or the loopback/multicast switches, some ranges can never
//! be opened at all, and this host's own addresses are closed except on relay ports
//! ([`OwnHost`]): a relay in `network_mode: host` would otherwise reach SSH, Redis or the
//! metrics listener through `lo`, past the host's firewall.
//!
//! Two kinds of matching: deny-side lists unwrap IPv4 carried in IPv6
//! ([`rtc_auth::ip_range::embedded_ipv4`]) so `::ffff:127.0.0.1` cannot slip past an IPv4
//! range, while allow-side entries match only the address as written: a packet to the
//! 6to4 form of an allowed IPv4 address goes to a 6to4 relay, not to that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;

use rtc_auth::ip_range::{IpRangeSet, NEVER_ALLOWED, embedded_ipv4};

/// Peer address policy, checked on CreatePermission, ChannelBind, every Send, Connect
/// and every incoming RFC 6062 peer connection.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// `allowed-peer-ip`.
    pub allowed: IpRangeSet,
    /// `denied-peer-ip`.
    pub denied: IpRangeSet,
    /// Default deny list; [`rtc_auth::ip_range::SPECIAL_PURPOSE`] unless replaced.
    pub special: IpRangeSet,
    /// `allow-loopback-peers`.
    pub allow_loopback: bool,
    /// `no-multicast-peers` (on unless `allow-multicast-peers`).
    pub deny_multicast: bool,
    /// This host's addresses and the ports on them a peer may be.
    pub own_host: OwnHost,
    never: IpRangeSet,
}

/// This host, as a peer: every address of it is closed except on the ports a relayed
/// client legitimately reaches there (another allocation's relay port, or a co-located
/// service the operator opened, such as LiveKit's media port).
#[derive(Debug, Clone)]
pub struct OwnHost {
    /// Every address of this host: its interfaces, the listening and relay addresses,
    /// both halves of each `external-ip`, the metrics address.
    pub addresses: IpRangeSet,
    /// The private halves of `external-ip=PUBLIC/PRIVATE`: allowed peers (even in a
    /// denied range) on [`Self::reachable_port`]s, so clients can hairpin to each other's
    /// relay addresses through a 1:1 NAT, as coturn whitelists them.
    pub hairpin: IpRangeSet,
    /// `min-port..=max-port`.
    pub relay_ports: RangeInclusive<u16>,
    /// `allowed-own-host-port`: further ports of this host peers may reach.
    pub open_ports: Vec<RangeInclusive<u16>>,
    /// Our own listeners (client, TLS, PROXY, metrics ports): closed even inside the relay
    /// range, so the relay never talks to its own listeners.
    pub service_ports: Vec<u16>,
}

impl Default for OwnHost {
    /// No address known: nothing closed (the core's tests, a server on documentation
    /// addresses); the driver fills it in.
    fn default() -> Self {
        Self {
            addresses: IpRangeSet::new(),
            hairpin: IpRangeSet::new(),
            relay_ports: 49152..=65535,
            open_ports: Vec::new(),
            service_ports: Vec::new(),
        }
    }
}

impl OwnHost {
    /// True for a port on this host a peer may use: a relay port that is not one of our
    /// listeners, or an opened port.
    pub fn reachable_port(&self, port: u16) -> bool {
        (self.relay_ports.contains(&port) && !self.service_ports.contains(&port))
            || self.open_ports.iter().any(|open| open.contains(&port))
    }

    /// A port [`Self::reachable_port`] accepts, if there is one.
    fn some_reachable_port(&self) -> Option<u16> {
        // Stops within a few steps: only our few listener ports are skipped.
        self.relay_ports
            .clone()
            .find(|port| !self.service_ports.contains(port))
            .or_else(|| self.open_ports.first().map(|open| *open.start()))
    }

    /// True when `peer` is this host on a port peers may not reach.
    fn closes(&self, peer: SocketAddr) -> bool {
        self.addresses.matches(peer.ip()) && !self.reachable_port(peer.port())
    }

    /// True when `peer` is a private `external-ip` half on a reachable port.
    fn hairpins(&self, peer: SocketAddr) -> bool {
        self.hairpin.contains(peer.ip()) && self.reachable_port(peer.port())
    }
}

/// Why a peer was refused (for counters and logs; the client sees 403 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Unspecified, link-local/metadata, ULA or site-local: never reachable.
    NeverAllowed,
    /// Multicast or broadcast.
    Multicast,
    /// Loopback without `allow-loopback-peers`.
    Loopback,
    /// An address of this host on a port that is neither a relay port nor opened.
    OwnHost,
    /// Matched `denied-peer-ip`.
    DeniedList,
    /// Matched the default special-purpose list.
    SpecialPurpose,
}

impl Default for PeerPolicy {
    fn default() -> Self {
        Self::new(IpRangeSet::new(), IpRangeSet::new(), false, true)
    }
}

impl PeerPolicy {
    /// A policy with the default special-purpose list and no own-host addresses.
    pub fn new(
        allowed: IpRangeSet,
        denied: IpRangeSet,
        allow_loopback: bool,
        deny_multicast: bool,
    ) -> Self {
        Self {
            allowed,
            denied,
            special: IpRangeSet::special_purpose(),
            allow_loopback,
            deny_multicast,
            own_host: OwnHost::default(),
            never: NEVER_ALLOWED.iter().copied().collect(),
        }
    }

    /// Checks `peer`, first match wins (coturn `good_peer_addr` order, with the own-host
    /// rule ahead of the allow entries).
    pub fn check(&self, peer: SocketAddr) -> Result<(), Denial> {
        let ip = peer.ip();
        let v4 = embedded_ipv4(ip);
        if self.never.matches(ip) {
            return Err(Denial::NeverAllowed);
        }
        let direct_multicast = is_multicast(ip);
        if (direct_multicast || v4.is_some_and(|v4| is_multicast(IpAddr::V4(v4))))
            && self.deny_multicast
        {
            return Err(Denial::Multicast);
        }
        let direct_loopback = is_loopback(ip);
        if (direct_loopback || v4.is_some_and(|v4| v4.is_loopback())) && !self.allow_loopback {
            return Err(Denial::Loopback);
        }
        // `allow-loopback-peers` (tests only) opens this host's loopback on every port:
        // that is what it says. Every other own address stays closed.
        let loopback_opened = direct_loopback && self.allow_loopback;
        if !loopback_opened && self.own_host.closes(peer) {
            return Err(Denial::OwnHost);
        }
        if self.own_host.hairpins(peer) || self.allowed.contains(ip) {
            return Ok(());
        }
        if self.denied.matches(ip) {
            return Err(Denial::DeniedList);
        }
        let opened = loopback_opened || (direct_multicast && !self.deny_multicast);
        if !opened && self.special.matches(ip) {
            return Err(Denial::SpecialPurpose);
        }
        Ok(())
    }

    /// Checks a permission's IP (permissions ignore ports, RFC 8656 §9): allowed when
    /// some port of it may be reached. Every send through the permission is checked
    /// with its port ([`Self::check`]), so a permission for this host opens only what
    /// [`OwnHost::reachable_port`] allows.
    pub fn check_permission(&self, ip: IpAddr) -> Result<(), Denial> {
        // Port 0 is never reachable (the relay range starts at 1 or above).
        let port = self.own_host.some_reachable_port().unwrap_or(0);
        self.check(SocketAddr::new(ip, port))
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

/// coturn: first octet above 223 (multicast, reserved, broadcast) or ff00::/8.
fn is_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] > 223 || v4 == Ipv4Addr::BROADCAST,
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

#[cfg(test)]
mod tests;
