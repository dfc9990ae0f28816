//! `kernel-offload` end to end: the turn-server binary in a network namespace of its own,
//! a client and a peer each in theirs, joined by veth pairs, so packets cross real
//! interfaces. The server namespace does not forward, so whatever reaches the other side
//! went through the server: its sockets or its eBPF program, and the program's own
//! counters (`turn_offload_*`) say which. The client is loadtest's TURN client; the
//! peer a plain UDP socket.
//!
//! Needs root (CI runs as root), like turn-offload's own tests. Each test builds its own
//! namespaces, so fixed ports are private to it; everything is removed on drop.

#[path = "../../turn-offload/tests/netns/mod.rs"]
mod netns;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, TcpStream, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loadtest::client::{Session, allocate_on};
use netns::{Namespace, veth};
use rtc_auth::rest::mint;
use rtc_auth::secret::Secret;
use tokio::net::UdpSocket;
use turn_proto::codec::{ChannelData, Message, Method};

/// Inside the server's own namespace: no other process can hold these.
const LISTEN_PORT: u16 = 3478;
const METRICS_PORT: u16 = 9641;
const SECRET: &str = "kernel-offload-test-secret";
/// Bound on any single wait for a packet, a log line or the server.
const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);
/// The core ends lapsed routes in its sweep, once a second.
const SWEEP: Duration = Duration::from_secs(1);
const CHANNEL: u16 = 0x4000;
/// Payload sizes: tiny, odd, around the program's 512-byte chunk, a video packet.
const SIZES: [usize; 8] = [1, 3, 99, 511, 512, 513, 1000, 1200];

/// client — c0 | s0 server s1 | p0 — peer, IPv4 and IPv6 on both links.
struct Net {
    client: Namespace,
    server: Namespace,
    peer: Namespace,
}

struct Family {
    client: IpAddr,
    server: IpAddr,
    relay: IpAddr,
    peer: IpAddr,
}

fn v4() -> Family {
    Family {
        client: "198.18.1.2".parse().unwrap(),
        server: "198.18.1.1".parse().unwrap(),
        relay: "198.18.2.1".parse().unwrap(),
        peer: "198.18.2.2".parse().unwrap(),
    }
}

fn v6() -> Family {
    Family {
        client: "2001:db8:1::2".parse().unwrap(),
        server: "2001:db8:1::1".parse().unwrap(),
        relay: "2001:db8:2::1".parse().unwrap(),
        peer: "2001:db8:2::2".parse().unwrap(),
    }
}

fn net() -> Net {
    let net = Net {
        client: Namespace::new("oc"),
        server: Namespace::new("os"),
        peer: Namespace::new("op"),
    };
    veth(&net.server, "s0", &net.client, "c0");
    veth(&net.server, "s1", &net.peer, "p0");
    for (family, prefix, extra) in [(v4(), "24", None), (v6(), "64", Some("nodad"))] {
        let add = |ns: &Namespace, ip: IpAddr, dev: &str| {
            let cidr = format!("{ip}/{prefix}");
            let mut args = vec!["addr", "add", cidr.as_str(), "dev", dev];
            args.extend(extra);
            ns.ip(&args);
        };
        add(&net.client, family.client, "c0");
        add(&net.server, family.server, "s0");
        add(&net.server, family.relay, "s1");
        add(&net.peer, family.peer, "p0");
        let (via_client, via_peer) = (family.server.to_string(), family.relay.to_string());
        let flag = if family.client.is_ipv4() { "-4" } else { "-6" };
        net.client
            .ip(&[flag, "route", "add", "default", "via", &via_client]);
        net.peer
            .ip(&[flag, "route", "add", "default", "via", &via_peer]);
    }
    // The command docs/operations.md gives.
    net.server.exec(
        "sysctl",
        &[
            "-w",
            "net.ipv4.conf.lo.forwarding=1",
            "net.ipv6.conf.lo.forwarding=1",
        ],
    );
    // Checksums the program wrote are finished in software on the way out, so the
    // receivers verify them (over veth they would trust a packet still marked "to be
    // computed").
    net.server.exec("ethtool", &["-K", "s0", "tx", "off"]);
    net.server.exec("ethtool", &["-K", "s1", "tx", "off"]);
    net
}

/// The server's command line: both families on both links, the peers allowed (198.18/15
/// and 2001:db8::/32 are denied by default), REST credentials, the exporter on the client
/// side, `extra` last.
fn args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "-n",
        "--listening-ip=198.18.1.1",
        "--listening-ip=2001:db8:1::1",
        "--relay-ip=198.18.2.1",
        "--relay-ip=2001:db8:2::1",
        "--min-port=49152",
        "--max-port=49300",
        "--realm=example.org",
        "--use-auth-secret",
        "--no-tcp",
        "--no-tls",
        "--log-file=stdout",
        "--prometheus",
        "--prometheus-address=198.18.1.1",
        "--allowed-peer-ip=198.18.2.2",
        "--allowed-peer-ip=2001:db8:2::2",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--listening-port={LISTEN_PORT}"));
    args.push(format!("--prometheus-port={METRICS_PORT}"));
    args.push(format!("--static-auth-secret={SECRET}"));
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

/// The binary running in the server namespace; killed on drop, its output printed when
/// the test failed.
struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `wrapper... turn-server args` in the server namespace and waits until it
    /// answers STUN from the client namespace.
    fn start(net: &Net, wrapper: &[&str], args: &[String]) -> Self {
        let mut argv: Vec<String> = wrapper.iter().map(|w| (*w).to_owned()).collect();
        argv.push(env!("CARGO_BIN_EXE_turn-server").to_owned());
        argv.extend_from_slice(args);
        let (child, log) = net.server.spawn_logged(&argv);
        let mut server = Self { child, log };
        server.wait_ready(net);
        server
    }

    fn wait_ready(&mut self, net: &Net) {
        let probe = net
            .client
            .enter(|| StdUdpSocket::bind((v4().client, 0)))
            .unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut request = [0u8; 20];
        request[..8].copy_from_slice(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("turn-server exited with {status}:\n{}", self.log());
            }
            let _ = probe.send_to(&request, (v4().server, LISTEN_PORT));
            if probe.recv(&mut buf).is_ok_and(|n| n >= 20 && buf[0] == 1) {
                return;
            }
        }
        panic!(
            "turn-server did not answer within {WAIT:?}:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the output holds `needle` `count` times.
    fn wait_log(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return log;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
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

/// The exporter's document, fetched from the client namespace.
fn metrics(net: &Net) -> String {
    let mut stream = net
        .client
        .enter(|| TcpStream::connect((v4().server, METRICS_PORT)))
        .expect("connect to the exporter");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

fn metric(doc: &str, series: &str) -> u64 {
    doc.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} not in\n{doc}"))
        .parse()
        .unwrap()
}

/// (kernel-relayed packets client→peer, peer→client, all relayed packets both ways).
fn packets(net: &Net) -> (u64, u64, u64) {
    let doc = metrics(net);
    let kernel = |d| {
        metric(
            &doc,
            &format!("turn_offload_relayed_packets_total{{direction=\"{d}\"}}"),
        )
    };
    let all = |d| {
        metric(
            &doc,
            &format!("turn_relayed_packets_total{{direction=\"{d}\"}}"),
        )
    };
    (
        kernel("client_to_peer"),
        kernel("peer_to_client"),
        all("client_to_peer") + all("peer_to_client"),
    )
}

/// A client's allocation and the peer it talks to.
struct Call {
    session: Session,
    peer: StdUdpSocket,
}

async fn call(net: &Net, family: &Family) -> Call {
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let credential = mint(&Secret::new(SECRET), "@alice:example.org", expiry, ':');
    let socket = net
        .client
        .enter(|| StdUdpSocket::bind((family.client, 0)))
        .unwrap();
    socket.set_nonblocking(true).unwrap();
    let socket = UdpSocket::from_std(socket).unwrap();
    socket.connect((family.server, LISTEN_PORT)).await.unwrap();
    let (mut session, _) = allocate_on(socket, &credential, None, family.relay.is_ipv6())
        .await
        .expect("allocate");
    assert_eq!(session.relayed.ip(), family.relay);
    let peer = net
        .peer
        .enter(|| StdUdpSocket::bind((family.peer, 0)))
        .unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    let peer_address = peer.local_addr().unwrap();
    session
        .channel_bind(CHANNEL, peer_address)
        .await
        .expect("channel bind");
    Call { session, peer }
}

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + seed * 31) as u8).collect()
}

fn channel_data(data: &[u8]) -> Vec<u8> {
    let header = ChannelData::header(CHANNEL, data.len()).expect("test payloads are short");
    [&header[..], data].concat()
}

/// What the client receives next, if anything within `limit`.
async fn client_recv(call: &Call, limit: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(limit, call.session.sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(buf[..n].to_vec())
}

/// Every size both ways, byte for byte; returns the payload bytes sent each way.
async fn exchange(call: &Call, seed: usize) -> u64 {
    let relay = call.session.relayed;
    let mut bytes = 0;
    for (i, &n) in SIZES.iter().enumerate() {
        let data = payload(seed + i, n);
        call.session.sock.send(&channel_data(&data)).await.unwrap();
        let mut buf = [0u8; 2048];
        let (got, from) = call.peer.recv_from(&mut buf).expect("peer receives");
        assert_eq!(
            (&buf[..got], from),
            (&data[..], relay),
            "to the peer, {n} B"
        );
        bytes += n as u64;
    }
    for (i, &n) in SIZES.iter().enumerate() {
        let data = payload(seed + 100 + i, n);
        call.peer.send_to(&data, relay).unwrap();
        let got = client_recv(call, WAIT).await.expect("client receives");
        assert_eq!(
            ChannelData::parse(&got),
            Some(ChannelData {
                channel: CHANNEL,
                data: &data[..]
            }),
            "to the client, {n} B"
        );
    }
    bytes
}

/// ChannelData from the client does not reach the peer, and the peer's datagram does
/// not reach the client as ChannelData; returns what the client got instead (a Data
/// indication while the permission lives).
async fn not_relayed(call: &Call) -> Option<Vec<u8>> {
    call.session
        .sock
        .send(&channel_data(b"must not pass"))
        .await
        .unwrap();
    call.peer.set_read_timeout(Some(QUIET)).unwrap();
    let mut buf = [0u8; 2048];
    match call.peer.recv_from(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the peer received {other:?}"),
    }
    call.peer.set_read_timeout(Some(WAIT)).unwrap();
    call.peer
        .send_to(b"must not pass either", call.session.relayed)
        .unwrap();
    let got = client_recv(call, QUIET).await;
    if let Some(got) = &got {
        assert_eq!(
            ChannelData::parse(got),
            None,
            "ChannelData reached the client"
        );
    }
    got
}

fn is_data_indication(datagram: &[u8]) -> bool {
    Message::parse(datagram).is_ok_and(|m| m.method() == Method::DATA)
}

/// Runs `wrapper... turn-server args` in the server namespace to its end (bounded):
/// status, stdout, stderr.
fn run(net: &Net, wrapper: &[&str], args: &[String]) -> (ExitStatus, String, String) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &net.server.name])
        .args(wrapper)
        .arg(env!("CARGO_BIN_EXE_turn-server"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("turn-server {args:?} still running after {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out.0)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out.1)
        .unwrap();
    (status, out.0, out.1)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn relays_both_ways_in_the_kernel_ipv4_and_ipv6() {
    let net = net();
    let server = Server::start(&net, &[], &args(&["--kernel-offload=on"]));
    let log = server.wait_log(
        "kernel-offload: channel-bound UDP is relayed in the kernel",
        1,
    );
    assert!(log.contains("interfaces=s0,s1"), "{log}");
    runtime().block_on(async {
        let mut calls = Vec::new();
        let mut sent = 0;
        for (i, family) in [v4(), v6()].iter().enumerate() {
            let call = call(&net, family).await;
            sent += exchange(&call, i * 1000).await;
            calls.push(call);
        }
        // A deleted allocation (right away, before any scrape or sweep would read the
        // kernel's counters): its end log counts what the kernel relayed, and its channel
        // is not relayed any more (the route went before the answer).
        let per_family = SIZES.len() as u64;
        let mut ipv4 = calls.remove(0);
        ipv4.session.refresh(0).await.expect("delete");
        let log = server.wait_log("allocation ended", 1);
        let ended = log
            .lines()
            .find(|l| l.contains("allocation ended"))
            .unwrap();
        assert!(
            ended.contains(&format!("sent_packets={per_family} ")),
            "{ended}"
        );
        assert!(
            ended.contains(&format!("received_packets={per_family} ")),
            "{ended}"
        );

        // Every packet was relayed by the program: nothing by the server's sockets.
        let doc = metrics(&net);
        assert_eq!(metric(&doc, "turn_offload_active"), 1);
        assert_eq!(metric(&doc, "turn_offload_routes"), 1);
        assert_eq!(
            packets(&net),
            (2 * per_family, 2 * per_family, 4 * per_family)
        );
        for direction in ["client_to_peer", "peer_to_client"] {
            let kernel = format!("turn_offload_relayed_bytes_total{{direction=\"{direction}\"}}");
            let all = format!("turn_relayed_bytes_total{{direction=\"{direction}\"}}");
            assert_eq!(metric(&doc, &kernel), sent, "{direction}");
            assert_eq!(metric(&doc, &all), sent, "{direction}");
        }
        assert_eq!(not_relayed(&ipv4).await, None);
        assert_eq!(packets(&net).0, 2 * per_family);
    });
}

/// A permission that lapses while its channel lives: within one sweep the kernel stops
/// relaying, and so does userspace.
#[test]
fn a_lapsed_permission_is_not_relayed() {
    let net = net();
    let extra = ["--kernel-offload=on", "--permission-lifetime=2"];
    let _server = Server::start(&net, &[], &args(&extra));
    runtime().block_on(async {
        let call = call(&net, &v4()).await;
        let bound = Instant::now();
        exchange(&call, 0).await;
        let before = packets(&net);
        assert_eq!(before.0, SIZES.len() as u64);
        tokio::time::sleep_until((bound + Duration::from_secs(2) + SWEEP + QUIET).into()).await;
        assert_eq!(
            not_relayed(&call).await,
            None,
            "no permission: nothing at all"
        );
        assert_eq!(packets(&net), before);
        assert_eq!(metric(&metrics(&net), "turn_offload_routes"), 0);
    });
}

/// A channel that lapses while the permission lives: within one sweep the kernel stops
/// relaying; userspace then sends the peer's data as a Data indication, as RFC 8656
/// says (which also shows the permission was still there).
#[test]
fn a_lapsed_channel_is_not_relayed() {
    let net = net();
    let extra = ["--kernel-offload=on", "--channel-lifetime=2"];
    let _server = Server::start(&net, &[], &args(&extra));
    runtime().block_on(async {
        let call = call(&net, &v4()).await;
        let bound = Instant::now();
        exchange(&call, 0).await;
        let before = packets(&net);
        tokio::time::sleep_until((bound + Duration::from_secs(2) + SWEEP + QUIET).into()).await;
        let got = not_relayed(&call).await.expect("a Data indication");
        assert!(is_data_indication(&got), "{got:?}");
        let after = packets(&net);
        assert_eq!(
            (after.0, after.1),
            (before.0, before.1),
            "kernel counters moved"
        );
    });
}

/// SIGHUP with a file that now denies the peer: the route ends with the reload.
#[test]
fn a_reload_that_denies_the_peer_ends_its_route() {
    let net = net();
    let conf = std::env::temp_dir().join(format!("kernel-offload-{}.conf", std::process::id()));
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _remove = Remove(conf.clone());
    std::fs::write(&conf, "allowed-peer-ip=198.18.2.2\n").unwrap();
    let mut all = args(&["--kernel-offload=on"]);
    // The file is read without -n, and the file alone allows the peer.
    all.retain(|a| a != "-n" && !a.starts_with("--allowed-peer-ip"));
    all.extend(["-c".to_owned(), conf.display().to_string()]);
    let server = Server::start(&net, &[], &all);
    runtime().block_on(async {
        let call = call(&net, &v4()).await;
        exchange(&call, 0).await;
        let before = packets(&net);
        std::fs::write(&conf, "denied-peer-ip=198.18.2.2\n").unwrap();
        server.signal("HUP");
        server.wait_log("configuration reloaded", 1);
        assert_eq!(not_relayed(&call).await, None);
        assert_eq!(packets(&net), before);
        assert_eq!(metric(&metrics(&net), "turn_offload_routes"), 0);
    });
}

/// Without CAP_BPF and CAP_NET_ADMIN: `auto` says why once and relays in userspace,
/// `on` does not start and says why.
#[test]
fn without_privileges_auto_relays_in_userspace_and_on_refuses() {
    let net = net();
    let unprivileged = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"];
    let server = Server::start(&net, &unprivileged, &args(&["--kernel-offload=auto"]));
    let log = server.wait_log("kernel-offload=auto: kernel fast path unavailable", 1);
    assert!(
        log.contains("CAP_BPF") && log.contains("relaying in userspace"),
        "{log}"
    );
    runtime().block_on(async {
        let call = call(&net, &v4()).await;
        exchange(&call, 0).await;
        let doc = metrics(&net);
        assert_eq!(metric(&doc, "turn_offload_active"), 0);
        let per_family = SIZES.len() as u64;
        assert_eq!(packets(&net), (0, 0, 2 * per_family));
    });
    drop(server);

    let (status, _, stderr) = run(&net, &unprivileged, &args(&["--kernel-offload=on"]));
    assert!(!status.success());
    assert!(
        stderr.contains("kernel-offload=on: kernel fast path unavailable")
            && stderr.contains("CAP_BPF"),
        "{stderr}"
    );
}

/// `--check-config` says which path the server will use and why, without starting it.
#[test]
fn check_config_names_the_relay_path() {
    let net = net();
    let unprivileged = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"];
    let check = |wrapper: &[&str], mode: &str| {
        let mut all = args(&[mode]);
        all.push("--check-config".into());
        let (status, stdout, _) = run(&net, wrapper, &all);
        let line = stdout.lines().last().unwrap_or_default().to_owned();
        (status.success(), line)
    };
    assert_eq!(
        check(&[], "--kernel-offload=off"),
        (true, "kernel-offload=off: relaying in userspace".to_owned())
    );
    assert_eq!(
        check(&[], "--kernel-offload=on"),
        (
            true,
            "kernel-offload=on: the kernel fast path will relay channel-bound UDP on s0, s1"
                .to_owned()
        )
    );
    let (passed, line) = check(&unprivileged, "--kernel-offload=auto");
    assert!(passed);
    assert!(
        line.starts_with("kernel-offload=auto: relaying in userspace: ")
            && line.contains("CAP_BPF"),
        "{line}"
    );
    let (passed, line) = check(&unprivileged, "--kernel-offload=on");
    assert!(!passed);
    assert!(
        line.starts_with("error: kernel-offload=on: the server will not start: ")
            && line.contains("CAP_BPF"),
        "{line}"
    );
}
