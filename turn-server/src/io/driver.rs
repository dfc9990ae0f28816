//! Starts a shard on a current-thread runtime and runs it until shutdown.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::LocalSet;

use super::relay::{RelayRange, RelaySockets};
use super::shard::Shard;
use super::stream::{self, TlsState};
use super::tls::TlsFiles;
use super::udp;
use crate::proto::Server;

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
            let listener = stream::bind_listener(address)?;
            listeners.proxied.push((listener.local_addr()?, listener));
        }
        for &address in udp {
            let socket = udp::bind_listener(address)?;
            listeners.udp.push((socket.local_addr()?, socket));
        }
        for &address in tcp {
            let listener = stream::bind_listener(address)?;
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

/// Runs the shard until `shutdown` completes, then ends every allocation.
pub fn run(
    server: Server,
    listeners: Listeners,
    relay: RelayRange,
    tls: Option<Tls>,
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
        let tls_state: TlsState = Rc::new(std::cell::RefCell::new(
            tls.as_ref().map(|tls| tls.config.clone()),
        ));
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
        if let Some(tls) = tls {
            tokio::task::spawn_local(reload_tls_on_signal(tls.files, tls_state));
        }
        let timer = tokio::task::spawn_local(timer_loop(shard.clone()));
        shutdown.await;
        timer.abort();
        let mut relays = shard.relays.borrow_mut();
        let mut server = shard.server.borrow_mut();
        let live = server.allocation_count();
        server.close_all(&mut *relays);
        tracing::info!(allocations = live, "shut down");
        Ok(())
    })
}

async fn timer_loop(shard: Rc<Shard>) {
    loop {
        let deadline = shard.server.borrow().poll_timeout();
        tokio::time::sleep_until(deadline.into()).await;
        let mut relays = shard.relays.borrow_mut();
        shard
            .server
            .borrow_mut()
            .handle_timeout(Instant::now(), unix_now(), &mut *relays);
    }
}

/// SIGUSR2 (coturn's signal) or SIGHUP: re-read `cert` and `pkey`; new connections use
/// the new certificate, existing ones keep theirs. A bad file keeps the old one.
async fn reload_tls_on_signal(files: TlsFiles, state: TlsState) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut usr2), Ok(mut hup)) = (
        signal(SignalKind::user_defined2()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!(
            "cannot install SIGUSR2/SIGHUP handlers: certificates reload needs a restart"
        );
        return;
    };
    loop {
        tokio::select! {
            _ = usr2.recv() => {}
            _ = hup.recv() => {}
        }
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
}

/// Seconds since the Unix epoch; TURN REST expiry is wall-clock time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
