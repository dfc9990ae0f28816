//! Relay sockets: one UDP socket per allocation (and address family), bound in
//! `min-port..=max-port`, or one TCP listener per RFC 6062 allocation.
//!
//! The core names relay sockets by [`SocketId`], an index into this slab: sending to a
//! peer finds its socket without a lookup. A released slot is reused by a later bind;
//! nothing can name it meanwhile, since the core forgets a socket in the same call that
//! releases it.
//!
//! **Parked sockets.** A released UDP relay socket is not closed: it is parked, still
//! bound and registered, with a receive buffer shrunk to a few kilobytes so whatever the
//! old allocation's peers still send costs no memory, and handed to a later UDP
//! allocation on the same address once it has been parked for [`QUARANTINE`] (drained
//! first). That saves the socket, bind, buffer and epoll calls of a fresh socket and its
//! close (17 % of an allocation's CPU in the benchmark's profile) when allocations come
//! and go, without handing a port to a new client while the old one's peers may still
//! be sending to it.
//!
//! **Ports across shards.** The shards claim every port in one shared [`RelayPorts`]
//! before binding it and give it back when its socket closes, so a free port is found
//! without a bind attempt per taken one, and no two shards listen on one TCP port.

use std::collections::VecDeque;
use std::io;
use std::net::UdpSocket as StdUdpSocket;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener as StdTcpListener};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::sys::socket::{MsgFlags, recv};
use rand::Rng;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::relay_ports::{PortKind, RelayPorts, Walk};
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
    /// Released sockets one shard keeps parked at most (see [`parked_per_shard`]).
    pub max_parked: usize,
    /// `relay-device`: the interface every relay socket is bound to (a parked socket
    /// keeps it, as the option needs a restart).
    pub device: Option<String>,
    /// The relay ports every shard holds (a clone of the range shares them).
    pub ports: RelayPorts,
}

/// How many released relay sockets each of `shards` shards may keep parked: a quarter
/// of the open-file limit between them (parked sockets hold descriptors that TCP clients
/// and new relay sockets need too), and never more than the port range.
pub fn parked_per_shard(min_port: u16, max_port: u16, shards: usize) -> usize {
    let span = usize::from(max_port.saturating_sub(min_port)) + 1;
    let files = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| {
            usize::try_from(soft).unwrap_or(usize::MAX)
        });
    (files / 4 / shards.max(1)).min(span)
}

/// How long a released relay socket stays parked before another allocation gets its
/// port: peers of the old allocation may still be sending to it (an ICE agent gives up
/// some 30 s after its last answer), and a new client that permits the same peer, as
/// every client of one SFU does, must not receive their late packets.
pub const QUARANTINE: Duration = Duration::from_secs(60);
/// The receive buffer of a parked socket (the kernel's floor is about this).
const PARKED_BUFFER: usize = 4096;
/// Datagrams read and dropped at most when a parked socket is taken (its small buffer
/// holds a handful).
const MAX_DRAIN: usize = 64;

/// A released UDP relay socket waiting out its quarantine.
struct Parked {
    socket: Rc<UdpSocket>,
    address: SocketAddr,
    since: Instant,
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
    /// Released UDP relay sockets, oldest first.
    parked: VecDeque<Parked>,
}

impl RelaySockets {
    /// An empty set for `range`.
    pub fn new(range: RelayRange) -> Self {
        Self {
            range,
            slots: Vec::new(),
            free: Vec::new(),
            parked: VecDeque::new(),
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

    /// `relay-device`, for the RFC 6062 connections to peers made from relay addresses.
    pub(crate) fn device(&self) -> Option<&str> {
        self.range.device.as_deref()
    }

    /// Binds what `request` asks for at `now`; the sockets whose tasks must start go to
    /// `started`.
    pub(crate) fn bind(
        &mut self,
        request: &BindRequest,
        started: &mut Vec<Started>,
        now: Instant,
    ) -> BindOutcome {
        let relay = if request.tcp {
            self.listen(&request.relay, now).map(|relay| RelayBinding {
                relay,
                reserved: None,
            })
        } else {
            self.bind_udp(&request.relay, now)
        };
        let additional = request
            .additional
            .map(|half| self.bind_udp(&half, now).map(|binding| binding.relay));
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

    /// Stops socket `id`'s task and parks a UDP socket (see the module docs) at `now`;
    /// a TCP listener is closed.
    pub(crate) fn release(&mut self, id: SocketId, now: Instant) {
        let Some(slot) = self.slots.get_mut(id.0 as usize).and_then(Option::take) else {
            return;
        };
        if let Some(task) = slot.task {
            task.abort();
        }
        self.free.push(id.0);
        if let Bound::Tcp | Bound::TcpPending(_) = slot.bound {
            self.range.ports.release(PortKind::Tcp, slot.address);
        }
        if let Bound::Udp(socket) = slot.bound {
            if self.range.max_parked == 0 {
                self.range.ports.release(PortKind::Udp, slot.address);
                return;
            }
            if self.parked.len() >= self.range.max_parked
                && let Some(oldest) = self.parked.pop_front()
            {
                self.range.ports.release(PortKind::Udp, oldest.address);
            }
            let _ = SockRef::from(&*socket).set_recv_buffer_size(PARKED_BUFFER);
            self.parked.push_back(Parked {
                socket,
                address: slot.address,
                since: now,
            });
        }
    }

    /// A parked socket on `ip` whose quarantine is over at `now`, drained of what its old
    /// peers sent, with its full receive buffer again.
    fn unpark(&mut self, ip: IpAddr, now: Instant) -> Option<(Rc<UdpSocket>, SocketAddr)> {
        let index = self
            .parked
            .iter()
            .take_while(|p| now.saturating_duration_since(p.since) >= QUARANTINE)
            .position(|p| p.address.ip() == ip)?;
        let Parked {
            socket, address, ..
        } = self.parked.remove(index)?;
        let mut sink = [0u8; 1];
        for _ in 0..MAX_DRAIN {
            if recv(socket.as_raw_fd(), &mut sink, MsgFlags::MSG_DONTWAIT).is_err() {
                break;
            }
        }
        let _ = SockRef::from(&*socket).set_recv_buffer_size(self.range.socket_buffer);
        Some((socket, address))
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

    fn bind_udp(
        &mut self,
        request: &RelayRequest,
        now: Instant,
    ) -> Result<RelayBinding, NoRelayPort> {
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
        if !request.even_port
            && !request.reserve_next
            && let Some((socket, address)) = self.unpark(ip, now)
        {
            let relay = self.insert(address, Bound::Udp(socket));
            return Ok(RelayBinding {
                relay,
                reserved: None,
            });
        }
        let walk = Walk {
            even: request.even_port,
            pair: request.reserve_next,
            ..self.walk(ip)
        };
        // Walk the whole range once from a random start, as coturn does, over the ports
        // no shard holds; a bind fails only where another program holds the port, and the
        // socket it failed on tries the next one.
        let mut spare = None;
        let mut step = 0;
        while let Some((port, at)) = self.range.ports.claim(PortKind::Udp, &walk, step, now) {
            step = at + 1;
            let address = SocketAddr::new(ip, port);
            let next = SocketAddr::new(ip, port.wrapping_add(1));
            let socket = match self.bind_port(spare.take(), address, now) {
                Ok(socket) => socket,
                Err(Unbound::Taken(socket)) => {
                    spare = Some(socket);
                    if walk.pair {
                        self.range.ports.release(PortKind::Udp, next);
                    }
                    continue;
                }
                Err(Unbound::Failed(e)) => {
                    if walk.pair {
                        self.range.ports.release(PortKind::Udp, next);
                    }
                    tracing::warn!(%address, error = %e, "cannot open a relay socket");
                    return Err(NoRelayPort);
                }
            };
            let reserved = if walk.pair {
                match self.bind_port(None, next, now) {
                    Ok(socket) => Some(self.insert(next, Bound::Udp(socket))),
                    Err(_) => {
                        // Closing `socket` gives its port back.
                        self.range.ports.release(PortKind::Udp, address);
                        continue;
                    }
                }
            } else {
                None
            };
            let relay = self.insert(address, Bound::Udp(socket));
            return Ok(RelayBinding { relay, reserved });
        }
        // Every port is taken: a parked one still in quarantine is no worse than what
        // closing it at release would have allowed.
        if !request.even_port
            && !request.reserve_next
            && let Some((socket, address)) = self.unpark(ip, now + QUARANTINE)
        {
            tracing::debug!(%address, "relay ports exhausted; reusing a parked port early");
            let relay = self.insert(address, Bound::Udp(socket));
            return Ok(RelayBinding {
                relay,
                reserved: None,
            });
        }
        tracing::warn!(%ip, min = walk.min, span = walk.span, "no free relay port");
        Err(NoRelayPort)
    }

    /// Binds a TCP listener at the first free port from a random start, walking the range
    /// once as the UDP relays do, over the ports no shard holds (see the module docs).
    fn listen(&mut self, request: &RelayRequest, now: Instant) -> Result<Relay, NoRelayPort> {
        let ip = self.range.relay_ip(request).map_err(|_| NoRelayPort)?;
        let walk = self.walk(ip);
        let mut step = 0;
        while let Some((port, at)) = self.range.ports.claim(PortKind::Tcp, &walk, step, now) {
            step = at + 1;
            let address = SocketAddr::new(ip, port);
            match super::tcp::relay_listener(address, self.range.device.as_deref()) {
                Ok(listener) => return Ok(self.insert(address, Bound::TcpPending(listener))),
                Err(_) => self.range.ports.held_elsewhere(PortKind::Tcp, address, now),
            }
        }
        tracing::warn!(%ip, "no free TCP relay port");
        Err(NoRelayPort)
    }

    /// A walk over `min-port..=max-port` on `ip` from a random start.
    fn walk(&self, ip: IpAddr) -> Walk {
        let min = u32::from(self.range.min_port);
        let span = u32::from(self.range.max_port).saturating_sub(min) + 1;
        Walk {
            ip,
            min,
            span,
            start: rand::rng().random_range(0..span),
            even: false,
            pair: false,
        }
    }

    /// A UDP socket for relay addresses of `ip`'s family, with the range's buffers and
    /// device, not yet bound.
    fn open_udp(&self, ip: IpAddr) -> io::Result<Socket> {
        let socket = Socket::new(
            Domain::for_address(SocketAddr::new(ip, 0)),
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
        super::device::bind_to_device(&socket, self.range.device.as_deref())?;
        Ok(socket)
    }

    /// Binds `socket` (a new one when `None`) to the claimed `address`, whose claim a
    /// failure gives back. A failed bind marks the port as held by another program (see
    /// [`RelayPorts`]) and hands the socket back, still unbound, for the next port.
    fn bind_port(
        &self,
        socket: Option<Socket>,
        address: SocketAddr,
        now: Instant,
    ) -> Result<Rc<UdpSocket>, Unbound> {
        let socket = match socket {
            Some(socket) => socket,
            None => match self.open_udp(address.ip()) {
                Ok(socket) => socket,
                Err(e) => {
                    self.range.ports.release(PortKind::Udp, address);
                    return Err(Unbound::Failed(e));
                }
            },
        };
        if socket.bind(&address.into()).is_err() {
            self.range.ports.held_elsewhere(PortKind::Udp, address, now);
            return Err(Unbound::Taken(socket));
        }
        let std: StdUdpSocket = socket.into();
        match UdpSocket::from_std(std) {
            Ok(socket) => Ok(Rc::new(socket)),
            Err(e) => {
                self.range.ports.release(PortKind::Udp, address);
                Err(Unbound::Failed(e))
            }
        }
    }
}

/// Why [`RelaySockets::bind_port`] bound nothing.
enum Unbound {
    /// The port is taken: the socket, unbound, can try another.
    Taken(Socket),
    /// No socket could be opened (e.g. out of file descriptors): no port will do.
    Failed(io::Error),
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::io::relay_ports::ELSEWHERE_FOR;
    use turn_proto::AllocId;

    fn range(min_port: u16, max_port: u16) -> RelaySockets {
        RelaySockets::new(RelayRange {
            ips: vec![Ipv4Addr::LOCALHOST.into()],
            min_port,
            max_port,
            socket_buffer: 1 << 20,
            max_parked: 16,
            device: None,
            ports: RelayPorts::default(),
        })
    }

    fn request(even_port: bool) -> BindRequest {
        BindRequest {
            allocation: AllocId {
                index: 0,
                generation: 0,
            },
            tcp: false,
            relay: RelayRequest {
                ipv6: false,
                server: "127.0.0.1:3478".parse().unwrap(),
                client: "127.0.0.1:5000".parse().unwrap(),
                even_port,
                reserve_next: false,
                reserved: None,
            },
            additional: None,
        }
    }

    fn bind(relays: &mut RelaySockets, even_port: bool, now: Instant) -> Relay {
        let outcome = relays.bind(&request(even_port), &mut Vec::new(), now);
        outcome.relay.expect("a relay port").relay
    }

    #[tokio::test]
    async fn released_ports_wait_out_their_quarantine_and_come_back_drained() {
        let mut relays = range(20_000, 60_000);
        let t0 = Instant::now();
        let first = bind(&mut relays, false, t0);
        relays.release(first.socket, t0);
        // The old peer is still sending.
        let peer = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"late", first.address).unwrap();
        let soon = bind(&mut relays, false, t0 + Duration::from_secs(1));
        assert_ne!(
            soon.address, first.address,
            "handed out during its quarantine"
        );
        let even = bind(&mut relays, true, t0 + QUARANTINE);
        assert_ne!(even.address, first.address, "EVEN-PORT binds afresh");
        let again = bind(&mut relays, false, t0 + QUARANTINE);
        assert_eq!(again.address, first.address, "the parked socket is reused");
        let socket = relays.socket(again.socket).expect("a UDP socket");
        let mut buf = [0u8; 16];
        assert_eq!(
            recv(socket.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT),
            Err(nix::errno::Errno::EAGAIN),
            "the old peer's datagram was drained"
        );
        let buffer = SockRef::from(&**socket).recv_buffer_size().unwrap();
        assert!(buffer > 100_000, "full receive buffer again: {buffer}");
    }

    /// Two shards (each with its own slab, one shared range) never listen on the same
    /// TCP relay port, though SO_REUSEPORT would let them; a closed listener's port is
    /// free again for either.
    #[tokio::test]
    async fn shards_never_share_a_tcp_relay_port() {
        let mut first = range(30_100, 30_101);
        let mut second = RelaySockets::new(first.range.clone());
        let mut tcp = request(false);
        tcp.tcp = true;
        let t0 = Instant::now();
        let listen = |relays: &mut RelaySockets| {
            relays
                .bind(&tcp, &mut Vec::new(), t0)
                .relay
                .map(|binding| binding.relay)
        };
        let a = listen(&mut first).expect("a port for the first shard");
        let b = listen(&mut second).expect("the other port for the second shard");
        assert_ne!(a.address, b.address);
        assert!(listen(&mut first).is_err(), "both ports are held");
        assert!(listen(&mut second).is_err(), "both ports are held");
        second.release(b.socket, t0);
        let c = listen(&mut first).expect("the released port");
        assert_eq!(c.address, b.address);
    }

    #[test]
    fn parking_is_bounded_by_ports_and_open_files() {
        assert_eq!(
            parked_per_shard(1000, 1009, 1),
            10.min(parked_per_shard(0, 65535, 1))
        );
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert!(parked_per_shard(0, 65535, 2) as u64 <= soft / 8);
    }

    #[tokio::test]
    async fn an_exhausted_range_takes_a_parked_port_early() {
        let probe = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let mut relays = range(port, port);
        let t0 = Instant::now();
        let only = bind(&mut relays, false, t0);
        relays.release(only.socket, t0);
        let again = bind(&mut relays, false, t0 + Duration::from_secs(1));
        assert_eq!(again.address, only.address);
    }

    /// Three consecutive ports no socket holds now, and sockets of "another program"
    /// on the first two.
    fn crowded_ports() -> (u16, Vec<StdUdpSocket>) {
        (30_200..30_400)
            .find_map(|first| {
                let held: Vec<_> = (first..first + 2)
                    .map_while(|port| StdUdpSocket::bind(("127.0.0.1", port)).ok())
                    .collect();
                let free = StdUdpSocket::bind(("127.0.0.1", first + 2)).is_ok();
                (held.len() == 2 && free).then_some((first, held))
            })
            .expect("three free ports")
    }

    /// Ports other programs hold cost one failed bind, then walks skip them until
    /// ELSEWHERE_FOR has passed; a port they let go is then ours again.
    #[tokio::test]
    async fn ports_held_by_other_programs_are_skipped_then_retried() {
        let (first, others) = crowded_ports();
        let mut relays = range(first, first + 2);
        relays.range.max_parked = 0;
        let t0 = Instant::now();
        let only = bind(&mut relays, false, t0);
        assert_eq!(only.address.port(), first + 2, "the one port nobody holds");
        let full = relays.bind(&request(false), &mut Vec::new(), t0);
        assert!(full.relay.is_err(), "the rest are held elsewhere");
        drop(others);
        let soon = relays.bind(
            &request(false),
            &mut Vec::new(),
            t0 + Duration::from_secs(1),
        );
        assert!(soon.relay.is_err(), "still skipped within ELSEWHERE_FOR");
        let later = bind(&mut relays, false, t0 + ELSEWHERE_FOR);
        assert!(
            later.address.port() < first + 2,
            "freed by the other program"
        );
    }

    /// EVEN-PORT with R needs the port after it as well: one held elsewhere makes the
    /// walk move on, and the even port it had bound is given back.
    #[tokio::test]
    async fn a_pair_moves_on_when_its_second_port_is_held_elsewhere() {
        let probe = |port: u16| StdUdpSocket::bind(("127.0.0.1", port)).ok();
        let (even, other) = (30_400..30_600)
            .step_by(2)
            .find_map(|even| {
                let free = (even..even + 4).all(|port| probe(port).is_some());
                free.then(|| (even, probe(even + 1).expect("just free")))
            })
            .expect("four free ports");
        let mut pair = request(true);
        pair.relay.reserve_next = true;
        let t0 = Instant::now();
        // The walk starts at a random port, at `even` (whose partner is held elsewhere)
        // half the time: ten fresh sets all miss that start once in a thousand runs.
        for _ in 0..10 {
            let mut relays = range(even, even + 3);
            let outcome = relays
                .bind(&pair, &mut Vec::new(), t0)
                .relay
                .expect("a pair");
            assert_eq!(outcome.relay.address.port(), even + 2);
            assert_eq!(outcome.reserved.expect("reserved").address.port(), even + 3);
            assert!(probe(even).is_some(), "the first even port was given back");
        }
        drop(other);
    }

    /// A socket closed at release (parking off) or pushed out of a full parking gives its
    /// port back to the shared ledger: the next allocation binds it afresh instead of
    /// finding the range exhausted.
    #[tokio::test]
    async fn closed_sockets_give_their_ports_back() {
        let probe = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let t0 = Instant::now();
        let mut unparked = range(port, port);
        unparked.range.max_parked = 0;
        let first = bind(&mut unparked, false, t0);
        unparked.release(first.socket, t0);
        let again = bind(&mut unparked, false, t0);
        assert_eq!(again.address, first.address, "closed, so free at once");

        let mut relays = range(20_000, 60_000);
        relays.range.max_parked = 1;
        let a = bind(&mut relays, false, t0);
        let b = bind(&mut relays, false, t0);
        relays.release(a.socket, t0);
        relays.release(b.socket, t0);
        let held = |address: SocketAddr| {
            let walk = Walk {
                start: u32::from(address.port()) - 20_000,
                ..relays.walk(address.ip())
            };
            relays
                .range
                .ports
                .claim(PortKind::Udp, &walk, 0, t0)
                .map(|(port, _)| port)
                != Some(address.port())
        };
        assert!(
            !held(a.address),
            "a was pushed out of the parking and closed"
        );
        assert!(held(b.address), "b is parked, so still held");
    }

    /// `relay-device`: UDP relay sockets, parked ones handed out again, and TCP relay
    /// listeners are all bound to it (loopback: present everywhere, and Linux 5.7+ lets
    /// anyone bind an unbound socket to it; the netns test covers real interfaces).
    #[tokio::test]
    async fn relay_sockets_are_bound_to_relay_device() {
        let device = |fd: &dyn AsFd| {
            nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::BindToDevice).unwrap()
        };
        if super::super::device::probe("lo").is_err() {
            return;
        }
        let mut relays = range(20_000, 60_000);
        relays.range.device = Some("lo".into());
        let t0 = Instant::now();
        let first = bind(&mut relays, false, t0);
        assert_eq!(device(&**relays.socket(first.socket).unwrap()), "lo");
        relays.release(first.socket, t0);
        let again = bind(&mut relays, false, t0 + QUARANTINE);
        assert_eq!(again.address, first.address, "the parked socket is reused");
        assert_eq!(device(&**relays.socket(again.socket).unwrap()), "lo");

        let mut tcp = request(false);
        tcp.tcp = true;
        let mut started = Vec::new();
        relays
            .bind(&tcp, &mut started, t0)
            .relay
            .expect("a TCP relay");
        let [Started::Tcp(_, listener)] = &started[..] else {
            panic!("one TCP listener to start");
        };
        assert_eq!(device(listener), "lo");
    }
}
