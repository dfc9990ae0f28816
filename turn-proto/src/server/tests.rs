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
use crate::event::{BindOutcome, NoRelayPort};
use crate::names::Transport;
use crate::policy::PeerPolicy;
use crate::ratelimit::Limited;
use crate::testing::FakeDriver;
use crate::transmit::PEER_HEADROOM;

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

fn ticket_of(bytes: &[u8]) -> Option<Vec<u8>> {
    Message::parse(bytes)
        .unwrap()
        .attr(AttrType::MOBILITY_TICKET)
        .map(<[u8]>::to_vec)
}

mod allocate;
mod authenticate;
mod binding;
mod channel;
mod dual;
mod limits;
mod peers;
mod permission;
mod refresh;
mod relay;
mod routes;
mod shards;
mod tcp;
