//! Starts a shard on a current-thread runtime and runs it until shutdown or the end of a
//! drain; serves metrics and applies reloads on the same thread, so the core is never
//! shared or locked.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;
use tokio::task::LocalSet;

use super::relay::{RelayRange, RelaySockets};
use super::shard::Shard;
use super::stream::{self, TlsState};
use super::tls::TlsFiles;
use super::udp;
use crate::metrics::http::{self, Render};
use crate::metrics::lifetimes::LifetimeTracker;
use crate::metrics::report::{self, DriverCounters, ReportOptions};
use crate::proto::{Server, ServerConfig};

/// Client sockets, bound before the runtime starts so errors reach `main`.
pub struct Listeners {
    udp: Vec<(SocketAddr, StdUdpSocket)>,
    tcp: Vec<(SocketAddr, StdTcpListener)>,
    proxied: Vec<(SocketAddr, StdTcpListener)>,
}

impl Listeners {
    /// Binds a UDP socket per `udp` address, a TCP listener per `tcp` address, and a TCP
    /// listener expecting PROXY protocol headers per `proxied` address (`tcp-proxy-port`).
    pub fn bind(
        udp: &[SocketAddr],
        tcp: &[SocketAddr],
        proxied: &[SocketAddr],
    ) -> io::Result<Self> {
        let mut listeners = Self {
            udp: Vec::new(),
            tcp: Vec::new(),
            proxied: Vec::new(),
        };
        for &address in proxied {
            let listener = stream::bind_listener(address, "tcp")?;
            listeners.proxied.push((listener.local_addr()?, listener));
        }
        for &address in udp {
            let socket = udp::bind_listener(address)?;
            listeners.udp.push((socket.local_addr()?, socket));
        }
        for &address in tcp {
            let listener = stream::bind_listener(address, "tcp")?;
            listeners.tcp.push((listener.local_addr()?, listener));
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
}

/// Re-reads the configuration; None when it is unusable (the reason is logged).
pub type Reload = Box<dyn FnMut() -> Option<Reloaded>>;

/// Operator controls around the relay: metrics, reload and drain.
pub struct Operations {
    /// `prometheus`: the exporter's listener.
    pub metrics: Option<MetricsListener>,
    /// Called on SIGHUP.
    pub reload: Reload,
    /// `drain-timeout` at start: how long SIGUSR1 waits for allocations to end.
    pub drain_timeout: Option<Duration>,
}

/// Runs the shard until `shutdown` completes or a drain (SIGUSR1) finishes, then ends
/// every allocation left.
pub fn run(
    server: Server,
    listeners: Listeners,
    relay: RelayRange,
    tls: Option<Tls>,
    operations: Operations,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();
    local.block_on(&runtime, async move {
        let mut udp_sockets = Vec::with_capacity(listeners.udp.len());
        for (address, socket) in listeners.udp {
            udp_sockets.push((address, Rc::new(UdpSocket::from_std(socket)?)));
        }
        let shard = Rc::new(Shard::new(server, RelaySockets::new(relay), udp_sockets));
        for index in 0..shard.udp.len() {
            tokio::task::spawn_local(udp::client_loop(shard.clone(), index));
        }
        let tls_state: TlsState = Rc::new(RefCell::new(tls.as_ref().map(|tls| tls.config.clone())));
        let tcp = listeners.tcp.into_iter().map(|(_, l)| (l, false));
        let proxied = listeners.proxied.into_iter().map(|(_, l)| (l, true));
        for (listener, proxy) in tcp.chain(proxied) {
            let listener = TcpListener::from_std(listener)?;
            tokio::task::spawn_local(stream::accept_loop(
                shard.clone(),
                listener,
                tls_state.clone(),
                proxy,
            ));
        }
        let lifetimes = Rc::new(RefCell::new(LifetimeTracker::new()));
        if let Some(metrics) = operations.metrics {
            let listener = TcpListener::from_std(metrics.listener)?;
            let render = scrape(shard.clone(), lifetimes.clone(), metrics.username_labels);
            tokio::task::spawn_local(http::serve(listener, metrics.path.into(), render));
        }
        let drain = Rc::new(Drain {
            started: Notify::new(),
            timeout: Cell::new(operations.drain_timeout),
        });
        let signals = tokio::task::spawn_local(signal_loop(
            shard.clone(),
            operations.reload,
            tls.map(|tls| (tls.files, tls_state)),
            drain.clone(),
        ));
        let timer = tokio::task::spawn_local(timer_loop(shard.clone(), lifetimes));
        tokio::select! {
            () = shutdown => {}
            () = drained(&shard, &drain) => {}
        }
        timer.abort();
        signals.abort();
        let mut relays = shard.relays.borrow_mut();
        let mut server = shard.server.borrow_mut();
        let live = server.allocation_count();
        server.close_all(&mut *relays);
        tracing::info!(allocations = live, "shut down");
        Ok(())
    })
}

/// A metrics document from the shard's current state.
fn scrape(
    shard: Rc<Shard>,
    lifetimes: Rc<RefCell<LifetimeTracker>>,
    username_labels: bool,
) -> Render {
    Rc::new(move || {
        let now = Instant::now();
        let server = shard.server.borrow();
        let mut lifetimes = lifetimes.borrow_mut();
        lifetimes.observe(
            now,
            server.allocations().map(|(id, _)| id),
            server.stats().allocations_ended,
        );
        let driver = DriverCounters {
            send_failures: shard.send_drops.get(),
        };
        report::render(
            &server,
            now,
            driver,
            lifetimes.histogram(),
            ReportOptions { username_labels },
        )
    })
}

async fn timer_loop(shard: Rc<Shard>, lifetimes: Rc<RefCell<LifetimeTracker>>) {
    loop {
        let deadline = shard.server.borrow().poll_timeout();
        tokio::time::sleep_until(deadline.into()).await;
        let now = Instant::now();
        let mut relays = shard.relays.borrow_mut();
        let mut server = shard.server.borrow_mut();
        server.handle_timeout(now, unix_now(), &mut *relays);
        lifetimes.borrow_mut().observe(
            now,
            server.allocations().map(|(id, _)| id),
            server.stats().allocations_ended,
        );
    }
}

/// SIGUSR1 state: set once, and the timeout in force.
struct Drain {
    started: Notify,
    timeout: Cell<Option<Duration>>,
}

/// How often a drain checks whether the last allocation ended.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// Completes when a drain started by SIGUSR1 is over: no allocation left, or
/// `drain-timeout` elapsed (none: wait for the last allocation).
async fn drained(shard: &Rc<Shard>, drain: &Drain) {
    drain.started.notified().await;
    let started = Instant::now();
    let timeout = drain.timeout.get();
    loop {
        let live = shard.server.borrow().allocation_count();
        if live == 0 {
            tracing::info!("drain: last allocation ended; exiting");
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
    shard: Rc<Shard>,
    mut reload: Reload,
    mut tls: Option<(TlsFiles, TlsState)>,
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
    loop {
        tokio::select! {
            _ = hup.recv() => {
                if let Some(reloaded) = reload() {
                    apply(&shard, reloaded, &mut tls, &drain);
                }
                if let Some((files, state)) = &tls {
                    reload_tls(files, state);
                }
            }
            _ = usr2.recv() => {
                if let Some((files, state)) = &tls {
                    reload_tls(files, state);
                }
            }
            _ = usr1.recv() => {
                if !shard.server.borrow().is_draining() {
                    shard.server.borrow_mut().set_draining(true);
                    let allocations = shard.server.borrow().allocation_count();
                    let timeout = drain.timeout.get().map(|t| t.as_secs());
                    tracing::info!(allocations, ?timeout, "SIGUSR1: draining; new allocations refused");
                    drain.started.notify_one();
                }
            }
        }
    }
}

fn apply(shard: &Shard, reloaded: Reloaded, tls: &mut Option<(TlsFiles, TlsState)>, drain: &Drain) {
    let changed = shard
        .server
        .borrow_mut()
        .reconfigure(reloaded.core, Instant::now());
    drain.timeout.set(reloaded.drain_timeout);
    if let (Some((files, _)), Some(new)) = (tls.as_mut(), reloaded.tls) {
        *files = new;
    }
    tracing::info!(
        permissions_removed = changed.permissions_removed,
        channels_removed = changed.channels_removed,
        credentials_retired = changed.credentials_retired,
        "configuration reloaded"
    );
}

fn reload_tls(files: &TlsFiles, state: &TlsState) {
    match files.load() {
        Ok(config) => {
            *state.borrow_mut() = Some(config);
            tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
        }
        Err(error) => {
            tracing::error!(%error, "TLS certificate reload failed; keeping the old one")
        }
    }
}

/// Seconds since the Unix epoch; TURN REST expiry is wall-clock time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
