//! Operations end to end against the real binary on 127.0.0.1: Prometheus metrics move
//! with counted traffic, SIGHUP applies a tightened deny list to a live allocation, and
//! SIGUSR1 drains (new allocations refused, exit 0 after the last one or the timeout).
//!
//! The TURN client here is hand-built on the crate's codec: these tests are about the
//! server's operations, the codec has its own vectors and the other suites use clients
//! we did not write.

mod support;

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtc_auth::long_term::long_term_key;
use rtc_auth::rest;
use rtc_auth::secret::Secret;
use support::{EchoPeer, MATRIX_USER, PortSlot, REALM, binding_request, random_hex, unix_now};
use turn_proto::codec::address::decode_xor;
use turn_proto::codec::attribute::AttrType;
use turn_proto::codec::{Class, Message, MessageWriter, Method, TransactionId};

/// Upper bound for anything a test waits for.
const WAIT: Duration = Duration::from_secs(10);

/// A `turn-server` process with its output collected.
struct Server {
    child: Child,
    addr: SocketAddr,
    secret: Secret,
    /// The exporter's port when started with metrics.
    metrics_port: u16,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts the binary on a fresh port slot with `extra` arguments after the common ones
    /// (REST auth with a random secret, loopback peers allowed, UDP only, logs on stdout).
    fn start(extra: &[String]) -> Self {
        Self::launch(extra, None, false)
    }

    /// [`Self::start`] with the Prometheus exporter on 127.0.0.1:[`Self::metrics_port`].
    fn start_with_metrics(extra: &[String]) -> Self {
        Self::launch(extra, None, true)
    }

    fn start_with_secret(extra: &[String], secret: &str) -> Self {
        Self::launch(extra, Some(secret), false)
    }

    /// Starts the binary with `extra` after the common arguments. `secret`: the one the
    /// arguments or the configuration file set; None adds a random one on the command line.
    fn launch(extra: &[String], secret: Option<&str>, metrics: bool) -> Self {
        let slot = PortSlot::reserve();
        let on_command_line = secret.is_none();
        let secret = secret.map_or_else(random_hex, str::to_owned);
        let mut args = vec![
            "--listening-ip=127.0.0.1".to_owned(),
            "--relay-ip=127.0.0.1".to_owned(),
            format!("--listening-port={}", slot.listen),
            format!("--min-port={}", slot.min_relay),
            format!("--max-port={}", slot.max_relay),
            format!("--realm={REALM}"),
            "--allow-loopback-peers".to_owned(),
            "--no-tls".to_owned(),
            "--no-tcp".to_owned(),
            "--log-file=stdout".to_owned(),
        ];
        if on_command_line {
            args.push("--use-auth-secret".to_owned());
            args.push(format!("--static-auth-secret={secret}"));
        }
        // The slot's second port is never a relay port: free for this server's exporter.
        let metrics_port = slot.listen + 1;
        if metrics {
            args.push("--prometheus".to_owned());
            args.push("--prometheus-address=127.0.0.1".to_owned());
            args.push(format!("--prometheus-port={metrics_port}"));
        }
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_turn-server"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start turn-server");
        let log = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), log.clone()),
            collect(child.stderr.take().unwrap(), log.clone()),
        ];
        let mut server = Self {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, slot.listen)),
            secret: Secret::new(secret),
            metrics_port,
            log,
            readers,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("server exited with {status}:\n{}", self.output());
            }
            let (request, txid) = binding_request();
            let _ = socket.send_to(&request, self.addr);
            if let Ok((n, _)) = socket.recv_from(&mut buf)
                && n >= 20
                && buf[8..20] == txid
            {
                return;
            }
        }
        panic!("server not ready:\n{}", self.output());
    }

    fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends `signal` (e.g. "HUP") with the `kill` command.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits until the output contains `needle` `count` times.
    fn wait_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + WAIT;
        while self.output().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status, if the process ended within `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn client(&self) -> Client {
        self.client_with(&self.secret)
    }

    fn client_with(&self, secret: &Secret) -> Client {
        self.client_on(Ipv4Addr::LOCALHOST, secret)
    }

    fn client_on(&self, ip: Ipv4Addr, secret: &Secret) -> Client {
        let credential = rest::mint(secret, MATRIX_USER, unix_now() + 3600, ':');
        Client::new(ip, self.addr, &credential.username, &credential.password)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        if std::thread::panicking() {
            eprintln!("--- server output ---\n{}", self.output());
        }
    }
}

fn collect(stream: impl Read + Send + 'static, log: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    })
}

/// A TURN client over UDP with REST credentials.
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    username: String,
    key: [u8; 16],
    nonce: Vec<u8>,
    /// Data indications that arrived while waiting for a response.
    stashed_data: Cell<usize>,
}

/// A parsed response: class, error code and the attributes the tests look at.
#[derive(Debug)]
struct Response {
    class: Class,
    code: Option<u16>,
    relay: Option<SocketAddr>,
}

impl Client {
    fn new(ip: Ipv4Addr, server: SocketAddr, username: &str, password: &str) -> Self {
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            socket,
            server,
            username: username.to_owned(),
            key: long_term_key(username, REALM, password),
            nonce: Vec::new(),
            stashed_data: Cell::new(0),
        }
    }

    /// A signed request; the 401 (first request) or 438 round is done here.
    fn request(
        &mut self,
        method: Method,
        peer: Option<SocketAddr>,
        lifetime: Option<u32>,
    ) -> Response {
        for _ in 0..2 {
            let txid = TransactionId(random_hex().as_bytes()[..12].try_into().unwrap());
            let mut bytes = Vec::new();
            let mut writer = MessageWriter::new(&mut bytes, method, Class::Request, txid);
            if method == Method::ALLOCATE {
                writer.attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            }
            if let Some(peer) = peer {
                writer.xor_address(AttrType::XOR_PEER_ADDRESS, peer);
            }
            if let Some(lifetime) = lifetime {
                writer.u32_attr(AttrType::LIFETIME, lifetime);
            }
            if !self.nonce.is_empty() {
                writer
                    .attr(AttrType::USERNAME, self.username.as_bytes())
                    .attr(AttrType::REALM, REALM.as_bytes())
                    .attr(AttrType::NONCE, &self.nonce)
                    .integrity(&self.key);
            }
            let reply = self.transact(&bytes, txid);
            let message = Message::parse(&reply).expect("a STUN response");
            let code = message
                .attr(AttrType::ERROR_CODE)
                .map(|v| u16::from(v[2] & 7) * 100 + u16::from(v[3]));
            let fresh_nonce = message.attr(AttrType::NONCE);
            if let (Some(401 | 438), Some(nonce)) = (code, fresh_nonce)
                && (self.nonce.is_empty() || code == Some(438))
            {
                self.nonce = nonce.to_vec();
                continue;
            }
            let relay = message
                .attr(AttrType::XOR_RELAYED_ADDRESS)
                .and_then(|value| decode_xor(value, &txid).ok());
            return Response {
                class: message.class(),
                code,
                relay,
            };
        }
        panic!("{method:?} still challenged with a fresh nonce");
    }

    /// Sends `request` until the response with its transaction id arrives.
    fn transact(&self, request: &[u8], txid: TransactionId) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            self.socket.send_to(request, self.server).unwrap();
            let resend = Instant::now() + Duration::from_millis(500);
            while Instant::now() < resend {
                let Ok(n) = self.socket.recv(&mut buf) else {
                    continue;
                };
                match Message::parse(&buf[..n]) {
                    Ok(message) if message.transaction() == txid => return buf[..n].to_vec(),
                    Ok(message) if message.method() == Method::DATA => {
                        self.stashed_data.set(self.stashed_data.get() + 1);
                    }
                    _ => {}
                }
            }
        }
        panic!("no response from {}", self.server);
    }

    fn allocate(&mut self) -> SocketAddr {
        let response = self.request(Method::ALLOCATE, None, None);
        assert_eq!(response.class, Class::Success, "{response:?}");
        response.relay.expect("XOR-RELAYED-ADDRESS")
    }

    fn send(&self, peer: SocketAddr, data: &[u8]) {
        let txid = TransactionId(random_hex().as_bytes()[..12].try_into().unwrap());
        let mut bytes = Vec::new();
        MessageWriter::new(&mut bytes, Method::SEND, Class::Indication, txid)
            .xor_address(AttrType::XOR_PEER_ADDRESS, peer)
            .attr(AttrType::DATA, data);
        self.socket.send_to(&bytes, self.server).unwrap();
    }

    /// Data indications received within `wait`.
    fn data_received(&self, wait: Duration) -> usize {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65_536];
        let mut count = self.stashed_data.take();
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf)
                && Message::parse(&buf[..n]).is_ok_and(|m| m.method() == Method::DATA)
            {
                count += 1;
            }
        }
        count
    }
}

/// GET `path` on the exporter: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect exporter");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

fn metric(body: &str, series: &str) -> u64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} not in\n{body}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_follow_allocations_and_relayed_traffic() {
    let server = Server::start_with_metrics(&["-n".to_owned()]);
    let port = server.metrics_port;
    let (status, body) = get(port, "/");
    assert_eq!((status, body.as_str()), (200, "OK\n"), "health check");
    assert_eq!(get(port, "/nothing").0, 404);
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(metric(&body, "turn_total_allocations"), 0);
    assert!(
        metric(&body, "stun_binding_request") >= 1,
        "readiness probes"
    );

    let peer = EchoPeer::start();
    let mut client = server.client();
    client.allocate();
    let response = client.request(Method::CREATE_PERMISSION, Some(peer.addr), None);
    assert_eq!(response.class, Class::Success, "{response:?}");
    for _ in 0..5 {
        client.send(peer.addr, &[7u8; 100]);
    }
    assert_eq!(
        client.data_received(Duration::from_millis(1500)),
        5,
        "echoes"
    );

    let body = get(port, "/metrics").1;
    assert_eq!(metric(&body, "turn_total_allocations"), 1);
    assert_eq!(metric(&body, "turn_allocations{transport=\"udp\"}"), 1);
    assert_eq!(metric(&body, "turn_permissions{transport=\"udp\"}"), 1);
    assert_eq!(metric(&body, "turn_traffic_peer_sentp"), 5);
    assert_eq!(metric(&body, "turn_traffic_peer_sentb"), 500);
    assert_eq!(metric(&body, "turn_traffic_sentb"), 500);
    assert_eq!(
        metric(
            &body,
            "turn_relayed_packets_total{direction=\"peer_to_client\"}"
        ),
        5
    );
    assert!(!body.contains("user="), "no user labels by default");

    let response = client.request(Method::REFRESH, None, Some(0));
    assert_eq!(response.class, Class::Success, "{response:?}");
    let body = get(port, "/metrics").1;
    assert_eq!(metric(&body, "turn_total_allocations"), 0);
    assert_eq!(metric(&body, "turn_allocations_ended_total"), 1);
    assert_eq!(metric(&body, "turn_allocation_lifetime_seconds_count"), 1);
}

/// A configuration file in a fresh temporary directory.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("turn-ops-{}", random_hex()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = Self(dir.join("turnserver.conf"));
        file.write(text);
        file
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn sighup_cuts_a_newly_denied_peer_and_keeps_the_allocation() {
    let file = ConfigFile::new("denied-peer-ip=127.0.0.9\n");
    let server = Server::start(&["-c".to_owned(), file.0.display().to_string()]);
    let kept = EchoPeer::start_on(Ipv4Addr::new(127, 0, 0, 1));
    let denied = EchoPeer::start_on(Ipv4Addr::new(127, 0, 0, 2));
    let mut client = server.client();
    let relay = client.allocate();
    // The denied host also writes to the relay address on its own: only the permission
    // (not the per-Send policy check) stands between it and the client.
    let denied_host = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).unwrap();
    for peer in [kept.addr, denied.addr] {
        let response = client.request(Method::CREATE_PERMISSION, Some(peer), None);
        assert_eq!(response.class, Class::Success, "{response:?}");
        client.send(peer, b"before");
    }
    assert_eq!(client.data_received(Duration::from_millis(1000)), 2);
    denied_host.send_to(b"unsolicited", relay).unwrap();
    assert_eq!(client.data_received(Duration::from_millis(500)), 1);

    // A broken file is refused as a whole: the old rules stay.
    file.write("listening-port=not-a-port\n");
    server.signal("HUP");
    server.wait_log("reload failed; keeping the running configuration", 1);
    client.send(denied.addr, b"still open");
    assert_eq!(client.data_received(Duration::from_millis(500)), 1);

    file.write("denied-peer-ip=127.0.0.2\nverbose\n");
    server.signal("HUP");
    server.wait_log("configuration reloaded", 1);
    server.wait_log("log level changed", 1);
    let before = denied.count();
    client.send(denied.addr, b"after");
    client.send(kept.addr, b"after");
    assert_eq!(
        client.data_received(Duration::from_millis(1000)),
        1,
        "only the kept peer"
    );
    assert_eq!(denied.count(), before, "nothing reached the denied peer");
    denied_host.send_to(b"unsolicited", relay).unwrap();
    assert_eq!(
        client.data_received(Duration::from_millis(500)),
        0,
        "permission removed at once"
    );
    let response = client.request(Method::CREATE_PERMISSION, Some(denied.addr), None);
    assert_eq!(response.code, Some(403), "{response:?}");
    let response = client.request(Method::REFRESH, None, Some(600));
    assert_eq!(
        response.class,
        Class::Success,
        "the allocation survived: {response:?}"
    );
}

#[test]
fn sigusr1_refuses_new_allocations_and_exits_after_the_last_one() {
    let mut server = Server::start_with_metrics(&["-n".to_owned()]);
    let port = server.metrics_port;
    let mut first = server.client();
    first.allocate();
    assert_eq!(metric(&get(port, "/metrics").1, "turn_draining"), 0);
    server.signal("USR1");
    server.wait_log("draining", 1);
    assert_eq!(metric(&get(port, "/metrics").1, "turn_draining"), 1);
    let mut second = server.client();
    let response = second.request(Method::ALLOCATE, None, None);
    assert_eq!(response.code, Some(486), "{response:?}");
    assert!(
        server.wait_exit(Duration::from_millis(500)).is_none(),
        "waits for the call"
    );
    let response = first.request(Method::REFRESH, None, Some(0));
    assert_eq!(response.class, Class::Success, "{response:?}");
    let status = server
        .wait_exit(WAIT)
        .expect("exit after the last allocation");
    assert!(status.success(), "{status:?}");
}

/// coturn 4.17's `drain-min-allocations`: the drain ends when that many are left.
#[test]
fn sigusr1_exits_at_drain_min_allocations() {
    let mut server = Server::start(&["-n".to_owned(), "--drain-min-allocations=1".to_owned()]);
    let mut first = server.client();
    first.allocate();
    let mut second = server.client();
    second.allocate();
    server.signal("USR1");
    server.wait_log("draining", 1);
    assert!(
        server.wait_exit(Duration::from_millis(500)).is_none(),
        "two allocations left, one allowed"
    );
    let response = first.request(Method::REFRESH, None, Some(0));
    assert_eq!(response.class, Class::Success, "{response:?}");
    let status = server
        .wait_exit(WAIT)
        .expect("exit with one allocation left");
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigusr1_exits_at_the_drain_timeout() {
    let mut server = Server::start(&["-n".to_owned(), "--drain-timeout=1".to_owned()]);
    let mut client = server.client();
    client.allocate();
    let started = Instant::now();
    server.signal("USR1");
    let status = server.wait_exit(WAIT).expect("exit at the drain timeout");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sighup_rotates_the_secret_and_tightens_the_quota_without_dropping_the_call() {
    let (old, new) = (random_hex(), random_hex());
    let file = ConfigFile::new(&format!("use-auth-secret\nstatic-auth-secret={old}\n"));
    let server = Server::start_with_secret(&["-c".to_owned(), file.0.display().to_string()], &old);
    let peer = EchoPeer::start();
    let mut call = server.client();
    call.allocate();
    let response = call.request(Method::CREATE_PERMISSION, Some(peer.addr), None);
    assert_eq!(response.class, Class::Success, "{response:?}");
    let relayed = |call: &Client| {
        call.send(peer.addr, b"media");
        call.data_received(Duration::from_millis(400))
    };
    assert_eq!(relayed(&call), 1);

    // Step 1: the new secret first, the old one kept; one allocation at most from now on.
    file.write(&format!(
        "use-auth-secret\nstatic-auth-secret={new}\nstatic-auth-secret={old}\ntotal-quota=1\n"
    ));
    server.signal("HUP");
    server.wait_log("configuration reloaded", 1);
    assert_eq!(relayed(&call), 1, "the call goes on");
    let mut second = server.client_with(&Secret::new(new.clone()));
    let response = second.request(Method::ALLOCATE, None, None);
    assert_eq!(
        response.code,
        Some(486),
        "quota applies to new allocations: {response:?}"
    );

    // Step 2: the old secret retired, quota lifted.
    file.write(&format!("use-auth-secret\nstatic-auth-secret={new}\n"));
    server.signal("HUP");
    server.wait_log("configuration reloaded", 2);
    second.allocate();
    assert_eq!(
        relayed(&call),
        1,
        "the retired secret's call relays until its lifetime ends"
    );
    let response = call.request(Method::REFRESH, None, Some(600));
    assert_eq!(response.code, Some(401), "but cannot refresh: {response:?}");
    assert!(server.output().contains("credentials retired"));
}

#[test]
fn a_401_flood_from_one_source_is_throttled_while_another_source_allocates() {
    let server = Server::start(&["-n".to_owned()]);
    let flooder = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 3), 0)).unwrap();
    flooder
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let started = Instant::now();
    let mut sent = 0u32;
    let (mut answers, mut bytes) = (0u64, 0u64);
    let mut buf = [0u8; 1500];
    // 400 unauthenticated Allocates in about a second, as a spoofed source would send.
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..20 {
            let txid = TransactionId(random_hex().as_bytes()[..12].try_into().unwrap());
            let mut request = Vec::new();
            MessageWriter::new(&mut request, Method::ALLOCATE, Class::Request, txid)
                .attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            flooder.send_to(&request, server.addr).unwrap();
            sent += 1;
        }
        while let Ok(n) = flooder.recv(&mut buf) {
            answers += 1;
            bytes += n as u64;
        }
    }
    while let Ok(n) = flooder.recv(&mut buf) {
        answers += 1;
        bytes += n as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("{sent} requests, {answers} answers, {bytes} bytes in {elapsed:.2} s");
    // Burst 20, then 10 per second.
    let bound = 20.0 + 10.0 * elapsed + 1.0;
    assert!(sent >= 200, "{sent}");
    assert!(answers as f64 <= bound, "{answers} answers > {bound}");
    assert!(answers >= 20, "the burst is answered: {answers}");
    assert!(bytes <= answers * 200, "small 401s: {bytes} bytes");
    server.wait_log("rate limited: refusing 401 answers from 127.0.0.3", 1);
    assert_eq!(
        server
            .output()
            .matches("rate limited: refusing 401 answers")
            .count(),
        1,
        "one line per refused source"
    );

    let mut other = server.client_on(Ipv4Addr::new(127, 0, 0, 4), &server.secret);
    other.allocate();
}
