//! Refresh (RFC 8656 §7.3) and mobility (RFC 8016).

use super::*;

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
