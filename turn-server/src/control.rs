//! Starts the shards, one thread each, and runs the control thread until shutdown or the
//! end of a drain: signals, reloads, drain and metrics reach the shards as commands, so
//! a core is never shared or locked.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtc_auth::ip_range::IpRangeSet;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, Sender, UnboundedReceiver};
use tokio::sync::{Notify, oneshot};
use tokio::task::LocalSet;

use crate::clock::unix_now;
use crate::io::admission::Admission;
use crate::io::relay::RelayRange;
use crate::io::tls::TlsFiles;
use crate::io::{tcp, udp};
use crate::metrics::http::{self, Render};
use crate::metrics::report::{self, ProgramStats, ReportOptions, Snapshot};
use crate::shard::command::{self, Command};
use crate::shard::thread::{self, Setup, Streams};
use shared_limits::SharedLimits;
use shared_quotas::SharedQuotas;
use turn_offload::{Attachment, FastPath};
use turn_proto::hash::SeededState;
use turn_proto::server::Reconfigured;
use turn_proto::{Server, ServerConfig, ShardContext};

/// Client sockets, bound before the runtime starts so errors reach `main`.
pub struct Listeners {
    /// Per address, one socket per shard (SO_REUSEPORT: the kernel spreads clients).
    udp: Vec<(SocketAddr, Vec<StdUdpSocket>)>,
    tcp: Vec<(SocketAddr, Vec<StdTcpListener>)>,
    proxied: Vec<(SocketAddr, Vec<StdTcpListener>)>,
    /// Who may connect to `proxied` (`tcp-proxy-trusted-ip`).
    proxy_sources: IpRangeSet,
    /// Caps and timeouts for TCP and TLS clients.
    clients: ClientLimits,
    /// Shards, each with its socket of every address above.
    shards: usize,
}

/// Caps and timeouts for TCP and TLS client connections, all shards together.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// `max-tcp-clients` (0 = unlimited).
    pub total: u32,
    /// `max-tcp-clients-per-ip` (0 = unlimited).
    pub per_source: u32,
    /// `max-allocate-timeout`.
    pub max_allocate_timeout: Duration,
}

impl Listeners {
    /// Binds, per shard: a UDP socket per `udp` address with `udp_buffer` bytes of kernel
    /// buffer each way, a TCP listener per `tcp` address, and a TCP listener expecting
    /// PROXY protocol headers per `proxied` address (`tcp-proxy-port`), which serves only
    /// connections from `proxy_sources`; `clients` bounds the TCP and TLS clients. All
    /// are bound to the interface `device` when set (`listening-device`).
    pub fn bind(
        udp: &[SocketAddr],
        tcp: &[SocketAddr],
        (proxied, proxy_sources): (&[SocketAddr], IpRangeSet),
        (shards, udp_buffer): (usize, usize),
        clients: ClientLimits,
        device: Option<&str>,
    ) -> io::Result<Self> {
        let shards = shards.max(1);
        let mut listeners = Self {
            udp: Vec::new(),
            tcp: Vec::new(),
            proxied: Vec::new(),
            proxy_sources,
            clients,
            shards,
        };
        for &address in proxied {
            let sockets = tcp::bind_listeners(address, shards, "tcp", device)?;
            listeners.proxied.push((sockets[0].local_addr()?, sockets));
        }
        for &address in udp {
            let sockets = udp::bind_listeners(address, shards, udp_buffer, device)?;
            listeners.udp.push((sockets[0].local_addr()?, sockets));
        }
        for &address in tcp {
            let sockets = tcp::bind_listeners(address, shards, "tcp", device)?;
            listeners.tcp.push((sockets[0].local_addr()?, sockets));
        }
        Ok(listeners)
    }

    /// Bound UDP addresses.
    pub fn udp_addresses(&self) -> Vec<SocketAddr> {
        self.udp.iter().map(|(address, _)| *address).collect()
    }

    /// Bound TCP addresses.
    pub fn tcp_addresses(&self) -> Vec<SocketAddr> {
        self.tcp.iter().map(|(address, _)| *address).collect()
    }

    /// Bound TCP addresses that expect a PROXY protocol header.
    pub fn proxied_addresses(&self) -> Vec<SocketAddr> {
        self.proxied.iter().map(|(address, _)| *address).collect()
    }
}

/// TLS as configured: the files, to reload them on SIGUSR2/SIGHUP, and the first load.
pub struct Tls {
    /// Where the certificate and key are.
    pub files: TlsFiles,
    /// The configuration loaded at start.
    pub config: Arc<rustls::ServerConfig>,
}

/// The Prometheus exporter, bound by `main`.
pub struct MetricsListener {
    /// Bound to `prometheus-address`:`prometheus-port`.
    pub listener: StdTcpListener,
    /// `prometheus-path`.
    pub path: String,
    /// `prometheus-username-labels`.
    pub username_labels: bool,
}

/// A configuration re-read on SIGHUP, already checked and translated by `main`.
pub struct Reloaded {
    /// The core's new settings.
    pub core: ServerConfig,
    /// `cert`/`pkey` as the new file names them (both found); None keeps the old files.
    pub tls: Option<TlsFiles>,
    /// `drain-timeout` for a later SIGUSR1.
    pub drain_timeout: Option<Duration>,
    /// `drain-min-allocations` for a later SIGUSR1.
    pub drain_min_allocations: usize,
}

/// Re-reads the configuration; None when it is unusable (the reason is logged).
pub type Reload = Box<dyn FnMut() -> Option<Reloaded>>;

/// Operator controls around the relay: metrics, reload and drain.
pub struct Operations {
    /// `prometheus`: the exporter's listener.
    pub metrics: Option<MetricsListener>,
    /// Called on SIGHUP, on the control thread.
    pub reload: Reload,
    /// `drain-timeout` at start: how long SIGUSR1 waits for allocations to end.
    pub drain_timeout: Option<Duration>,
    /// `drain-min-allocations` at start: SIGUSR1 exits once this many are left.
    pub drain_min_allocations: usize,
}

/// Runs `shards` shards (the number of UDP sockets per address in `listeners`) until
/// `shutdown` completes or a drain (SIGUSR1) finishes, then ends every allocation left.
/// `fast_path`, when `kernel-offload` loaded it, is split into one share per shard (see
/// `shard::offload`); the control thread keeps the attachment and detaches the program
/// once the shards have ended.
pub fn run(
    core: ServerConfig,
    listeners: Listeners,
    relay: RelayRange,
    tls: Option<Tls>,
    operations: Operations,
    fast_path: Option<FastPath>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let contexts = ShardContext::group(
        shard_count(listeners.shards),
        rand::random(),
        Instant::now(),
    );
    let (attachment, shares) = match fast_path {
        Some(fast) => {
            let (attachment, shares) = fast.split(contexts.len()).map_err(io::Error::other)?;
            (Some(Rc::new(attachment)), shares)
        }
        None => (None, Vec::new()),
    };
    let mut shares = shares.into_iter();
    let (queues, receivers): (Vec<_>, Vec<_>) = contexts
        .iter()
        .map(|_| mpsc::channel::<Command>(command::QUEUE))
        .unzip();
    let mut udp: Vec<Vec<(SocketAddr, StdUdpSocket)>> =
        contexts.iter().map(|_| Vec::new()).collect();
    for (address, sockets) in listeners.udp {
        for (index, socket) in sockets.into_iter().enumerate() {
            udp[index].push((address, socket));
        }
    }
    let admission = Admission::new(listeners.clients.total, listeners.clients.per_source);
    let mut streams: Vec<Streams> = contexts
        .iter()
        .map(|_| Streams {
            tcp: Vec::new(),
            proxied: Vec::new(),
            proxy_sources: listeners.proxy_sources.clone(),
            tls: tls.as_ref().map(|tls| tls.config.clone()),
            admission: admission.clone(),
            max_allocate_timeout: listeners.clients.max_allocate_timeout,
        })
        .collect();
    for (_, sockets) in listeners.tcp {
        for (index, socket) in sockets.into_iter().enumerate() {
            streams[index].tcp.push(socket);
        }
    }
    for (_, sockets) in listeners.proxied {
        for (index, socket) in sockets.into_iter().enumerate() {
            streams[index].proxied.push(socket);
        }
    }
    let mut streams = streams.into_iter();
    let (exited, mut exits) = mpsc::unbounded_channel();
    let quotas = SharedQuotas::default();
    let limits = SharedLimits::new(
        core.challenge_rate,
        Instant::now(),
        SeededState::new(&mut rand::rng()),
    );
    let mut threads = Vec::with_capacity(contexts.len());
    for ((context, commands), udp) in contexts.into_iter().zip(receivers).zip(udp) {
        let index = context.index;
        let setup = Setup {
            server: Server::new_shard(
                core.clone(),
                Instant::now(),
                unix_now(),
                rand::random(),
                context,
                Box::new(quotas.clone()),
                Box::new(limits.clone()),
            ),
            udp,
            streams: streams
                .next()
                .ok_or_else(|| io::Error::other("fewer stream setups than shards"))?,
            relay: relay.clone(),
            commands,
            shards: queues.clone(),
            offload: shares.next(),
        };
        let exited = ExitNotice {
            index,
            exited: exited.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || {
                let _exited = exited;
                thread::run(setup)
            })?;
        threads.push(thread);
    }
    tracing::info!(shards = threads.len(), "relay threads started");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();
    let result = local.block_on(&runtime, async {
        control(
            &queues,
            &mut exits,
            tls,
            operations,
            attachment.clone(),
            shutdown,
        )
        .await
    });
    for queue in &queues {
        // Waits behind queued input; fails only when the shard already stopped.
        let _ = queue.blocking_send(Command::Shutdown);
    }
    drop(queues);
    let live = join(threads);
    // The shards removed their routes; the program goes with the last handle (the scrape
    // task's, when the LocalSet drops).
    drop(attachment);
    tracing::info!(allocations = live, "shut down");
    result
}

/// Shards as the core counts them (tickets carry the index in one byte).
fn shard_count(count: usize) -> u8 {
    u8::try_from(count.clamp(1, MAX_SHARDS)).unwrap_or(1)
}

/// The most shards a process runs (`relay-threads` above it is capped).
pub const MAX_SHARDS: usize = 128;

/// Tells the control thread that a shard's thread ended, however it ended.
struct ExitNotice {
    index: u8,
    exited: mpsc::UnboundedSender<u8>,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let _ = self.exited.send(self.index);
    }
}

/// Waits for every shard thread; returns the allocations they ended at shutdown.
fn join(threads: Vec<JoinHandle<io::Result<usize>>>) -> usize {
    let mut live = 0;
    for thread in threads {
        match thread.join() {
            Ok(Ok(count)) => live += count,
            Ok(Err(error)) => tracing::error!(%error, "relay thread failed"),
            Err(_) => tracing::error!("relay thread panicked"),
        }
    }
    live
}

/// The control thread's work; returns when the server should stop.
async fn control(
    queues: &[Sender<Command>],
    exits: &mut UnboundedReceiver<u8>,
    tls: Option<Tls>,
    operations: Operations,
    attachment: Option<Rc<Attachment>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let shards: Rc<[Sender<Command>]> = queues.into();
    if let Some(metrics) = operations.metrics {
        let listener = TcpListener::from_std(metrics.listener)?;
        let render = scrape(shards.clone(), metrics.username_labels, attachment);
        tokio::task::spawn_local(http::serve(listener, metrics.path.into(), render));
    }
    let drain = Rc::new(Drain {
        started: Notify::new(),
        timeout: Cell::new(operations.drain_timeout),
        min_allocations: Cell::new(operations.drain_min_allocations),
    });
    let signals = tokio::task::spawn_local(signal_loop(
        shards.clone(),
        operations.reload,
        tls.map(|tls| tls.files),
        drain.clone(),
    ));
    let result = tokio::select! {
        () = shutdown => Ok(()),
        () = drained(&shards, &drain) => Ok(()),
        Some(index) = exits.recv() => Err(io::Error::other(format!("relay thread {index} stopped"))),
    };
    signals.abort();
    result
}

/// Sends `command` to every shard and collects the replies of those still running.
async fn ask_all<T>(
    shards: &[Sender<Command>],
    command: impl Fn(oneshot::Sender<T>) -> Command,
) -> Vec<T> {
    let mut pending = Vec::with_capacity(shards.len());
    for shard in shards {
        let (reply, answer) = oneshot::channel();
        if shard.send(command(reply)).await.is_ok() {
            pending.push(answer);
        }
    }
    let mut answers = Vec::with_capacity(pending.len());
    for answer in pending {
        if let Ok(value) = answer.await {
            answers.push(value);
        }
    }
    answers
}

/// A metrics document from every shard's current state, and the fast path program's.
fn scrape(
    shards: Rc<[Sender<Command>]>,
    username_labels: bool,
    attachment: Option<Rc<Attachment>>,
) -> Render {
    Rc::new(move || {
        let shards = shards.clone();
        let attachment = attachment.clone();
        Box::pin(async move {
            let options = ReportOptions { username_labels };
            let snapshots = ask_all(&shards, |reply| Command::Snapshot { options, reply }).await;
            let mut total = Snapshot::default();
            for snapshot in &snapshots {
                total.merge(snapshot);
            }
            if let Some(stats) = attachment.as_ref().and_then(|a| a.run_stats().ok()) {
                total.set_program(ProgramStats {
                    run_time: stats.run_time,
                    runs: stats.runs,
                });
            }
            report::render(&total, options)
        })
    })
}

/// SIGUSR1 state: set once, and the timeout and allocation floor in force.
struct Drain {
    started: Notify,
    timeout: Cell<Option<Duration>>,
    min_allocations: Cell<usize>,
}

/// How often a drain checks whether the last allocation ended.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// Live allocations over all shards.
async fn live_allocations(shards: &[Sender<Command>]) -> usize {
    ask_all(shards, Command::Count).await.into_iter().sum()
}

/// Completes when a drain started by SIGUSR1 is over: no more than
/// `drain-min-allocations` left (0: none), or `drain-timeout` elapsed (none: wait).
async fn drained(shards: &[Sender<Command>], drain: &Drain) {
    drain.started.notified().await;
    let started = Instant::now();
    let timeout = drain.timeout.get();
    let floor = drain.min_allocations.get();
    loop {
        let live = live_allocations(shards).await;
        if live <= floor {
            tracing::info!(
                allocations = live,
                drain_min_allocations = floor,
                "drain: allocations down to the floor; exiting"
            );
            return;
        }
        if let Some(timeout) = timeout
            && started.elapsed() >= timeout
        {
            tracing::info!(
                allocations = live,
                "drain: timeout; ending the remaining allocations"
            );
            return;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// SIGHUP: reload the configuration, then the certificate. SIGUSR2 (coturn's signal):
/// reload the certificate only; new TLS connections use it, existing ones keep theirs,
/// and a bad file keeps the old one. SIGUSR1 (coturn's signal): drain.
async fn signal_loop(
    shards: Rc<[Sender<Command>]>,
    mut reload: Reload,
    mut tls: Option<TlsFiles>,
    drain: Rc<Drain>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::warn!(
            "cannot install SIGHUP/SIGUSR1/SIGUSR2 handlers: reload and drain need a restart"
        );
        return;
    };
    let mut draining = false;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                if let Some(reloaded) = reload() {
                    apply(&shards, reloaded, &mut tls, &drain).await;
                }
                if let Some(files) = &tls {
                    reload_tls(files, &shards).await;
                }
            }
            _ = usr2.recv() => {
                if let Some(files) = &tls {
                    reload_tls(files, &shards).await;
                }
            }
            _ = usr1.recv() => {
                if !draining {
                    draining = true;
                    for shard in shards.iter() {
                        let _ = shard.send(Command::Drain).await;
                    }
                    let allocations = live_allocations(&shards).await;
                    let timeout = drain.timeout.get().map(|t| t.as_secs());
                    tracing::info!(allocations, ?timeout, "SIGUSR1: draining; new allocations refused");
                    drain.started.notify_one();
                }
            }
        }
    }
}

async fn apply(
    shards: &[Sender<Command>],
    reloaded: Reloaded,
    tls: &mut Option<TlsFiles>,
    drain: &Drain,
) {
    let core = reloaded.core;
    let answers = ask_all(shards, |reply| Command::Reconfigure {
        config: Box::new(core.clone()),
        reply,
    })
    .await;
    let mut changed = Reconfigured::default();
    for answer in &answers {
        changed.merge(answer);
    }
    drain.timeout.set(reloaded.drain_timeout);
    drain.min_allocations.set(reloaded.drain_min_allocations);
    if let (Some(files), Some(new)) = (tls.as_mut(), reloaded.tls) {
        *files = new;
    }
    tracing::info!(
        permissions_removed = changed.permissions_removed,
        channels_removed = changed.channels_removed,
        credentials_retired = changed.credentials_retired,
        "configuration reloaded"
    );
}

/// Loads the certificate files and hands the result to every shard.
async fn reload_tls(files: &TlsFiles, shards: &[Sender<Command>]) {
    match files.load() {
        Ok(config) => {
            for shard in shards {
                let _ = shard.send(Command::Tls(config.clone())).await;
            }
            tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
        }
        Err(error) => {
            tracing::error!(%error, "TLS certificate reload failed; keeping the old one")
        }
    }
}
mod shared_limits;
mod shared_quotas;
