//! Listeners: the client ports, the PROXY protocol port and who may use it, and the
//! addresses and interface the listeners bind to.

use crate::config::values::{device, port_or_zero};

use super::Arg::Required;
use super::Setter::{Custom, Ips, Port, Ranges};
use super::{Spec, Target, row, set};

/// Ports, addresses and interface of the client listeners.
pub(super) const LISTENERS: &[Spec] = &[
    row(
        "listening-port",
        Some('p'),
        Required,
        "UDP and TCP listener port (3478)",
        Port(|c| &mut c.listening_port),
    ),
    row(
        "tls-listening-port",
        None,
        Required,
        "TLS and DTLS listener port (5349)",
        Port(|c| &mut c.tls_listening_port),
    ),
    row(
        "alt-listening-port",
        None,
        Required,
        "RFC 5780 alternative port (0 = listening-port + 1)",
        Custom(|t, v| set(&mut t.config.alt_listening_port, port_or_zero(v))),
    ),
    row(
        "alt-tls-listening-port",
        None,
        Required,
        "RFC 5780 alternative TLS port (0 = tls-listening-port + 1)",
        Custom(|t, v| set(&mut t.config.alt_tls_listening_port, port_or_zero(v))),
    ),
    row(
        "tcp-proxy-port",
        None,
        Required,
        "TCP port that expects a PROXY protocol header",
        Custom(tcp_proxy_port),
    ),
    row(
        "tcp-proxy-trusted-ip",
        None,
        Required,
        "proxy allowed on tcp-proxy-port: IP, A-B or CIDR (repeatable; default: loopback)",
        Ranges(|c| &mut c.tcp_proxy_trusted_ips),
    ),
    row(
        "listening-ip",
        Some('L'),
        Required,
        "listener address (repeatable; default: all local addresses)",
        Ips(|c| &mut c.listening_ips),
    ),
    row(
        "listening-device",
        Some('d'),
        Required,
        "bind listeners to this network interface",
        Custom(|t, v| set(&mut t.config.listening_device, device(v).map(Some))),
    ),
];

/// `tcp-proxy-port`: 0 means no PROXY protocol listener.
fn tcp_proxy_port(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    t.config.tcp_proxy_port = Some(port_or_zero(value)?).filter(|&port| port != 0);
    Ok(())
}
