//! ChannelBind and ChannelData (RFC 8656 §12).

use super::*;

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
