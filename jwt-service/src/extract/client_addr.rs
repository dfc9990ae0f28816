//! The client's address, for the rate limit and the logs. Behind a reverse proxy the
//! TCP peer is the proxy, so with `LIVEKIT_TRUSTED_PROXIES` set, a request whose peer
//! is a trusted proxy is attributed to the address the proxies recorded: the rightmost
//! `X-Forwarded-For` entry (else `Forwarded: for=`) that is not itself a trusted proxy.
//! Walking from the right means a client cannot pick its own address by sending a
//! forged header: the entries a client writes sit left of what the proxies append.
//! Nothing is trusted by default.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use rtc_auth::ip_range::IpRangeSet;

use crate::state::AppState;

/// The client's address; `None` only for requests that did not come through a listener
/// (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(Self(peer.map(|peer| {
            client_ip(peer, &parts.headers, &state.0.trusted_proxies)
        })))
    }
}

/// The client behind `peer` (see the module docs).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &IpRangeSet) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_chain(headers).iter().rev() {
        let Some(hop) = hop else {
            // "unknown", an obfuscated name or garbage: nothing further is known.
            return client;
        };
        client = hop.to_canonical();
        if !trusted.contains(client) {
            return client;
        }
    }
    client
}

/// The addresses the proxies recorded, first hop first: every `X-Forwarded-For` line in
/// order, or if there is none, the `for=` of every `Forwarded` element. `None` marks an
/// entry that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .map(|entry| parse_node(entry.trim()))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("for=?").split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.eq_ignore_ascii_case("for")
                    .then(|| parse_node(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:5678`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &forged, &IpRangeSet::new()),
            ip("198.51.100.7")
        );
        let trusted = IpRangeSet::parse(["10.0.0.0/8"]).unwrap();
        assert_eq!(
            client_ip(ip("198.51.100.7"), &forged, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = IpRangeSet::parse(["10.0.0.0/8", "::1"]).unwrap();
        // The client forged the first entry; the proxy appended the real one.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &chain, &trusted),
            ip("203.0.113.9")
        );
        // Two proxies; IPv4 peers arrive mapped on a dual-stack listener.
        let chain = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "10.0.0.3"),
        ]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &chain, &trusted),
            ip("203.0.113.9")
        );
        // Ports and brackets.
        let chain = headers(&[("x-forwarded-for", "[2001:db8::5]:4711")]);
        assert_eq!(client_ip(ip("::1"), &chain, &trusted), ip("2001:db8::5"));
        // Every hop trusted: the first one.
        let chain = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.3")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &chain, &trusted), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        // Garbage stops the walk at the last hop known.
        let chain = headers(&[("x-forwarded-for", "203.0.113.9, nonsense, 10.0.0.3")]);
        assert_eq!(client_ip(ip("10.0.0.2"), &chain, &trusted), ip("10.0.0.3"));
    }

    #[test]
    fn forwarded_header_when_there_is_no_x_forwarded_for() {
        let trusted = IpRangeSet::parse(["10.0.0.0/8"]).unwrap();
        let chain = headers(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711""#,
        )]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &chain, &trusted),
            ip("2001:db8:cafe::17")
        );
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &unknown, &trusted),
            ip("10.0.0.2")
        );
        // X-Forwarded-For wins: that is the header the usual proxies append to.
        let both = headers(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &both, &trusted),
            ip("203.0.113.9")
        );
    }
}
