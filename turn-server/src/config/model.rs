//! The typed configuration: [`Config`], its defaults (coturn's, unless a field says
//! otherwise), the types of its values, and the questions the rest of the server asks it
//! (which credentials, which ports, what a reload cannot change).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use rtc_auth::ip_range::IpRangeSet;
use rtc_auth::long_term::long_term_key;
use rtc_auth::secret::Secret;

use super::Origin;

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
    /// `kernel-offload`: the eBPF fast path for channel-bound UDP (ours; off by default).
    pub kernel_offload: KernelOffload,
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
    /// TCP and TLS client connections open at once, all shards (0 = unlimited).
    pub max_tcp_clients: u32,
    /// TCP and TLS client connections open at once per source address, an IPv6 /64
    /// counting as one (0 = unlimited).
    pub max_tcp_clients_per_ip: u32,
    /// `max-allocate-timeout`: how long a TCP or TLS client connection may stay open
    /// without an allocation (coturn's default: 60 s).
    pub max_allocate_timeout: Duration,
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
            kernel_offload: KernelOffload::Off,
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
            max_tcp_clients: DEFAULT_MAX_TCP_CLIENTS,
            max_tcp_clients_per_ip: DEFAULT_MAX_TCP_CLIENTS_PER_IP,
            max_allocate_timeout: Duration::from_secs(DEFAULT_MAX_ALLOCATE_TIMEOUT),
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
/// TCP and TLS clients at once: a TURN-over-TLS deployment serves a few thousand users
/// behind strict firewalls; the cap keeps a connection flood below the file limit.
const DEFAULT_MAX_TCP_CLIENTS: u32 = 10_000;
/// TCP and TLS clients per source: enough for a large office behind one NAT address.
const DEFAULT_MAX_TCP_CLIENTS_PER_IP: u32 = 200;
/// coturn's `max-allocate-timeout` default, seconds.
const DEFAULT_MAX_ALLOCATE_TIMEOUT: u64 = 60;
/// `relay-socket-buffer` default: coturn's fixed ~64 KiB dropped 9 % of a 2 Mb/s video
/// stream (coturn #1902).
const DEFAULT_RELAY_SOCKET_BUFFER: u32 = 1 << 20;

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
            kernel_offload => "kernel-offload",
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

/// `kernel-offload`: whether channel-bound UDP traffic is relayed by an eBPF program
/// (the `turn-offload` crate) instead of the relay sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelOffload {
    /// Userspace only (the default until the fast path has soaked).
    Off,
    /// The fast path where the kernel and privileges allow, else userspace with one log
    /// line saying why.
    Auto,
    /// The fast path or no start: startup fails with the reason.
    On,
}

impl KernelOffload {
    /// The value as the file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Auto => "auto",
            Self::On => "on",
        }
    }
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
                // Built from exactly 16 bytes in `values::user`; a shorter slice would only
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

    /// Records one more occurrence of `key`.
    pub(crate) fn push(&mut self, key: &'static str, origin: Origin) {
        self.0.entry(key).or_default().push(origin);
    }
}
