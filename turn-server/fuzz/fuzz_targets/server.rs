//! The whole server fed fuzz-chosen datagrams from three clients and four peers (two per
//! address family), with time steps, in no-auth mode so inputs reach allocations (dual
//! ones too), permissions and channels; and RFC 6062 events (peers connecting in, Connects
//! finishing, bytes on joined connections) for TCP allocations.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use turn_proto::auth::Credentials;
use turn_proto::connection::{ConnectionId, Direction, TcpRelayPorts};
use turn_proto::policy::PeerPolicy;
use turn_proto::{
    AllocId, FiveTuple, NoRelayPort, RelayBinding, RelayPorts, RelayRequest, Server, ServerConfig,
    Transport,
};

struct Relays {
    next_port: u16,
    tcp: TcpRelays,
}

/// RFC 6062 relays: listens succeed, Connects wait in `connecting` for the fuzzer to
/// finish them. Peers connect in only where a listener is, as with the real driver.
struct TcpRelays {
    next_port: u16,
    listening: Vec<AllocId>,
    connecting: Vec<ConnectionId>,
}

impl TcpRelayPorts for TcpRelays {
    fn listen(&mut self, id: AllocId, request: RelayRequest) -> Result<SocketAddr, NoRelayPort> {
        self.next_port = self.next_port.checked_add(1).ok_or(NoRelayPort)?;
        self.listening.push(id);
        Ok(SocketAddr::new(relay_ip(request.ipv6), self.next_port))
    }

    fn unlisten(&mut self, id: AllocId) {
        self.listening.retain(|listening| *listening != id);
    }

    fn connect(&mut self, connection: ConnectionId, _: SocketAddr, _: SocketAddr) {
        self.connecting.push(connection);
    }

    fn join(&mut self, _: ConnectionId, _: FiveTuple) {}

    fn close(&mut self, connection: ConnectionId) {
        self.connecting.retain(|c| *c != connection);
    }
}

fn relay_ip(ipv6: bool) -> IpAddr {
    if ipv6 {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into()
    } else {
        Ipv4Addr::new(198, 51, 100, 1).into()
    }
}

impl RelayPorts for Relays {
    fn bind(&mut self, _: AllocId, request: RelayRequest) -> Result<RelayBinding, NoRelayPort> {
        if let Some(relay) = request.reserved {
            return Ok(RelayBinding {
                relay,
                reserved: None,
            });
        }
        self.next_port = self.next_port.wrapping_add(2);
        if self.next_port < 2 {
            return Err(NoRelayPort);
        }
        let ip = relay_ip(request.ipv6);
        let relay = SocketAddr::new(ip, self.next_port);
        let reserved = request
            .reserve_next
            .then(|| SocketAddr::new(ip, self.next_port.wrapping_add(1)));
        Ok(RelayBinding { relay, reserved })
    }

    fn release(&mut self, _: SocketAddr) {}

    fn tcp(&mut self) -> Option<&mut dyn TcpRelayPorts> {
        Some(&mut self.tcp)
    }
}

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
    let mut relays = Relays {
        next_port: 40_000,
        tcp: TcpRelays {
            next_port: 30_000,
            listening: Vec::new(),
            connecting: Vec::new(),
        },
    };
    let mut out = Vec::new();
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
        server.handle_timeout(now, 1_700_000_000, &mut relays);
        if selector & 0x80 == 0 {
            let tuple = FiveTuple {
                transport: transports[usize::from(selector % 3)],
                client: SocketAddr::from(([192, 0, 2, 1 + selector % 3], 5000)),
                server: SocketAddr::from(([192, 0, 2, 10], 3478)),
            };
            let _ = server.handle_client(now, tuple, body, &mut relays, &mut out);
            if selector & 0x40 != 0 {
                server.handle_disconnect(tuple, &mut relays);
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
                let _ = server.handle_peer(now, id, peer, body, &mut out);
            } else if selector & 0x20 == 0 {
                if relays.tcp.listening.contains(&id) {
                    let _ = server.handle_tcp_accepted(now, id, peer, &mut out);
                }
            } else {
                if !relays.tcp.connecting.is_empty() {
                    let connection = relays.tcp.connecting.remove(0);
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
    }
    server.close_all(&mut relays);
});
