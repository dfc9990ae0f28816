//! TCP and TLS clients (RFC 8656 §3.1): STUN and padded ChannelData framed on a stream.
//!
//! Both the plain and the TLS port sniff the first byte, as coturn does: a TLS
//! ClientHello (0x16) gets TLS, anything else is served as plain TCP. Each connection has
//! a reader task that frames messages for the core and a writer task that drains a
//! bounded queue ([`super::MAX_STREAM_BACKLOG`]); closing the connection ends its
//! allocation. A connection joined by an RFC 6062 ConnectionBind stops framing after the
//! answer and becomes a byte pipe to its peer ([`super::tcp_relay`]).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::command::{Command, HandedStream};
use super::tcp_relay;
use super::{Shard, StreamOut};
use crate::io::admission::{Admission, Admitted};
use crate::io::client_stream::{ClientStream, MovableTcp};
use crate::io::tcp;
use rtc_auth::ip_range::IpRangeSet;
use turn_proto::codec::MAX_MESSAGE_LEN;
use turn_proto::framing::frame_len;
use turn_proto::proxy_header::{self, ProxyError, ProxyHeader};
use turn_proto::{FiveTuple, Transport};

/// Time a new connection gets to send its first byte, finish a TLS handshake and send
/// its first whole message.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed to complete a message once its first bytes arrived, however the bytes
/// trickle in: the deadline is set when the message starts, not moved by each read.
const PARTIAL_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// What a shard's client connections share: TLS, the caps, and the timeouts.
pub(super) struct Clients {
    /// The TLS configuration in force; replaced on reload, read at each handshake.
    pub(super) tls: RefCell<Option<Arc<rustls::ServerConfig>>>,
    /// The connection caps, shared by every shard.
    pub(super) admission: Admission,
    /// `max-allocate-timeout`: a connection without an allocation for this long closes.
    pub(super) max_allocate_timeout: Duration,
    /// Sources allowed on PROXY protocol listeners.
    pub(super) proxy_sources: IpRangeSet,
}

/// Accepts clients on one of this shard's listeners; `proxy` listeners take connections
/// only from `tcp-proxy-trusted-ip` and read a PROXY protocol header first.
pub(super) async fn accept_loop(
    shard: Rc<Shard>,
    clients: Rc<Clients>,
    listener: TcpListener,
    proxy: bool,
) {
    loop {
        let (stream, source) = tcp::accept(&listener, "client").await;
        if proxy && !clients.proxy_sources.contains(source.ip()) {
            // Its header would name any client address it likes: close unread.
            tracing::debug!(%source, "PROXY listener: source not in tcp-proxy-trusted-ip; closing");
            continue;
        }
        tokio::task::spawn_local(connection(
            shard.clone(),
            clients.clone(),
            stream,
            source,
            proxy,
        ));
    }
}

/// A new connection: admitted under the caps (behind a PROXY listener, by the client the
/// header names), TLS when it starts with a ClientHello, its first message read, then
/// served here or handed to the shard that owns it.
async fn connection(
    shard: Rc<Shard>,
    clients: Rc<Clients>,
    mut stream: TcpStream,
    mut client: SocketAddr,
    proxy: bool,
) {
    let Ok(server) = stream.local_addr() else {
        return;
    };
    let start = Instant::now();
    let deadline = start + HANDSHAKE_TIMEOUT;
    if proxy {
        match tokio::time::timeout_at(deadline.into(), read_proxy_header(&mut stream)).await {
            Ok(Ok(ProxyHeader::Proxied { source, .. })) => client = source,
            Ok(Ok(ProxyHeader::Local)) => {}
            Ok(Err(error)) => {
                tracing::debug!(%client, %error, "PROXY header refused; closing");
                return;
            }
            Err(_) => return,
        }
    }
    let admitted = match clients.admission.admit(client.ip()) {
        Ok(admitted) => admitted,
        Err(refused) => {
            shard.stream_refusals.set(shard.stream_refusals.get() + 1);
            tracing::debug!(%client, ?refused, "TCP client refused: connection cap");
            return;
        }
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline.into(), stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    let (mut stream, transport) = if first[0] != 0x16 {
        (ClientStream::Tcp(stream.into()), Transport::Tcp)
    } else {
        let Some(config) = clients.tls.borrow().clone() else {
            tracing::debug!(%client, "TLS ClientHello on a server without TLS; closing");
            return;
        };
        let accept = TlsAcceptor::from(config).accept(MovableTcp::from(stream));
        match tokio::time::timeout_at(deadline.into(), accept).await {
            Ok(Ok(tls)) => (ClientStream::Tls(Box::new(tls)), Transport::Tls),
            Ok(Err(error)) => return tracing::debug!(%client, %error, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%client, "TLS handshake timed out"),
        }
    };
    let tuple = FiveTuple {
        transport,
        client,
        server,
    };
    let Some(read) = first_message(&mut stream, deadline).await else {
        return;
    };
    let owner = shard.server.borrow().stream_owner(&read);
    if let Some(owner) = owner {
        hand_over(&shard, owner, stream, tuple, read, admitted);
        return;
    }
    serve(shard, clients, stream, tuple, read, admitted).await;
}

/// A connection that another shard accepted and handed here.
pub(super) async fn adopt(shard: Rc<Shard>, clients: Rc<Clients>, handed: HandedStream) {
    let HandedStream {
        mut stream,
        tuple,
        read,
        admitted,
    } = handed;
    if let Err(error) = stream.attach() {
        return tracing::debug!(client = %tuple.client, %error, "handed-over connection lost");
    }
    tracing::debug!(client = %tuple.client, "handed-over connection adopted");
    serve(shard, clients, stream, tuple, read, admitted).await;
}

/// Reads until the buffer holds the first whole message (or what fails framing, which
/// `serve` then refuses), by `deadline`. None: closed or too slow.
async fn first_message(stream: &mut ClientStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut read = Vec::with_capacity(512);
    loop {
        match frame_len(&read) {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return Some(read),
        }
        read.reserve(512);
        match tokio::time::timeout_at(deadline.into(), stream.read_buf(&mut read)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends a connection to the shard that owns it; dropped (closed) when that shard's
/// queue is full or gone, as a busy shard drops handed-over datagrams.
fn hand_over(
    shard: &Shard,
    owner: u8,
    mut stream: ClientStream,
    tuple: FiveTuple,
    read: Vec<u8>,
    admitted: Admitted,
) {
    if let Err(error) = stream.detach() {
        return tracing::debug!(client = %tuple.client, %error, "cannot hand the connection over");
    }
    let Some(queue) = shard.shards.get(usize::from(owner)) else {
        return;
    };
    let handed = HandedStream {
        stream,
        tuple,
        read,
        admitted,
    };
    tracing::debug!(client = %tuple.client, owner, "connection handed to its owner shard");
    if queue.try_send(Command::Stream(Box::new(handed))).is_err() {
        tracing::debug!(client = %tuple.client, owner, "owner shard busy: connection dropped");
    }
}

/// Consumes exactly the PROXY header, so what follows (STUN or a TLS ClientHello) is read
/// as on any other connection. Peeks until the whole header has arrived.
async fn read_proxy_header(stream: &mut TcpStream) -> Result<ProxyHeader, ProxyError> {
    let mut peeked = [0u8; 512];
    loop {
        let available = stream
            .peek(&mut peeked)
            .await
            .map_err(|_| ProxyError::Missing)?;
        if available == 0 {
            return Err(ProxyError::Missing);
        }
        match proxy_header::parse(&peeked[..available])? {
            Some((header, len)) => {
                let mut consumed = vec![0u8; len];
                stream
                    .read_exact(&mut consumed)
                    .await
                    .map_err(|_| ProxyError::Missing)?;
                return Ok(header);
            }
            None if available == peeked.len() => return Err(ProxyError::Malformed),
            // Part of the header: wait for the rest (bounded by the caller's timeout).
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Serves one client connection until it closes, it stays without an allocation for
/// `max-allocate-timeout`, a message takes longer than [`PARTIAL_FRAME_TIMEOUT`] to
/// arrive, or it becomes an RFC 6062 data connection (then a byte pipe); `read` holds
/// what was read already. `admitted` is its place under the caps, given back at the end.
async fn serve(
    shard: Rc<Shard>,
    clients: Rc<Clients>,
    stream: ClientStream,
    tuple: FiveTuple,
    read: Vec<u8>,
    admitted: Admitted,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let out = Rc::new(StreamOut::default());
    shard.streams.borrow_mut().insert(tuple, out.clone());
    // Set when the connection turns into a data connection: the writer flushes what is
    // queued (the ConnectionBind answer) and hands its half back.
    let handoff = Rc::new(Cell::new(false));
    let writer_task = tokio::task::spawn_local({
        let (out, handoff) = (out.clone(), handoff.clone());
        async move {
            let mut spare = Vec::new();
            loop {
                out.wake.notified().await;
                loop {
                    std::mem::swap(&mut *out.queued.borrow_mut(), &mut spare);
                    if spare.is_empty() {
                        break;
                    }
                    if writer.write_all(&spare).await.is_err() {
                        return None;
                    }
                    spare.clear();
                }
                // TLS buffers what the socket did not take at once: flushing sends it now
                // rather than with the next write (plain TCP has nothing to flush).
                if writer.flush().await.is_err() {
                    return None;
                }
                if handoff.get() {
                    return Some(writer);
                }
            }
        }
    });
    let mut joined = None;
    let mut buf = read;
    // When the message now in `buf` must be whole.
    let mut frame_deadline: Option<Instant> = None;
    // Since when the connection has had no allocation.
    let mut unallocated_since = Some(Instant::now());
    'read: loop {
        let mut start = 0;
        loop {
            match frame_len(&buf[start..]) {
                Ok(Some(len)) => {
                    handle_frame(&shard, tuple, &buf[start..start + len]);
                    start += len;
                    if let Some(connection) = shard.peers.borrow_mut().take_joined(tuple) {
                        joined = Some((connection, buf[start..].to_vec()));
                        break 'read;
                    }
                }
                // `frame_len` refuses longer frames: this cannot be exceeded.
                Ok(None) if buf.len() - start <= MAX_MESSAGE_LEN => break,
                Ok(None) => break 'read,
                Err(error) => {
                    tracing::debug!(client = %tuple.client, %error, "closing the stream");
                    break 'read;
                }
            }
        }
        buf.drain(..start);
        let now = Instant::now();
        frame_deadline = match (buf.is_empty(), frame_deadline) {
            (true, _) => None,
            (false, Some(deadline)) => Some(deadline),
            (false, None) => Some(now + PARTIAL_FRAME_TIMEOUT),
        };
        if shard.server.borrow().has_allocation(&tuple) {
            unallocated_since = None;
        } else {
            unallocated_since.get_or_insert(now);
        }
        // Without an allocation, its deadline; with one, a look again as long from now.
        let allocation_check = unallocated_since.unwrap_or(now) + clients.max_allocate_timeout;
        let deadline = frame_deadline.map_or(allocation_check, |frame| frame.min(allocation_check));
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(4096);
        }
        match tokio::time::timeout_at(deadline.into(), reader.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) if frame_deadline.is_some_and(|frame| frame <= Instant::now()) => {
                tracing::debug!(client = %tuple.client, "message not completed in time; closing");
                break;
            }
            Err(_) if unallocated_since.is_some() => {
                tracing::debug!(client = %tuple.client, "no allocation within max-allocate-timeout; closing");
                break;
            }
            Err(_) => {}
        }
    }
    shard.streams.borrow_mut().remove(&tuple);
    if let Some((connection, leftover)) = joined {
        handoff.set(true);
        out.wake.notify_one();
        if let Ok(Some(writer)) = writer_task.await {
            tcp_relay::pipe(shard.clone(), connection, reader, writer, leftover).await;
        }
    } else {
        writer_task.abort();
    }
    shard.server.borrow_mut().handle_disconnect(tuple);
    shard.carry_out(&mut shard.buffers.borrow_mut().out);
    drop(admitted);
}

fn handle_frame(shard: &Rc<Shard>, tuple: FiveTuple, frame: &[u8]) {
    let mut buffers = shard.buffers.borrow_mut();
    shard.handle_client(tuple, frame, &mut buffers.out);
}
