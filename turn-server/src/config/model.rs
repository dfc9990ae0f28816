//! The typed configuration and how option values are applied to it.
//!
//! Values are applied in coturn's order (see [`super::load_with`]): scalars are
//! overwritten by later values, lists grow. Checks that involve several options run once
//! everything is in ([`Builder::finish`]), so their messages can name the lines involved.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use rtc_auth::ip_range::{IpRange, IpRangeSet};
use rtc_auth::long_term::{long_term_key, parse_hex_key};
use rtc_auth::secret::Secret;

use super::options::{Arg, Opt};
use super::{Diagnostic, Entry, Origin};

/// coturn's limit on one `static-auth-secret` (`AUTH_SECRET_SIZE`).
pub const MAX_SECRET_BYTES: usize = 256;
/// STUN's limit on REALM (RFC 8489 §14.9: fewer than 128 characters).
pub const MAX_REALM_CHARS: usize = 127;

/// The effective configuration. Defaults are coturn 4.17's unless noted (turn-anchors §1.3).
#[derive(Debug, Clone)]
pub struct Config {
    // Listeners.
    /// UDP and TCP client port (3478).
    pub listening_port: u16,
    /// TLS and DTLS client port (5349).
    pub tls_listening_port: u16,
    /// RFC 5780 alternative port; 0 means `listening_port + 1`.
    pub alt_listening_port: u16,
    /// RFC 5780 alternative TLS port; 0 means `tls_listening_port + 1`.
    pub alt_tls_listening_port: u16,
    /// TCP port expecting a PROXY protocol header; `None` when unset or 0.
    pub tcp_proxy_port: Option<u16>,
    /// `tcp-proxy-trusted-ip`: the proxies whose PROXY header is believed; empty means
    /// loopback only ([`Config::proxy_sources`]).
    pub tcp_proxy_trusted_ips: PeerList,
    /// Listener addresses; empty means every local address (coturn binds one socket each).
    pub listening_ips: Vec<IpAddr>,
    /// Interface for the listeners (SO_BINDTODEVICE).
    pub listening_device: Option<String>,
    /// Relay addresses; empty means automatic.
    pub relay_ips: Vec<IpAddr>,
    /// Interface for the relay sockets (SO_BINDTODEVICE).
    pub relay_device: Option<String>,
    /// `external-ip` in both forms.
    pub external_ip: ExternalIp,
    /// Shards (relay threads); None: one per CPU.
    pub relay_threads: Option<u32>,
    /// `cpus`: the CPU count to use instead of the detected one when `relay_threads` is
    /// unset (coturn 4.17, for containers that report the host's CPUs).
    pub cpus: Option<u32>,
    /// Kernel send and receive buffer asked for each relay socket, bytes; client
    /// listener sockets, shared by many clients, get four times as much.
    pub relay_socket_buffer: u32,
    /// Lowest relay port (49152).
    pub min_port: u16,
    /// Highest relay port (65535).
    pub max_port: u16,
    /// No UDP client listener.
    pub no_udp: bool,
    /// No TCP client listener.
    pub no_tcp: bool,
    /// No TLS client listener.
    pub no_tls: bool,
    /// `no-dtls` as written (a no-op since coturn 4.17; DTLS needs `dtls`).
    pub no_dtls: bool,
    /// DTLS listener wanted (coturn 4.17: off unless asked).
    pub dtls: bool,
    /// Refuse UDP relays.
    pub no_udp_relay: bool,
    /// Refuse RFC 6062 TCP relays.
    pub no_tcp_relay: bool,
    /// STUN only.
    pub stun_only: bool,
    /// No plain STUN (Binding without auth).
    pub no_stun: bool,
    /// RFC 5780 behaviour discovery (off by default since coturn 4.7).
    pub rfc5780: bool,

    // Authentication.
    /// `lt-cred-mech` as set (turned on when users exist, as coturn does).
    pub lt_cred_mech: bool,
    /// `no-auth` as set.
    pub no_auth: bool,
    /// `user=` accounts, file lines first, then `-u`.
    pub users: Vec<StaticUser>,
    /// TURN REST API credentials (set by `use-auth-secret` or any `static-auth-secret`).
    pub use_auth_secret: bool,
    /// Shared secrets, all tried in order (rotation).
    pub static_auth_secrets: Vec<Secret>,
    /// Separator between expiry and user id in REST user names (`:`).
    pub rest_api_separator: char,
    /// Default realm; `None` when unset (coturn would use the host's domain name).
    pub realm: Option<String>,
    /// oAuth server name; see [`Config::server_name`] for the default.
    pub server_name: Option<String>,
    /// Max concurrent allocations per real user id (0 = unlimited).
    pub user_quota: u32,
    /// RFC 6062 peer connections per TCP allocation (0 = unlimited).
    pub max_tcp_relay_connections: u32,
    /// RFC 6062 peer connections per real user id, all allocations (0 = unlimited).
    pub user_tcp_relay_quota: u32,
    /// 401 answers per second per UDP source (`unauthorized-ratelimit-rps`, default 10;
    /// 0 turns the per-source abuse limits off, e.g. for load tests).
    pub unauthorized_ratelimit_rps: u32,
    /// Max concurrent allocations overall (0 = unlimited).
    pub total_quota: u32,
    /// Bytes per second per allocation and direction (0 = unlimited).
    pub max_bps: u64,
    /// Bytes per second for the whole server (0 = unlimited).
    pub bps_capacity: u64,
    /// Always add FINGERPRINT.
    pub fingerprint: bool,
    /// RFC 8016 mobility.
    pub mobility: bool,
    /// Nonce lifetime in seconds; 0 = never stale. See [`Config::stale_nonce_lifetime`].
    pub stale_nonce: u32,
    /// Max allocation lifetime in seconds (3600); requests are clamped to it.
    pub max_allocate_lifetime: u32,
    /// Channel binding lifetime in seconds (600).
    pub channel_lifetime: u32,
    /// Permission lifetime in seconds (300).
    pub permission_lifetime: u32,

    // Peer policy.
    /// `denied-peer-ip` lines.
    pub denied_peer_ips: PeerList,
    /// `allowed-peer-ip` lines. (The private half of every `external-ip` mapping is
    /// allowed on relay ports by the own-host rule, see `startup::core_config`.)
    pub allowed_peer_ips: PeerList,
    /// Deny multicast peers. **Our default: on** (coturn: off); `allow-multicast-peers` opens.
    pub no_multicast_peers: bool,
    /// Allow loopback peers (tests only).
    pub allow_loopback_peers: bool,
    /// Ports of this host's own addresses that peers may reach besides the relay ports
    /// (a co-located LiveKit's media port); every other port of this host is closed.
    pub allowed_own_host_ports: Vec<RangeInclusive<u16>>,

    // TLS.
    /// Certificate chain (`turn_server_cert.pem`; relative names use the config search).
    pub cert: PathBuf,
    /// Private key (`turn_server_pkey.pem`).
    pub pkey: PathBuf,
    /// Private key password.
    pub pkey_pwd: Option<Secret>,
    /// OpenSSL cipher list, kept for display; rustls picks its own suites.
    pub cipher_list: Option<String>,
    /// DH parameters file, kept for display; rustls uses ECDHE only.
    pub dh_file: Option<PathBuf>,
    /// CA file for client certificates.
    pub ca_file: Option<PathBuf>,
    /// ECDH curve name, kept for display.
    pub ec_curve_name: Option<String>,
    /// TLS 1.3 only.
    pub no_tlsv1_2: bool,
    /// ALTERNATE-SERVER targets for UDP/TCP clients.
    pub alternate_servers: Vec<SocketAddr>,
    /// `udp-alternate-server`: for UDP clients, in place of `alternate_servers`.
    pub udp_alternate_servers: Vec<SocketAddr>,
    /// `tcp-alternate-server`: for TCP clients, in place of `alternate_servers`.
    pub tcp_alternate_servers: Vec<SocketAddr>,
    /// ALTERNATE-SERVER targets for TLS clients.
    pub tls_alternate_servers: Vec<SocketAddr>,

    // Logging and process.
    /// `verbose` / `Verbose`.
    pub verbosity: Verbosity,
    /// `log-file`; `None` means coturn's default search of log directories.
    pub log_file: Option<LogFile>,
    /// Log only to the log file.
    pub no_stdout_log: bool,
    /// Log to syslog.
    pub syslog: bool,
    /// No date in the log file name.
    pub simple_log: bool,
    /// ISO-style timestamps.
    pub new_log_timestamp: bool,
    /// strftime format of timestamps.
    pub new_log_timestamp_format: Option<String>,
    /// syslog facility name.
    pub syslog_facility: Option<String>,
    /// Log Binding requests.
    pub log_binding: bool,
    /// pid file; `None` means coturn's default (/var/run/turnserver.pid or /var/tmp).
    pub pidfile: Option<PathBuf>,
    /// `daemon` as set (we never fork; a warning says so).
    pub daemon: bool,
    /// User to switch to after binding.
    pub proc_user: Option<String>,
    /// Group to switch to after binding.
    pub proc_group: Option<String>,

    // Operations.
    /// Prometheus exporter on.
    pub prometheus: bool,
    /// Exporter port (9641).
    pub prometheus_port: u16,
    /// Exporter address; `None` = all addresses.
    pub prometheus_address: Option<IpAddr>,
    /// Metrics path (`/metrics`); `/` always answers 200 as a health check.
    pub prometheus_path: String,
    /// Per-user labels (off: REST user names leak and grow memory, coturn #666).
    pub prometheus_username_labels: bool,
    /// Drain: seconds to wait for allocations after SIGUSR1; `None` = until they end.
    pub drain_timeout: Option<Duration>,
    /// Drain: exit once this many allocations or fewer are left (0: the last one).
    pub drain_min_allocations: u32,
    /// Send SOFTWARE (off since coturn 4.7: amplification and fingerprinting).
    pub software_attribute: bool,
    /// SOFTWARE text; `None` = the crate name and version.
    pub software_name: Option<String>,
    /// Check ORIGIN consistency.
    pub check_origin_consistency: bool,
    /// Relay address family when the client does not ask.
    pub allocation_default_address_family: AddressFamilyPolicy,

    /// Where each option was set, for messages of later checks.
    pub origins: Origins,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listening_port: 3478,
            tls_listening_port: 5349,
            alt_listening_port: 0,
            alt_tls_listening_port: 0,
            tcp_proxy_port: None,
            tcp_proxy_trusted_ips: PeerList::default(),
            listening_ips: Vec::new(),
            listening_device: None,
            relay_ips: Vec::new(),
            relay_device: None,
            external_ip: ExternalIp::default(),
            relay_threads: None,
            cpus: None,
            relay_socket_buffer: DEFAULT_RELAY_SOCKET_BUFFER,
            min_port: 49152,
            max_port: 65535,
            no_udp: false,
            no_tcp: false,
            no_tls: false,
            no_dtls: false,
            dtls: false,
            no_udp_relay: false,
            no_tcp_relay: false,
            stun_only: false,
            no_stun: false,
            rfc5780: false,
            lt_cred_mech: false,
            no_auth: false,
            users: Vec::new(),
            use_auth_secret: false,
            static_auth_secrets: Vec::new(),
            rest_api_separator: ':',
            realm: None,
            server_name: None,
            user_quota: 0,
            max_tcp_relay_connections: DEFAULT_MAX_TCP_RELAY_CONNECTIONS,
            user_tcp_relay_quota: DEFAULT_USER_TCP_RELAY_QUOTA,
            unauthorized_ratelimit_rps: 10,
            total_quota: 0,
            max_bps: 0,
            bps_capacity: 0,
            fingerprint: false,
            mobility: false,
            stale_nonce: DEFAULT_STALE_NONCE,
            max_allocate_lifetime: DEFAULT_MAX_ALLOCATE_LIFETIME,
            channel_lifetime: DEFAULT_CHANNEL_LIFETIME,
            permission_lifetime: DEFAULT_PERMISSION_LIFETIME,
            denied_peer_ips: PeerList::default(),
            allowed_peer_ips: PeerList::default(),
            no_multicast_peers: true,
            allow_loopback_peers: false,
            allowed_own_host_ports: Vec::new(),
            cert: PathBuf::from("turn_server_cert.pem"),
            pkey: PathBuf::from("turn_server_pkey.pem"),
            pkey_pwd: None,
            cipher_list: None,
            dh_file: None,
            ca_file: None,
            ec_curve_name: None,
            no_tlsv1_2: false,
            alternate_servers: Vec::new(),
            udp_alternate_servers: Vec::new(),
            tcp_alternate_servers: Vec::new(),
            tls_alternate_servers: Vec::new(),
            verbosity: Verbosity::Quiet,
            log_file: None,
            no_stdout_log: false,
            syslog: false,
            simple_log: false,
            new_log_timestamp: false,
            new_log_timestamp_format: None,
            syslog_facility: None,
            log_binding: false,
            pidfile: None,
            daemon: false,
            proc_user: None,
            proc_group: None,
            prometheus: false,
            prometheus_port: 9641,
            prometheus_address: None,
            prometheus_path: "/metrics".to_owned(),
            prometheus_username_labels: false,
            drain_timeout: None,
            drain_min_allocations: 0,
            software_attribute: false,
            software_name: None,
            check_origin_consistency: false,
            allocation_default_address_family: AddressFamilyPolicy::Ipv4,
            origins: Origins::default(),
        }
    }
}

/// The [`Origins`] key of each `external-ip=PUBLIC/PRIVATE` line, in mapping order (the
/// option's own key also holds the single-address form).
pub(crate) const EXTERNAL_IP_MAPPINGS: &str = "external-ip public/private";

/// RFC 6062 peer connections per TCP allocation: a client relaying to a few peers uses a
/// handful; without a cap one permission let a client open connections without end.
const DEFAULT_MAX_TCP_RELAY_CONNECTIONS: u32 = 32;
/// RFC 6062 peer connections per user over all allocations (`user-quota` does not count
/// them).
const DEFAULT_USER_TCP_RELAY_QUOTA: u32 = 256;

/// Nonce lifetime (coturn `STUN_DEFAULT_NONCE_EXPIRATION_TIME`).
pub const DEFAULT_STALE_NONCE: u32 = 600;
/// RFC 8656 §3.7 suggests 3600 s as the max allocation lifetime.
pub const DEFAULT_MAX_ALLOCATE_LIFETIME: u32 = 3600;
/// RFC 8656 §12: channel bindings last 10 minutes.
pub const DEFAULT_CHANNEL_LIFETIME: u32 = 600;
/// RFC 8656 §9: permissions last 300 s.
pub const DEFAULT_PERMISSION_LIFETIME: u32 = 300;
/// Default port of an `alternate-server` without one.
pub const DEFAULT_ALTERNATE_PORT: u16 = 3478;
/// Default port of a `tls-alternate-server` without one.
pub const DEFAULT_TLS_ALTERNATE_PORT: u16 = 5349;

impl Config {
    /// The credential mechanism in force, with coturn's precedence: a shared secret
    /// overrides user accounts; `no-auth` only when asked for.
    pub fn auth_mode(&self) -> AuthMode {
        if self.use_auth_secret {
            AuthMode::SharedSecret
        } else if self.lt_cred_mech || !self.users.is_empty() {
            AuthMode::LongTerm
        } else if self.no_auth {
            AuthMode::None
        } else {
            AuthMode::Unconfigured
        }
    }

    /// How long a nonce stays fresh; `None` = never stale (`stale-nonce=0`).
    pub fn stale_nonce_lifetime(&self) -> Option<Duration> {
        (self.stale_nonce != 0).then(|| Duration::from_secs(u64::from(self.stale_nonce)))
    }

    /// The RFC 5780 alternative port with 0 resolved (saturating at 65535).
    pub fn effective_alt_listening_port(&self) -> u16 {
        match self.alt_listening_port {
            0 => self.listening_port.saturating_add(1),
            port => port,
        }
    }

    /// The RFC 5780 alternative TLS port with 0 resolved.
    pub fn effective_alt_tls_listening_port(&self) -> u16 {
        match self.alt_tls_listening_port {
            0 => self.tls_listening_port.saturating_add(1),
            port => port,
        }
    }

    /// Where the PROXY protocol listener accepts connections from: `tcp-proxy-trusted-ip`,
    /// else loopback only. A header from anyone else would let them claim any client
    /// address (and so any per-source limit), so everyone is never the default.
    pub fn proxy_sources(&self) -> IpRangeSet {
        if self.tcp_proxy_trusted_ips.set.is_empty() {
            IpRangeSet::parse(["127.0.0.0/8", "::1"]).unwrap_or_default()
        } else {
            self.tcp_proxy_trusted_ips.set.clone()
        }
    }

    /// The oAuth server name: `server-name`, else the realm, else empty.
    pub fn server_name(&self) -> &str {
        self.server_name
            .as_deref()
            .or(self.realm.as_deref())
            .unwrap_or("")
    }
}

impl Config {
    /// The options whose change between the running configuration (`self`) and a
    /// re-read one (`new`) only takes effect after a restart: sockets, port ranges and
    /// process settings. A reload applies everything else and reports these.
    pub fn needs_restart(&self, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! compare {
            ($($field:ident => $key:literal),* $(,)?) => {
                $(if self.$field != new.$field {
                    changed.push($key);
                })*
            };
        }
        compare!(
            listening_port => "listening-port",
            tls_listening_port => "tls-listening-port",
            alt_listening_port => "alt-listening-port",
            alt_tls_listening_port => "alt-tls-listening-port",
            tcp_proxy_port => "tcp-proxy-port",
            tcp_proxy_trusted_ips => "tcp-proxy-trusted-ip",
            listening_ips => "listening-ip",
            listening_device => "listening-device",
            relay_ips => "relay-ip",
            relay_device => "relay-device",
            external_ip => "external-ip",
            relay_threads => "relay-threads",
            cpus => "cpus",
            relay_socket_buffer => "relay-socket-buffer",
            min_port => "min-port",
            max_port => "max-port",
            no_udp => "no-udp",
            no_tcp => "no-tcp",
            no_tls => "no-tls",
            dtls => "dtls",
            rfc5780 => "rfc5780",
            prometheus => "prometheus",
            prometheus_port => "prometheus-port",
            prometheus_address => "prometheus-address",
            prometheus_path => "prometheus-path",
            log_file => "log-file",
            syslog => "syslog",
            pidfile => "pidfile",
            proc_user => "proc-user",
            proc_group => "proc-group",
        );
        changed
    }
}

/// Which credentials the server asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// TURN REST API: HMAC of the user name with one of the static secrets.
    SharedSecret,
    /// Long-term credentials from `user=` accounts.
    LongTerm,
    /// `no-auth`: anyone may allocate.
    None,
    /// Nothing configured: the binary decides (a generated secret, never open access).
    Unconfigured,
}

/// `verbose` / `Verbose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Neither set.
    Quiet,
    /// `verbose` / `-v`.
    Normal,
    /// `Verbose` / `-V`: per-packet detail.
    Extra,
}

/// Where logs go (`log-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFile {
    /// `stdout` or `-`.
    Stdout,
    /// `syslog`.
    Syslog,
    /// A path; unless `simple-log`, coturn inserts the date into the name.
    Path(PathBuf),
}

/// Relay family when the client sends no REQUESTED-ADDRESS-FAMILY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamilyPolicy {
    /// IPv4 (RFC 8656 default).
    Ipv4,
    /// IPv6.
    Ipv6,
    /// The family of the client's connection.
    Keep,
}

/// `external-ip`: the public address behind a 1:1 NAT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalIp {
    /// Form 1 (`external-ip=X`, once per address family, where coturn allows one in all,
    /// its issue #682): put in XOR-RELAYED-ADDRESS for every relay address of its family.
    pub addresses: Vec<IpAddr>,
    /// Form 2 (`external-ip=public/private`, repeatable): per-address mappings.
    pub mappings: Vec<ExternalMapping>,
}

/// One `public/private` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalMapping {
    /// What clients see.
    pub public: IpAddr,
    /// The local address (allowed as a peer on relay ports, for hairpinning, where coturn
    /// allows it on every port).
    pub private: IpAddr,
}

/// A peer list: the set for lookups and the lines as written, for display.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerList {
    /// Merged ranges.
    pub set: IpRangeSet,
    /// Each value as written (or a note for automatic entries).
    pub entries: Vec<String>,
}

/// A `user=` account.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticUser {
    /// User name.
    pub name: String,
    /// Password or stored key.
    pub key: UserKey,
}

/// What a `user=` line stores.
#[derive(Clone, PartialEq, Eq)]
pub enum UserKey {
    /// `name:password`.
    Password(Secret),
    /// `name:0x<32 hex>`: MD5(name:realm:password), valid only for the realm it was
    /// computed with (hence users are applied after the realm).
    Key(Secret),
}

impl StaticUser {
    /// The long-term HMAC key for `realm` (RFC 8489 §9.2.2).
    pub fn long_term_key(&self, realm: &str) -> [u8; 16] {
        match &self.key {
            UserKey::Password(password) => long_term_key(
                &self.name,
                realm,
                &String::from_utf8_lossy(password.expose()),
            ),
            UserKey::Key(key) => {
                let mut out = [0u8; 16];
                // Built from exactly 16 bytes in `parse_user`; a shorter slice would only
                // leave zeros, never panic.
                for (dst, src) in out.iter_mut().zip(key.expose()) {
                    *dst = *src;
                }
                out
            }
        }
    }
}

impl std::fmt::Debug for StaticUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.key {
            UserKey::Password(_) => "password",
            UserKey::Key(_) => "key",
        };
        f.debug_struct("StaticUser")
            .field("name", &self.name)
            .field(kind, &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for UserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::Key(_) => f.write_str("Key(<redacted>)"),
        }
    }
}

/// Where each option was set: every occurrence, in the order applied. For list options
/// the n-th origin belongs to the n-th value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(BTreeMap<&'static str, Vec<Origin>>);

impl Origins {
    /// Every occurrence of `key`.
    pub fn of(&self, key: &str) -> &[Origin] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// The occurrence that won for a scalar option.
    pub fn last(&self, key: &str) -> Option<&Origin> {
        self.of(key).last()
    }

    /// True when no option was set anywhere (no file, no command-line option): the binary
    /// may then start its embedded safe default instead of coturn's behaviour.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push(&mut self, key: &'static str, origin: Origin) {
        self.0.entry(key).or_default().push(origin);
    }
}

/// Applies entries to a [`Config`], collecting warnings and errors.
pub(crate) struct Builder {
    config: Config,
    warnings: Vec<Diagnostic>,
    errors: Vec<Diagnostic>,
    /// Where a single-form `external-ip` was set, to point a second one of its family at it.
    form_one_origins: Vec<(IpAddr, Origin)>,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Self {
            config: Config::default(),
            warnings: Vec::new(),
            errors: Vec::new(),
            form_one_origins: Vec::new(),
        }
    }

    /// Applies one entry; a bad value becomes an error naming its origin and key.
    pub(crate) fn apply(&mut self, entry: &Entry) {
        let key = entry.spec.name;
        let value = entry.value.as_deref();
        if entry.spec.arg == Arg::Required && value.is_none_or(str::is_empty) {
            self.errors
                .push(Diagnostic::at(&entry.origin, key, "needs a value"));
            return;
        }
        match self.apply_value(entry.spec.opt, key, value.unwrap_or(""), &entry.origin) {
            Ok(()) => self.config.origins.push(key, entry.origin.clone()),
            Err(message) => self
                .errors
                .push(Diagnostic::at(&entry.origin, key, message)),
        }
    }

    fn warn(&mut self, origin: &Origin, key: &str, message: impl Into<String>) {
        self.warnings.push(Diagnostic::at(origin, key, message));
    }

    fn apply_value(
        &mut self,
        opt: Opt,
        key: &'static str,
        value: &str,
        origin: &Origin,
    ) -> Result<(), String> {
        let c = &mut self.config;
        match opt {
            Opt::ListeningPort => c.listening_port = port(value)?,
            Opt::TlsListeningPort => c.tls_listening_port = port(value)?,
            Opt::AltListeningPort => c.alt_listening_port = port_or_zero(value)?,
            Opt::AltTlsListeningPort => c.alt_tls_listening_port = port_or_zero(value)?,
            Opt::TcpProxyPort => c.tcp_proxy_port = Some(port_or_zero(value)?).filter(|&p| p != 0),
            Opt::TcpProxyTrustedIp => ip_range(&mut c.tcp_proxy_trusted_ips, value)?,
            Opt::ListeningIp => c.listening_ips.push(ip(value)?),
            Opt::ListeningDevice => c.listening_device = Some(device(value)?),
            Opt::RelayIp => c.relay_ips.push(ip(value)?),
            Opt::RelayDevice => c.relay_device = Some(device(value)?),
            Opt::ExternalIp => return self.external_ip(value, origin),
            Opt::RelayThreads => c.relay_threads = Some(number(value)?),
            Opt::Cpus => match number(value)? {
                0 => return Err("must be at least 1".to_owned()),
                cpus => c.cpus = Some(cpus),
            },
            Opt::RelaySocketBuffer => c.relay_socket_buffer = socket_buffer(value)?,
            Opt::MinPort => c.min_port = port(value)?,
            Opt::MaxPort => c.max_port = port(value)?,
            Opt::NoUdp => c.no_udp = boolean(value)?,
            Opt::NoTcp => c.no_tcp = boolean(value)?,
            Opt::NoTls => c.no_tls = boolean(value)?,
            Opt::NoDtls => c.no_dtls = boolean(value)?,
            Opt::Dtls => c.dtls = boolean(value)?,
            Opt::NoUdpRelay => c.no_udp_relay = boolean(value)?,
            Opt::NoTcpRelay => c.no_tcp_relay = boolean(value)?,
            Opt::StunOnly => c.stun_only = boolean(value)?,
            Opt::NoStun => c.no_stun = boolean(value)?,
            Opt::Rfc5780 => c.rfc5780 = boolean(value)?,
            Opt::NoRfc5780 => c.rfc5780 = !boolean(value)?,
            Opt::LtCredMech => c.lt_cred_mech = boolean(value)?,
            Opt::NoAuth => c.no_auth = boolean(value)?,
            Opt::User => {
                let user = parse_user(value)?;
                if matches!(user.key, UserKey::Key(_)) && c.realm.is_none() {
                    self.warn(
                        origin,
                        key,
                        format!(
                            "user {} has a 0x key, which only works for the realm it was \
                             computed with, but no realm is set",
                            user.name
                        ),
                    );
                }
                self.config.users.push(user);
            }
            Opt::UseAuthSecret => c.use_auth_secret = boolean(value)?,
            Opt::StaticAuthSecret => {
                if value.len() > MAX_SECRET_BYTES {
                    return Err(format!(
                        "secret is {} bytes long; at most {MAX_SECRET_BYTES} are allowed",
                        value.len()
                    ));
                }
                c.static_auth_secrets.push(Secret::new(value));
                c.use_auth_secret = true;
            }
            Opt::RestApiSeparator => {
                let mut chars = value.chars();
                // `apply` rejects empty values for options that need one.
                let first = chars.next().ok_or("needs a value")?;
                if chars.next().is_some() {
                    self.warn(
                        origin,
                        key,
                        format!("only the first character {first:?} is used as the separator"),
                    );
                }
                self.config.rest_api_separator = first;
            }
            Opt::Realm => {
                if value.chars().count() > MAX_REALM_CHARS {
                    return Err(format!("realm is longer than {MAX_REALM_CHARS} characters"));
                }
                c.realm = Some(value.to_owned());
            }
            Opt::ServerName => c.server_name = Some(value.to_owned()),
            Opt::UserQuota => c.user_quota = number(value)?,
            Opt::MaxTcpRelayConnections => c.max_tcp_relay_connections = number(value)?,
            Opt::UserTcpRelayQuota => c.user_tcp_relay_quota = number(value)?,
            Opt::UnauthorizedRateLimitRps => c.unauthorized_ratelimit_rps = number(value)?,
            Opt::TotalQuota => c.total_quota = number(value)?,
            Opt::MaxBps => c.max_bps = number(value)?,
            Opt::BpsCapacity => c.bps_capacity = number(value)?,
            Opt::Fingerprint => c.fingerprint = boolean(value)?,
            Opt::Mobility => c.mobility = boolean(value)?,
            Opt::StaleNonce => {
                let (seconds, note) = stale_nonce(value)?;
                if let Some(note) = note {
                    self.warn(origin, key, note);
                }
                self.config.stale_nonce = seconds;
            }
            Opt::MaxAllocateLifetime => {
                c.max_allocate_lifetime = lifetime(value, DEFAULT_MAX_ALLOCATE_LIFETIME)?;
            }
            Opt::ChannelLifetime => {
                c.channel_lifetime = lifetime(value, DEFAULT_CHANNEL_LIFETIME)?;
            }
            Opt::PermissionLifetime => {
                c.permission_lifetime = lifetime(value, DEFAULT_PERMISSION_LIFETIME)?;
            }
            Opt::DeniedPeerIp => ip_range(&mut c.denied_peer_ips, value)?,
            Opt::AllowedPeerIp => ip_range(&mut c.allowed_peer_ips, value)?,
            Opt::NoMulticastPeers => c.no_multicast_peers = boolean(value)?,
            Opt::AllowMulticastPeers => c.no_multicast_peers = !boolean(value)?,
            Opt::AllowLoopbackPeers => c.allow_loopback_peers = boolean(value)?,
            Opt::AllowedOwnHostPort => c.allowed_own_host_ports.push(port_range(value)?),
            Opt::Cert => c.cert = PathBuf::from(value),
            Opt::Pkey => c.pkey = PathBuf::from(value),
            Opt::PkeyPwd => c.pkey_pwd = Some(Secret::new(value)),
            Opt::CipherList => c.cipher_list = Some(value.to_owned()),
            Opt::DhFile => c.dh_file = Some(PathBuf::from(value)),
            Opt::CaFile => c.ca_file = Some(PathBuf::from(value)),
            Opt::EcCurveName => c.ec_curve_name = Some(value.to_owned()),
            Opt::NoTlsv1_2 => c.no_tlsv1_2 = boolean(value)?,
            Opt::AlternateServer => c
                .alternate_servers
                .push(server_address(value, DEFAULT_ALTERNATE_PORT)?),
            Opt::UdpAlternateServer => c
                .udp_alternate_servers
                .push(server_address(value, DEFAULT_ALTERNATE_PORT)?),
            Opt::TcpAlternateServer => c
                .tcp_alternate_servers
                .push(server_address(value, DEFAULT_ALTERNATE_PORT)?),
            Opt::TlsAlternateServer => c
                .tls_alternate_servers
                .push(server_address(value, DEFAULT_TLS_ALTERNATE_PORT)?),
            // coturn: `verbose` never lowers `Verbose`, and `Verbose=off` changes nothing.
            Opt::Verbose => {
                if c.verbosity != Verbosity::Extra {
                    c.verbosity = if boolean(value)? {
                        Verbosity::Normal
                    } else {
                        Verbosity::Quiet
                    };
                }
            }
            Opt::ExtraVerbose => {
                if boolean(value)? {
                    c.verbosity = Verbosity::Extra;
                }
            }
            Opt::LogFile => {
                c.log_file = Some(match value {
                    "stdout" | "-" => LogFile::Stdout,
                    "syslog" => LogFile::Syslog,
                    path => LogFile::Path(PathBuf::from(path)),
                });
            }
            Opt::NoStdoutLog => c.no_stdout_log = boolean(value)?,
            Opt::Syslog => c.syslog = boolean(value)?,
            Opt::SimpleLog => c.simple_log = boolean(value)?,
            Opt::NewLogTimestamp => c.new_log_timestamp = boolean(value)?,
            Opt::NewLogTimestampFormat => c.new_log_timestamp_format = Some(value.to_owned()),
            Opt::SyslogFacility => c.syslog_facility = Some(value.to_owned()),
            Opt::LogBinding => c.log_binding = boolean(value)?,
            Opt::Pidfile => c.pidfile = Some(PathBuf::from(value)),
            Opt::Daemon => c.daemon = boolean(value)?,
            Opt::ProcUser => c.proc_user = Some(value.to_owned()),
            Opt::ProcGroup => c.proc_group = Some(value.to_owned()),
            Opt::Prometheus => c.prometheus = boolean(value)?,
            Opt::PrometheusPort => c.prometheus_port = port(value)?,
            Opt::PrometheusAddress => c.prometheus_address = Some(ip(value)?),
            Opt::PrometheusPath => {
                if !value.starts_with('/') {
                    return Err(format!("{value:?} must start with '/'"));
                }
                c.prometheus_path = value.to_owned();
            }
            Opt::PrometheusUsernameLabels => c.prometheus_username_labels = boolean(value)?,
            Opt::DrainTimeout => {
                let seconds: u64 = number(value)?;
                c.drain_timeout = (seconds != 0).then(|| Duration::from_secs(seconds));
            }
            Opt::DrainMinAllocations => c.drain_min_allocations = number(value)?,
            Opt::SoftwareAttribute => c.software_attribute = boolean(value)?,
            Opt::NoSoftwareAttribute => c.software_attribute = !boolean(value)?,
            Opt::SoftwareName => c.software_name = Some(value.to_owned()),
            Opt::CheckOriginConsistency => c.check_origin_consistency = boolean(value)?,
            Opt::KeepAddressFamily => {
                if boolean(value)? {
                    c.allocation_default_address_family = AddressFamilyPolicy::Keep;
                }
            }
            Opt::AllocationDefaultAddressFamily => {
                c.allocation_default_address_family = match value {
                    "ipv4" => AddressFamilyPolicy::Ipv4,
                    "ipv6" => AddressFamilyPolicy::Ipv6,
                    "keep" => AddressFamilyPolicy::Keep,
                    other => return Err(format!("{other:?} is not ipv4, ipv6 or keep")),
                };
            }
            // The parsers drop these before they reach the builder.
            Opt::Ignored(_) | Opt::CheckConfig | Opt::Help | Opt::Version => {}
        }
        Ok(())
    }

    fn external_ip(&mut self, value: &str, origin: &Origin) -> Result<(), String> {
        let external = &mut self.config.external_ip;
        if let Some((public, private)) = value.split_once('/') {
            let public = ip(public)?;
            let private = ip(private)?;
            if public.is_ipv4() != private.is_ipv4() {
                return Err(format!("{value:?} maps addresses of different families"));
            }
            external.mappings.push(ExternalMapping { public, private });
            self.config
                .origins
                .push(EXTERNAL_IP_MAPPINGS, origin.clone());
            return Ok(());
        }
        let address = ip(value)?;
        if let Some((first, at)) = self
            .form_one_origins
            .iter()
            .find(|(first, _)| first.is_ipv4() == address.is_ipv4())
        {
            return Err(format!(
                "external-ip without '/' may be given only once per address family ({first} \
                 was set at {at}); use public/private pairs for several addresses"
            ));
        }
        external.addresses.push(address);
        self.form_one_origins.push((address, origin.clone()));
        Ok(())
    }

    /// Cross-option checks and automatic additions; returns the config, warnings, errors.
    pub(crate) fn finish(mut self) -> (Config, Vec<Diagnostic>, Vec<Diagnostic>) {
        let c = &mut self.config;
        let mut warnings = std::mem::take(&mut self.warnings);
        let mut errors = std::mem::take(&mut self.errors);
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
        if matches!(c.auth_mode(), AuthMode::LongTerm | AuthMode::SharedSecret) && c.realm.is_none()
        {
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
        (self.config, warnings, errors)
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

/// coturn's booleans: empty = true; first character `0`/`n`/`f` false, `y`/`t`/`1`-`9`
/// true; `on`/`off`; anything else is an error (coturn exits too).
pub(crate) fn boolean(value: &str) -> Result<bool, String> {
    match value.chars().next() {
        None => Ok(true),
        Some('0' | 'n' | 'N' | 'f' | 'F') => Ok(false),
        Some('y' | 'Y' | 't' | 'T' | '1'..='9') => Ok(true),
        _ if value.eq_ignore_ascii_case("on") => Ok(true),
        _ if value.eq_ignore_ascii_case("off") => Ok(false),
        _ => Err(format!(
            "{value:?} is not a boolean (use on/off, yes/no, true/false or 1/0)"
        )),
    }
}

/// `relay-socket-buffer` default: coturn's fixed ~64 KiB dropped 9 % of a 2 Mb/s video
/// stream (coturn #1902).
const DEFAULT_RELAY_SOCKET_BUFFER: u32 = 1 << 20;

/// Bounds of `relay-socket-buffer`: the kernel's own minimum, and 256 MiB (four times
/// that for each listener must still fit a u32).
const RELAY_SOCKET_BUFFER_RANGE: std::ops::RangeInclusive<u32> = 4096..=256 << 20;

fn socket_buffer(value: &str) -> Result<u32, String> {
    let bytes: u32 = number(value)?;
    if !RELAY_SOCKET_BUFFER_RANGE.contains(&bytes) {
        return Err(format!(
            "{bytes} is outside {}..={} bytes",
            RELAY_SOCKET_BUFFER_RANGE.start(),
            RELAY_SOCKET_BUFFER_RANGE.end()
        ));
    }
    Ok(bytes)
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{value:?} is not a non-negative whole number"));
    }
    value.parse().map_err(|_| format!("{value:?} is too large"))
}

fn port(value: &str) -> Result<u16, String> {
    match number::<u32>(value).map(u16::try_from) {
        Ok(Ok(p @ 1..)) => Ok(p),
        Ok(_) => Err(format!("port {value:?} is not between 1 and 65535")),
        Err(_) => Err(format!(
            "port {value:?} is not a number between 1 and 65535"
        )),
    }
}

/// `N` or `A-B` (inclusive).
fn port_range(value: &str) -> Result<RangeInclusive<u16>, String> {
    let (low, high) = value.split_once('-').unwrap_or((value, value));
    let (low, high) = (port(low.trim())?, port(high.trim())?);
    if low > high {
        return Err(format!("{value:?}: the range starts after its end"));
    }
    Ok(low..=high)
}

fn port_or_zero(value: &str) -> Result<u16, String> {
    if value == "0" { Ok(0) } else { port(value) }
}

/// A lifetime in seconds; empty means the default, as coturn's `get_int_value`.
fn lifetime(value: &str, default: u32) -> Result<u32, String> {
    if value.is_empty() {
        return Ok(default);
    }
    match number::<u32>(value)? {
        0 => Err("must be at least 1 second".to_owned()),
        seconds => Ok(seconds),
    }
}

/// `stale-nonce` with coturn's `atoi`: leading digits count, the rest is ignored, and
/// no digits at all is 0 (never stale). Both surprises get a warning.
fn stale_nonce(value: &str) -> Result<(u32, Option<String>), String> {
    if value.is_empty() {
        return Ok((DEFAULT_STALE_NONCE, None));
    }
    let trimmed = value.trim_start();
    if trimmed.starts_with('-') {
        return Err(format!("{value:?} is negative"));
    }
    let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let digits_end = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let digits = &unsigned[..digits_end];
    if digits.is_empty() {
        return Ok((
            0,
            Some(format!(
                "{value:?} is not a number; coturn reads it as 0, so nonces never expire"
            )),
        ));
    }
    let seconds: u32 = digits
        .parse()
        .map_err(|_| format!("{value:?} is too large"))?;
    let note = (digits_end != unsigned.len())
        .then(|| format!("{value:?}: only the leading number {seconds} is used"));
    Ok((seconds, note))
}

/// An address without DNS: hostnames would need resolving at startup, which we don't do,
/// so they are reported with the value instead of silently failing later.
fn ip(value: &str) -> Result<IpAddr, String> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse().map_err(|_| {
        if bare.chars().any(|c| c.is_ascii_alphabetic()) && !bare.contains(':') {
            format!(
                "{value:?} is not an IP address (host names are not resolved; give the address)"
            )
        } else {
            format!("{value:?} is not an IP address")
        }
    })
}

fn device(value: &str) -> Result<String, String> {
    // Linux interface names: at most 15 bytes, no '/' or whitespace.
    if value.len() > 15 || value.contains(['/', ' ', '\t']) || value == "." || value == ".." {
        return Err(format!("{value:?} is not a valid network interface name"));
    }
    Ok(value.to_owned())
}

fn ip_range(list: &mut PeerList, value: &str) -> Result<(), String> {
    // Fail closed: coturn <= 4.10 ignored a bad line and relayed to what it meant to deny.
    let range: IpRange = value
        .parse()
        .map_err(|e: rtc_auth::ip_range::IpRangeError| {
            if value.contains('#') {
                format!(
                    "{e} (there are no inline comments: '#' only starts a comment at the start \
                 of a line)"
                )
            } else {
                e.to_string()
            }
        })?;
    list.set.insert(range);
    list.entries.push(value.to_owned());
    Ok(())
}

/// `addr`, `addr:port`, `[v6]:port` or a bare IPv6 address.
fn server_address(value: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!(
                "port \"0\" of {value:?} is not between 1 and 65535"
            ));
        }
        return Ok(addr);
    }
    if let Ok(addr) = ip(value) {
        return Ok(SocketAddr::new(addr, default_port));
    }
    if let Some((host, p)) = value.rsplit_once(':') {
        let addr = ip(host)?;
        return Ok(SocketAddr::new(addr, port(p)?));
    }
    Err(ip(value)
        .err()
        .unwrap_or_else(|| format!("{value:?} is not an address")))
}

/// `name:password` or `name:0x<32 hex digits>`.
fn parse_user(value: &str) -> Result<StaticUser, String> {
    let Some((name, secret)) = value.split_once(':') else {
        return Err("expected name:password or name:0x<key> (no ':' found)".to_owned());
    };
    if name.is_empty() {
        return Err("the user name before ':' is empty".to_owned());
    }
    if secret.is_empty() {
        return Err(format!("user {name} has an empty password"));
    }
    let key = if secret.starts_with("0x") || secret.starts_with("0X") {
        let key = parse_hex_key(secret).ok_or_else(|| {
            format!("user {name}: a 0x key must be exactly 32 hex digits (turnadmin -k output)")
        })?;
        UserKey::Key(Secret::new(key.to_vec()))
    } else {
        UserKey::Password(Secret::new(secret))
    };
    Ok(StaticUser {
        name: name.to_owned(),
        key,
    })
}
