//! Channel routes ([`Event::ChannelBound`] / [`Event::ChannelUnbound`]): what a driver
//! with a fast path is told it may relay alone, and that every way a channel stops being
//! relayable ends its route.

use super::*;

/// The route events since the last call, as (bound?, channel number, client, peer).
fn take_routes(h: &mut Harness) -> Vec<(bool, u16, FiveTuple, SocketAddr)> {
    std::mem::take(&mut h.relays.routes)
        .into_iter()
        .map(|event| match event {
            Event::ChannelBound(route) => (true, route.number, route.client, route.peer),
            Event::ChannelUnbound(route) => (false, route.number, route.client, route.peer),
            other => panic!("not a route event: {other:?}"),
        })
        .collect()
}

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

#[test]
fn a_channel_bind_installs_a_route_and_a_refresh_renews_it() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    let (id, relay) = h.allocate(&mut alice);
    assert_eq!(h.bind_channel(&mut alice, 0x4001, PEER), None);
    let routes = std::mem::take(&mut h.relays.routes);
    let [Event::ChannelBound(route)] = routes.as_slice() else {
        panic!("one route: {routes:?}");
    };
    assert_eq!(route.allocation, id);
    assert_eq!(route.client, alice.tuple);
    assert_eq!(route.number, 0x4001);
    assert_eq!(route.relay.address, relay);
    assert_eq!(route.peer, peer());
    // The permission (300 s) lapses before the channel (600 s).
    assert_eq!(route.expires, h.now + Duration::from_secs(300));

    // A refresh later reports the new expiry; a CreatePermission alone moves it too.
    h.advance(100);
    assert_eq!(h.bind_channel(&mut alice, 0x4001, PEER), None);
    let routes = std::mem::take(&mut h.relays.routes);
    let [Event::ChannelBound(refreshed)] = routes.as_slice() else {
        panic!("one refresh: {routes:?}");
    };
    assert_eq!(refreshed.expires, h.now + Duration::from_secs(300));
    // Traffic on the fast path's channel still goes through the core when it arrives
    // there (a driver without a fast path): same answer as before.
    assert!(h.peer_sends(id, PEER, b"rtcp").is_some());
    assert!(take_routes(&mut h).is_empty(), "data changes no route");
}

#[test]
fn every_way_a_channel_stops_ends_its_route() {
    // Permission lapses while the channel lives: ended within one sweep.
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.allocate(&mut alice);
    h.bind_channel(&mut alice, 0x4001, PEER);
    take_routes(&mut h);
    h.advance(299);
    assert!(take_routes(&mut h).is_empty());
    h.advance(2);
    assert_eq!(
        take_routes(&mut h),
        vec![(false, 0x4001, alice.tuple, peer())]
    );
    // A new permission for the still-bound channel's peer brings the route back.
    assert_eq!(code_of(&h.permit(&mut alice, PEER)), None);
    assert_eq!(
        take_routes(&mut h),
        vec![(true, 0x4001, alice.tuple, peer())]
    );

    // The allocation is deleted (Refresh with lifetime 0).
    let zero = (AttrType::LIFETIME, vec![0, 0, 0, 0]);
    assert_eq!(
        code_of(&h.request(&mut alice, Method::REFRESH, &[zero])),
        None
    );
    assert_eq!(
        take_routes(&mut h),
        vec![(false, 0x4001, alice.tuple, peer())]
    );

    // The allocation expires.
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    h.allocate(&mut bob);
    h.bind_channel(&mut bob, 0x4002, PEER);
    take_routes(&mut h);
    for _ in 0..2 {
        // Keep the permission alive past the allocation's default 600 s.
        h.advance(290);
        h.permit(&mut bob, PEER);
    }
    take_routes(&mut h);
    h.advance(30);
    assert_eq!(
        take_routes(&mut h),
        vec![(false, 0x4002, bob.tuple, peer())]
    );
}

#[test]
fn a_reload_that_denies_the_peer_ends_its_route() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.allocate(&mut alice);
    h.bind_channel(&mut alice, 0x4001, PEER);
    take_routes(&mut h);
    let mut config = public_peer_config();
    config.policy.allowed = IpRangeSet::new();
    h.server.reconfigure(config, h.now);
    h.relays.carry_out(&mut h.server, h.now);
    assert_eq!(
        take_routes(&mut h),
        vec![(false, 0x4001, alice.tuple, peer())]
    );
}

#[test]
fn a_moved_allocation_routes_from_its_new_address() {
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
    h.bind_channel(&mut alice, 0x4001, PEER);
    take_routes(&mut h);
    let mut moved = h.client("198.51.100.9:7000", "@alice:example.org", UNIX + 7200);
    let refresh = h.request(
        &mut moved,
        Method::REFRESH,
        &[(AttrType::MOBILITY_TICKET, ticket)],
    );
    assert_eq!(code_of(&refresh), None);
    assert_eq!(
        take_routes(&mut h),
        vec![
            (false, 0x4001, alice.tuple, peer()),
            (true, 0x4001, moved.tuple, peer())
        ]
    );
}

#[test]
fn allocations_that_need_the_core_per_packet_get_no_route() {
    // max-bps: the core's token bucket must see every packet.
    let mut config = public_peer_config();
    config.max_bps = 100_000;
    let mut h = Harness::new(config);
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.allocate(&mut alice);
    assert_eq!(h.bind_channel(&mut alice, 0x4001, PEER), None);
    assert!(take_routes(&mut h).is_empty());

    // A TCP client: ChannelData is framed on its stream.
    let mut h = Harness::new(public_peer_config());
    let mut bob = h.client("192.0.2.2:5000", "@bob:example.org", UNIX + 7200);
    bob.tuple.transport = Transport::Tcp;
    h.allocate(&mut bob);
    assert_eq!(h.bind_channel(&mut bob, 0x4001, PEER), None);
    assert!(take_routes(&mut h).is_empty());
}

#[test]
fn a_max_bps_reload_ends_routes() {
    let mut h = Harness::new(public_peer_config());
    let mut alice = h.client("192.0.2.1:5000", "@alice:example.org", UNIX + 7200);
    h.allocate(&mut alice);
    h.bind_channel(&mut alice, 0x4001, PEER);
    take_routes(&mut h);
    let mut config = public_peer_config();
    config.max_bps = 100_000;
    h.server.reconfigure(config, h.now);
    h.relays.carry_out(&mut h.server, h.now);
    assert_eq!(
        take_routes(&mut h),
        vec![(false, 0x4001, alice.tuple, peer())]
    );
}
