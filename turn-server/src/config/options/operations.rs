//! Operations: the Prometheus exporter, draining on SIGUSR1, and the SOFTWARE
//! attribute.

use std::time::Duration;

use crate::config::values::{ip, number};

use super::Arg::{Flag, Required};
use super::Setter::{Bool, Custom, NotBool, Number, Port, Text};
use super::{Spec, Target, row, set};

/// Metrics, draining and the SOFTWARE attribute.
pub(super) const OPERATIONS: &[Spec] = &[
    row(
        "prometheus",
        None,
        Flag,
        "Prometheus exporter",
        Bool(|c| &mut c.prometheus),
    ),
    row(
        "prometheus-port",
        None,
        Required,
        "Prometheus exporter port (9641)",
        Port(|c| &mut c.prometheus_port),
    ),
    row(
        "prometheus-address",
        None,
        Required,
        "Prometheus exporter address (all)",
        Custom(|t, v| set(&mut t.config.prometheus_address, ip(v).map(Some))),
    ),
    row(
        "prometheus-path",
        None,
        Required,
        "Prometheus metrics path (/metrics)",
        Custom(prometheus_path),
    ),
    row(
        "prometheus-username-labels",
        None,
        Flag,
        "per-user metric labels",
        Bool(|c| &mut c.prometheus_username_labels),
    ),
    row(
        "drain-timeout",
        None,
        Required,
        "seconds to wait for allocations after SIGUSR1 (0 = until they end)",
        Custom(drain_timeout),
    ),
    row(
        "drain-min-allocations",
        None,
        Required,
        "after SIGUSR1, exit once this many allocations or fewer are left (0)",
        Number(|c| &mut c.drain_min_allocations),
    ),
    row(
        "software-attribute",
        None,
        Flag,
        "send the SOFTWARE attribute",
        Bool(|c| &mut c.software_attribute),
    ),
    row(
        "no-software-attribute",
        None,
        Flag,
        "do not send SOFTWARE (the default)",
        NotBool(|c| &mut c.software_attribute),
    ),
    row(
        "software-name",
        None,
        Required,
        "text of the SOFTWARE attribute",
        Text(|c| &mut c.software_name),
    ),
];

/// `prometheus-path`: an absolute path.
fn prometheus_path(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if !value.starts_with('/') {
        return Err(format!("{value:?} must start with '/'"));
    }
    t.config.prometheus_path = value.to_owned();
    Ok(())
}

/// `drain-timeout`: whole seconds; 0 waits until the allocations end.
fn drain_timeout(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let seconds: u64 = number(value)?;
    t.config.drain_timeout = (seconds != 0).then(|| Duration::from_secs(seconds));
    Ok(())
}
