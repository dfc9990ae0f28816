//! RFC 6062 TCP relays' tasks: accepting peers on a TCP allocation's relay listener,
//! connecting to peers, and the byte pipe between a peer connection and its client data
//! connection.
//!
//! The core decides (permissions, peer policy, connection ids, timeouts) and asks for
//! what it decided as events (`Connect`, `Join`, `Close`); this module only does
//! sockets. A peer connection is not read before it is joined: the kernel buffers what
//! the peer sends and TCP flow control holds it back (RFC 6062 §5.3). Once joined, each
//! direction copies through one bounded buffer, so a slow side stalls the other instead
//! of growing memory.

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::rc::Rc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::Shard;
use super::peer_connections::Peer;
use crate::io::{device, tcp};
use turn_proto::connection::{CONNECT_TIMEOUT, Direction};
use turn_proto::{AllocId, ConnectionId};

/// Bytes read from one side of a joined connection before they are written to the other.
const PIPE_BUFFER: usize = 16 * 1024;

/// Starts connecting `connection` from `relay` to `peer` ([`turn_proto::Event::Connect`]).
pub(super) fn connect(
    shard: &Rc<Shard>,
    connection: ConnectionId,
    relay: SocketAddr,
    peer: SocketAddr,
) {
    let task = tokio::task::spawn_local(connect_to_peer(shard.clone(), connection, relay, peer));
    shard
        .peers
        .borrow_mut()
        .peers
        .insert(connection, Peer::Connecting(task.abort_handle()));
}

/// Starts accepting peers on allocation `id`'s new relay listener; the task's handle.
pub(super) fn accept(
    shard: &Rc<Shard>,
    id: AllocId,
    listener: StdTcpListener,
) -> Option<AbortHandle> {
    match TcpListener::from_std(listener) {
        Ok(listener) => {
            Some(tokio::task::spawn_local(accept_loop(shard.clone(), id, listener)).abort_handle())
        }
        Err(error) => {
            tracing::warn!(%error, "TCP relay listener unusable");
            None
        }
    }
}

/// Copies bytes both ways between a joined client data connection and its peer
/// connection until either side closes or the core closes the connection; `leftover`
/// is what the client sent right behind its ConnectionBind.
pub(super) async fn pipe<R, W>(
    shard: Rc<Shard>,
    connection: ConnectionId,
    mut client_read: R,
    mut client_write: W,
    leftover: Vec<u8>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let stop = Rc::new(Notify::new());
    let peer = {
        let mut peers = shard.peers.borrow_mut();
        let Some(Peer::Ready(peer)) = peers.peers.remove(&connection) else {
            return;
        };
        peers.peers.insert(connection, Peer::Piping(stop.clone()));
        peer
    };
    let (mut peer_read, mut peer_write) = peer.into_split();
    let upstream = async {
        if !leftover.is_empty() {
            forward(
                &shard,
                connection,
                Direction::Upstream,
                &leftover,
                &mut peer_write,
            )
            .await?;
        }
        copy(
            &shard,
            connection,
            Direction::Upstream,
            &mut client_read,
            &mut peer_write,
        )
        .await
    };
    let downstream = copy(
        &shard,
        connection,
        Direction::Downstream,
        &mut peer_read,
        &mut client_write,
    );
    // Either side closing closes both (coturn does the same).
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
        () = stop.notified() => {}
    }
}

async fn copy<R, W>(
    shard: &Shard,
    connection: ConnectionId,
    direction: Direction,
    from: &mut R,
    to: &mut W,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; PIPE_BUFFER];
    loop {
        let len = from.read(&mut buf).await?;
        if len == 0 {
            return Ok(());
        }
        forward(shard, connection, direction, &buf[..len], to).await?;
    }
}

/// Writes `bytes` after the core counted them, then pauses as `max-bps` requires.
async fn forward<W: AsyncWrite + Unpin>(
    shard: &Shard,
    connection: ConnectionId,
    direction: Direction,
    bytes: &[u8],
    to: &mut W,
) -> io::Result<()> {
    let pause = shard
        .server
        .borrow_mut()
        .relay_tcp(Instant::now(), connection, direction, bytes.len())
        .ok_or(io::ErrorKind::NotConnected)?;
    to.write_all(bytes).await?;
    // A TLS client's writer holds back what the socket did not take at once until flushed.
    to.flush().await?;
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

async fn accept_loop(shard: Rc<Shard>, id: AllocId, listener: TcpListener) {
    loop {
        let (stream, peer) = tcp::accept(&listener, "TCP relay").await;
        let mut buffers = shard.buffers.borrow_mut();
        let out = &mut buffers.out;
        let accepted = shard
            .server
            .borrow_mut()
            .handle_tcp_accepted(Instant::now(), id, peer, out);
        // Refused: the stream closes as it drops.
        if let Some((connection, transmit)) = accepted {
            shard
                .peers
                .borrow_mut()
                .peers
                .insert(connection, Peer::Ready(stream));
            shard.send(&transmit, &[], out);
        }
    }
}

async fn connect_to_peer(
    shard: Rc<Shard>,
    connection: ConnectionId,
    relay: SocketAddr,
    peer: SocketAddr,
) {
    let device = shard.relays.borrow().device().map(str::to_owned);
    let connecting = connect_from(relay, peer, device.as_deref());
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%relay, %peer, %error, "TCP connect to peer failed");
            None
        }
        Err(_) => None,
    };
    let mut buffers = shard.buffers.borrow_mut();
    let out = &mut buffers.out;
    let transmit = shard.server.borrow_mut().handle_tcp_connected(
        Instant::now(),
        connection,
        stream.is_some(),
        out,
    );
    {
        let mut peers = shard.peers.borrow_mut();
        peers.peers.remove(&connection);
        if let (Some(stream), Some(_)) = (stream, &transmit) {
            peers.peers.insert(connection, Peer::Ready(stream));
        }
    }
    if let Some(transmit) = transmit {
        shard.send(&transmit, &[], out);
    }
}

/// A connection from the relayed address itself (RFC 6062 §5.2), which its listener
/// also holds: both sockets need SO_REUSEPORT, and `relay-device` (`device`) too.
async fn connect_from(
    relay: SocketAddr,
    peer: SocketAddr,
    device: Option<&str>,
) -> io::Result<TcpStream> {
    let socket = if relay.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    device::bind_to_device(&socket, device)?;
    socket.bind(relay)?;
    let stream = socket.connect(peer).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{getsockopt, sockopt::BindToDevice};

    /// `relay-device` reaches the connections to peers too (loopback: present everywhere,
    /// and Linux 5.7+ lets anyone bind an unbound socket to it).
    #[tokio::test]
    async fn connections_to_peers_are_bound_to_relay_device() {
        if device::probe("lo").is_err() {
            return;
        }
        let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = SocketAddr::from(([127, 0, 0, 1], 0));
        let peer = peer.local_addr().unwrap();
        let stream = connect_from(relay, peer, Some("lo")).await.unwrap();
        assert_eq!(getsockopt(&stream, BindToDevice).unwrap(), "lo");
        let stream = connect_from(relay, peer, None).await.unwrap();
        assert_eq!(getsockopt(&stream, BindToDevice).unwrap(), "");
    }
}
