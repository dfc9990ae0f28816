//! The metric set, rendered from the core at scrape time.
//!
//! coturn's names come first and keep coturn's meaning where ours can match it
//! (cc:src/apps/relay/prom_server.c): `turn_traffic_*` is the client side (`rcv` from
//! clients, `sent` to clients), `turn_traffic_peer_*` the peer side, `turn_total_traffic_*`
//! both sides together. coturn updates them when a session ends; ours are live, and count
//! relayed payload (ChannelData and Send/Data contents), not STUN control messages.
//! Our own metrics follow Prometheus naming (`_total` counters, base units).
//!
//! Each shard takes a [`Snapshot`] of its core; the scrape merges them and renders one
//! document.
//!
//! No label carries a user name unless `prometheus-username-labels` is set (REST user
//! names embed a timestamp: one series per credential, coturn #666); then only users
//! with a live allocation appear, so series go away with the calls.

use std::collections::BTreeMap;
use std::time::Instant;

use super::exposition::{Exposition, Kind};
use super::lifetimes::{BOUNDS_SECS, LifetimeHistogram};
use turn_proto::{Server, Stats, Transport};

/// What the driver knows that the core does not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverCounters {
    /// Datagrams or stream writes dropped because a socket buffer or a stream backlog
    /// was full.
    pub send_failures: u64,
}

/// Options that shape the output.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportOptions {
    /// `prometheus-username-labels`.
    pub username_labels: bool,
}

const TRANSPORTS: [(Transport, &str); 3] = [
    (Transport::Udp, "udp"),
    (Transport::Tcp, "tcp"),
    (Transport::Tls, "tls"),
];

fn transport_index(transport: Transport) -> usize {
    TRANSPORTS
        .iter()
        .position(|(t, _)| *t == transport)
        .unwrap_or(0)
}

/// Live counts per transport.
#[derive(Debug, Clone, Default, PartialEq)]
struct Live {
    allocations: [u64; 3],
    permissions: [u64; 3],
    channels: [u64; 3],
    /// User → (allocations, bytes to peers, bytes to the client), live allocations only.
    users: BTreeMap<Box<str>, (u64, u64, u64)>,
}

fn live(server: &Server, now: Instant, by_user: bool) -> Live {
    let mut live = Live::default();
    for (_, allocation) in server.allocations() {
        let index = transport_index(allocation.tuple.transport);
        live.allocations[index] += 1;
        live.permissions[index] += allocation
            .permissions
            .iter()
            .filter(|p| p.expires > now)
            .count() as u64;
        live.channels[index] += allocation
            .channels
            .iter()
            .filter(|c| c.expires > now)
            .count() as u64;
        if by_user {
            let entry = live.users.entry(allocation.user.clone()).or_default();
            entry.0 += 1;
            entry.1 += allocation.upstream.bytes;
            entry.2 += allocation.downstream.bytes;
        }
    }
    live
}

/// One shard's figures at scrape time; owned, so it can cross threads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    stats: Stats,
    live: Live,
    draining: bool,
    tcp_connections: u64,
    rate_limited: (u64, u64),
    driver: DriverCounters,
    lifetimes: LifetimeHistogram,
}

impl Snapshot {
    /// The figures of `server` and its driver now.
    pub fn of(
        server: &Server,
        now: Instant,
        driver: DriverCounters,
        lifetimes: &LifetimeHistogram,
        options: ReportOptions,
    ) -> Self {
        Self {
            stats: *server.stats(),
            live: live(server, now, options.username_labels),
            draining: server.is_draining(),
            tcp_connections: server.tcp_connection_count() as u64,
            rate_limited: server.rate_limited(),
            driver,
            lifetimes: lifetimes.clone(),
        }
    }

    /// Adds another shard's figures.
    pub fn merge(&mut self, other: &Snapshot) {
        self.stats.merge(&other.stats);
        for index in 0..TRANSPORTS.len() {
            self.live.allocations[index] += other.live.allocations[index];
            self.live.permissions[index] += other.live.permissions[index];
            self.live.channels[index] += other.live.channels[index];
        }
        for (user, (allocations, up, down)) in &other.live.users {
            let entry = self.live.users.entry(user.clone()).or_default();
            entry.0 += allocations;
            entry.1 += up;
            entry.2 += down;
        }
        self.draining |= other.draining;
        self.tcp_connections += other.tcp_connections;
        self.rate_limited.0 += other.rate_limited.0;
        self.rate_limited.1 += other.rate_limited.1;
        self.driver.send_failures += other.driver.send_failures;
        self.lifetimes.merge(&other.lifetimes);
    }
}

/// The whole exposition document.
pub fn render(snapshot: &Snapshot, options: ReportOptions) -> String {
    let Snapshot {
        stats,
        live,
        draining,
        tcp_connections,
        rate_limited,
        driver,
        lifetimes,
    } = snapshot;
    let (up, down) = (stats.upstream, stats.downstream);
    let mut doc = Exposition::new();

    // coturn-compatible names.
    let total: u64 = live.allocations.iter().sum();
    doc.family(
        "turn_total_allocations",
        Kind::Gauge,
        "Live allocations (coturn name).",
    )
    .sample("turn_total_allocations", &[], total);
    let coturn_counters: [(&str, &str, u64); 16] = [
        (
            "turn_traffic_rcvp",
            "Relayed packets received from clients.",
            up.packets,
        ),
        (
            "turn_traffic_rcvb",
            "Relayed bytes received from clients.",
            up.bytes,
        ),
        (
            "turn_traffic_sentp",
            "Relayed packets sent to clients.",
            down.packets,
        ),
        (
            "turn_traffic_sentb",
            "Relayed bytes sent to clients.",
            down.bytes,
        ),
        (
            "turn_traffic_peer_rcvp",
            "Packets received from peers and relayed.",
            down.packets,
        ),
        (
            "turn_traffic_peer_rcvb",
            "Bytes received from peers and relayed.",
            down.bytes,
        ),
        (
            "turn_traffic_peer_sentp",
            "Packets sent to peers.",
            up.packets,
        ),
        ("turn_traffic_peer_sentb", "Bytes sent to peers.", up.bytes),
        (
            "turn_total_traffic_rcvp",
            "Relayed packets received, both sides.",
            up.packets + down.packets,
        ),
        (
            "turn_total_traffic_rcvb",
            "Relayed bytes received, both sides.",
            up.bytes + down.bytes,
        ),
        (
            "turn_total_traffic_sentp",
            "Relayed packets sent, both sides.",
            up.packets + down.packets,
        ),
        (
            "turn_total_traffic_sentb",
            "Relayed bytes sent, both sides.",
            up.bytes + down.bytes,
        ),
        (
            "turn_total_traffic_peer_rcvp",
            "Packets received from peers.",
            down.packets,
        ),
        (
            "turn_total_traffic_peer_rcvb",
            "Bytes received from peers.",
            down.bytes,
        ),
        (
            "turn_total_traffic_peer_sentp",
            "Packets sent to peers.",
            up.packets,
        ),
        (
            "turn_total_traffic_peer_sentb",
            "Bytes sent to peers.",
            up.bytes,
        ),
    ];
    for (name, help, value) in coturn_counters {
        doc.family(name, Kind::Counter, help)
            .sample(name, &[], value);
    }
    for name in ["stun_binding_request", "stun_binding_response"] {
        // Every Binding request is answered with a success: the two are equal.
        doc.family(name, Kind::Counter, "STUN Binding requests answered.")
            .sample(name, &[], stats.binding_requests);
    }

    // Live gauges by transport.
    let gauges: [(&str, &str, &[u64; 3]); 3] = [
        (
            "turn_allocations",
            "Live allocations by client transport.",
            &live.allocations,
        ),
        (
            "turn_permissions",
            "Live permissions by client transport.",
            &live.permissions,
        ),
        (
            "turn_channels",
            "Live channel bindings by client transport.",
            &live.channels,
        ),
    ];
    for (name, help, values) in gauges {
        doc.family(name, Kind::Gauge, help);
        for ((_, label), value) in TRANSPORTS.iter().zip(values) {
            doc.sample(name, &[("transport", label)], *value);
        }
    }
    doc.family(
        "turn_draining",
        Kind::Gauge,
        "1 while draining (SIGUSR1): new allocations refused.",
    )
    .sample("turn_draining", &[], u64::from(*draining));
    doc.family(
        "turn_tcp_relay_connections",
        Kind::Gauge,
        "Live RFC 6062 peer connections of TCP allocations.",
    )
    .sample("turn_tcp_relay_connections", &[], *tcp_connections);

    doc.family(
        "turn_allocations_created_total",
        Kind::Counter,
        "Allocations created.",
    )
    .sample(
        "turn_allocations_created_total",
        &[],
        stats.allocations_created,
    );
    doc.family(
        "turn_allocations_ended_total",
        Kind::Counter,
        "Allocations ended.",
    )
    .sample("turn_allocations_ended_total", &[], stats.allocations_ended);

    let directions = [("client_to_peer", up), ("peer_to_client", down)];
    doc.family(
        "turn_relayed_packets_total",
        Kind::Counter,
        "Relayed packets by direction.",
    );
    for (label, traffic) in directions {
        doc.sample(
            "turn_relayed_packets_total",
            &[("direction", label)],
            traffic.packets,
        );
    }
    doc.family(
        "turn_relayed_bytes_total",
        Kind::Counter,
        "Relayed payload bytes by direction.",
    );
    for (label, traffic) in directions {
        doc.sample(
            "turn_relayed_bytes_total",
            &[("direction", label)],
            traffic.bytes,
        );
    }

    let drops: [(&str, u64); 6] = [
        ("peer_denied", stats.peers_denied),
        ("quota", stats.quota_refusals),
        ("bandwidth", up.dropped + down.dropped),
        ("malformed", stats.malformed),
        ("unroutable", stats.unroutable),
        ("send_failed", driver.send_failures),
    ];
    doc.family(
        "turn_drops_total",
        Kind::Counter,
        "Refused or dropped input by reason: peer_denied (requests and sends), quota \
         (Allocates answered 486), bandwidth (max-bps packets), malformed, unroutable (no \
         allocation, permission or channel), send_failed (socket or stream backlog full).",
    );
    for (reason, value) in drops {
        doc.sample("turn_drops_total", &[("reason", reason)], value);
    }
    doc.family(
        "turn_auth_failures_total",
        Kind::Counter,
        "Requests refused by authentication: bad_credentials (401/441), stale_nonce (438).",
    );
    doc.sample(
        "turn_auth_failures_total",
        &[("reason", "bad_credentials")],
        stats.auth_failures,
    )
    .sample(
        "turn_auth_failures_total",
        &[("reason", "stale_nonce")],
        stats.stale_nonces,
    );

    let (unauthenticated, challenges) = *rate_limited;
    doc.family(
        "turn_ratelimit_refused_total",
        Kind::Counter,
        "UDP input dropped by the per-source limits: unauthenticated requests, and 401/438 \
         answers not sent.",
    )
    .sample(
        "turn_ratelimit_refused_total",
        &[("limit", "unauthenticated")],
        unauthenticated,
    )
    .sample(
        "turn_ratelimit_refused_total",
        &[("limit", "challenges")],
        challenges,
    );

    doc.histogram(
        "turn_allocation_lifetime_seconds",
        "Lifetime of ended allocations (1 s resolution).",
        &BOUNDS_SECS,
        &lifetimes.counts,
        lifetimes.sum_secs,
    );

    if options.username_labels {
        doc.family(
            "turn_user_allocations",
            Kind::Gauge,
            "Live allocations per user.",
        );
        for (user, (count, _, _)) in &live.users {
            doc.sample("turn_user_allocations", &[("user", user)], *count);
        }
        doc.family(
            "turn_user_relayed_bytes",
            Kind::Gauge,
            "Bytes relayed by each user's live allocations, by direction.",
        );
        for (user, (_, up, down)) in &live.users {
            doc.sample(
                "turn_user_relayed_bytes",
                &[("user", user), ("direction", "client_to_peer")],
                *up,
            )
            .sample(
                "turn_user_relayed_bytes",
                &[("user", user), ("direction", "peer_to_client")],
                *down,
            );
        }
    }
    doc.finish()
}

#[cfg(test)]
mod tests;
