//! UDP client listener sockets: one per shard and address, sharing the port.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `count` UDP client listeners on `address`, one per shard, sharing the port
/// with SO_REUSEPORT so the kernel spreads clients over the shards by 5-tuple hash
/// (before the runtime starts, so errors reach `main`). Port 0 picks one port for all.
/// `buffer`: SO_RCVBUF and SO_SNDBUF asked for (the kernel caps them at
/// net.core.rmem_max and wmem_max); `device`: the interface to bind them to
/// (`listening-device`).
pub fn bind_listeners(
    address: SocketAddr,
    count: usize,
    buffer: usize,
    device: Option<&str>,
) -> io::Result<Vec<StdUdpSocket>> {
    let first = bind_listener(address, count > 1, buffer, device)?;
    let address = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_listener(address, true, buffer, device)?);
    }
    Ok(sockets)
}

fn bind_listener(
    address: SocketAddr,
    reuse_port: bool,
    buffer: usize,
    device: Option<&str>,
) -> io::Result<StdUdpSocket> {
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
    super::device::bind_to_device(&socket, device)?;
    socket.bind(&address.into()).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot listen on udp {address}: {error}"),
        )
    })?;
    Ok(socket.into())
}

/// The local address the kernel sends from toward `remote` (a connected UDP socket's
/// own address; connecting sends nothing): what a socket bound to a wildcard address
/// replies from.
pub fn local_address_toward(remote: SocketAddr) -> io::Result<std::net::IpAddr> {
    let any: SocketAddr = if remote.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = StdUdpSocket::bind(any)?;
    probe.connect(remote)?;
    Ok(probe.local_addr()?.ip())
}
