//! The option table: one row per coturn (or our own) option, shared by the file parser,
//! the argv parser and the usage text, so the three can never disagree on a name.

/// How an option takes its value.
///
/// coturn's `getopt_long` table distinguishes these, and it matters on the command line:
/// a flag never swallows the next argument, while a required value may come after a
/// space (`--realm example.org`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    /// A boolean flag: bare means true, `--flag=off` is allowed.
    Flag,
    /// An optional value given only with `=` on the command line (`--stale-nonce=300`).
    Optional,
    /// A value is required.
    Required,
}

/// When an option is applied, following coturn's three passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Logging options first, so later messages reach the right place.
    Log,
    /// Everything else except users.
    Main,
    /// `user=` last: a `0x` key only makes sense once the realm is final.
    User,
}

/// What an option does; [`super::model`] applies each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opt {
    ListeningPort,
    TlsListeningPort,
    AltListeningPort,
    AltTlsListeningPort,
    TcpProxyPort,
    TcpProxyTrustedIp,
    ListeningIp,
    ListeningDevice,
    RelayIp,
    RelayDevice,
    ExternalIp,
    RelayThreads,
    Cpus,
    RelaySocketBuffer,
    MinPort,
    MaxPort,
    NoUdp,
    NoTcp,
    NoTls,
    NoDtls,
    Dtls,
    NoUdpRelay,
    NoTcpRelay,
    StunOnly,
    NoStun,
    Rfc5780,
    NoRfc5780,
    LtCredMech,
    NoAuth,
    User,
    UseAuthSecret,
    StaticAuthSecret,
    RestApiSeparator,
    Realm,
    ServerName,
    UserQuota,
    MaxTcpRelayConnections,
    UserTcpRelayQuota,
    UnauthorizedRateLimitRps,
    TotalQuota,
    MaxBps,
    BpsCapacity,
    Fingerprint,
    Mobility,
    StaleNonce,
    MaxAllocateLifetime,
    ChannelLifetime,
    PermissionLifetime,
    DeniedPeerIp,
    AllowedPeerIp,
    NoMulticastPeers,
    AllowMulticastPeers,
    AllowLoopbackPeers,
    AllowedOwnHostPort,
    Cert,
    Pkey,
    PkeyPwd,
    CipherList,
    DhFile,
    CaFile,
    EcCurveName,
    NoTlsv1_2,
    AlternateServer,
    UdpAlternateServer,
    TcpAlternateServer,
    TlsAlternateServer,
    Verbose,
    ExtraVerbose,
    LogFile,
    NoStdoutLog,
    Syslog,
    SimpleLog,
    NewLogTimestamp,
    NewLogTimestampFormat,
    SyslogFacility,
    LogBinding,
    Pidfile,
    Daemon,
    ProcUser,
    ProcGroup,
    Prometheus,
    PrometheusPort,
    PrometheusAddress,
    PrometheusPath,
    PrometheusUsernameLabels,
    DrainTimeout,
    DrainMinAllocations,
    SoftwareAttribute,
    NoSoftwareAttribute,
    SoftwareName,
    CheckOriginConsistency,
    KeepAddressFamily,
    AllocationDefaultAddressFamily,
    /// Accepted for compatibility and otherwise ignored; the text says why.
    Ignored(&'static str),
    /// `--check-config`: print the effective configuration and exit.
    CheckConfig,
    /// `--help` / `-h`.
    Help,
    /// `--version`.
    Version,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The long name: the file key and `--name` on the command line (case-sensitive).
    pub(crate) name: &'static str,
    /// coturn's short letter, if any.
    pub(crate) short: Option<char>,
    pub(crate) arg: Arg,
    pub(crate) opt: Opt,
    /// One line for `--help`; empty rows (ignored options) are left out of the usage text.
    pub(crate) help: &'static str,
}

impl Spec {
    pub(crate) fn pass(&self) -> Pass {
        match self.opt {
            Opt::LogFile
            | Opt::NoStdoutLog
            | Opt::Syslog
            | Opt::SimpleLog
            | Opt::NewLogTimestamp
            | Opt::NewLogTimestampFormat
            | Opt::SyslogFacility => Pass::Log,
            Opt::User => Pass::User,
            _ => Pass::Main,
        }
    }

    /// Options that only make sense on the command line (actions).
    pub(crate) fn cli_only(&self) -> bool {
        matches!(self.opt, Opt::CheckConfig | Opt::Help | Opt::Version)
    }
}

const fn row(
    name: &'static str,
    short: Option<char>,
    arg: Arg,
    opt: Opt,
    help: &'static str,
) -> Spec {
    Spec {
        name,
        short,
        arg,
        opt,
        help,
    }
}

const fn ignored(name: &'static str, arg: Arg, why: &'static str) -> Spec {
    row(name, None, arg, Opt::Ignored(why), "")
}

const DB: &str = "user databases are not supported; use static-auth-secret or user=";
const CLI: &str = "the telnet admin CLI does not exist here (coturn 4.10+ has it off too)";
const WEB: &str = "the web admin interface does not exist here";
const OLD_TLS: &str = "TLS 1.0/1.1 and SSL are never offered (rustls speaks TLS 1.2 and 1.3 only)";
const UNSUPPORTED: &str = "not supported by this server";
const MULTIPLEX: &str =
    "multiplex-peer (non-standard) is not supported; use more relay-ip addresses";
const PROMETHEUS_TLS: &str = "the exporter speaks plain HTTP only: bind it to loopback \
     (prometheus-address) or put a TLS proxy in front; metrics stay off unless `prometheus`";

use Arg::{Flag, Optional, Required};

/// Every option we know. Order is the order of the usage text.
pub(crate) const OPTIONS: &[Spec] = &[
    // Listeners.
    row(
        "listening-port",
        Some('p'),
        Required,
        Opt::ListeningPort,
        "UDP and TCP listener port (3478)",
    ),
    row(
        "tls-listening-port",
        None,
        Required,
        Opt::TlsListeningPort,
        "TLS and DTLS listener port (5349)",
    ),
    row(
        "alt-listening-port",
        None,
        Required,
        Opt::AltListeningPort,
        "RFC 5780 alternative port (0 = listening-port + 1)",
    ),
    row(
        "alt-tls-listening-port",
        None,
        Required,
        Opt::AltTlsListeningPort,
        "RFC 5780 alternative TLS port (0 = tls-listening-port + 1)",
    ),
    row(
        "tcp-proxy-port",
        None,
        Required,
        Opt::TcpProxyPort,
        "TCP port that expects a PROXY protocol header",
    ),
    row(
        "tcp-proxy-trusted-ip",
        None,
        Required,
        Opt::TcpProxyTrustedIp,
        "proxy allowed on tcp-proxy-port: IP, A-B or CIDR (repeatable; default: loopback)",
    ),
    row(
        "listening-ip",
        Some('L'),
        Required,
        Opt::ListeningIp,
        "listener address (repeatable; default: all local addresses)",
    ),
    row(
        "listening-device",
        Some('d'),
        Required,
        Opt::ListeningDevice,
        "bind listeners to this network interface",
    ),
    row(
        "relay-ip",
        Some('E'),
        Required,
        Opt::RelayIp,
        "relay address (repeatable; default: automatic)",
    ),
    row(
        "relay-device",
        Some('i'),
        Required,
        Opt::RelayDevice,
        "bind relay sockets to this network interface",
    ),
    row(
        "external-ip",
        Some('X'),
        Required,
        Opt::ExternalIp,
        "public address, or public/private mapping (repeatable)",
    ),
    row(
        "relay-threads",
        Some('m'),
        Required,
        Opt::RelayThreads,
        "relay threads: shards with their own SO_REUSEPORT sockets (one per CPU; 0 = 1)",
    ),
    row(
        "cpus",
        None,
        Required,
        Opt::Cpus,
        "CPUs to count when relay-threads is unset (default: those this process may use)",
    ),
    row(
        "relay-socket-buffer",
        None,
        Required,
        Opt::RelaySocketBuffer,
        "kernel buffer per relay socket, bytes (1048576); listeners get 4x",
    ),
    row(
        "sock-buf-size",
        None,
        Required,
        Opt::RelaySocketBuffer,
        "coturn's name for relay-socket-buffer",
    ),
    row(
        "min-port",
        None,
        Required,
        Opt::MinPort,
        "lowest relay port (49152)",
    ),
    row(
        "max-port",
        None,
        Required,
        Opt::MaxPort,
        "highest relay port (65535)",
    ),
    row("no-udp", None, Flag, Opt::NoUdp, "no UDP client listener"),
    row("no-tcp", None, Flag, Opt::NoTcp, "no TCP client listener"),
    row("no-tls", None, Flag, Opt::NoTls, "no TLS client listener"),
    row(
        "no-dtls",
        None,
        Flag,
        Opt::NoDtls,
        "no DTLS client listener",
    ),
    row(
        "dtls",
        None,
        Flag,
        Opt::Dtls,
        "enable the DTLS client listener (coturn 4.17)",
    ),
    row(
        "no-udp-relay",
        None,
        Flag,
        Opt::NoUdpRelay,
        "refuse UDP relay allocations",
    ),
    row(
        "no-tcp-relay",
        None,
        Flag,
        Opt::NoTcpRelay,
        "refuse TCP (RFC 6062) relay allocations",
    ),
    row(
        "stun-only",
        Some('S'),
        Flag,
        Opt::StunOnly,
        "STUN only, no TURN",
    ),
    row(
        "no-stun",
        None,
        Flag,
        Opt::NoStun,
        "TURN only, no plain STUN binding",
    ),
    row(
        "rfc5780",
        None,
        Flag,
        Opt::Rfc5780,
        "enable RFC 5780 NAT behaviour discovery",
    ),
    row(
        "no-rfc5780",
        None,
        Flag,
        Opt::NoRfc5780,
        "disable RFC 5780 NAT behaviour discovery",
    ),
    // Authentication.
    row(
        "lt-cred-mech",
        Some('a'),
        Flag,
        Opt::LtCredMech,
        "long-term credentials",
    ),
    row(
        "no-auth",
        Some('z'),
        Flag,
        Opt::NoAuth,
        "no authentication at all",
    ),
    row(
        "user",
        Some('u'),
        Required,
        Opt::User,
        "static user name:password or name:0x<key> (repeatable)",
    ),
    row(
        "use-auth-secret",
        None,
        Flag,
        Opt::UseAuthSecret,
        "TURN REST API shared-secret credentials",
    ),
    row(
        "static-auth-secret",
        None,
        Required,
        Opt::StaticAuthSecret,
        "TURN REST API secret (repeatable, for rotation)",
    ),
    row(
        "rest-api-separator",
        Some('C'),
        Required,
        Opt::RestApiSeparator,
        "separator of expiry and user id in REST user names (:)",
    ),
    row("realm", Some('r'), Required, Opt::Realm, "default realm"),
    row(
        "server-name",
        None,
        Required,
        Opt::ServerName,
        "server name (oAuth; default: realm)",
    ),
    row(
        "user-quota",
        Some('q'),
        Required,
        Opt::UserQuota,
        "max allocations per user (0 = unlimited)",
    ),
    row(
        "max-tcp-relay-connections",
        None,
        Required,
        Opt::MaxTcpRelayConnections,
        "RFC 6062 peer connections per TCP allocation (32; 0 = unlimited)",
    ),
    row(
        "user-tcp-relay-quota",
        None,
        Required,
        Opt::UserTcpRelayQuota,
        "RFC 6062 peer connections per user (256; 0 = unlimited)",
    ),
    row(
        "total-quota",
        Some('Q'),
        Required,
        Opt::TotalQuota,
        "max allocations in total (0 = unlimited)",
    ),
    row(
        "max-bps",
        Some('s'),
        Required,
        Opt::MaxBps,
        "max bytes per second per allocation and direction (0 = unlimited)",
    ),
    row(
        "bps-capacity",
        Some('B'),
        Required,
        Opt::BpsCapacity,
        "max bytes per second for the whole server (0 = unlimited)",
    ),
    row(
        "fingerprint",
        Some('f'),
        Flag,
        Opt::Fingerprint,
        "always add FINGERPRINT to responses",
    ),
    row(
        "mobility",
        None,
        Flag,
        Opt::Mobility,
        "RFC 8016 mobility tickets",
    ),
    row(
        "stale-nonce",
        None,
        Optional,
        Opt::StaleNonce,
        "nonce lifetime in seconds (600; 0 = never stale)",
    ),
    row(
        "max-allocate-lifetime",
        None,
        Optional,
        Opt::MaxAllocateLifetime,
        "max allocation lifetime in seconds (3600)",
    ),
    row(
        "channel-lifetime",
        None,
        Optional,
        Opt::ChannelLifetime,
        "channel binding lifetime in seconds (600)",
    ),
    row(
        "permission-lifetime",
        None,
        Optional,
        Opt::PermissionLifetime,
        "permission lifetime in seconds (300)",
    ),
    // Peer policy.
    row(
        "denied-peer-ip",
        None,
        Required,
        Opt::DeniedPeerIp,
        "deny peers: IP, A-B range or CIDR (repeatable)",
    ),
    row(
        "allowed-peer-ip",
        None,
        Required,
        Opt::AllowedPeerIp,
        "allow peers otherwise denied: IP, A-B or CIDR (repeatable)",
    ),
    row(
        "no-multicast-peers",
        None,
        Flag,
        Opt::NoMulticastPeers,
        "deny multicast peers (default: on)",
    ),
    row(
        "allow-multicast-peers",
        None,
        Flag,
        Opt::AllowMulticastPeers,
        "allow multicast peers",
    ),
    row(
        "allow-loopback-peers",
        None,
        Flag,
        Opt::AllowLoopbackPeers,
        "allow loopback peers (tests only)",
    ),
    row(
        "allowed-own-host-port",
        None,
        Required,
        Opt::AllowedOwnHostPort,
        "port or A-B range of this host peers may reach besides relay ports (repeatable)",
    ),
    // TLS.
    row(
        "cert",
        None,
        Required,
        Opt::Cert,
        "certificate chain PEM file (turn_server_cert.pem)",
    ),
    row(
        "pkey",
        None,
        Required,
        Opt::Pkey,
        "private key PEM file (turn_server_pkey.pem)",
    ),
    row(
        "pkey-pwd",
        None,
        Required,
        Opt::PkeyPwd,
        "private key password",
    ),
    row(
        "cipher-list",
        None,
        Required,
        Opt::CipherList,
        "OpenSSL cipher list (accepted; rustls chooses)",
    ),
    row(
        "dh-file",
        None,
        Required,
        Opt::DhFile,
        "DH parameters file (accepted; rustls uses ECDHE)",
    ),
    row(
        "CA-file",
        None,
        Required,
        Opt::CaFile,
        "CA certificates for client certificates",
    ),
    row(
        "ec-curve-name",
        None,
        Required,
        Opt::EcCurveName,
        "ECDH curve (accepted; rustls chooses)",
    ),
    row("no-tlsv1_2", None, Flag, Opt::NoTlsv1_2, "TLS 1.3 only"),
    row(
        "alternate-server",
        None,
        Required,
        Opt::AlternateServer,
        "ALTERNATE-SERVER address[:port] for redirects (repeatable)",
    ),
    row(
        "udp-alternate-server",
        None,
        Required,
        Opt::UdpAlternateServer,
        "ALTERNATE-SERVER for UDP clients, before alternate-server (repeatable)",
    ),
    row(
        "tcp-alternate-server",
        None,
        Required,
        Opt::TcpAlternateServer,
        "ALTERNATE-SERVER for TCP clients, before alternate-server (repeatable)",
    ),
    row(
        "tls-alternate-server",
        None,
        Required,
        Opt::TlsAlternateServer,
        "ALTERNATE-SERVER for TLS clients (repeatable)",
    ),
    // Logging and process.
    row("verbose", Some('v'), Flag, Opt::Verbose, "verbose logging"),
    row(
        "Verbose",
        Some('V'),
        Flag,
        Opt::ExtraVerbose,
        "extra verbose logging (per packet)",
    ),
    row(
        "log-file",
        Some('l'),
        Required,
        Opt::LogFile,
        "log file path, or stdout, - or syslog",
    ),
    row(
        "no-stdout-log",
        None,
        Flag,
        Opt::NoStdoutLog,
        "log only to the log file",
    ),
    row("syslog", None, Flag, Opt::Syslog, "log to syslog"),
    row(
        "simple-log",
        None,
        Flag,
        Opt::SimpleLog,
        "no date in the log file name, no rollover",
    ),
    row(
        "new-log-timestamp",
        None,
        Flag,
        Opt::NewLogTimestamp,
        "ISO-style log timestamps",
    ),
    row(
        "new-log-timestamp-format",
        None,
        Required,
        Opt::NewLogTimestampFormat,
        "strftime format of log timestamps",
    ),
    row(
        "syslog-facility",
        None,
        Required,
        Opt::SyslogFacility,
        "syslog facility",
    ),
    row(
        "log-binding",
        None,
        Flag,
        Opt::LogBinding,
        "log STUN binding requests",
    ),
    row("pidfile", None, Required, Opt::Pidfile, "pid file path"),
    row(
        "daemon",
        Some('o'),
        Flag,
        Opt::Daemon,
        "run in the background (use your service manager instead)",
    ),
    row(
        "proc-user",
        None,
        Required,
        Opt::ProcUser,
        "user to run as after binding",
    ),
    row(
        "proc-group",
        None,
        Required,
        Opt::ProcGroup,
        "group to run as after binding",
    ),
    // Operations.
    row(
        "prometheus",
        None,
        Flag,
        Opt::Prometheus,
        "Prometheus exporter",
    ),
    row(
        "prometheus-port",
        None,
        Required,
        Opt::PrometheusPort,
        "Prometheus exporter port (9641)",
    ),
    row(
        "prometheus-address",
        None,
        Required,
        Opt::PrometheusAddress,
        "Prometheus exporter address (all)",
    ),
    row(
        "prometheus-path",
        None,
        Required,
        Opt::PrometheusPath,
        "Prometheus metrics path (/metrics)",
    ),
    row(
        "prometheus-username-labels",
        None,
        Flag,
        Opt::PrometheusUsernameLabels,
        "per-user metric labels",
    ),
    row(
        "drain-timeout",
        None,
        Required,
        Opt::DrainTimeout,
        "seconds to wait for allocations after SIGUSR1 (0 = until they end)",
    ),
    row(
        "drain-min-allocations",
        None,
        Required,
        Opt::DrainMinAllocations,
        "after SIGUSR1, exit once this many allocations or fewer are left (0)",
    ),
    row(
        "software-attribute",
        None,
        Flag,
        Opt::SoftwareAttribute,
        "send the SOFTWARE attribute",
    ),
    row(
        "no-software-attribute",
        None,
        Flag,
        Opt::NoSoftwareAttribute,
        "do not send SOFTWARE (the default)",
    ),
    row(
        "software-name",
        None,
        Required,
        Opt::SoftwareName,
        "text of the SOFTWARE attribute",
    ),
    row(
        "check-origin-consistency",
        None,
        Flag,
        Opt::CheckOriginConsistency,
        "check ORIGIN consistency",
    ),
    row(
        "keep-address-family",
        Some('K'),
        Flag,
        Opt::KeepAddressFamily,
        "relay family follows the client's",
    ),
    row(
        "allocation-default-address-family",
        Some('A'),
        Required,
        Opt::AllocationDefaultAddressFamily,
        "ipv4, ipv6 or keep",
    ),
    // Actions (command line only).
    row(
        "check-config",
        None,
        Flag,
        Opt::CheckConfig,
        "print the effective configuration and every warning, then exit",
    ),
    row("help", Some('h'), Flag, Opt::Help, "print this help"),
    row("version", None, Flag, Opt::Version, "print the version"),
    // Known coturn options that are removed, no-ops or unsupported here.
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
    ignored("userdb", Required, DB),
    ignored("db", Required, DB),
    ignored("psql-userdb", Required, DB),
    ignored("sql-userdb", Required, DB),
    ignored("mysql-userdb", Required, DB),
    ignored("mongo-userdb", Required, DB),
    ignored("redis-userdb", Required, DB),
    ignored("redis-statsdb", Required, DB),
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
    ignored("max-allocate-timeout", Required, UNSUPPORTED),
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
        "batching is always on where the kernel supports it",
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
    row(
        "unauthorized-ratelimit-rps",
        None,
        Required,
        Opt::UnauthorizedRateLimitRps,
        "401 answers per second per UDP source (10; 0 turns the abuse limits off)",
    ),
    ignored("log-min-level", Required, "use verbose / Verbose"),
    // coturn 4.17's newer options.
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

/// The row for a long name (exact, case-sensitive, as coturn).
pub(crate) fn by_name(name: &str) -> Option<&'static Spec> {
    OPTIONS.iter().find(|spec| spec.name == name)
}

/// The row for a short letter.
pub(crate) fn by_short(letter: char) -> Option<&'static Spec> {
    OPTIONS.iter().find(|spec| spec.short == Some(letter))
}

/// What to add to "unknown option" for `name`: the case-sensitivity reminder when only
/// the case differs, else the closest option name when one is close (a typo such as
/// `listen-port` or `static-auth-secert`), else nothing.
pub(crate) fn unknown_hint(name: &str) -> String {
    if OPTIONS
        .iter()
        .any(|spec| spec.name.eq_ignore_ascii_case(name))
    {
        return " (option names are case-sensitive)".to_owned();
    }
    // Jaro-Winkler weighs a shared start, which is how option names are mistyped; below
    // 0.88 the "closest" name is usually unrelated.
    OPTIONS
        .iter()
        .map(|spec| (strsim::jaro_winkler(name, spec.name), spec.name))
        .filter(|(score, _)| *score >= 0.88)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or_else(String::new, |(_, best)| {
            format!(" (did you mean `{best}`?)")
        })
}

/// Short letters coturn has that map to ignored long options (database back ends).
pub(crate) fn ignored_short(letter: char) -> Option<&'static Spec> {
    let name = match letter {
        'b' => "userdb",
        'e' => "psql-userdb",
        'M' => "mysql-userdb",
        'J' => "mongo-userdb",
        'N' => "redis-userdb",
        'O' => "redis-statsdb",
        _ => return None,
    };
    by_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_letters_are_unique() {
        for (i, a) in OPTIONS.iter().enumerate() {
            for b in &OPTIONS[i + 1..] {
                assert_ne!(a.name, b.name, "duplicate option name");
                if a.short.is_some() {
                    assert_ne!(a.short, b.short, "{} and {} share a letter", a.name, b.name);
                }
            }
        }
    }

    #[test]
    fn coturn_short_letters() {
        let expected = [
            ('p', "listening-port"),
            ('L', "listening-ip"),
            ('E', "relay-ip"),
            ('X', "external-ip"),
            ('r', "realm"),
            ('q', "user-quota"),
            ('Q', "total-quota"),
            ('s', "max-bps"),
            ('B', "bps-capacity"),
            ('f', "fingerprint"),
            ('v', "verbose"),
            ('V', "Verbose"),
            ('a', "lt-cred-mech"),
            ('z', "no-auth"),
            ('u', "user"),
            ('l', "log-file"),
            ('i', "relay-device"),
            ('d', "listening-device"),
            ('m', "relay-threads"),
            ('o', "daemon"),
            ('C', "rest-api-separator"),
            ('S', "stun-only"),
        ];
        for (letter, name) in expected {
            assert_eq!(by_short(letter).map(|s| s.name), Some(name), "-{letter}");
        }
        assert_eq!(ignored_short('N').map(|s| s.name), Some("redis-userdb"));
        assert!(by_short('c').is_none(), "-c is handled before the table");
    }

    #[test]
    fn unknown_names_get_the_closest_option() {
        for (typo, expected) in [
            ("listen-port", " (did you mean `listening-port`?)"),
            (
                "static-auth-secert",
                " (did you mean `static-auth-secret`?)",
            ),
            ("realms", " (did you mean `realm`?)"),
            ("denied-peer-ips", " (did you mean `denied-peer-ip`?)"),
            ("alowed-peer-ip", " (did you mean `allowed-peer-ip`?)"),
            ("VERBOSE", " (option names are case-sensitive)"),
            ("bogus-key", ""),
            ("x", ""),
        ] {
            assert_eq!(unknown_hint(typo), expected, "{typo}");
        }
    }

    /// Every long option of coturn 4.17.1 (`long_options` in src/apps/relay/mainrelay.c
    /// at its release commit 8024aa63): a coturn command line or file never meets
    /// "unknown option" here.
    #[test]
    fn every_coturn_4_17_1_option_is_known() {
        const COTURN_4_17_1: &[&str] = &[
            "listening-device",
            "listening-port",
            "tls-listening-port",
            "alt-listening-port",
            "alt-tls-listening-port",
            "tcp-proxy-port",
            "listening-ip",
            "relay-device",
            "relay-ip",
            "external-ip",
            "relay-threads",
            "min-port",
            "max-port",
            "sock-buf-size",
            "lt-cred-mech",
            "no-auth",
            "user",
            "userdb",
            "db",
            "psql-userdb",
            "sql-userdb",
            "mysql-userdb",
            "mongo-userdb",
            "redis-userdb",
            "redis-statsdb",
            "prometheus",
            "prometheus-port",
            "prometheus-address",
            "prometheus-path",
            "prometheus-username-labels",
            "prometheus-tls",
            "prometheus-cert",
            "prometheus-key",
            "use-auth-secret",
            "static-auth-secret",
            "no-auth-pings",
            "no-dynamic-ip-list",
            "no-dynamic-realms",
            "realm",
            "server-name",
            "oauth",
            "user-quota",
            "total-quota",
            "max-bps",
            "bps-capacity",
            "verbose",
            "Verbose",
            "daemon",
            "no-software-attribute",
            "software-attribute",
            "fingerprint",
            "check-origin-consistency",
            "no-udp",
            "no-tcp",
            "no-tls",
            "dtls",
            "no-dtls",
            "no-udp-relay",
            "no-tcp-relay",
            "stale-nonce",
            "max-allocate-lifetime",
            "channel-lifetime",
            "permission-lifetime",
            "stun-only",
            "no-stun",
            "cert",
            "raw-public-keys",
            "pkey",
            "pkey-pwd",
            "log-file",
            "no-stdout-log",
            "syslog",
            "simple-log",
            "log-min-level",
            "new-log-timestamp",
            "new-log-timestamp-format",
            "aux-server",
            "udp-self-balance",
            "alternate-server",
            "tls-alternate-server",
            "tcp-alternate-server",
            "udp-alternate-server",
            "rest-api-separator",
            "max-allocate-timeout",
            "drain-min-allocations",
            "no-multicast-peers",
            "allow-loopback-peers",
            "allowed-peer-ip",
            "denied-peer-ip",
            "cipher-list",
            "pidfile",
            "secure-stun",
            "CA-file",
            "dh-file",
            "proc-user",
            "proc-group",
            "mobility",
            "no-cli",
            "cli",
            "cli-ip",
            "cli-port",
            "cli-password",
            "web-admin",
            "web-admin-ip",
            "web-admin-port",
            "web-admin-listen-on-workers",
            "server-relay",
            "cli-max-output-sessions",
            "ec-curve-name",
            "dh566",
            "dh1066",
            "tlsv1",
            "tlsv1_1",
            "no-tlsv1_2",
            "secret-key-file",
            "keep-address-family",
            "allocation-default-address-family",
            "acme-redirect",
            "log-binding",
            "no-rfc5780",
            "rfc5780",
            "stun-backward-compatibility",
            "rfc5766-channel-numbers",
            "rfc3489-compatibility",
            "response-origin-only-with-rfc5780",
            "respond-http-unsupported",
            "drop-invalid-packets",
            "drop-invalid-packets-log",
            "udp-recvmmsg",
            "udp-recvmmsg-log",
            "udp-sendmmsg-log",
            "udp-gso",
            "include-reason-string",
            "multiplex-peer",
            "multiplex-peer-port",
            "multiplex-peer-max-peers",
            "version",
            "syslog-facility",
            "cpus",
            "unauthorized-ratelimit",
            "unauthorized-ratelimit-rps",
            "stateless-nonce",
            "stateless-nonce-secret",
        ];
        assert_eq!(COTURN_4_17_1.len(), 143);
        let unknown: Vec<&str> = COTURN_4_17_1
            .iter()
            .copied()
            .filter(|name| by_name(name).is_none())
            .collect();
        assert!(unknown.is_empty(), "unknown coturn options: {unknown:?}");
    }

    #[test]
    fn passes() {
        assert_eq!(by_name("log-file").map(Spec::pass), Some(Pass::Log));
        assert_eq!(by_name("user").map(Spec::pass), Some(Pass::User));
        assert_eq!(by_name("realm").map(Spec::pass), Some(Pass::Main));
        assert!(by_name("verbose").is_some() && by_name("Verbose").is_some());
        assert!(by_name("VERBOSE").is_none(), "keys are case-sensitive");
    }
}
