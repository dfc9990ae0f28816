//! UDP client listeners and relay sockets' receive loops.
//!
//! Every socket is read with `readable()` then batched `recvmmsg` calls into the shard's
//! single set of receive slots, so no buffer is held across an await and nothing is
//! allocated per packet. Sends never wait: a full socket buffer drops the datagram
//! (counted) instead of stalling every allocation of the shard.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::rc::Rc;
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::batch::BATCH;
use super::shard::{Buffers, Shard};
use turn_proto::{AllocId, FiveTuple, Transport};

/// Batched receive calls per socket before yielding, so one busy socket cannot starve
/// the timer or other sockets.
const ROUNDS: usize = 4;

/// Binds `count` UDP client listeners on `address`, one per shard, sharing the port
/// with SO_REUSEPORT so the kernel spreads clients over the shards by 5-tuple hash
/// (before the runtime starts, so errors reach `main`). Port 0 picks one port for all.
/// `buffer`: SO_RCVBUF and SO_SNDBUF asked for (the kernel caps them at
/// net.core.rmem_max and wmem_max).
pub fn bind_listeners(
    address: SocketAddr,
    count: usize,
    buffer: usize,
) -> io::Result<Vec<StdUdpSocket>> {
    let first = bind_listener(address, count > 1, buffer)?;
    let address = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_listener(address, true, buffer)?);
    }
    Ok(sockets)
}

fn bind_listener(address: SocketAddr, reuse_port: bool, buffer: usize) -> io::Result<StdUdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&address.into()).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot listen on udp {address}: {error}"),
        )
    })?;
    Ok(socket.into())
}

pub(super) async fn client_loop(shard: Rc<Shard>, index: usize) {
    let (local, socket) = shard.udp[index].clone();
    let ipv6 = local.is_ipv6();
    loop {
        if let Err(error) = socket.readable().await {
            tracing::error!(%local, %error, "listener failed");
            return;
        }
        for _ in 0..ROUNDS {
            let mut buffers = shard.buffers.borrow_mut();
            let Buffers { recv, out } = &mut *buffers;
            let Some(more) = more_after(recv.recv(&socket, ipv6)) else {
                break;
            };
            for (data, client) in recv.iter() {
                let tuple = FiveTuple {
                    transport: Transport::Udp,
                    client,
                    server: local,
                };
                shard.handle_client(tuple, data, out);
            }
            if !more {
                break;
            }
        }
        tokio::task::yield_now().await;
    }
}

pub(super) async fn relay_loop(shard: Rc<Shard>, id: AllocId, socket: Rc<UdpSocket>) {
    let ipv6 = socket.local_addr().is_ok_and(|local| local.is_ipv6());
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        for _ in 0..ROUNDS {
            let mut buffers = shard.buffers.borrow_mut();
            let Buffers { recv, out } = &mut *buffers;
            let Some(more) = more_after(recv.recv(&socket, ipv6)) else {
                break;
            };
            for (data, peer) in recv.iter() {
                let transmit =
                    shard
                        .server
                        .borrow_mut()
                        .handle_peer(Instant::now(), id, peer, data, out);
                if let Some(transmit) = transmit {
                    shard.send(&transmit, data, out);
                }
            }
            if !more {
                break;
            }
        }
        tokio::task::yield_now().await;
    }
}

/// After a receive call: None when the socket was empty, else whether it may hold more
/// (a full batch, or an ICMP error such as ECONNREFUSED, which is not fatal).
fn more_after(result: io::Result<usize>) -> Option<bool> {
    match result {
        Ok(count) => Some(count == BATCH),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => None,
        Err(_) => Some(true),
    }
}
