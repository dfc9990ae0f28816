//! The data plane: Send indications and `max-bps`.

use super::*;

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
