//! Translates coturn options into the sans-IO core's [`ServerConfig`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use rtc_auth::ip_range::{IpRange, IpRangeSet};
use rtc_auth::rest::RestVerifier;
use rtc_auth::secret::Secret;

use crate::config::{AddressFamilyPolicy, AuthMode, Config, Host, StaticUser, UserKey};
use turn_proto::auth::{Credentials, UserKeys};
use turn_proto::policy::{OwnHost, PeerPolicy};
use turn_proto::{DefaultFamily, ServerConfig};

/// The core settings for `config`; `generated_secret` is the embedded default's secret,
/// used when no credential mechanism is configured; `host_addresses` are the machine's
/// own addresses ([`host_addresses`]), closed to peers but on relay ports.
pub fn core_config(
    config: &Config,
    generated_secret: Option<&Secret>,
    host_addresses: &[IpAddr],
) -> ServerConfig {
    let realm = config.realm.clone().unwrap_or_default();
    let credentials = match (config.auth_mode(), generated_secret) {
        (AuthMode::SharedSecret, _) => Credentials::Rest(RestVerifier::new(
            config.static_auth_secrets.clone(),
            config.rest_api_separator,
        )),
        (AuthMode::LongTerm, _) => Credentials::Users(
            config
                .users
                .iter()
                .map(|user| (user.name.clone(), user_keys(user, &realm)))
                .collect::<BTreeMap<_, _>>(),
        ),
        (AuthMode::None, _) => Credentials::None,
        (AuthMode::Unconfigured, Some(secret)) => Credentials::Rest(RestVerifier::new(
            vec![secret.clone()],
            config.rest_api_separator,
        )),
        // Never open access by accident: an unconfigured server with no generated secret
        // accepts no one.
        (AuthMode::Unconfigured, None) => Credentials::Users(BTreeMap::new()),
    };
    let mut policy = PeerPolicy::new(
        config.allowed_peer_ips.set.clone(),
        config.denied_peer_ips.set.clone(),
        config.allow_loopback_peers,
        config.no_multicast_peers,
    );
    policy.own_host = own_host(config, host_addresses);
    ServerConfig {
        realm,
        credentials,
        fingerprint: config.fingerprint,
        stale_nonce: config.stale_nonce_lifetime(),
        max_lifetime: Duration::from_secs(u64::from(config.max_allocate_lifetime)),
        permission_lifetime: Duration::from_secs(u64::from(config.permission_lifetime)),
        channel_lifetime: Duration::from_secs(u64::from(config.channel_lifetime)),
        policy,
        user_quota: config.user_quota,
        max_tcp_connections: config.max_tcp_relay_connections,
        user_tcp_connections: config.user_tcp_relay_quota,
        total_quota: config.total_quota,
        max_bps: config.max_bps,
        bps_capacity: config.bps_capacity,
        external_ips: external_ips(config),
        external_ip: if config.relay_ips.is_empty() {
            config.external_ip.addresses.clone()
        } else {
            Vec::new()
        },
        // Without relay-ip the relay address is found per client, in either family.
        relay_ipv4: config.relay_ips.is_empty() || config.relay_ips.iter().any(IpAddr::is_ipv4),
        relay_ipv6: config.relay_ips.is_empty() || config.relay_ips.iter().any(IpAddr::is_ipv6),
        default_family: match config.allocation_default_address_family {
            AddressFamilyPolicy::Ipv4 => DefaultFamily::Ipv4,
            AddressFamilyPolicy::Ipv6 => DefaultFamily::Ipv6,
            AddressFamilyPolicy::Keep => DefaultFamily::Keep,
        },
        alternate_servers: config.alternate_servers.clone(),
        udp_alternate_servers: config.udp_alternate_servers.clone(),
        tcp_alternate_servers: config.tcp_alternate_servers.clone(),
        tls_alternate_servers: config.tls_alternate_servers.clone(),
        mobility: config.mobility,
        udp_relay: !config.no_udp_relay,
        tcp_relay: !config.no_tcp_relay,
        challenge_rate: config.unauthorized_ratelimit_rps,
        ..ServerConfig::default()
    }
}

/// The machine's addresses, read when the configuration is (at start and on SIGHUP); an
/// error leaves only the configured addresses closed, with a warning.
pub fn host_addresses(host: &dyn Host) -> Vec<IpAddr> {
    host.addresses().unwrap_or_else(|error| {
        tracing::warn!(
            %error,
            "cannot list this machine's addresses: only the configured ones are closed to peers"
        );
        Vec::new()
    })
}

/// This host as a peer: every address of it (interfaces, listening, relay, both halves
/// of each `external-ip`, the metrics address) closed except on relay ports and
/// `allowed-own-host-port`; private `external-ip` halves allowed on those ports, for
/// hairpinning (coturn allows them on every port).
fn own_host(config: &Config, host_addresses: &[IpAddr]) -> OwnHost {
    let mappings = &config.external_ip.mappings;
    let configured = config
        .listening_ips
        .iter()
        .chain(&config.relay_ips)
        .chain(&config.external_ip.addresses)
        .chain(mappings.iter().flat_map(|m| [&m.public, &m.private]))
        .chain(&config.prometheus_address);
    let addresses: IpRangeSet = host_addresses
        .iter()
        .chain(configured)
        .filter(|ip| !ip.is_unspecified())
        .map(|ip| IpRange::single(*ip))
        .collect();
    let mut service_ports = vec![config.listening_port, config.tls_listening_port];
    service_ports.extend(config.tcp_proxy_port);
    if config.prometheus {
        service_ports.push(config.prometheus_port);
    }
    OwnHost {
        addresses,
        hairpin: mappings
            .iter()
            .map(|m| IpRange::single(m.private))
            .collect(),
        relay_ports: config.min_port..=config.max_port,
        open_ports: config.allowed_own_host_ports.clone(),
        service_ports,
    }
}

/// A `user=` line's keys: both algorithms from a password, MD5 only from a stored key.
fn user_keys(user: &StaticUser, realm: &str) -> UserKeys {
    match &user.key {
        UserKey::Password(password) => UserKeys::from_password(
            &user.name,
            realm,
            &String::from_utf8_lossy(password.expose()),
        ),
        UserKey::Key(_) => UserKeys {
            md5: user.long_term_key(realm),
            sha256: None,
        },
    }
}

/// (private, public) pairs: form-2 mappings as written, and each form-1 address for every
/// non-loopback relay address of its family (coturn's rule).
fn external_ips(config: &Config) -> Vec<(IpAddr, IpAddr)> {
    let mut pairs: Vec<(IpAddr, IpAddr)> = config
        .external_ip
        .mappings
        .iter()
        .map(|mapping| (mapping.private, mapping.public))
        .collect();
    for &public in &config.external_ip.addresses {
        pairs.extend(
            config
                .relay_ips
                .iter()
                .filter(|ip| ip.is_ipv4() == public.is_ipv4() && !ip.is_loopback())
                .map(|ip| (*ip, public)),
        );
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SearchPath, StaticHost, load_with};
    use turn_proto::policy::Denial;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn load(args: &[&str]) -> Config {
        load_with(
            args.iter().copied(),
            &SearchPath::new(Vec::<std::path::PathBuf>::new()),
        )
        .unwrap()
        .config
    }

    #[test]
    fn rest_secrets_quotas_and_lifetimes() {
        let config = load(&[
            "-n",
            "--use-auth-secret",
            "--static-auth-secret=one",
            "--static-auth-secret=two",
            "--realm=example.org",
            "--user-quota=3",
            "--total-quota=9",
            "--max-bps=1000",
            "--stale-nonce=0",
            "--max-allocate-lifetime=1800",
            "--fingerprint",
        ]);
        let core = core_config(&config, None, &[]);
        let Credentials::Rest(verifier) = &core.credentials else {
            panic!("REST credentials expected");
        };
        assert_eq!(verifier.secrets().len(), 2);
        assert_eq!(core.realm, "example.org");
        assert_eq!(
            (core.user_quota, core.total_quota, core.max_bps),
            (3, 9, 1000)
        );
        assert_eq!(core.stale_nonce, None);
        assert_eq!(core.max_lifetime, Duration::from_secs(1800));
        assert!(core.fingerprint);
    }

    /// `-A` (and `-K`, coturn's older spelling of `-A keep`) reach the core.
    #[test]
    fn allocation_default_address_family_reaches_the_core() {
        let family = |args: &[&str]| core_config(&load(args), None, &[]).default_family;
        assert_eq!(family(&["-n"]), DefaultFamily::Ipv4);
        assert_eq!(family(&["-n", "-A", "ipv6"]), DefaultFamily::Ipv6);
        assert_eq!(
            family(&["-n", "--allocation-default-address-family=keep"]),
            DefaultFamily::Keep
        );
        assert_eq!(family(&["-n", "-K"]), DefaultFamily::Keep);
    }

    #[test]
    fn unconfigured_uses_the_generated_secret_or_nobody() {
        let config = load(&["-n"]);
        let secret = Secret::new("generated");
        assert!(matches!(
            core_config(&config, Some(&secret), &[]).credentials,
            Credentials::Rest(_)
        ));
        let Credentials::Users(users) = core_config(&config, None, &[]).credentials else {
            panic!("closed by default");
        };
        assert!(users.is_empty());
    }

    #[test]
    fn external_ip_forms() {
        let config = load(&[
            "-n",
            "--relay-ip=10.0.0.5",
            "--relay-ip=127.0.0.1",
            "--relay-ip=fd00::5",
            "-X",
            "192.0.2.7",
            "-X",
            "2001:db8::7",
        ]);
        let core = core_config(&config, None, &[]);
        assert_eq!(
            core.external_ips,
            [
                (ip("10.0.0.5"), ip("192.0.2.7")),
                (ip("fd00::5"), ip("2001:db8::7"))
            ],
            "one public address per family"
        );
        assert!(
            core.external_ip.is_empty(),
            "form 1 with relay-ip becomes pairs"
        );
        let config = load(&["-n", "-X", "192.0.2.9", "-X", "2001:db8::9"]);
        assert_eq!(
            core_config(&config, None, &[]).external_ip,
            [ip("192.0.2.9"), ip("2001:db8::9")]
        );
        let config = load(&["-n", "-X", "192.0.2.8/10.0.0.6"]);
        let core = core_config(&config, None, &[]);
        assert_eq!(
            core.external_ips,
            vec![("10.0.0.6".parse().unwrap(), "192.0.2.8".parse().unwrap())]
        );
        let check = |peer: &str| core.policy.check(peer.parse().unwrap());
        assert_eq!(check("10.0.0.6:50000"), Ok(()), "private half: relay ports");
        assert_eq!(check("10.0.0.6:22"), Err(Denial::OwnHost));
    }

    /// With `network_mode: host` a client must not reach the host's services through the
    /// relay: every address of the machine and of the configuration is closed, on every
    /// port but the relay ports and the opened ones.
    #[test]
    fn own_addresses_are_closed_but_on_relay_and_opened_ports() {
        let config = load(&[
            "-n",
            "--listening-ip=192.0.2.20",
            "--relay-ip=192.0.2.21",
            "-X",
            "198.51.100.9/192.0.2.21",
            "--prometheus",
            "--prometheus-address=192.0.2.22",
            "--min-port=40000",
            "--max-port=40100",
            "--listening-port=40050",
            "--allowed-own-host-port=7882",
            "--allowed-peer-ip=192.0.2.0/24",
            "--allowed-peer-ip=198.51.100.0/24",
        ]);
        let host = StaticHost {
            addresses: vec![ip("192.0.2.30"), ip("2001:db8::30")],
            interfaces: Vec::new(),
        };
        let core = core_config(&config, None, &host_addresses(&host));
        let check = |peer: &str| core.policy.check(peer.parse().unwrap());
        for own in [
            "192.0.2.20",
            "192.0.2.21",
            "198.51.100.9",
            "192.0.2.22",
            "192.0.2.30",
            "[2001:db8::30]",
        ] {
            for closed in [22, 6379, 9641, 39999, 40101, 40050] {
                assert_eq!(
                    check(&format!("{own}:{closed}")),
                    Err(Denial::OwnHost),
                    "{own}:{closed}"
                );
            }
            for open in [40000, 40100, 7882] {
                let verdict = check(&format!("{own}:{open}"));
                assert_ne!(verdict, Err(Denial::OwnHost), "{own}:{open}");
            }
        }
        assert_eq!(
            check("192.0.2.40:22"),
            Ok(()),
            "another host of the network"
        );
    }
}
