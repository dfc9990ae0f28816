//! Relay sockets: one UDP socket per allocation (and address family), bound in
//! `min-port..=max-port`, or one TCP listener per RFC 6062 allocation.
//!
//! The core names relay sockets by [`SocketId`], an index into this slab: sending to a
//! peer finds its socket without a lookup. A released slot is reused by a later bind;
//! nothing can name it meanwhile, since the core forgets a socket in the same call that
//! releases it.

use std::io;
use std::net::UdpSocket as StdUdpSocket;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener as StdTcpListener};
use std::rc::Rc;

use rand::Rng;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use turn_proto::{
    BindOutcome, BindRequest, NoRelayPort, Relay, RelayBinding, RelayRequest, SocketId,
};

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

/// What a slot holds.
enum Bound {
    /// A UDP relay socket; its receive task runs once an allocation owns it (a reserved
    /// port waits unread until claimed).
    Udp(Rc<UdpSocket>),
    /// A TCP relay listener, until its accept task takes it.
    TcpPending(StdTcpListener),
    /// A TCP relay listener whose accept task runs.
    Tcp,
}

struct Slot {
    address: SocketAddr,
    bound: Bound,
    task: Option<AbortHandle>,
}

/// A socket bound by [`RelaySockets::bind`] that needs its task started.
pub(crate) enum Started {
    /// A UDP relay socket to read.
    Udp(SocketId, Rc<UdpSocket>),
    /// A TCP relay listener to accept on.
    Tcp(SocketId, StdTcpListener),
}

/// The relay sockets of one shard.
pub struct RelaySockets {
    range: RelayRange,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
}

impl RelaySockets {
    /// An empty set for `range`.
    pub fn new(range: RelayRange) -> Self {
        Self {
            range,
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// The UDP socket `id`.
    pub(crate) fn socket(&self, id: SocketId) -> Option<&Rc<UdpSocket>> {
        match &self.slots.get(id.0 as usize)?.as_ref()?.bound {
            Bound::Udp(socket) => Some(socket),
            Bound::TcpPending(_) | Bound::Tcp => None,
        }
    }

    /// Live relay sockets (allocations and reservations).
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True when no relay socket is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Binds what `request` asks for; the sockets whose tasks must start go to `started`.
    pub(crate) fn bind(
        &mut self,
        request: &BindRequest,
        started: &mut Vec<Started>,
    ) -> BindOutcome {
        let relay = if request.tcp {
            self.listen(&request.relay).map(|relay| RelayBinding {
                relay,
                reserved: None,
            })
        } else {
            self.bind_udp(&request.relay)
        };
        let additional = request
            .additional
            .map(|half| self.bind_udp(&half).map(|binding| binding.relay));
        let owned = relay.iter().map(|binding| binding.relay);
        for relay in owned.chain(additional.and_then(Result::ok)) {
            if let Some(task) = self.take_start(relay.socket) {
                started.push(task);
            }
        }
        BindOutcome { relay, additional }
    }

    /// Records the task serving socket `id`, to stop it on release.
    pub(crate) fn set_task(&mut self, id: SocketId, task: AbortHandle) {
        match self.slots.get_mut(id.0 as usize).and_then(Option::as_mut) {
            Some(slot) => slot.task = Some(task),
            None => task.abort(),
        }
    }

    /// Closes socket `id` and stops its task.
    pub(crate) fn release(&mut self, id: SocketId) {
        let Some(slot) = self.slots.get_mut(id.0 as usize).and_then(Option::take) else {
            return;
        };
        if let Some(task) = slot.task {
            task.abort();
        }
        self.free.push(id.0);
    }

    /// The task socket `id` needs now that an allocation owns it.
    fn take_start(&mut self, id: SocketId) -> Option<Started> {
        let slot = self.slots.get_mut(id.0 as usize)?.as_mut()?;
        match &slot.bound {
            Bound::Udp(socket) if slot.task.is_none() => Some(Started::Udp(id, socket.clone())),
            Bound::TcpPending(_) => {
                let Bound::TcpPending(listener) = std::mem::replace(&mut slot.bound, Bound::Tcp)
                else {
                    return None;
                };
                Some(Started::Tcp(id, listener))
            }
            Bound::Udp(_) | Bound::Tcp => None,
        }
    }

    fn insert(&mut self, address: SocketAddr, bound: Bound) -> Relay {
        let slot = Some(Slot {
            address,
            bound,
            task: None,
        });
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        Relay {
            address,
            socket: SocketId(index),
        }
    }

    fn bind_udp(&mut self, request: &RelayRequest) -> Result<RelayBinding, NoRelayPort> {
        if let Some(reserved) = request.reserved {
            // Held since the reservation; its receive task starts now.
            return match self.socket(reserved.socket) {
                Some(_) => Ok(RelayBinding {
                    relay: reserved,
                    reserved: None,
                }),
                None => Err(NoRelayPort),
            };
        }
        let ip = self.range.relay_ip(request).map_err(|_| NoRelayPort)?;
        let (min, max) = self.span();
        let span = max - min + 1;
        let start = rand::rng().random_range(0..span);
        // Walk the whole range once from a random start, as coturn does.
        for step in 0..span {
            let Ok(port) = u16::try_from(min + (start + step) % span) else {
                continue;
            };
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
                Some(self.insert(SocketAddr::new(ip, port + 1), Bound::Udp(next)))
            } else {
                None
            };
            let relay = self.insert(SocketAddr::new(ip, port), Bound::Udp(socket));
            return Ok(RelayBinding { relay, reserved });
        }
        tracing::warn!(%ip, min, max, "no free relay port");
        Err(NoRelayPort)
    }

    /// Binds a TCP listener at the first free port from a random start, walking the range
    /// once as the UDP relays do. Ports our other listeners hold are skipped:
    /// SO_REUSEPORT (needed to connect out from a listening address) would let the
    /// kernel share them.
    fn listen(&mut self, request: &RelayRequest) -> Result<Relay, NoRelayPort> {
        let ip = self.range.relay_ip(request).map_err(|_| NoRelayPort)?;
        let (min, max) = self.span();
        let span = max - min + 1;
        let start = rand::rng().random_range(0..span);
        let found = (0..span)
            .filter_map(|step| u16::try_from(min + (start + step) % span).ok())
            .map(|port| SocketAddr::new(ip, port))
            .filter(|address| !self.holds_listener(*address))
            .find_map(|address| {
                super::tcp::relay_listener(address)
                    .ok()
                    .map(|listener| (address, listener))
            });
        let Some((address, listener)) = found else {
            tracing::warn!(%ip, "no free TCP relay port");
            return Err(NoRelayPort);
        };
        Ok(self.insert(address, Bound::TcpPending(listener)))
    }

    fn holds_listener(&self, address: SocketAddr) -> bool {
        self.slots.iter().flatten().any(|slot| {
            slot.address == address && matches!(slot.bound, Bound::Tcp | Bound::TcpPending(_))
        })
    }

    fn span(&self) -> (u32, u32) {
        (
            u32::from(self.range.min_port),
            u32::from(self.range.max_port),
        )
    }

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
}

impl RelayRange {
    /// The relay IP for `request` (UDP and TCP relays alike): the `relay-ip` the client
    /// reached, else the first `relay-ip` of the family; without `relay-ip`, the server
    /// address the client reached or the local address the kernel routes from.
    pub(crate) fn relay_ip(&self, request: &RelayRequest) -> io::Result<IpAddr> {
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
