//! The whole server fed fuzz-chosen datagrams from three clients and four peers (two per
//! address family), with time steps; and RFC 6062 events (peers connecting in, Connects
//! finishing, bytes on joined connections) for TCP allocations.
//!
//! The first byte picks the credentials: no-auth, so inputs reach allocations (dual ones
//! too), permissions and channels at once; or TURN REST shared-secret auth, where a
//! client chunk may be a request template the harness signs as a real client would (a
//! REST credential, the REALM and the last NONCE the server gave that client, and
//! MESSAGE-INTEGRITY or -SHA256), so authenticated states are reached without faking
//! any check.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rtc_auth::long_term::long_term_key;
use rtc_auth::rest::{RestVerifier, mint};
use rtc_auth::secret::Secret;
use turn_proto::ConnectionId;
use turn_proto::auth::Credentials;
use turn_proto::codec::attribute::AttrType;
use turn_proto::codec::{Class, Message, MessageWriter, Method, TransactionId};
use turn_proto::connection::Direction;
use turn_proto::policy::PeerPolicy;
use turn_proto::testing::FakeDriver;
use turn_proto::{AllocId, FiveTuple, PEER_HEADROOM, Server, ServerConfig, Transport};

const UNIX: u64 = 1_700_000_000;
const REALM: &str = "example.org";
const SECRET: &str = "fuzz-shared-secret";

/// A signed request from `template` = [method (2 bytes), transaction id byte, then
/// attributes as type (2), length (1), value...]: the harness adds USERNAME, REALM, NONCE
/// and MESSAGE-INTEGRITY (-SHA256 when the method's top bit is set) with a REST
/// credential for user `n` (expired for odd `n`).
fn signed(template: &[u8], nonce: &[u8], user: u8, out: &mut Vec<u8>) {
    out.clear();
    if template.len() < 3 {
        return;
    }
    let raw_method = u16::from_be_bytes([template[0], template[1]]);
    let sha256 = raw_method & 0x8000 != 0;
    let transaction = TransactionId([template[2]; 12]);
    let mut writer = MessageWriter::new(
        out,
        Method(raw_method & 0x0FFF),
        Class::Request,
        transaction,
    );
    let mut rest = &template[3..];
    while rest.len() >= 3 {
        let kind = AttrType(u16::from_be_bytes([rest[0], rest[1]]));
        let len = usize::from(rest[2]).min(rest.len() - 3);
        writer.attr(kind, &rest[3..3 + len]);
        rest = &rest[3 + len..];
    }
    let expiry = if user.is_multiple_of(2) {
        UNIX + 86_400
    } else {
        UNIX - 1
    };
    let credential = mint(
        &Secret::new(SECRET),
        &format!("@user{user}:example.org"),
        expiry,
        ':',
    );
    writer
        .attr(AttrType::USERNAME, credential.username.as_bytes())
        .attr(AttrType::REALM, REALM.as_bytes())
        .attr(AttrType::NONCE, nonce);
    let key = long_term_key(&credential.username, REALM, &credential.password);
    if sha256 {
        writer.integrity_sha256(&key);
    } else {
        writer.integrity(&key);
    }
}

/// The NONCE of a 401/438 answer, to sign that client's next requests with.
fn learn_nonce(answer: &[u8], nonce: &mut Vec<u8>) {
    if let Ok(message) = Message::parse(answer)
        && let Some(value) = message.attr(AttrType::NONCE)
    {
        nonce.clear();
        nonce.extend_from_slice(value);
    }
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let rest_auth = mode & 1 == 1;
    let credentials = if rest_auth {
        Credentials::Rest(RestVerifier::new(vec![Secret::new(SECRET)], ':'))
    } else {
        Credentials::None
    };
    let mut config = ServerConfig {
        realm: REALM.into(),
        credentials,
        mobility: true,
        max_bps: 10_000,
        relay_ipv6: true,
        ..ServerConfig::default()
    };
    config.policy = PeerPolicy::new(
        rtc_auth::ip_range::IpRangeSet::parse(["203.0.113.0/24", "2001:db8:77::/48"]).unwrap(),
        Default::default(),
        true,
        true,
    );
    let mut server = Server::new(config, start, UNIX, [1; 32]);
    let mut nonces: [Vec<u8>; 3] = Default::default();
    let mut request = Vec::new();
    // Binds succeed until the port numbers run out; Connects wait in `connects` for the
    // fuzzer to finish them; peers connect in only where a listener is.
    let mut driver = FakeDriver::default();
    let mut out = Vec::new();
    let mut datagram = Vec::new();
    let mut now = start;
    let transports = [Transport::Udp, Transport::Tcp, Transport::Tls];
    // Each chunk: [selector, time step, length, bytes...]. Selector bit 0x80 picks a peer
    // over a client; for peers, bits 0x03 and 0x04 name the allocation, 0x08 the host,
    // 0x10 the address family, and 0x40 a TCP event instead of a datagram: 0x20 clear, the
    // peer connects in (to a TCP allocation); 0x20 set, the oldest Connect finishes (failed when the step is
    // odd), and then the body's length in bytes passes on connection `step`.
    let mut rest = data;
    while rest.len() >= 3 {
        let (selector, step, len) = (rest[0], rest[1], usize::from(rest[2]));
        let body = &rest[3..(3 + len).min(rest.len())];
        rest = &rest[(3 + len).min(rest.len())..];
        now += Duration::from_millis(u64::from(step) * 100);
        server.handle_timeout(now, UNIX + now.duration_since(start).as_secs());
        if selector & 0x80 == 0 {
            let tuple = FiveTuple {
                transport: transports[usize::from(selector % 3)],
                client: SocketAddr::from(([192, 0, 2, 1 + selector % 3], 5000)),
                server: SocketAddr::from(([192, 0, 2, 10], 3478)),
            };
            // In REST mode, selector bit 0x20 makes the body a template to sign.
            let client = usize::from(selector % 3);
            let input = if rest_auth && selector & 0x20 != 0 {
                signed(body, &nonces[client], step, &mut request);
                &request[..]
            } else {
                body
            };
            if server.handle_client(now, tuple, input, &mut out).is_some() {
                learn_nonce(&out, &mut nonces[client]);
            }
            if selector & 0x40 != 0 {
                server.handle_disconnect(tuple);
            }
        } else {
            let id = AllocId {
                index: u32::from(selector & 0x03),
                generation: u32::from((selector >> 2) & 0x01),
            };
            let host = selector >> 3 & 1;
            let peer = if selector & 0x10 == 0 {
                SocketAddr::from(([203, 0, 113, 7 + host], 9000))
            } else {
                SocketAddr::from(([0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 7 + u16::from(host)], 9000))
            };
            if selector & 0x40 == 0 {
                datagram.clear();
                datagram.extend_from_slice(&[0; PEER_HEADROOM]);
                datagram.extend_from_slice(body);
                let _ = server.handle_peer(now, id, peer, &mut datagram, &mut out);
            } else if selector & 0x20 == 0 {
                if driver.listening.values().any(|listener| *listener == id) {
                    let _ = server.handle_tcp_accepted(now, id, peer, &mut out);
                }
            } else {
                if !driver.connects.is_empty() {
                    let (connection, _, _) = driver.connects.remove(0);
                    let _ = server.handle_tcp_connected(now, connection, step % 2 == 0, &mut out);
                }
                let direction = if step % 2 == 0 {
                    Direction::Upstream
                } else {
                    Direction::Downstream
                };
                let connection = ConnectionId(u32::from(step));
                let _ = server.relay_tcp(now, connection, direction, body.len());
            }
        }
        // Binds answered at once, as the real driver does; the rest logged.
        driver.carry_out(&mut server, now);
    }
    server.close_all();
    driver.carry_out(&mut server, now);
});
