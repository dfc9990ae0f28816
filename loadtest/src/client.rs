//! The TURN control plane of one load-test client: Allocate (with the 401 challenge),
//! CreatePermission, ChannelBind, Refresh and deallocation, over a tokio UDP socket or a
//! TCP/TLS stream ([`Link`]; the stream side is in `stream.rs`).
//!
//! Each client owns one connected socket, so the server sees one 5-tuple per allocation,
//! as with real callers. Over UDP, requests are retransmitted with a doubling timeout
//! (RFC 5389 §7.2.1, shortened: a load test must not wait 39 s for a dead server).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc_auth::long_term::long_term_key;
use rtc_auth::rest::RestCredential;
use tokio::net::UdpSocket;

use crate::stun::{self, Builder, Class, Message, attr, method};

/// First retransmission timeout.
const RTO: Duration = Duration::from_millis(500);
/// Sends per transaction (0.5 + 1 + 2 + 2 s = 5.5 s at most).
const MAX_SENDS: u32 = 4;
/// Cap on one retransmission wait.
const MAX_RTO: Duration = Duration::from_secs(2);
/// How many stale-nonce (438) retries one request may take.
const MAX_NONCE_RETRIES: u32 = 2;

/// Why a client operation failed; its [`fmt::Display`] is the key in "failures by code".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with this STUN error code.
    Code(u16),
    /// No answer after all retransmissions.
    Timeout,
    /// A socket error (the text of the `io::Error` kind).
    Io(String),
    /// The answer made no sense (missing attribute, bad integrity).
    Protocol(&'static str),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "stun-{c}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Io(e) => write!(f, "io-{e}"),
            Self::Protocol(e) => write!(f, "protocol-{e}"),
        }
    }
}

fn io_failure(e: &std::io::Error) -> Failure {
    Failure::Io(format!("{:?}", e.kind()).to_lowercase())
}

/// Unique transaction ids: a per-process random prefix plus a counter.
pub fn new_txid() -> [u8; 12] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(u64::from(std::process::id()));
        h.finish() as u32
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [0; 12];
    id[..4].copy_from_slice(&prefix.to_be_bytes());
    id[4..].copy_from_slice(&n.to_be_bytes());
    id
}

/// How a session reaches the server: one request out, its response back.
pub trait Link: Send {
    /// Sends `msg` and returns the response with transaction id `txid`.
    fn transact(
        &mut self,
        msg: &[u8],
        txid: [u8; 12],
    ) -> impl Future<Output = Result<Vec<u8>, Failure>> + Send;
}

impl Link for UdpSocket {
    async fn transact(&mut self, msg: &[u8], txid: [u8; 12]) -> Result<Vec<u8>, Failure> {
        transact(self, msg, txid).await
    }
}

/// An allocated TURN session.
#[derive(Debug)]
pub struct Session<L = UdpSocket> {
    /// The client's socket (or stream), connected to the server.
    pub sock: L,
    /// The relayed transport address the server gave us.
    pub relayed: SocketAddr,
    /// Lifetime granted by the server, seconds.
    pub lifetime: u32,
    username: String,
    realm: Vec<u8>,
    nonce: Vec<u8>,
    key: [u8; 16],
}

/// Sends `msg` and waits for the response with the same transaction id.
async fn transact(sock: &UdpSocket, msg: &[u8], txid: [u8; 12]) -> Result<Vec<u8>, Failure> {
    let mut buf = vec![0u8; 2048];
    let mut rto = RTO;
    for _ in 0..MAX_SENDS {
        sock.send(msg).await.map_err(|e| io_failure(&e))?;
        let deadline = tokio::time::Instant::now() + rto;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable on a connected socket: the server is not there.
                Ok(Err(e)) => return Err(io_failure(&e)),
                Ok(Ok(n)) => {
                    let data = &buf[..n];
                    if let Ok(m) = Message::parse(data)
                        && m.txid == txid
                        && matches!(m.class, Class::Success | Class::Error)
                    {
                        return Ok(data.to_vec());
                    }
                    // Stray data (late relayed packets, old responses): ignore.
                }
            }
        }
        rto = (rto * 2).min(MAX_RTO);
    }
    Err(Failure::Timeout)
}

/// Creates a client socket on the same address family as `server`, connected to it; the
/// kernel picks the source address that reaches it (loopback for a loopback server).
pub async fn connect(server: SocketAddr) -> Result<UdpSocket, Failure> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| Failure::Protocol("addr"))?
    } else {
        "[::]:0".parse().map_err(|_| Failure::Protocol("addr"))?
    };
    let sock = UdpSocket::bind(local).await.map_err(|e| io_failure(&e))?;
    sock.connect(server).await.map_err(|e| io_failure(&e))?;
    Ok(sock)
}

/// Allocates a UDP relay with the long-term mechanism: unauthenticated request, 401 with
/// realm and nonce, then the signed request. Returns the session and its latency.
pub async fn allocate(
    server: SocketAddr,
    cred: &RestCredential,
    lifetime: Option<u32>,
) -> Result<(Session, Duration), Failure> {
    let sock = connect(server).await?;
    allocate_on(sock, cred, lifetime, false).await
}

/// [`allocate`] over an already connected link (the latency excludes connecting);
/// `relay_ipv6` asks for an IPv6 relay address (REQUESTED-ADDRESS-FAMILY), else the
/// server's default (IPv4) applies.
pub async fn allocate_on<L: Link>(
    mut sock: L,
    cred: &RestCredential,
    lifetime: Option<u32>,
    relay_ipv6: bool,
) -> Result<(Session<L>, Duration), Failure> {
    let family = |b: Builder| {
        if relay_ipv6 {
            b.attr(attr::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0])
        } else {
            b
        }
    };
    let started = Instant::now();
    let txid = new_txid();
    let first = family(
        Builder::new(method::ALLOCATE, Class::Request, txid)
            .attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]),
    )
    .finish();
    let resp = sock.transact(&first, txid).await?;
    let m = Message::parse(&resp).map_err(|_| Failure::Protocol("unparsable response"))?;
    let (realm, nonce) = match (m.class, m.error_code()) {
        (Class::Error, Some((401, _))) => (
            m.attr(attr::REALM)
                .ok_or(Failure::Protocol("401 without REALM"))?
                .to_vec(),
            m.attr(attr::NONCE)
                .ok_or(Failure::Protocol("401 without NONCE"))?
                .to_vec(),
        ),
        (Class::Error, Some((code, _))) => return Err(Failure::Code(code)),
        (Class::Error, None) => return Err(Failure::Protocol("error without ERROR-CODE")),
        _ => return Err(Failure::Protocol("allocate accepted without auth")),
    };
    let realm_str = String::from_utf8_lossy(&realm).into_owned();
    let key = long_term_key(&cred.username, &realm_str, &cred.password);
    let mut session = Session {
        sock,
        relayed: "0.0.0.0:0".parse().map_err(|_| Failure::Protocol("addr"))?,
        lifetime: 0,
        username: cred.username.clone(),
        realm,
        nonce,
        key,
    };
    let resp = session
        .signed(method::ALLOCATE, |b| {
            let b = family(b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]));
            match lifetime {
                Some(l) => b.attr_u32(attr::LIFETIME, l),
                None => b,
            }
        })
        .await?;
    let m = Message::parse(&resp).map_err(|_| Failure::Protocol("unparsable response"))?;
    session.relayed = m
        .xor_addr(attr::XOR_RELAYED_ADDRESS)
        .ok_or(Failure::Protocol("no XOR-RELAYED-ADDRESS"))?;
    session.lifetime = m.u32_attr(attr::LIFETIME).unwrap_or(600);
    Ok((session, started.elapsed()))
}

impl<L: Link> Session<L> {
    /// Sends an authenticated request built by `add`, retrying on 438 Stale Nonce;
    /// returns the success response.
    async fn signed(
        &mut self,
        method: u16,
        add: impl Fn(Builder) -> Builder,
    ) -> Result<Vec<u8>, Failure> {
        for _ in 0..=MAX_NONCE_RETRIES {
            let txid = new_txid();
            let b = Builder::new(method, Class::Request, txid)
                .attr(attr::USERNAME, self.username.as_bytes())
                .attr(attr::REALM, &self.realm)
                .attr(attr::NONCE, &self.nonce);
            let msg = add(b).finish_with_integrity(&self.key);
            let resp = self.sock.transact(&msg, txid).await?;
            let m = Message::parse(&resp).map_err(|_| Failure::Protocol("unparsable response"))?;
            match m.class {
                Class::Success => {
                    if m.check_integrity(&self.key) == Some(false) {
                        return Err(Failure::Protocol("bad MESSAGE-INTEGRITY in response"));
                    }
                    return Ok(resp);
                }
                _ => match m.error_code() {
                    Some((438, _)) => {
                        self.nonce = m
                            .attr(attr::NONCE)
                            .ok_or(Failure::Protocol("438 without NONCE"))?
                            .to_vec();
                    }
                    Some((code, _)) => return Err(Failure::Code(code)),
                    None => return Err(Failure::Protocol("error without ERROR-CODE")),
                },
            }
        }
        Err(Failure::Code(438))
    }

    /// Installs a permission for `peer`'s IP.
    pub async fn create_permission(&mut self, peer: SocketAddr) -> Result<(), Failure> {
        self.signed(method::CREATE_PERMISSION, |b| {
            b.xor_addr(attr::XOR_PEER_ADDRESS, peer)
        })
        .await
        .map(drop)
    }

    /// Binds `channel` (0x4000..=0x7FFF) to `peer`.
    pub async fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), Failure> {
        self.signed(method::CHANNEL_BIND, |b| {
            b.attr(
                attr::CHANNEL_NUMBER,
                &[(channel >> 8) as u8, channel as u8, 0, 0],
            )
            .xor_addr(attr::XOR_PEER_ADDRESS, peer)
        })
        .await
        .map(drop)
    }

    /// Refreshes the allocation; `0` deletes it.
    pub async fn refresh(&mut self, lifetime: u32) -> Result<(), Failure> {
        let resp = self
            .signed(method::REFRESH, |b| b.attr_u32(attr::LIFETIME, lifetime))
            .await?;
        if let Some(l) = Message::parse(&resp)
            .ok()
            .and_then(|m| m.u32_attr(attr::LIFETIME))
        {
            self.lifetime = l;
        }
        Ok(())
    }
}

/// A Send indication carrying `payload` to `peer` (unauthenticated, RFC 5766 §10.1).
pub fn send_indication_prefix(peer: SocketAddr, payload_len: usize) -> Vec<u8> {
    // Build once with a zero payload of the right length and keep only the header part:
    // the data path appends the payload itself.
    let b = Builder::new(method::SEND, Class::Indication, [0; 12])
        .xor_addr(attr::XOR_PEER_ADDRESS, peer)
        .attr(attr::DATA, &vec![0; payload_len]);
    let full = b.finish();
    let pad = (4 - payload_len % 4) % 4;
    full[..full.len() - payload_len - pad].to_vec()
}

/// The DATA payload of a Data indication, if `buf` is one.
pub fn data_indication_payload(buf: &[u8]) -> Option<&[u8]> {
    if !stun::looks_like_stun(buf) {
        return None;
    }
    let m = Message::parse(buf).ok()?;
    if m.method == method::DATA && m.class == Class::Indication {
        m.attr(attr::DATA)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_indication_prefix_frames_payload() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        for len in [24, 25, 64, 1001] {
            let mut msg = send_indication_prefix(peer, len);
            msg.extend(std::iter::repeat_n(0xAB, len));
            msg.extend(std::iter::repeat_n(0, (4 - len % 4) % 4));
            let m = Message::parse(&msg).unwrap();
            assert_eq!(m.method, method::SEND);
            assert_eq!(m.attr(attr::DATA).unwrap().len(), len);
            assert_eq!(m.xor_addr(attr::XOR_PEER_ADDRESS), Some(peer));
        }
    }

    #[test]
    fn data_indication_is_recognised() {
        let msg = Builder::new(method::DATA, Class::Indication, new_txid())
            .attr(attr::DATA, b"hello")
            .finish();
        assert_eq!(data_indication_payload(&msg), Some(&b"hello"[..]));
        let other = Builder::new(method::SEND, Class::Indication, new_txid())
            .attr(attr::DATA, b"hello")
            .finish();
        assert_eq!(data_indication_payload(&other), None);
        assert_eq!(data_indication_payload(b"junk"), None);
        assert_ne!(new_txid(), new_txid());
    }
}
