//! Checks against the machine the server runs on.
//!
//! A config copied from another host (the usual case when replacing coturn) names
//! addresses and interfaces that may not exist here; binding would then fail with a bare
//! `EADDRNOTAVAIL` far from the line that caused it. These checks name the line instead.
//! The machine is behind [`Host`] so tests inject a fake one.

use std::net::{IpAddr, UdpSocket};
use std::path::Path;

use super::model::EXTERNAL_IP_MAPPINGS;
use super::{Config, Diagnostic, SearchPath};

/// What the checks need to know about the machine.
pub trait Host {
    /// True when a socket can be bound to `ip` here.
    fn is_local_address(&self, ip: IpAddr) -> bool;
    /// True when a network interface of this name exists.
    fn has_interface(&self, name: &str) -> bool;
    /// Every address of the machine's interfaces: the relay must not reach its own host
    /// on them (see `turn_proto::policy::OwnHost`).
    fn addresses(&self) -> std::io::Result<Vec<IpAddr>>;
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

    fn addresses(&self) -> std::io::Result<Vec<IpAddr>> {
        Ok(self.addresses.clone())
    }
}

/// The real machine, without `unsafe`: an address is local when a UDP socket binds to it
/// on an ephemeral port (the kernel's own answer, the same one the relay will get),
/// interfaces are looked up in `/sys/class/net` (Linux), and the addresses come from
/// `getifaddrs`.
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

    fn addresses(&self) -> std::io::Result<Vec<IpAddr>> {
        let interfaces = nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)?;
        let mut addresses: Vec<IpAddr> = interfaces
            .filter_map(|interface| {
                let address = interface.address?;
                if let Some(v4) = address.as_sockaddr_in() {
                    Some(IpAddr::V4(v4.ip()))
                } else {
                    address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
                }
            })
            .collect();
        addresses.sort_unstable();
        addresses.dedup();
        Ok(addresses)
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
        // The private half is the relay's own address behind the NAT (coturn binds relay
        // sockets to it): one from another machine maps nothing and hides a typo.
        let origins = self.origins.of(EXTERNAL_IP_MAPPINGS);
        for (index, mapping) in self.external_ip.mappings.iter().enumerate() {
            if host.is_local_address(mapping.private) {
                continue;
            }
            errors.push(Diagnostic::new(
                origins.get(index).cloned(),
                Some("external-ip"),
                format!(
                    "{} (the private half of {}/{}) is not an address of this machine; write \
                     external-ip=PUBLIC/PRIVATE with PRIVATE an address of this host",
                    mapping.private, mapping.public, mapping.private
                ),
            ));
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

impl Config {
    /// Warnings for TLS files that cannot be found. coturn then starts without its TLS
    /// and DTLS listeners instead of failing, so this is a warning, not an error; relative
    /// names are looked up like the configuration file.
    pub fn check_files(&self, search: &SearchPath) -> Vec<Diagnostic> {
        let mut warnings = Vec::new();
        let tls_wanted = !self.no_tls || self.dtls;
        let mut files = Vec::new();
        if tls_wanted {
            files.push(("cert", Some(&self.cert)));
            files.push(("pkey", Some(&self.pkey)));
        }
        files.push(("CA-file", self.ca_file.as_ref()));
        files.push(("dh-file", self.dh_file.as_ref()));
        for (key, path) in files {
            let Some(path) = path else { continue };
            if search.find(path).is_some() {
                continue;
            }
            let searched = if path.is_absolute() {
                String::new()
            } else {
                let dirs: Vec<String> = search
                    .dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                format!(" (searched: {})", dirs.join(", "))
            };
            let effect = match key {
                "cert" | "pkey" => {
                    "; TLS listeners will not start (set cert= and pkey=, or no-tls)"
                }
                "CA-file" => "; client certificates cannot be verified",
                _ => "",
            };
            warnings.push(Diagnostic::new(
                self.origins.last(key).cloned(),
                Some(key),
                format!("{} not found{searched}{effect}", path.display()),
            ));
        }
        warnings
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
        assert!(
            host.addresses()
                .unwrap()
                .contains(&"127.0.0.1".parse().unwrap())
        );
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
                "-X",
                "203.0.113.1/10.0.0.2",
                "-X",
                "203.0.113.2/10.0.0.9",
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
                "command line argument 14: external-ip: 10.0.0.9 (the private half of \
                 203.0.113.2/10.0.0.9) is not an address of this machine; write \
                 external-ip=PUBLIC/PRIVATE with PRIVATE an address of this host",
                "command line argument 8: relay-device: network interface \"eth9\" does not exist \
                 on this machine",
                "command line argument 11: prometheus-address: 192.0.2.10 is not an address of \
                 this machine",
            ]
        );
        assert_eq!(errors[0].origin, Some(Origin::CommandLine { position: 4 }));
    }

    #[test]
    fn missing_tls_files_warn() {
        let conf_dir =
            std::env::temp_dir().join(format!("turn-check-files-{}", std::process::id()));
        std::fs::create_dir_all(&conf_dir).unwrap();
        std::fs::write(conf_dir.join("turn_server_cert.pem"), "x").unwrap();
        let search = crate::config::SearchPath::new([conf_dir.clone()]);
        let loaded = load_with(["-n"], &search).unwrap();
        let shown: Vec<String> = loaded
            .config
            .check_files(&search)
            .iter()
            .map(ToString::to_string)
            .collect();
        let dir = conf_dir.display();
        assert_eq!(
            shown,
            [format!(
                "pkey: turn_server_pkey.pem not found (searched: {dir}); TLS listeners will not \
                 start (set cert= and pkey=, or no-tls)"
            )]
        );
        let loaded =
            load_with(["-n", "--no-tls", "--CA-file=/nonexistent/ca.pem"], &search).unwrap();
        let shown: Vec<String> = loaded
            .config
            .check_files(&search)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "command line argument 3: CA-file: /nonexistent/ca.pem not found; client \
              certificates cannot be verified"
            ]
        );
        std::fs::remove_dir_all(&conf_dir).unwrap();
    }
}
