//! One shard's part of the kernel fast path (`kernel-offload`): the channel routes the
//! core handed it ([`turn_proto::Event::ChannelBound`]) installed in the program's maps
//! through the shard's own [`Share`], and what the kernel relayed for them read back
//! into the core.
//!
//! **Where the fast path lives.** One program per process, loaded before the shards
//! start; its maps are shared by file descriptor, and each shard owns a [`Share`]: its
//! own handles and its own range of counter slots. A shard installs, removes and reads
//! only its own routes (a client 5-tuple and a relay address belong to one shard), so
//! no shard waits on another and nothing is locked; the relay path never touches any of
//! this (the kernel does the relaying). The control thread keeps the attachment and
//! detaches the program at exit, after the shards ended their routes.
//!
//! **The core stays the authority.** Only what the core routed is installed, and a
//! route ends when the core says so ([`turn_proto::Event::ChannelUnbound`]: expiry, a
//! lapsed permission, a denied peer, the allocation's end or move, a `max-bps` limit).
//! The core ends routes in its sweep, so a lapsed permission is relayed in the kernel
//! for at most one sweep period (1 s) past its expiry.
//!
//! **Counters.** What the kernel relayed is added to the core
//! ([`turn_proto::Server::record_offloaded`]) before every sweep, before each request
//! from a client with routes (a Refresh may end its allocation, which logs its totals),
//! before shutdown, and as each route is removed: allocation logs, `turn_traffic_*`,
//! per-user figures and the fast path's own metrics see every byte once.

use std::collections::HashMap;
use std::net::SocketAddr;

use turn_offload::{Binding, Counters, InstallError, Share};
use turn_proto::{AllocId, ChannelRoute, FiveTuple, Relayed};

use crate::io::udp::local_address_toward;
use crate::metrics::report::OffloadCounters;

/// A route installed in the kernel.
#[derive(Debug, Clone, Copy)]
struct Installed {
    allocation: AllocId,
    binding: Binding,
}

/// What the kernel relayed for one allocation since the last report.
pub(super) type Report = (AllocId, Relayed, Relayed);

/// The shard's routes in the kernel.
pub(super) struct Offload {
    share: Share,
    /// By client 5-tuple and channel number, as the core names routes.
    routes: HashMap<(FiveTuple, u16), Installed>,
    /// Channel numbers of each client with routes.
    by_client: HashMap<FiveTuple, Vec<u16>>,
    /// The allocation of each installed binding, for the counters the share returns.
    by_binding: HashMap<Binding, AllocId>,
    counters: OffloadCounters,
}

impl Offload {
    pub(super) fn new(share: Share) -> Self {
        Self {
            share,
            routes: HashMap::new(),
            by_client: HashMap::new(),
            by_binding: HashMap::new(),
            counters: OffloadCounters {
                active: true,
                ..OffloadCounters::default()
            },
        }
    }

    /// The figures for metrics.
    pub(super) fn counters(&self) -> OffloadCounters {
        OffloadCounters {
            routes: self.routes.len() as u64,
            ..self.counters
        }
    }

    /// True when `client` has routes in the kernel.
    pub(super) fn has_routes(&self, client: &FiveTuple) -> bool {
        self.by_client.contains_key(client)
    }

    /// A route the core made or renewed: installed unless it already is. A route the
    /// kernel cannot take stays in userspace (counted, logged at debug level).
    pub(super) fn bound(&mut self, route: &ChannelRoute) -> Option<Report> {
        let key = (route.client, route.number);
        let binding = match binding(route) {
            Ok(binding) => binding,
            Err(reason) => {
                self.failed(route, reason);
                return None;
            }
        };
        let mut report = None;
        if let Some(installed) = self.routes.get(&key) {
            if installed.binding == binding {
                return None;
            }
            // Same channel, another binding (not expected from the core): replace it.
            report = self.unbound(route);
        }
        match self.share.install(binding) {
            Ok(()) => {
                self.routes.insert(
                    key,
                    Installed {
                        allocation: route.allocation,
                        binding,
                    },
                );
                self.by_client
                    .entry(route.client)
                    .or_default()
                    .push(route.number);
                self.by_binding.insert(binding, route.allocation);
            }
            Err(error) => self.failed(route, &error),
        }
        report
    }

    /// A route the core ended: removed; what it relayed since the last report comes back.
    pub(super) fn unbound(&mut self, route: &ChannelRoute) -> Option<Report> {
        let installed = self.routes.remove(&(route.client, route.number))?;
        self.by_binding.remove(&installed.binding);
        if let Some(numbers) = self.by_client.get_mut(&route.client) {
            numbers.retain(|&n| n != route.number);
            if numbers.is_empty() {
                self.by_client.remove(&route.client);
            }
        }
        match self.share.remove(&installed.binding) {
            Ok(rest) => self.report(installed.allocation, rest?),
            Err(error) => {
                tracing::warn!(%error, "kernel-offload: removing a route failed");
                None
            }
        }
    }

    /// What the kernel relayed for every route since the last report.
    pub(super) fn take_all(&mut self, reports: &mut Vec<Report>) {
        let deltas = match self.share.take_counters() {
            Ok(deltas) => deltas,
            Err(error) => {
                tracing::warn!(%error, "kernel-offload: reading counters failed");
                return;
            }
        };
        for (binding, delta) in deltas {
            if let Some(&allocation) = self.by_binding.get(&binding)
                && let Some(report) = self.report(allocation, delta)
            {
                reports.push(report);
            }
        }
    }

    /// What the kernel relayed for `client`'s routes since the last report.
    pub(super) fn take_client(&mut self, client: &FiveTuple, reports: &mut Vec<Report>) {
        let Some(numbers) = self.by_client.get(client) else {
            return;
        };
        let installed: Vec<Installed> = numbers
            .iter()
            .filter_map(|&n| self.routes.get(&(*client, n)).copied())
            .collect();
        for route in installed {
            match self.share.take(&route.binding) {
                Ok(Some(delta)) => reports.extend(self.report(route.allocation, delta)),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "kernel-offload: reading counters failed"),
            }
        }
    }

    /// Counts `delta` in the fast path's own figures; the report for the core, when
    /// anything was relayed.
    fn report(&mut self, allocation: AllocId, delta: Counters) -> Option<Report> {
        if delta.is_zero() {
            return None;
        }
        let to_peer = Relayed {
            packets: delta.to_peer.packets,
            bytes: delta.to_peer.bytes,
        };
        let to_client = Relayed {
            packets: delta.to_client.packets,
            bytes: delta.to_client.bytes,
        };
        let c = &mut self.counters;
        c.to_peer.packets += to_peer.packets;
        c.to_peer.bytes += to_peer.bytes;
        c.to_client.packets += to_client.packets;
        c.to_client.bytes += to_client.bytes;
        Some((allocation, to_peer, to_client))
    }

    fn failed(&mut self, route: &ChannelRoute, reason: impl std::fmt::Display) {
        self.counters.install_failures += 1;
        tracing::debug!(
            client = %route.client.client,
            peer = %route.peer,
            channel = route.number,
            %reason,
            "kernel-offload: route stays in userspace"
        );
    }
}

/// The route as the kernel sees its packets. A wildcard listening address becomes the
/// address the kernel replies to the client from, which is what userspace replies from
/// too (`startup::kernel_offload` says what that means for a multi-homed host).
fn binding(route: &ChannelRoute) -> Result<Binding, InstallError> {
    let mut server = route.client.server;
    if server.ip().is_unspecified() {
        let ip = local_address_toward(route.client.client)?;
        server = SocketAddr::new(ip, server.port());
    }
    Ok(Binding {
        client: route.client.client,
        server,
        relay: route.relay.address,
        peer: route.peer,
        channel: route.number,
    })
}
