//! coturn options that are removed, no-ops or unsupported here. They are accepted in the
//! file and on the command line with a warning that says why, so a coturn configuration
//! starts unchanged.

use super::Arg::{Flag, Required};
use super::{Spec, ignored};

/// Why the database options are ignored.
const DB: &str = "user databases are not supported; use static-auth-secret or user=";
/// Why the telnet admin CLI options are ignored.
const CLI: &str = "the telnet admin CLI does not exist here (coturn 4.10+ has it off too)";
/// Why the web admin options are ignored.
const WEB: &str = "the web admin interface does not exist here";
/// Why the old TLS and SSL version switches are ignored.
const OLD_TLS: &str = "TLS 1.0/1.1 and SSL are never offered (rustls speaks TLS 1.2 and 1.3 only)";
/// Why the other unsupported coturn features are ignored.
const UNSUPPORTED: &str = "not supported by this server";
/// Why coturn 4.17's peer multiplexing options are ignored.
const MULTIPLEX: &str =
    "multiplex-peer (non-standard) is not supported; use more relay-ip addresses";
/// Why the exporter's TLS options are ignored.
const PROMETHEUS_TLS: &str = "the exporter speaks plain HTTP only: bind it to loopback \
     (prometheus-address) or put a TLS proxy in front; metrics stay off unless `prometheus`";

/// Known coturn options that are removed, no-ops or unsupported here.
pub(super) const IGNORED: &[Spec] = &[
    ignored("no-tlsv1", Flag, OLD_TLS),
    ignored("no-tlsv1_1", Flag, OLD_TLS),
    ignored("tlsv1", Flag, OLD_TLS),
    ignored("tlsv1_1", Flag, OLD_TLS),
    ignored("no-sslv2", Flag, OLD_TLS),
    ignored("no-sslv3", Flag, OLD_TLS),
    ignored("dh566", Flag, "weak DH groups are never used"),
    ignored("dh1066", Flag, "weak DH groups are never used"),
    ignored(
        "no-loopback-peers",
        Flag,
        "loopback peers are denied by default (allow-loopback-peers opens them)",
    ),
    ignored(
        "hide-credentials",
        Flag,
        "not a coturn option; credentials are never logged here",
    ),
    ignored("no-cli", Flag, CLI),
    ignored("cli", Flag, CLI),
    ignored("cli-ip", Required, CLI),
    ignored("cli-port", Required, CLI),
    ignored("cli-password", Required, CLI),
    ignored("cli-max-output-sessions", Required, CLI),
    ignored("web-admin", Flag, WEB),
    ignored("web-admin-ip", Required, WEB),
    ignored("web-admin-port", Required, WEB),
    ignored("web-admin-listen-on-workers", Flag, WEB),
    ignored("userdb", Required, DB).letter('b'),
    ignored("db", Required, DB),
    ignored("psql-userdb", Required, DB).letter('e'),
    ignored("sql-userdb", Required, DB),
    ignored("mysql-userdb", Required, DB).letter('M'),
    ignored("mongo-userdb", Required, DB).letter('J'),
    ignored("redis-userdb", Required, DB).letter('N'),
    ignored("redis-statsdb", Required, DB).letter('O'),
    ignored("secret-key-file", Required, DB),
    ignored("no-dynamic-ip-list", Flag, DB),
    ignored("no-dynamic-realms", Flag, DB),
    ignored("no-auth-pings", Flag, DB),
    ignored("oauth", Flag, UNSUPPORTED),
    ignored(
        "server-relay",
        Flag,
        "non-standard and dangerous; never enabled",
    ),
    ignored("aux-server", Required, UNSUPPORTED),
    ignored("udp-self-balance", Flag, UNSUPPORTED),
    ignored("secure-stun", Flag, UNSUPPORTED),
    ignored("raw-public-keys", Flag, UNSUPPORTED),
    ignored("acme-redirect", Required, UNSUPPORTED),
    ignored(
        "ne",
        Required,
        "network engine selection does not apply here",
    ),
    ignored("no-stun-backward-compatibility", Flag, UNSUPPORTED),
    ignored("response-origin-only-with-rfc5780", Flag, UNSUPPORTED),
    ignored("respond-http-unsupported", Flag, UNSUPPORTED),
    ignored(
        "multiplex-peer",
        Flag,
        "non-standard; use more relay-ip addresses instead",
    ),
    ignored(
        "udp-recvmmsg",
        Flag,
        "batching is always on where the kernel supports it",
    ),
    ignored(
        "udp-sendmmsg",
        Flag,
        "batching is always on where the kernel supports it",
    ),
    ignored(
        "udp-gso",
        Flag,
        "UDP GSO is always on where the kernel supports it",
    ),
    ignored(
        "drop-invalid-packets",
        Flag,
        "invalid packets are always dropped",
    ),
    ignored("stateless-nonce", Flag, "nonces are always stateless"),
    ignored(
        "unauthorized-ratelimit",
        Flag,
        "per-source limits are always on",
    ),
];

/// More of them, from coturn 4.17 (listed after `unauthorized-ratelimit-rps`).
pub(super) const IGNORED_LATER: &[Spec] = &[
    ignored("log-min-level", Required, "use verbose / Verbose"),
    ignored(
        "drop-invalid-packets-log",
        Flag,
        "invalid packets are counted, never logged (a flood must not become one of log lines)",
    ),
    ignored(
        "include-reason-string",
        Flag,
        "error responses carry only the standard reason phrase, so nothing internal leaks",
    ),
    ignored("multiplex-peer-port", Required, MULTIPLEX),
    ignored("multiplex-peer-max-peers", Required, MULTIPLEX),
    ignored("prometheus-tls", Flag, PROMETHEUS_TLS),
    ignored("prometheus-cert", Required, PROMETHEUS_TLS),
    ignored("prometheus-key", Required, PROMETHEUS_TLS),
    ignored(
        "rfc3489-compatibility",
        Flag,
        "classic STUN (RFC 3489) requests, without the magic cookie, are not answered",
    ),
    ignored(
        "rfc5766-channel-numbers",
        Flag,
        "channel numbers 0x4000-0x7FFF are always accepted (RFC 5766 clients still use them)",
    ),
    ignored(
        "stateless-nonce-secret",
        Required,
        "nonces are keyed per process; a client that moves to another server gets one 438",
    ),
    ignored(
        "stun-backward-compatibility",
        Flag,
        "MAPPED-ADDRESS is never added to Binding responses (it only adds amplification)",
    ),
    ignored(
        "udp-recvmmsg-log",
        Flag,
        "batch statistics are not logged; the metrics count what is relayed and dropped",
    ),
    ignored(
        "udp-sendmmsg-log",
        Flag,
        "batch statistics are not logged; the metrics count what is relayed and dropped",
    ),
];
