//! `forward` mode: the machine's limit. A bare UDP forwarder (no TURN, no parsing) runs
//! in a thread of its own and relays like a TURN server does: each client's packets go
//! out of a per-client relay socket to the echo peer, and replies go back through the
//! listener. Same batching as loadtest (recvmmsg/sendmmsg), same load generator. Its CPU
//! is that thread's, read from /proc/self/task.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::args::Args;
use crate::batch::{RecvBatch, SendBatch, grow_buffers};
use crate::datapath::{self, BATCH, Flow, Framing, Live, LoadSpec};
use crate::modes::turn::{TurnConfig, progress_line, traffic_report};
use crate::peer::EchoPeer;
use crate::procfs;
use crate::report::TrafficReport;

/// Relay sockets the forwarder creates at most (one per client address).
const MAX_RELAYS: usize = 20_000;
const LISTENER: u64 = u64::MAX;

/// Flags of `forward` mode, for `--help`.
pub const HELP: &str = "\
loadtest forward [--clients 10] [--rate 50] [--size 100] [--duration 10s] [--drain 1s]
                 [--threads 1] [--inflight 256] [--json FILE]
  Same load as turn mode through an in-process bare UDP forwarder (no server needed).";

/// A running forwarder.
pub struct Forwarder {
    /// Where clients send.
    pub addr: SocketAddr,
    tid: Arc<AtomicI32>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<(), String>>>,
}

impl Forwarder {
    /// Starts forwarding from a loopback listener to `peer`.
    pub fn start(peer: SocketAddr) -> Result<Self, String> {
        let ip = peer.ip();
        let listener =
            UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(|e| format!("forwarder bind: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("forwarder socket: {e}"))?;
        grow_buffers(&listener, 8 << 20);
        let addr = listener
            .local_addr()
            .map_err(|e| format!("forwarder addr: {e}"))?;
        let tid = Arc::new(AtomicI32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (tid.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("forwarder".into())
            .spawn(move || {
                t.store(procfs::current_tid(), Ordering::Release);
                forward_loop(&listener, peer, &s)
            })
            .map_err(|e| format!("forwarder thread: {e}"))?;
        // The thread publishes its id first thing; wait (bounded) so CPU can be read.
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        while tid.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(Self {
            addr,
            tid,
            stop,
            handle: Some(handle),
        })
    }

    /// CPU seconds the forwarder thread has used.
    pub fn cpu_seconds(&self) -> Option<f64> {
        procfs::thread_cpu_seconds(self.tid.load(Ordering::Acquire)).ok()
    }

    /// Stops the thread and reports its error, if any.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("forwarder thread panicked".into()),
            None => Ok(()),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn forward_loop(listener: &UdpSocket, peer: SocketAddr, stop: &AtomicBool) -> Result<(), String> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
    epoll
        .add(
            listener.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, LISTENER),
        )
        .map_err(|e| format!("epoll add: {e}"))?;
    let mut relays: Vec<(UdpSocket, SocketAddr)> = Vec::new();
    let mut by_client: HashMap<SocketAddr, usize> = HashMap::new();
    let mut recv = RecvBatch::new(BATCH);
    let mut send = SendBatch::new(BATCH);
    let mut events = vec![EpollEvent::empty(); 64];
    let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut dests: Vec<Option<SocketAddr>> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        let n = match epoll.wait(&mut events, EpollTimeout::from(50u8)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(format!("epoll wait: {e}")),
        };
        for ev in &events[..n] {
            let token = ev.data();
            for _ in 0..8 {
                let sock = if token == LISTENER {
                    listener
                } else {
                    match relays.get(token as usize) {
                        Some((s, _)) => s,
                        None => break,
                    }
                };
                let got = recv.recv(sock).unwrap_or(0);
                if got == 0 {
                    break;
                }
                if token == LISTENER {
                    // Client → peer, each through the client's own relay socket.
                    for i in 0..got {
                        let Some((data, Some(from))) = recv.get(i) else {
                            continue;
                        };
                        let idx = match by_client.get(&from) {
                            Some(&idx) => idx,
                            None if relays.len() < MAX_RELAYS => {
                                let r = UdpSocket::bind(SocketAddr::new(peer.ip(), 0))
                                    .and_then(|r| r.connect(peer).map(|()| r))
                                    .and_then(|r| r.set_nonblocking(true).map(|()| r))
                                    .map_err(|e| format!("relay socket: {e}"))?;
                                grow_buffers(&r, 1 << 20);
                                let idx = relays.len();
                                epoll
                                    .add(
                                        r.as_fd(),
                                        EpollEvent::new(EpollFlags::EPOLLIN, idx as u64),
                                    )
                                    .map_err(|e| format!("epoll add: {e}"))?;
                                relays.push((r, from));
                                by_client.insert(from, idx);
                                idx
                            }
                            None => continue,
                        };
                        let _ = send.send(&relays[idx].0, &[data], &[None]);
                    }
                } else {
                    // Peer → client, one sendmmsg through the listener.
                    let client = relays[token as usize].1;
                    bufs.clear();
                    dests.clear();
                    for i in 0..got {
                        if let Some((data, _)) = recv.get(i) {
                            bufs.push(data.to_vec());
                            dests.push(Some(client));
                        }
                    }
                    let refs: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
                    let _ = send.send(listener, &refs, &dests);
                }
                if got < BATCH {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Runs the forwarder baseline with a turn-like load; reuses [`TurnConfig`] (its server
/// and secret are unused).
pub fn run(cfg: &TurnConfig) -> Result<TrafficReport, String> {
    crate::modes::ensure_fds(cfg.clients as u64 * 3 + 64)?;
    let ip = cfg.server.ip();
    let peer = EchoPeer::start(ip)?;
    let fwd = Forwarder::start(peer.addr)?;
    let mut flows = Vec::with_capacity(cfg.clients);
    for index in 0..cfg.clients {
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0))
            .and_then(|s| s.connect(fwd.addr).map(|()| s))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("client socket: {e}"))?;
        if cfg.clients <= 1000 {
            grow_buffers(&sock, 4 << 20);
        }
        flows.push(Flow {
            sock,
            index: index as u32,
            framing: Framing::Raw,
        });
    }
    let spec = LoadSpec {
        rate: cfg.rate,
        size: cfg.size,
        duration: cfg.duration,
        drain: cfg.drain,
        inflight: cfg.inflight,
    };
    let live = Arc::new(Live::default());
    let stop = Arc::new(AtomicBool::new(false));
    let progress = cfg
        .progress
        .then(|| progress_line("forward", live.clone(), None));
    let cpu_before = fwd.cpu_seconds();
    let udp_before = procfs::udp_buffer_errors().ok();
    let started = Instant::now();
    let result = datapath::run_workers(flows, cfg.threads, spec, live, stop)?;
    let cpu_after = fwd.cpu_seconds();
    let wall = started.elapsed();
    let udp_after = procfs::udp_buffer_errors().ok();
    drop(progress);
    let peer_dropped = peer.stop().1;
    fwd.stop()?;
    let cpu = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    let mut report = traffic_report(cfg, cfg.clients, &result, cpu, wall);
    report.mode = "forward".into();
    report.server = "in-process bare UDP forwarder".into();
    report.framing = "raw".into();
    report.peer_dropped = peer_dropped;
    report.udp_rcvbuf_errors = udp_before
        .zip(udp_after)
        .map(|(b, a)| a.0.saturating_sub(b.0));
    Ok(report)
}

/// Reads `forward` mode's flags into a [`TurnConfig`].
pub fn config_from_args(a: &Args) -> Result<TurnConfig, String> {
    let cfg = TurnConfig {
        server: "127.0.0.1:0".parse().map_err(|_| "address")?,
        secret: String::new(),
        user: String::new(),
        clients: a.get("clients", 10)?,
        rate: a.get("rate", 50)?,
        size: a.get("size", 100)?,
        duration: crate::args::parse_duration(&a.get("duration", "10s".to_string())?)?,
        drain: crate::args::parse_duration(&a.get("drain", "1s".to_string())?)?,
        send: false,
        c2c: false,
        threads: a.get("threads", 1)?,
        inflight: a.get("inflight", 256)?,
        window: 64,
        server_pid: None,
        progress: true,
        transport: None,
        peer_ip: None,
    };
    cfg.validate()?;
    Ok(cfg)
}
