//! The server driven through its public inputs with a fake clock and fake relay ports.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rtc_auth::ip_range::IpRangeSet;
use rtc_auth::long_term::long_term_key;
use rtc_auth::rest::{RestVerifier, mint};
use rtc_auth::secret::Secret;

use super::*;
use crate::auth::{Credentials, UserKeys};
use crate::codec::address::decode_xor;
use crate::names::Transport;
use crate::policy::PeerPolicy;
use crate::testing::FakeDriver;

const UNIX: u64 = 1_700_000_000;
const REALM: &str = "example.org";

struct Harness {
    server: Server,
    relays: FakeDriver,
    start: Instant,
    now: Instant,
    out: Vec<u8>,
}

/// A client's view of its credentials and last nonce.
struct Client {
    tuple: FiveTuple,
    username: String,
    password: String,
    nonce: Vec<u8>,
    next_tid: u8,
}

fn tuple(client: &str) -> FiveTuple {
    FiveTuple {
        transport: Transport::Udp,
        client: client.parse().unwrap(),
        server: "192.0.2.10:3478".parse().unwrap(),
    }
}

fn rest_config() -> ServerConfig {
    ServerConfig {
        realm: REALM.into(),
        credentials: Credentials::Rest(RestVerifier::new(vec![Secret::new("north")], ':')),
        policy: PeerPolicy::new(IpRangeSet::new(), IpRangeSet::new(), false, true),
        ..ServerConfig::default()
    }
}

const PEER: &str = "203.0.113.77:9000";

fn public_peer_config() -> ServerConfig {
    // 203.0.113.0/24 is a documentation range, denied by default: open it as an
    // operator would open a real peer network.
    let mut config = rest_config();
    config.policy.allowed = IpRangeSet::parse(["203.0.113.0/24"]).unwrap();
    config
}

impl Harness {
    fn new(config: ServerConfig) -> Self {
        let start = Instant::now();
        Self {
            server: Server::new(config, start, UNIX, [9; 32]),
            relays: FakeDriver::default(),
            start,
            now: start,
            out: Vec::new(),
        }
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        let unix = UNIX + self.now.duration_since(self.start).as_secs();
        self.server.handle_timeout(self.now, unix);
        self.relays.carry_out(&mut self.server, self.now);
    }

    /// A stream client's connection closed.
    fn disconnect(&mut self, tuple: FiveTuple) {
        self.server.handle_disconnect(tuple);
        self.relays.carry_out(&mut self.server, self.now);
    }

    fn client(&self, address: &str, user: &str, expiry: u64) -> Client {
        let credential = mint(&Secret::new("north"), user, expiry, ':');
        Client {
            tuple: tuple(address),
            username: credential.username,
            password: credential.password,
            nonce: Vec::new(),
            next_tid: 0,
        }
    }

    /// Sends `bytes` from `tuple`, and carries out what the server asks of the driver;
    /// returns the reply bytes, if any (an Allocate's comes once its ports are bound).
    fn send(&mut self, tuple: FiveTuple, bytes: &[u8]) -> Option<(Transmit, Vec<u8>)> {
        let transmit = self
            .server
            .handle_client(self.now, tuple, bytes, &mut self.out);
        let now = transmit.map(|transmit| {
            let data = match &transmit.payload {
                Payload::Output => self.out.clone(),
                Payload::Input(range) => bytes[range.clone()].to_vec(),
            };
            (transmit, data)
        });
        let later = self.relays.carry_out(&mut self.server, self.now);
        now.or_else(|| later.into_iter().next())
    }

    /// `data` from `peer` on allocation `id`'s relay socket, received after the headroom
    /// the core may frame it in.
    fn peer_sends(&mut self, id: AllocId, peer: &str, data: &[u8]) -> Option<(Transmit, Vec<u8>)> {
        let mut datagram = [&[0; PEER_HEADROOM][..], data].concat();
        let transmit = self.server.handle_peer(
            self.now,
            id,
            peer.parse().unwrap(),
            &mut datagram,
            &mut self.out,
        )?;
        let data = match &transmit.payload {
            Payload::Output => self.out.clone(),
            Payload::Input(range) => datagram[range.clone()].to_vec(),
        };
        Some((transmit, data))
    }

    /// Sends an authenticated request, doing the 401 round first when needed.
    fn request(
        &mut self,
        client: &mut Client,
        method: Method,
        attrs: &[(AttrType, Vec<u8>)],
    ) -> Vec<u8> {
        if client.nonce.is_empty() {
            // The nonce round as clients do it: an Allocate (a nonce is per client
            // address, not per method), never shorter than the smallest one.
            let challenge = self.unauthenticated(client, Method::ALLOCATE, &[udp()]);
            let message = Message::parse(&challenge).unwrap();
            assert_eq!(error_code(&message), Some(401));
            client.nonce = message.attr(AttrType::NONCE).unwrap().to_vec();
        }
        let bytes = signed(client, method, attrs, None);
        self.send(client.tuple, &bytes).expect("a response").1
    }

    fn unauthenticated(
        &mut self,
        client: &mut Client,
        method: Method,
        attrs: &[(AttrType, Vec<u8>)],
    ) -> Vec<u8> {
        client.next_tid += 1;
        let mut bytes = Vec::new();
        let mut writer = MessageWriter::new(
            &mut bytes,
            method,
            Class::Request,
            TransactionId([client.next_tid; 12]),
        );
        for (kind, value) in attrs {
            writer.attr(*kind, value);
        }
        self.send(client.tuple, &bytes).expect("a response").1
    }

    fn allocate(&mut self, client: &mut Client) -> (AllocId, SocketAddr) {
        let relay = relayed(&self.request(client, Method::ALLOCATE, &[udp()]));
        let id = *self.relays.bound.get(&relay).expect("bound relay");
        (id, relay)
    }

    /// ChannelBind `number` to `peer`; the error code, None on success.
    fn bind_channel(&mut self, client: &mut Client, number: u16, peer: &str) -> Option<u16> {
        let attrs = channel_bind(number, peer);
        code_of(&self.request(client, Method::CHANNEL_BIND, &attrs))
    }

    fn permit(&mut self, client: &mut Client, peer: &str) -> Vec<u8> {
        let peer = xor_peer(client.next_tid + 1, peer);
        self.request(client, Method::CREATE_PERMISSION, &[peer])
    }
}

/// A signed request; `tid` overrides the transaction id (for retransmissions).
fn signed(
    client: &mut Client,
    method: Method,
    attrs: &[(AttrType, Vec<u8>)],
    tid: Option<u8>,
) -> Vec<u8> {
    let tid = tid.unwrap_or_else(|| {
        client.next_tid += 1;
        client.next_tid
    });
    let key = long_term_key(&client.username, REALM, &client.password);
    let mut bytes = Vec::new();
    let mut writer =
        MessageWriter::new(&mut bytes, method, Class::Request, TransactionId([tid; 12]));
    for (kind, value) in attrs {
        if *kind == AttrType::XOR_PEER_ADDRESS {
            // Re-encode with this message's transaction id.
            let peer = decode_xor(value, &TransactionId([0; 12])).unwrap();
            writer.xor_address(*kind, peer);
        } else {
            writer.attr(*kind, value);
        }
    }
    writer
        .attr(AttrType::USERNAME, client.username.as_bytes())
        .attr(AttrType::REALM, REALM.as_bytes())
        .attr(AttrType::NONCE, &client.nonce)
        .integrity(&key);
    bytes
}

fn udp() -> (AttrType, Vec<u8>) {
    (AttrType::REQUESTED_TRANSPORT, vec![17, 0, 0, 0])
}

/// XOR-PEER-ADDRESS encoded with an all-zero transaction id; `signed` re-encodes it.
fn xor_peer(_tid: u8, peer: &str) -> (AttrType, Vec<u8>) {
    let mut value = [0u8; 20];
    let len = crate::codec::address::encode_xor(
        peer.parse().unwrap(),
        &TransactionId([0; 12]),
        &mut value,
    );
    (AttrType::XOR_PEER_ADDRESS, value[..len].to_vec())
}

/// The relayed address of an Allocate success; fails the test on an error answer.
fn relayed(response: &[u8]) -> SocketAddr {
    let message = Message::parse(response).unwrap();
    assert_eq!(
        message.class(),
        Class::Success,
        "allocate failed: {:?}",
        error_code(&message)
    );
    decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap()
}

fn error_code(message: &Message<'_>) -> Option<u16> {
    message
        .attr(AttrType::ERROR_CODE)
        .map(|value| u16::from(value[2]) * 100 + u16::from(value[3]))
}

fn code_of(bytes: &[u8]) -> Option<u16> {
    error_code(&Message::parse(bytes).unwrap())
}

fn lifetime_of(bytes: &[u8]) -> u32 {
    let message = Message::parse(bytes).unwrap();
    u32::from_be_bytes(
        message
            .attr(AttrType::LIFETIME)
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

fn channel_bind(number: u16, peer: &str) -> [(AttrType, Vec<u8>); 2] {
    [
        (
            AttrType::CHANNEL_NUMBER,
            vec![(number >> 8) as u8, number as u8, 0, 0],
        ),
        xor_peer(0, peer),
    ]
}

#[test]
fn binding_reflects_the_client_address() {
    let mut h = Harness::new(rest_config());
    let mut request = Vec::new();
    MessageWriter::new(
        &mut request,
        Method::BINDING,
        Class::Request,
        TransactionId([1; 12]),
    )
    .fingerprint();
    let (transmit, response) = h.send(tuple("192.0.2.99:4000"), &request).unwrap();
    assert_eq!(
        transmit.destination,
        Destination::Client(tuple("192.0.2.99:4000"))
    );
    let message = Message::parse(&response).unwrap();
    assert_eq!(
        (message.method(), message.class()),
        (Method::BINDING, Class::Success)
    );
    assert!(message.has_fingerprint(), "FINGERPRINT echoed");
    let mapped = decode_xor(
        message.attr(AttrType::XOR_MAPPED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(mapped, "192.0.2.99:4000".parse().unwrap());
}

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
fn credential_failures() {
    let mut h = Harness::new(rest_config());
    // Wrong secret.
    let mut mallory = h.client("192.0.2.2:5000", "@mallory:example.org", UNIX + 3600);
    mallory.password = mint(
        &Secret::new("guess"),
        "@mallory:example.org",
        UNIX + 3600,
        ':',
    )
    .password;
    assert_eq!(
        code_of(&h.request(&mut mallory, Method::ALLOCATE, &[udp()])),
        Some(401)
    );
    // Expired credential.
    let mut late = h.client("192.0.2.3:5000", "@late:example.org", UNIX - 1);
    assert_eq!(
        code_of(&h.request(&mut late, Method::ALLOCATE, &[udp()])),
        Some(401)
    );
    // Malformed username.
    let mut odd = h.client("192.0.2.4:5000", "bad user", UNIX + 3600);
    assert_eq!(
        code_of(&h.request(&mut odd, Method::ALLOCATE, &[udp()])),
        Some(400)
    );
    // A nonce of our own format but forged.
    let mut bob = h.client("192.0.2.5:5000", "@bob:example.org", UNIX + 3600);
    bob.nonce = vec![b'0'; 32];
    let response = h.request(&mut bob, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&response).unwrap();
    assert_eq!(error_code(&message), Some(438));
    assert!(
        message.attr(AttrType::NONCE).is_some(),
        "438 carries a fresh nonce"
    );
    // Missing NONCE with MESSAGE-INTEGRITY: 400.
    let mut bytes = Vec::new();
    MessageWriter::new(
        &mut bytes,
        Method::ALLOCATE,
        Class::Request,
        TransactionId([3; 12]),
    )
    .attr(AttrType::USERNAME, bob.username.as_bytes())
    .attr(AttrType::REALM, REALM.as_bytes())
    .integrity(&[0; 16]);
    assert_eq!(code_of(&h.send(bob.tuple, &bytes).unwrap().1), Some(400));
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.server.stats().auth_failures >= 2);
}

#[test]
fn stale_nonce_then_retry() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let long = [udp(), (AttrType::LIFETIME, 3600u32.to_be_bytes().to_vec())];
    assert_eq!(
        lifetime_of(&h.request(&mut alice, Method::ALLOCATE, &long)),
        3600
    );
    h.advance(601);
    let response = h.request(&mut alice, Method::REFRESH, &[]);
    let message = Message::parse(&response).unwrap();
    assert_eq!(error_code(&message), Some(438));
    alice.nonce = message.attr(AttrType::NONCE).unwrap().to_vec();
    let response = h.request(&mut alice, Method::REFRESH, &[]);
    assert_eq!(code_of(&response), None, "fresh nonce accepted");
    assert_eq!(h.server.stats().stale_nonces, 1);
}

#[test]
fn lifetimes_are_clamped_and_refresh_zero_deletes() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let short = h.request(
        &mut alice,
        Method::ALLOCATE,
        &[udp(), (AttrType::LIFETIME, 100u32.to_be_bytes().to_vec())],
    );
    assert_eq!(
        lifetime_of(&short),
        600,
        "below default: raised to the default"
    );
    let long = h.request(
        &mut alice,
        Method::REFRESH,
        &[(AttrType::LIFETIME, 7200u32.to_be_bytes().to_vec())],
    );
    assert_eq!(
        lifetime_of(&long),
        3600,
        "above max-allocate-lifetime: clamped, not reset"
    );
    let plain = h.request(&mut alice, Method::REFRESH, &[]);
    assert_eq!(lifetime_of(&plain), 600);
    let relay = *h.relays.bound.keys().next().unwrap();
    let gone = h.request(
        &mut alice,
        Method::REFRESH,
        &[(AttrType::LIFETIME, vec![0; 4])],
    );
    assert_eq!(lifetime_of(&gone), 0);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.relays.released, vec![relay]);
    let again = h.request(&mut alice, Method::REFRESH, &[]);
    assert_eq!(code_of(&again), Some(437));
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
fn expired_rest_credential_keeps_its_allocation_alive() {
    // coturn caches the session key: refreshes past the username's expiry still work.
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 60);
    h.allocate(&mut alice);
    h.advance(120);
    assert_eq!(code_of(&h.request(&mut alice, Method::REFRESH, &[])), None);
    // A new 5-tuple with the same expired credential is refused.
    let mut again = h.client("192.0.2.1:5001", "@alice:example.org", UNIX + 60);
    assert_eq!(
        code_of(&h.request(&mut again, Method::ALLOCATE, &[udp()])),
        Some(401)
    );
}

#[test]
fn permissions_and_policy() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let (id, _) = h.allocate(&mut alice);
    for denied in [
        "127.0.0.1:9",
        "[::ffff:127.0.0.1]:9",
        "169.254.169.254:80",
        "10.0.0.1:9",
        "0.0.0.0:9",
        "224.0.0.1:9",
    ] {
        let response = h.permit(&mut alice, denied);
        if denied.starts_with('[') {
            assert_eq!(
                code_of(&response),
                Some(443),
                "{denied}: IPv6 peer on an IPv4 relay"
            );
        } else {
            assert_eq!(code_of(&response), Some(403), "{denied}");
        }
    }
    // One denied peer fails the whole request.
    let both = [xor_peer(0, PEER), xor_peer(0, "127.0.0.1:9")];
    assert_eq!(
        code_of(&h.request(&mut alice, Method::CREATE_PERMISSION, &both)),
        Some(403)
    );
    assert!(
        h.peer_sends(id, PEER, b"x").is_none(),
        "no permission was installed"
    );
    assert_eq!(
        code_of(&h.request(&mut alice, Method::CREATE_PERMISSION, &[])),
        Some(400)
    );
    assert_eq!(code_of(&h.permit(&mut alice, PEER)), None);
    // Ports do not matter for permissions.
    let (transmit, data) = h.peer_sends(id, "203.0.113.77:1234", b"hello").unwrap();
    assert_eq!(transmit.destination, Destination::Client(alice.tuple));
    let message = Message::parse(&data).unwrap();
    assert_eq!(
        (message.method(), message.class()),
        (Method::DATA, Class::Indication)
    );
    assert_eq!(message.attr(AttrType::DATA), Some(&b"hello"[..]));
    let from = decode_xor(
        message.attr(AttrType::XOR_PEER_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    assert_eq!(from, "203.0.113.77:1234".parse().unwrap());
    assert!(
        h.peer_sends(id, "203.0.113.78:9000", b"x").is_none(),
        "other IPs need their own permission"
    );
    // Permissions lapse after 300 s.
    h.advance(301);
    assert!(h.peer_sends(id, PEER, b"late").is_none());
}

#[test]
fn send_indication_relays_without_copy() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let (id, _) = h.allocate(&mut alice);
    let send = |peer: &str| {
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
    };
    assert!(
        h.send(alice.tuple, &send(PEER)).is_none(),
        "no permission yet"
    );
    h.permit(&mut alice, PEER);
    let (transmit, data) = h.send(alice.tuple, &send(PEER)).unwrap();
    assert_eq!(
        transmit.destination,
        Destination::Peer {
            socket: h.server.allocation(id).unwrap().relay.socket,
            peer: PEER.parse().unwrap()
        }
    );
    assert!(matches!(transmit.payload, Payload::Input(_)));
    assert_eq!(data, b"media");
    assert!(
        h.send(alice.tuple, &send("127.0.0.1:9")).is_none(),
        "policy checked on Send"
    );
    assert!(
        h.send(tuple("192.0.2.50:1"), &send(PEER)).is_none(),
        "no allocation"
    );
    assert_eq!(h.server.stats().upstream.packets, 1);
}

#[test]
fn channels() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let (id, _) = h.allocate(&mut alice);
    for bad in [0x3FFF, 0x8000, 0xFFFF] {
        assert_eq!(h.bind_channel(&mut alice, bad, PEER), Some(400));
    }
    assert_eq!(h.bind_channel(&mut alice, 0x4000, "127.0.0.1:9"), Some(403));
    let no_peer = [(AttrType::CHANNEL_NUMBER, vec![0x40, 0, 0, 0])];
    assert_eq!(
        code_of(&h.request(&mut alice, Method::CHANNEL_BIND, &no_peer)),
        Some(400)
    );
    assert_eq!(h.bind_channel(&mut alice, 0x4001, PEER), None);
    // Rebinding the same pair refreshes; a number or peer moving elsewhere is refused.
    assert_eq!(h.bind_channel(&mut alice, 0x4001, PEER), None);
    assert_eq!(
        h.bind_channel(&mut alice, 0x4001, "203.0.113.78:1"),
        Some(400)
    );
    assert_eq!(h.bind_channel(&mut alice, 0x4002, PEER), Some(400));

    // Client to peer: ChannelData, payload straight from the input.
    let mut frame = Vec::new();
    assert!(ChannelData::write(0x4001, b"rtp", false, &mut frame));
    let (transmit, data) = h.send(alice.tuple, &frame).unwrap();
    assert_eq!(transmit.payload, Payload::Input(4..7));
    assert_eq!(data, b"rtp");
    assert!(
        matches!(transmit.destination, Destination::Peer { socket, .. }
            if socket == h.server.allocation(id).unwrap().relay.socket)
    );
    // Unbound channel: dropped.
    assert!(ChannelData::write(0x4003, b"rtp", false, &mut frame));
    assert!(h.send(alice.tuple, &frame).is_none());
    // Peer to client: ChannelData, no padding over UDP.
    let (_, data) = h.peer_sends(id, PEER, b"rtcp!").unwrap();
    assert_eq!(data, [0x40, 0x01, 0, 5, b'r', b't', b'c', b'p', b'!']);
    // The channel outlives an unrefreshed permission only until the permission lapses.
    h.advance(301);
    assert!(h.peer_sends(id, PEER, b"late").is_none());
}

#[test]
fn channel_data_over_tcp_is_padded() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    alice.tuple.transport = Transport::Tcp;
    let (id, _) = h.allocate(&mut alice);
    h.bind_channel(&mut alice, 0x4000, PEER);
    let (_, data) = h.peer_sends(id, PEER, b"abcde").unwrap();
    assert_eq!(data.len(), 12);
    assert_eq!(
        &data[..9],
        &[0x40, 0x00, 0, 5, b'a', b'b', b'c', b'd', b'e']
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
fn bandwidth_limit_drops_excess() {
    let mut config = public_peer_config();
    config.max_bps = 1000;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let (id, _) = h.allocate(&mut alice);
    h.bind_channel(&mut alice, 0x4000, PEER);
    let mut frame = Vec::new();
    assert!(ChannelData::write(0x4000, &[0; 400], false, &mut frame));
    let sent = (0..5)
        .filter(|_| h.send(alice.tuple, &frame).is_some())
        .count();
    assert_eq!(
        sent, 2,
        "1000 B/s allows two 400-byte packets in the first second"
    );
    let received = (0..5)
        .filter(|_| h.peer_sends(id, PEER, &[0; 400]).is_some())
        .count();
    assert_eq!(received, 2, "each direction has its own bucket");
    h.advance(1);
    assert!(h.send(alice.tuple, &frame).is_some(), "refilled");
    assert_eq!(h.server.stats().upstream.dropped, 3);
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
fn static_users_and_no_auth() {
    let mut users = BTreeMap::new();
    users.insert(
        "bob".to_owned(),
        UserKeys::from_password("bob", REALM, "secret"),
    );
    let config = ServerConfig {
        credentials: Credentials::Users(users),
        ..rest_config()
    };
    let mut h = Harness::new(config);
    let mut bob = h.client("192.0.2.2:5000", "", UNIX);
    bob.username = "bob".into();
    bob.password = "secret".into();
    h.allocate(&mut bob);
    let mut eve = h.client("192.0.2.3:5000", "", UNIX);
    eve.username = "eve".into();
    eve.password = "secret".into();
    assert_eq!(
        code_of(&h.request(&mut eve, Method::ALLOCATE, &[udp()])),
        Some(401)
    );

    let mut open = Harness::new(ServerConfig {
        credentials: Credentials::None,
        ..rest_config()
    });
    let mut anyone = open.client("192.0.2.4:5000", "", UNIX);
    let response = open.unauthenticated(&mut anyone, Method::ALLOCATE, &[udp()]);
    assert_eq!(Message::parse(&response).unwrap().class(), Class::Success);
}

#[test]
fn fingerprint_option_and_echo() {
    let mut config = rest_config();
    config.fingerprint = true;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = h.request(&mut alice, Method::ALLOCATE, &[udp()]);
    assert!(Message::parse(&response).unwrap().has_fingerprint());
}

#[test]
fn hostile_input_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let (id, _) = h.allocate(&mut alice);
    h.bind_channel(&mut alice, 0x4000, PEER);
    let seeds = [
        signed(&mut alice, Method::REFRESH, &[], None),
        signed(
            &mut alice,
            Method::CREATE_PERMISSION,
            &[xor_peer(0, PEER)],
            None,
        ),
        signed(
            &mut alice,
            Method::CHANNEL_BIND,
            &channel_bind(0x4000, PEER),
            None,
        ),
        vec![0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4],
    ];
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    for round in 0..20_000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..rng.random_range(1..4) {
            match rng.random_range(0..3) {
                0 => {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] = rng.random();
                }
                1 => bytes.truncate(rng.random_range(0..bytes.len())),
                _ => bytes.extend((0..rng.random_range(0..8)).map(|_| rng.random::<u8>())),
            }
            if bytes.is_empty() {
                bytes.push(0);
            }
        }
        let _ = h.send(alice.tuple, &bytes);
        let _ = h.peer_sends(id, PEER, &bytes);
    }
    assert!(h.server.stats().malformed > 0);
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

fn ticket_of(bytes: &[u8]) -> Option<Vec<u8>> {
    Message::parse(bytes)
        .unwrap()
        .attr(AttrType::MOBILITY_TICKET)
        .map(<[u8]>::to_vec)
}

#[test]
fn mobility_moves_an_allocation_to_its_owner_only() {
    let mut config = public_peer_config();
    config.mobility = true;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = h.request(
        &mut alice,
        Method::ALLOCATE,
        &[udp(), (AttrType::MOBILITY_TICKET, vec![])],
    );
    let ticket = ticket_of(&response).expect("ticket issued");
    assert_eq!(ticket.len(), 16);
    let id = *h.relays.bound.values().next().unwrap();
    h.bind_channel(&mut alice, 0x4000, PEER);

    // Someone else holding the ticket cannot take the allocation.
    let mut eve = h.client("192.0.2.66:5000", "@eve:example.org", UNIX + 7200);
    let stolen = h.request(
        &mut eve,
        Method::REFRESH,
        &[(AttrType::MOBILITY_TICKET, ticket.clone())],
    );
    assert_eq!(code_of(&stolen), Some(441));
    // An unknown ticket: 437.
    let mut lost = h.client("192.0.2.67:5000", "@alice:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&h.request(
            &mut lost,
            Method::REFRESH,
            &[(AttrType::MOBILITY_TICKET, vec![9; 16])]
        )),
        Some(437)
    );

    // Alice on a new address (new Wi-Fi) with her ticket: the allocation follows her.
    let mut moved = h.client("198.51.100.9:7000", "@alice:example.org", UNIX + 7200);
    let response = h.request(
        &mut moved,
        Method::REFRESH,
        &[(AttrType::MOBILITY_TICKET, ticket.clone())],
    );
    assert_eq!(code_of(&response), None);
    let fresh = ticket_of(&response).expect("the ticket again");
    assert_eq!(fresh, ticket, "one ticket for the allocation's life");
    assert_eq!(h.server.allocation(id).unwrap().tuple, moved.tuple);
    let (transmit, _) = h.peer_sends(id, PEER, b"to the new address").unwrap();
    assert_eq!(transmit.destination, Destination::Client(moved.tuple));
    // For a moment the old 5-tuple still works (requests in flight when the client moved),
    // while data goes to the new one; someone else with the ticket still gets 441.
    assert_eq!(code_of(&h.request(&mut alice, Method::REFRESH, &[])), None);
    let mut thief = h.client("203.0.113.5:1", "@eve:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&h.request(
            &mut thief,
            Method::REFRESH,
            &[(AttrType::MOBILITY_TICKET, ticket.clone())]
        )),
        Some(441)
    );
    // The owner can move again with the same ticket.
    let mut again = h.client("203.0.113.6:1", "@alice:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&h.request(
            &mut again,
            Method::REFRESH,
            &[(AttrType::MOBILITY_TICKET, ticket.clone())]
        )),
        None
    );
    assert_eq!(h.server.allocation(id).unwrap().tuple, again.tuple);
    moved = again;
    // A refresh on the new 5-tuple returns the same current ticket.
    let refreshed = h.request(
        &mut moved,
        Method::REFRESH,
        &[(AttrType::MOBILITY_TICKET, fresh.clone())],
    );
    assert_eq!(ticket_of(&refreshed), Some(fresh));
    h.advance(11);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::REFRESH, &[])),
        Some(437),
        "alias expired"
    );
    assert_eq!(h.server.allocation(id).unwrap().tuple, moved.tuple);
}

#[test]
fn mobility_off_answers_405() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = h.request(
        &mut alice,
        Method::ALLOCATE,
        &[udp(), (AttrType::MOBILITY_TICKET, vec![])],
    );
    assert_eq!(code_of(&response), Some(405));
}

/// An RFC 8489 client: PASSWORD-ALGORITHM SHA-256, the server's PASSWORD-ALGORITHMS echoed,
/// MESSAGE-INTEGRITY-SHA256 with the SHA-256 key; `userhash` replaces USERNAME.
fn rfc8489_request(
    client: &mut Client,
    method: Method,
    attrs: &[(AttrType, Vec<u8>)],
    offered: &[u8],
    userhash: bool,
) -> Vec<u8> {
    client.next_tid += 1;
    let key = rtc_auth::long_term::long_term_key_sha256(&client.username, REALM, &client.password);
    let mut bytes = Vec::new();
    let mut writer = MessageWriter::new(
        &mut bytes,
        method,
        Class::Request,
        TransactionId([client.next_tid; 12]),
    );
    for (kind, value) in attrs {
        writer.attr(*kind, value);
    }
    if userhash {
        writer.attr(
            AttrType::USERHASH,
            &rtc_auth::long_term::userhash(&client.username, REALM),
        );
    } else {
        writer.attr(AttrType::USERNAME, client.username.as_bytes());
    }
    writer
        .attr(AttrType::REALM, REALM.as_bytes())
        .attr(AttrType::NONCE, &client.nonce)
        .attr(AttrType::PASSWORD_ALGORITHM, &[0, 2, 0, 0])
        .attr(AttrType::PASSWORD_ALGORITHMS, offered)
        .integrity_sha256(&key);
    bytes
}

#[test]
fn rfc8489_sha256_password_algorithm_and_integrity() {
    let mut h = Harness::new(rest_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let challenge = h.unauthenticated(&mut alice, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&challenge).unwrap();
    let nonce = message.attr(AttrType::NONCE).unwrap();
    assert!(nonce.starts_with(b"obMatJos2"), "RFC 8489 nonce cookie");
    let offered = message
        .attr(AttrType::PASSWORD_ALGORITHMS)
        .expect("offer")
        .to_vec();
    assert_eq!(offered, [0, 2, 0, 0, 0, 1, 0, 0], "SHA-256 first, then MD5");
    alice.nonce = nonce.to_vec();

    // A man in the middle strips SHA-256 from the offer: the echo gives it away.
    let downgraded = rfc8489_request(&mut alice, Method::ALLOCATE, &[udp()], &[0, 1, 0, 0], false);
    assert_eq!(
        code_of(&h.send(alice.tuple, &downgraded).unwrap().1),
        Some(400)
    );

    let request = rfc8489_request(&mut alice, Method::ALLOCATE, &[udp()], &offered, false);
    let (_, response) = h.send(alice.tuple, &request).unwrap();
    let message = Message::parse(&response).unwrap();
    assert_eq!(
        message.class(),
        Class::Success,
        "{:?}",
        error_code(&message)
    );
    let key = rtc_auth::long_term::long_term_key_sha256(&alice.username, REALM, &alice.password);
    assert!(message.has_integrity_sha256(), "answered in kind");
    assert!(message.verify_integrity_sha256(&key));
    assert!(!message.verify_integrity_sha256(&[0; 32]));
    // Later requests on the allocation keep using the SHA-256 key.
    let refresh = rfc8489_request(&mut alice, Method::REFRESH, &[], &offered, false);
    assert_eq!(code_of(&h.send(alice.tuple, &refresh).unwrap().1), None);
    // The wrong password fails with SHA-256 too.
    let mut mallory = h.client("192.0.2.9:5000", "@mallory:example.org", UNIX + 7200);
    mallory.nonce = alice.nonce.clone();
    mallory.tuple = tuple("192.0.2.1:5001");
    mallory.password = "wrong".into();
    let bad = rfc8489_request(&mut mallory, Method::ALLOCATE, &[udp()], &offered, false);
    assert_eq!(code_of(&h.send(mallory.tuple, &bad).unwrap().1), Some(401));
}

#[test]
fn userhash_for_static_users() {
    let mut users = BTreeMap::new();
    users.insert(
        "bob".to_owned(),
        UserKeys::from_password("bob", REALM, "secret"),
    );
    let mut h = Harness::new(ServerConfig {
        credentials: Credentials::Users(users),
        ..rest_config()
    });
    let mut bob = h.client("192.0.2.2:5000", "", UNIX);
    bob.username = "bob".into();
    bob.password = "secret".into();
    let challenge = h.unauthenticated(&mut bob, Method::ALLOCATE, &[udp()]);
    let message = Message::parse(&challenge).unwrap();
    assert!(
        message
            .attr(AttrType::NONCE)
            .unwrap()
            .starts_with(b"obMatJos2AAAD"),
        "username anonymity offered"
    );
    bob.nonce = message.attr(AttrType::NONCE).unwrap().to_vec();
    let offered = message
        .attr(AttrType::PASSWORD_ALGORITHMS)
        .unwrap()
        .to_vec();
    let request = rfc8489_request(&mut bob, Method::ALLOCATE, &[udp()], &offered, true);
    let (_, response) = h.send(bob.tuple, &request).unwrap();
    assert_eq!(Message::parse(&response).unwrap().class(), Class::Success);
    assert_eq!(h.server.allocation_count(), 1);
    let mut nobody = h.client("192.0.2.3:5000", "", UNIX);
    nobody.username = "nobody".into();
    nobody.password = "secret".into();
    nobody.nonce = bob.nonce.clone();
    nobody.tuple = tuple("192.0.2.2:5001");
    let request = rfc8489_request(&mut nobody, Method::ALLOCATE, &[udp()], &offered, true);
    assert_eq!(
        code_of(&h.send(nobody.tuple, &request).unwrap().1),
        Some(401)
    );
}

#[test]
fn no_udp_relay_answers_442() {
    let mut config = rest_config();
    config.udp_relay = false;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::ALLOCATE, &[udp()])),
        Some(442)
    );
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

/// Quota counts shared by the shards of a test, as the driver shares them.
#[derive(Clone, Default)]
struct SharedCounts(std::sync::Arc<std::sync::Mutex<QuotaCounts>>);

impl QuotaLedger for SharedCounts {
    fn admit(
        &mut self,
        user: &str,
        limits: &QuotaLimits,
    ) -> Result<(), crate::quota::QuotaExceeded> {
        self.0.lock().unwrap().admit(user, limits)
    }

    fn release(&mut self, user: &str) {
        self.0.lock().unwrap().release(user);
    }

    fn admit_connection(&mut self, user: &str, limits: &QuotaLimits) -> bool {
        self.0.lock().unwrap().admit_connection(user, limits)
    }

    fn release_connections(&mut self, user: &str, count: u32) {
        self.0.lock().unwrap().release_connections(user, count);
    }
}

/// Rate limits shared by the shards of a test, as the driver shares them.
#[derive(Clone)]
struct SharedLimits(std::sync::Arc<std::sync::Mutex<AbuseLimiters>>);

impl RateLimits for SharedLimits {
    fn admit(&mut self, what: Limited, source: IpAddr, now: Instant, probe: bool) -> bool {
        self.0.lock().unwrap().admit(what, source, now, probe)
    }

    fn set_challenge_rate(&mut self, rate: u32, now: Instant) {
        self.0.lock().unwrap().set_challenge_rate(rate, now);
    }
}

/// Two shards of one process, each with its own fake relay ports, sharing quota counts
/// and rate limits.
fn shard_pair(config: ServerConfig) -> (Harness, Harness) {
    let start = Instant::now();
    let mut group = ShardContext::group(2, [7; 32], start).into_iter();
    let counts = SharedCounts::default();
    let hasher = SeededState::new(&mut rand::rngs::SmallRng::seed_from_u64(5));
    let limits = SharedLimits(std::sync::Arc::new(std::sync::Mutex::new(
        AbuseLimiters::new(config.challenge_rate, start, hasher),
    )));
    let mut shard = |seed| Harness {
        server: Server::new_shard(
            config.clone(),
            start,
            UNIX,
            [seed; 32],
            group.next().unwrap(),
            Box::new(counts.clone()),
            Box::new(limits.clone()),
        ),
        relays: FakeDriver::default(),
        start,
        now: start,
        out: Vec::new(),
    };
    (shard(1), shard(2))
}

/// Sends `bytes` to `from`; when it hands them over, checks they go to `to` unchanged and
/// delivers them there. Returns the reply.
fn via_owner(from: &mut Harness, to: &mut Harness, tuple: FiveTuple, bytes: &[u8]) -> Vec<u8> {
    let (transmit, data) = from.send(tuple, bytes).expect("handed over");
    assert_eq!(transmit.destination, Destination::Shard { shard: 1, tuple });
    assert_eq!(data, bytes, "the whole input, unchanged");
    to.send(tuple, &data).expect("a reply").1
}

/// A Refresh naming another shard's ticket (or an Allocate naming its reservation token)
/// is handed over only once it authenticates: spoofed ones, unsigned or with a fake
/// MESSAGE-INTEGRITY, are answered here and leave no handover entry behind (before, each
/// filled the table, up to 65 536 entries, after which real moves failed).
#[test]
fn only_authenticated_requests_are_handed_to_another_shard() {
    let mut config = public_peer_config();
    config.mobility = true;
    let (mut zero, mut one) = shard_pair(config);
    let mut alice = one.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = one.request(
        &mut alice,
        Method::ALLOCATE,
        &[udp(), (AttrType::MOBILITY_TICKET, vec![])],
    );
    let ticket = ticket_of(&response).expect("ticket issued");
    let token = (AttrType::RESERVATION_TOKEN, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    let media = [0x40, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0, 0];
    for (port, fake) in [(7000, false), (7001, true)] {
        let spoofed = tuple(&format!("198.51.100.66:{port}"));
        for (method, attrs) in [
            (
                Method::REFRESH,
                vec![(AttrType::MOBILITY_TICKET, ticket.clone())],
            ),
            (Method::ALLOCATE, vec![udp(), token.clone()]),
        ] {
            let mut bytes = Vec::new();
            let mut writer = MessageWriter::new(
                &mut bytes,
                method,
                Class::Request,
                TransactionId([port as u8; 12]),
            );
            for (kind, value) in &attrs {
                writer.attr(*kind, value);
            }
            if fake {
                writer
                    .attr(AttrType::USERNAME, b"1800000000:@mallory:example.org")
                    .attr(AttrType::REALM, REALM.as_bytes())
                    .attr(
                        AttrType::NONCE,
                        b"obMatJos2AAAB0000000000000000000000000000000",
                    )
                    .integrity(b"guessed");
            }
            let (transmit, answer) = zero.send(spoofed, &bytes).expect("answered here");
            assert_eq!(transmit.destination, Destination::Client(spoofed));
            let expected = if fake { 438 } else { 401 };
            assert_eq!(code_of(&answer), Some(expected), "{method:?}, fake {fake}");
        }
        assert!(
            zero.send(spoofed, &media[..6]).is_none(),
            "no handover entry for {spoofed:?}"
        );
    }
}

#[test]
fn shards_hand_moved_clients_and_reservations_to_their_owner() {
    let mut config = public_peer_config();
    config.mobility = true;
    config.total_quota = 3;
    let (mut zero, mut one) = shard_pair(config);

    // Alice allocates on shard 1; her ticket names it.
    let mut alice = one.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let response = one.request(
        &mut alice,
        Method::ALLOCATE,
        &[udp(), (AttrType::MOBILITY_TICKET, vec![])],
    );
    let ticket = ticket_of(&response).expect("ticket issued");
    assert_eq!(ticket[0], 1);
    let id = *one.relays.bound.values().next().unwrap();
    assert_eq!(one.bind_channel(&mut alice, 0x4000, PEER), None);

    // She moves; the kernel hashes her new 5-tuple to shard 0. A nonce shard 0 issued
    // checks on shard 1 (shared key).
    let mut moved = zero.client("198.51.100.9:7000", "@alice:example.org", UNIX + 7200);
    let challenge = zero.unauthenticated(&mut moved, Method::ALLOCATE, &[udp()]);
    moved.nonce = Message::parse(&challenge)
        .unwrap()
        .attr(AttrType::NONCE)
        .unwrap()
        .to_vec();
    let refresh = signed(
        &mut moved,
        Method::REFRESH,
        &[(AttrType::MOBILITY_TICKET, ticket.clone())],
        None,
    );
    let reply = via_owner(&mut zero, &mut one, moved.tuple, &refresh);
    assert_eq!(code_of(&reply), None);
    assert_eq!(one.server.allocation(id).unwrap().tuple, moved.tuple);
    // Her media keeps arriving on shard 0 and is handed over too; shard 1 relays it.
    let media = [0x40, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0, 0];
    let (transmit, _) = zero.send(moved.tuple, &media[..6]).unwrap();
    assert_eq!(
        transmit.destination,
        Destination::Shard {
            shard: 1,
            tuple: moved.tuple
        }
    );
    let (transmit, _) = one.send(moved.tuple, &media[..6]).unwrap();
    assert!(matches!(transmit.destination, Destination::Peer { .. }));
    // A client of shard 0 with an unknown ticket is answered there.
    let mut stranger = zero.client("192.0.2.50:1", "@alice:example.org", UNIX + 7200);
    let mut own_ticket = ticket.clone();
    own_ticket[0] = 0;
    assert_eq!(
        code_of(&zero.request(
            &mut stranger,
            Method::REFRESH,
            &[(AttrType::MOBILITY_TICKET, own_ticket)]
        )),
        Some(437)
    );

    // An EVEN-PORT reservation on shard 1, claimed by a client that lands on shard 0.
    let mut carol = one.client("192.0.2.3:5000", "@carol:example.org", UNIX + 7200);
    let response = one.request(
        &mut carol,
        Method::ALLOCATE,
        &[udp(), (AttrType::EVEN_PORT, vec![0x80])],
    );
    let token = Message::parse(&response)
        .unwrap()
        .attr(AttrType::RESERVATION_TOKEN)
        .expect("token")
        .to_vec();
    assert_eq!(token[0], 1);
    let mut dave = zero.client("192.0.2.4:5000", "@dave:example.org", UNIX + 7200);
    let attrs = [udp(), (AttrType::RESERVATION_TOKEN, token)];
    dave.next_tid += 1;
    let mut probe = Vec::new();
    MessageWriter::new(
        &mut probe,
        Method::ALLOCATE,
        Class::Request,
        TransactionId([dave.next_tid; 12]),
    )
    .attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
    .attr(AttrType::RESERVATION_TOKEN, &attrs[1].1);
    // Unauthenticated, it is challenged where it landed (the nonce is the process's).
    let (transmit, challenge) = zero.send(dave.tuple, &probe).expect("challenged");
    assert_eq!(transmit.destination, Destination::Client(dave.tuple));
    dave.nonce = Message::parse(&challenge)
        .unwrap()
        .attr(AttrType::NONCE)
        .unwrap()
        .to_vec();
    let allocate = signed(&mut dave, Method::ALLOCATE, &attrs, None);
    let reply = via_owner(&mut zero, &mut one, dave.tuple, &allocate);
    assert_eq!(code_of(&reply), None, "the reserved port, on its shard");

    // Quotas count across shards: three live allocations, all on shard 1, fill
    // total-quota for shard 0 too.
    let mut erin = zero.client("192.0.2.5:5000", "@erin:example.org", UNIX + 7200);
    assert_eq!(
        code_of(&zero.request(&mut erin, Method::ALLOCATE, &[udp()])),
        Some(486)
    );
}

mod binding;
mod dual;
mod limits;
mod peers;
mod routes;
mod tcp;
