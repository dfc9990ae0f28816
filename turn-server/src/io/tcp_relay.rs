//! RFC 6062 TCP relays: a listening socket per TCP allocation, connections to and from
//! peers, and the byte pipe between a peer connection and its client data connection.
//!
//! The core decides (permissions, peer policy, connection ids, timeouts) through
//! [`TcpRelayPorts`]; this module only does sockets. The core's calls record work in
//! [`TcpRelays`], and [`start_tasks`] spawns it once the core is released. A peer
//! connection is not read before it is joined: the kernel buffers what the peer sends and
//! TCP flow control holds it back (RFC 6062 §5.3). Once joined, each direction copies
//! through one bounded buffer, so a slow side stalls the other instead of growing memory.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::rc::Rc;
use std::time::Instant;

use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::relay::RelayRange;
use super::shard::Shard;
use super::stream;
use turn_proto::connection::{CONNECT_TIMEOUT, ConnectionId, Direction, TcpRelayPorts};
use turn_proto::{AllocId, FiveTuple, NoRelayPort, RelayRequest};

/// Bytes read from one side of a joined connection before they are written to the other.
const PIPE_BUFFER: usize = 16 * 1024;

/// Pending connections queued on a relayed TCP address.
const LISTEN_BACKLOG: i32 = 128;

/// A relayed TCP address.
struct Listening {
    address: SocketAddr,
    task: Option<AbortHandle>,
}

/// A peer connection, as far as the driver is concerned.
enum Peer {
    /// The connect task is running.
    Connecting(Option<AbortHandle>),
    /// Connected or accepted; unread until joined.
    Ready(TcpStream),
    /// Its pipe is running; notified to stop it.
    Piping(Rc<Notify>),
}

/// Work for [`start_tasks`].
enum Start {
    Accept(AllocId, StdTcpListener),
    Connect(ConnectionId, SocketAddr, SocketAddr),
}

/// The TCP relay sockets of one shard.
pub(super) struct TcpRelays {
    range: RelayRange,
    listeners: HashMap<AllocId, Listening>,
    peers: HashMap<ConnectionId, Peer>,
    starts: Vec<Start>,
    joined: HashMap<FiveTuple, ConnectionId>,
}

impl TcpRelays {
    /// None yet, bound in `range` when asked.
    pub(super) fn new(range: RelayRange) -> Self {
        Self {
            range,
            listeners: HashMap::new(),
            peers: HashMap::new(),
            starts: Vec::new(),
            joined: HashMap::new(),
        }
    }

    /// Binds a listener on `ip` at the first free port from a random start, walking the
    /// range once as the UDP relays do. Ports our other listeners hold are skipped:
    /// SO_REUSEPORT (needed to connect out from a listening address) would let the
    /// kernel share them.
    fn bind_listener(&self, ip: std::net::IpAddr) -> Option<(SocketAddr, StdTcpListener)> {
        let (min, max) = (
            u32::from(self.range.min_port),
            u32::from(self.range.max_port),
        );
        let span = max - min + 1;
        let start = rand::rng().random_range(0..span);
        (0..span)
            .map(|step| SocketAddr::new(ip, (min + (start + step) % span) as u16))
            .filter(|address| self.listeners.values().all(|l| l.address != *address))
            .find_map(|address| listen_on(address).ok().map(|listener| (address, listener)))
    }
}

impl TcpRelayPorts for TcpRelays {
    fn listen(&mut self, id: AllocId, request: RelayRequest) -> Result<SocketAddr, NoRelayPort> {
        let ip = self.range.relay_ip(&request).map_err(|_| NoRelayPort)?;
        let Some((address, listener)) = self.bind_listener(ip) else {
            tracing::warn!(%ip, "no free TCP relay port");
            return Err(NoRelayPort);
        };
        self.listeners.insert(
            id,
            Listening {
                address,
                task: None,
            },
        );
        self.starts.push(Start::Accept(id, listener));
        Ok(address)
    }

    fn unlisten(&mut self, id: AllocId) {
        if let Some(task) = self.listeners.remove(&id).and_then(|l| l.task) {
            task.abort();
        }
        self.starts
            .retain(|start| !matches!(start, Start::Accept(queued, _) if *queued == id));
    }

    fn connect(&mut self, connection: ConnectionId, relay: SocketAddr, peer: SocketAddr) {
        self.peers.insert(connection, Peer::Connecting(None));
        self.starts.push(Start::Connect(connection, relay, peer));
    }

    fn join(&mut self, connection: ConnectionId, data: FiveTuple) {
        self.joined.insert(data, connection);
    }

    fn close(&mut self, connection: ConnectionId) {
        match self.peers.remove(&connection) {
            Some(Peer::Connecting(Some(task))) => task.abort(),
            Some(Peer::Piping(stop)) => stop.notify_one(),
            // A ready stream closes as it drops.
            _ => {}
        }
        self.starts
            .retain(|start| !matches!(start, Start::Connect(queued, ..) if *queued == connection));
        self.joined.retain(|_, joined| *joined != connection);
    }
}

/// Spawns what the last core call asked for (accepting on new relayed addresses,
/// connecting to peers).
pub(super) fn start_tasks(shard: &Rc<Shard>) {
    let starts = std::mem::take(&mut shard.relays.borrow_mut().tcp.starts);
    for start in starts {
        match start {
            Start::Accept(id, listener) => {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(%error, "TCP relay listener unusable");
                        continue;
                    }
                };
                let task = tokio::task::spawn_local(accept_loop(shard.clone(), id, listener));
                let mut relays = shard.relays.borrow_mut();
                match relays.tcp.listeners.get_mut(&id) {
                    Some(listening) => listening.task = Some(task.abort_handle()),
                    None => task.abort(),
                }
            }
            Start::Connect(connection, relay, peer) => {
                let task = tokio::task::spawn_local(connect_to_peer(
                    shard.clone(),
                    connection,
                    relay,
                    peer,
                ));
                let mut relays = shard.relays.borrow_mut();
                match relays.tcp.peers.get_mut(&connection) {
                    Some(Peer::Connecting(handle)) => *handle = Some(task.abort_handle()),
                    _ => task.abort(),
                }
            }
        }
    }
}

/// The peer connection the last request on client connection `tuple` joined it to
/// (a successful ConnectionBind): from now on the connection carries raw bytes.
pub(super) fn joined(shard: &Shard, tuple: FiveTuple) -> Option<ConnectionId> {
    shard.relays.borrow_mut().tcp.joined.remove(&tuple)
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
        let mut relays = shard.relays.borrow_mut();
        let Some(Peer::Ready(peer)) = relays.tcp.peers.remove(&connection) else {
            return;
        };
        relays
            .tcp
            .peers
            .insert(connection, Peer::Piping(stop.clone()));
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
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

async fn accept_loop(shard: Rc<Shard>, id: AllocId, listener: TcpListener) {
    loop {
        let (stream, peer) = stream::accept(&listener, "TCP relay").await;
        let mut buffers = shard.buffers.borrow_mut();
        let out = &mut buffers.out;
        let accepted = shard
            .server
            .borrow_mut()
            .handle_tcp_accepted(Instant::now(), id, peer, out);
        // Refused: the stream closes as it drops.
        if let Some((connection, transmit)) = accepted {
            shard
                .relays
                .borrow_mut()
                .tcp
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
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect_from(relay, peer)).await {
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
        let mut relays = shard.relays.borrow_mut();
        relays.tcp.peers.remove(&connection);
        if let (Some(stream), Some(_)) = (stream, &transmit) {
            relays.tcp.peers.insert(connection, Peer::Ready(stream));
        }
    }
    if let Some(transmit) = transmit {
        shard.send(&transmit, &[], out);
    }
}

/// A connection from the relayed address itself (RFC 6062 §5.2), which its listener
/// also holds: both sockets need SO_REUSEPORT.
async fn connect_from(relay: SocketAddr, peer: SocketAddr) -> io::Result<TcpStream> {
    let socket = if relay.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(relay)?;
    let stream = socket.connect(peer).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn listen_on(address: SocketAddr) -> io::Result<StdTcpListener> {
    let socket = stream::listening_socket(address)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}
