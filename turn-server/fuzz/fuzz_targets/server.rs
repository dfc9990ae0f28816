//! The whole server fed fuzz-chosen datagrams from three clients and four peers (two per
//! address family), with time steps, in no-auth mode so inputs reach allocations (dual
//! ones too), permissions and channels; and RFC 6062 events (peers connecting in, Connects
//! finishing, bytes on joined connections) for TCP allocations.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use turn_proto::ConnectionId;
use turn_proto::auth::Credentials;
use turn_proto::connection::Direction;
use turn_proto::policy::PeerPolicy;
use turn_proto::testing::FakeDriver;
use turn_proto::{AllocId, FiveTuple, PEER_HEADROOM, Server, ServerConfig, Transport};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut config = ServerConfig {
        realm: "example.org".into(),
        credentials: Credentials::None,
        mobility: true,
        max_bps: 10_000,
        relay_ipv6: true,
        ..ServerConfig::default()
    };
    config.policy = PeerPolicy::new(
        rtc_auth::ip_range::IpRangeSet::parse(["203.0.113.0/24", "2001:db8:77::/48"]).unwrap(),
        Default::default(),
        true,
        true,
    );
    let mut server = Server::new(config, start, 1_700_000_000, [1; 32]);
    // Binds succeed until the port numbers run out; Connects wait in `connects` for the
    // fuzzer to finish them; peers connect in only where a listener is.
    let mut driver = FakeDriver::default();
    let mut out = Vec::new();
    let mut datagram = Vec::new();
    let mut now = start;
    let transports = [Transport::Udp, Transport::Tcp, Transport::Tls];
    // Each chunk: [selector, time step, length, bytes...]. Selector bit 0x80 picks a peer
    // over a client; for peers, bits 0x03 and 0x04 name the allocation, 0x08 the host,
    // 0x10 the address family, and 0x40 a TCP event instead of a datagram: 0x20 clear, the
    // peer connects in (to a TCP allocation); 0x20 set, the oldest Connect finishes (failed when the step is
    // odd), and then the body's length in bytes passes on connection `step`.
    let mut rest = data;
    while rest.len() >= 3 {
        let (selector, step, len) = (rest[0], rest[1], usize::from(rest[2]));
        let body = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[(3 + len).min(rest.len())..];
        now += Duration::from_millis(u64::from(step) * 100);
        server.handle_timeout(now, 1_700_000_000);
        if selector & 0x80 == 0 {
            let tuple = FiveTuple {
                transport: transports[usize::from(selector % 3)],
                client: SocketAddr::from(([192, 0, 2, 1 + selector % 3], 5000)),
                server: SocketAddr::from(([192, 0, 2, 10], 3478)),
            };
            let _ = server.handle_client(now, tuple, body, &mut out);
            if selector & 0x40 != 0 {
                server.handle_disconnect(tuple);
            }
        } else {
            let id = AllocId {
                index: u32::from(selector & 0x03),
                generation: u32::from((selector >> 2) & 0x01),
            };
            let host = selector >> 3 & 1;
            let peer = if selector & 0x10 == 0 {
                SocketAddr::from(([203, 0, 113, 7 + host], 9000))
            } else {
                SocketAddr::from(([0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 7 + u16::from(host)], 9000))
            };
            if selector & 0x40 == 0 {
                datagram.clear();
                datagram.extend_from_slice(&[0; PEER_HEADROOM]);
                datagram.extend_from_slice(body);
                let _ = server.handle_peer(now, id, peer, &mut datagram, &mut out);
            } else if selector & 0x20 == 0 {
                if driver.listening.values().any(|listener| *listener == id) {
                    let _ = server.handle_tcp_accepted(now, id, peer, &mut out);
                }
            } else {
                if !driver.connects.is_empty() {
                    let (connection, _, _) = driver.connects.remove(0);
                    let _ = server.handle_tcp_connected(now, connection, step % 2 == 0, &mut out);
                }
                let direction = if step % 2 == 0 {
                    Direction::Upstream
                } else {
                    Direction::Downstream
                };
                let connection = ConnectionId(u32::from(step));
                let _ = server.relay_tcp(now, connection, direction, body.len());
            }
        }
        // Binds answered at once, as the real driver does; the rest logged.
        driver.carry_out(&mut server, now);
    }
    server.close_all();
    driver.carry_out(&mut server, now);
});
