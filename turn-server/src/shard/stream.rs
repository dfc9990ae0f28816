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
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::tcp_relay;
use super::{Shard, StreamOut};
use crate::io::tcp;
use rtc_auth::ip_range::IpRangeSet;
use turn_proto::codec::MAX_MESSAGE_LEN;
use turn_proto::framing::frame_len;
use turn_proto::proxy_header::{self, ProxyError, ProxyHeader};
use turn_proto::{FiveTuple, Transport};

/// Time a new connection gets to send its first byte and finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed to complete a message once its first bytes arrived.
const PARTIAL_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS configuration in force; replaced on reload, read at each handshake.
pub(super) type TlsState = Rc<RefCell<Option<Arc<rustls::ServerConfig>>>>;

/// Accepts clients; `proxy` listeners take connections only from those sources, and
/// first read a PROXY protocol header.
pub(super) async fn accept_loop(
    shard: Rc<Shard>,
    listener: TcpListener,
    tls: TlsState,
    proxy: Option<Rc<IpRangeSet>>,
) {
    loop {
        let (stream, client) = tcp::accept(&listener, "client").await;
        if let Some(sources) = &proxy
            && !sources.contains(client.ip())
        {
            // Its header would name any client address it likes: close unread.
            tracing::debug!(%client, "PROXY listener: source not in tcp-proxy-trusted-ip; closing");
            continue;
        }
        tokio::task::spawn_local(connection(
            shard.clone(),
            stream,
            client,
            tls.clone(),
            proxy.is_some(),
        ));
    }
}

async fn connection(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    mut client: SocketAddr,
    tls: TlsState,
    proxy: bool,
) {
    let Ok(server) = stream.local_addr() else {
        return;
    };
    if proxy {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_proxy_header(&mut stream)).await {
            Ok(Ok(ProxyHeader::Proxied { source, .. })) => client = source,
            Ok(Ok(ProxyHeader::Local)) => {}
            Ok(Err(error)) => {
                tracing::debug!(%client, %error, "PROXY header refused; closing");
                return;
            }
            Err(_) => return,
        }
    }
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    if first[0] != 0x16 {
        let tuple = FiveTuple {
            transport: Transport::Tcp,
            client,
            server,
        };
        return serve(shard, stream, tuple).await;
    }
    let Some(config) = tls.borrow().clone() else {
        tracing::debug!(%client, "TLS ClientHello on a server without TLS; closing");
        return;
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream)).await {
        Ok(Ok(stream)) => {
            let tuple = FiveTuple {
                transport: Transport::Tls,
                client,
                server,
            };
            serve(shard, stream, tuple).await;
        }
        Ok(Err(error)) => tracing::debug!(%client, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
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

async fn serve<S>(shard: Rc<Shard>, stream: S, tuple: FiveTuple)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
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
                if handoff.get() {
                    return Some(writer);
                }
            }
        }
    });
    let mut joined = None;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    'read: loop {
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(4096);
        }
        let partial = !buf.is_empty();
        let read = reader.read_buf(&mut buf);
        let result = if !partial {
            read.await
        } else {
            // Half a message: the rest must follow soon (slowloris, or not TURN at all).
            match tokio::time::timeout(PARTIAL_FRAME_TIMEOUT, read).await {
                Ok(result) => result,
                Err(_) => break,
            }
        };
        match result {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
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
}

fn handle_frame(shard: &Rc<Shard>, tuple: FiveTuple, frame: &[u8]) {
    let mut buffers = shard.buffers.borrow_mut();
    shard.handle_client(tuple, frame, &mut buffers.out);
}
