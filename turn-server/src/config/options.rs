//! The option table: one row per coturn (or our own) option, shared by the file parser,
//! the argv parser and the usage text, so the three can never disagree on a name. Each
//! row also says what applying the option does ([`Setter`]) and in which pass, so adding
//! an option is one row here plus its field in [`Config`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use rtc_auth::secret::Secret;

use super::model::{
    AddressFamilyPolicy, Config, DEFAULT_ALTERNATE_PORT, DEFAULT_CHANNEL_LIFETIME,
    DEFAULT_MAX_ALLOCATE_LIFETIME, DEFAULT_PERMISSION_LIFETIME, DEFAULT_TLS_ALTERNATE_PORT,
    EXTERNAL_IP_MAPPINGS, ExternalMapping, MAX_REALM_CHARS, MAX_SECRET_BYTES, PeerList, UserKey,
    Verbosity,
};
use super::values::{
    address_family, boolean, device, ip, kernel_offload, lifetime, log_file, number, port_or_zero,
    port_range, server_address, socket_buffer, stale_nonce as stale_nonce_value,
    user as user_value,
};
use super::{Action, Diagnostic, Origin};

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

/// What applying an option does. The common shapes name the [`Config`] field and
/// [`super::apply`] parses the value for it; [`Setter::Custom`] is for the rest.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Setter {
    /// A port, 1-65535.
    Port(fn(&mut Config) -> &mut u16),
    /// A non-negative whole number.
    Number(fn(&mut Config) -> &mut u32),
    /// A non-negative whole number that may exceed 32 bits (bytes per second).
    Number64(fn(&mut Config) -> &mut u64),
    /// A boolean in coturn's spellings; a bare flag is true.
    Bool(fn(&mut Config) -> &mut bool),
    /// The opposite of a boolean: `no-rfc5780` turns `rfc5780` off.
    NotBool(fn(&mut Config) -> &mut bool),
    /// Text kept as written.
    Text(fn(&mut Config) -> &mut Option<String>),
    /// A file name kept as written (relative names are looked up when used).
    File(fn(&mut Config) -> &mut Option<PathBuf>),
    /// One more IP address (no host names) in a list.
    Ips(fn(&mut Config) -> &mut Vec<IpAddr>),
    /// One more IP, `A-B` range or CIDR in a peer list.
    Ranges(fn(&mut Config) -> &mut PeerList),
    /// Anything else: the function parses the value and stores it.
    Custom(fn(&mut Target<'_>, &str) -> Result<(), String>),
    /// Accepted for compatibility and otherwise ignored, with a warning saying why.
    Ignored(&'static str),
    /// A command-line action; a file line naming it is ignored with a warning.
    Action(Action),
}

/// What a [`Setter::Custom`] function works on.
pub(crate) struct Target<'a> {
    /// The configuration built so far.
    pub(crate) config: &'a mut Config,
    /// The option's name: the key of its [`super::Origins`].
    pub(crate) key: &'static str,
    /// The file line or argument the value comes from.
    pub(crate) origin: &'a Origin,
    /// Where [`Target::warn`] puts its warnings.
    pub(crate) warnings: &'a mut Vec<Diagnostic>,
}

impl Target<'_> {
    /// A warning about this value, naming its line and option.
    pub(crate) fn warn(&mut self, message: impl Into<String>) {
        self.warnings
            .push(Diagnostic::at(self.origin, self.key, message));
    }
}

/// Stores a parsed value in `field`, or passes the parser's message on.
fn set<T>(field: &mut T, parsed: Result<T, String>) -> Result<(), String> {
    *field = parsed?;
    Ok(())
}

/// Adds a parsed value to the list `field`, or passes the parser's message on.
fn push<T>(field: &mut Vec<T>, parsed: Result<T, String>) -> Result<(), String> {
    field.push(parsed?);
    Ok(())
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The long name: the file key and `--name` on the command line (case-sensitive).
    pub(crate) name: &'static str,
    /// coturn's short letter, if any.
    pub(crate) short: Option<char>,
    /// How the option takes its value.
    pub(crate) arg: Arg,
    /// One line for `--help`; empty rows (ignored options) are left out of the usage text.
    pub(crate) help: &'static str,
    /// What applying the option does.
    pub(crate) setter: Setter,
    pass: Pass,
}

impl Spec {
    /// The pass in which the option is applied.
    pub(crate) fn pass(&self) -> Pass {
        self.pass
    }

    /// Options that only make sense on the command line (actions).
    pub(crate) fn cli_only(&self) -> bool {
        matches!(self.setter, Setter::Action(_))
    }

    /// The row applied in `pass` instead of [`Pass::Main`].
    const fn in_pass(self, pass: Pass) -> Self {
        Self { pass, ..self }
    }

    /// The row with coturn's short letter (for ignored options, which [`ignored`] makes
    /// without one).
    const fn letter(self, letter: char) -> Self {
        Self {
            short: Some(letter),
            ..self
        }
    }
}

/// A row applied in the main pass.
const fn row(
    name: &'static str,
    short: Option<char>,
    arg: Arg,
    help: &'static str,
    setter: Setter,
) -> Spec {
    Spec {
        name,
        short,
        arg,
        help,
        setter,
        pass: Pass::Main,
    }
}

/// A row for an option that is accepted and ignored: `why` is the warning.
const fn ignored(name: &'static str, arg: Arg, why: &'static str) -> Spec {
    row(name, None, arg, "", Setter::Ignored(why))
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
use Setter::{Bool, Custom, File, Ips, NotBool, Number, Number64, Port, Ranges, Text};

/// Every option we know. Order is the order of the usage text.
pub(crate) const OPTIONS: &[Spec] = &[
    // Listeners.
    row(
        "listening-port",
        Some('p'),
        Required,
        "UDP and TCP listener port (3478)",
        Port(|c| &mut c.listening_port),
    ),
    row(
        "tls-listening-port",
        None,
        Required,
        "TLS and DTLS listener port (5349)",
        Port(|c| &mut c.tls_listening_port),
    ),
    row(
        "alt-listening-port",
        None,
        Required,
        "RFC 5780 alternative port (0 = listening-port + 1)",
        Custom(|t, v| set(&mut t.config.alt_listening_port, port_or_zero(v))),
    ),
    row(
        "alt-tls-listening-port",
        None,
        Required,
        "RFC 5780 alternative TLS port (0 = tls-listening-port + 1)",
        Custom(|t, v| set(&mut t.config.alt_tls_listening_port, port_or_zero(v))),
    ),
    row(
        "tcp-proxy-port",
        None,
        Required,
        "TCP port that expects a PROXY protocol header",
        Custom(tcp_proxy_port),
    ),
    row(
        "tcp-proxy-trusted-ip",
        None,
        Required,
        "proxy allowed on tcp-proxy-port: IP, A-B or CIDR (repeatable; default: loopback)",
        Ranges(|c| &mut c.tcp_proxy_trusted_ips),
    ),
    row(
        "listening-ip",
        Some('L'),
        Required,
        "listener address (repeatable; default: all local addresses)",
        Ips(|c| &mut c.listening_ips),
    ),
    row(
        "listening-device",
        Some('d'),
        Required,
        "bind listeners to this network interface",
        Custom(|t, v| set(&mut t.config.listening_device, device(v).map(Some))),
    ),
    row(
        "relay-ip",
        Some('E'),
        Required,
        "relay address (repeatable; default: automatic)",
        Ips(|c| &mut c.relay_ips),
    ),
    row(
        "relay-device",
        Some('i'),
        Required,
        "bind relay sockets to this network interface",
        Custom(|t, v| set(&mut t.config.relay_device, device(v).map(Some))),
    ),
    row(
        "external-ip",
        Some('X'),
        Required,
        "public address, or public/private mapping (repeatable)",
        Custom(external_ip),
    ),
    row(
        "relay-threads",
        Some('m'),
        Required,
        "relay threads: shards with their own SO_REUSEPORT sockets (one per CPU; 0 = 1)",
        Custom(|t, v| set(&mut t.config.relay_threads, number(v).map(Some))),
    ),
    row(
        "cpus",
        None,
        Required,
        "CPUs to count when relay-threads is unset (default: those this process may use)",
        Custom(cpus),
    ),
    row(
        "relay-socket-buffer",
        None,
        Required,
        "kernel buffer per relay socket, bytes (1048576); listeners get 4x",
        Custom(|t, v| set(&mut t.config.relay_socket_buffer, socket_buffer(v))),
    ),
    row(
        "sock-buf-size",
        None,
        Required,
        "coturn's name for relay-socket-buffer",
        Custom(|t, v| set(&mut t.config.relay_socket_buffer, socket_buffer(v))),
    ),
    row(
        "kernel-offload",
        None,
        Required,
        "relay channel-bound UDP in the kernel (eBPF): off (default), auto or on",
        Custom(|t, v| set(&mut t.config.kernel_offload, kernel_offload(v))),
    ),
    row(
        "min-port",
        None,
        Required,
        "lowest relay port (49152)",
        Port(|c| &mut c.min_port),
    ),
    row(
        "max-port",
        None,
        Required,
        "highest relay port (65535)",
        Port(|c| &mut c.max_port),
    ),
    row(
        "no-udp",
        None,
        Flag,
        "no UDP client listener",
        Bool(|c| &mut c.no_udp),
    ),
    row(
        "no-tcp",
        None,
        Flag,
        "no TCP client listener",
        Bool(|c| &mut c.no_tcp),
    ),
    row(
        "no-tls",
        None,
        Flag,
        "no TLS client listener",
        Bool(|c| &mut c.no_tls),
    ),
    row(
        "no-dtls",
        None,
        Flag,
        "no DTLS client listener",
        Bool(|c| &mut c.no_dtls),
    ),
    row(
        "dtls",
        None,
        Flag,
        "enable the DTLS client listener (coturn 4.17)",
        Bool(|c| &mut c.dtls),
    ),
    row(
        "no-udp-relay",
        None,
        Flag,
        "refuse UDP relay allocations",
        Bool(|c| &mut c.no_udp_relay),
    ),
    row(
        "no-tcp-relay",
        None,
        Flag,
        "refuse TCP (RFC 6062) relay allocations",
        Bool(|c| &mut c.no_tcp_relay),
    ),
    row(
        "stun-only",
        Some('S'),
        Flag,
        "STUN only, no TURN",
        Bool(|c| &mut c.stun_only),
    ),
    row(
        "no-stun",
        None,
        Flag,
        "TURN only, no plain STUN binding",
        Bool(|c| &mut c.no_stun),
    ),
    row(
        "rfc5780",
        None,
        Flag,
        "enable RFC 5780 NAT behaviour discovery",
        Bool(|c| &mut c.rfc5780),
    ),
    row(
        "no-rfc5780",
        None,
        Flag,
        "disable RFC 5780 NAT behaviour discovery",
        NotBool(|c| &mut c.rfc5780),
    ),
    // Authentication.
    row(
        "lt-cred-mech",
        Some('a'),
        Flag,
        "long-term credentials",
        Bool(|c| &mut c.lt_cred_mech),
    ),
    row(
        "no-auth",
        Some('z'),
        Flag,
        "no authentication at all",
        Bool(|c| &mut c.no_auth),
    ),
    row(
        "user",
        Some('u'),
        Required,
        "static user name:password or name:0x<key> (repeatable)",
        Custom(user),
    )
    .in_pass(Pass::User),
    row(
        "use-auth-secret",
        None,
        Flag,
        "TURN REST API shared-secret credentials",
        Bool(|c| &mut c.use_auth_secret),
    ),
    row(
        "static-auth-secret",
        None,
        Required,
        "TURN REST API secret (repeatable, for rotation)",
        Custom(static_auth_secret),
    ),
    row(
        "rest-api-separator",
        Some('C'),
        Required,
        "separator of expiry and user id in REST user names (:)",
        Custom(rest_api_separator),
    ),
    row("realm", Some('r'), Required, "default realm", Custom(realm)),
    row(
        "server-name",
        None,
        Required,
        "server name (oAuth; default: realm)",
        Text(|c| &mut c.server_name),
    ),
    row(
        "user-quota",
        Some('q'),
        Required,
        "max allocations per user (0 = unlimited)",
        Number(|c| &mut c.user_quota),
    ),
    row(
        "max-tcp-relay-connections",
        None,
        Required,
        "RFC 6062 peer connections per TCP allocation (32; 0 = unlimited)",
        Number(|c| &mut c.max_tcp_relay_connections),
    ),
    row(
        "user-tcp-relay-quota",
        None,
        Required,
        "RFC 6062 peer connections per user (256; 0 = unlimited)",
        Number(|c| &mut c.user_tcp_relay_quota),
    ),
    row(
        "max-tcp-clients",
        None,
        Required,
        "TCP and TLS client connections in total (10000; 0 = unlimited)",
        Number(|c| &mut c.max_tcp_clients),
    ),
    row(
        "max-tcp-clients-per-ip",
        None,
        Required,
        "TCP and TLS client connections per source address or IPv6 /64 (200; 0 = unlimited)",
        Number(|c| &mut c.max_tcp_clients_per_ip),
    ),
    row(
        "max-allocate-timeout",
        None,
        Required,
        "seconds a TCP/TLS client may stay connected without an allocation (60)",
        Custom(max_allocate_timeout),
    ),
    row(
        "total-quota",
        Some('Q'),
        Required,
        "max allocations in total (0 = unlimited)",
        Number(|c| &mut c.total_quota),
    ),
    row(
        "max-bps",
        Some('s'),
        Required,
        "max bytes per second per allocation and direction (0 = unlimited)",
        Number64(|c| &mut c.max_bps),
    ),
    row(
        "bps-capacity",
        Some('B'),
        Required,
        "max bytes per second for the whole server (0 = unlimited)",
        Number64(|c| &mut c.bps_capacity),
    ),
    row(
        "fingerprint",
        Some('f'),
        Flag,
        "always add FINGERPRINT to responses",
        Bool(|c| &mut c.fingerprint),
    ),
    row(
        "mobility",
        None,
        Flag,
        "RFC 8016 mobility tickets",
        Bool(|c| &mut c.mobility),
    ),
    row(
        "stale-nonce",
        None,
        Optional,
        "nonce lifetime in seconds (600; 0 = never stale)",
        Custom(stale_nonce),
    ),
    row(
        "max-allocate-lifetime",
        None,
        Optional,
        "max allocation lifetime in seconds (3600)",
        Custom(|t, v| {
            set(
                &mut t.config.max_allocate_lifetime,
                lifetime(v, DEFAULT_MAX_ALLOCATE_LIFETIME),
            )
        }),
    ),
    row(
        "channel-lifetime",
        None,
        Optional,
        "channel binding lifetime in seconds (600)",
        Custom(|t, v| {
            set(
                &mut t.config.channel_lifetime,
                lifetime(v, DEFAULT_CHANNEL_LIFETIME),
            )
        }),
    ),
    row(
        "permission-lifetime",
        None,
        Optional,
        "permission lifetime in seconds (300)",
        Custom(|t, v| {
            set(
                &mut t.config.permission_lifetime,
                lifetime(v, DEFAULT_PERMISSION_LIFETIME),
            )
        }),
    ),
    // Peer policy.
    row(
        "denied-peer-ip",
        None,
        Required,
        "deny peers: IP, A-B range or CIDR (repeatable)",
        Ranges(|c| &mut c.denied_peer_ips),
    ),
    row(
        "allowed-peer-ip",
        None,
        Required,
        "allow peers otherwise denied: IP, A-B or CIDR (repeatable)",
        Ranges(|c| &mut c.allowed_peer_ips),
    ),
    row(
        "no-multicast-peers",
        None,
        Flag,
        "deny multicast peers (default: on)",
        Bool(|c| &mut c.no_multicast_peers),
    ),
    row(
        "allow-multicast-peers",
        None,
        Flag,
        "allow multicast peers",
        NotBool(|c| &mut c.no_multicast_peers),
    ),
    row(
        "allow-loopback-peers",
        None,
        Flag,
        "allow loopback peers (tests only)",
        Bool(|c| &mut c.allow_loopback_peers),
    ),
    row(
        "allowed-own-host-port",
        None,
        Required,
        "port or A-B range of this host peers may reach besides relay ports (repeatable)",
        Custom(|t, v| push(&mut t.config.allowed_own_host_ports, port_range(v))),
    ),
    // TLS.
    row(
        "cert",
        None,
        Required,
        "certificate chain PEM file (turn_server_cert.pem)",
        Custom(|t, v| {
            t.config.cert = PathBuf::from(v);
            Ok(())
        }),
    ),
    row(
        "pkey",
        None,
        Required,
        "private key PEM file (turn_server_pkey.pem)",
        Custom(|t, v| {
            t.config.pkey = PathBuf::from(v);
            Ok(())
        }),
    ),
    row(
        "pkey-pwd",
        None,
        Required,
        "private key password",
        Custom(|t, v| {
            t.config.pkey_pwd = Some(Secret::new(v));
            Ok(())
        }),
    ),
    row(
        "cipher-list",
        None,
        Required,
        "OpenSSL cipher list (accepted; rustls chooses)",
        Text(|c| &mut c.cipher_list),
    ),
    row(
        "dh-file",
        None,
        Required,
        "DH parameters file (accepted; rustls uses ECDHE)",
        File(|c| &mut c.dh_file),
    ),
    row(
        "CA-file",
        None,
        Required,
        "CA certificates for client certificates",
        File(|c| &mut c.ca_file),
    ),
    row(
        "ec-curve-name",
        None,
        Required,
        "ECDH curve (accepted; rustls chooses)",
        Text(|c| &mut c.ec_curve_name),
    ),
    row(
        "no-tlsv1_2",
        None,
        Flag,
        "TLS 1.3 only",
        Bool(|c| &mut c.no_tlsv1_2),
    ),
    row(
        "alternate-server",
        None,
        Required,
        "ALTERNATE-SERVER address[:port] for redirects (repeatable)",
        Custom(|t, v| {
            push(
                &mut t.config.alternate_servers,
                server_address(v, DEFAULT_ALTERNATE_PORT),
            )
        }),
    ),
    row(
        "udp-alternate-server",
        None,
        Required,
        "ALTERNATE-SERVER for UDP clients, before alternate-server (repeatable)",
        Custom(|t, v| {
            push(
                &mut t.config.udp_alternate_servers,
                server_address(v, DEFAULT_ALTERNATE_PORT),
            )
        }),
    ),
    row(
        "tcp-alternate-server",
        None,
        Required,
        "ALTERNATE-SERVER for TCP clients, before alternate-server (repeatable)",
        Custom(|t, v| {
            push(
                &mut t.config.tcp_alternate_servers,
                server_address(v, DEFAULT_ALTERNATE_PORT),
            )
        }),
    ),
    row(
        "tls-alternate-server",
        None,
        Required,
        "ALTERNATE-SERVER for TLS clients (repeatable)",
        Custom(|t, v| {
            push(
                &mut t.config.tls_alternate_servers,
                server_address(v, DEFAULT_TLS_ALTERNATE_PORT),
            )
        }),
    ),
    // Logging and process.
    row(
        "verbose",
        Some('v'),
        Flag,
        "verbose logging",
        Custom(verbose),
    ),
    row(
        "Verbose",
        Some('V'),
        Flag,
        "extra verbose logging (per packet)",
        Custom(extra_verbose),
    ),
    row(
        "log-file",
        Some('l'),
        Required,
        "log file path, or stdout, - or syslog",
        Custom(|t, v| {
            t.config.log_file = Some(log_file(v));
            Ok(())
        }),
    )
    .in_pass(Pass::Log),
    row(
        "no-stdout-log",
        None,
        Flag,
        "log only to the log file",
        Bool(|c| &mut c.no_stdout_log),
    )
    .in_pass(Pass::Log),
    row(
        "syslog",
        None,
        Flag,
        "log to syslog",
        Bool(|c| &mut c.syslog),
    )
    .in_pass(Pass::Log),
    row(
        "simple-log",
        None,
        Flag,
        "no date in the log file name, no rollover",
        Bool(|c| &mut c.simple_log),
    )
    .in_pass(Pass::Log),
    row(
        "new-log-timestamp",
        None,
        Flag,
        "ISO-style log timestamps",
        Bool(|c| &mut c.new_log_timestamp),
    )
    .in_pass(Pass::Log),
    row(
        "new-log-timestamp-format",
        None,
        Required,
        "strftime format of log timestamps",
        Text(|c| &mut c.new_log_timestamp_format),
    )
    .in_pass(Pass::Log),
    row(
        "syslog-facility",
        None,
        Required,
        "syslog facility",
        Text(|c| &mut c.syslog_facility),
    )
    .in_pass(Pass::Log),
    row(
        "log-binding",
        None,
        Flag,
        "log STUN binding requests",
        Bool(|c| &mut c.log_binding),
    ),
    row(
        "pidfile",
        None,
        Required,
        "pid file path",
        File(|c| &mut c.pidfile),
    ),
    row(
        "daemon",
        Some('o'),
        Flag,
        "run in the background (use your service manager instead)",
        Bool(|c| &mut c.daemon),
    ),
    row(
        "proc-user",
        None,
        Required,
        "user to run as after binding",
        Text(|c| &mut c.proc_user),
    ),
    row(
        "proc-group",
        None,
        Required,
        "group to run as after binding",
        Text(|c| &mut c.proc_group),
    ),
    // Operations.
    row(
        "prometheus",
        None,
        Flag,
        "Prometheus exporter",
        Bool(|c| &mut c.prometheus),
    ),
    row(
        "prometheus-port",
        None,
        Required,
        "Prometheus exporter port (9641)",
        Port(|c| &mut c.prometheus_port),
    ),
    row(
        "prometheus-address",
        None,
        Required,
        "Prometheus exporter address (all)",
        Custom(|t, v| set(&mut t.config.prometheus_address, ip(v).map(Some))),
    ),
    row(
        "prometheus-path",
        None,
        Required,
        "Prometheus metrics path (/metrics)",
        Custom(prometheus_path),
    ),
    row(
        "prometheus-username-labels",
        None,
        Flag,
        "per-user metric labels",
        Bool(|c| &mut c.prometheus_username_labels),
    ),
    row(
        "drain-timeout",
        None,
        Required,
        "seconds to wait for allocations after SIGUSR1 (0 = until they end)",
        Custom(drain_timeout),
    ),
    row(
        "drain-min-allocations",
        None,
        Required,
        "after SIGUSR1, exit once this many allocations or fewer are left (0)",
        Number(|c| &mut c.drain_min_allocations),
    ),
    row(
        "software-attribute",
        None,
        Flag,
        "send the SOFTWARE attribute",
        Bool(|c| &mut c.software_attribute),
    ),
    row(
        "no-software-attribute",
        None,
        Flag,
        "do not send SOFTWARE (the default)",
        NotBool(|c| &mut c.software_attribute),
    ),
    row(
        "software-name",
        None,
        Required,
        "text of the SOFTWARE attribute",
        Text(|c| &mut c.software_name),
    ),
    row(
        "check-origin-consistency",
        None,
        Flag,
        "check ORIGIN consistency",
        Bool(|c| &mut c.check_origin_consistency),
    ),
    row(
        "keep-address-family",
        Some('K'),
        Flag,
        "relay family follows the client's",
        Custom(keep_address_family),
    ),
    row(
        "allocation-default-address-family",
        Some('A'),
        Required,
        "ipv4, ipv6 or keep",
        Custom(|t, v| {
            set(
                &mut t.config.allocation_default_address_family,
                address_family(v),
            )
        }),
    ),
    // Actions (command line only).
    row(
        "check-config",
        None,
        Flag,
        "print the effective configuration and every warning, then exit",
        Setter::Action(Action::CheckConfig),
    ),
    row(
        "help",
        Some('h'),
        Flag,
        "print this help",
        Setter::Action(Action::Help),
    ),
    row(
        "version",
        None,
        Flag,
        "print the version",
        Setter::Action(Action::Version),
    ),
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
    row(
        "unauthorized-ratelimit-rps",
        None,
        Required,
        "401 answers per second per UDP source (10; 0 turns the abuse limits off)",
        Number(|c| &mut c.unauthorized_ratelimit_rps),
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

/// `tcp-proxy-port`: 0 means no PROXY protocol listener.
fn tcp_proxy_port(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    t.config.tcp_proxy_port = Some(port_or_zero(value)?).filter(|&port| port != 0);
    Ok(())
}

/// `external-ip` in both forms: `PUBLIC/PRIVATE` mappings (repeatable), or one public
/// address per address family.
fn external_ip(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if let Some((public, private)) = value.split_once('/') {
        let public = ip(public)?;
        let private = ip(private)?;
        if public.is_ipv4() != private.is_ipv4() {
            return Err(format!("{value:?} maps addresses of different families"));
        }
        t.config
            .external_ip
            .mappings
            .push(ExternalMapping { public, private });
        t.config
            .origins
            .push(EXTERNAL_IP_MAPPINGS, t.origin.clone());
        return Ok(());
    }
    let address = ip(value)?;
    // The single-address lines so far are the option's origins that are no mapping's, in
    // the order of `addresses`.
    let origins = &t.config.origins;
    let mappings = origins.of(EXTERNAL_IP_MAPPINGS);
    let singles = origins
        .of(t.key)
        .iter()
        .filter(|origin| !mappings.contains(origin));
    if let Some((first, at)) = t
        .config
        .external_ip
        .addresses
        .iter()
        .zip(singles)
        .find(|(first, _)| first.is_ipv4() == address.is_ipv4())
    {
        return Err(format!(
            "external-ip without '/' may be given only once per address family ({first} \
             was set at {at}); use public/private pairs for several addresses"
        ));
    }
    t.config.external_ip.addresses.push(address);
    Ok(())
}

/// `cpus`: at least one.
fn cpus(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    match number(value)? {
        0 => Err("must be at least 1".to_owned()),
        cpus => {
            t.config.cpus = Some(cpus);
            Ok(())
        }
    }
}

/// `user=`: a `0x` key without a realm gets a warning (it only works for its realm).
fn user(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let user = user_value(value)?;
    if matches!(user.key, UserKey::Key(_)) && t.config.realm.is_none() {
        t.warn(format!(
            "user {} has a 0x key, which only works for the realm it was computed with, \
             but no realm is set",
            user.name
        ));
    }
    t.config.users.push(user);
    Ok(())
}

/// `static-auth-secret`: one more secret (rotation), and shared-secret credentials on.
fn static_auth_secret(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if value.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "secret is {} bytes long; at most {MAX_SECRET_BYTES} are allowed",
            value.len()
        ));
    }
    t.config.static_auth_secrets.push(Secret::new(value));
    t.config.use_auth_secret = true;
    Ok(())
}

/// `rest-api-separator`: its first character, with a warning if there are more.
fn rest_api_separator(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    // `apply` rejects empty values for options that need one.
    let first = chars.next().ok_or("needs a value")?;
    if chars.next().is_some() {
        t.warn(format!(
            "only the first character {first:?} is used as the separator"
        ));
    }
    t.config.rest_api_separator = first;
    Ok(())
}

/// `realm`: no longer than STUN allows.
fn realm(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_REALM_CHARS {
        return Err(format!("realm is longer than {MAX_REALM_CHARS} characters"));
    }
    t.config.realm = Some(value.to_owned());
    Ok(())
}

/// `max-allocate-timeout`: whole seconds, at least one.
fn max_allocate_timeout(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let seconds: u64 = number(value)?;
    if seconds == 0 {
        return Err("must be at least 1 second".into());
    }
    t.config.max_allocate_timeout = Duration::from_secs(seconds);
    Ok(())
}

/// `stale-nonce`: coturn's reading of the number, with a warning where it surprises.
fn stale_nonce(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let (seconds, note) = stale_nonce_value(value)?;
    if let Some(note) = note {
        t.warn(note);
    }
    t.config.stale_nonce = seconds;
    Ok(())
}

/// `verbose`: coturn's `verbose` never lowers `Verbose`.
fn verbose(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if t.config.verbosity != Verbosity::Extra {
        t.config.verbosity = if boolean(value)? {
            Verbosity::Normal
        } else {
            Verbosity::Quiet
        };
    }
    Ok(())
}

/// `Verbose`: as coturn, `Verbose=off` changes nothing.
fn extra_verbose(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if boolean(value)? {
        t.config.verbosity = Verbosity::Extra;
    }
    Ok(())
}

/// `prometheus-path`: an absolute path.
fn prometheus_path(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if !value.starts_with('/') {
        return Err(format!("{value:?} must start with '/'"));
    }
    t.config.prometheus_path = value.to_owned();
    Ok(())
}

/// `drain-timeout`: whole seconds; 0 waits until the allocations end.
fn drain_timeout(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    let seconds: u64 = number(value)?;
    t.config.drain_timeout = (seconds != 0).then(|| Duration::from_secs(seconds));
    Ok(())
}

/// `keep-address-family`: the relay family follows the client's; off changes nothing.
fn keep_address_family(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if boolean(value)? {
        t.config.allocation_default_address_family = AddressFamilyPolicy::Keep;
    }
    Ok(())
}

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
    // 0.88 the "closest" name is usually unrelated. No option name is near 64 characters.
    if name.len() > 64 {
        return String::new();
    }
    OPTIONS
        .iter()
        .map(|spec| (strsim::jaro_winkler(name, spec.name), spec.name))
        .filter(|(score, _)| *score >= 0.88)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or_else(String::new, |(_, best)| {
            format!(" (did you mean `{best}`?)")
        })
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
        assert_eq!(by_short('N').map(|s| s.name), Some("redis-userdb"));
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
