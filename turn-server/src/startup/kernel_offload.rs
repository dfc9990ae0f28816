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
//! **Devices.** With `relay-device` or `listening-device` the userspace path keeps its
//! sockets to one interface (SO_BINDTODEVICE), while the program sends wherever the
//! routing table says and sees packets on every interface it sits on: it would relay
//! past the operator's choice. Such a server relays in userspace (`auto`) or does not
//! start (`on`), naming the option.
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
    let pinned = [
        ("relay-device", &config.relay_device),
        ("listening-device", &config.listening_device),
    ];
    if let Some((option, Some(device))) = pinned.into_iter().find(|(_, d)| d.is_some()) {
        return Err(Unavailable {
            reason: format!(
                "{option}={device} keeps the server's sockets to one interface, and the fast \
                 path sends wherever the routing table says: unset {option} to use it"
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_device(relay: Option<&str>, listening: Option<&str>) -> Config {
        Config {
            relay_device: relay.map(str::to_owned),
            listening_device: listening.map(str::to_owned),
            kernel_offload: KernelOffload::Auto,
            ..Config::default()
        }
    }

    const UDP: [SocketAddr; 1] = [SocketAddr::new(
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        3478,
    )];

    #[test]
    fn a_pinned_device_keeps_relaying_in_userspace() {
        for (config, option) in [
            (with_device(Some("eth1"), None), "relay-device=eth1"),
            (with_device(None, Some("eth0")), "listening-device=eth0"),
            (with_device(Some("eth1"), Some("eth0")), "relay-device=eth1"),
        ] {
            let reason = plan(&config, &UDP).unwrap_err().reason;
            assert!(reason.contains(option), "{reason}");
            let (line, ok) = check(&config, &UDP);
            assert!(ok, "auto still starts: {line}");
            assert!(
                line.starts_with("kernel-offload=auto: relaying in userspace"),
                "{line}"
            );
            assert!(line.contains(option), "{line}");
        }
    }

    #[test]
    fn on_with_a_pinned_device_does_not_start() {
        let config = Config {
            kernel_offload: KernelOffload::On,
            ..with_device(Some("eth1"), None)
        };
        let (line, ok) = check(&config, &UDP);
        assert!(!ok);
        assert!(
            line.contains("will not start") && line.contains("relay-device=eth1"),
            "{line}"
        );
        let err = start(&config, &UDP).unwrap_err().to_string();
        assert!(err.contains("relay-device=eth1"), "{err}");
    }
}
