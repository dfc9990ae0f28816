//! The abuse limits on spoofable UDP input through the core: what counts as
//! unauthenticated, Binding, sharing between shards, liveness probes, and the size of
//! what a spoofed source gets back.

use super::*;
use crate::ratelimit::RateLimit;

/// A request of `method` with `attrs`, signed with a key the server never issued
/// (`fake`), or unsigned.
fn raw(method: Method, tid: u32, attrs: &[(AttrType, Vec<u8>)], fake: bool) -> Vec<u8> {
    let mut id = [0u8; 12];
    id[..4].copy_from_slice(&tid.to_be_bytes());
    let mut bytes = Vec::new();
    let mut writer = MessageWriter::new(&mut bytes, method, Class::Request, TransactionId(id));
    for (kind, value) in attrs {
        writer.attr(*kind, value);
    }
    if fake {
        writer.integrity(b"not a key the server knows");
    }
    bytes
}

/// How many of `requests` from `tuple` are answered.
fn answered(h: &mut Harness, tuple: FiveTuple, requests: impl Iterator<Item = Vec<u8>>) -> u32 {
    let mut count = 0;
    for request in requests {
        if h.send(tuple, &request).is_some() {
            count += 1;
        }
    }
    count
}

const BURST: u32 = RateLimit::UNAUTHENTICATED_PER_SOURCE.burst;

/// A fake MESSAGE-INTEGRITY used to skip the unauthenticated limiter: a request counts
/// as unauthenticated until its integrity verifies.
#[test]
fn fake_integrity_counts_as_unauthenticated() {
    let mut h = Harness::new(rest_config());
    let source = tuple("203.0.113.9:4000");
    // No REALM or NONCE: 400 for each, which was never limited.
    let floods = (0..1000).map(|tid| raw(Method::ALLOCATE, tid, &[udp()], true));
    assert_eq!(answered(&mut h, source, floods), BURST);
    let (unauthenticated, _) = h.server.rate_limited();
    assert_eq!(unauthenticated, 1000 - u64::from(BURST));
    // A valid nonce and a wrong key: 401s, which the challenge limiter bounds too.
    let mut h = Harness::new(rest_config());
    let nonce = {
        let challenge = h.send(source, &raw(Method::ALLOCATE, 0, &[udp()], false));
        let (_, bytes) = challenge.expect("challenge");
        Message::parse(&bytes)
            .unwrap()
            .attr(AttrType::NONCE)
            .unwrap()
            .to_vec()
    };
    let attrs = [
        udp(),
        (AttrType::USERNAME, b"1800000000:@eve:example.org".to_vec()),
        (AttrType::REALM, REALM.as_bytes().to_vec()),
        (AttrType::NONCE, nonce),
    ];
    let floods = (1..1000).map(|tid| raw(Method::ALLOCATE, tid, &attrs, true));
    let burst = rest_config().challenge_rate * 2;
    assert_eq!(answered(&mut h, source, floods), burst - 1);
}

/// Binding is never authenticated: every one counts, integrity or not.
#[test]
fn bindings_are_limited_with_or_without_integrity() {
    let mut h = Harness::new(rest_config());
    for (source, fake) in [("203.0.113.9:4000", true), ("203.0.113.10:4000", false)] {
        let floods = (0..1000).map(|tid| raw(Method::BINDING, tid, &[], fake));
        assert_eq!(answered(&mut h, tuple(source), floods), BURST, "{source}");
    }
}

/// Requests whose integrity verifies are never counted: a busy client behind one address
/// keeps its permissions however many it refreshes.
#[test]
fn authenticated_requests_are_not_counted() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.allocate(&mut alice);
    for round in 0..2 * BURST {
        let response = h.permit(&mut alice, PEER);
        assert_eq!(code_of(&response), None, "refresh {round}");
    }
    assert_eq!(h.server.rate_limited(), (0, 0));
}

/// SO_REUSEPORT spreads one source's 5-tuples over the shards: the limits are the
/// process's, so two shards answer no more than one would.
#[test]
fn shards_share_the_limits() {
    let (mut zero, mut one) = shard_pair(rest_config());
    let mut total = 0;
    for tid in 0..1000u32 {
        let (shard, port) = if tid % 2 == 0 {
            (&mut zero, 4000)
        } else {
            (&mut one, 4001)
        };
        let source = tuple(&format!("203.0.113.9:{port}"));
        total += answered(
            shard,
            source,
            std::iter::once(raw(Method::BINDING, tid, &[], false)),
        );
    }
    assert_eq!(total, BURST);
}

/// The container health check is a Binding from loopback: a spoofed flood that empties
/// the all-sources bucket must not fail it (Kubernetes would restart the pod).
#[test]
fn a_liveness_probe_survives_a_spoofed_flood() {
    let mut h = Harness::new(rest_config());
    let global = RateLimit::UNAUTHENTICATED_GLOBAL.burst;
    for i in 0..=global {
        let spoofed = FiveTuple {
            client: SocketAddr::from((std::net::Ipv4Addr::from(0xC633_6400 + i), 4000)),
            ..tuple("198.51.100.1:1")
        };
        h.send(spoofed, &raw(Method::BINDING, i, &[], false));
    }
    let binding = raw(Method::BINDING, 7, &[], false);
    assert!(
        h.send(tuple("192.0.2.200:4000"), &binding).is_none(),
        "the global bucket is empty"
    );
    for probe in ["127.0.0.1:40000", "[::1]:40000"] {
        let (_, answer) = h.send(tuple(probe), &binding).expect(probe);
        assert_eq!(Message::parse(&answer).unwrap().class(), Class::Success);
    }
}

/// What a spoofed source gets back: the 401 carries no reason phrase, and a request
/// shorter than any client's first Allocate gets a bare 400 instead of the challenge.
#[test]
fn answers_to_unauthenticated_requests_are_small() {
    let mut h = Harness::new(rest_config());
    let source = tuple("203.0.113.9:4000");
    let smallest_allocate = raw(Method::ALLOCATE, 1, &[udp()], false);
    assert_eq!(smallest_allocate.len(), 28);
    let (_, challenge) = h.send(source, &smallest_allocate).unwrap();
    let message = Message::parse(&challenge).unwrap();
    assert_eq!(error_code(&message), Some(401));
    assert!(message.attr(AttrType::NONCE).is_some());
    // 20 header + 8 ERROR-CODE + 16 REALM "example.org" + 52 NONCE + 12
    // PASSWORD-ALGORITHMS: 3.9 times the request (was 124, 4.4 times).
    assert_eq!(challenge.len(), 108);
    for method in [Method::ALLOCATE, Method::REFRESH, Method::CREATE_PERMISSION] {
        let bare = raw(method, 2, &[], false);
        let (_, answer) = h.send(source, &bare).unwrap();
        assert_eq!(code_of(&answer), Some(400), "{method:?}");
        assert_eq!(answer.len(), 28, "{method:?}: was 124 bytes for 20");
    }
    // Over TCP nothing is spoofed: the full challenge, whatever the size.
    let stream = FiveTuple {
        transport: Transport::Tcp,
        ..source
    };
    let (_, answer) = h
        .send(stream, &raw(Method::ALLOCATE, 3, &[], false))
        .unwrap();
    assert_eq!(code_of(&answer), Some(401));
}
