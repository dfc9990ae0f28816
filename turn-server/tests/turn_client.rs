//! The webrtc-rs `turn` 0.17.2 crate as an in-process UDP TURN client (a client we did not
//! write): allocation with a Matrix-style REST credential minted by `rtc_auth::rest::mint`,
//! relaying to a UDP echo peer on 127.0.0.1 and back, a channel-bound exchange, and the
//! refusals (wrong secret, expired credential, loopback peer denied, `denied-peer-ip`).

mod support;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rtc_auth::rest::{self, RestCredential};
use rtc_auth::secret::Secret;
use support::{EchoPeer, MATRIX_USER, TurnServer, random_hex, unix_now};
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

/// Upper bound for any single client operation (the crate retries for up to 63 s).
const STEP: Duration = Duration::from_secs(5);

/// Awaits `fut` for at most [`STEP`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {STEP:?}"))
}

/// What the client socket saw, by kind of datagram.
#[derive(Default)]
struct Traffic {
    sent_channel_data: AtomicUsize,
    sent_send_indications: AtomicUsize,
    received_channel_data: AtomicUsize,
    received_data_indications: AtomicUsize,
}

impl Traffic {
    /// The counts, for failure messages.
    fn summary(&self) -> String {
        format!(
            "client sent {} ChannelData + {} Send indications, received {} ChannelData + {} \
             Data indications",
            self.sent_channel_data.load(Ordering::Relaxed),
            self.sent_send_indications.load(Ordering::Relaxed),
            self.received_channel_data.load(Ordering::Relaxed),
            self.received_data_indications.load(Ordering::Relaxed)
        )
    }
}

/// A UDP socket that counts ChannelData and Send/Data indications going through it, so a
/// test can tell which path the `turn` client and the server used.
struct SpyConn {
    socket: UdpSocket,
    traffic: Arc<Traffic>,
}

fn is_channel_data(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (0x40..=0x7F).contains(b))
}

fn stun_type(datagram: &[u8]) -> Option<u16> {
    (datagram.len() >= 20).then(|| u16::from_be_bytes([datagram[0], datagram[1]]))
}

#[async_trait::async_trait]
impl Conn for SpyConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.recv(buf).await?)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let (n, from) = self.socket.recv_from(buf).await?;
        if is_channel_data(&buf[..n]) {
            self.traffic
                .received_channel_data
                .fetch_add(1, Ordering::Relaxed);
        } else if stun_type(&buf[..n]) == Some(0x0017) {
            self.traffic
                .received_data_indications
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok((n, from))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.send(buf).await?)
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if is_channel_data(buf) {
            self.traffic
                .sent_channel_data
                .fetch_add(1, Ordering::Relaxed);
        } else if stun_type(buf) == Some(0x0016) {
            self.traffic
                .sent_send_indications
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(self.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// A started `turn` client for `server` with `credential`, and its traffic counters.
async fn client(server: &TurnServer, credential: &RestCredential) -> (Client, Arc<Traffic>) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind client socket");
    let traffic = Arc::new(Traffic::default());
    let conn = Arc::new(SpyConn {
        socket,
        traffic: Arc::clone(&traffic),
    });
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.addr.to_string(),
        turn_serv_addr: server.addr.to_string(),
        username: credential.username.clone(),
        password: credential.password.clone(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await
    .expect("create turn client");
    within("client listen", client.listen())
        .await
        .expect("start turn client");
    (client, traffic)
}

/// A distinct payload of `len` bytes for packet `index` of a run tagged `tag`.
fn payload(tag: &str, index: usize, len: usize) -> Vec<u8> {
    let mut data = format!("{tag}-{index:05}-").into_bytes();
    data.extend((0..len).map(|i| (i * 7 + index) as u8));
    data.truncate(len);
    data
}

/// Sends `data` through the relay to `peer` and waits for the echo; returns its source.
/// `traffic`, when given, is included in the failure message.
async fn round_trip(
    relay: &impl Conn,
    peer: &EchoPeer,
    data: &[u8],
    traffic: Option<&Traffic>,
) -> SocketAddr {
    let at_peer_before = peer.count();
    within("relay send_to", relay.send_to(data, peer.addr))
        .await
        .unwrap_or_else(|e| panic!("send_to {} through the relay failed: {e}", peer.addr));
    let mut buf = vec![0u8; 2048];
    let Ok(received) = tokio::time::timeout(STEP, relay.recv_from(&mut buf)).await else {
        let reached = peer
            .received()
            .iter()
            .skip(at_peer_before)
            .any(|r| r.data == data);
        panic!(
            "no echo of packet {:?} through the relay within {STEP:?}; it {} the peer \
             ({} datagrams there); {}",
            String::from_utf8_lossy(&data[..data.len().min(40)]),
            if reached {
                "reached (so the echo was lost on its way back)"
            } else {
                "never reached"
            },
            peer.count(),
            traffic.map_or_else(String::new, Traffic::summary)
        );
    };
    let (n, from) = received.expect("relay recv_from");
    assert_eq!(&buf[..n], data, "echo differs from what was sent");
    from
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_many_packets_to_an_echo_peer_and_back() {
    let server = TurnServer::start();
    let peer = EchoPeer::start();
    let credential = server.credential();
    assert!(credential.username.ends_with(":@alice:example.org"));
    let (client, _) = client(&server, &credential).await;
    let relay = within("allocate", client.allocate())
        .await
        .expect("allocation with a REST credential for @alice:example.org");
    let relayed = relay.local_addr().unwrap();
    assert!(
        server.slot.is_relay_addr(relayed),
        "relayed address {relayed} outside the configured range"
    );

    // Ping-pong first: permission, channel binding and the first echoes.
    let tag = random_hex();
    for i in 0..20 {
        let from = round_trip(&relay, &peer, &payload(&tag, i, 100 + i * 50), None).await;
        assert_eq!(from, peer.addr, "echo must come from the peer's address");
    }

    // Then 10 bursts of 10 without waiting (small enough for default socket buffers);
    // every echo must come back intact.
    let mut buf = vec![0u8; 2048];
    for burst in 0..10 {
        let first = 20 + burst * 10;
        let mut expected: Vec<Vec<u8>> = (first..first + 10)
            .map(|i| payload(&tag, i, 60 + i * 9))
            .collect();
        for data in &expected {
            within("relay send_to", relay.send_to(data, peer.addr))
                .await
                .expect("send_to through the relay");
        }
        let mut echoed = Vec::with_capacity(expected.len());
        while echoed.len() < expected.len() {
            let (n, from) = within("burst echo", relay.recv_from(&mut buf))
                .await
                .unwrap_or_else(|e| panic!("recv_from in burst {burst}: {e}"));
            assert_eq!(from, peer.addr);
            echoed.push(buf[..n].to_vec());
        }
        expected.sort();
        echoed.sort();
        assert!(
            echoed == expected,
            "burst {burst}: echoes differ from what was sent"
        );
    }

    let received = peer.received();
    assert_eq!(received.len(), 120, "the peer must get every packet once");
    assert!(
        received.iter().all(|r| r.from == relayed),
        "the peer must only see the relayed address {relayed}"
    );
    within("relay close", relay.close()).await.unwrap();
    within("client close", client.close()).await.unwrap();
    server.assert_no_secrets_logged(&[&credential.password]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_bound_exchange_carries_channel_data_both_ways() {
    let server = TurnServer::start();
    let peer = EchoPeer::start();
    let credential = server.credential();
    let (client, traffic) = client(&server, &credential).await;
    let relay = within("allocate", client.allocate())
        .await
        .expect("allocate");

    // The client sends Send indications until its ChannelBind succeeds, then ChannelData.
    let tag = random_hex();
    let mut index = 0;
    while traffic.sent_channel_data.load(Ordering::Relaxed) == 0 {
        assert!(index < 50, "the channel binding never became ready");
        round_trip(&relay, &peer, &payload(&tag, index, 200), Some(&traffic)).await;
        index += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent_before = traffic.sent_channel_data.load(Ordering::Relaxed);
    let received_before = traffic.received_channel_data.load(Ordering::Relaxed);
    let indications_before = traffic.sent_send_indications.load(Ordering::Relaxed);
    for i in 0..50 {
        round_trip(
            &relay,
            &peer,
            &payload(&tag, 1000 + i, 300 + i),
            Some(&traffic),
        )
        .await;
    }
    assert_eq!(
        traffic.sent_channel_data.load(Ordering::Relaxed) - sent_before,
        50,
        "every packet after the binding must go out as ChannelData"
    );
    assert_eq!(
        traffic.sent_send_indications.load(Ordering::Relaxed),
        indications_before,
        "no Send indications after the binding"
    );
    assert!(
        traffic.received_channel_data.load(Ordering::Relaxed) - received_before >= 50,
        "the server must relay the peer's echoes as ChannelData on the bound channel \
         (got {} ChannelData, {} Data indications in total)",
        traffic.received_channel_data.load(Ordering::Relaxed),
        traffic.received_data_indications.load(Ordering::Relaxed)
    );
    assert_eq!(
        peer.count(),
        index + 50,
        "the peer must get every packet once"
    );
}

/// Allocating with `credential` must fail with a 401 error response.
async fn assert_allocation_refused_401(server: &TurnServer, credential: &RestCredential) {
    let (client, _) = client(server, credential).await;
    match within("allocate", client.allocate()).await {
        Ok(relay) => panic!(
            "allocation succeeded (relayed {:?}) but must be refused",
            relay.local_addr()
        ),
        Err(e) => assert!(
            e.to_string().contains("error 401"),
            "expected a 401 error response, got: {e}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_refused_with_401() {
    let server = TurnServer::start();
    let forged = rest::mint(
        &Secret::new("some-other-secret"),
        MATRIX_USER,
        unix_now() + 3600,
        ':',
    );
    assert_allocation_refused_401(&server, &forged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_credential_is_refused_with_401() {
    let server = TurnServer::start();
    let expired = rest::mint(&server.secret, MATRIX_USER, unix_now() - 120, ':');
    assert_allocation_refused_401(&server, &expired).await;
}

/// Sending to `peer` through the relay must fail with 403, and `peer` must get nothing.
async fn assert_peer_refused_403(relay: &impl Conn, peer: &EchoPeer) {
    match within(
        "send_to a denied peer",
        relay.send_to(b"must not arrive", peer.addr),
    )
    .await
    {
        Ok(n) => panic!("send_to denied peer {} succeeded ({n} bytes)", peer.addr),
        Err(e) => assert!(
            e.to_string().contains("403"),
            "expected 403 for peer {}, got: {e}",
            peer.addr
        ),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.count(), 0, "denied peer {} received data", peer.addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_peer_is_refused_without_allow_loopback_peers() {
    let server = TurnServer::builder().allow_loopback_peers(false).start();
    let peer = EchoPeer::start();
    let (client, _) = client(&server, &server.credential()).await;
    let relay = within("allocate", client.allocate())
        .await
        .expect("allocation itself must succeed");
    assert_peer_refused_403(&relay, &peer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_peer_ip_blocks_one_loopback_address_only() {
    let server = TurnServer::builder()
        .arg("--denied-peer-ip=127.0.0.2")
        .start();
    let allowed = EchoPeer::start();
    let denied = EchoPeer::start_on(Ipv4Addr::new(127, 0, 0, 2));
    let (client, _) = client(&server, &server.credential()).await;
    let relay = within("allocate", client.allocate())
        .await
        .expect("allocate");
    assert_peer_refused_403(&relay, &denied).await;
    let data = payload(&random_hex(), 0, 128);
    assert_eq!(
        round_trip(&relay, &allowed, &data, None).await,
        allowed.addr
    );
    assert_eq!(allowed.count(), 1);
    assert_eq!(denied.count(), 0, "denied peer received data");
}
