//! Address range sets for peer filtering (`denied-peer-ip`, `allowed-peer-ip`) and
//! outgoing-request deny lists.
//!
//! A TURN allocation is an authenticated UDP proxy: without a deny list it reaches the
//! relay host's loopback, the cloud metadata service and the private network (Slack 2020,
//! CVE-2020-26262, CVE-2026-27624). Three things matter and are done here:
//!
//! - coturn's syntax (`A`, `A-B` inclusive) **and** CIDR, with errors that name the text
//!   instead of coturn ≤ 4.10's silent fail-open;
//! - IPv4 carried inside IPv6 is unwrapped ([`embedded_ipv4`]) so `::ffff:127.0.0.1`
//!   cannot slip past an IPv4 range;
//! - membership is a binary search over sorted, merged ranges: a few hundred ranges cost
//!   a handful of comparisons per packet.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRange {
    /// `first..=last` for IPv4.
    V4(Ipv4Addr, Ipv4Addr),
    /// `first..=last` for IPv6.
    V6(Ipv6Addr, Ipv6Addr),
}

/// Why a range did not parse; the message quotes the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IP range {text:?}: {reason}")]
pub struct IpRangeError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl IpRange {
    /// A range of the single address `ip`.
    pub fn single(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4, v4),
            IpAddr::V6(v6) => Self::V6(v6, v6),
        }
    }

    /// The addresses of the network `ip/prefix` (host bits of `ip` are ignored).
    pub fn cidr(ip: IpAddr, prefix: u8) -> Option<Self> {
        match ip {
            IpAddr::V4(v4) if prefix <= 32 => {
                let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
                let base = u32::from(v4) & !host;
                Some(Self::V4(base.into(), (base | host).into()))
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                let host = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
                let base = u128::from(v6) & !host;
                Some(Self::V6(base.into(), (base | host).into()))
            }
            _ => None,
        }
    }

    /// True when `ip` lies in the range (no IPv4-in-IPv6 unwrapping).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Self::V4(a, b), IpAddr::V4(ip)) => a <= ip && ip <= b,
            (Self::V6(a, b), IpAddr::V6(ip)) => a <= ip && ip <= b,
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    /// Parses `A`, `A-B` (coturn) or `A/len` (CIDR); IPv6 may be bracketed.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| IpRangeError {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err("empty"));
        }
        if let Some((addr, len)) = trimmed.split_once('/') {
            let ip = parse_ip(addr).ok_or_else(|| err("not an IP address before '/'"))?;
            let prefix: u8 = len
                .trim()
                .parse()
                .map_err(|_| err("prefix length is not a number"))?;
            return Self::cidr(ip, prefix).ok_or_else(|| err("prefix length too long"));
        }
        let (low, high) = match trimmed.split_once('-') {
            Some((low, high)) => (low, Some(high)),
            None => (trimmed, None),
        };
        let low = parse_ip(low).ok_or_else(|| err("not an IP address"))?;
        let Some(high) = high else {
            return Ok(Self::single(low));
        };
        let high = parse_ip(high).ok_or_else(|| err("end of range is not an IP address"))?;
        match (low, high) {
            (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => Ok(Self::V4(a, b)),
            (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => Ok(Self::V6(a, b)),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                Err(err("start of range is after its end"))
            }
            _ => Err(err("range mixes IPv4 and IPv6")),
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(a, b) if a == b => write!(f, "{a}"),
            Self::V6(a, b) if a == b => write!(f, "{a}"),
            Self::V4(a, b) => write!(f, "{a}-{b}"),
            Self::V6(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

/// A set of addresses with a fast membership test.
///
/// Ranges are kept sorted and merged, so a lookup is one binary search per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRangeSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpRangeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses each item with [`IpRange::from_str`]; the first bad item is the error.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, IpRangeError> {
        items
            .into_iter()
            .map(str::parse)
            .collect::<Result<Vec<IpRange>, _>>()
            .map(Self::from_iter)
    }

    /// The special-purpose ranges a relay must not reach unless an operator opens them:
    /// [`SPECIAL_PURPOSE`].
    pub fn special_purpose() -> Self {
        SPECIAL_PURPOSE.iter().copied().collect()
    }

    /// Adds one range.
    pub fn insert(&mut self, range: IpRange) {
        self.extend([range]);
    }

    /// True when the set holds `ip` exactly as given.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => lookup(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => lookup(&self.v6, u128::from(v6)),
        }
    }

    /// True when the set holds `ip` or the IPv4 address it carries ([`embedded_ipv4`]).
    ///
    /// This is the check for peers: `::ffff:10.0.0.1` matches `10.0.0.0-10.255.255.255`,
    /// while a plain IPv4 peer is never matched by an IPv6 range such as
    /// `::ffff:0.0.0.0-::ffff:255.255.255.255`.
    pub fn matches(&self, ip: IpAddr) -> bool {
        self.contains(ip) || embedded_ipv4(ip).is_some_and(|v4| self.contains(IpAddr::V4(v4)))
    }

    /// True when the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The merged ranges, IPv4 first, for display.
    pub fn ranges(&self) -> impl Iterator<Item = IpRange> + '_ {
        let v4 = self
            .v4
            .iter()
            .map(|&(a, b)| IpRange::V4(a.into(), b.into()));
        let v6 = self
            .v6
            .iter()
            .map(|&(a, b)| IpRange::V6(a.into(), b.into()));
        v4.chain(v6)
    }
}

impl Extend<IpRange> for IpRangeSet {
    fn extend<I: IntoIterator<Item = IpRange>>(&mut self, ranges: I) {
        for range in ranges {
            match range {
                IpRange::V4(a, b) => self.v4.push((a.into(), b.into())),
                IpRange::V6(a, b) => self.v6.push((a.into(), b.into())),
            }
        }
        merge(&mut self.v4);
        merge(&mut self.v6);
    }
}

impl FromIterator<IpRange> for IpRangeSet {
    fn from_iter<I: IntoIterator<Item = IpRange>>(ranges: I) -> Self {
        let mut set = Self::new();
        set.extend(ranges);
        set
    }
}

/// Sorts and merges overlapping or adjacent ranges in place.
fn merge<T: Copy + Ord + Successor>(ranges: &mut Vec<(T, T)>) {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if last.1.successor().is_none_or(|next| start <= next) => {
                last.1 = last.1.max(end);
            }
            _ => merged.push((start, end)),
        }
    }
    *ranges = merged;
}

fn lookup<T: Copy + Ord>(ranges: &[(T, T)], ip: T) -> bool {
    let after = ranges.partition_point(|&(start, _)| start <= ip);
    after > 0 && ip <= ranges[after - 1].1
}

trait Successor: Sized {
    fn successor(self) -> Option<Self>;
}

impl Successor for u32 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Successor for u128 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// The IPv4 address an IPv6 address carries, where a packet to it could end at an IPv4
/// host: IPv4-mapped `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96` (RFC 2765),
/// IPv4-compatible `::/96` (but `::1`), NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`
/// (RFC 6052 /48 layout), 6to4 `2002::/16` and Teredo `2001::/32` (the client address,
/// stored inverted).
///
/// For deny lists only: a packet to `2002:7f00:1::` goes to a 6to4 relay, not to
/// 127.0.0.1, so an allow entry for an IPv4 address must not open these forms
/// ([`IpRangeSet::contains`] is the allow-side test).
pub fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let o = v6.octets();
    let seg = v6.segments();
    let last32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match seg {
        // `::1` is IPv6 loopback, not the compatible form of 0.0.0.1.
        [0, 0, 0, 0, 0, 0, 0, 1] => None,
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0, 0, 0, 0, 0, 0, _, _] => Some(last32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last32),
        [0x64, 0xff9b, 1, ..] => Some(Ipv4Addr::new(o[6], o[7], o[9], o[10])),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        [0x2001, 0, ..] => Some(Ipv4Addr::from(!u32::from(last32))),
        _ => None,
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpRange {
    let host = match u32::MAX.checked_shr(prefix as u32) {
        Some(host) => host,
        None => 0,
    };
    let base = u32::from_be_bytes([a, b, c, d]) & !host;
    IpRange::V4(Ipv4Addr::from_bits(base), Ipv4Addr::from_bits(base | host))
}

const fn v6(first_segment: u16, second_segment: u16, prefix: u8) -> IpRange {
    let host = match u128::MAX.checked_shr(prefix as u32) {
        Some(host) => host,
        None => 0,
    };
    let base = (((first_segment as u128) << 16) | second_segment as u128) << 96 & !host;
    IpRange::V6(Ipv6Addr::from_bits(base), Ipv6Addr::from_bits(base | host))
}

/// Special-purpose ranges denied as peers by default (turn-anchors.md §4.3: the union of
/// coturn's hard list, eturnal's `recommended` and LiveKit's): this host, private
/// networks, shared address space, link-local and cloud metadata, documentation and
/// benchmarking nets, multicast, reserved and broadcast, and their IPv6 counterparts.
pub const SPECIAL_PURPOSE: &[IpRange] = &[
    v4(0, 0, 0, 0, 8),
    v4(10, 0, 0, 0, 8),
    v4(100, 64, 0, 0, 10),
    v4(127, 0, 0, 0, 8),
    v4(169, 254, 0, 0, 16),
    v4(172, 16, 0, 0, 12),
    v4(192, 0, 0, 0, 24),
    v4(192, 0, 2, 0, 24),
    v4(192, 88, 99, 0, 24),
    v4(192, 168, 0, 0, 16),
    v4(198, 18, 0, 0, 15),
    v4(198, 51, 100, 0, 24),
    v4(203, 0, 113, 0, 24),
    v4(224, 0, 0, 0, 4),
    v4(240, 0, 0, 0, 4),
    v4(255, 255, 255, 255, 32),
    // `::/8` (RFC 4291 reserved): `::`, `::1`, the IPv4-compatible, -mapped and
    // -translated forms, local-use NAT64 `64:ff9b:1::/48` (RFC 8215: translators inside
    // the operator's own network); none is a peer a relay should send to. Only the
    // well-known NAT64 prefix `64:ff9b::/96` (RFC 6052, globally reachable) is left out:
    // the IPv4 address it carries is checked instead.
    IpRange::V6(
        Ipv6Addr::UNSPECIFIED,
        Ipv6Addr::new(0x64, 0xff9a, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff),
    ),
    IpRange::V6(
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 1, 0, 0),
        Ipv6Addr::new(0xff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff),
    ),
    // Discard-only prefix 100::/64.
    IpRange::V6(
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        Ipv6Addr::new(0x100, 0, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff),
    ),
    // Documentation (RFC 3849).
    v6(0x2001, 0x0db8, 32),
    v6(0xfc00, 0, 7),
    v6(0xfe80, 0, 10),
    v6(0xfec0, 0, 10),
    v6(0xff00, 0, 8),
];

/// Ranges no allow list may open: unspecified, cloud metadata and link-local
/// (coturn 4.13.1 hard-denies link-local, ULA and site-local the same way).
pub const NEVER_ALLOWED: &[IpRange] = &[
    v4(0, 0, 0, 0, 8),
    v4(169, 254, 0, 0, 16),
    v6(0, 0, 128),
    v6(0xfe80, 0, 10),
    v6(0xfc00, 0, 7),
    v6(0xfec0, 0, 10),
];

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
    fn parses_coturn_forms_and_cidr() {
        assert_eq!(
            "10.0.0.0-10.255.255.255".parse::<IpRange>(),
            Ok(IpRange::V4(
                "10.0.0.0".parse().unwrap(),
                "10.255.255.255".parse().unwrap()
            ))
        );
        assert_eq!(
            "10.0.0.0/8".parse::<IpRange>(),
            "10.0.0.0-10.255.255.255".parse()
        );
        assert_eq!(
            "10.1.2.3/8".parse::<IpRange>(),
            "10.0.0.0-10.255.255.255".parse()
        );
        assert_eq!("1.2.3.4".parse::<IpRange>(), "1.2.3.4/32".parse());
        assert_eq!(
            "0.0.0.0/0".parse::<IpRange>(),
            "0.0.0.0-255.255.255.255".parse()
        );
        assert_eq!(
            "::/0".parse::<IpRange>(),
            "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse()
        );
        assert_eq!("[::1]".parse::<IpRange>(), "::1".parse());
        assert_eq!(
            "fe80::/10".parse::<IpRange>(),
            "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse()
        );
        assert_eq!(
            " 10.0.0.1 - 10.0.0.9 ".parse::<IpRange>(),
            "10.0.0.1-10.0.0.9".parse()
        );
    }

    #[test]
    fn bad_input_names_the_text() {
        let cases = [
            ("", "empty"),
            (
                "10.0.0.0-10.255.255.255 # own net",
                "end of range is not an IP address",
            ),
            ("example", "not an IP address"),
            ("10.0.0.9-10.0.0.1", "start of range is after its end"),
            ("10.0.0.0-::1", "range mixes IPv4 and IPv6"),
            ("10.0.0.0/33", "prefix length too long"),
            ("::/129", "prefix length too long"),
            ("10.0.0.0/x", "prefix length is not a number"),
            ("10.0.0/8", "not an IP address before '/'"),
            ("1.2.3.4.5", "not an IP address"),
        ];
        for (text, reason) in cases {
            let err = text.parse::<IpRange>().unwrap_err();
            assert_eq!(err.reason, reason, "{text:?}");
            assert_eq!(err.text, text);
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
        let err = IpRangeSet::parse(["1.2.3.4", "bogus"]).unwrap_err();
        assert_eq!(err.text, "bogus");
    }

    #[test]
    fn membership_and_merging() {
        let s = set(&[
            "10.0.0.0-10.0.0.9",
            "10.0.0.10-10.0.0.20",
            "10.0.0.15-10.0.0.30",
            "1.1.1.1",
            "fd00::/8",
        ]);
        assert_eq!(
            s.ranges().count(),
            3,
            "adjacent and overlapping ranges merge"
        );
        for inside in [
            "10.0.0.0",
            "10.0.0.9",
            "10.0.0.10",
            "10.0.0.30",
            "1.1.1.1",
            "fd12::1",
        ] {
            assert!(s.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "10.0.0.31",
            "9.255.255.255",
            "1.1.1.0",
            "1.1.1.2",
            "fe00::",
            "::",
        ] {
            assert!(!s.contains(ip(outside)), "{outside}");
        }
        assert!(IpRangeSet::new().is_empty());
        assert!(!IpRangeSet::new().contains(ip("1.2.3.4")));
        let edges = set(&[
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ]);
        assert!(edges.contains(ip("0.0.0.0")) && edges.contains(ip("255.255.255.255")));
        assert!(!edges.contains(ip("0.0.0.1")));
        let full = set(&["0.0.0.0/1", "128.0.0.0/1", "0.0.0.0/0"]);
        assert_eq!(full.ranges().count(), 1);
        assert!(full.contains(ip("200.1.1.1")));
    }

    #[test]
    fn embedded_ipv4_forms() {
        let cases = [
            ("::ffff:127.0.0.1", Some("127.0.0.1")),
            ("::127.0.0.1", Some("127.0.0.1")),
            ("64:ff9b::7f00:1", Some("127.0.0.1")),
            ("64:ff9b:1:7f00:0:100::", Some("127.0.0.1")),
            ("2002:7f00:1::", Some("127.0.0.1")),
            ("2002:a9fe:a9fe:1::5", Some("169.254.169.254")),
            // Teredo: client 127.0.0.1 stored as its complement 80ff:fffe.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some("127.0.0.1")),
            ("::", Some("0.0.0.0")),
            ("::ffff:0:7f00:1", Some("127.0.0.1")),
            ("::1", None),
            ("2001:db8::1", None),
            ("2a00::1", None),
            ("127.0.0.1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                embedded_ipv4(ip(text)),
                expected.map(|e| e.parse().unwrap()),
                "{text}"
            );
        }
    }

    #[test]
    fn peer_matching_unwraps_ipv4() {
        let ten = set(&["10.0.0.0-10.255.255.255"]);
        assert!(ten.matches(ip("::ffff:10.1.2.3")));
        assert!(ten.matches(ip("64:ff9b::a01:203")));
        assert!(!ten.contains(ip("::ffff:10.1.2.3")));
        // An IPv6 range of mapped addresses denies mapped peers, not plain IPv4.
        let mapped = set(&["::ffff:0.0.0.0-::ffff:255.255.255.255"]);
        assert!(mapped.matches(ip("::ffff:8.8.8.8")));
        assert!(!mapped.matches(ip("8.8.8.8")));
    }

    #[test]
    fn seed_config_denied_peer_ips() {
        let seed = include_str!("../../fixtures/seed-turnserver.conf");
        let items: Vec<&str> = seed
            .lines()
            .filter_map(|line| line.strip_prefix("denied-peer-ip="))
            .collect();
        assert_eq!(items.len(), 9);
        let denied = IpRangeSet::parse(items).unwrap();
        let deny = [
            "10.0.0.1",
            "192.168.1.1",
            "172.31.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
            "2001:1ff::1",
            "::ffff:10.0.0.1",
        ];
        let allow = [
            "8.8.8.8",
            "172.32.0.1",
            "2001:200::1",
            "2a00:1450::1",
            "1.1.1.1",
        ];
        for peer in deny {
            assert!(denied.matches(ip(peer)), "{peer} should be denied");
        }
        for peer in allow {
            assert!(!denied.matches(ip(peer)), "{peer} should pass");
        }
    }

    #[test]
    fn special_purpose_defaults() {
        let special = IpRangeSet::special_purpose();
        let denied = [
            "0.0.0.0",
            "0.1.2.3",
            "10.9.8.7",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "100::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            // The rest of ::/8, local-use NAT64, documentation.
            "::2",
            "ff::1",
            "::ffff:0:808:808",
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::",
            "2001:db8::1",
        ];
        for peer in denied {
            assert!(special.matches(ip(peer)), "{peer} should be special");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "198.20.0.1",
            "2a00:1450::1",
            "2001:4860::8888",
            "100::1:0:0:0:1",
            "64:ff9b::808:808",
        ];
        for peer in public {
            assert!(!special.matches(ip(peer)), "{peer} is public");
        }
        // Encodings of 127.0.0.1 and metadata inside IPv6.
        for sneaky in [
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::ffff:169.254.169.254",
        ] {
            assert!(special.matches(ip(sneaky)), "{sneaky}");
        }
        let never: IpRangeSet = NEVER_ALLOWED.iter().copied().collect();
        for peer in [
            "169.254.169.254",
            "0.0.0.0",
            "::",
            "fe80::1",
            "fd00:ec2::254",
        ] {
            assert!(never.matches(ip(peer)), "{peer}");
        }
        assert!(
            !never.matches(ip("127.0.0.1")),
            "loopback can be opened by allow-loopback-peers"
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "1.2.3.4",
            "10.0.0.0-10.255.255.255",
            "::1",
            "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let range: IpRange = text.parse().unwrap();
            assert_eq!(range.to_string(), text);
        }
    }
}
