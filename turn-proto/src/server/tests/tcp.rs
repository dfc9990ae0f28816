//! RFC 6062 TCP allocations through the core's public inputs, with fake TCP relay ports
//! that log what the driver was asked to do.

use super::*;
use crate::connection::{BIND_TIMEOUT, Direction};
use crate::names::ConnectionId;

/// A stream 5-tuple from `client` to the server's TCP listener.
fn stream(client: &str) -> FiveTuple {
    FiveTuple {
        transport: Transport::Tcp,
        ..tuple(client)
    }
}

fn tcp() -> (AttrType, Vec<u8>) {
    (AttrType::REQUESTED_TRANSPORT, vec![6, 0, 0, 0])
}

fn connection_attr(connection: ConnectionId) -> (AttrType, Vec<u8>) {
    (AttrType::CONNECTION_ID, connection.0.to_be_bytes().to_vec())
}

fn connection_of(bytes: &[u8]) -> ConnectionId {
    let message = Message::parse(bytes).unwrap();
    let value = message
        .attr(AttrType::CONNECTION_ID)
        .expect("CONNECTION-ID");
    ConnectionId(u32::from_be_bytes(value.try_into().unwrap()))
}

/// A second connection of `client`'s user from another port (a data connection).
fn data_client(client: &Client, address: &str) -> Client {
    Client {
        tuple: stream(address),
        username: client.username.clone(),
        password: client.password.clone(),
        nonce: client.nonce.clone(),
        next_tid: 200,
    }
}

impl Harness {
    /// A TCP allocation for a new TCP client at `address`, with a permission for PEER.
    fn tcp_allocation(&mut self, address: &str) -> (Client, AllocId, SocketAddr) {
        let mut client = self.client(address, "@alice:example.org", UNIX + 7200);
        client.tuple = stream(address);
        let relay = relayed(&self.request(&mut client, Method::ALLOCATE, &[tcp()]));
        let id = self.relays.listening[&relay];
        assert_eq!(code_of(&self.permit(&mut client, PEER)), None);
        (client, id, relay)
    }

    /// Sends a signed Connect to `peer`; the immediate answer, None when deferred.
    fn connect(&mut self, client: &mut Client, peer: &str) -> Option<Vec<u8>> {
        let bytes = signed(client, Method::CONNECT, &[xor_peer(0, peer)], None);
        self.send(client.tuple, &bytes).map(|(_, data)| data)
    }

    /// Connect to PEER, the driver connects, the answer carries the CONNECTION-ID.
    fn connected(&mut self, client: &mut Client) -> ConnectionId {
        assert_eq!(self.connect(client, PEER), None, "answered once connected");
        let (connection, _, _) = *self.relays.connects.last().unwrap();
        let transmit = self
            .server
            .handle_tcp_connected(self.now, connection, true, &mut self.out)
            .expect("the Connect answer");
        assert_eq!(transmit.destination, Destination::Client(client.tuple));
        assert_eq!(connection_of(&self.out), connection);
        connection
    }
}

#[test]
fn tcp_allocations_need_a_stream_client_and_tcp_relays() {
    let mut h = Harness::new(public_peer_config());
    let mut udp_client = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    // RFC 6062 §5.1 (and coturn): over UDP, 400.
    let response = h.request(&mut udp_client, Method::ALLOCATE, &[tcp()]);
    assert_eq!(code_of(&response), Some(400));
    let mut client = h.client("192.0.2.1:5001", "@alice:example.org", UNIX + 7200);
    client.tuple = stream("192.0.2.1:5001");
    let even_port = (AttrType::EVEN_PORT, vec![0x80, 0, 0, 0]);
    let response = h.request(&mut client, Method::ALLOCATE, &[tcp(), even_port]);
    assert_eq!(code_of(&response), Some(400), "EVEN-PORT is UDP only");

    let mut config = public_peer_config();
    config.tcp_relay = false;
    let mut h = Harness::new(config);
    let mut client = h.client("192.0.2.1:5001", "@alice:example.org", UNIX + 7200);
    client.tuple = stream("192.0.2.1:5001");
    let response = h.request(&mut client, Method::ALLOCATE, &[tcp()]);
    assert_eq!(code_of(&response), Some(442), "no-tcp-relay");
    assert!(h.relays.listening.is_empty());
}

#[test]
fn an_ipv6_tcp_allocation_connects_to_ipv6_peers_only() {
    const PEER6: &str = "[2001:db8:77::9]:9000";
    let mut config = public_peer_config();
    config.relay_ipv6 = true;
    config.policy.allowed = IpRangeSet::parse(["203.0.113.0/24", "2001:db8:77::/48"]).unwrap();
    let mut h = Harness::new(config);
    let mut client = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    client.tuple = stream("192.0.2.1:5000");
    let v6 = (AttrType::REQUESTED_ADDRESS_FAMILY, vec![2, 0, 0, 0]);
    let response = h.request(&mut client, Method::ALLOCATE, &[tcp(), v6]);
    let message = Message::parse(&response).unwrap();
    let relay = decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert!(relay.is_ipv6(), "RFC 6156 for TCP relays: {relay}");
    assert_eq!(code_of(&h.permit(&mut client, PEER)), Some(443));
    assert_eq!(code_of(&h.permit(&mut client, PEER6)), None);
    assert_eq!(
        h.connect(&mut client, PEER).as_deref().and_then(code_of),
        Some(443),
        "an IPv4 peer from an IPv6 relay"
    );
    assert_eq!(
        h.connect(&mut client, PEER6),
        None,
        "answered once connected"
    );
    let (_, from, to) = *h.relays.connects.last().unwrap();
    assert_eq!((from, to), (relay, PEER6.parse().unwrap()));
}

#[test]
fn connect_checks_policy_permission_and_duplicates() {
    let mut h = Harness::new(public_peer_config());
    let (mut client, _, relay) = h.tcp_allocation("192.0.2.1:5000");
    // A peer the policy denies (a documentation range left closed): 403, nothing dialled.
    let denied = h
        .connect(&mut client, "198.51.100.7:80")
        .expect("an answer");
    assert_eq!(code_of(&denied), Some(403));
    // Allowed by policy, but no permission installed for it: 403 too (pion once skipped
    // this check).
    let unpermitted = h
        .connect(&mut client, "203.0.113.78:80")
        .expect("an answer");
    assert_eq!(code_of(&unpermitted), Some(403));
    assert!(h.relays.connects.is_empty(), "no connection attempted");
    assert_eq!(h.server.stats().peers_denied, 1);

    let connection = h.connected(&mut client);
    let answer = Message::parse(&h.out).unwrap();
    assert_eq!(
        (answer.method(), answer.class()),
        (Method::CONNECT, Class::Success)
    );
    let key = long_term_key(&client.username, REALM, &client.password);
    assert!(answer.verify_integrity(&key), "signed like the request");
    assert_eq!(
        h.relays.connects,
        vec![(connection, relay, PEER.parse().unwrap())],
        "dialled from the relayed address"
    );
    // RFC 6062 §5.2: a second Connect to the same peer is 446.
    let again = h.connect(&mut client, PEER).expect("an answer");
    assert_eq!(code_of(&again), Some(446));
    assert_eq!(h.server.tcp_connection_count(), 1);
}

#[test]
fn a_failed_connect_is_447_and_can_be_retried() {
    let mut h = Harness::new(public_peer_config());
    let (mut client, _, _) = h.tcp_allocation("192.0.2.1:5000");
    assert_eq!(h.connect(&mut client, PEER), None);
    let (connection, _, _) = h.relays.connects[0];
    let answer = h
        .server
        .handle_tcp_connected(h.now, connection, false, &mut h.out)
        .expect("the Connect answer");
    assert_eq!(answer.destination, Destination::Client(client.tuple));
    assert_eq!(code_of(&h.out), Some(447));
    assert_eq!(h.server.tcp_connection_count(), 0);
    // A late report for a forgotten connection answers nothing.
    assert!(
        h.server
            .handle_tcp_connected(h.now, connection, true, &mut h.out)
            .is_none()
    );
    h.connected(&mut client);
}

#[test]
fn connect_and_channels_do_not_mix_allocation_kinds() {
    let mut h = Harness::new(public_peer_config());
    let mut udp_client = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.allocate(&mut udp_client);
    h.permit(&mut udp_client, PEER);
    let answer = h.connect(&mut udp_client, PEER).expect("an answer");
    assert_eq!(code_of(&answer), Some(403), "Connect on a UDP allocation");
    let (mut client, _, _) = h.tcp_allocation("192.0.2.1:5001");
    assert_eq!(h.bind_channel(&mut client, 0x4000, PEER), Some(400));
}

#[test]
fn connection_bind_joins_a_new_connection_once() {
    let mut h = Harness::new(public_peer_config());
    let (mut client, _, _) = h.tcp_allocation("192.0.2.1:5000");
    let connection = h.connected(&mut client);
    let mut data = data_client(&client, "192.0.2.1:5002");

    // Unknown ids and binds on the control connection are 400.
    let unknown = ConnectionId(connection.0.wrapping_add(1));
    let answer = h.request(
        &mut data,
        Method::CONNECTION_BIND,
        &[connection_attr(unknown)],
    );
    assert_eq!(code_of(&answer), Some(400));
    let answer = h.request(
        &mut client,
        Method::CONNECTION_BIND,
        &[connection_attr(connection)],
    );
    assert_eq!(code_of(&answer), Some(400), "not on the control connection");
    // Another user cannot take the connection.
    let mut mallory = h.client("192.0.2.66:6000", "@mallory:example.org", UNIX + 7200);
    mallory.tuple = stream("192.0.2.66:6000");
    let answer = h.request(
        &mut mallory,
        Method::CONNECTION_BIND,
        &[connection_attr(connection)],
    );
    assert_eq!(code_of(&answer), Some(441));

    let answer = h.request(
        &mut data,
        Method::CONNECTION_BIND,
        &[connection_attr(connection)],
    );
    let message = Message::parse(&answer).unwrap();
    assert_eq!(
        (message.method(), message.class()),
        (Method::CONNECTION_BIND, Class::Success)
    );
    assert_eq!(h.relays.joined, vec![(connection, data.tuple)]);
    let mut late = data_client(&client, "192.0.2.1:5003");
    let answer = h.request(
        &mut late,
        Method::CONNECTION_BIND,
        &[connection_attr(connection)],
    );
    assert_eq!(code_of(&answer), Some(400), "bound once only");

    // Joined bytes count as relayed traffic.
    let now = h.now;
    assert_eq!(
        h.server
            .relay_tcp(now, connection, Direction::Upstream, 100),
        Some(Duration::ZERO)
    );
    h.server
        .relay_tcp(now, connection, Direction::Downstream, 40);
    assert_eq!(h.server.stats().upstream.bytes, 100);
    assert_eq!(h.server.stats().downstream.bytes, 40);

    // The data connection closing closes the peer connection; the allocation stays.
    h.disconnect(data.tuple);
    assert_eq!(h.relays.closed, vec![connection]);
    assert_eq!(h.server.tcp_connection_count(), 0);
    assert_eq!(h.server.allocation_count(), 1);
    assert_eq!(
        h.server.relay_tcp(now, connection, Direction::Upstream, 1),
        None
    );
}

#[test]
fn incoming_connections_need_a_permission_and_a_bind_within_30_s() {
    let mut h = Harness::new(public_peer_config());
    let (client, id, _) = h.tcp_allocation("192.0.2.1:5000");
    let now = h.now;
    let stranger = "203.0.113.90:4000".parse().unwrap();
    assert!(
        h.server
            .handle_tcp_accepted(now, id, stranger, &mut h.out)
            .is_none(),
        "no permission: closed"
    );
    let denied = "198.51.100.7:4000".parse().unwrap();
    assert!(
        h.server
            .handle_tcp_accepted(now, id, denied, &mut h.out)
            .is_none(),
        "denied by policy: closed"
    );

    let peer: SocketAddr = "203.0.113.77:4000".parse().unwrap();
    let (connection, transmit) = h
        .server
        .handle_tcp_accepted(now, id, peer, &mut h.out)
        .expect("accepted");
    assert_eq!(transmit.destination, Destination::Client(client.tuple));
    let message = Message::parse(&h.out).unwrap();
    assert_eq!(
        (message.method(), message.class()),
        (Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(connection_of(&h.out), connection);
    let attempt_peer = decode_xor(
        message.attr(AttrType::XOR_PEER_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(attempt_peer, peer);

    // No ConnectionBind: closed after 30 s, and the id is dead.
    h.advance(BIND_TIMEOUT.as_secs() - 1);
    assert!(h.relays.closed.is_empty());
    h.advance(2);
    assert_eq!(h.relays.closed, vec![connection]);
    let mut data = data_client(&client, "192.0.2.1:5002");
    let answer = h.request(
        &mut data,
        Method::CONNECTION_BIND,
        &[connection_attr(connection)],
    );
    assert_eq!(code_of(&answer), Some(400));
}

#[test]
fn ending_the_allocation_closes_its_connections_and_listener() {
    let mut h = Harness::new(public_peer_config());
    let (mut client, id, _) = h.tcp_allocation("192.0.2.1:5000");
    let first = h.connected(&mut client);
    let now = h.now;
    let (second, _) = h
        .server
        .handle_tcp_accepted(now, id, "203.0.113.77:4000".parse().unwrap(), &mut h.out)
        .unwrap();
    h.disconnect(client.tuple);
    let mut closed = h.relays.closed.clone();
    closed.sort_by_key(|connection| connection.0);
    let mut expected = vec![first, second];
    expected.sort_by_key(|connection| connection.0);
    assert_eq!(closed, expected);
    assert_eq!(h.relays.unlistened, vec![id]);
    assert!(h.relays.released.is_empty(), "no UDP socket to release");
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn max_bps_paces_joined_connections() {
    let mut config = public_peer_config();
    config.max_bps = 1000;
    let mut h = Harness::new(config);
    let (mut client, _, _) = h.tcp_allocation("192.0.2.1:5000");
    let connection = h.connected(&mut client);
    let mut data = data_client(&client, "192.0.2.1:5002");
    h.request(
        &mut data,
        Method::CONNECTION_BIND,
        &[connection_attr(connection)],
    );
    let now = h.now;
    let pause = |h: &mut Harness, len| {
        h.server
            .relay_tcp(now, connection, Direction::Upstream, len)
    };
    assert_eq!(pause(&mut h, 1000), Some(Duration::ZERO));
    assert_eq!(pause(&mut h, 500), Some(Duration::from_millis(500)));
}

#[test]
fn a_reload_that_denies_the_peer_closes_its_connections() {
    let mut h = Harness::new(public_peer_config());
    let (mut client, _, _) = h.tcp_allocation("192.0.2.1:5000");
    let connection = h.connected(&mut client);
    // The reloaded configuration no longer opens 203.0.113.0/24.
    let changed = h.server.reconfigure(rest_config(), h.now);
    assert_eq!(changed.permissions_removed, 1);
    h.advance(1);
    assert_eq!(h.relays.closed, vec![connection]);
    assert_eq!(h.server.tcp_connection_count(), 0);
}

#[test]
fn tcp_allocations_count_against_user_quota() {
    let mut config = public_peer_config();
    config.user_quota = 1;
    let mut h = Harness::new(config);
    h.tcp_allocation("192.0.2.1:5000");
    let mut second = h.client("192.0.2.1:5001", "@alice:example.org", UNIX + 7200);
    second.tuple = stream("192.0.2.1:5001");
    let response = h.request(&mut second, Method::ALLOCATE, &[tcp()]);
    assert_eq!(code_of(&response), Some(486));
}

/// Without caps one permission let a client open peer connections without end: now at
/// most `max-tcp-relay-connections` per allocation (508) and `user-tcp-relay-quota` per
/// user over all allocations (486), Connects and peers connecting in alike.
#[test]
fn connections_are_capped_per_allocation_and_per_user() {
    let mut config = public_peer_config();
    config.max_tcp_connections = 3;
    config.user_tcp_connections = 4;
    let mut h = Harness::new(config);
    let (mut first, first_id, _) = h.tcp_allocation("192.0.2.1:5000");
    for port in 9000..9003 {
        assert_eq!(h.connect(&mut first, &format!("203.0.113.77:{port}")), None);
    }
    let refused = h
        .connect(&mut first, "203.0.113.77:9003")
        .expect("an answer");
    assert_eq!(code_of(&refused), Some(508), "per allocation");
    let now = h.now;
    let incoming = "203.0.113.77:4000".parse().unwrap();
    assert!(
        h.server
            .handle_tcp_accepted(now, first_id, incoming, &mut h.out)
            .is_none(),
        "incoming connections count too"
    );
    // A failed Connect gives its place back.
    let (failed, _, _) = h.relays.connects[0];
    assert!(
        h.server
            .handle_tcp_connected(now, failed, false, &mut h.out)
            .is_some()
    );
    assert!(
        h.server
            .handle_tcp_accepted(now, first_id, incoming, &mut h.out)
            .is_some()
    );

    // The same user's second allocation shares the user's four.
    let (mut second, _, _) = h.tcp_allocation("192.0.2.1:5001");
    assert_eq!(h.connect(&mut second, "203.0.113.77:9100"), None);
    let refused = h
        .connect(&mut second, "203.0.113.77:9101")
        .expect("an answer");
    assert_eq!(code_of(&refused), Some(486), "per user");
    // The first allocation ends: its three come back to the user.
    h.server.handle_disconnect(first.tuple);
    assert_eq!(h.connect(&mut second, "203.0.113.77:9101"), None);
    assert_eq!(h.server.stats().quota_refusals, 3);
}

/// Permissions are per IP (RFC 6062 §5.2 uses CreatePermission), but the own-host rule
/// sees the port: a permission for this host's address opens its relay ports, not SSH.
#[test]
fn connect_and_incoming_meet_the_own_host_rule() {
    let mut config = public_peer_config();
    config.policy.own_host = crate::policy::OwnHost {
        addresses: IpRangeSet::parse(["203.0.113.5"]).unwrap(),
        relay_ports: 50_000..=50_100,
        ..crate::policy::OwnHost::default()
    };
    let mut h = Harness::new(config);
    let (mut client, id, _) = h.tcp_allocation("192.0.2.1:5000");
    assert_eq!(code_of(&h.permit(&mut client, "203.0.113.5:50050")), None);
    let ssh = h.connect(&mut client, "203.0.113.5:22").expect("an answer");
    assert_eq!(code_of(&ssh), Some(403));
    assert_eq!(h.connect(&mut client, "203.0.113.5:50050"), None);
    let now = h.now;
    let from_ephemeral = "203.0.113.5:40000".parse().unwrap();
    assert!(
        h.server
            .handle_tcp_accepted(now, id, from_ephemeral, &mut h.out)
            .is_none()
    );
    let from_relay = "203.0.113.5:50060".parse().unwrap();
    assert!(
        h.server
            .handle_tcp_accepted(now, id, from_relay, &mut h.out)
            .is_some()
    );
}
