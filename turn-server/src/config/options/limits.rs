//! Limits: allocations per user and in total, RFC 6062 peer connections, TCP and TLS
//! clients, bandwidth, and the abuse limits on unauthenticated traffic.

use std::time::Duration;

use crate::config::values::number;

use super::Arg::Required;
use super::Setter::{Custom, Number, Number64};
use super::{Spec, Target, row};

/// Quotas, connection caps and bandwidth.
pub(super) const LIMITS: &[Spec] = &[
    row(
        "user-quota",
        Some('q'),
        Required,
        "max allocations per user (0 = unlimited)",
        Number(|c| &mut c.user_quota),
    ),
    row(
        "max-tcp-relay-connections",
        None,
        Required,
        "RFC 6062 peer connections per TCP allocation (32; 0 = unlimited)",
        Number(|c| &mut c.max_tcp_relay_connections),
    ),
    row(
        "user-tcp-relay-quota",
        None,
        Required,
        "RFC 6062 peer connections per user (256; 0 = unlimited)",
        Number(|c| &mut c.user_tcp_relay_quota),
    ),
    row(
        "max-tcp-clients",
        None,
        Required,
        "TCP and TLS client connections in total (10000; 0 = unlimited)",
        Number(|c| &mut c.max_tcp_clients),
    ),
    row(
        "max-tcp-clients-per-ip",
        None,
        Required,
        "TCP and TLS client connections per source address or IPv6 /64 (200; 0 = unlimited)",
        Number(|c| &mut c.max_tcp_clients_per_ip),
    ),
    row(
        "max-allocate-timeout",
        None,
        Required,
        "seconds a TCP/TLS client may stay connected without an allocation (60)",
        Custom(max_allocate_timeout),
    ),
    row(
        "total-quota",
        Some('Q'),
        Required,
        "max allocations in total (0 = unlimited)",
        Number(|c| &mut c.total_quota),
    ),
    row(
        "max-bps",
        Some('s'),
        Required,
        "max bytes per second per allocation and direction (0 = unlimited)",
        Number64(|c| &mut c.max_bps),
    ),
    row(
        "bps-capacity",
        Some('B'),
        Required,
        "max bytes per second for the whole server (0 = unlimited)",
        Number64(|c| &mut c.bps_capacity),
    ),
];

/// The per-source abuse limit (listed after the actions in `--help`).
pub(super) const UNAUTHORIZED: &[Spec] = &[row(
    "unauthorized-ratelimit-rps",
    None,
    Required,
    "401 answers per second per UDP source (10; 0 turns the abuse limits off)",
    Number(|c| &mut c.unauthorized_ratelimit_rps),
)];

/// `max-allocate-timeout`: whole seconds, at least one.
fn max_allocate_timeout(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let seconds: u64 = number(value)?;
    if seconds == 0 {
        return Err("must be at least 1 second".into());
    }
    t.config.max_allocate_timeout = Duration::from_secs(seconds);
    Ok(())
}
