//! `listening-device` and `relay-device` (SO_BINDTODEVICE) end to end: the turn-server
//! binary in a network namespace with two links, a client on one and a peer on the
//! other. `ss` in the server namespace shows the interface each socket is bound to
//! (`ADDRESS%DEVICE`), and traffic shows what the binding does: a listener bound to one
//! link does not answer on the other.
//!
//! Needs root (CI runs as root), like `kernel_offload.rs`. Each test builds its own
//! namespaces, so fixed ports are private to it; everything is removed on drop.

#[path = "../../turn-offload/tests/netns/mod.rs"]
mod netns;

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket as StdUdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loadtest::client::allocate_on;
use netns::{Namespace, veth};
use rtc_auth::rest::mint;
use rtc_auth::secret::Secret;
use tokio::net::UdpSocket;

/// Inside the server's own namespace: no other process can hold these.
const LISTEN_PORT: u16 = 3478;
const MIN_PORT: u16 = 49152;
const MAX_PORT: u16 = 49300;
const SECRET: &str = "devices-test-secret";
const CHANNEL: u16 = 0x4000;
/// Bound on any single wait for an answer or the server.
const WAIT: Duration = Duration::from_secs(5);

/// The server's address on the client link (`s0`) and on the peer link (`s1`).
const ON_S0: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const ON_S1: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);

/// client — c0 | s0 server s1 | p0 — peer.
struct Net {
    client: Namespace,
    server: Namespace,
    peer: Namespace,
}

fn net() -> Net {
    let net = Net {
        client: Namespace::new("dc"),
        server: Namespace::new("ds"),
        peer: Namespace::new("dp"),
    };
    veth(&net.server, "s0", &net.client, "c0");
    veth(&net.server, "s1", &net.peer, "p0");
    let add = |ns: &Namespace, ip: Ipv4Addr, dev: &str| {
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", dev]);
    };
    add(&net.client, CLIENT, "c0");
    add(&net.server, ON_S0, "s0");
    add(&net.server, ON_S1, "s1");
    add(&net.peer, PEER, "p0");
    // Each side can reach both server addresses (the server does not forward).
    net.client
        .ip(&["route", "add", "default", "via", &ON_S0.to_string()]);
    net.peer
        .ip(&["route", "add", "default", "via", &ON_S1.to_string()]);
    net
}

/// The binary running in the server namespace with `args`; killed on drop, its output
/// printed when the test failed.
struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server and waits until it answers STUN from the client namespace.
    fn start(net: &Net, extra: &[&str]) -> Self {
        let mut argv = vec![env!("CARGO_BIN_EXE_turn-server").to_owned()];
        argv.extend(args(extra));
        let (child, log) = net.server.spawn_logged(&argv);
        let mut server = Self { child, log };
        let deadline = Instant::now() + WAIT;
        while !stun_answers(&net.client, CLIENT, ON_S0) {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("turn-server exited with {status}:\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "turn-server did not answer within {WAIT:?}:\n{}",
                server.log()
            );
        }
        server
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `ip netns exec` execs the server itself: the child is the server.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- turn-server output ---\n{}", self.log());
        }
    }
}

/// REST credentials, the peer allowed (198.18/15 is denied by default), `extra` last.
fn args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "-n",
        "--realm=example.org",
        "--use-auth-secret",
        "--no-tls",
        "--log-file=stdout",
        "--relay-threads=1",
        "--allowed-peer-ip=198.18.2.2",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--listening-port={LISTEN_PORT}"));
    args.push(format!("--min-port={MIN_PORT}"));
    args.push(format!("--max-port={MAX_PORT}"));
    args.push(format!("--static-auth-secret={SECRET}"));
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

/// True when a STUN Binding request from `from` (in `ns`) to `server` is answered.
fn stun_answers(ns: &Namespace, from: Ipv4Addr, server: Ipv4Addr) -> bool {
    let probe = ns.enter(|| StdUdpSocket::bind((from, 0))).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut request = [0u8; 20];
    request[..8].copy_from_slice(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
    let mut buf = [0u8; 512];
    (0..3).any(|_| {
        let _ = probe.send_to(&request, (server, LISTEN_PORT));
        probe.recv(&mut buf).is_ok_and(|n| n >= 20 && buf[0] == 1)
    })
}

/// Whether a TCP connection from `ns` to `server`'s listening port is accepted.
fn tcp_connects(ns: &Namespace, server: Ipv4Addr) -> bool {
    let address = SocketAddr::from((server, LISTEN_PORT));
    match ns.enter(|| TcpStream::connect_timeout(&address, Duration::from_secs(1))) {
        Ok(_) => true,
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => false,
        Err(error) => panic!("connect to {address}: {error}"),
    }
}

/// The local addresses (`IP%DEVICE:PORT` when bound to a device) of the server
/// namespace's sockets that `ss` lists with `flags` ("-uan", "-tln").
fn local_addresses(net: &Net, flags: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &net.server.name, "ss", "-H", flags])
        .output()
        .expect("run ss");
    assert!(out.status.success(), "ss {flags} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3).map(str::to_owned))
        .collect()
}

/// The port of an `ss` local address.
fn port(local: &str) -> u16 {
    local.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn listening_device_binds_every_listener_to_it() {
    let net = net();
    // Wildcard listeners (the default): only the device keeps s1's side out.
    let server = Server::start(&net, &["--listening-device=s0"]);
    for flags in ["-uanl", "-tanl"] {
        let listeners: Vec<String> = local_addresses(&net, flags)
            .into_iter()
            .filter(|local| port(local) == LISTEN_PORT)
            .collect();
        assert!(!listeners.is_empty(), "no listener in ss {flags}");
        for local in &listeners {
            assert!(local.contains("%s0:"), "{local} (ss {flags}) is not on s0");
        }
    }
    assert!(tcp_connects(&net.client, ON_S0));
    // Loopback does not reach these listeners: the health check probes s0's address.
    let health = Command::new("ip")
        .args(["netns", "exec", &net.server.name])
        .arg(env!("CARGO_BIN_EXE_turn-server"))
        .arg("healthcheck")
        .args(args(&["--listening-device=s0"]))
        .output()
        .expect("run turn-server healthcheck");
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    // The peer side reaches the server's s1 address through s1: no listener there.
    assert!(!stun_answers(&net.peer, PEER, ON_S1), "answered through s1");
    assert!(!tcp_connects(&net.peer, ON_S1), "accepted through s1");
    drop(server);

    // Without the option the same server answers on both links.
    let _server = Server::start(&net, &[]);
    assert!(stun_answers(&net.peer, PEER, ON_S1));
    assert!(tcp_connects(&net.peer, ON_S1));
}

#[tokio::test(flavor = "current_thread")]
async fn relay_device_binds_relay_sockets_to_it() {
    let net = net();
    let on_s0 = format!("--listening-ip={ON_S0}");
    let relay_ip = format!("--relay-ip={ON_S1}");
    let _server = Server::start(&net, &[&on_s0, &relay_ip, "--relay-device=s1"]);
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let credential = mint(&Secret::new(SECRET), "@alice:example.org", expiry, ':');
    let socket = net
        .client
        .enter(|| StdUdpSocket::bind((CLIENT, 0)))
        .unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = UdpSocket::from_std(socket).unwrap();
    socket.connect((ON_S0, LISTEN_PORT)).await.unwrap();
    let (mut session, _) = allocate_on(socket, &credential, None, false)
        .await
        .expect("allocate");
    assert_eq!(session.relayed.ip(), IpAddr::V4(ON_S1));
    let relayed = session.relayed.port();
    let relay: Vec<String> = local_addresses(&net, "-uan")
        .into_iter()
        .filter(|local| port(local) == relayed)
        .collect();
    assert_eq!(relay, [format!("{ON_S1}%s1:{relayed}")]);
    // The listener is not bound to a device: relay-device is for relay sockets only.
    let listener: Vec<String> = local_addresses(&net, "-uanl")
        .into_iter()
        .filter(|local| port(local) == LISTEN_PORT)
        .collect();
    assert_eq!(listener, [format!("{ON_S0}:{LISTEN_PORT}")]);

    // The relay works through its device: the peer's datagram reaches the client.
    let peer = net.peer.enter(|| StdUdpSocket::bind((PEER, 0))).unwrap();
    session
        .channel_bind(CHANNEL, peer.local_addr().unwrap())
        .await
        .expect("channel bind");
    peer.send_to(b"through s1", session.relayed).unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(WAIT, session.sock.recv(&mut buf))
        .await
        .expect("data from the peer in time")
        .unwrap();
    assert!(n >= 14, "{:?}", &buf[..n]);
    assert_eq!(&buf[..4], [0x40, 0x00, 0x00, 10], "ChannelData header");
    assert_eq!(&buf[4..14], b"through s1");
}

/// An interface the machine lacks is refused at start-up with the option and the name,
/// for both options (no namespace needed).
#[test]
fn an_absent_device_stops_the_start_naming_option_and_device() {
    for option in ["--relay-device", "--listening-device"] {
        let out = Command::new(env!("CARGO_BIN_EXE_turn-server"))
            .args(args(&[
                &format!("{option}=nosuchdev9"),
                "--listening-ip=127.0.0.1",
            ]))
            .stdin(Stdio::null())
            .output()
            .expect("run turn-server");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{option}: {text}");
        let name = option.trim_start_matches("--");
        assert!(
            text.contains(&format!("{name}: network interface \"nosuchdev9\"")),
            "{option}: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }
}
