//! `reconfigure` and `allocations` through the public inputs, with fake relay ports.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_auth::ip_range::IpRangeSet;
use rtc_auth::long_term::long_term_key;
use rtc_auth::rest::{RestVerifier, mint};
use rtc_auth::secret::Secret;

use super::*;
use crate::codec::attribute::AttrType;
use crate::codec::{Class, Message, MessageWriter, Method, TransactionId};
use crate::names::{FiveTuple, Transport};
use crate::policy::PeerPolicy;
use crate::testing::FakeDriver;
use crate::transmit::Destination;

const UNIX: u64 = 1_700_000_000;
const REALM: &str = "example.org";

fn config(secrets: &[&str], denied: &[&str]) -> ServerConfig {
    ServerConfig {
        realm: REALM.into(),
        credentials: Credentials::Rest(RestVerifier::new(
            secrets.iter().map(|s| Secret::new(*s)).collect(),
            ':',
        )),
        policy: PeerPolicy::new(
            IpRangeSet::new(),
            IpRangeSet::parse(denied.iter().copied()).unwrap(),
            false,
            true,
        ),
        ..ServerConfig::default()
    }
}

struct Session {
    server: Server,
    relays: FakeDriver,
    now: Instant,
    tuple: FiveTuple,
    username: String,
    key: [u8; 16],
    nonce: Vec<u8>,
    tid: u8,
}

impl Session {
    fn new(config: ServerConfig, secret: &str) -> Self {
        let now = Instant::now();
        let credential = mint(&Secret::new(secret), "alice", UNIX + 3600, ':');
        Self {
            server: Server::new(config, now, UNIX, [3; 32]),
            relays: FakeDriver::default(),
            now,
            tuple: FiveTuple {
                transport: Transport::Udp,
                client: "192.0.2.1:40000".parse().unwrap(),
                server: "192.0.2.10:3478".parse().unwrap(),
            },
            key: long_term_key(&credential.username, REALM, &credential.password),
            username: credential.username,
            nonce: Vec::new(),
            tid: 0,
        }
    }

    /// Sends a request signed with the session's key, fetching a nonce first when the
    /// server asks (401/438); returns the response's class and error code.
    fn request(&mut self, method: Method, peer: Option<SocketAddr>) -> (Class, Option<u16>) {
        for attempt in 0..2 {
            self.tid += 1;
            let mut bytes = Vec::new();
            let mut writer = MessageWriter::new(
                &mut bytes,
                method,
                Class::Request,
                TransactionId([self.tid; 12]),
            );
            if method == Method::ALLOCATE {
                writer.attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            }
            if let Some(peer) = peer {
                writer.xor_address(AttrType::XOR_PEER_ADDRESS, peer);
            }
            if method == Method::CHANNEL_BIND {
                writer.attr(AttrType::CHANNEL_NUMBER, &[0x40, 0x00, 0, 0]);
            }
            writer
                .attr(AttrType::USERNAME, self.username.as_bytes())
                .attr(AttrType::REALM, REALM.as_bytes())
                .attr(AttrType::NONCE, &self.nonce)
                .integrity(&self.key);
            let mut out = Vec::new();
            let now = self
                .server
                .handle_client(self.now, self.tuple, &bytes, &mut out);
            let later = self.relays.carry_out(&mut self.server, self.now);
            if now.is_none() {
                // An Allocate, answered once its relay port is bound.
                out = later.into_iter().next().expect("a response").1;
            }
            let message = Message::parse(&out).unwrap();
            let code = message
                .attr(AttrType::ERROR_CODE)
                .map(|v| u16::from(v[2]) * 100 + u16::from(v[3]));
            let needs_nonce = code == Some(438) || (code == Some(401) && self.nonce.is_empty());
            if attempt == 0
                && needs_nonce
                && let Some(fresh) = message.attr(AttrType::NONCE)
            {
                self.nonce = fresh.to_vec();
                continue;
            }
            return (message.class(), code);
        }
        panic!("no answer after a fresh nonce");
    }

    fn peer_reaches_client(&mut self, peer: SocketAddr) -> bool {
        let (id, _) = self.server.allocations().next().expect("an allocation");
        let mut out = Vec::new();
        let mut datagram = *b"\0\0\0\0media";
        matches!(
            self.server
                .handle_peer(self.now, id, peer, &mut datagram, &mut out),
            Some(transmit) if matches!(transmit.destination, Destination::Client(_))
        )
    }
}

#[test]
fn newly_denied_peer_loses_permission_and_channel_at_once() {
    let mut session = Session::new(config(&["north"], &[]), "north");
    let near: SocketAddr = "8.8.4.4:9000".parse().unwrap();
    let far: SocketAddr = "8.8.8.8:9000".parse().unwrap();
    assert_eq!(session.request(Method::ALLOCATE, None).0, Class::Success);
    assert_eq!(
        session.request(Method::CHANNEL_BIND, Some(near)).0,
        Class::Success
    );
    assert_eq!(
        session.request(Method::CREATE_PERMISSION, Some(far)).0,
        Class::Success
    );
    assert!(session.peer_reaches_client(near));

    let changed = session
        .server
        .reconfigure(config(&["north"], &["8.8.4.4"]), session.now);
    assert_eq!(
        changed,
        Reconfigured {
            permissions_removed: 1,
            channels_removed: 1,
            credentials_retired: 0,
        }
    );
    assert!(
        !session.peer_reaches_client(near),
        "denied peer cut at once"
    );
    assert!(session.peer_reaches_client(far), "other peers untouched");
    assert_eq!(session.server.allocation_count(), 1);
    assert_eq!(
        session.request(Method::CREATE_PERMISSION, Some(near)).1,
        Some(403)
    );
    assert_eq!(session.request(Method::REFRESH, None).0, Class::Success);
}

#[test]
fn added_secret_keeps_calls_and_retired_secret_ends_at_next_refresh() {
    let mut session = Session::new(config(&["north"], &[]), "north");
    assert_eq!(session.request(Method::ALLOCATE, None).0, Class::Success);

    // Rotation, step 1: the new secret first, the old one still listed.
    let changed = session
        .server
        .reconfigure(config(&["south", "north"], &[]), session.now);
    assert_eq!(changed.credentials_retired, 0);
    assert_eq!(session.request(Method::REFRESH, None).0, Class::Success);

    // Step 2: the old secret retired. Relaying goes on until the lifetime ends...
    let peer: SocketAddr = "9.9.9.9:9000".parse().unwrap();
    assert_eq!(
        session.request(Method::CREATE_PERMISSION, Some(peer)).0,
        Class::Success
    );
    let changed = session
        .server
        .reconfigure(config(&["south"], &[]), session.now);
    assert_eq!(changed.credentials_retired, 1);
    assert!(session.peer_reaches_client(peer));
    assert_eq!(session.server.allocation_count(), 1);
    // ...but the next refresh is refused.
    assert_eq!(session.request(Method::REFRESH, None).1, Some(401));
}

#[test]
fn quotas_apply_to_the_next_allocate_and_max_bps_to_live_ones() {
    let mut session = Session::new(config(&["north"], &[]), "north");
    assert_eq!(session.request(Method::ALLOCATE, None).0, Class::Success);
    let mut tighter = config(&["north"], &[]);
    tighter.total_quota = 1;
    tighter.max_bps = 100;
    session.server.reconfigure(tighter, session.now);
    assert_eq!(session.server.allocation_count(), 1, "never evicted");
    let (_, allocation) = session.server.allocations().next().unwrap();
    assert!(allocation.upstream_limit.is_some() && allocation.downstream_limit.is_some());

    session.tuple.client = "192.0.2.2:40000".parse().unwrap();
    session.nonce.clear();
    assert_eq!(session.request(Method::ALLOCATE, None).1, Some(486));
}

#[test]
fn stale_nonce_change_keeps_issued_nonces_under_the_new_lifetime() {
    let mut session = Session::new(config(&["north"], &[]), "north");
    assert_eq!(session.request(Method::ALLOCATE, None).0, Class::Success);
    let mut shorter = config(&["north"], &[]);
    shorter.stale_nonce = Some(Duration::from_secs(60));
    session.server.reconfigure(shorter, session.now);
    let old = session.nonce.clone();
    assert_eq!(session.request(Method::REFRESH, None).0, Class::Success);
    assert_eq!(session.nonce, old, "same key: no 438 round after a reload");
    session.now += Duration::from_secs(61);
    assert_eq!(session.request(Method::REFRESH, None).0, Class::Success);
    assert_ne!(session.nonce, old, "the new 60 s lifetime applies");
}

#[test]
fn challenge_rate_follows_reload() {
    let start = Instant::now();
    let mut server = Server::new(config(&["north"], &[]), start, UNIX, [5; 32]);
    let mut out = Vec::new();
    let tuple = FiveTuple {
        transport: Transport::Udp,
        client: "192.0.2.1:5000".parse().unwrap(),
        server: "192.0.2.10:3478".parse().unwrap(),
    };
    let mut answered = |server: &mut Server, count: u8| {
        (0..count)
            .filter(|i| {
                let mut request = Vec::new();
                MessageWriter::new(
                    &mut request,
                    Method::ALLOCATE,
                    Class::Request,
                    TransactionId([*i; 12]),
                )
                .attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
                server
                    .handle_client(start, tuple, &request, &mut out)
                    .is_some()
            })
            .count()
    };
    // The default: a burst of 20 challenges per source, then nothing at this instant.
    assert_eq!(answered(&mut server, 30), 20);
    // `unauthorized-ratelimit-rps=0` on reload: every request is answered.
    let mut off = config(&["north"], &[]);
    off.challenge_rate = 0;
    server.reconfigure(off, start);
    assert_eq!(answered(&mut server, 30), 30);
    // Back to a limit: a fresh bucket of twice the new rate.
    let mut five = config(&["north"], &[]);
    five.challenge_rate = 5;
    server.reconfigure(five, start);
    assert_eq!(answered(&mut server, 30), 10);
}
