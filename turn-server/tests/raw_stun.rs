//! Raw-socket STUN/TURN tests: every message is built and checked with `stun-types` /
//! `turn-types` over a plain UDP socket, so each attribute and error code is asserted
//! exactly (Binding, the 401 challenge, long-term auth, Send/Data indications,
//! ChannelBind/ChannelData, Refresh to 0, and 403 for a denied peer).

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rtc_auth::rest;
use rtc_auth::secret::Secret;
use stun_types::attribute::{ErrorCode, Nonce, Realm, Username, XorMappedAddress};
use stun_types::message::{
    BINDING, IntegrityAlgorithm, LongTermKeyCredentials, Message, MessageClass,
    MessageIntegrityCredentials, MessageWriteVec, Method, TransactionId,
};
use stun_types::prelude::*;
use support::{EchoPeer, MATRIX_USER, REALM, TurnServer, unix_now};
use turn_types::attribute::{
    ChannelNumber, Data, Lifetime, RequestedTransport, XorPeerAddress, XorRelayedAddress,
};
use turn_types::channel::ChannelData;
use turn_types::message::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, DATA, REFRESH, SEND};

/// Per-try wait for a response; requests are retransmitted up to [`TRIES`] times.
const RTO: Duration = Duration::from_millis(300);
const TRIES: u32 = 8;

/// Long-term credentials learnt from a 401 challenge.
struct Auth {
    username: String,
    realm: String,
    nonce: String,
    credentials: MessageIntegrityCredentials,
}

/// A STUN client on a plain UDP socket.
struct RawClient {
    socket: UdpSocket,
    server: SocketAddr,
}

impl RawClient {
    fn new(server: SocketAddr) -> Self {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind client socket");
        RawClient { socket, server }
    }

    fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Builds a request; `add` gets the transaction id (XOR attributes need it) and adds
    /// attributes; with `auth`, USERNAME/REALM/NONCE/MESSAGE-INTEGRITY follow; FINGERPRINT last.
    fn request(
        method: Method,
        auth: Option<&Auth>,
        add: impl FnOnce(&mut MessageWriteVec, TransactionId),
    ) -> (Vec<u8>, TransactionId) {
        let mut msg = Message::builder_request(method, MessageWriteVec::new());
        let txid = msg.transaction_id();
        add(&mut msg, txid);
        if let Some(auth) = auth {
            msg.add_attribute(&Username::new(&auth.username).unwrap())
                .unwrap();
            msg.add_attribute(&Realm::new(&auth.realm).unwrap())
                .unwrap();
            msg.add_attribute(&Nonce::new(&auth.nonce).unwrap())
                .unwrap();
            msg.add_message_integrity(&auth.credentials, IntegrityAlgorithm::Sha1)
                .unwrap();
        }
        msg.add_fingerprint().unwrap();
        (msg.finish(), txid)
    }

    /// Sends `request` until a response with `txid` arrives (bounded retransmissions).
    fn transact(&self, request: &[u8], txid: TransactionId) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        for _ in 0..TRIES {
            self.socket.send_to(request, self.server).unwrap();
            let deadline = Instant::now() + RTO;
            while let Some(n) = self.recv_until(&mut buf, deadline) {
                if let Ok(msg) = Message::from_bytes(&buf[..n])
                    && msg.is_response()
                    && msg.transaction_id() == txid
                {
                    return buf[..n].to_vec();
                }
            }
        }
        panic!("no response to transaction {txid} from {}", self.server);
    }

    /// Receives one datagram from the server before `deadline`.
    fn recv_until(&self, buf: &mut [u8], deadline: Instant) -> Option<usize> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.socket.recv_from(buf) {
                Ok((n, from)) if from == self.server => return Some(n),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// An unauthenticated Allocate: must be refused with 401 carrying REALM and NONCE.
    fn challenge(&self) -> (String, String) {
        let (request, txid) = Self::request(ALLOCATE, None, |msg, _| {
            msg.add_attribute(&RequestedTransport::new(RequestedTransport::UDP))
                .unwrap();
        });
        let bytes = self.transact(&request, txid);
        let response = Message::from_bytes(&bytes).expect("parse 401 response");
        assert_eq!(response.method(), ALLOCATE);
        assert_eq!(
            response.class(),
            MessageClass::Error,
            "unauthenticated Allocate must fail"
        );
        assert_eq!(error_code(&response), Some(401), "unauthenticated Allocate");
        let realm = response
            .attribute::<Realm>()
            .expect("401 must carry REALM")
            .realm()
            .to_owned();
        let nonce = response
            .attribute::<Nonce>()
            .expect("401 must carry NONCE")
            .nonce()
            .to_owned();
        (realm, nonce)
    }

    /// Long-term credentials for `username`/`password` with a fresh challenge.
    fn auth(&self, username: &str, password: &str) -> Auth {
        let (realm, nonce) = self.challenge();
        let credentials =
            LongTermKeyCredentials::new(username.to_owned(), password.to_owned(), realm.clone())
                .into();
        Auth {
            username: username.to_owned(),
            realm,
            nonce,
            credentials,
        }
    }

    /// An authenticated Allocate (UDP transport); returns the raw response.
    fn allocate(&self, auth: &Auth) -> Vec<u8> {
        let (request, txid) = Self::request(ALLOCATE, Some(auth), |msg, _| {
            msg.add_attribute(&RequestedTransport::new(RequestedTransport::UDP))
                .unwrap();
        });
        self.transact(&request, txid)
    }

    /// An authenticated request with one XOR-PEER-ADDRESS (and a channel number if given).
    fn peer_request(
        &self,
        method: Method,
        auth: &Auth,
        peer: SocketAddr,
        channel: Option<u16>,
    ) -> Vec<u8> {
        let (request, txid) = Self::request(method, Some(auth), |msg, txid| {
            if let Some(channel) = channel {
                msg.add_attribute(&ChannelNumber::new(channel)).unwrap();
            }
            msg.add_attribute(&XorPeerAddress::new(peer, txid)).unwrap();
        });
        self.transact(&request, txid)
    }

    /// A Send indication carrying `payload` to `peer`.
    fn send_indication(&self, peer: SocketAddr, payload: &[u8]) {
        let mut msg = Message::builder_indication(SEND, MessageWriteVec::new());
        let txid = msg.transaction_id();
        msg.add_attribute(&XorPeerAddress::new(peer, txid)).unwrap();
        msg.add_attribute(&Data::new(payload)).unwrap();
        self.socket.send_to(&msg.finish(), self.server).unwrap();
    }

    /// A ChannelData message on `channel`.
    fn send_channel_data(&self, channel: u16, payload: &[u8]) {
        let mut frame = vec![0u8; payload.len() + 4];
        ChannelData::new(channel, payload).write_into_unchecked(&mut frame);
        self.socket.send_to(&frame, self.server).unwrap();
    }
}

/// The ERROR-CODE of a response, if any.
fn error_code(msg: &Message<'_>) -> Option<u16> {
    msg.attribute::<ErrorCode>().ok().map(|e| e.code())
}

/// Describes a response for assertion messages.
fn describe(msg: &Message<'_>) -> String {
    match msg.attribute::<ErrorCode>() {
        Ok(e) => format!("{:?} {} {}", msg.class(), e.code(), e.reason()),
        Err(_) => format!("{:?}", msg.class()),
    }
}

/// Asserts `bytes` is a success response to `method` whose MESSAGE-INTEGRITY verifies.
fn expect_success<'a>(bytes: &'a [u8], method: Method, auth: &Auth, what: &str) -> Message<'a> {
    let msg = Message::from_bytes(bytes).unwrap_or_else(|e| panic!("{what}: unparsable: {e}"));
    assert_eq!(msg.method(), method, "{what}: method");
    assert_eq!(
        msg.class(),
        MessageClass::Success,
        "{what}: expected success, got {}",
        describe(&msg)
    );
    msg.validate_integrity(&auth.credentials)
        .unwrap_or_else(|e| panic!("{what}: response MESSAGE-INTEGRITY does not verify: {e}"));
    msg
}

/// Asserts `bytes` is an error response to `method` with `code`.
fn expect_error(bytes: &[u8], method: Method, code: u16, what: &str) {
    let msg = Message::from_bytes(bytes).unwrap_or_else(|e| panic!("{what}: unparsable: {e}"));
    assert_eq!(msg.method(), method, "{what}: method");
    assert_eq!(
        (msg.class(), error_code(&msg)),
        (MessageClass::Error, Some(code)),
        "{what}: expected error {code}, got {}",
        describe(&msg)
    );
}

/// Waits (bounded) until `peer` has received at least `count` datagrams.
/// A client of `server` with an allocation under the server's REST credential.
fn allocated(server: &TurnServer) -> (RawClient, Auth) {
    let client = RawClient::new(server.addr);
    let cred = server.credential();
    let auth = client.auth(&cred.username, &cred.password);
    expect_success(&client.allocate(&auth), ALLOCATE, &auth, "Allocate");
    (client, auth)
}

/// Installs a permission for `peer` and checks it was granted.
fn permit(client: &RawClient, auth: &Auth, peer: SocketAddr) {
    let bytes = client.peer_request(CREATE_PERMISSION, auth, peer, None);
    expect_success(&bytes, CREATE_PERMISSION, auth, "CreatePermission");
}

fn wait_for_peer(peer: &EchoPeer, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while peer.count() < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Receives datagrams from the server until `pick` accepts one (bounded by 3 s).
fn recv_from_server<T>(client: &RawClient, mut pick: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Some(n) = client.recv_until(&mut buf, deadline) {
        if let Some(found) = pick(&buf[..n]) {
            return Some(found);
        }
    }
    None
}

/// One source's Bindings spread over four shards (SO_REUSEPORT hashes each 5-tuple) are
/// limited as one source: 100 at once, then 50 a second. With per-shard buckets each
/// shard answered its own 100.
#[test]
fn one_source_over_four_shards_meets_one_limit() {
    let server = TurnServer::builder().arg("--relay-threads=4").start();
    if server.kind != support::ServerKind::Ours {
        return;
    }
    // The server was probed until it answered (a few Bindings from this address).
    let sockets: Vec<UdpSocket> = (0..64)
        .map(|_| {
            let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            socket.set_nonblocking(true).unwrap();
            socket
        })
        .collect();
    let started = Instant::now();
    for socket in &sockets {
        for _ in 0..8 {
            let (request, _) = RawClient::request(BINDING, None, |_, _| {});
            socket.send_to(&request, server.addr).unwrap();
        }
    }
    let mut answered = 0u32;
    let mut buf = [0u8; 1500];
    let quiet_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < quiet_until {
        let mut any = false;
        for socket in &sockets {
            while socket.recv_from(&mut buf).is_ok() {
                answered += 1;
                any = true;
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let refill = (started.elapsed().as_secs_f64() * 50.0).ceil() as u32;
    assert!(
        (90..=100 + refill).contains(&answered),
        "{answered} of 512 answered in {:?}",
        started.elapsed()
    );
}

#[test]
fn binding_request_returns_the_clients_address() {
    let server = TurnServer::start();
    let client = RawClient::new(server.addr);
    let (request, txid) = RawClient::request(BINDING, None, |_, _| {});
    let bytes = client.transact(&request, txid);
    let response = Message::from_bytes(&bytes).expect("parse Binding response");
    assert_eq!(response.method(), BINDING);
    assert_eq!(
        response.class(),
        MessageClass::Success,
        "Binding: {}",
        describe(&response)
    );
    let mapped = response
        .attribute::<XorMappedAddress>()
        .expect("Binding success must carry XOR-MAPPED-ADDRESS");
    assert_eq!(mapped.addr(txid), client.local_addr());
}

#[test]
fn unauthenticated_allocate_is_challenged_with_realm_and_nonce() {
    let server = TurnServer::start();
    let client = RawClient::new(server.addr);
    let (realm, nonce) = client.challenge();
    assert_eq!(realm, REALM);
    assert!(!nonce.is_empty(), "NONCE must not be empty");
}

#[test]
fn wrong_secret_and_expired_credentials_get_401() {
    let server = TurnServer::start();
    let client = RawClient::new(server.addr);

    let forged = rest::mint(
        &Secret::new("not-the-secret"),
        MATRIX_USER,
        unix_now() + 3600,
        ':',
    );
    let auth = client.auth(&forged.username, &forged.password);
    expect_error(&client.allocate(&auth), ALLOCATE, 401, "wrong secret");

    // A fresh 5-tuple for each credential: a server may remember the username a
    // 5-tuple first used (coturn answers 437 to another one).
    let client = RawClient::new(server.addr);
    let expired = rest::mint(&server.secret, MATRIX_USER, unix_now() - 60, ':');
    let auth = client.auth(&expired.username, &expired.password);
    expect_error(&client.allocate(&auth), ALLOCATE, 401, "expired credential");

    // A valid credential then succeeds: the refusals were about the credentials.
    let client = RawClient::new(server.addr);
    let good = server.credential();
    let auth = client.auth(&good.username, &good.password);
    expect_success(&client.allocate(&auth), ALLOCATE, &auth, "valid credential");
}

#[test]
fn allocation_relays_send_data_and_channel_data_then_refresh_zero_deletes_it() {
    let server = TurnServer::start();
    let peer = EchoPeer::start();
    let client = RawClient::new(server.addr);
    let cred = server.credential();
    let auth = client.auth(&cred.username, &cred.password);

    // Allocate: relayed address in the configured range, mapped address = us, 600 s.
    let bytes = client.allocate(&auth);
    let response = expect_success(&bytes, ALLOCATE, &auth, "Allocate");
    let txid = response.transaction_id();
    let relayed = response
        .attribute::<XorRelayedAddress>()
        .expect("Allocate success must carry XOR-RELAYED-ADDRESS")
        .addr(txid);
    assert!(
        server.slot.is_relay_addr(relayed),
        "relayed address {relayed} outside 127.0.0.1:{}-{}",
        server.slot.min_relay,
        server.slot.max_relay
    );
    let mapped = response
        .attribute::<XorMappedAddress>()
        .expect("Allocate success must carry XOR-MAPPED-ADDRESS")
        .addr(txid);
    assert_eq!(mapped, client.local_addr());
    let lifetime = response
        .attribute::<Lifetime>()
        .expect("Allocate success must carry LIFETIME");
    assert_eq!(lifetime.seconds(), 600, "default allocation lifetime");

    // Send indication before any permission: dropped.
    client.send_indication(peer.addr, b"no permission yet");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(peer.count(), 0, "relayed to a peer without a permission");

    // CreatePermission, then Send -> peer, peer echo -> Data indication.
    let bytes = client.peer_request(CREATE_PERMISSION, &auth, peer.addr, None);
    expect_success(&bytes, CREATE_PERMISSION, &auth, "CreatePermission");
    let payload = b"send-indication payload 0123456789".to_vec();
    client.send_indication(peer.addr, &payload);
    wait_for_peer(&peer, 1);
    let got = peer.received();
    assert_eq!(got.len(), 1, "peer should get exactly the Send payload");
    assert_eq!(got[0].data, payload);
    assert_eq!(got[0].from, relayed, "peer must see the relayed address");
    let echoed = recv_from_server(&client, |datagram| {
        let msg = Message::from_bytes(datagram).ok()?;
        if msg.method() != DATA || msg.class() != MessageClass::Indication {
            return None;
        }
        let from = msg
            .attribute::<XorPeerAddress>()
            .ok()?
            .addr(msg.transaction_id());
        Some((from, msg.attribute::<Data>().ok()?.data().to_vec()))
    })
    .expect("no Data indication with the echo");
    assert_eq!(echoed, (peer.addr, payload));

    // ChannelBind 0x4000, then ChannelData both ways.
    let bytes = client.peer_request(CHANNEL_BIND, &auth, peer.addr, Some(0x4000));
    expect_success(&bytes, CHANNEL_BIND, &auth, "ChannelBind");
    let payload: Vec<u8> = (0..64u8).collect();
    client.send_channel_data(0x4000, &payload);
    wait_for_peer(&peer, 2);
    let got = peer.received();
    assert_eq!(got.len(), 2, "peer should get the ChannelData payload");
    assert_eq!(got[1].data, payload);
    assert_eq!(got[1].from, relayed);
    let echoed = recv_from_server(&client, |datagram| {
        let frame = ChannelData::parse(datagram).ok()?;
        Some((frame.id(), frame.data().to_vec()))
    })
    .expect("no ChannelData with the echo");
    assert_eq!(echoed, (0x4000, payload.clone()));

    // Refresh with LIFETIME 0 deletes the allocation: nothing is relayed afterwards.
    let (request, txid) = RawClient::request(REFRESH, Some(&auth), |msg, _| {
        msg.add_attribute(&Lifetime::new(0)).unwrap();
    });
    let bytes = client.transact(&request, txid);
    expect_success(&bytes, REFRESH, &auth, "Refresh lifetime 0");
    // coturn deletes the allocation on its next 1 s timer tick, not synchronously.
    std::thread::sleep(Duration::from_secs(2));
    client.send_channel_data(0x4000, &payload);
    client.send_indication(peer.addr, &payload);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(peer.count(), 2, "relayed after the allocation was deleted");

    server.assert_no_secrets_logged(&[&cred.password]);
}

#[test]
fn loopback_peer_is_refused_with_403_by_default() {
    let server = TurnServer::builder().allow_loopback_peers(false).start();
    let peer = EchoPeer::start();
    let (client, auth) = allocated(&server);

    let bytes = client.peer_request(CREATE_PERMISSION, &auth, peer.addr, None);
    expect_error(
        &bytes,
        CREATE_PERMISSION,
        403,
        "CreatePermission to 127.0.0.1",
    );
    let bytes = client.peer_request(CHANNEL_BIND, &auth, peer.addr, Some(0x4001));
    expect_error(&bytes, CHANNEL_BIND, 403, "ChannelBind to 127.0.0.1");
    client.send_indication(peer.addr, b"must not arrive");
    client.send_channel_data(0x4001, b"must not arrive either");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(peer.count(), 0, "a denied peer received relayed data");
}

#[test]
fn send_indications_around_a_channel_bind_are_relayed() {
    let server = TurnServer::start();
    let peer = EchoPeer::start();
    let (client, auth) = allocated(&server);
    permit(&client, &auth, peer.addr);

    // What a client does while its ChannelBind is in flight (webrtc-rs `turn` does exactly
    // this): Send indications just before and just after the ChannelBind request.
    client.send_indication(peer.addr, b"before the ChannelBind request");
    let (request, txid) = RawClient::request(CHANNEL_BIND, Some(&auth), |msg, txid| {
        msg.add_attribute(&ChannelNumber::new(0x4000)).unwrap();
        msg.add_attribute(&XorPeerAddress::new(peer.addr, txid))
            .unwrap();
    });
    client.socket.send_to(&request, server.addr).unwrap();
    client.send_indication(peer.addr, b"after the ChannelBind request");
    let bytes = client.transact(&request, txid);
    expect_success(&bytes, CHANNEL_BIND, &auth, "ChannelBind");
    client.send_indication(peer.addr, b"after the ChannelBind response");
    client.send_channel_data(0x4000, b"ChannelData after the response");
    wait_for_peer(&peer, 4);
    let mut got: Vec<Vec<u8>> = peer.received().into_iter().map(|r| r.data).collect();
    got.sort();
    let mut expected: Vec<Vec<u8>> = [
        &b"before the ChannelBind request"[..],
        b"after the ChannelBind request",
        b"after the ChannelBind response",
        b"ChannelData after the response",
    ]
    .map(<[u8]>::to_vec)
    .to_vec();
    expected.sort();
    assert_eq!(
        got.iter()
            .map(|d| String::from_utf8_lossy(d))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|d| String::from_utf8_lossy(d))
            .collect::<Vec<_>>(),
        "every datagram must reach the peer exactly once"
    );
}

#[test]
fn data_sent_right_after_the_allocation_is_relayed() {
    let server = TurnServer::start();
    let peer = EchoPeer::start();
    // No pause anywhere: browsers send as soon as the permission is granted, and a relay
    // socket that is not yet usable must not drop the first packets.
    let (client, auth) = allocated(&server);
    permit(&client, &auth, peer.addr);
    client.send_indication(peer.addr, b"first packet");
    wait_for_peer(&peer, 1);
    let got: Vec<Vec<u8>> = peer.received().into_iter().map(|r| r.data).collect();
    assert_eq!(
        got,
        [b"first packet".to_vec()],
        "the first Send indication right after Allocate/CreatePermission was not relayed"
    );
    // And the echo comes back as a Data indication.
    let echoed = recv_from_server(&client, |datagram| {
        let msg = Message::from_bytes(datagram).ok()?;
        (msg.method() == DATA).then(|| msg.attribute::<Data>().ok().map(|d| d.data().to_vec()))?
    });
    assert_eq!(echoed.as_deref(), Some(&b"first packet"[..]));
}

#[test]
fn another_user_cannot_take_over_an_allocation() {
    let server = TurnServer::start();
    let client = RawClient::new(server.addr);
    let alice = server.credential();
    let auth = client.auth(&alice.username, &alice.password);
    expect_success(
        &client.allocate(&auth),
        ALLOCATE,
        &auth,
        "Allocate as alice",
    );

    // Bob holds a valid credential of his own, but this 5-tuple's allocation is Alice's.
    let bob = rest::mint(&server.secret, "@bob:example.org", unix_now() + 3600, ':');
    let bob_auth = Auth {
        credentials: LongTermKeyCredentials::new(
            bob.username.clone(),
            bob.password.clone(),
            auth.realm.clone(),
        )
        .into(),
        username: bob.username,
        realm: auth.realm.clone(),
        nonce: auth.nonce.clone(),
    };
    let (request, txid) = RawClient::request(REFRESH, Some(&bob_auth), |msg, _| {
        msg.add_attribute(&Lifetime::new(600)).unwrap();
    });
    let bytes = client.transact(&request, txid);
    expect_error(
        &bytes,
        REFRESH,
        441,
        "Refresh with another user's credential",
    );
    expect_error(
        &client.allocate(&bob_auth),
        ALLOCATE,
        437,
        "Allocate with another user's credential on an allocated 5-tuple",
    );

    // Alice's allocation is untouched.
    let (request, txid) = RawClient::request(REFRESH, Some(&auth), |msg, _| {
        msg.add_attribute(&Lifetime::new(600)).unwrap();
    });
    let bytes = client.transact(&request, txid);
    expect_success(&bytes, REFRESH, &auth, "Refresh as alice");
}
