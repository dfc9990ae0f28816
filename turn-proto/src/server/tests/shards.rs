//! Several shards of one process: requests naming another shard's allocation are handed
//! to it once authenticated, and quotas count across shards.

use super::*;

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
