//! Peer policy through requests: the own-host rule with ports, and IPv4-mapped peers.

use super::*;
use crate::policy::OwnHost;

/// Send indication to `peer`.
fn send_indication(peer: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    MessageWriter::new(
        &mut bytes,
        Method::SEND,
        Class::Indication,
        TransactionId([42; 12]),
    )
    .xor_address(AttrType::XOR_PEER_ADDRESS, peer.parse().unwrap())
    .attr(AttrType::DATA, b"media");
    bytes
}

/// The fake relays bind 198.51.100.1 from port 50000: that is this host, opened as an
/// operator would open a public relay address, and 203.0.113.5 is its other address.
fn own_host_config() -> ServerConfig {
    let mut config = public_peer_config();
    config.policy.allowed = IpRangeSet::parse(["203.0.113.0/24", "198.51.100.1"]).unwrap();
    config.policy.own_host = OwnHost {
        addresses: IpRangeSet::parse(["198.51.100.1", "203.0.113.5"]).unwrap(),
        relay_ports: 50_000..=50_100,
        ..OwnHost::default()
    };
    config
}

#[test]
fn the_relay_reaches_its_own_host_only_on_relay_ports() {
    let mut h = Harness::new(own_host_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    let (alice_id, _) = h.allocate(&mut alice);
    let (_, bob_relay) = h.allocate(&mut bob);
    assert_eq!(bob_relay.ip(), "198.51.100.1".parse::<IpAddr>().unwrap());

    // SSH, Redis and the metrics port of this host: refused, allow entry or not.
    for closed in ["198.51.100.1:22", "203.0.113.5:6379", "203.0.113.5:9641"] {
        assert_eq!(
            code_of(&h.permit(&mut alice, closed)),
            Some(403),
            "{closed}"
        );
        assert_eq!(
            h.bind_channel(&mut alice, 0x4001, closed),
            Some(403),
            "{closed}"
        );
    }
    // Another client's relay address: client to client through one relay.
    assert_eq!(code_of(&h.permit(&mut alice, &bob_relay.to_string())), None);
    let (transmit, _) = h
        .send(alice.tuple, &send_indication(&bob_relay.to_string()))
        .expect("relayed to bob's relay port");
    assert_eq!(
        transmit.destination,
        Destination::Peer {
            socket: h.server.allocation(alice_id).unwrap().relay.socket,
            peer: bob_relay
        }
    );
    // The permission is for the IP (RFC 8656 §9), but every send names its port.
    assert!(
        h.send(alice.tuple, &send_indication("198.51.100.1:22"))
            .is_none(),
        "Send to a closed port of this host"
    );
    assert_eq!(
        h.bind_channel(&mut alice, 0x4002, "198.51.100.1:22"),
        Some(403)
    );
    assert_eq!(
        h.bind_channel(&mut alice, 0x4002, &bob_relay.to_string()),
        None
    );
    // Another host of the opened range: every port.
    assert_eq!(code_of(&h.permit(&mut alice, "203.0.113.6:22")), None);
}

/// IPv6 relay sockets are IPv6-only: an IPv4-mapped peer cannot be reached from them, so
/// it is answered 443 like any peer of a family the allocation lacks, before the policy
/// (whose allow entries would otherwise match the IPv4 address inside).
#[test]
fn ipv4_mapped_peers_get_443_on_ipv6_allocations() {
    let mut config = public_peer_config();
    config.relay_ipv6 = true;
    config.relay_ipv4 = false;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let v6 = (AttrType::REQUESTED_ADDRESS_FAMILY, vec![2, 0, 0, 0]);
    let relay = relayed(&h.request(&mut alice, Method::ALLOCATE, &[udp(), v6]));
    assert!(relay.is_ipv6());
    let mapped = "[::ffff:203.0.113.77]:9000";
    assert_eq!(code_of(&h.permit(&mut alice, mapped)), Some(443));
    assert_eq!(h.bind_channel(&mut alice, 0x4001, mapped), Some(443));
    assert!(h.send(alice.tuple, &send_indication(mapped)).is_none());
    assert_eq!(h.server.stats().upstream.packets, 0);
}
