//! RFC 6062 TCP relays driven by a small hand-written client over real sockets: a
//! Connect to a peer the policy denies is refused, and a ConnectionBind'ed data
//! connection carries bytes both ways to a TCP peer and closes with it. Runs against
//! coturn too (`TURN_TEST_SERVER=coturn`).

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rtc_auth::rest::RestCredential;
use support::{REALM, TurnServer};
use turn_proto::codec::address::decode_xor;
use turn_proto::codec::attribute::AttrType;
use turn_proto::codec::{Class, Message, MessageWriter, Method, TransactionId};

/// A peer address the server is started to deny (loopback is otherwise allowed).
const DENIED_PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A STUN client on one TCP connection, signing with a REST credential once it has a
/// nonce.
struct StunStream {
    stream: TcpStream,
    credential: RestCredential,
    nonce: Vec<u8>,
    next_tid: u8,
}

impl StunStream {
    fn connect(server: &TurnServer, credential: RestCredential, nonce: Vec<u8>) -> Self {
        let stream = TcpStream::connect(server.addr).expect("connect to the TURN server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            stream,
            credential,
            nonce,
            next_tid: 0,
        }
    }

    /// Sends a request with `attrs` (XOR-PEER-ADDRESS given as a plain address) and
    /// returns the response, doing the 401 round first when there is no nonce yet.
    fn request(&mut self, method: Method, attrs: &[(AttrType, Attr)]) -> Vec<u8> {
        if self.nonce.is_empty() {
            let challenge = self.send(method, attrs, false);
            let message = Message::parse(&challenge).unwrap();
            self.nonce = message.attr(AttrType::NONCE).expect("a nonce").to_vec();
        }
        self.send(method, attrs, true)
    }

    fn send(&mut self, method: Method, attrs: &[(AttrType, Attr)], sign: bool) -> Vec<u8> {
        self.next_tid += 1;
        let transaction = TransactionId([self.next_tid; 12]);
        let mut request = Vec::new();
        let mut writer = MessageWriter::new(&mut request, method, Class::Request, transaction);
        for (kind, value) in attrs {
            match value {
                Attr::Bytes(bytes) => writer.attr(*kind, bytes),
                Attr::Address(address) => writer.xor_address(*kind, *address),
            };
        }
        if sign {
            let key = rtc_auth::long_term::long_term_key(
                &self.credential.username,
                REALM,
                &self.credential.password,
            );
            writer
                .attr(AttrType::USERNAME, self.credential.username.as_bytes())
                .attr(AttrType::REALM, REALM.as_bytes())
                .attr(AttrType::NONCE, &self.nonce)
                .integrity(&key);
        }
        self.stream.write_all(&request).unwrap();
        self.read_message()
    }

    fn read_message(&mut self) -> Vec<u8> {
        let mut header = [0u8; 20];
        self.stream.read_exact(&mut header).unwrap();
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).unwrap();
        [header.to_vec(), body].concat()
    }
}

enum Attr {
    Bytes(Vec<u8>),
    Address(SocketAddr),
}

fn error_code(response: &[u8]) -> Option<u16> {
    let message = Message::parse(response).unwrap();
    message
        .attr(AttrType::ERROR_CODE)
        .map(|value| u16::from(value[2] & 0x07) * 100 + u16::from(value[3]))
}

fn assert_success(response: &[u8], what: &str) {
    let message = Message::parse(response).unwrap();
    assert_eq!(
        message.class(),
        Class::Success,
        "{what} failed with {:?}",
        error_code(response)
    );
}

/// A control connection with a TCP allocation; returns it and its relayed address.
fn tcp_allocation(server: &TurnServer) -> (StunStream, SocketAddr) {
    let mut control = StunStream::connect(server, server.credential(), Vec::new());
    let tcp = (AttrType::REQUESTED_TRANSPORT, Attr::Bytes(vec![6, 0, 0, 0]));
    let response = control.request(Method::ALLOCATE, &[tcp]);
    assert_success(&response, "TCP Allocate");
    let message = Message::parse(&response).unwrap();
    let relay = decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    (control, relay)
}

fn peer_attr(peer: SocketAddr) -> (AttrType, Attr) {
    (AttrType::XOR_PEER_ADDRESS, Attr::Address(peer))
}

fn server_denying_a_peer() -> TurnServer {
    TurnServer::builder()
        .tcp()
        .arg(format!("--denied-peer-ip={DENIED_PEER}"))
        .start()
}

#[test]
fn connect_to_a_denied_peer_is_forbidden() {
    let server = server_denying_a_peer();
    let (mut control, _) = tcp_allocation(&server);
    // A listener that must never see a connection from the relay.
    let denied = TcpListener::bind((DENIED_PEER, 0)).unwrap();
    denied.set_nonblocking(true).unwrap();
    let peer = denied.local_addr().unwrap();
    let permission = control.request(Method::CREATE_PERMISSION, &[peer_attr(peer)]);
    assert_eq!(error_code(&permission), Some(403), "CreatePermission");
    let response = control.request(Method::CONNECT, &[peer_attr(peer)]);
    assert_eq!(error_code(&response), Some(403), "Connect");
    std::thread::sleep(Duration::from_millis(200));
    assert!(denied.accept().is_err(), "the denied peer was dialled");
}

/// A TCP allocation connected to a TCP peer and joined to a data connection: the control
/// connection, the data connection and the peer's end. The peer speaks before the data
/// connection exists: `early` must wait for it.
fn joined(server: &TurnServer, early: &[u8]) -> (StunStream, TcpStream, TcpStream) {
    let (mut control, relay) = tcp_allocation(server);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let peer_addr = listener.local_addr().unwrap();
    let permission = control.request(Method::CREATE_PERMISSION, &[peer_attr(peer_addr)]);
    assert_success(&permission, "CreatePermission");

    let response = control.request(Method::CONNECT, &[peer_attr(peer_addr)]);
    assert_success(&response, "Connect");
    let message = Message::parse(&response).unwrap();
    let connection_id = message
        .attr(AttrType::CONNECTION_ID)
        .expect("CONNECTION-ID")
        .to_vec();
    let (mut peer, seen_from) = listener.accept().unwrap();
    assert_eq!(
        seen_from, relay,
        "the peer is reached from the relayed address"
    );
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    peer.write_all(early).unwrap();

    let mut data = StunStream::connect(server, server.credential(), control.nonce.clone());
    let bind = data.request(
        Method::CONNECTION_BIND,
        &[(AttrType::CONNECTION_ID, Attr::Bytes(connection_id))],
    );
    assert_success(&bind, "ConnectionBind");
    (control, data.stream, peer)
}

#[test]
fn a_bound_data_connection_relays_both_ways_and_closes_with_the_peer() {
    let server = server_denying_a_peer();
    let (mut control, mut data, mut peer) = joined(&server, b"early bytes from the peer");
    let mut early = [0u8; 25];
    data.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early bytes from the peer");
    let upstream = vec![0xA5u8; 100_000];
    data.write_all(&upstream).unwrap();
    let mut received = vec![0u8; upstream.len()];
    peer.read_exact(&mut received).unwrap();
    assert_eq!(received, upstream, "client to peer");
    peer.write_all(b"and back").unwrap();
    let mut back = [0u8; 8];
    data.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"and back", "peer to client");

    // The peer hangs up: the data connection follows (FIN from us, RST from coturn);
    // the allocation stays.
    drop(peer);
    let mut rest = Vec::new();
    let closed = data.read_to_end(&mut rest);
    let reset = |error: &std::io::Error| error.kind() == std::io::ErrorKind::ConnectionReset;
    assert!(
        closed.as_ref().map_or_else(reset, |_| rest.is_empty()),
        "data connection closed: {closed:?} after {} more bytes",
        rest.len()
    );
    let refresh = control.request(Method::REFRESH, &[]);
    assert_success(&refresh, "Refresh after the data connection closed");
}

#[test]
fn a_peer_without_permission_cannot_connect_in() {
    let server = server_denying_a_peer();
    let (mut control, relay) = tcp_allocation(&server);
    // Permission for 127.0.0.3 only; 127.0.0.1 knocks on the relayed address.
    let permitted = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 3), 9));
    let permission = control.request(Method::CREATE_PERMISSION, &[peer_attr(permitted)]);
    assert_success(&permission, "CreatePermission");
    let mut stranger = TcpStream::connect(relay).expect("the relayed address listens");
    stranger
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    let closed = stranger.read(&mut buf);
    assert!(
        matches!(closed, Ok(0)) || closed.is_err(),
        "the server must close an unpermitted peer's connection: {closed:?}"
    );
    // And the client heard nothing of it: its next answer is the Refresh's.
    let refresh = control.request(Method::REFRESH, &[]);
    let message = Message::parse(&refresh).unwrap();
    assert_eq!(message.method(), Method::REFRESH, "no ConnectionAttempt");
}

#[test]
fn a_client_that_stops_reading_holds_the_peer_back() {
    let server = server_denying_a_peer();
    let (_control, mut data, mut peer) = joined(&server, b"");
    let before = support::rss_kib(server.pid());
    // The client reads nothing; the peer pushes up to 64 MiB and must be held back by
    // TCP flow control: only socket buffers and the relay's bounded copy fill up.
    peer.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let chunk = vec![0x5Au8; 64 * 1024];
    let mut pushed = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    while pushed < 64 << 20 && Instant::now() < deadline {
        match peer.write(&chunk) {
            Ok(written) => pushed += written,
            Err(_) => break,
        }
    }
    assert!(
        pushed < 48 << 20,
        "the peer pushed {} MiB into a client that reads nothing",
        pushed >> 20
    );
    if server.kind == support::ServerKind::Ours {
        let grown = support::rss_kib(server.pid()).saturating_sub(before);
        assert!(grown < 4 * 1024, "server RSS grew by {grown} KiB");
    }
    // Nothing was lost: once the client reads, the stream resumes in order.
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0usize;
    data.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while read < pushed {
        let len = data.read(&mut buf).unwrap();
        assert!(len > 0, "closed after {read} of {pushed} bytes");
        assert!(buf[..len].iter().all(|byte| *byte == 0x5A));
        read += len;
    }
}

/// `max-tcp-relay-connections`: one permission no longer opens connections without end.
/// (Ours only: coturn has no such cap.)
#[test]
fn peer_connections_per_allocation_are_capped() {
    if support::ServerKind::from_env() != support::ServerKind::Ours {
        return;
    }
    let server = TurnServer::builder()
        .tcp()
        .arg("--max-tcp-relay-connections=2")
        .start();
    let (mut control, _) = tcp_allocation(&server);
    let peers: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        .collect();
    let first = peers[0].local_addr().unwrap();
    let permission = control.request(Method::CREATE_PERMISSION, &[peer_attr(first)]);
    assert_success(&permission, "CreatePermission");
    for peer in &peers[..2] {
        let response = control.request(Method::CONNECT, &[peer_attr(peer.local_addr().unwrap())]);
        assert_success(&response, "Connect within the cap");
    }
    let third = peers[2].local_addr().unwrap();
    let response = control.request(Method::CONNECT, &[peer_attr(third)]);
    assert_eq!(error_code(&response), Some(508), "Connect past the cap");
    peers[2].set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(peers[2].accept().is_err(), "the third peer was dialled");
}
