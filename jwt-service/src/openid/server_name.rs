//! Matrix server names (`host[:port]`, the host a DNS name, IPv4 or `[IPv6]`), validated
//! per the spec's appendix before anything is resolved or fetched, and refused where a
//! URL parser would read the name as an IP address.

use std::net::{IpAddr, Ipv6Addr};

/// The host part of a server name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal (IPv6 without brackets here).
    Ip(IpAddr),
    /// A DNS name, lower-cased.
    Name(String),
}

/// A validated server name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName {
    /// The host.
    pub host: Host,
    /// The explicit port, if any.
    pub port: Option<u16>,
}

/// Not a valid server name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server name {0:?}")]
pub struct InvalidServerName(pub String);

impl ServerName {
    /// Parses and validates `text`.
    pub fn parse(text: &str) -> Result<Self, InvalidServerName> {
        let invalid = || InvalidServerName(text.to_owned());
        if text.is_empty() || text.len() > 255 {
            return Err(invalid());
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or_else(invalid)?;
            let ip: Ipv6Addr = v6.parse().map_err(|_| invalid())?;
            let port = match after {
                "" => None,
                // `[::1]x` and `[::1]:` are both invalid: the port check rejects "".
                _ => Some(after.strip_prefix(':').unwrap_or("")),
            };
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            };
            let host = if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
                Host::Ip(IpAddr::V4(ip))
            } else if is_dns_name(host) && url_reads_as_name(host) {
                Host::Name(host.to_ascii_lowercase())
            } else {
                return Err(invalid());
            };
            (host, port)
        };
        let port = match port {
            None => None,
            Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().map_err(|_| invalid())?)
            }
            Some(_) => return Err(invalid()),
        };
        Ok(Self { host, port })
    }

    /// The host as it goes into a URL (`[v6]` bracketed).
    pub fn url_host(&self) -> String {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            Host::Ip(ip) => ip.to_string(),
            Host::Name(name) => name.clone(),
        }
    }
}

/// `[A-Za-z0-9.-]`, 1-255 characters (the spec's `dns-name`).
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether a URL parser reads `host` as a name too. WHATWG URL parsing (the `url` crate,
/// browsers) turns `0x7f000001`, `127.1`, `2130706433` or `0177.0.0.1` into IPv4
/// addresses, and rejects a name whose last label is a number: a request to such a name
/// would reach an address that was never checked as one, or nothing. IP addresses are
/// accepted only as the spec's literals, which [`ServerName::parse`] reads first.
fn url_reads_as_name(host: &str) -> bool {
    matches!(url::Host::parse(host), Ok(url::Host::Domain(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        let p = |t: &str| ServerName::parse(t).unwrap();
        assert_eq!(
            p("example.com"),
            ServerName {
                host: Host::Name("example.com".into()),
                port: None
            }
        );
        assert_eq!(p("Example.COM:8448").host, Host::Name("example.com".into()));
        assert_eq!(p("example.com:8448").port, Some(8448));
        assert_eq!(p("1.2.3.4").host, Host::Ip("1.2.3.4".parse().unwrap()));
        assert_eq!(p("127.0.0.1:8448").port, Some(8448));
        assert_eq!(p("[::1]").host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(p("[::1]:80").port, Some(80));
        assert_eq!(p("[::1]:80").url_host(), "[::1]");
        assert_eq!(p("localhost").url_host(), "localhost");
        assert_eq!(p("0x7f.example").host, Host::Name("0x7f.example".into()));
        assert_eq!(p("123.example:1").port, Some(1));
        assert_eq!(p("example.com.").url_host(), "example.com.");
    }

    #[test]
    fn invalid_names() {
        for bad in [
            "",
            "a b",
            "a/b",
            "ex_ample.com",
            "host:",
            "host:abc",
            "host:123456",
            "host:70000",
            "::1",
            "[::1",
            "[::1]x",
            "[1.2.3.4]",
            "[::1]:",
            "1.2.3.999",
            "a:1:2",
            "@user:hs",
            "exa\u{e9}mple.com",
            // Names a URL parser turns into an IP address, or refuses.
            "0x7f000001",
            "0x7f000001:8448",
            "0x7f.1",
            "127.1",
            "2130706433",
            "0177.0.0.1",
            "127.0.0.0x1",
            "1.2.3.4.",
            "a.0x10",
            "matrix.123",
        ] {
            assert!(ServerName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ServerName::parse(&"a".repeat(256)).is_err());
    }
}
