//! TCP sockets: client listeners (before the runtime starts, so errors reach `main`),
//! RFC 6062 relay listeners, and accepting without spinning on errors.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// Pending connections queued on a relayed TCP address.
const RELAY_LISTEN_BACKLOG: i32 = 128;

/// A non-blocking TCP socket for `address`'s family (IPv6 sockets take IPv6 only) with
/// SO_REUSEADDR, bound to the interface `device` if any, ready to bind and listen.
fn listening_socket(address: SocketAddr, device: Option<&str>) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    super::device::bind_to_device(&socket, device)?;
    Ok(socket)
}

/// Binds a TCP listener (before the runtime starts, so errors reach `main`); `purpose`
/// names it in the error ("tcp", "prometheus").
pub fn bind_listener(address: SocketAddr, purpose: &str) -> io::Result<StdTcpListener> {
    bind(address, false, purpose, None)
}

/// Binds `count` TCP client listeners on `address`, one per shard, sharing the port with
/// SO_REUSEPORT so the kernel spreads new connections (and their TLS handshakes) over the
/// shards. Port 0 picks one port for all. `device`: the interface to bind them to
/// (`listening-device`).
pub fn bind_listeners(
    address: SocketAddr,
    count: usize,
    purpose: &str,
    device: Option<&str>,
) -> io::Result<Vec<StdTcpListener>> {
    let first = bind(address, count > 1, purpose, device)?;
    let address = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind(address, true, purpose, device)?);
    }
    Ok(listeners)
}

fn bind(
    address: SocketAddr,
    reuse_port: bool,
    purpose: &str,
    device: Option<&str>,
) -> io::Result<StdTcpListener> {
    let socket = listening_socket(address, device)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&address.into()).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot listen on {purpose} {address}: {error}"),
        )
    })?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The next connection on `listener` (`what` names it in the log), with Nagle off.
pub(crate) async fn accept(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, address)) => {
                let _ = stream.set_nodelay(true);
                return (stream, address);
            }
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%error, what, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A TCP relay listener on `address`, bound to the interface `device` if any
/// (`relay-device`).
pub(crate) fn relay_listener(
    address: SocketAddr,
    device: Option<&str>,
) -> io::Result<StdTcpListener> {
    let socket = listening_socket(address, device)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(RELAY_LISTEN_BACKLOG)?;
    Ok(socket.into())
}
