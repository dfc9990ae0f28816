//! `turn` mode: N clients allocate, install a permission, bind a channel (or use Send
//! indications) and send timestamped packets at a set rate to loadtest's echo peer, or to
//! each other (`--c2c`); then the allocations are deleted.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc_auth::rest::{DEFAULT_SEPARATOR, RestCredential, mint};
use rtc_auth::secret::Secret;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::args::{Args, parse_duration};
use crate::batch::{MAX_DATAGRAM, grow_buffers};
use crate::client::{self, Failure, Link, Session};
use crate::datapath::{self, Flow, Framing, Live, LoadSpec, PAYLOAD_HEADER};
use crate::peer::EchoPeer;
use crate::procfs;
use crate::report::{AllocSummary, Progress, TrafficReport};
use crate::stats::Histogram;
use crate::stream::{self, StreamLink, Transport};

/// Hard caps that keep every run bounded.
pub const MAX_CLIENTS: usize = 20_000;
const MAX_DURATION: Duration = Duration::from_secs(3600);
const MAX_DRAIN: Duration = Duration::from_secs(10);
const MAX_THREADS: usize = 16;
/// First channel number loadtest binds.
const CHANNEL: u16 = 0x4000;

/// Everything a `turn` run needs.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// The TURN server.
    pub server: SocketAddr,
    /// The TURN REST shared secret.
    pub secret: String,
    /// User id prefix in minted usernames (`<expiry>:<prefix>-<i>`).
    pub user: String,
    /// Number of clients.
    pub clients: usize,
    /// Packets per second per client (0: flat out).
    pub rate: u64,
    /// Payload bytes.
    pub size: usize,
    /// Sending time.
    pub duration: Duration,
    /// Receive time after sending stops.
    pub drain: Duration,
    /// Send indications instead of channels.
    pub send: bool,
    /// Client to client instead of the echo peer.
    pub c2c: bool,
    /// Sender/receiver threads.
    pub threads: usize,
    /// Flat out: most packets in flight per thread (0: unlimited, open loop).
    pub inflight: u64,
    /// Allocations in flight at once during setup.
    pub window: usize,
    /// Server process to read CPU from.
    pub server_pid: Option<u32>,
    /// Print the progress line.
    pub progress: bool,
    /// TCP or TLS to the server instead of UDP (the relay stays UDP).
    pub transport: Option<Transport>,
    /// Where the echo peer listens; None: the server's address (loopback runs).
    pub peer_ip: Option<IpAddr>,
}

/// Flags of `turn` mode, for `--help`.
pub const HELP: &str = "\
loadtest turn --secret S [--server 127.0.0.1:3478] [--clients 10] [--rate 50] [--size 100]
              [--duration 10s] [--drain 1s] [--send] [--c2c] [--threads 1] [--window 64]
              [--inflight 256] [--transport udp|tcp|tls [--insecure-tls]] [--user loadtest]
              [--server-pid PID] [--json FILE] [--allow-remote] [--peer-ip IP]
  --rate 0 sends flat out with at most --inflight packets in flight per thread (0: open
  loop); --size is the payload (24..=1800 bytes). --transport tcp|tls reaches the server
  over a stream per client (paced rates only); tls needs --insecure-tls, which accepts any
  server certificate (test servers have self-signed ones). --peer-ip is the local address
  the echo peer listens on (default: the server's IP, for loopback runs).";

impl TurnConfig {
    /// The packet load every sender runs.
    fn load_spec(&self) -> LoadSpec {
        LoadSpec {
            rate: self.rate,
            size: self.size,
            duration: self.duration,
            drain: self.drain,
            inflight: self.inflight,
        }
    }

    /// Reads the flags of `turn` mode.
    pub fn from_args(a: &Args) -> Result<Self, String> {
        let transport = match a.get("transport", "udp".to_string())?.as_str() {
            "udp" => None,
            "tcp" => Some(Transport::Tcp),
            "tls" if a.flag("insecure-tls") => Some(Transport::tls_without_verification()?),
            "tls" => {
                return Err(
                    "--transport tls needs --insecure-tls: loadtest does not verify \
                            server certificates"
                        .into(),
                );
            }
            other => return Err(format!("--transport {other:?}: expected udp, tcp or tls")),
        };
        if transport.is_none() && a.flag("insecure-tls") {
            return Err("--insecure-tls only goes with --transport tls".into());
        }
        let server = crate::modes::target(
            &a.get("server", "127.0.0.1:3478".to_string())?,
            a.flag("allow-remote"),
        )?;
        let secret: String = a
            .opt("secret")?
            .ok_or("--secret is required (the server's static-auth-secret)")?;
        let cfg = Self {
            server,
            secret,
            user: a.get("user", "loadtest".to_string())?,
            clients: a.get("clients", 10)?,
            rate: a.get("rate", 50)?,
            size: a.get("size", 100)?,
            duration: parse_duration(&a.get("duration", "10s".to_string())?)?,
            drain: parse_duration(&a.get("drain", "1s".to_string())?)?,
            send: a.flag("send"),
            c2c: a.flag("c2c"),
            threads: a.get("threads", 1)?,
            inflight: a.get("inflight", 256)?,
            window: a.get("window", 64)?,
            server_pid: a.opt("server-pid")?,
            progress: true,
            transport,
            peer_ip: a.opt("peer-ip")?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the hard caps.
    pub fn validate(&self) -> Result<(), String> {
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return Err(format!("--clients must be 1..={MAX_CLIENTS}"));
        }
        if self.c2c && self.clients < 2 {
            return Err("--c2c needs at least 2 clients".into());
        }
        let max_size = MAX_DATAGRAM - 64;
        if self.size < PAYLOAD_HEADER || self.size > max_size {
            return Err(format!(
                "--size must be {PAYLOAD_HEADER}..={max_size} bytes"
            ));
        }
        if self.rate > 1_000_000 {
            return Err("--rate must be at most 1000000 pps per client (0 = flat out)".into());
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err("--duration must be between 1 ms and 1 h".into());
        }
        if self.drain > MAX_DRAIN {
            return Err("--drain must be at most 10 s".into());
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(format!("--threads must be 1..={MAX_THREADS}"));
        }
        if self.inflight > 1_000_000 {
            return Err("--inflight must be at most 1000000 (0 = unlimited)".into());
        }
        if self.transport.is_some() && self.rate == 0 {
            return Err("--rate 0 (flat out) is UDP only; give TCP/TLS a rate".into());
        }
        if self.window == 0 || self.window > 4096 {
            return Err("--window must be 1..=4096".into());
        }
        if let Some(pid) = self.server_pid {
            procfs::check_pid(pid)?;
        }
        Ok(())
    }
}

/// Credentials for `n` clients, valid for `valid_for` from now.
pub fn credentials(secret: &str, user: &str, n: usize, valid_for: Duration) -> Vec<RestCredential> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let expiry = now + valid_for.as_secs() + 3600;
    let secret = Secret::new(secret.as_bytes().to_vec());
    (0..n)
        .map(|i| mint(&secret, &format!("{user}-{i}"), expiry, DEFAULT_SEPARATOR))
        .collect()
}

/// Result of allocating many clients.
pub struct Allocated<L = UdpSocket> {
    /// Sessions in client order (`None` where allocation failed).
    pub sessions: Vec<Option<Session<L>>>,
    /// Phase summary.
    pub summary: AllocSummary,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
}

/// Allocates one session per credential with at most `window` in flight, each on a
/// link from `connect`.
pub async fn allocate_all<L, C, F>(
    creds: Vec<RestCredential>,
    window: usize,
    lifetime: Option<u32>,
    connect: C,
) -> Allocated<L>
where
    L: Link + 'static,
    C: Fn() -> F,
    F: Future<Output = Result<L, Failure>> + Send + 'static,
{
    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(window));
    let mut set = JoinSet::new();
    let n = creds.len();
    for (i, cred) in creds.into_iter().enumerate() {
        let sem = sem.clone();
        let link = connect();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let session = match link.await {
                Ok(link) => client::allocate_on(link, &cred, lifetime, false).await,
                Err(f) => Err(f),
            };
            (i, session)
        });
    }
    let mut sessions: Vec<Option<Session<L>>> = (0..n).map(|_| None).collect();
    let mut latency = Histogram::default();
    let mut failures = BTreeMap::new();
    let mut last_ok = started;
    while let Some(res) = set.join_next().await {
        match res {
            Ok((i, Ok((s, lat)))) => {
                latency.record(lat.as_micros() as u64);
                sessions[i] = Some(s);
                last_ok = Instant::now();
            }
            Ok((_, Err(f))) => *failures.entry(format!("allocate:{f}")).or_insert(0) += 1,
            Err(_) => *failures.entry("allocate:task-panicked".into()).or_insert(0) += 1,
        }
    }
    let ok = latency.count();
    let secs = (last_ok - started).as_secs_f64().max(1e-6);
    Allocated {
        sessions,
        summary: AllocSummary {
            requested: n as u64,
            ok,
            failed: n as u64 - ok,
            per_s: ok as f64 / secs,
            latency_ms: latency.summary(1e-3),
        },
        failures,
    }
}

/// Deletes every session (Refresh with lifetime 0), `window` at a time; returns how many
/// succeeded and adds failures under `refresh0:`.
pub async fn deallocate_all<L: Link + 'static>(
    sessions: Vec<Session<L>>,
    window: usize,
    failures: &mut BTreeMap<String, u64>,
) -> u64 {
    let sem = Arc::new(Semaphore::new(window));
    let mut set = JoinSet::new();
    for mut s in sessions {
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            s.refresh(0).await
        });
    }
    let mut ok = 0;
    while let Some(res) = set.join_next().await {
        match res {
            Ok(Ok(())) => ok += 1,
            Ok(Err(f)) => *failures.entry(format!("refresh0:{f}")).or_insert(0) += 1,
            Err(_) => *failures.entry("refresh0:task-panicked".into()).or_insert(0) += 1,
        }
    }
    ok
}

/// Installs permissions and channels; returns each session with its framing.
async fn bind_all<L: Link + 'static>(
    sessions: Vec<Session<L>>,
    cfg: &TurnConfig,
    peer: Option<SocketAddr>,
    failures: &mut BTreeMap<String, u64>,
) -> Vec<(Session<L>, Framing)> {
    let relays: Vec<SocketAddr> = sessions.iter().map(|s| s.relayed).collect();
    let m = relays.len();
    let sem = Arc::new(Semaphore::new(cfg.window));
    let mut set = JoinSet::new();
    for (k, mut s) in sessions.into_iter().enumerate() {
        // Send to `next`; packets arrive from `prev` (both the echo peer when not c2c).
        let (next, prev) = match peer {
            Some(p) => (p, p),
            None => (relays[(k + 1) % m], relays[(k + m - 1) % m]),
        };
        let sem = sem.clone();
        let send = cfg.send;
        let size = cfg.size;
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let step = async {
                s.create_permission(next)
                    .await
                    .map_err(|f| format!("create-permission:{f}"))?;
                if prev != next {
                    s.create_permission(prev)
                        .await
                        .map_err(|f| format!("create-permission:{f}"))?;
                }
                if send {
                    return Ok(Framing::Send(client::send_indication_prefix(next, size)));
                }
                s.channel_bind(CHANNEL, next)
                    .await
                    .map_err(|f| format!("channel-bind:{f}"))?;
                if prev != next {
                    s.channel_bind(CHANNEL + 1, prev)
                        .await
                        .map_err(|f| format!("channel-bind:{f}"))?;
                }
                Ok::<_, String>(Framing::Channel(CHANNEL))
            };
            (step.await, s)
        });
    }
    let mut out = Vec::new();
    while let Some(res) = set.join_next().await {
        match res {
            Ok((Ok(framing), s)) => out.push((s, framing)),
            Ok((Err(e), _)) => *failures.entry(e).or_insert(0) += 1,
            Err(_) => *failures.entry("bind:task-panicked".into()).or_insert(0) += 1,
        }
    }
    out
}

/// The client runtime, and the echo peer unless clients relay to each other.
fn runtime_and_peer(
    cfg: &TurnConfig,
) -> Result<(tokio::runtime::Runtime, Option<EchoPeer>), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let peer = if cfg.c2c {
        None
    } else {
        Some(EchoPeer::start(cfg.peer_ip.unwrap_or(cfg.server.ip()))?)
    };
    Ok((rt, peer))
}

/// Runs a `turn` load and returns the report.
pub fn run(cfg: &TurnConfig) -> Result<TrafficReport, String> {
    if let Some(transport) = &cfg.transport {
        return run_stream(cfg, transport);
    }
    crate::modes::ensure_fds(cfg.clients as u64 * 2 + 64)?;
    let (rt, peer) = runtime_and_peer(cfg)?;
    let peer_addr = peer.as_ref().map(|p| p.addr);
    let creds = credentials(&cfg.secret, &cfg.user, cfg.clients, cfg.duration);
    if cfg.progress {
        eprintln!(
            "[turn] allocating {} clients on {}",
            cfg.clients, cfg.server
        );
    }
    let server = cfg.server;
    let allocated = rt.block_on(allocate_all(creds, cfg.window, None, || {
        client::connect(server)
    }));
    let mut failures = allocated.failures;
    let ok: Vec<Session> = allocated.sessions.into_iter().flatten().collect();
    let bound = if cfg.c2c && ok.len() < 2 {
        *failures
            .entry("c2c:fewer-than-2-allocations".into())
            .or_insert(0) += 1;
        Vec::new()
    } else {
        rt.block_on(bind_all(ok, cfg, peer_addr, &mut failures))
    };
    let mut flows = Vec::with_capacity(bound.len());
    let mut sessions = Vec::with_capacity(bound.len());
    for (index, (s, framing)) in bound.into_iter().enumerate() {
        // A duplicate of the same socket: the data path runs outside tokio, and the session
        // keeps its own handle for the deallocation at the end.
        let fd = s
            .sock
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("dup socket: {e}"))?;
        let sock = std::net::UdpSocket::from(fd);
        sock.set_nonblocking(true)
            .map_err(|e| format!("socket: {e}"))?;
        if cfg.clients <= 1000 {
            grow_buffers(&sock, 4 << 20);
        }
        flows.push(Flow {
            sock,
            index: index as u32,
            framing,
        });
        sessions.push(s);
    }
    let clients = flows.len();
    let spec = cfg.load_spec();
    let live = Arc::new(Live::default());
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = cfg
        .server_pid
        .and_then(|p| procfs::process_cpu_seconds(p).ok());
    let progress = cfg.progress.then(|| {
        let live = live.clone();
        let pid = cfg.server_pid;
        progress_line("turn", live, pid)
    });
    let udp_before = procfs::udp_buffer_errors().ok();
    let own_before = procfs::own_cpu_seconds().ok();
    let machine_before = procfs::MachineIdle::read().ok();
    let started = Instant::now();
    let result = if flows.is_empty() {
        datapath::WorkerResult::default()
    } else {
        datapath::run_workers(flows, cfg.threads, spec, live, stop.clone())?
    };
    // CPU is read after the drain too, so packets still in flight at the end are paid for.
    let cpu_after = cfg
        .server_pid
        .and_then(|p| procfs::process_cpu_seconds(p).ok());
    let wall = started.elapsed();
    let own_after = procfs::own_cpu_seconds().ok();
    let machine_after = procfs::MachineIdle::read().ok();
    let udp_after = procfs::udp_buffer_errors().ok();
    drop(progress);
    let peer_dropped = peer.map_or(0, |p| p.stop().1);
    rt.block_on(deallocate_all(sessions, cfg.window, &mut failures));
    let server_cpu_s = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    let mut report = traffic_report(cfg, clients, &result, server_cpu_s, wall);
    report.mode = "turn".into();
    report.server = cfg.server.to_string();
    report.framing = if cfg.send { "send" } else { "channel" }.into();
    report.setup = Some(allocated.summary);
    report.failures = failures;
    report.peer_dropped = peer_dropped;
    report.udp_rcvbuf_errors = udp_before
        .zip(udp_after)
        .map(|(b, a)| a.0.saturating_sub(b.0));
    report.loadtest_cpu_s = own_before.zip(own_after).map(|(b, a)| a - b);
    report.machine_cpu_s = machine_before
        .zip(machine_after)
        .map(|(b, a)| a.busy_since(&b));
    Ok(report)
}

/// [`run`] over TCP or TLS: the same allocation and binding on one stream per client,
/// then `stream::run` as the data path. Closing a stream deletes its allocation (RFC 8656
/// §3.1), so there is no Refresh at the end.
fn run_stream(cfg: &TurnConfig, transport: &Transport) -> Result<TrafficReport, String> {
    crate::modes::ensure_fds(cfg.clients as u64 + 64)?;
    let (rt, peer) = runtime_and_peer(cfg)?;
    let creds = credentials(&cfg.secret, &cfg.user, cfg.clients, cfg.duration);
    if cfg.progress {
        eprintln!(
            "[turn] allocating {} clients on {} over {}",
            cfg.clients,
            cfg.server,
            transport.name()
        );
    }
    let server = cfg.server;
    let allocated = rt.block_on(allocate_all(creds, cfg.window, None, || {
        let transport = transport.clone();
        async move { stream::connect(server, &transport).await }
    }));
    let mut failures = allocated.failures;
    let ok: Vec<Session<StreamLink>> = allocated.sessions.into_iter().flatten().collect();
    let bound = if cfg.c2c && ok.len() < 2 {
        *failures
            .entry("c2c:fewer-than-2-allocations".into())
            .or_insert(0) += 1;
        Vec::new()
    } else {
        rt.block_on(bind_all(
            ok,
            cfg,
            peer.as_ref().map(|p| p.addr),
            &mut failures,
        ))
    };
    let flows: Vec<(StreamLink, Framing)> = bound.into_iter().map(|(s, f)| (s.sock, f)).collect();
    let clients = flows.len();
    let spec = cfg.load_spec();
    let live = Arc::new(Live::default());
    let cpu_before = cfg
        .server_pid
        .and_then(|p| procfs::process_cpu_seconds(p).ok());
    let progress = cfg
        .progress
        .then(|| progress_line("turn", live.clone(), cfg.server_pid));
    let started = Instant::now();
    let result = rt.block_on(stream::run(flows, spec, live))?;
    let cpu_after = cfg
        .server_pid
        .and_then(|p| procfs::process_cpu_seconds(p).ok());
    let wall = started.elapsed();
    drop(progress);
    let peer_dropped = peer.map_or(0, |p| p.stop().1);
    let server_cpu_s = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    let mut report = traffic_report(cfg, clients, &result, server_cpu_s, wall);
    report.mode = format!("turn-{}", transport.name());
    report.server = cfg.server.to_string();
    report.framing = if cfg.send { "send" } else { "channel" }.into();
    report.setup = Some(allocated.summary);
    report.failures = failures;
    report.peer_dropped = peer_dropped;
    Ok(report)
}

/// The numbers common to every packet run.
pub fn traffic_report(
    cfg: &TurnConfig,
    clients: usize,
    r: &datapath::WorkerResult,
    server_cpu_s: Option<f64>,
    wall: Duration,
) -> TrafficReport {
    let secs = cfg.duration.as_secs_f64();
    let relayed = 2.0 * r.received as f64;
    TrafficReport {
        topology: if cfg.c2c { "c2c" } else { "peer" }.into(),
        clients,
        rate_per_client: cfg.rate,
        size: cfg.size,
        duration_s: secs,
        sent: r.sent,
        received: r.received,
        send_blocked: r.send_blocked,
        malformed: r.malformed,
        io_errors: r.io_errors,
        offered_pps: r.sent as f64 / secs,
        received_pps: r.received as f64 / secs,
        relayed_pps: relayed / secs,
        loss_pct: if r.sent == 0 {
            0.0
        } else {
            100.0 * r.sent.saturating_sub(r.received) as f64 / r.sent as f64
        },
        latency_ms: r.latency_us.summary(1e-3),
        server_cpu_s,
        server_cpu_pct: server_cpu_s.map(|c| 100.0 * c / wall.as_secs_f64().max(1e-9)),
        relayed_per_server_cpu_s: server_cpu_s.filter(|c| *c > 0.0).map(|c| relayed / c),
        ..TrafficReport::default()
    }
}

/// The once-a-second progress line of packet runs.
pub fn progress_line(label: &'static str, live: Arc<Live>, pid: Option<u32>) -> Progress {
    let state = std::sync::Mutex::new((
        0u64,
        0u64,
        pid.and_then(|p| procfs::process_cpu_seconds(p).ok()),
    ));
    Progress::start(move |t| {
        let sent = live.sent.load(Ordering::Relaxed);
        let recv = live.received.load(Ordering::Relaxed);
        let cpu = pid.and_then(|p| procfs::process_cpu_seconds(p).ok());
        let Ok(mut prev) = state.lock() else {
            return format!("[{label}] {:>4.0}s", t.as_secs_f64());
        };
        let cpu_txt = match (cpu, prev.2) {
            (Some(now), Some(before)) => format!(" server cpu {:>3.0}%", (now - before) * 100.0),
            _ => String::new(),
        };
        let line = format!(
            "[{label}] {:>4.0}s sent {:>8}/s recv {:>8}/s total sent {} recv {}{cpu_txt}",
            t.as_secs_f64(),
            sent - prev.0,
            recv.saturating_sub(prev.1),
            sent,
            recv
        );
        *prev = (sent, recv, cpu);
        line
    })
}
