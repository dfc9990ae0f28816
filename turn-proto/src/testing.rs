//! An in-memory driver for tests and fuzzing (feature `testing`): it carries out the
//! server's events, binding relay ports on documentation addresses (198.51.100.1 and
//! 2001:db8::1), and logs what it was asked, so a test drives a [`Server`] through its
//! public API alone, as quinn-proto's tests drive an `Endpoint`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use crate::names::ConnectionId;
use crate::{
    AllocId, BindOutcome, Event, FiveTuple, NoRelayPort, Relay, RelayBinding, RelayRequest, Server,
    SocketId, Transmit,
};

/// The driver's part, faked; its fields are the log tests check.
#[derive(Debug, Default)]
pub struct FakeDriver {
    /// Offset of the next UDP relay port from 50 000.
    pub next_port: u16,
    next_tcp_port: u16,
    next_socket: u32,
    /// Live UDP relay addresses (reservations included) and their allocation.
    pub bound: HashMap<SocketAddr, AllocId>,
    /// UDP relay addresses released, in order.
    pub released: Vec<SocketAddr>,
    /// Refuse every UDP bind (508).
    pub fail: bool,
    /// Refuse IPv6 UDP binds.
    pub fail_ipv6: bool,
    /// Live TCP relay listeners and their allocation.
    pub listening: HashMap<SocketAddr, AllocId>,
    /// Allocations whose TCP listener was closed, in order.
    pub unlistened: Vec<AllocId>,
    /// Connects asked for: (connection, relay address, peer).
    pub connects: Vec<(ConnectionId, SocketAddr, SocketAddr)>,
    /// Joins asked for.
    pub joined: Vec<(ConnectionId, FiveTuple)>,
    /// Connections closed, in order.
    pub closed: Vec<ConnectionId>,
    /// Channel route events, in order.
    pub routes: Vec<Event>,
}

impl FakeDriver {
    /// Carries out every event `server` has queued; returns what answering them made the
    /// server send (Allocate answers), with the bytes.
    pub fn carry_out(&mut self, server: &mut Server, now: Instant) -> Vec<(Transmit, Vec<u8>)> {
        let mut sent = Vec::new();
        let mut out = Vec::new();
        while let Some(event) = server.poll_event() {
            match event {
                Event::Bind(request) => {
                    let id = request.allocation;
                    let relay = if request.tcp {
                        self.listen(id, request.relay)
                    } else {
                        self.bind(id, request.relay)
                    };
                    let additional = request
                        .additional
                        .map(|half| self.bind(id, half).map(|binding| binding.relay));
                    let outcome = BindOutcome { relay, additional };
                    if let Some(transmit) = server.relay_bound(now, id, outcome, &mut out) {
                        sent.push((transmit, out.clone()));
                    }
                }
                Event::Release(relay) => {
                    if let Some(id) = self.listening.remove(&relay.address) {
                        self.unlistened.push(id);
                    } else {
                        self.bound.remove(&relay.address);
                        self.released.push(relay.address);
                    }
                }
                Event::Connect {
                    connection,
                    relay,
                    peer,
                } => self.connects.push((connection, relay.address, peer)),
                Event::Join { connection, data } => self.joined.push((connection, data)),
                Event::Close { connection } => self.closed.push(connection),
                Event::ChannelBound(_) | Event::ChannelUnbound(_) => self.routes.push(event),
            }
        }
        sent
    }

    fn socket(&mut self) -> SocketId {
        self.next_socket = self.next_socket.wrapping_add(1);
        SocketId(self.next_socket)
    }

    fn bind(&mut self, id: AllocId, request: RelayRequest) -> Result<RelayBinding, NoRelayPort> {
        if self.fail || (request.ipv6 && self.fail_ipv6) {
            return Err(NoRelayPort);
        }
        if let Some(relay) = request.reserved {
            self.bound.insert(relay.address, id);
            return Ok(RelayBinding {
                relay,
                reserved: None,
            });
        }
        let mut port = 50_000u16.checked_add(self.next_port).ok_or(NoRelayPort)?;
        if request.even_port && port % 2 == 1 {
            port = port.checked_add(1).ok_or(NoRelayPort)?;
        }
        let next = port.checked_add(1).ok_or(NoRelayPort)?;
        self.next_port = port - 50_000 + 2;
        let ip = documentation_ip(request.ipv6);
        let relay = Relay {
            address: SocketAddr::new(ip, port),
            socket: self.socket(),
        };
        self.bound.insert(relay.address, id);
        let reserved = request.reserve_next.then(|| Relay {
            address: SocketAddr::new(ip, next),
            socket: self.socket(),
        });
        Ok(RelayBinding { relay, reserved })
    }

    fn listen(&mut self, id: AllocId, request: RelayRequest) -> Result<RelayBinding, NoRelayPort> {
        self.next_tcp_port = self.next_tcp_port.checked_add(1).ok_or(NoRelayPort)?;
        let port = 40_000u16
            .checked_add(self.next_tcp_port)
            .ok_or(NoRelayPort)?;
        let address = SocketAddr::new(documentation_ip(request.ipv6), port);
        self.listening.insert(address, id);
        Ok(RelayBinding {
            relay: Relay {
                address,
                socket: self.socket(),
            },
            reserved: None,
        })
    }
}

fn documentation_ip(ipv6: bool) -> IpAddr {
    if ipv6 {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into()
    } else {
        Ipv4Addr::new(198, 51, 100, 1).into()
    }
}
