//! Relay sockets: one UDP socket per allocation, bound in `min-port..=max-port`.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::rc::Rc;

use rand::Rng;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::tcp_relay::TcpRelays;
use turn_proto::connection::TcpRelayPorts;
use turn_proto::{AllocId, NoRelayPort, RelayBinding, RelayPorts, RelayRequest};

/// Where relay sockets may be bound.
#[derive(Debug, Clone)]
pub struct RelayRange {
    /// `relay-ip`; empty means "the local address that reaches the client".
    pub ips: Vec<IpAddr>,
    /// `min-port`.
    pub min_port: u16,
    /// `max-port`.
    pub max_port: u16,
    /// `relay-socket-buffer`: SO_RCVBUF and SO_SNDBUF asked for each relay socket.
    pub socket_buffer: usize,
}

struct Bound {
    socket: Rc<UdpSocket>,
    allocation: Option<AllocId>,
    task: Option<AbortHandle>,
}

/// The relay sockets of one shard.
pub struct RelaySockets {
    range: RelayRange,
    by_addr: HashMap<SocketAddr, Bound>,
    /// Keyed by allocation and family (true: IPv6): a dual allocation has one of each.
    by_allocation: HashMap<(AllocId, bool), SocketAddr>,
    /// Sockets bound during the last core call, waiting for the driver to start their
    /// receive task.
    started: Vec<(AllocId, SocketAddr, Rc<UdpSocket>)>,
    /// RFC 6062 TCP relays.
    pub(super) tcp: TcpRelays,
}

impl RelaySockets {
    /// An empty set for `range`.
    pub fn new(range: RelayRange) -> Self {
        Self {
            tcp: TcpRelays::new(range.clone()),
            range,
            by_addr: HashMap::new(),
            by_allocation: HashMap::new(),
            started: Vec::new(),
        }
    }

    /// The socket of allocation `id` that reaches `peer` (of the peer's family).
    pub fn socket(&self, id: AllocId, peer: SocketAddr) -> Option<&Rc<UdpSocket>> {
        let addr = self.by_allocation.get(&(id, peer.is_ipv6()))?;
        Some(&self.by_addr.get(addr)?.socket)
    }

    /// Sockets whose receive task the driver must start now.
    pub fn take_started(&mut self) -> Vec<(AllocId, SocketAddr, Rc<UdpSocket>)> {
        std::mem::take(&mut self.started)
    }

    /// Records the task reading the relay socket at `relay`, to stop it on release.
    pub fn set_task(&mut self, relay: SocketAddr, task: AbortHandle) {
        if let Some(bound) = self.by_addr.get_mut(&relay) {
            bound.task = Some(task);
        }
    }

    /// Live relay sockets (allocations and reservations).
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// True when no relay socket is open.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}

impl RelayRange {
    /// The relay IP for `request` (UDP and TCP relays alike): the `relay-ip` the client
    /// reached, else the first `relay-ip` of the family; without `relay-ip`, the server
    /// address the client reached or the local address the kernel routes from.
    pub(super) fn relay_ip(&self, request: &RelayRequest) -> io::Result<IpAddr> {
        let family_ok = |ip: &IpAddr| ip.is_ipv6() == request.ipv6;
        let server = request.server.ip();
        if !self.ips.is_empty() {
            return self
                .ips
                .iter()
                .copied()
                .find(|ip| *ip == server && family_ok(ip))
                .or_else(|| self.ips.iter().copied().find(family_ok))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrNotAvailable,
                        "no relay-ip of that family",
                    )
                });
        }
        if !server.is_unspecified() && family_ok(&server) {
            return Ok(server);
        }
        // Toward the client when the family matches, else toward a documentation address
        // (connecting a UDP socket sends nothing).
        let (any, fallback): (IpAddr, SocketAddr) = if request.ipv6 {
            (
                Ipv6Addr::UNSPECIFIED.into(),
                (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
            )
        } else {
            (
                Ipv4Addr::UNSPECIFIED.into(),
                (Ipv4Addr::new(192, 0, 2, 1), 9).into(),
            )
        };
        let toward = if family_ok(&request.client.ip()) {
            request.client
        } else {
            fallback
        };
        let probe = StdUdpSocket::bind((any, 0))?;
        probe.connect(toward)?;
        Ok(probe.local_addr()?.ip())
    }
}

impl RelaySockets {
    fn bind_port(&self, ip: IpAddr, port: u16) -> io::Result<Rc<UdpSocket>> {
        let address = SocketAddr::new(ip, port);
        let socket = Socket::new(
            Domain::for_address(address),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        if ip.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        // Best effort: the kernel caps these at net.core.{r,w}mem_max.
        let _ = socket.set_recv_buffer_size(self.range.socket_buffer);
        let _ = socket.set_send_buffer_size(self.range.socket_buffer);
        socket.set_nonblocking(true)?;
        socket.bind(&address.into())?;
        let std: StdUdpSocket = socket.into();
        Ok(Rc::new(UdpSocket::from_std(std)?))
    }

    fn insert(&mut self, address: SocketAddr, socket: Rc<UdpSocket>, allocation: Option<AllocId>) {
        if let Some(id) = allocation {
            self.by_allocation.insert((id, address.is_ipv6()), address);
            self.started.push((id, address, socket.clone()));
        }
        self.by_addr.insert(
            address,
            Bound {
                socket,
                allocation,
                task: None,
            },
        );
    }
}

impl RelayPorts for RelaySockets {
    fn bind(&mut self, id: AllocId, request: RelayRequest) -> Result<RelayBinding, NoRelayPort> {
        if let Some(reserved) = request.reserved {
            let bound = self.by_addr.remove(&reserved).ok_or(NoRelayPort)?;
            self.insert(reserved, bound.socket, Some(id));
            return Ok(RelayBinding {
                relay: reserved,
                reserved: None,
            });
        }
        let ip = self.range.relay_ip(&request).map_err(|_| NoRelayPort)?;
        let (min, max) = (
            u32::from(self.range.min_port),
            u32::from(self.range.max_port),
        );
        let span = max - min + 1;
        let start = rand::rng().random_range(0..span);
        // Walk the whole range once from a random start, as coturn does.
        for step in 0..span {
            let port = (min + (start + step) % span) as u16;
            if request.even_port && port % 2 == 1 {
                continue;
            }
            if request.reserve_next && u32::from(port) + 1 > max {
                continue;
            }
            let Ok(socket) = self.bind_port(ip, port) else {
                continue;
            };
            let reserved = if request.reserve_next {
                let Ok(next) = self.bind_port(ip, port + 1) else {
                    continue;
                };
                let address = SocketAddr::new(ip, port + 1);
                self.insert(address, next, None);
                Some(address)
            } else {
                None
            };
            let address = SocketAddr::new(ip, port);
            self.insert(address, socket, Some(id));
            return Ok(RelayBinding {
                relay: address,
                reserved,
            });
        }
        tracing::warn!(%ip, min, max, "no free relay port");
        Err(NoRelayPort)
    }

    fn release(&mut self, relay: SocketAddr) {
        if let Some(bound) = self.by_addr.remove(&relay) {
            if let Some(id) = bound.allocation {
                self.by_allocation.remove(&(id, relay.is_ipv6()));
            }
            if let Some(task) = bound.task {
                task.abort();
            }
        }
    }

    fn tcp(&mut self) -> Option<&mut dyn TcpRelayPorts> {
        Some(&mut self.tcp)
    }
}
