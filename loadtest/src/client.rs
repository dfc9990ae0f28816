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
use turn_proto::codec::address::decode_xor;
use turn_proto::codec::attribute::AttrType;
use turn_proto::codec::{Class, ErrorCode, Message, MessageWriter, Method, TransactionId};

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
pub fn new_txid() -> TransactionId {
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
    TransactionId(id)
}

/// How a session reaches the server: one request out, its response back.
pub trait Link: Send {
    /// Sends `msg` and returns the response with transaction id `txid`.
    fn transact(
        &mut self,
        msg: &[u8],
        txid: TransactionId,
    ) -> impl Future<Output = Result<Vec<u8>, Failure>> + Send;
}

impl Link for UdpSocket {
    async fn transact(&mut self, msg: &[u8], txid: TransactionId) -> Result<Vec<u8>, Failure> {
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
async fn transact(sock: &UdpSocket, msg: &[u8], txid: TransactionId) -> Result<Vec<u8>, Failure> {
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
                        && m.transaction() == txid
                        && matches!(m.class(), Class::Success | Class::Error)
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
    // REQUESTED-TRANSPORT UDP, and the relay's address family when not the default.
    let relay = |w: &mut MessageWriter<'_>| {
        w.attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        if relay_ipv6 {
            w.attr(AttrType::REQUESTED_ADDRESS_FAMILY, &[2, 0, 0, 0]);
        }
    };
    let started = Instant::now();
    let txid = new_txid();
    let mut first = Vec::with_capacity(64);
    relay(&mut MessageWriter::new(
        &mut first,
        Method::ALLOCATE,
        Class::Request,
        txid,
    ));
    let resp = sock.transact(&first, txid).await?;
    let m = Message::parse(&resp).map_err(|_| Failure::Protocol("unparsable response"))?;
    let (realm, nonce) = match (m.class(), m.error_code()) {
        (Class::Error, Some(ErrorCode::UNAUTHORIZED)) => (
            m.attr(AttrType::REALM)
                .ok_or(Failure::Protocol("401 without REALM"))?
                .to_vec(),
            m.attr(AttrType::NONCE)
                .ok_or(Failure::Protocol("401 without NONCE"))?
                .to_vec(),
        ),
        (Class::Error, Some(code)) => return Err(Failure::Code(code.0)),
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
        .signed(Method::ALLOCATE, |w| {
            relay(w);
            if let Some(l) = lifetime {
                w.u32_attr(AttrType::LIFETIME, l);
            }
        })
        .await?;
    let m = Message::parse(&resp).map_err(|_| Failure::Protocol("unparsable response"))?;
    session.relayed = m
        .attr(AttrType::XOR_RELAYED_ADDRESS)
        .and_then(|v| decode_xor(v, &m.transaction()).ok())
        .ok_or(Failure::Protocol("no XOR-RELAYED-ADDRESS"))?;
    session.lifetime = m.u32_attr(AttrType::LIFETIME).unwrap_or(600);
    Ok((session, started.elapsed()))
}

impl<L: Link> Session<L> {
    /// Sends an authenticated request built by `add`, retrying on 438 Stale Nonce;
    /// returns the success response.
    async fn signed(
        &mut self,
        method: Method,
        add: impl Fn(&mut MessageWriter<'_>),
    ) -> Result<Vec<u8>, Failure> {
        let mut msg = Vec::with_capacity(256);
        for _ in 0..=MAX_NONCE_RETRIES {
            let txid = new_txid();
            msg.clear();
            let mut w = MessageWriter::new(&mut msg, method, Class::Request, txid);
            w.attr(AttrType::USERNAME, self.username.as_bytes())
                .attr(AttrType::REALM, &self.realm)
                .attr(AttrType::NONCE, &self.nonce);
            add(&mut w);
            w.integrity(&self.key);
            let resp = self.sock.transact(&msg, txid).await?;
            let m = Message::parse(&resp).map_err(|_| Failure::Protocol("unparsable response"))?;
            match m.class() {
                Class::Success => {
                    if !integrity_holds(&m, &self.key) {
                        return Err(Failure::Protocol("bad MESSAGE-INTEGRITY in response"));
                    }
                    return Ok(resp);
                }
                _ => match m.error_code() {
                    Some(ErrorCode::STALE_NONCE) => {
                        self.nonce = m
                            .attr(AttrType::NONCE)
                            .ok_or(Failure::Protocol("438 without NONCE"))?
                            .to_vec();
                    }
                    Some(code) => return Err(Failure::Code(code.0)),
                    None => return Err(Failure::Protocol("error without ERROR-CODE")),
                },
            }
        }
        Err(Failure::Code(ErrorCode::STALE_NONCE.0))
    }

    /// Installs a permission for `peer`'s IP.
    pub async fn create_permission(&mut self, peer: SocketAddr) -> Result<(), Failure> {
        self.signed(Method::CREATE_PERMISSION, |w| {
            w.xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
        .await
        .map(drop)
    }

    /// Binds `channel` (0x4000..=0x7FFF) to `peer`.
    pub async fn channel_bind(&mut self, channel: u16, peer: SocketAddr) -> Result<(), Failure> {
        let [high, low] = channel.to_be_bytes();
        self.signed(Method::CHANNEL_BIND, |w| {
            w.attr(AttrType::CHANNEL_NUMBER, &[high, low, 0, 0])
                .xor_address(AttrType::XOR_PEER_ADDRESS, peer);
        })
        .await
        .map(drop)
    }

    /// Refreshes the allocation; `0` deletes it.
    pub async fn refresh(&mut self, lifetime: u32) -> Result<(), Failure> {
        let resp = self
            .signed(Method::REFRESH, |w| {
                w.u32_attr(AttrType::LIFETIME, lifetime);
            })
            .await?;
        if let Some(l) = Message::parse(&resp)
            .ok()
            .and_then(|m| m.u32_attr(AttrType::LIFETIME))
        {
            self.lifetime = l;
        }
        Ok(())
    }
}

/// A response's MESSAGE-INTEGRITY-SHA256, else its MESSAGE-INTEGRITY, matches `key`; a
/// response without either passes (servers sign success responses, but need not).
fn integrity_holds(m: &Message<'_>, key: &[u8]) -> bool {
    if m.has_integrity_sha256() {
        m.verify_integrity_sha256(key)
    } else {
        !m.has_integrity() || m.verify_integrity(key)
    }
}

/// A Send indication carrying `payload` to `peer` (unauthenticated, RFC 5766 §10.1).
/// `payload_len` is bounded by the caller (`--size`, at most one datagram).
pub fn send_indication_prefix(peer: SocketAddr, payload_len: usize) -> Vec<u8> {
    // Build once with a zero payload of the right length and keep only the header part:
    // the data path appends the payload itself.
    let mut msg = Vec::with_capacity(40 + payload_len);
    MessageWriter::new(
        &mut msg,
        Method::SEND,
        Class::Indication,
        TransactionId([0; 12]),
    )
    .xor_address(AttrType::XOR_PEER_ADDRESS, peer)
    .attr(AttrType::DATA, &vec![0; payload_len]);
    msg.truncate(msg.len().saturating_sub(payload_len.next_multiple_of(4)));
    msg
}

/// The DATA payload of a Data indication, if `buf` is one.
pub fn data_indication_payload(buf: &[u8]) -> Option<&[u8]> {
    let m = Message::parse(buf).ok()?;
    if m.method() == Method::DATA && m.class() == Class::Indication {
        m.attr(AttrType::DATA)
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
            assert_eq!(m.method(), Method::SEND);
            assert_eq!(m.attr(AttrType::DATA).unwrap().len(), len);
            let address = m.attr(AttrType::XOR_PEER_ADDRESS).unwrap();
            assert_eq!(decode_xor(address, &m.transaction()), Ok(peer));
        }
    }

    #[test]
    fn data_indication_is_recognised() {
        let mut msg = Vec::new();
        MessageWriter::new(&mut msg, Method::DATA, Class::Indication, new_txid())
            .attr(AttrType::DATA, b"hello");
        assert_eq!(data_indication_payload(&msg), Some(&b"hello"[..]));
        let mut other = Vec::new();
        MessageWriter::new(&mut other, Method::SEND, Class::Indication, new_txid())
            .attr(AttrType::DATA, b"hello");
        assert_eq!(data_indication_payload(&other), None);
        assert_eq!(data_indication_payload(b"junk"), None);
        assert_ne!(new_txid(), new_txid());
    }
}
