//! What the core needs to know, already parsed and validated by `config`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::auth::Credentials;
use super::policy::PeerPolicy;

/// Settings of the sans-IO server (lifetimes per RFC 8656 and coturn defaults).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// REALM sent in challenges and used in long-term keys.
    pub realm: String,
    /// The credential mechanism.
    pub credentials: Credentials,
    /// Add FINGERPRINT to every response (`fingerprint`); responses to requests that
    /// carried one always get one.
    pub fingerprint: bool,
    /// Nonce lifetime (`stale-nonce`); None = never stale.
    pub stale_nonce: Option<Duration>,
    /// Allocation lifetime when the client asks for less (RFC 8656 §7.2: 600 s).
    pub default_lifetime: Duration,
    /// Longest lifetime granted (`max-allocate-lifetime`, 3600 s).
    pub max_lifetime: Duration,
    /// Permission lifetime (RFC 8656 §9: 300 s).
    pub permission_lifetime: Duration,
    /// Channel lifetime (RFC 8656 §12: 600 s).
    pub channel_lifetime: Duration,
    /// Peer policy.
    pub policy: PeerPolicy,
    /// `user-quota`; 0 = unlimited.
    pub user_quota: u32,
    /// `total-quota`; 0 = unlimited.
    pub total_quota: u32,
    /// `max-bps` per allocation and direction, bytes per second; 0 = unlimited.
    pub max_bps: u64,
    /// `bps-capacity`; 0 = unlimited.
    pub bps_capacity: u64,
    /// `external-ip` pairs (private relay address, public address).
    pub external_ips: Vec<(IpAddr, IpAddr)>,
    /// `external-ip=X` without `relay-ip`, at most one per address family: the public
    /// address for every relay address of its family that no pair names (loopback
    /// excepted, as coturn).
    pub external_ip: Vec<IpAddr>,
    /// Relay address families available (IPv4, IPv6).
    pub relay_ipv4: bool,
    /// See `relay_ipv4`.
    pub relay_ipv6: bool,
    /// `allocation-default-address-family`: the relay family of an Allocate that names
    /// none. RFC 8656 says IPv4; coturn lets the operator choose, and clients rely on it.
    pub default_family: DefaultFamily,
    /// Most permissions one allocation may hold (508 beyond; coturn caps them too).
    pub max_permissions: usize,
    /// Most channels one allocation may bind.
    pub max_channels: usize,
    /// `max-tcp-relay-connections`: RFC 6062 peer connections one TCP allocation may hold
    /// (Connects and peers connecting in); 0 = unlimited.
    pub max_tcp_connections: u32,
    /// `user-tcp-relay-quota`: RFC 6062 peer connections one user may hold over all
    /// allocations and shards; 0 = unlimited.
    pub user_tcp_connections: u32,
    /// `alternate-server`: Allocate over UDP/TCP is redirected (300) round-robin to these.
    pub alternate_servers: Vec<SocketAddr>,
    /// `udp-alternate-server`: for UDP clients in place of `alternate_servers`.
    pub udp_alternate_servers: Vec<SocketAddr>,
    /// `tcp-alternate-server`: for TCP clients in place of `alternate_servers`.
    pub tcp_alternate_servers: Vec<SocketAddr>,
    /// `tls-alternate-server`: the same for TLS clients.
    pub tls_alternate_servers: Vec<SocketAddr>,
    /// `mobility` (RFC 8016): issue and honour MOBILITY-TICKET.
    pub mobility: bool,
    /// UDP relays allowed (`no-udp-relay` turns them off: 442).
    pub udp_relay: bool,
    /// RFC 6062 TCP relays allowed (`no-tcp-relay` turns them off: 442).
    pub tcp_relay: bool,
    /// Per-source 401 answers per second on UDP (burst twice that); 0 turns the abuse
    /// limits off.
    pub challenge_rate: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            realm: String::new(),
            credentials: Credentials::None,
            fingerprint: false,
            stale_nonce: Some(Duration::from_secs(600)),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            policy: PeerPolicy::default(),
            user_quota: 0,
            total_quota: 0,
            max_bps: 0,
            bps_capacity: 0,
            external_ips: Vec::new(),
            external_ip: Vec::new(),
            relay_ipv4: true,
            relay_ipv6: false,
            default_family: DefaultFamily::Ipv4,
            max_permissions: 64,
            max_channels: 64,
            max_tcp_connections: 32,
            user_tcp_connections: 256,
            alternate_servers: Vec::new(),
            udp_alternate_servers: Vec::new(),
            tcp_alternate_servers: Vec::new(),
            tls_alternate_servers: Vec::new(),
            mobility: false,
            udp_relay: true,
            tcp_relay: true,
            challenge_rate: 10,
        }
    }
}

/// The relay family of an Allocate without REQUESTED-ADDRESS-FAMILY or
/// ADDITIONAL-ADDRESS-FAMILY (coturn's `allocation-default-address-family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultFamily {
    /// IPv4, as RFC 8656 §7.2 says.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// The family of the client's own transport address (coturn's `keep`).
    Keep,
}
