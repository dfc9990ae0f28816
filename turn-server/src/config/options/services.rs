//! What is served: the client transports, the relay transports, STUN and TURN, and
//! RFC 5780 NAT behaviour discovery.

use super::Arg::Flag;
use super::Setter::{Bool, NotBool};
use super::{Spec, row};

/// Listener and relay transports and services switched on or off.
pub(super) const SERVICES: &[Spec] = &[
    row(
        "no-udp",
        None,
        Flag,
        "no UDP client listener",
        Bool(|c| &mut c.no_udp),
    ),
    row(
        "no-tcp",
        None,
        Flag,
        "no TCP client listener",
        Bool(|c| &mut c.no_tcp),
    ),
    row(
        "no-tls",
        None,
        Flag,
        "no TLS client listener",
        Bool(|c| &mut c.no_tls),
    ),
    row(
        "no-dtls",
        None,
        Flag,
        "no DTLS client listener",
        Bool(|c| &mut c.no_dtls),
    ),
    row(
        "dtls",
        None,
        Flag,
        "enable the DTLS client listener (coturn 4.17)",
        Bool(|c| &mut c.dtls),
    ),
    row(
        "no-udp-relay",
        None,
        Flag,
        "refuse UDP relay allocations",
        Bool(|c| &mut c.no_udp_relay),
    ),
    row(
        "no-tcp-relay",
        None,
        Flag,
        "refuse TCP (RFC 6062) relay allocations",
        Bool(|c| &mut c.no_tcp_relay),
    ),
    row(
        "stun-only",
        Some('S'),
        Flag,
        "STUN only, no TURN",
        Bool(|c| &mut c.stun_only),
    ),
    row(
        "no-stun",
        None,
        Flag,
        "TURN only, no plain STUN binding",
        Bool(|c| &mut c.no_stun),
    ),
    row(
        "rfc5780",
        None,
        Flag,
        "enable RFC 5780 NAT behaviour discovery",
        Bool(|c| &mut c.rfc5780),
    ),
    row(
        "no-rfc5780",
        None,
        Flag,
        "disable RFC 5780 NAT behaviour discovery",
        NotBool(|c| &mut c.rfc5780),
    ),
];
