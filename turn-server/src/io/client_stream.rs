//! A TCP or TLS client connection that can move to another shard.
//!
//! Each shard runs its own runtime, and a tokio socket belongs to the runtime that
//! registered it. A connection whose first message belongs to another shard (an RFC 6062
//! ConnectionBind for a peer connection held there) is detached here: its socket leaves
//! this runtime as a std socket, TLS state and all, and is registered again by the shard
//! that takes it over.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A client connection: plain TCP, or TLS over TCP.
pub enum ClientStream {
    /// Plain TCP.
    Tcp(MovableTcp),
    /// TLS over TCP, after the handshake.
    Tls(Box<TlsStream<MovableTcp>>),
}

/// A TCP socket registered with the current runtime, or detached for a move.
pub struct MovableTcp(State);

enum State {
    /// Usable on this runtime.
    Attached(TcpStream),
    /// On its way to another runtime.
    Detached(std::net::TcpStream),
    /// Lost in a failed conversion: reads and writes fail, so the connection closes.
    Gone,
}

impl From<TcpStream> for MovableTcp {
    fn from(stream: TcpStream) -> Self {
        Self(State::Attached(stream))
    }
}

impl ClientStream {
    /// Takes the socket off this runtime, so the stream can be sent to another shard.
    pub fn detach(&mut self) -> io::Result<()> {
        self.tcp().detach()
    }

    /// Registers the socket with the current runtime (on the shard that took it over).
    pub fn attach(&mut self) -> io::Result<()> {
        self.tcp().attach()
    }

    fn tcp(&mut self) -> &mut MovableTcp {
        match self {
            Self::Tcp(tcp) => tcp,
            Self::Tls(tls) => tls.get_mut().0,
        }
    }
}

impl MovableTcp {
    fn detach(&mut self) -> io::Result<()> {
        self.0 = match std::mem::replace(&mut self.0, State::Gone) {
            State::Attached(stream) => State::Detached(stream.into_std()?),
            other => other,
        };
        Ok(())
    }

    fn attach(&mut self) -> io::Result<()> {
        self.0 = match std::mem::replace(&mut self.0, State::Gone) {
            State::Detached(stream) => State::Attached(TcpStream::from_std(stream)?),
            other => other,
        };
        Ok(())
    }

    fn attached(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        match &mut self.0 {
            State::Attached(stream) => Ok(Pin::new(stream)),
            State::Detached(_) | State::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl AsyncRead for MovableTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().attached() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl AsyncWrite for MovableTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().attached() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().attached() {
            Ok(stream) => stream.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().attached() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
