//! One shard's thread: a current-thread runtime running the shard's client sockets, relay
//! sockets and timer, and the commands the control thread and the other shards send it.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use rtc_auth::ip_range::IpRangeSet;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::{Receiver, Sender};
use tokio::task::LocalSet;

use super::Shard;
use super::client_udp;
use super::command::Command;
use super::stream::{self, TlsState};
use crate::clock::unix_now;
use crate::io::relay::{RelayRange, RelaySockets};
use crate::metrics::lifetimes::LifetimeTracker;
use crate::metrics::report::{DriverCounters, Snapshot};
use turn_proto::Server;

/// The stream listeners; one shard serves every TCP and TLS client.
pub(crate) struct Streams {
    pub(crate) tcp: Vec<StdTcpListener>,
    pub(crate) proxied: Vec<StdTcpListener>,
    /// Sources allowed on `proxied`.
    pub(crate) proxy_sources: IpRangeSet,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

/// What a shard thread starts with.
pub(crate) struct Setup {
    pub(crate) server: Server,
    /// This shard's socket of each UDP listener address.
    pub(crate) udp: Vec<(SocketAddr, StdUdpSocket)>,
    pub(crate) streams: Option<Streams>,
    pub(crate) relay: RelayRange,
    pub(crate) commands: Receiver<Command>,
    /// Every shard's queue, by index (this one's included).
    pub(crate) shards: Vec<Sender<Command>>,
}

/// Runs the shard until [`Command::Shutdown`] or until the control thread is gone, then
/// ends its allocations; returns how many were live.
pub(crate) fn run(setup: Setup) -> io::Result<usize> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = LocalSet::new();
    local.block_on(&runtime, async move {
        let Setup {
            server,
            udp,
            streams,
            relay,
            commands,
            shards,
        } = setup;
        let mut sockets = Vec::with_capacity(udp.len());
        for (address, socket) in udp {
            sockets.push((address, Rc::new(UdpSocket::from_std(socket)?)));
        }
        let shard = Rc::new(Shard::new(
            server,
            RelaySockets::new(relay),
            sockets,
            shards,
        ));
        for index in 0..shard.udp.len() {
            tokio::task::spawn_local(client_udp::client_loop(shard.clone(), index));
        }
        let tls = match streams {
            Some(streams) => Some(start_streams(&shard, streams)?),
            None => None,
        };
        let lifetimes = Rc::new(RefCell::new(LifetimeTracker::new()));
        let timer = tokio::task::spawn_local(timer_loop(shard.clone(), lifetimes.clone()));
        let flush = tokio::task::spawn_local(flush_loop(shard.clone()));
        command_loop(&shard, commands, &lifetimes, tls.as_ref()).await;
        timer.abort();
        flush.abort();
        let live = {
            let mut server = shard.server.borrow_mut();
            let live = server.allocation_count();
            server.close_all();
            live
        };
        shard.carry_out(&mut shard.buffers.borrow_mut().out);
        Ok(live)
    })
}

fn start_streams(shard: &Rc<Shard>, streams: Streams) -> io::Result<TlsState> {
    let tls: TlsState = Rc::new(RefCell::new(streams.tls));
    let tcp = streams.tcp.into_iter().map(|l| (l, None));
    let sources = Rc::new(streams.proxy_sources);
    let proxied = streams
        .proxied
        .into_iter()
        .map(|l| (l, Some(sources.clone())));
    for (listener, proxy) in tcp.chain(proxied) {
        let listener = TcpListener::from_std(listener)?;
        tokio::task::spawn_local(stream::accept_loop(
            shard.clone(),
            listener,
            tls.clone(),
            proxy,
        ));
    }
    Ok(tls)
}

async fn command_loop(
    shard: &Rc<Shard>,
    mut commands: Receiver<Command>,
    lifetimes: &RefCell<LifetimeTracker>,
    tls: Option<&TlsState>,
) {
    while let Some(command) = commands.recv().await {
        match command {
            Command::Input { tuple, data } => {
                let mut buffers = shard.buffers.borrow_mut();
                shard.handle_client(tuple, &data, &mut buffers.out);
            }
            Command::Reconfigure { config, reply } => {
                let changed = shard
                    .server
                    .borrow_mut()
                    .reconfigure(*config, Instant::now());
                let _ = reply.send(changed);
            }
            Command::Tls(config) => {
                if let Some(tls) = tls {
                    *tls.borrow_mut() = Some(config);
                }
            }
            Command::Drain => shard.server.borrow_mut().set_draining(true),
            Command::Count(reply) => {
                let _ = reply.send(shard.server.borrow().allocation_count());
            }
            Command::Snapshot { options, reply } => {
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
                let snapshot = Snapshot::of(&server, now, driver, lifetimes.histogram(), options);
                let _ = reply.send(snapshot);
            }
            Command::Shutdown => return,
        }
    }
}

/// Sends the datagrams queued for clients once the tasks woken with the first of them
/// have run (see [`Shard::flush_outboxes`]).
async fn flush_loop(shard: Rc<Shard>) {
    loop {
        shard.flush.notified().await;
        shard.flush_outboxes();
    }
}

async fn timer_loop(shard: Rc<Shard>, lifetimes: Rc<RefCell<LifetimeTracker>>) {
    loop {
        let deadline = shard.server.borrow().poll_timeout();
        tokio::time::sleep_until(deadline.into()).await;
        let now = Instant::now();
        {
            let mut server = shard.server.borrow_mut();
            server.handle_timeout(now, unix_now());
            lifetimes.borrow_mut().observe(
                now,
                server.allocations().map(|(id, _)| id),
                server.stats().allocations_ended,
            );
        }
        shard.carry_out(&mut shard.buffers.borrow_mut().out);
    }
}
