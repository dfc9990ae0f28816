//! Relay sockets as outputs: an Allocate waits for [`Event::Bind`] to be answered, and
//! the answer (not a callback) decides it.

use super::*;
use crate::{RelayBinding, SocketId};

/// Sends a signed Allocate without carrying out the server's events.
fn allocate_unanswered(h: &mut Harness, client: &mut Client, tid: Option<u8>) -> Vec<u8> {
    if client.nonce.is_empty() {
        let challenge = h.unauthenticated(client, Method::ALLOCATE, &[udp()]);
        client.nonce = Message::parse(&challenge)
            .unwrap()
            .attr(AttrType::NONCE)
            .unwrap()
            .to_vec();
    }
    let bytes = signed(client, Method::ALLOCATE, &[udp()], tid);
    assert!(
        h.server
            .handle_client(h.now, client.tuple, &bytes, &mut h.out)
            .is_none(),
        "answered once the relay port is bound"
    );
    bytes
}

#[test]
fn an_allocate_is_answered_when_the_driver_reports_its_port() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let first = allocate_unanswered(&mut h, &mut alice, None);
    let Some(Event::Bind(request)) = h.server.poll_event() else {
        panic!("a bind request");
    };
    assert!(h.server.poll_event().is_none());
    assert!(!request.tcp && request.additional.is_none());
    assert_eq!(request.relay.client, alice.tuple.client);
    // A retransmission while the port is being bound is not a second allocation.
    let tid = alice.next_tid;
    assert!(
        h.server
            .handle_client(h.now, alice.tuple, &first, &mut h.out)
            .is_none()
    );
    assert!(h.server.poll_event().is_none(), "no second bind");
    assert_eq!(
        h.server.allocation_count(),
        0,
        "not live before it is bound"
    );

    let relay = Relay {
        address: "198.51.100.1:50000".parse().unwrap(),
        socket: SocketId(7),
    };
    let outcome = BindOutcome {
        relay: Ok(RelayBinding {
            relay,
            reserved: None,
        }),
        additional: None,
    };
    let transmit = h
        .server
        .relay_bound(h.now, request.allocation, outcome, &mut h.out)
        .expect("the Allocate answer");
    assert_eq!(transmit.destination, Destination::Client(alice.tuple));
    assert_eq!(relayed(&h.out), relay.address);
    assert_eq!(
        Message::parse(&h.out).unwrap().transaction(),
        TransactionId([tid; 12])
    );
    assert_eq!(h.server.allocation_count(), 1);
    // A late or repeated answer for the same request only gets its sockets released.
    let again = BindOutcome {
        relay: Ok(RelayBinding {
            relay: Relay {
                address: "198.51.100.1:50002".parse().unwrap(),
                socket: SocketId(8),
            },
            reserved: None,
        }),
        additional: None,
    };
    assert!(
        h.server
            .relay_bound(h.now, request.allocation, again, &mut h.out)
            .is_none()
    );
    assert_eq!(
        h.server.poll_event(),
        Some(Event::Release(Relay {
            address: "198.51.100.1:50002".parse().unwrap(),
            socket: SocketId(8),
        }))
    );
}

#[test]
fn a_failed_bind_answers_508_and_gives_the_quota_back() {
    let mut config = public_peer_config();
    config.total_quota = 1;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    allocate_unanswered(&mut h, &mut alice, None);
    let Some(Event::Bind(request)) = h.server.poll_event() else {
        panic!("a bind request");
    };
    let failed = BindOutcome {
        relay: Err(NoRelayPort),
        additional: None,
    };
    let answer = h
        .server
        .relay_bound(h.now, request.allocation, failed, &mut h.out)
        .expect("an answer");
    assert_eq!(answer.destination, Destination::Client(alice.tuple));
    assert_eq!(code_of(&h.out), Some(508));
    // The place counted for it is free again: the next Allocate fits total-quota=1.
    let (_, relay) = h.allocate(&mut alice);
    assert!(h.relays.bound.contains_key(&relay));
}
