//! Harness for the end-to-end tests: starts a TURN server process on 127.0.0.1 and
//! provides the pieces every test needs (free ports, a UDP echo peer, REST credentials,
//! bounded child processes).
//!
//! The server under test is our `turn-server` binary by default, or coturn's `turnserver`
//! when `TURN_TEST_SERVER=coturn` is set (to validate the tests themselves, and as a
//! differential check). Both get the same coturn-compatible command line; see
//! [`ServerBuilder::start`]. `TURN_TEST_SERVER_ARGS` appends more arguments (e.g.
//! `--Verbose` while debugging a failure).
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc_auth::rest::{self, RestCredential};
use rtc_auth::secret::Secret;

/// The realm every test server is started with.
pub(crate) const REALM: &str = "example.org";

/// The Matrix user the tests authenticate as.
pub(crate) const MATRIX_USER: &str = "@alice:example.org";

/// How long a server may take to answer its first STUN Binding request.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Ports per test slot: the listener, then the relay range.
const SLOT_SIZE: u16 = 64;

/// Which implementation the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerKind {
    /// Our `turn-server` binary, built by cargo for this test run.
    Ours,
    /// coturn's `turnserver` from `PATH`.
    Coturn,
}

impl ServerKind {
    /// Reads `TURN_TEST_SERVER` (unset or `ours`: our binary; `coturn`: coturn).
    pub(crate) fn from_env() -> Self {
        match std::env::var("TURN_TEST_SERVER").as_deref() {
            Err(_) | Ok("") | Ok("ours") | Ok("turn-server") => ServerKind::Ours,
            Ok("coturn") => ServerKind::Coturn,
            Ok(other) => panic!("TURN_TEST_SERVER={other:?}: expected `coturn` or `ours`"),
        }
    }

    fn program(self) -> String {
        match self {
            ServerKind::Ours => env!("CARGO_BIN_EXE_turn-server").to_owned(),
            ServerKind::Coturn => "turnserver".to_owned(),
        }
    }
}

/// A random hex string with 128 bits of entropy (secrets, payload tags).
pub(crate) fn random_hex() -> String {
    let a = RandomState::new().build_hasher().finish();
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{a:016x}{:016x}", h.finish())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs()
}

/// A block of free loopback ports reserved for one test: `base` is the client listener,
/// `base+2 ..= base+SLOT_SIZE-1` the relay range.
///
/// Slots are taken below the kernel's ephemeral range, so client sockets bound to port 0
/// never land in them; every port is checked free by binding it before use, and each
/// slot is used by one test only (process-wide counter, random start per process).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PortSlot {
    /// The STUN/TURN listening port.
    pub(crate) listen: u16,
    /// First relay port (even).
    pub(crate) min_relay: u16,
    /// Last relay port.
    pub(crate) max_relay: u16,
}

impl PortSlot {
    /// Reserves a slot whose ports are all free right now.
    pub(crate) fn reserve() -> Self {
        static NEXT: OnceLock<AtomicUsize> = OnceLock::new();
        let (lo, hi) = slot_region();
        let slots = usize::from((hi - lo) / SLOT_SIZE);
        assert!(slots > 0, "no port region for test slots");
        let next = NEXT.get_or_init(|| {
            let mut h = RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            AtomicUsize::new(h.finish() as usize % slots)
        });
        for _ in 0..slots {
            let index = next.fetch_add(1, Ordering::Relaxed) % slots;
            let base = lo + index as u16 * SLOT_SIZE;
            if slot_is_free(base) {
                return PortSlot {
                    listen: base,
                    min_relay: base + 2,
                    max_relay: base + SLOT_SIZE - 1,
                };
            }
        }
        panic!("no free block of {SLOT_SIZE} loopback ports in {lo}..{hi}");
    }

    /// Whether `addr` lies in this slot's relay range on 127.0.0.1.
    pub(crate) fn is_relay_addr(&self, addr: SocketAddr) -> bool {
        addr.ip() == Ipv4Addr::LOCALHOST && (self.min_relay..=self.max_relay).contains(&addr.port())
    }
}

/// The port region for slots: below the ephemeral range if there is room, else above it.
fn slot_region() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999));
    if range.0 >= 12_000 {
        (10_000, range.0)
    } else {
        (range.1.saturating_add(1).max(1024), 65_535)
    }
}

fn slot_is_free(base: u16) -> bool {
    let local = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // The listener must be free for TCP too (a server may listen on both).
    if TcpListener::bind(local(base)).is_err() {
        return false;
    }
    let mut held = Vec::with_capacity(usize::from(SLOT_SIZE));
    for port in base..base + SLOT_SIZE {
        match UdpSocket::bind(local(port)) {
            Ok(socket) => held.push(socket),
            Err(_) => return false,
        }
    }
    true
}

/// Collects a child's stdout and stderr lines into one shared log.
#[derive(Clone, Default)]
pub(crate) struct OutputLog(Arc<Mutex<String>>);

impl OutputLog {
    fn attach(&self, name: &'static str, stream: impl Read + Send + 'static) -> JoinHandle<()> {
        let log = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut text = log.0.lock().unwrap();
                if name == "stderr" {
                    text.push_str("[stderr] ");
                }
                text.push_str(&line);
                text.push('\n');
            }
        })
    }

    /// Everything captured so far.
    pub(crate) fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// Options for starting a server; see [`TurnServer::builder`].
#[derive(Debug, Clone)]
pub(crate) struct ServerBuilder {
    allow_loopback_peers: bool,
    tcp: bool,
    extra_args: Vec<String>,
}

impl ServerBuilder {
    /// Whether to pass `--allow-loopback-peers` (default true: the echo peers live on
    /// 127.0.0.1).
    pub(crate) fn allow_loopback_peers(mut self, allow: bool) -> Self {
        self.allow_loopback_peers = allow;
        self
    }

    /// Also listens for TCP clients on the listening port (no `--no-tcp`).
    pub(crate) fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Adds one more coturn-style command-line argument.
    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Starts the server under test and waits until it answers a STUN Binding request.
    ///
    /// The command line, for both servers:
    /// `-n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port=P --min-port=A
    /// --max-port=B --realm=example.org --use-auth-secret --static-auth-secret=S
    /// [--allow-loopback-peers] --no-tls --no-dtls [--no-tcp] --no-cli --log-file=stdout
    /// [extra...]`.
    pub(crate) fn start(self) -> TurnServer {
        let kind = ServerKind::from_env();
        let slot = PortSlot::reserve();
        let secret = random_hex();
        let mut args = vec![
            "-n".to_owned(),
            "--listening-ip=127.0.0.1".to_owned(),
            "--relay-ip=127.0.0.1".to_owned(),
            format!("--listening-port={}", slot.listen),
            format!("--min-port={}", slot.min_relay),
            format!("--max-port={}", slot.max_relay),
            format!("--realm={REALM}"),
            "--use-auth-secret".to_owned(),
            format!("--static-auth-secret={secret}"),
        ];
        if self.allow_loopback_peers {
            args.push("--allow-loopback-peers".to_owned());
        }
        args.extend(["--no-tls", "--no-dtls"].map(str::to_owned));
        if !self.tcp {
            args.push("--no-tcp".to_owned());
        }
        args.extend(["--no-cli", "--log-file=stdout"].map(str::to_owned));
        args.extend(self.extra_args);
        // For debugging a failure, e.g. TURN_TEST_SERVER_ARGS=--Verbose.
        if let Ok(more) = std::env::var("TURN_TEST_SERVER_ARGS") {
            args.extend(more.split_whitespace().map(str::to_owned));
        }

        let program = kind.program();
        let mut child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {program} ({kind:?}): {e}; coturn comes from \
                     scripts/install-test-deps.sh"
                )
            });
        let output = OutputLog::default();
        let readers = vec![
            output.attach("stdout", child.stdout.take().unwrap()),
            output.attach("stderr", child.stderr.take().unwrap()),
        ];
        let mut server = TurnServer {
            kind,
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, slot.listen)),
            slot,
            secret: Secret::new(secret),
            output,
            readers,
            command_line: format!("{program} {}", args.join(" ")),
        };
        server.wait_ready();
        server
    }
}

/// A running TURN server process; killed on drop, its output printed if the test failed.
pub(crate) struct TurnServer {
    /// Which implementation this is.
    pub(crate) kind: ServerKind,
    child: Child,
    /// The client listener (UDP, and TCP when asked for; 127.0.0.1).
    pub(crate) addr: SocketAddr,
    /// The ports reserved for this server.
    pub(crate) slot: PortSlot,
    /// The `static-auth-secret` it was started with.
    pub(crate) secret: Secret,
    output: OutputLog,
    readers: Vec<JoinHandle<()>>,
    command_line: String,
}

impl TurnServer {
    /// A builder with the default options (loopback peers allowed).
    pub(crate) fn builder() -> ServerBuilder {
        ServerBuilder {
            allow_loopback_peers: true,
            tcp: false,
            extra_args: Vec::new(),
        }
    }

    /// Starts a server with the default options.
    pub(crate) fn start() -> Self {
        Self::builder().start()
    }

    /// A REST credential for [`MATRIX_USER`], valid for an hour, under the server's secret.
    pub(crate) fn credential(&self) -> RestCredential {
        rest::mint(&self.secret, MATRIX_USER, unix_now() + 3600, ':')
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's output so far.
    pub(crate) fn output(&self) -> String {
        self.output.text()
    }

    /// Fails if the server printed its secret or any of `passwords`.
    pub(crate) fn assert_no_secrets_logged(&self, passwords: &[&str]) {
        let output = self.output();
        assert!(
            !output.contains(self.secret.expose_str().expect("hex secret")),
            "the server logged its static-auth-secret"
        );
        for password in passwords {
            assert!(
                !output.contains(password),
                "the server logged a REST password"
            );
        }
    }

    /// Sends STUN Binding requests until one is answered (bounded by [`READY_TIMEOUT`]).
    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind probe socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.fail_start(&format!("exited during start-up with {status}"));
            }
            let (request, txid) = binding_request();
            // The listener may not be bound yet: errors (ICMP refusals) just mean retry.
            let _ = socket.send_to(&request, self.addr);
            if let Ok((n, from)) = socket.recv_from(&mut buf)
                && from == self.addr
                && n >= 20
                && buf[0..2] == [0x01, 0x01]
                && buf[8..20] == txid
            {
                return;
            }
        }
        self.fail_start(&format!(
            "did not answer a STUN Binding request on {} within {READY_TIMEOUT:?}",
            self.addr
        ));
    }

    fn fail_start(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        panic!(
            "{:?} server {why}\ncommand: {}\n--- server output ---\n{}",
            self.kind,
            self.command_line,
            self.output()
        );
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {:?} server output (test failed) ---\ncommand: {}\n{}--- end of server output ---",
                self.kind,
                self.command_line,
                self.output()
            );
        }
    }
}

/// A hand-built STUN Binding request (RFC 8489 §6) and its transaction id.
pub(crate) fn binding_request() -> ([u8; 20], [u8; 12]) {
    let mut txid = [0u8; 12];
    let random = random_hex();
    for (i, byte) in txid.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&random[2 * i..2 * i + 2], 16).unwrap();
    }
    let mut request = [0u8; 20];
    request[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
    request[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
    request[8..20].copy_from_slice(&txid);
    (request, txid)
}

/// One datagram an [`EchoPeer`] received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// Where it came from (a relay address when it went through the server).
    pub(crate) from: SocketAddr,
    /// The peer socket it arrived at.
    pub(crate) to: SocketAddr,
    /// Its payload.
    pub(crate) data: Vec<u8>,
}

/// A UDP echo peer on 127.0.0.x that records every datagram it receives and sends it back.
pub(crate) struct EchoPeer {
    /// Where it listens (the first port of a pair for [`EchoPeer::start_pair`]).
    pub(crate) addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl EchoPeer {
    /// An echo peer on 127.0.0.1 with an OS-chosen port.
    pub(crate) fn start() -> Self {
        Self::start_on(Ipv4Addr::LOCALHOST)
    }

    /// An echo peer on `ip` (a loopback address) with an OS-chosen port.
    pub(crate) fn start_on(ip: Ipv4Addr) -> Self {
        let socket = UdpSocket::bind((ip, 0)).expect("bind echo peer");
        Self::serve(vec![socket])
    }

    /// An echo peer on 127.0.0.1 ports P and P+1, like `turnutils_peer` (uclient without
    /// `-c` sends its RTCP stream to the peer's port + 1).
    pub(crate) fn start_pair() -> Self {
        for _ in 0..100 {
            let first = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind echo peer");
            let port = first.local_addr().unwrap().port();
            if port == u16::MAX {
                continue;
            }
            if let Ok(second) = UdpSocket::bind((Ipv4Addr::LOCALHOST, port + 1)) {
                return Self::serve(vec![first, second]);
            }
        }
        panic!("no free pair of adjacent UDP ports for the echo peer");
    }

    fn serve(sockets: Vec<UdpSocket>) -> Self {
        let addr = sockets[0].local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = sockets
            .into_iter()
            .map(|socket| {
                socket
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                let to = socket.local_addr().unwrap();
                let received = Arc::clone(&received);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65_536];
                    while !stop.load(Ordering::Relaxed) {
                        let Ok((n, from)) = socket.recv_from(&mut buf) else {
                            continue;
                        };
                        // Record first, so a test that got the echo sees the count.
                        {
                            let mut log = received.lock().unwrap();
                            // Bounded: tests send at most a few thousand datagrams.
                            if log.len() < 100_000 {
                                log.push(Received {
                                    from,
                                    to,
                                    data: buf[..n].to_vec(),
                                });
                            }
                        }
                        let _ = socket.send_to(&buf[..n], from);
                    }
                })
            })
            .collect();
        EchoPeer {
            addr,
            received,
            stop,
            threads,
        }
    }

    /// Every datagram received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many datagrams were received so far.
    pub(crate) fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A finished child process run by [`run_bounded`].
#[derive(Debug)]
pub(crate) struct RunOutput {
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// stdout and stderr, interleaved by line (stderr lines prefixed).
    pub(crate) output: String,
}

/// Runs `program args`, killing it if it is still running after `limit`.
pub(crate) fn run_bounded(program: &str, args: &[String], limit: Duration) -> RunOutput {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e}; it comes from scripts/install-test-deps.sh")
        });
    let log = OutputLog::default();
    let readers = [
        log.attach("stdout", child.stdout.take().unwrap()),
        log.attach("stderr", child.stderr.take().unwrap()),
    ];
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            for reader in readers {
                let _ = reader.join();
            }
            panic!(
                "{program} {} still running after {limit:?}; output:\n{}",
                args.join(" "),
                log.text()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for reader in readers {
        let _ = reader.join();
    }
    RunOutput {
        status,
        output: log.text(),
    }
}

/// The totals of uclient's final summary.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) sent_msgs: u64,
    pub(crate) recv_msgs: u64,
    pub(crate) sent_bytes: u64,
    pub(crate) recv_bytes: u64,
    pub(crate) lost: u64,
}

/// The number after `key` in `line` (digits only).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Parses the last summary lines:
/// `start_mclient: tot_send_msgs=80, tot_recv_msgs=80`,
/// `start_mclient: tot_send_bytes ~ 9600, tot_recv_bytes ~ 9600`,
/// `Total lost packets 0 (0.000000%), ...`.
pub(crate) fn parse_summary(output: &str) -> Option<Summary> {
    // The final totals; the per-second progress lines carry `msz=`.
    let line = |needle: &str| {
        output
            .lines()
            .rev()
            .find(|l| l.contains(needle) && !l.contains("msz="))
    };
    let msgs = line("start_mclient: tot_send_msgs=")?;
    let bytes = line("start_mclient: tot_send_bytes")?;
    let lost = line("Total lost packets")?;
    Some(Summary {
        sent_msgs: number_after(msgs, "tot_send_msgs=")?,
        recv_msgs: number_after(msgs, "tot_recv_msgs=")?,
        sent_bytes: number_after(bytes, "tot_send_bytes ~")?,
        recv_bytes: number_after(bytes, "tot_recv_bytes ~")?,
        lost: number_after(lost, "Total lost packets")?,
    })
}

/// Resident memory of a process, from /proc (Linux), in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
