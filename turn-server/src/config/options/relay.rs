//! The relay: its addresses and interface, the public address behind NAT, the relay
//! threads, socket buffers and kernel fast path, the relay port range, and the
//! ALTERNATE-SERVER redirects.

use crate::config::model::{
    DEFAULT_ALTERNATE_PORT, DEFAULT_TLS_ALTERNATE_PORT, EXTERNAL_IP_MAPPINGS, ExternalMapping,
};
use crate::config::values::{device, ip, kernel_offload, number, socket_buffer};

use super::Arg::Required;
use super::Setter::{Custom, Ips, Port, Servers};
use super::{Spec, Target, row, set};

/// Relay addresses, threads, sockets and ports.
pub(super) const RELAY: &[Spec] = &[
    row(
        "relay-ip",
        Some('E'),
        Required,
        "relay address (repeatable; default: automatic)",
        Ips(|c| &mut c.relay_ips),
    ),
    row(
        "relay-device",
        Some('i'),
        Required,
        "bind relay sockets to this network interface",
        Custom(|t, v| set(&mut t.config.relay_device, device(v).map(Some))),
    ),
    row(
        "external-ip",
        Some('X'),
        Required,
        "public address, or public/private mapping (repeatable)",
        Custom(external_ip),
    ),
    row(
        "relay-threads",
        Some('m'),
        Required,
        "relay threads: shards with their own SO_REUSEPORT sockets (one per CPU; 0 = 1)",
        Custom(|t, v| set(&mut t.config.relay_threads, number(v).map(Some))),
    ),
    row(
        "cpus",
        None,
        Required,
        "CPUs to count when relay-threads is unset (default: those this process may use)",
        Custom(cpus),
    ),
    row(
        "relay-socket-buffer",
        None,
        Required,
        "kernel buffer per relay socket, bytes (1048576); listeners get 4x",
        Custom(|t, v| set(&mut t.config.relay_socket_buffer, socket_buffer(v))),
    ),
    row(
        "sock-buf-size",
        None,
        Required,
        "coturn's name for relay-socket-buffer",
        Custom(|t, v| set(&mut t.config.relay_socket_buffer, socket_buffer(v))),
    ),
    row(
        "kernel-offload",
        None,
        Required,
        "relay channel-bound UDP in the kernel (eBPF): off (default), auto or on",
        Custom(|t, v| set(&mut t.config.kernel_offload, kernel_offload(v))),
    ),
    row(
        "min-port",
        None,
        Required,
        "lowest relay port (49152)",
        Port(|c| &mut c.min_port),
    ),
    row(
        "max-port",
        None,
        Required,
        "highest relay port (65535)",
        Port(|c| &mut c.max_port),
    ),
];

/// ALTERNATE-SERVER targets (RFC 8489 §10), per client transport.
pub(super) const ALTERNATE_SERVERS: &[Spec] = &[
    row(
        "alternate-server",
        None,
        Required,
        "ALTERNATE-SERVER address[:port] for redirects (repeatable)",
        Servers(|c| &mut c.alternate_servers, DEFAULT_ALTERNATE_PORT),
    ),
    row(
        "udp-alternate-server",
        None,
        Required,
        "ALTERNATE-SERVER for UDP clients, before alternate-server (repeatable)",
        Servers(|c| &mut c.udp_alternate_servers, DEFAULT_ALTERNATE_PORT),
    ),
    row(
        "tcp-alternate-server",
        None,
        Required,
        "ALTERNATE-SERVER for TCP clients, before alternate-server (repeatable)",
        Servers(|c| &mut c.tcp_alternate_servers, DEFAULT_ALTERNATE_PORT),
    ),
    row(
        "tls-alternate-server",
        None,
        Required,
        "ALTERNATE-SERVER for TLS clients (repeatable)",
        Servers(|c| &mut c.tls_alternate_servers, DEFAULT_TLS_ALTERNATE_PORT),
    ),
];

/// `external-ip` in both forms: `PUBLIC/PRIVATE` mappings (repeatable), or one public
/// address per address family.
fn external_ip(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if let Some((public, private)) = value.split_once('/') {
        let public = ip(public)?;
        let private = ip(private)?;
        if public.is_ipv4() != private.is_ipv4() {
            return Err(format!("{value:?} maps addresses of different families"));
        }
        t.config
            .external_ip
            .mappings
            .push(ExternalMapping { public, private });
        t.config
            .origins
            .push(EXTERNAL_IP_MAPPINGS, t.origin.clone());
        return Ok(());
    }
    let address = ip(value)?;
    // The single-address lines so far are the option's origins that are no mapping's, in
    // the order of `addresses`.
    let origins = &t.config.origins;
    let mappings = origins.of(EXTERNAL_IP_MAPPINGS);
    let singles = origins
        .of(t.key)
        .iter()
        .filter(|origin| !mappings.contains(origin));
    if let Some((first, at)) = t
        .config
        .external_ip
        .addresses
        .iter()
        .zip(singles)
        .find(|(first, _)| first.is_ipv4() == address.is_ipv4())
    {
        return Err(format!(
            "external-ip without '/' may be given only once per address family ({first} \
             was set at {at}); use public/private pairs for several addresses"
        ));
    }
    t.config.external_ip.addresses.push(address);
    Ok(())
}

/// `cpus`: at least one.
fn cpus(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    match number(value)? {
        0 => Err("must be at least 1".to_owned()),
        cpus => {
            t.config.cpus = Some(cpus);
            Ok(())
        }
    }
}
