//! CreatePermission and the peer policy (RFC 8656 §9).

use super::*;

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
