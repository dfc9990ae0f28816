//! Dual allocations (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY) through the core.

use super::*;
use crate::DefaultFamily;

const PEER6: &str = "[2001:db8:77::9]:9000";

fn dual_config() -> ServerConfig {
    let mut config = public_peer_config();
    config.relay_ipv6 = true;
    config.policy.allowed = IpRangeSet::parse(["203.0.113.0/24", "2001:db8:77::/48"]).unwrap();
    config
}

fn additional(family: u8) -> (AttrType, Vec<u8>) {
    (AttrType::ADDITIONAL_ADDRESS_FAMILY, vec![family, 0, 0, 0])
}

fn relays_of(bytes: &[u8]) -> Vec<SocketAddr> {
    let message = Message::parse(bytes).unwrap();
    message
        .attrs(AttrType::XOR_RELAYED_ADDRESS)
        .map(|value| decode_xor(value, &message.transaction()).unwrap())
        .collect()
}

/// ADDRESS-ERROR-CODE of `kind` as (family, code).
fn address_error(bytes: &[u8], kind: AttrType) -> Option<(u8, u16)> {
    let message = Message::parse(bytes).unwrap();
    let value = message.attr(kind)?;
    Some((value[0], u16::from(value[2]) * 100 + u16::from(value[3])))
}

#[test]
fn a_dual_allocation_relays_each_family_from_its_own_address() {
    let mut h = Harness::new(dual_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = h.request(&mut alice, Method::ALLOCATE, &[udp(), additional(2)]);
    assert_eq!(code_of(&response), None);
    let relays = relays_of(&response);
    assert_eq!(relays.len(), 2, "XOR-RELAYED-ADDRESS twice");
    assert!(relays[0].is_ipv4() && relays[1].is_ipv6());
    assert_eq!(address_error(&response, AttrType::ADDRESS_ERROR_CODE), None);
    let id = h.relays.bound[&relays[0]];
    assert_eq!(h.relays.bound[&relays[1]], id, "one allocation");

    // Permissions and channels per family, in one request each.
    let both = [xor_peer(0, PEER), xor_peer(0, PEER6)];
    let permitted = h.request(&mut alice, Method::CREATE_PERMISSION, &both);
    assert_eq!(code_of(&permitted), None);
    assert_eq!(h.bind_channel(&mut alice, 0x4001, PEER6), None);
    let now = h.now;
    let mut data = vec![0x40, 0x01, 0, 4];
    data.extend_from_slice(b"ping");
    let (transmit, _) = h.send(alice.tuple, &data).expect("relayed");
    assert_eq!(
        transmit.destination,
        Destination::Peer {
            socket: h.server.allocation(id).unwrap().additional.unwrap().socket,
            peer: PEER6.parse().unwrap()
        }
    );
    let (back, _) = h.peer_sends(id, PEER6, b"pong").expect("to the client");
    assert_eq!(back.destination, Destination::Client(alice.tuple));
    assert!(
        h.server
            .allocation(id)
            .unwrap()
            .permits(PEER.parse::<SocketAddr>().unwrap().ip(), now)
    );

    // Refresh may name either family; deleting releases both addresses.
    let v6 = (AttrType::REQUESTED_ADDRESS_FAMILY, vec![2, 0, 0, 0]);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::REFRESH, &[v6])),
        None
    );
    let zero = (AttrType::LIFETIME, vec![0, 0, 0, 0]);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::REFRESH, &[zero])),
        None
    );
    let mut released = h.relays.released.clone();
    released.sort();
    let mut expected = relays.clone();
    expected.sort();
    assert_eq!(released, expected);
}

/// A dual allocation names both families: `allocation-default-address-family` does not
/// apply (coturn alike), and the IPv4 address still comes first.
#[test]
fn the_default_family_leaves_dual_allocations_alone() {
    for default_family in [DefaultFamily::Ipv6, DefaultFamily::Keep] {
        let mut config = dual_config();
        config.default_family = default_family;
        let mut h = Harness::new(config);
        let mut alice = h.client("[2001:db8:1::1]:5000", "@alice:example.org", UNIX + 7200);
        let response = h.request(&mut alice, Method::ALLOCATE, &[udp(), additional(2)]);
        let relays = relays_of(&response);
        assert_eq!(relays.len(), 2, "{default_family:?}");
        assert!(
            relays[0].is_ipv4() && relays[1].is_ipv6(),
            "{default_family:?}"
        );
    }
}

#[test]
fn each_family_advertises_its_own_external_ip() {
    let mut config = dual_config();
    config.external_ip = vec![
        "192.0.2.200".parse().unwrap(),
        "2001:db8:ff::200".parse().unwrap(),
    ];
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = h.request(&mut alice, Method::ALLOCATE, &[udp(), additional(2)]);
    let public: Vec<IpAddr> = relays_of(&response).iter().map(SocketAddr::ip).collect();
    assert_eq!(
        public,
        [
            "192.0.2.200".parse::<IpAddr>().unwrap(),
            "2001:db8:ff::200".parse().unwrap()
        ]
    );
}

#[test]
fn a_family_that_cannot_be_had_is_reported_in_address_error_code() {
    // No IPv6 relays: the IPv4 half alone, and 440 for IPv6.
    let mut config = dual_config();
    config.relay_ipv6 = false;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = h.request(&mut alice, Method::ALLOCATE, &[udp(), additional(2)]);
    assert_eq!(code_of(&response), None);
    assert_eq!(relays_of(&response).len(), 1);
    assert_eq!(
        address_error(&response, AttrType::ADDRESS_ERROR_CODE),
        Some((2, 440))
    );
    let answer = h.request(&mut alice, Method::CREATE_PERMISSION, &[xor_peer(0, PEER6)]);
    assert_eq!(code_of(&answer), Some(443), "no IPv6 relay address");

    // No IPv6 port free: 508 for IPv6.
    let mut h = Harness::new(dual_config());
    h.relays.fail_ipv6 = true;
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    let response = h.request(&mut bob, Method::ALLOCATE, &[udp(), additional(2)]);
    assert_eq!(
        address_error(&response, AttrType::ADDRESS_ERROR_CODE),
        Some((2, 508))
    );

    // No IPv4 relays: the IPv6 half alone, and 440 for IPv4.
    let mut config = dual_config();
    config.relay_ipv4 = false;
    let mut h = Harness::new(config);
    let mut carol = h.client("192.0.2.3:5000", "@carol:example.org", UNIX + 7200);
    let response = h.request(&mut carol, Method::ALLOCATE, &[udp(), additional(2)]);
    let relays = relays_of(&response);
    assert_eq!(relays.len(), 1);
    assert!(relays[0].is_ipv6());
    assert_eq!(
        address_error(&response, AttrType::ADDRESS_ERROR_CODE),
        Some((1, 440))
    );
}

#[test]
fn coturns_draft_attribute_is_answered_in_kind() {
    let mut config = dual_config();
    config.relay_ipv6 = false;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let draft = (AttrType::ADDITIONAL_ADDRESS_FAMILY_DRAFT, vec![2, 0, 0, 0]);
    let response = h.request(&mut alice, Method::ALLOCATE, &[udp(), draft]);
    assert_eq!(
        address_error(&response, AttrType::ADDRESS_ERROR_CODE_DRAFT),
        Some((2, 440))
    );
    assert_eq!(address_error(&response, AttrType::ADDRESS_ERROR_CODE), None);
}

#[test]
fn malformed_dual_requests_are_400() {
    let mut h = Harness::new(dual_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let v4 = (AttrType::REQUESTED_ADDRESS_FAMILY, vec![1, 0, 0, 0]);
    let reserve = (AttrType::EVEN_PORT, vec![0x80, 0, 0, 0]);
    for attrs in [
        vec![udp(), additional(1)],
        vec![udp(), additional(2), v4],
        vec![udp(), additional(2), reserve],
        vec![udp(), (AttrType::ADDITIONAL_ADDRESS_FAMILY, vec![2])],
    ] {
        let response = h.request(&mut alice, Method::ALLOCATE, &attrs);
        assert_eq!(code_of(&response), Some(400), "{attrs:?}");
    }
    assert!(h.relays.bound.is_empty());
}
