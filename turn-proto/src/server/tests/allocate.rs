//! Allocate (RFC 8656 §7.2): success and refusals, retransmissions, quotas, reservations,
//! `external-ip`, alternate servers and drain.

use super::*;

#[test]
fn allocate_with_rest_credentials() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 3600);
    let challenge = h.unauthenticated(&mut alice, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&challenge).unwrap();
    assert_eq!(error_code(&message), Some(401));
    assert_eq!(message.attr(AttrType::REALM), Some(REALM.as_bytes()));
    assert!(message.attr(AttrType::NONCE).is_some());
    assert!(!message.has_integrity(), "401 carries no MESSAGE-INTEGRITY");

    let response = h.request(&mut alice, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&response).unwrap();
    assert_eq!(message.class(), Class::Success);
    let key = long_term_key(&alice.username, REALM, &alice.password);
    assert!(
        message.verify_integrity(&key),
        "response signed with the client's key"
    );
    assert_eq!(lifetime_of(&response), 600);
    let mapped = decode_xor(
        message.attr(AttrType::XOR_MAPPED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(mapped, alice.tuple.client);
    let relay = decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(relay.ip(), "198.51.100.1".parse::<IpAddr>().unwrap());
    assert_eq!(h.server.allocation_count(), 1);
    let id = h.relays.bound[&relay];
    assert_eq!(
        &*h.server.allocation(id).unwrap().user,
        "@alice:example.org"
    );
}

#[test]
fn allocate_errors() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[])),
        Some(400)
    );
    let sctp = (AttrType::REQUESTED_TRANSPORT, vec![132, 0, 0, 0]);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[sctp])),
        Some(442)
    );
    let v6 = (AttrType::REQUESTED_ADDRESS_FAMILY, vec![2, 0, 0, 0]);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[udp(), v6])),
        Some(440)
    );
    let bogus = (AttrType::REQUESTED_ADDRESS_FAMILY, vec![3, 0, 0, 0]);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[udp(), bogus])),
        Some(440)
    );
    let token = (AttrType::RESERVATION_TOKEN, vec![1; 8]);
    let even = (AttrType::EVEN_PORT, vec![0x80]);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[udp(), token.clone(), even])),
        Some(400)
    );
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[udp(), token])),
        Some(508)
    );
    let unknown = (AttrType(0x7777), vec![1, 2, 3, 4]);
    let response = h.request(&mut alice, Method::ALLOCATE, &[udp(), unknown]);
    let message = Message::parse(&response).unwrap();
    assert_eq!(error_code(&message), Some(420));
    assert_eq!(
        message.attr(AttrType::UNKNOWN_ATTRIBUTES),
        Some(&[0x77, 0x77][..])
    );
    h.relays.fail = true;
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[udp()])),
        Some(508)
    );
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn existing_allocation_rules() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let first = h.request(&mut alice, Method::ALLOCATE, &[udp()]);
    let first_tid = alice.next_tid;
    // A retransmission (same transaction) gets the same relay; a new one gets 437.
    let retransmit = signed(&mut alice, Method::ALLOCATE, &[udp()], Some(first_tid));
    let (_, again) = h.send(alice.tuple, &retransmit).unwrap();
    let relay = |bytes: &[u8]| {
        let m = Message::parse(bytes).unwrap();
        decode_xor(
            m.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
            &m.transaction(),
        )
        .unwrap()
    };
    assert_eq!(relay(&again), relay(&first));
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[udp()])),
        Some(437)
    );
    // Another user on the same 5-tuple: 437 for Allocate, 441 for the rest.
    let mut eve = h.client("192.0.2.1:5000", "@eve:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&h.request(&mut eve, Method::ALLOCATE, &[udp()])),
        Some(437)
    );
    assert_eq!(
        code_of(&h.request(&mut eve, Method::REFRESH, &[])),
        Some(441)
    );
    // Requests on a 5-tuple without allocation: 437.
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    assert_eq!(code_of(&h.permit(&mut bob, PEER)), Some(437));
    assert_eq!(h.server.allocation_count(), 1);
}

#[test]
fn quotas() {
    let mut config = rest_config();
    config.user_quota = 1;
    config.total_quota = 2;
    let mut h = Harness::new(config);
    let mut a1 = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    // Same user id, other expiry: counted together (timestamp stripped).
    let mut a2 = h.client("192.0.2.1:5001", "@alice:example.org", UNIX + 3600);
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    let mut carol = h.client("192.0.2.3:5000", "@carol:example.org", UNIX + 7200);
    h.allocate(&mut a1);
    assert_eq!(
        code_of(&h.request(&mut a2, Method::ALLOCATE, &[udp()])),
        Some(486)
    );
    h.allocate(&mut bob);
    assert_eq!(
        code_of(&h.request(&mut carol, Method::ALLOCATE, &[udp()])),
        Some(486)
    );
    h.request(
        &mut a1,
        Method::REFRESH,
        &[(AttrType::LIFETIME, vec![0; 4])],
    );
    h.allocate(&mut carol);
    assert_eq!(h.server.stats().quota_refusals, 2);
}

#[test]
fn even_port_reservation() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.relays.next_port = 1;
    let response = h.request(
        &mut alice,
        Method::ALLOCATE,
        &[udp(), (AttrType::EVEN_PORT, vec![0x80])],
    );
    let message = Message::parse(&response).unwrap();
    let relay = decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(relay.port() % 2, 0);
    let token = message
        .attr(AttrType::RESERVATION_TOKEN)
        .expect("token")
        .to_vec();
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    let response = h.request(
        &mut bob,
        Method::ALLOCATE,
        &[udp(), (AttrType::RESERVATION_TOKEN, token.clone())],
    );
    let message = Message::parse(&response).unwrap();
    let second = decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(second.port(), relay.port() + 1);
    // A token is good once.
    let mut carol = h.client("192.0.2.3:5000", "@carol:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&h.request(
            &mut carol,
            Method::ALLOCATE,
            &[udp(), (AttrType::RESERVATION_TOKEN, token)]
        )),
        Some(508)
    );
}

#[test]
fn unclaimed_reservation_is_released() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.request(
        &mut alice,
        Method::ALLOCATE,
        &[udp(), (AttrType::EVEN_PORT, vec![0x80])],
    );
    h.advance(31);
    assert_eq!(
        h.relays.released.len(),
        1,
        "reserved port closed after 30 s"
    );
}

#[test]
fn retransmitted_allocate_repeats_ticket_and_reservation() {
    let mut config = rest_config();
    config.mobility = true;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let attrs = [
        udp(),
        (AttrType::EVEN_PORT, vec![0x80]),
        (AttrType::MOBILITY_TICKET, vec![]),
    ];
    let first = h.request(&mut alice, Method::ALLOCATE, &attrs);
    let tid = alice.next_tid;
    let again = signed(&mut alice, Method::ALLOCATE, &attrs, Some(tid));
    let (_, second) = h.send(alice.tuple, &again).unwrap();
    let attr = |bytes: &[u8], kind| {
        Message::parse(bytes)
            .unwrap()
            .attr(kind)
            .map(<[u8]>::to_vec)
    };
    assert!(attr(&first, AttrType::MOBILITY_TICKET).is_some());
    assert_eq!(
        attr(&second, AttrType::MOBILITY_TICKET),
        attr(&first, AttrType::MOBILITY_TICKET)
    );
    assert!(attr(&first, AttrType::RESERVATION_TOKEN).is_some());
    assert_eq!(
        attr(&second, AttrType::RESERVATION_TOKEN),
        attr(&first, AttrType::RESERVATION_TOKEN)
    );
}

#[test]
fn external_ip_mapping() {
    let mut config = public_peer_config();
    config.external_ips = vec![(
        "198.51.100.1".parse().unwrap(),
        "192.0.2.200".parse().unwrap(),
    )];
    config
        .policy
        .allowed
        .insert("198.51.100.1".parse().unwrap());
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = h.request(&mut alice, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&response).unwrap();
    let relay = decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(
        relay.ip(),
        "192.0.2.200".parse::<IpAddr>().unwrap(),
        "public address advertised"
    );
    // Naming the public relay address as a peer means the private one (hairpin).
    h.bind_channel(&mut alice, 0x4000, "192.0.2.200:50002");
    let mut frame = Vec::new();
    assert!(ChannelData::write(0x4000, b"loop", false, &mut frame));
    let (transmit, _) = h.send(alice.tuple, &frame).unwrap();
    assert!(matches!(
        transmit.destination,
        Destination::Peer { peer, .. } if peer == "198.51.100.1:50002".parse().unwrap()
    ));
}

#[test]
fn single_external_ip_without_relay_ip_is_advertised() {
    let mut config = rest_config();
    config.external_ip = vec!["192.0.2.200".parse().unwrap()];
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = h.request(&mut alice, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&response).unwrap();
    let relay = decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(relay.ip(), "192.0.2.200".parse::<IpAddr>().unwrap());
    assert!(relay.port() >= 50_000, "the relay port is kept");
}

#[test]
fn alternate_server_redirects_round_robin() {
    let mut config = rest_config();
    config.alternate_servers = vec![
        "192.0.2.21:3478".parse().unwrap(),
        "[2001:db8::1]:3478".parse().unwrap(),
        "192.0.2.22:3478".parse().unwrap(),
    ];
    let mut h = Harness::new(config);
    let mut seen = Vec::new();
    for port in 0..3 {
        let mut client = h.client(
            &format!("192.0.2.1:{}", 6000 + port),
            "@a:example.org",
            UNIX + 60,
        );
        let response = h.request(&mut client, Method::ALLOCATE, &[udp()]);
        let message = Message::parse(&response).unwrap();
        assert_eq!(error_code(&message), Some(300));
        let key = long_term_key(&client.username, REALM, &client.password);
        assert!(message.verify_integrity(&key), "300 is authenticated");
        let value = message.attr(AttrType::ALTERNATE_SERVER).unwrap();
        assert_eq!(value[1], 1, "only servers of the client's family");
        seen.push(u16::from_be_bytes([value[2], value[3]]) as u32 + u32::from(value[7]));
    }
    assert_eq!(
        seen,
        vec![3478 + 21, 3478 + 22, 3478 + 21],
        "round robin over IPv4 entries"
    );
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn tls_clients_are_redirected_to_tls_alternate_servers() {
    let mut config = rest_config();
    config.alternate_servers = vec!["192.0.2.21:3478".parse().unwrap()];
    config.tls_alternate_servers = vec!["192.0.2.31:5349".parse().unwrap()];
    let mut h = Harness::new(config);
    for (port, transport, expected) in [
        (6000, Transport::Udp, "192.0.2.21:3478"),
        (6001, Transport::Tcp, "192.0.2.21:3478"),
        (6002, Transport::Tls, "192.0.2.31:5349"),
    ] {
        let mut client = h.client(&format!("192.0.2.1:{port}"), "@a:example.org", UNIX + 60);
        client.tuple.transport = transport;
        let response = h.request(&mut client, Method::ALLOCATE, &[udp()]);
        let message = Message::parse(&response).unwrap();
        assert_eq!(error_code(&message), Some(300), "{transport:?}");
        let value = message.attr(AttrType::ALTERNATE_SERVER).unwrap();
        let server = SocketAddr::from((
            [value[4], value[5], value[6], value[7]],
            u16::from_be_bytes([value[2], value[3]]),
        ));
        assert_eq!(server, expected.parse().unwrap(), "{transport:?}");
    }
    // Each list serves its own clients only, as in coturn: without tls-alternate-server, TLS
    // clients are not redirected.
    let mut config = rest_config();
    config.alternate_servers = vec!["192.0.2.21:3478".parse().unwrap()];
    let mut h = Harness::new(config);
    let mut client = h.client("192.0.2.1:6003", "@a:example.org", UNIX + 60);
    client.tuple.transport = Transport::Tls;
    let response = h.request(&mut client, Method::ALLOCATE, &[udp()]);
    assert_eq!(code_of(&response), None, "allocated here");
}

/// coturn 4.17's `udp-alternate-server` and `tcp-alternate-server` take precedence over
/// `alternate-server` for their transport; a transport without its own list keeps it.
#[test]
fn udp_and_tcp_alternate_servers_take_precedence() {
    let mut config = rest_config();
    config.alternate_servers = vec!["192.0.2.21:3478".parse().unwrap()];
    config.udp_alternate_servers = vec!["192.0.2.41:3478".parse().unwrap()];
    let with_udp = config.clone();
    config.udp_alternate_servers.clear();
    config.tcp_alternate_servers = vec!["192.0.2.51:3478".parse().unwrap()];
    for (config, port, transport, expected) in [
        (&with_udp, 6000, Transport::Udp, "192.0.2.41:3478"),
        (&with_udp, 6001, Transport::Tcp, "192.0.2.21:3478"),
        (&config, 6002, Transport::Udp, "192.0.2.21:3478"),
        (&config, 6003, Transport::Tcp, "192.0.2.51:3478"),
    ] {
        let mut h = Harness::new(config.clone());
        let mut client = h.client(&format!("192.0.2.1:{port}"), "@a:example.org", UNIX + 60);
        client.tuple.transport = transport;
        let response = h.request(&mut client, Method::ALLOCATE, &[udp()]);
        let message = Message::parse(&response).unwrap();
        assert_eq!(error_code(&message), Some(300), "{transport:?}");
        let value = message.attr(AttrType::ALTERNATE_SERVER).unwrap();
        let server = SocketAddr::from((
            [value[4], value[5], value[6], value[7]],
            u16::from_be_bytes([value[2], value[3]]),
        ));
        assert_eq!(server, expected.parse().unwrap(), "{transport:?}");
    }
}

#[test]
fn draining_refuses_new_allocations_only() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.allocate(&mut alice);
    h.server.set_draining(true);
    assert!(h.server.is_draining());
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&h.request(&mut bob, Method::ALLOCATE, &[udp()])),
        Some(486)
    );
    assert_eq!(
        code_of(&h.request(&mut alice, Method::REFRESH, &[])),
        None,
        "existing ones live on"
    );
}

#[test]
fn expiry_releases_the_relay() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let (id, relay) = h.allocate(&mut alice);
    h.advance(599);
    assert!(h.server.allocation(id).is_some());
    h.advance(2);
    assert!(h.server.allocation(id).is_none());
    assert_eq!(h.relays.released, vec![relay]);
    assert_eq!(h.server.stats().allocations_ended, 1);
    // The slot is reused with a new generation; the old id stays dead.
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    let (new_id, _) = h.allocate(&mut bob);
    assert_eq!(new_id.index, id.index);
    assert_ne!(new_id, id);
    assert!(h.peer_sends(id, PEER, b"x").is_none());
}

/// `allocation-default-address-family` (coturn's `-A`): the relay family of an Allocate
/// without REQUESTED-ADDRESS-FAMILY; a requested family always wins.
mod default_family {
    use std::sync::atomic::{AtomicU16, Ordering};

    use super::*;
    use crate::DefaultFamily;

    const CLIENT4: &str = "192.0.2.1";
    const CLIENT6: &str = "2001:db8:1::1";

    /// A new client port for each Allocate, so none meets an earlier allocation.
    static NEXT_PORT: AtomicU16 = AtomicU16::new(5000);

    fn harness(default_family: DefaultFamily) -> Harness {
        let mut config = rest_config();
        config.relay_ipv6 = true;
        config.default_family = default_family;
        Harness::new(config)
    }

    /// Allocates for a new client at `ip` (reached on an address of its family) with
    /// `family` as REQUESTED-ADDRESS-FAMILY, if any: the answer.
    fn allocate(h: &mut Harness, ip: &str, family: Option<u8>) -> Vec<u8> {
        let ip: IpAddr = ip.parse().unwrap();
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let address = SocketAddr::new(ip, port).to_string();
        let mut client = h.client(&address, "@alice:example.org", UNIX + 7200);
        if client.tuple.client.is_ipv6() {
            client.tuple.server = "[2001:db8::10]:3478".parse().unwrap();
        }
        let mut attrs = vec![udp()];
        attrs.extend(family.map(|f| (AttrType::REQUESTED_ADDRESS_FAMILY, vec![f, 0, 0, 0])));
        h.request(&mut client, Method::ALLOCATE, &attrs)
    }

    fn relay_is_ipv6(h: &mut Harness, ip: &str, family: Option<u8>) -> bool {
        relayed(&allocate(h, ip, family)).is_ipv6()
    }

    #[test]
    fn ipv4_is_the_default_for_clients_of_either_family() {
        let mut h = harness(DefaultFamily::Ipv4);
        assert!(!relay_is_ipv6(&mut h, CLIENT4, None));
        assert!(!relay_is_ipv6(&mut h, CLIENT6, None));
        assert!(relay_is_ipv6(&mut h, CLIENT4, Some(2)));
    }

    #[test]
    fn ipv6_gives_ipv6_relays_unless_ipv4_is_asked_for() {
        let mut h = harness(DefaultFamily::Ipv6);
        assert!(relay_is_ipv6(&mut h, CLIENT4, None));
        assert!(relay_is_ipv6(&mut h, CLIENT6, None));
        assert!(!relay_is_ipv6(&mut h, CLIENT4, Some(1)));
        assert!(!relay_is_ipv6(&mut h, CLIENT6, Some(1)));
    }

    #[test]
    fn keep_follows_the_client_transport_unless_a_family_is_asked_for() {
        let mut h = harness(DefaultFamily::Keep);
        assert!(!relay_is_ipv6(&mut h, CLIENT4, None));
        assert!(relay_is_ipv6(&mut h, CLIENT6, None));
        assert!(!relay_is_ipv6(&mut h, CLIENT6, Some(1)));
        assert!(relay_is_ipv6(&mut h, CLIENT4, Some(2)));
    }

    /// RFC 8656 §7.2: a family the server has no relay address of is answered 440,
    /// whether the client asked for it or the default chose it.
    #[test]
    fn a_default_family_without_relay_addresses_is_answered_440() {
        let mut config = rest_config();
        config.relay_ipv6 = false;
        config.default_family = DefaultFamily::Ipv6;
        let mut h = Harness::new(config);
        assert_eq!(code_of(&allocate(&mut h, CLIENT4, None)), Some(440));
        assert!(!relay_is_ipv6(&mut h, CLIENT4, Some(1)));

        let mut config = rest_config();
        config.relay_ipv4 = false;
        config.relay_ipv6 = true;
        config.default_family = DefaultFamily::Keep;
        let mut h = Harness::new(config);
        assert_eq!(code_of(&allocate(&mut h, CLIENT4, None)), Some(440));
        assert!(relay_is_ipv6(&mut h, CLIENT6, None));
        assert_eq!(h.server.allocation_count(), 1);
    }
}
