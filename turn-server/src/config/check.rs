//! Checks against the machine the server runs on.
//!
//! A config copied from another host (the usual case when replacing coturn) names
//! addresses and interfaces that may not exist here; binding would then fail with a bare
//! `EADDRNOTAVAIL` far from the line that caused it. These checks name the line instead.
//! The machine is behind [`Host`] so tests inject a fake one.

use std::net::{IpAddr, UdpSocket};
use std::path::Path;

use super::{Config, Diagnostic};

/// What the checks need to know about the machine.
pub trait Host {
    /// True when a socket can be bound to `ip` here.
    fn is_local_address(&self, ip: IpAddr) -> bool;
    /// True when a network interface of this name exists.
    fn has_interface(&self, name: &str) -> bool;
}

/// A fixed description of a machine, for tests and for callers that gathered the
/// addresses themselves. The unspecified addresses (`0.0.0.0`, `::`) always count as local.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticHost {
    /// The machine's addresses.
    pub addresses: Vec<IpAddr>,
    /// The machine's interface names.
    pub interfaces: Vec<String>,
}

impl Host for StaticHost {
    fn is_local_address(&self, ip: IpAddr) -> bool {
        ip.is_unspecified() || self.addresses.contains(&ip)
    }

    fn has_interface(&self, name: &str) -> bool {
        self.interfaces.iter().any(|i| i == name)
    }
}

/// The real machine, without `unsafe` or interface enumeration: an address is local when
/// a UDP socket binds to it on an ephemeral port (the kernel's own answer, the same one
/// the relay will get), and interfaces are looked up in `/sys/class/net` (Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemHost;

impl Host for SystemHost {
    fn is_local_address(&self, ip: IpAddr) -> bool {
        UdpSocket::bind((ip, 0)).is_ok()
    }

    fn has_interface(&self, name: &str) -> bool {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return false;
        }
        let sys = Path::new("/sys/class/net");
        // Without sysfs (not Linux) SO_BINDTODEVICE does not exist either; the driver
        // reports that when it binds, so don't guess here.
        !sys.is_dir() || sys.join(name).exists()
    }
}

impl Config {
    /// Errors for addresses and interfaces this machine does not have. Empty means the
    /// configuration fits the machine.
    pub fn check_host(&self, host: &dyn Host) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        let lists = [
            ("relay-ip", &self.relay_ips, "relay sockets"),
            ("listening-ip", &self.listening_ips, "listeners"),
        ];
        for (key, ips, what) in lists {
            let origins = self.origins.of(key);
            for (index, &ip) in ips.iter().enumerate() {
                if host.is_local_address(ip) {
                    continue;
                }
                let nat_hint = if key == "relay-ip" {
                    "; behind NAT, put the private address in relay-ip and the public one in \
                     external-ip"
                } else {
                    ""
                };
                errors.push(Diagnostic::new(
                    origins.get(index).cloned(),
                    Some(key),
                    format!(
                        "{ip} is not an address of this machine, so {what} cannot bind to \
                         it{nat_hint}"
                    ),
                ));
            }
        }
        let devices = [
            ("relay-device", &self.relay_device),
            ("listening-device", &self.listening_device),
        ];
        for (key, device) in devices {
            if let Some(name) = device.as_deref().filter(|name| !host.has_interface(name)) {
                errors.push(Diagnostic::new(
                    self.origins.last(key).cloned(),
                    Some(key),
                    format!("network interface {name:?} does not exist on this machine"),
                ));
            }
        }
        if let Some(ip) = self
            .prometheus_address
            .filter(|&ip| !host.is_local_address(ip))
        {
            errors.push(Diagnostic::new(
                self.origins.last("prometheus-address").cloned(),
                Some("prometheus-address"),
                format!("{ip} is not an address of this machine"),
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, load_with};

    #[test]
    fn static_host() {
        let host = StaticHost {
            addresses: vec!["10.0.0.2".parse().unwrap()],
            interfaces: vec!["lo".into(), "ens3".into()],
        };
        assert!(host.is_local_address("10.0.0.2".parse().unwrap()));
        assert!(host.is_local_address("0.0.0.0".parse().unwrap()));
        assert!(host.is_local_address("::".parse().unwrap()));
        assert!(!host.is_local_address("10.0.0.3".parse().unwrap()));
        assert!(host.has_interface("ens3"));
        assert!(!host.has_interface("eth0"));
    }

    #[test]
    fn system_host_knows_loopback() {
        let host = SystemHost;
        assert!(host.is_local_address("127.0.0.1".parse().unwrap()));
        // TEST-NET-3 is never assigned to a real machine.
        assert!(!host.is_local_address("203.0.113.77".parse().unwrap()));
        assert!(!host.has_interface("../etc"));
        assert!(!host.has_interface(""));
    }

    #[test]
    fn errors_name_the_option_and_argument() {
        let loaded = load_with(
            [
                "-n",
                "-E",
                "10.0.0.2",
                "-E",
                "192.0.2.9",
                "-L",
                "198.51.100.1",
                "--relay-device=eth9",
                "--listening-device",
                "ens3",
                "--prometheus-address=192.0.2.10",
            ],
            &crate::config::SearchPath::new(Vec::<&str>::new()),
        )
        .unwrap();
        let host = StaticHost {
            addresses: vec!["10.0.0.2".parse().unwrap()],
            interfaces: vec!["ens3".into()],
        };
        let errors = loaded.config.check_host(&host);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "command line argument 4: relay-ip: 192.0.2.9 is not an address of this machine, \
                 so relay sockets cannot bind to it; behind NAT, put the private address in \
                 relay-ip and the public one in external-ip",
                "command line argument 6: listening-ip: 198.51.100.1 is not an address of this \
                 machine, so listeners cannot bind to it",
                "command line argument 8: relay-device: network interface \"eth9\" does not exist \
                 on this machine",
                "command line argument 11: prometheus-address: 192.0.2.10 is not an address of \
                 this machine",
            ]
        );
        assert_eq!(errors[0].origin, Some(Origin::CommandLine { position: 4 }));
    }
}
