//! One shard: UDP client listeners, relay sockets and the timer, on a current-thread
//! runtime that owns the core.
//!
//! Every socket is read with `readable()` then `try_recv_from` into the shard's single
//! receive buffer, so no buffer is held across an await and nothing is allocated per
//! packet. Sends use `try_send_to`: UDP may drop, and a full socket buffer drops the
//! datagram (counted) instead of stalling every allocation of the shard.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::LocalSet;

use super::relay::{RELAY_SOCKET_BUFFER, RelayRange, RelaySockets};
use crate::proto::{AllocId, Destination, FiveTuple, Payload, Server, Transmit, Transport};

/// Datagrams handled per socket before yielding, so one busy socket cannot starve the
/// timer or other sockets.
const BATCH: usize = 64;

/// Largest datagram accepted (the UDP maximum).
const MAX_DATAGRAM: usize = 65_535;

/// Client listener sockets, bound before the runtime starts so errors reach `main`.
pub struct Listeners {
    sockets: Vec<(SocketAddr, StdUdpSocket)>,
}

impl Listeners {
    /// Binds one UDP socket per address.
    pub fn bind(addresses: &[SocketAddr]) -> io::Result<Self> {
        let mut sockets = Vec::with_capacity(addresses.len());
        for &address in addresses {
            let socket = Socket::new(
                Domain::for_address(address),
                Type::DGRAM,
                Some(Protocol::UDP),
            )?;
            if address.is_ipv6() {
                socket.set_only_v6(true)?;
            }
            let _ = socket.set_recv_buffer_size(4 * RELAY_SOCKET_BUFFER);
            let _ = socket.set_send_buffer_size(4 * RELAY_SOCKET_BUFFER);
            socket.set_nonblocking(true)?;
            socket.bind(&address.into()).map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("cannot listen on udp {address}: {error}"),
                )
            })?;
            let socket: StdUdpSocket = socket.into();
            let bound = socket.local_addr()?;
            sockets.push((bound, socket));
        }
        Ok(Self { sockets })
    }

    /// The bound addresses (ports resolved when 0 was asked for).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|(address, _)| *address).collect()
    }
}

struct Buffers {
    recv: Vec<u8>,
    out: Vec<u8>,
}

struct Shard {
    server: RefCell<Server>,
    relays: RefCell<RelaySockets>,
    listeners: Vec<(SocketAddr, Rc<UdpSocket>)>,
    buffers: RefCell<Buffers>,
    send_drops: RefCell<u64>,
}

/// Runs the shard until `shutdown` completes, then ends every allocation.
pub fn run(
    server: Server,
    listeners: Listeners,
    relay: RelayRange,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();
    local.block_on(&runtime, async move {
        let mut sockets = Vec::with_capacity(listeners.sockets.len());
        for (address, socket) in listeners.sockets {
            sockets.push((address, Rc::new(UdpSocket::from_std(socket)?)));
        }
        let shard = Rc::new(Shard {
            server: RefCell::new(server),
            relays: RefCell::new(RelaySockets::new(relay)),
            listeners: sockets,
            buffers: RefCell::new(Buffers {
                recv: vec![0; MAX_DATAGRAM],
                out: Vec::with_capacity(MAX_DATAGRAM + 64),
            }),
            send_drops: RefCell::new(0),
        });
        for index in 0..shard.listeners.len() {
            tokio::task::spawn_local(client_loop(shard.clone(), index));
        }
        let timer = tokio::task::spawn_local(timer_loop(shard.clone()));
        shutdown.await;
        timer.abort();
        let mut relays = shard.relays.borrow_mut();
        let mut server = shard.server.borrow_mut();
        let live = server.allocation_count();
        server.close_all(&mut *relays);
        tracing::info!(allocations = live, "shut down");
        Ok(())
    })
}

async fn client_loop(shard: Rc<Shard>, index: usize) {
    let (local, socket) = shard.listeners[index].clone();
    loop {
        if let Err(error) = socket.readable().await {
            tracing::error!(%local, %error, "listener failed");
            return;
        }
        for _ in 0..BATCH {
            let mut buffers = shard.buffers.borrow_mut();
            let Buffers { recv, out } = &mut *buffers;
            let (len, client) = match socket.try_recv_from(recv) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors surface here as ECONNREFUSED and the like: not fatal.
                Err(_) => continue,
            };
            let tuple = FiveTuple {
                transport: Transport::Udp,
                client,
                server: local,
            };
            let transmit = {
                let mut server = shard.server.borrow_mut();
                let mut relays = shard.relays.borrow_mut();
                server.handle_client(Instant::now(), tuple, &recv[..len], &mut *relays, out)
            };
            shard.start_relay_tasks();
            if let Some(transmit) = transmit {
                shard.send(&transmit, &recv[..len], out);
            }
        }
        tokio::task::yield_now().await;
    }
}

async fn relay_loop(shard: Rc<Shard>, id: AllocId, socket: Rc<UdpSocket>) {
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        for _ in 0..BATCH {
            let mut buffers = shard.buffers.borrow_mut();
            let Buffers { recv, out } = &mut *buffers;
            let (len, peer) = match socket.try_recv_from(recv) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            let transmit =
                shard
                    .server
                    .borrow_mut()
                    .handle_peer(Instant::now(), id, peer, &recv[..len], out);
            if let Some(transmit) = transmit {
                shard.send(&transmit, &recv[..len], out);
            }
        }
        tokio::task::yield_now().await;
    }
}

async fn timer_loop(shard: Rc<Shard>) {
    loop {
        let deadline = shard.server.borrow().poll_timeout();
        tokio::time::sleep_until(deadline.into()).await;
        let mut relays = shard.relays.borrow_mut();
        shard
            .server
            .borrow_mut()
            .handle_timeout(Instant::now(), unix_now(), &mut *relays);
    }
}

impl Shard {
    fn start_relay_tasks(self: &Rc<Self>) {
        let started = self.relays.borrow_mut().take_started();
        for (id, socket) in started {
            let task = tokio::task::spawn_local(relay_loop(self.clone(), id, socket));
            self.relays.borrow_mut().set_task(id, task.abort_handle());
        }
    }

    fn send(&self, transmit: &Transmit, input: &[u8], out: &[u8]) {
        let payload = match &transmit.payload {
            Payload::Output => out,
            Payload::Input(range) => &input[range.clone()],
        };
        let result = match transmit.destination {
            Destination::Client(tuple) => match tuple.transport {
                Transport::Udp => match self.listeners.iter().find(|(a, _)| *a == tuple.server) {
                    Some((_, socket)) => socket.try_send_to(payload, tuple.client),
                    None => return,
                },
                // Stream transports are not served by this driver.
                Transport::Tcp | Transport::Tls => return,
            },
            Destination::Peer { allocation, peer } => {
                match self.relays.borrow().socket(allocation) {
                    Some(socket) => socket.try_send_to(payload, peer),
                    None => return,
                }
            }
        };
        if let Err(error) = result {
            let mut drops = self.send_drops.borrow_mut();
            *drops += 1;
            if drops.is_power_of_two() {
                tracing::debug!(%error, drops = *drops, "send failed; datagram dropped");
            }
        }
    }
}

/// Seconds since the Unix epoch; TURN REST expiry is wall-clock time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
