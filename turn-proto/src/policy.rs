//! Which peers an allocation may reach (turn-anchors.md §1.4 and §4.3).
//!
//! coturn's order, with stronger defaults: the special-purpose ranges (private nets,
//! loopback, metadata, multicast, documentation, ...) are denied unless an operator opens
//! them with `allowed-peer-ip` or the loopback/multicast switches, and some ranges can
//! never be opened at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtc_auth::ip_range::{IpRangeSet, NEVER_ALLOWED, embedded_ipv4};

/// Peer address policy, checked on CreatePermission, ChannelBind and every Send.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// `allowed-peer-ip` (plus the private halves of `external-ip`).
    pub allowed: IpRangeSet,
    /// `denied-peer-ip`.
    pub denied: IpRangeSet,
    /// Default deny list; [`rtc_auth::ip_range::SPECIAL_PURPOSE`] unless replaced.
    pub special: IpRangeSet,
    /// `allow-loopback-peers`.
    pub allow_loopback: bool,
    /// `no-multicast-peers` (on unless `allow-multicast-peers`).
    pub deny_multicast: bool,
    never: IpRangeSet,
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
    /// A policy with the default special-purpose list.
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
            never: NEVER_ALLOWED.iter().copied().collect(),
        }
    }

    /// Checks `peer`, first match wins (coturn `good_peer_addr` order).
    pub fn check(&self, peer: IpAddr) -> Result<(), Denial> {
        let v4 = embedded_ipv4(peer);
        if self.never.matches(peer) {
            return Err(Denial::NeverAllowed);
        }
        let multicast = is_multicast(peer) || v4.is_some_and(|v4| is_multicast(IpAddr::V4(v4)));
        if multicast && self.deny_multicast {
            return Err(Denial::Multicast);
        }
        let loopback = is_loopback(peer) || v4.is_some_and(|v4| v4.is_loopback());
        if loopback && !self.allow_loopback {
            return Err(Denial::Loopback);
        }
        if self.allowed.matches(peer) {
            return Ok(());
        }
        if self.denied.matches(peer) {
            return Err(Denial::DeniedList);
        }
        let opened = (loopback && self.allow_loopback) || (multicast && !self.deny_multicast);
        if !opened && self.special.matches(peer) {
            return Err(Denial::SpecialPurpose);
        }
        Ok(())
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
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn set(items: &[&str]) -> IpRangeSet {
        IpRangeSet::parse(items.iter().copied()).unwrap()
    }

    #[test]
    fn default_policy_table() {
        let policy = PeerPolicy::default();
        let cases = [
            ("8.8.8.8", Ok(())),
            ("2a00:1450:4001::1", Ok(())),
            ("127.0.0.1", Err(Denial::Loopback)),
            ("::1", Err(Denial::Loopback)),
            ("::ffff:127.0.0.1", Err(Denial::Loopback)),
            ("::127.0.0.1", Err(Denial::Loopback)),
            ("64:ff9b::7f00:1", Err(Denial::Loopback)),
            ("2002:7f00:1::", Err(Denial::Loopback)),
            ("0.0.0.0", Err(Denial::NeverAllowed)),
            ("0.1.2.3", Err(Denial::NeverAllowed)),
            ("::", Err(Denial::NeverAllowed)),
            ("169.254.169.254", Err(Denial::NeverAllowed)),
            ("::ffff:169.254.169.254", Err(Denial::NeverAllowed)),
            ("fe80::1", Err(Denial::NeverAllowed)),
            ("fd00:ec2::254", Err(Denial::NeverAllowed)),
            ("224.0.0.1", Err(Denial::Multicast)),
            ("255.255.255.255", Err(Denial::Multicast)),
            ("240.0.0.1", Err(Denial::Multicast)),
            ("ff02::1", Err(Denial::Multicast)),
            ("::ffff:239.1.1.1", Err(Denial::Multicast)),
            ("10.0.0.1", Err(Denial::SpecialPurpose)),
            ("192.168.1.1", Err(Denial::SpecialPurpose)),
            ("100.64.0.1", Err(Denial::SpecialPurpose)),
            ("::ffff:10.0.0.1", Err(Denial::SpecialPurpose)),
        ];
        for (peer, expected) in cases {
            assert_eq!(policy.check(ip(peer)), expected, "{peer}");
        }
    }

    #[test]
    fn operator_switches() {
        let policy = PeerPolicy::new(
            set(&["10.0.0.0/8", "169.254.169.254"]),
            set(&["127.0.0.2", "8.8.4.4"]),
            true,
            false,
        );
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::1")), Ok(()));
        assert_eq!(policy.check(ip("127.0.0.2")), Err(Denial::DeniedList));
        assert_eq!(policy.check(ip("8.8.4.4")), Err(Denial::DeniedList));
        assert_eq!(policy.check(ip("10.1.1.1")), Ok(()));
        assert_eq!(policy.check(ip("224.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("192.168.0.1")), Err(Denial::SpecialPurpose));
        // Metadata stays closed even when listed as allowed.
        assert_eq!(
            policy.check(ip("169.254.169.254")),
            Err(Denial::NeverAllowed)
        );
        // Allow beats deny, as in coturn.
        let both = PeerPolicy::new(set(&["8.8.8.8"]), set(&["8.0.0.0/8"]), false, true);
        assert_eq!(both.check(ip("8.8.8.8")), Ok(()));
        assert_eq!(both.check(ip("8.8.4.4")), Err(Denial::DeniedList));
    }
}
