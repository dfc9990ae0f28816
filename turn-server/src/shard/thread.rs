//! One shard's thread: a current-thread runtime running the shard's client sockets, relay
//! sockets and timer, and the commands the control thread and the other shards send it.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_auth::ip_range::IpRangeSet;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc::{Receiver, Sender};
use tokio::task::LocalSet;

use super::Shard;
use super::client_udp;
use super::command::Command;
use super::offload::Offload;
use super::stream::{self, Clients};
use crate::clock::unix_now;
use crate::io::admission::Admission;
use crate::io::relay::{RelayRange, RelaySockets};
use crate::metrics::lifetimes::LifetimeTracker;
use crate::metrics::report::{DriverCounters, Snapshot};
use turn_proto::Server;

/// This shard's TCP and TLS client listeners and what serving their clients takes.
pub(crate) struct Streams {
    /// This shard's socket of each TCP listener address.
    pub(crate) tcp: Vec<StdTcpListener>,
    /// This shard's socket of each PROXY protocol listener address.
    pub(crate) proxied: Vec<StdTcpListener>,
    /// Sources allowed on `proxied`.
    pub(crate) proxy_sources: IpRangeSet,
    /// The TLS configuration at start.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// The connection caps, shared by every shard.
    pub(crate) admission: Admission,
    /// `max-allocate-timeout`.
    pub(crate) max_allocate_timeout: Duration,
}

/// What a shard thread starts with.
pub(crate) struct Setup {
    pub(crate) server: Server,
    /// This shard's socket of each UDP listener address.
    pub(crate) udp: Vec<(SocketAddr, StdUdpSocket)>,
    pub(crate) streams: Streams,
    pub(crate) relay: RelayRange,
    pub(crate) commands: Receiver<Command>,
    /// Every shard's queue, by index (this one's included).
    pub(crate) shards: Vec<Sender<Command>>,
    /// This shard's share of the kernel fast path, when `kernel-offload` loaded it.
    pub(crate) offload: Option<turn_offload::Share>,
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
            offload,
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
            offload.map(Offload::new),
        ));
        for index in 0..shard.udp.len() {
            tokio::task::spawn_local(client_udp::client_loop(shard.clone(), index));
        }
        let clients = start_streams(&shard, streams)?;
        let lifetimes = Rc::new(RefCell::new(LifetimeTracker::new()));
        let timer = tokio::task::spawn_local(timer_loop(shard.clone(), lifetimes.clone()));
        let flush = tokio::task::spawn_local(flush_loop(shard.clone()));
        command_loop(&shard, commands, &lifetimes, &clients).await;
        timer.abort();
        flush.abort();
        shard.fold_offloaded();
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

fn start_streams(shard: &Rc<Shard>, streams: Streams) -> io::Result<Rc<Clients>> {
    let clients = Rc::new(Clients {
        tls: RefCell::new(streams.tls),
        admission: streams.admission,
        max_allocate_timeout: streams.max_allocate_timeout,
        proxy_sources: streams.proxy_sources,
    });
    let tcp = streams.tcp.into_iter().map(|l| (l, false));
    let proxied = streams.proxied.into_iter().map(|l| (l, true));
    for (listener, proxy) in tcp.chain(proxied) {
        let listener = TcpListener::from_std(listener)?;
        tokio::task::spawn_local(stream::accept_loop(
            shard.clone(),
            clients.clone(),
            listener,
            proxy,
        ));
    }
    Ok(clients)
}

async fn command_loop(
    shard: &Rc<Shard>,
    mut commands: Receiver<Command>,
    lifetimes: &RefCell<LifetimeTracker>,
    clients: &Rc<Clients>,
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
                // Routes to peers the new policy denies end now, not at the next sweep.
                shard.carry_out(&mut shard.buffers.borrow_mut().out);
                let _ = reply.send(changed);
            }
            Command::Tls(config) => *clients.tls.borrow_mut() = Some(config),
            Command::Stream(handed) => {
                tokio::task::spawn_local(stream::adopt(shard.clone(), clients.clone(), *handed));
            }
            Command::Drain => shard.server.borrow_mut().set_draining(true),
            Command::Count(reply) => {
                let _ = reply.send(shard.server.borrow().allocation_count());
            }
            Command::Snapshot { options, reply } => {
                // Exact figures: what the kernel relayed until now is in.
                shard.fold_offloaded();
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
                    offload: shard
                        .offload
                        .borrow()
                        .as_ref()
                        .map(Offload::counters)
                        .unwrap_or_default(),
                    connection_refusals: shard.stream_refusals.get(),
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
        // The kernel's counters first: the sweep may end allocations, which log totals.
        shard.fold_offloaded();
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
