//! The rendered document after real traffic through a core with fake relay ports.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use turn_proto::codec::attribute::AttrType;
use turn_proto::codec::{Class, MessageWriter, Method, TransactionId};
use turn_proto::server_config::ServerConfig;
use turn_proto::testing::FakeDriver;
use turn_proto::{FiveTuple, PEER_HEADROOM};

fn request(method: Method, tid: u8, peer: Option<SocketAddr>, data: Option<&[u8]>) -> Vec<u8> {
    let class = if data.is_some() {
        Class::Indication
    } else {
        Class::Request
    };
    let mut bytes = Vec::new();
    let mut writer = MessageWriter::new(&mut bytes, method, class, TransactionId([tid; 12]));
    if method == Method::ALLOCATE {
        writer.attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    }
    if let Some(peer) = peer {
        writer.xor_address(AttrType::XOR_PEER_ADDRESS, peer);
    }
    if let Some(data) = data {
        writer.attr(AttrType::DATA, data);
    }
    bytes
}

/// The value of the sample line starting with `series ` (name and labels).
fn value(doc: &str, series: &str) -> u64 {
    doc.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing in\n{doc}"))
        .parse()
        .unwrap()
}

#[test]
fn counts_follow_traffic_and_user_labels_are_opt_in() {
    let now = Instant::now();
    // No auth: the test is about counting, not credentials.
    let mut server = Server::new(ServerConfig::default(), now, 1_700_000_000, [1; 32]);
    let tuple = FiveTuple {
        transport: Transport::Udp,
        client: "192.0.2.1:40000".parse().unwrap(),
        server: "192.0.2.10:3478".parse().unwrap(),
    };
    let peer: SocketAddr = "8.8.8.8:9000".parse().unwrap();
    let mut out = Vec::new();
    let mut driver = FakeDriver::default();
    // The answer now, or the one that carrying out the server's events produced (an
    // Allocate's comes once its relay port is bound).
    let mut send = |server: &mut Server, bytes: Vec<u8>| {
        let now_answer = server.handle_client(now, tuple, &bytes, &mut out);
        let later = driver.carry_out(server, now);
        now_answer.or_else(|| later.into_iter().next().map(|(transmit, _)| transmit))
    };
    assert!(send(&mut server, request(Method::BINDING, 1, None, None)).is_some());
    assert!(send(&mut server, request(Method::ALLOCATE, 2, None, None)).is_some());
    assert!(
        send(
            &mut server,
            request(Method::CREATE_PERMISSION, 3, Some(peer), None)
        )
        .is_some()
    );
    for tid in 10..13 {
        let sent = send(
            &mut server,
            request(Method::SEND, tid, Some(peer), Some(b"hello")),
        );
        assert!(sent.is_some());
    }
    let (id, _) = server.allocations().next().unwrap();
    let mut out = Vec::new();
    let mut datagram = [&[0; PEER_HEADROOM][..], b"0123456789"].concat();
    assert!(
        server
            .handle_peer(now, id, peer, &mut datagram, &mut out)
            .is_some()
    );
    assert!(
        server
            .handle_client(now, tuple, b"junk", &mut out)
            .is_none()
    );

    let mut lifetimes = LifetimeHistogram::default();
    lifetimes.record(Duration::from_secs(42));
    let driver = DriverCounters { send_failures: 2 };
    let doc = render(
        &Snapshot::of(&server, now, driver, &lifetimes, ReportOptions::default()),
        ReportOptions::default(),
    );
    assert_eq!(value(&doc, "turn_total_allocations"), 1);
    assert_eq!(value(&doc, "turn_allocations{transport=\"udp\"}"), 1);
    assert_eq!(value(&doc, "turn_allocations{transport=\"tcp\"}"), 0);
    assert_eq!(value(&doc, "turn_permissions{transport=\"udp\"}"), 1);
    assert_eq!(value(&doc, "turn_channels{transport=\"udp\"}"), 0);
    assert_eq!(value(&doc, "stun_binding_request"), 1);
    assert_eq!(value(&doc, "turn_traffic_rcvp"), 3);
    assert_eq!(value(&doc, "turn_traffic_rcvb"), 15);
    assert_eq!(value(&doc, "turn_traffic_peer_rcvb"), 10);
    assert_eq!(value(&doc, "turn_total_traffic_rcvb"), 25);
    assert_eq!(
        value(
            &doc,
            "turn_relayed_packets_total{direction=\"peer_to_client\"}"
        ),
        1
    );
    assert_eq!(value(&doc, "turn_drops_total{reason=\"malformed\"}"), 1);
    assert_eq!(value(&doc, "turn_drops_total{reason=\"send_failed\"}"), 2);
    assert_eq!(
        value(&doc, "turn_allocation_lifetime_seconds_bucket{le=\"60\"}"),
        1
    );
    assert_eq!(value(&doc, "turn_allocation_lifetime_seconds_count"), 1);
    assert_eq!(value(&doc, "turn_draining"), 0);
    assert_eq!(value(&doc, "turn_tcp_relay_connections"), 0);
    assert_eq!(
        value(&doc, "turn_ratelimit_refused_total{limit=\"challenges\"}"),
        0
    );
    assert!(!doc.contains("user="), "no user labels by default");

    // Expired permissions stop counting before the sweep removes them.
    let later = now + Duration::from_secs(301);
    let doc = render(
        &Snapshot::of(&server, later, driver, &lifetimes, ReportOptions::default()),
        ReportOptions::default(),
    );
    assert_eq!(value(&doc, "turn_permissions{transport=\"udp\"}"), 0);

    let labelled = ReportOptions {
        username_labels: true,
    };
    let doc = render(
        &Snapshot::of(&server, now, driver, &lifetimes, labelled),
        labelled,
    );
    assert_eq!(value(&doc, "turn_user_allocations{user=\"\"}"), 1);
    assert_eq!(
        value(
            &doc,
            "turn_user_relayed_bytes{user=\"\",direction=\"client_to_peer\"}"
        ),
        15
    );

    // Two shards: the scrape adds their figures up.
    let one = Snapshot::of(&server, now, driver, &lifetimes, labelled);
    let mut both = one.clone();
    both.merge(&one);
    let doc = render(&both, labelled);
    assert_eq!(value(&doc, "turn_total_allocations"), 2);
    assert_eq!(value(&doc, "turn_traffic_rcvb"), 30);
    assert_eq!(value(&doc, "turn_user_allocations{user=\"\"}"), 2);
    assert_eq!(value(&doc, "turn_drops_total{reason=\"send_failed\"}"), 4);
    assert_eq!(value(&doc, "turn_allocation_lifetime_seconds_count"), 2);
}

#[test]
fn every_family_has_help_and_type_once() {
    let server = Server::new(ServerConfig::default(), Instant::now(), 0, [0; 32]);
    let doc = render(
        &Snapshot::of(
            &server,
            Instant::now(),
            DriverCounters::default(),
            &LifetimeHistogram::default(),
            ReportOptions::default(),
        ),
        ReportOptions::default(),
    );
    let mut families = std::collections::HashSet::new();
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(families.insert(name.to_owned()), "{name} twice");
        } else if !line.starts_with("# HELP ") {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| families.contains(*base))
                .unwrap_or(name);
            assert!(families.contains(family), "{name} before its TYPE");
        }
    }
    assert!(families.len() > 25, "{}", families.len());
}
