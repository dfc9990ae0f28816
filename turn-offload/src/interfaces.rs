//! Which interfaces the program watches for a server's addresses: the program sees
//! packets on the ingress of the interface they arrive on, which for a host's own
//! addresses is (almost always) the interface that holds the address.

use std::collections::BTreeSet;
use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

use crate::unavailable::Unavailable;

/// Linux link types the program understands: it expects a 14-byte Ethernet header
/// (loopback has one too).
pub(crate) const ARPHRD_ETHER: u16 = 1;
pub(crate) const ARPHRD_LOOPBACK: u16 = 772;

/// One interface as the rules below need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) up: bool,
    /// `ARPHRD_*`; None when the kernel listed no link-layer address for it.
    pub(crate) hatype: Option<u16>,
    pub(crate) addresses: Vec<IpAddr>,
}

impl Link {
    pub(crate) fn supported(&self) -> bool {
        matches!(self.hatype, Some(ARPHRD_ETHER | ARPHRD_LOOPBACK))
    }
}

/// The interfaces to attach to for a server listening and relaying on `addresses`:
///
/// - a concrete address: the interface that holds it (`lo` for loopback addresses);
/// - a wildcard (`0.0.0.0`, `::`): every interface that is up, has an address of that
///   family and an Ethernet or loopback link (tunnels and other link types are left
///   out: their packets are relayed in userspace).
///
/// An address no interface holds, or held by an interface of another link type, makes
/// the fast path unavailable: its packets could never be relayed in the kernel.
pub fn interfaces_for(addresses: &[IpAddr]) -> Result<Vec<String>, Unavailable> {
    let links = links().map_err(|e| Unavailable {
        reason: format!("listing interfaces: {e}"),
    })?;
    choose(&links, addresses)
}

pub(crate) fn choose(links: &[Link], addresses: &[IpAddr]) -> Result<Vec<String>, Unavailable> {
    let mut chosen = BTreeSet::new();
    for &address in addresses {
        if address.is_loopback() {
            // 127.0.0.0/8 is all `lo`'s, though it lists 127.0.0.1 alone.
            chosen.insert("lo".to_owned());
            continue;
        }
        if address.is_unspecified() {
            chosen.extend(
                links
                    .iter()
                    .filter(|l| l.up && l.supported())
                    .filter(|l| l.addresses.iter().any(|a| a.is_ipv4() == address.is_ipv4()))
                    .map(|l| l.name.clone()),
            );
            continue;
        }
        let Some(link) = links.iter().find(|l| l.addresses.contains(&address)) else {
            return Err(Unavailable {
                reason: format!("no interface holds {address}"),
            });
        };
        if !link.supported() {
            return Err(Unavailable {
                reason: format!(
                    "{address} is on {}, whose link type the program does not handle \
                     (Ethernet and loopback only)",
                    link.name
                ),
            });
        }
        chosen.insert(link.name.clone());
    }
    if chosen.is_empty() {
        return Err(Unavailable {
            reason: "no Ethernet or loopback interface holds the server's addresses".into(),
        });
    }
    Ok(chosen.into_iter().collect())
}

/// The host's interfaces, from getifaddrs(3).
pub(crate) fn links() -> nix::Result<Vec<Link>> {
    let mut links: Vec<Link> = Vec::new();
    for entry in getifaddrs()? {
        let index = match links.iter().position(|l| l.name == entry.interface_name) {
            Some(index) => index,
            None => {
                links.push(Link {
                    name: entry.interface_name.clone(),
                    up: false,
                    hatype: None,
                    addresses: Vec::new(),
                });
                links.len() - 1
            }
        };
        let link = &mut links[index];
        link.up |= entry.flags.contains(InterfaceFlags::IFF_UP);
        let Some(address) = entry.address else {
            continue;
        };
        if let Some(hw) = address.as_link_addr() {
            link.hatype = Some(hw.hatype());
        } else if let Some(v4) = address.as_sockaddr_in() {
            link.addresses.push(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = address.as_sockaddr_in6() {
            link.addresses.push(IpAddr::V6(v6.ip()));
        }
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, hatype: u16, addresses: &[&str]) -> Link {
        Link {
            name: name.into(),
            up: true,
            hatype: Some(hatype),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn host() -> Vec<Link> {
        vec![
            link("lo", ARPHRD_LOOPBACK, &["127.0.0.1", "::1"]),
            link("eth0", ARPHRD_ETHER, &["198.51.100.1", "2001:db8::1"]),
            link("eth1", ARPHRD_ETHER, &["10.0.0.1"]),
            // A WireGuard tunnel (ARPHRD_NONE).
            link("wg0", 65534, &["10.9.0.1"]),
            Link {
                up: false,
                ..link("eth2", ARPHRD_ETHER, &["10.1.0.1"])
            },
        ]
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn concrete_addresses_pick_their_interface() {
        let chosen = choose(&host(), &ips(&["198.51.100.1", "10.0.0.1", "198.51.100.1"]));
        assert_eq!(chosen.unwrap(), vec!["eth0", "eth1"]);
        assert_eq!(choose(&host(), &ips(&["127.0.0.1"])).unwrap(), vec!["lo"]);
        assert_eq!(choose(&host(), &ips(&["::1"])).unwrap(), vec!["lo"]);
        assert_eq!(choose(&host(), &ips(&["127.0.0.2"])).unwrap(), vec!["lo"]);
    }

    #[test]
    fn wildcards_pick_every_usable_interface_of_their_family() {
        assert_eq!(
            choose(&host(), &ips(&["0.0.0.0"])).unwrap(),
            vec!["eth0", "eth1", "lo"]
        );
        assert_eq!(choose(&host(), &ips(&["::"])).unwrap(), vec!["eth0", "lo"]);
    }

    #[test]
    fn addresses_the_program_cannot_see_are_named() {
        let err = choose(&host(), &ips(&["10.9.0.1"])).unwrap_err();
        assert!(err.reason.contains("wg0"), "{err}");
        let err = choose(&host(), &ips(&["192.0.2.1"])).unwrap_err();
        assert_eq!(err.reason, "no interface holds 192.0.2.1");
        assert!(choose(&host(), &[]).is_err());
    }

    #[test]
    fn this_host_has_loopback() {
        let links = links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo" && l.supported()));
    }
}
