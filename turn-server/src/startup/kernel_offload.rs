//! `kernel-offload`: whether the eBPF fast path ([`turn_offload`]) relays channel-bound
//! UDP traffic, on which interfaces, and what `--check-config` says about it.
//!
//! **Interfaces.** The program sees packets on the ingress of the interface they arrive
//! on, so it goes on the interfaces that hold the UDP listening addresses and the
//! `relay-ip`s (without `relay-ip`, relay sockets bind the listening address or the
//! address the kernel routes toward the client from, which the listening addresses'
//! rule already covers). A loopback address means `lo`; a wildcard listening address
//! (`0.0.0.0`, `::`, the default) means every interface that is up, has an address of
//! that family and an Ethernet or loopback link (see [`turn_offload::interfaces_for`]).
//! A packet that arrives on an interface without the program (a tunnel, or a host that
//! answers for an address on another interface) is relayed in userspace as before.
//! With a wildcard listener, a route's server address is the one the kernel replies to
//! the client from (what userspace replies from too): a client that reached another
//! local address is relayed in userspace towards the peer, and gets the peer's data from
//! that same reply address as before.
//!
//! **Modes.** `off`: nothing is loaded. `auto`: loaded where possible, else one warning
//! naming the reason and userspace relaying. `on`: loaded, or the server does not start
//! and says why.

use std::net::{IpAddr, SocketAddr};

use turn_offload::{Config as OffloadConfig, FastPath, Unavailable};

use crate::config::{Config, KernelOffload};

/// What to load: the program's configuration for this server's addresses.
fn plan(config: &Config, udp: &[SocketAddr]) -> Result<OffloadConfig, Unavailable> {
    if udp.is_empty() {
        return Err(Unavailable {
            reason: "no UDP listener (no-udp): only UDP clients can be relayed in the kernel"
                .into(),
        });
    }
    let mut addresses: Vec<IpAddr> = udp.iter().map(SocketAddr::ip).collect();
    addresses.extend(&config.relay_ips);
    Ok(OffloadConfig::new(turn_offload::interfaces_for(
        &addresses,
    )?))
}

/// Loads and attaches the fast path as `kernel-offload` asks, for a server listening on
/// `udp`. `Ok(None)`: relay in userspace (off, or `auto` and unavailable: logged).
pub fn start(config: &Config, udp: &[SocketAddr]) -> anyhow::Result<Option<FastPath>> {
    if config.kernel_offload == KernelOffload::Off {
        return Ok(None);
    }
    let loaded = plan(config, udp).and_then(|plan| {
        let fast = FastPath::load(&plan)?;
        Ok((plan, fast))
    });
    match (loaded, config.kernel_offload) {
        (Ok((plan, fast)), _) => {
            tracing::info!(
                interfaces = %plan.interfaces.join(","),
                max_bindings = plan.max_bindings,
                "kernel-offload: channel-bound UDP is relayed in the kernel"
            );
            Ok(Some(fast))
        }
        (Err(unavailable), KernelOffload::On) => {
            anyhow::bail!("kernel-offload=on: {unavailable}")
        }
        (Err(unavailable), _) => {
            tracing::warn!("kernel-offload=auto: {unavailable}; relaying in userspace");
            Ok(None)
        }
    }
}

/// `--check-config`'s line on the relay path, without attaching anything (the program is
/// loaded and freed again so the kernel's verifier has its say); false when `on` could
/// not start.
pub fn check(config: &Config, udp: &[SocketAddr]) -> (String, bool) {
    let mode = config.kernel_offload;
    if mode == KernelOffload::Off {
        return ("kernel-offload=off: relaying in userspace".to_owned(), true);
    }
    let checked = plan(config, udp).and_then(|plan| FastPath::check(&plan).map(|()| plan));
    match checked {
        Ok(plan) => (
            format!(
                "kernel-offload={}: the kernel fast path will relay channel-bound UDP on {}",
                mode.as_str(),
                plan.interfaces.join(", ")
            ),
            true,
        ),
        Err(unavailable) if mode == KernelOffload::On => (
            format!("kernel-offload=on: the server will not start: {unavailable}"),
            false,
        ),
        Err(unavailable) => (
            format!("kernel-offload=auto: relaying in userspace: {unavailable}"),
            true,
        ),
    }
}
