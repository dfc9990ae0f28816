use super::*;

fn peer(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// `ip` on a port no rule cares about.
fn at(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 9000)
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
        ("64:ff9b::808:808", Ok(())),
        ("127.0.0.1", Err(Denial::Loopback)),
        ("::1", Err(Denial::Loopback)),
        ("::ffff:127.0.0.1", Err(Denial::Loopback)),
        ("::127.0.0.1", Err(Denial::Loopback)),
        ("::ffff:0:127.0.0.1", Err(Denial::Loopback)),
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
        // The rest of ::/8, local-use NAT64, IPv4-translated, documentation.
        ("::1:0:0:2", Err(Denial::SpecialPurpose)),
        ("ff::1", Err(Denial::SpecialPurpose)),
        ("::ffff:8.8.8.8", Err(Denial::SpecialPurpose)),
        ("::ffff:0:8.8.8.8", Err(Denial::SpecialPurpose)),
        ("64:ff9b:1:808:8:800::", Err(Denial::SpecialPurpose)),
        ("2001:db8::1", Err(Denial::SpecialPurpose)),
    ];
    for (ip, expected) in cases {
        assert_eq!(policy.check(at(ip)), expected, "{ip}");
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
    assert_eq!(policy.check(at("127.0.0.1")), Ok(()));
    assert_eq!(policy.check(at("::1")), Ok(()));
    assert_eq!(policy.check(at("127.0.0.2")), Err(Denial::DeniedList));
    assert_eq!(policy.check(at("8.8.4.4")), Err(Denial::DeniedList));
    assert_eq!(policy.check(at("10.1.1.1")), Ok(()));
    assert_eq!(policy.check(at("224.0.0.1")), Ok(()));
    assert_eq!(policy.check(at("192.168.0.1")), Err(Denial::SpecialPurpose));
    // Metadata stays closed even when listed as allowed.
    assert_eq!(
        policy.check(at("169.254.169.254")),
        Err(Denial::NeverAllowed)
    );
    // Allow beats deny, as in coturn.
    let both = PeerPolicy::new(set(&["8.8.8.8"]), set(&["8.0.0.0/8"]), false, true);
    assert_eq!(both.check(at("8.8.8.8")), Ok(()));
    assert_eq!(both.check(at("8.8.4.4")), Err(Denial::DeniedList));
}

/// An allow entry (or the loopback and multicast switches) opens the address as
/// written: the IPv6 forms that carry it lead elsewhere (a 6to4 or Teredo relay, a NAT64
/// translator, nowhere), so they keep meeting the deny lists.
#[test]
fn allow_entries_open_only_the_address_reached() {
    let policy = PeerPolicy::new(set(&["127.0.0.1", "10.0.0.5"]), set(&[]), true, false);
    assert_eq!(policy.check(at("127.0.0.1")), Ok(()));
    assert_eq!(policy.check(at("10.0.0.5")), Ok(()));
    assert_eq!(policy.check(at("224.0.0.1")), Ok(()));
    for carrier in [
        // 127.0.0.1 as 6to4, Teredo, NAT64 (well-known and local-use), IPv4-compatible,
        // IPv4-mapped and IPv4-translated.
        "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "64:ff9b::7f00:1",
        "64:ff9b:1:7f00:0:100::",
        "::127.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:0:127.0.0.1",
        // The same for 10.0.0.5 and for a multicast group.
        "2002:a00:5::1",
        "2001:0:4136:e378:8000:63bf:f5ff:fffa",
        "64:ff9b::a00:5",
        "::10.0.0.5",
        "::ffff:0:10.0.0.5",
        "2002:e000:1::1",
    ] {
        assert_eq!(
            policy.check(at(carrier)),
            Err(Denial::SpecialPurpose),
            "{carrier}"
        );
    }
    // An IPv6 entry opens that IPv6 address, not the IPv4 address it carries.
    let v6 = PeerPolicy::new(set(&["2002:a00:5::1"]), set(&[]), false, true);
    assert_eq!(v6.check(at("2002:a00:5::1")), Ok(()));
    assert_eq!(v6.check(at("10.0.0.5")), Err(Denial::SpecialPurpose));
}

fn own_host_policy() -> PeerPolicy {
    // 203.0.113.0/24 (documentation, denied by default) stands for public addresses and
    // is opened like an operator's peer network; 198.51.100.7 is this host's public
    // address, 10.0.0.5 its private one behind `external-ip=198.51.100.7/10.0.0.5`.
    let mut policy = PeerPolicy::new(
        set(&["203.0.113.0/24", "198.51.100.7", "10.0.0.5"]),
        set(&[]),
        false,
        true,
    );
    policy.own_host = OwnHost {
        addresses: set(&["198.51.100.7", "10.0.0.5", "203.0.113.9", "127.0.0.1"]),
        hairpin: set(&["10.0.0.5"]),
        relay_ports: 49152..=65535,
        open_ports: vec![7882..=7882],
        service_ports: vec![50000],
    };
    policy
}

#[test]
fn own_host_is_closed_but_on_relay_and_opened_ports() {
    let policy = own_host_policy();
    let cases = [
        // SSH, Redis, the metrics listener on any own address: closed, allow entries
        // notwithstanding.
        ("198.51.100.7:22", Err(Denial::OwnHost)),
        ("10.0.0.5:6379", Err(Denial::OwnHost)),
        ("203.0.113.9:9641", Err(Denial::OwnHost)),
        ("[::ffff:203.0.113.9]:22", Err(Denial::OwnHost)),
        // Another allocation's relay port, and the opened LiveKit port.
        ("198.51.100.7:49152", Ok(())),
        ("198.51.100.7:65535", Ok(())),
        ("198.51.100.7:7882", Ok(())),
        ("203.0.113.9:60000", Ok(())),
        // A listener inside the relay range stays closed.
        ("198.51.100.7:50000", Err(Denial::OwnHost)),
        // Hairpin to the private half: relay and opened ports only.
        ("10.0.0.5:49200", Ok(())),
        ("10.0.0.5:7882", Ok(())),
        ("10.0.0.5:7881", Err(Denial::OwnHost)),
        // Not this host: the port does not matter.
        ("203.0.113.10:22", Ok(())),
        ("10.0.0.6:49200", Err(Denial::SpecialPurpose)),
        // Loopback is refused as loopback first.
        ("127.0.0.1:60000", Err(Denial::Loopback)),
    ];
    for (peer_text, expected) in cases {
        assert_eq!(policy.check(peer(peer_text)), expected, "{peer_text}");
    }
}

#[test]
fn hairpin_alone_opens_the_private_half_on_relay_ports() {
    let mut policy = own_host_policy();
    policy.allowed = IpRangeSet::new();
    assert_eq!(policy.check(peer("10.0.0.5:49200")), Ok(()));
    assert_eq!(policy.check(peer("10.0.0.5:7882")), Ok(()));
    assert_eq!(policy.check(peer("10.0.0.5:22")), Err(Denial::OwnHost));
    assert_eq!(
        policy.check(peer("198.51.100.7:49200")),
        Err(Denial::SpecialPurpose),
        "a documentation address stays denied by the default list"
    );
}

#[test]
fn allow_loopback_peers_opens_the_hosts_loopback() {
    let mut policy = own_host_policy();
    policy.allow_loopback = true;
    // The tests-only switch says "clients may reach this host's loopback".
    assert_eq!(policy.check(peer("127.0.0.1:6379")), Ok(()));
    assert_eq!(policy.check(peer("[::1]:6379")), Ok(()));
    // Every other own address stays closed.
    assert_eq!(
        policy.check(peer("198.51.100.7:6379")),
        Err(Denial::OwnHost)
    );
    assert_eq!(
        policy.check(peer("[::ffff:127.0.0.1]:6379")),
        Err(Denial::OwnHost)
    );
}

#[test]
fn permissions_are_checked_by_ip() {
    let policy = own_host_policy();
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    assert_eq!(policy.check_permission(ip("198.51.100.7")), Ok(()));
    assert_eq!(policy.check_permission(ip("10.0.0.5")), Ok(()));
    assert_eq!(policy.check_permission(ip("203.0.113.10")), Ok(()));
    assert_eq!(
        policy.check_permission(ip("10.0.0.6")),
        Err(Denial::SpecialPurpose)
    );
    let mut closed = own_host_policy();
    closed.own_host.relay_ports = 50000..=50000;
    closed.own_host.open_ports.clear();
    assert_eq!(
        closed.check_permission(ip("198.51.100.7")),
        Err(Denial::OwnHost)
    );
}
