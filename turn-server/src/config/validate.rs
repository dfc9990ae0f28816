//! Checks between options, run once every value is in: conflicts (`lt-cred-mech` with
//! `no-auth`, an empty relay port range), settings that make others moot (a shared secret
//! over `user=` accounts), and coturn's automatic additions (`lt-cred-mech` when users
//! exist). Each message points at the line that completed the conflict, the later one of
//! the two, so an operator fixes the right line.

use super::model::{AuthMode, Config, Origins};
use super::{Diagnostic, Origin};

/// Checks `c` as a whole and makes coturn's automatic additions to it; what it finds is
/// added to `warnings` and `errors`.
pub(crate) fn validate(
    c: &mut Config,
    warnings: &mut Vec<Diagnostic>,
    errors: &mut Vec<Diagnostic>,
) {
    let at = |key: &str| last_origin(&c.origins, key);

    if c.min_port > c.max_port {
        let (origin, key) = later(&c.origins, "min-port", "max-port");
        errors.push(Diagnostic::new(
            origin,
            Some(key),
            format!(
                "min-port ({}) is greater than max-port ({}): no relay port is left",
                c.min_port, c.max_port
            ),
        ));
    }
    if c.no_udp_relay && c.no_tcp_relay {
        let (origin, key) = later(&c.origins, "no-udp-relay", "no-tcp-relay");
        errors.push(Diagnostic::new(
            origin,
            Some(key),
            "no-udp-relay and no-tcp-relay together leave no relay transport",
        ));
    }
    if c.lt_cred_mech && c.no_auth {
        let (origin, key) = later(&c.origins, "lt-cred-mech", "no-auth");
        errors.push(Diagnostic::new(
            origin,
            Some(key),
            "lt-cred-mech and no-auth cannot be used together",
        ));
    }
    if c.use_auth_secret && c.static_auth_secrets.is_empty() {
        errors.push(Diagnostic::new(
            at("use-auth-secret"),
            Some("use-auth-secret"),
            "no static-auth-secret is set (user databases are not supported), so no \
             client could authenticate",
        ));
    }
    if c.stun_only && c.no_stun {
        let (origin, key) = later(&c.origins, "stun-only", "no-stun");
        errors.push(Diagnostic::new(
            origin,
            Some(key),
            "stun-only and no-stun together leave nothing to serve",
        ));
    }
    if c.no_udp && c.no_tcp && c.no_tls && !c.dtls {
        let (origin, key) = later(&c.origins, "no-udp", "no-tls");
        errors.push(Diagnostic::new(
            origin,
            Some(key),
            "no-udp, no-tcp and no-tls leave no client listener",
        ));
    }
    if c.use_auth_secret && !c.users.is_empty() {
        warnings.push(Diagnostic::new(
            c.origins.of("user").first().cloned(),
            Some("user"),
            "the shared secret (static-auth-secret) overrides user= accounts; they are not \
             used for authentication",
        ));
    }
    if c.no_auth && !c.users.is_empty() {
        warnings.push(Diagnostic::new(
            at("no-auth"),
            Some("no-auth"),
            "no-auth is set, so user= accounts are ignored",
        ));
    }
    if !c.users.is_empty() && !c.lt_cred_mech && !c.use_auth_secret && !c.no_auth {
        c.lt_cred_mech = true;
        warnings.push(Diagnostic::new(
            c.origins.of("user").first().cloned(),
            Some("user"),
            "user= accounts without lt-cred-mech: turning lt-cred-mech on, as coturn does",
        ));
    }
    if matches!(c.auth_mode(), AuthMode::LongTerm | AuthMode::SharedSecret) && c.realm.is_none() {
        warnings.push(Diagnostic::new(
            None,
            Some("realm"),
            "no realm is set; clients will be told an empty realm (set realm=your.domain)",
        ));
    }
    if c.tcp_proxy_port.is_some() && c.tcp_proxy_trusted_ips.set.is_empty() {
        warnings.push(Diagnostic::new(
            at("tcp-proxy-port"),
            Some("tcp-proxy-port"),
            "only a proxy on loopback is trusted to send PROXY headers; name yours with \
             tcp-proxy-trusted-ip (its address, or its network's CIDR)",
        ));
    }
    if c.allow_loopback_peers {
        warnings.push(Diagnostic::new(
            at("allow-loopback-peers"),
            Some("allow-loopback-peers"),
            "clients can reach services on this host's loopback; use only for tests",
        ));
    }
    if !c.no_multicast_peers {
        let (origin, key) = later(&c.origins, "allow-multicast-peers", "no-multicast-peers");
        warnings.push(Diagnostic::new(
            origin,
            Some(key),
            "multicast peers are allowed",
        ));
    }
    if c.daemon {
        warnings.push(Diagnostic::new(
            at("daemon"),
            Some("daemon"),
            "ignored: the server never forks; run it under your service manager",
        ));
    }
    if c.no_dtls {
        warnings.push(Diagnostic::new(
            at("no-dtls"),
            Some("no-dtls"),
            "ignored: DTLS is off unless `dtls` is set (coturn 4.17 behaviour)",
        ));
    }
    // OpenSSL knobs: rustls decides these itself, so say they are not applied.
    for (key, set, why) in [
        (
            "cipher-list",
            c.cipher_list.is_some(),
            "ignored: rustls offers its own TLS 1.2/1.3 cipher suites",
        ),
        (
            "dh-file",
            c.dh_file.is_some(),
            "ignored: rustls uses ECDHE key exchange only",
        ),
        (
            "ec-curve-name",
            c.ec_curve_name.is_some(),
            "ignored: rustls chooses the key exchange groups",
        ),
    ] {
        if set {
            warnings.push(Diagnostic::new(at(key), Some(key), why));
        }
    }
}

fn last_origin(origins: &Origins, key: &str) -> Option<Origin> {
    origins.last(key).cloned()
}

/// The later-set of two options, to point a conflict at the line that completed it.
fn later(origins: &Origins, a: &'static str, b: &'static str) -> (Option<Origin>, &'static str) {
    match (origins.last(a), origins.last(b)) {
        (Some(oa), Some(ob)) => {
            if origin_rank(ob) >= origin_rank(oa) {
                (Some(ob.clone()), b)
            } else {
                (Some(oa.clone()), a)
            }
        }
        (Some(oa), None) => (Some(oa.clone()), a),
        (None, Some(ob)) => (Some(ob.clone()), b),
        (None, None) => (None, a),
    }
}

/// Command-line values are applied after file values, and lines in file order.
fn origin_rank(origin: &Origin) -> (u8, usize) {
    match origin {
        Origin::File { line, .. } => (0, *line),
        Origin::CommandLine { position } => (1, *position),
    }
}
