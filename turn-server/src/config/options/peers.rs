//! Peer policy: which peer addresses and ports of this host clients may reach.

use crate::config::values::port_range;

use super::Arg::{Flag, Required};
use super::Setter::{Bool, Custom, NotBool, Ranges};
use super::{Spec, row};

/// Denied and allowed peers, multicast, loopback and this host's ports.
pub(super) const PEERS: &[Spec] = &[
    row(
        "denied-peer-ip",
        None,
        Required,
        "deny peers: IP, A-B range or CIDR (repeatable)",
        Ranges(|c| &mut c.denied_peer_ips),
    ),
    row(
        "allowed-peer-ip",
        None,
        Required,
        "allow peers otherwise denied: IP, A-B or CIDR (repeatable)",
        Ranges(|c| &mut c.allowed_peer_ips),
    ),
    row(
        "no-multicast-peers",
        None,
        Flag,
        "deny multicast peers (default: on)",
        Bool(|c| &mut c.no_multicast_peers),
    ),
    row(
        "allow-multicast-peers",
        None,
        Flag,
        "allow multicast peers",
        NotBool(|c| &mut c.no_multicast_peers),
    ),
    row(
        "allow-loopback-peers",
        None,
        Flag,
        "allow loopback peers (tests only)",
        Bool(|c| &mut c.allow_loopback_peers),
    ),
    row(
        "allowed-own-host-port",
        None,
        Required,
        "port or A-B range of this host peers may reach besides relay ports (repeatable)",
        Custom(|t, v| {
            t.config.allowed_own_host_ports.push(port_range(v)?);
            Ok(())
        }),
    ),
];
