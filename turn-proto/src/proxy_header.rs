//! PROXY protocol v1 and v2 headers (HAProxy's specification), for a TCP listener behind
//! Traefik or HAProxy (`tcp-proxy-port`): the header carries the real client address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Longest v1 header, CRLF included.
pub const V1_MAX_LEN: usize = 107;

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The proxied connection's source and destination.
    Proxied {
        /// The real client.
        source: SocketAddr,
        /// The address the client connected to at the proxy.
        destination: SocketAddr,
    },
    /// The proxy's own connection (health check, `LOCAL`/`UNKNOWN`): use the socket's
    /// addresses.
    Local,
}

/// Why a header is refused: the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Neither signature.
    #[error("no PROXY protocol header")]
    Missing,
    /// A signature followed by something malformed.
    #[error("malformed PROXY protocol header")]
    Malformed,
}

/// Parses the header at the start of `buf`: `Ok(None)` when more bytes are needed, else
/// the header and its length in bytes.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let v2_prefix = buf.len().min(12);
    if buf[..v2_prefix] == V2_SIGNATURE[..v2_prefix] {
        return if buf.len() < 16 {
            Ok(None)
        } else {
            parse_v2(buf)
        };
    }
    let v1_prefix = buf.len().min(6);
    if buf[..v1_prefix] == b"PROXY "[..v1_prefix] {
        return parse_v1(buf);
    }
    Err(ProxyError::Missing)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyError::Malformed)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::Malformed)?;
    let fields: Vec<&str> = line.split(' ').collect();
    let header = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => ProxyHeader::Local,
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |text: &str| text.parse::<IpAddr>().map_err(|_| ProxyError::Malformed);
            let port = |text: &str| text.parse::<u16>().map_err(|_| ProxyError::Malformed);
            let (src, dst) = (ip(src)?, ip(dst)?);
            if src.is_ipv4() != (*family == "TCP4") || dst.is_ipv4() != src.is_ipv4() {
                return Err(ProxyError::Malformed);
            }
            ProxyHeader::Proxied {
                source: SocketAddr::new(src, port(sport)?),
                destination: SocketAddr::new(dst, port(dport)?),
            }
        }
        _ => return Err(ProxyError::Malformed),
    };
    Ok(Some((header, end + 2)))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let (version_command, family) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if version_command >> 4 != 2 {
        return Err(ProxyError::Malformed);
    }
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[16..total];
    let header = match (version_command & 0x0F, family) {
        (0x0, _) => ProxyHeader::Local,
        // TCP over IPv4, then IPv6; TLVs after the addresses are ignored.
        (0x1, 0x11) if body.len() >= 12 => ProxyHeader::Proxied {
            source: SocketAddr::new(
                Ipv4Addr::new(body[0], body[1], body[2], body[3]).into(),
                u16::from_be_bytes([body[8], body[9]]),
            ),
            destination: SocketAddr::new(
                Ipv4Addr::new(body[4], body[5], body[6], body[7]).into(),
                u16::from_be_bytes([body[10], body[11]]),
            ),
        },
        (0x1, 0x21) if body.len() >= 36 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&body[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), u16::from_be_bytes([body[32], body[33]])),
                destination: SocketAddr::new(ip(16), u16::from_be_bytes([body[34], body[35]])),
            }
        }
        // UNSPEC or a family we do not relay for (UDP, unix): the proxy's own address.
        (0x1, 0x00) => ProxyHeader::Local,
        _ => return Err(ProxyError::Malformed),
    };
    Ok(Some((header, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn v1() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 3478\r\nSTUN...";
        assert_eq!(
            parse(line),
            Ok(Some((
                ProxyHeader::Proxied {
                    source: addr("192.0.2.7:56324"),
                    destination: addr("198.51.100.1:3478")
                },
                46
            )))
        );
        let v6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n";
        assert!(matches!(
            parse(v6),
            Ok(Some((ProxyHeader::Proxied { .. }, 45)))
        ));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(Some((ProxyHeader::Local, 15)))
        );
        assert_eq!(parse(b"PROXY TCP4 192.0.2.7"), Ok(None), "partial");
        assert_eq!(parse(b"PRO"), Ok(None));
        for bad in [
            &b"PROXY TCP4 192.0.2.7 2001:db8::1 1 2\r\n"[..],
            b"PROXY TCP4 x y 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 192.0.2.8 99999 2\r\n",
            b"PROXY SCTP a b c d\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Err(ProxyError::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(&[b'P'; V1_MAX_LEN + 1][..]), Err(ProxyError::Missing));
        let mut long = b"PROXY ".to_vec();
        long.resize(V1_MAX_LEN, b'x');
        assert_eq!(
            parse(&long),
            Err(ProxyError::Malformed),
            "no CRLF within 107 bytes"
        );
        assert_eq!(
            parse(&[0x00, 0x01, 0x00, 0x00]),
            Err(ProxyError::Missing),
            "bare STUN"
        );
    }

    #[test]
    fn v2() {
        let mut header = V2_SIGNATURE.to_vec();
        header.extend_from_slice(&[0x21, 0x11, 0, 12 + 3]);
        header.extend_from_slice(&[192, 0, 2, 7, 198, 51, 100, 1]);
        header.extend_from_slice(&56324u16.to_be_bytes());
        header.extend_from_slice(&3478u16.to_be_bytes());
        header.extend_from_slice(&[0x04, 0, 0]); // a TLV, ignored
        let expected = ProxyHeader::Proxied {
            source: addr("192.0.2.7:56324"),
            destination: addr("198.51.100.1:3478"),
        };
        assert_eq!(parse(&header), Ok(Some((expected, 31))));
        for cut in 0..header.len() {
            assert_eq!(parse(&header[..cut]), Ok(None), "partial at {cut}");
        }
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(parse(&local), Ok(Some((ProxyHeader::Local, 16))));
        let mut bad_version = V2_SIGNATURE.to_vec();
        bad_version.extend_from_slice(&[0x11, 0x11, 0, 0]);
        assert_eq!(parse(&bad_version), Err(ProxyError::Malformed));
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert_eq!(
            parse(&short),
            Err(ProxyError::Malformed),
            "addresses missing"
        );
        let mut v6 = V2_SIGNATURE.to_vec();
        v6.extend_from_slice(&[0x21, 0x21, 0, 36]);
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6.extend_from_slice(&[0; 12]);
        v6.extend_from_slice(&[0; 16]);
        v6.extend_from_slice(&[0x10, 0x00, 0x0d, 0x96]);
        let Ok(Some((ProxyHeader::Proxied { source, .. }, 52))) = parse(&v6) else {
            panic!("v6 header");
        };
        assert_eq!(source, addr("[2001:db8::]:4096"));
    }
}
