//! Applying option values to a [`Config`], in coturn's passes (see
//! [`super::load_with`]): logging options first, then everything but users, then `user=`
//! lines, each pass taking the file's lines before the command line's. Scalars are
//! overwritten by later values, lists grow; where each value came from is kept in
//! [`Config::origins`] for the messages of later checks.

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
use super::options::{Arg, Opt, Pass};
use super::values::{
    address_family, boolean, device, ip, ip_range, kernel_offload, lifetime, log_file, number,
    port, port_or_zero, port_range, server_address, socket_buffer, stale_nonce, user,
};
use super::{Diagnostic, Entry, Origin};

/// Applies the file's entries and the command line's in coturn's passes; a bad value
/// becomes an error in `errors` naming its line, and the value is skipped.
pub(crate) fn apply(
    file: &[Entry],
    command_line: &[Entry],
    warnings: &mut Vec<Diagnostic>,
    errors: &mut Vec<Diagnostic>,
) -> Config {
    let mut builder = Builder::new();
    for pass in [Pass::Log, Pass::Main, Pass::User] {
        for entry in file.iter().chain(command_line) {
            if entry.spec.pass() == pass {
                builder.apply(entry);
            }
        }
    }
    warnings.append(&mut builder.warnings);
    errors.append(&mut builder.errors);
    builder.config
}

/// Applies entries to a [`Config`], collecting warnings and errors.
struct Builder {
    config: Config,
    warnings: Vec<Diagnostic>,
    errors: Vec<Diagnostic>,
    /// Where a single-form `external-ip` was set, to point a second one of its family at it.
    form_one_origins: Vec<(IpAddr, Origin)>,
}

impl Builder {
    fn new() -> Self {
        Self {
            config: Config::default(),
            warnings: Vec::new(),
            errors: Vec::new(),
            form_one_origins: Vec::new(),
        }
    }

    /// Applies one entry; a bad value becomes an error naming its origin and key.
    fn apply(&mut self, entry: &Entry) {
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
            Opt::TcpProxyTrustedIp => add_range(&mut c.tcp_proxy_trusted_ips, value)?,
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
            Opt::KernelOffload => c.kernel_offload = kernel_offload(value)?,
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
                let user = user(value)?;
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
            Opt::MaxTcpClients => c.max_tcp_clients = number(value)?,
            Opt::MaxTcpClientsPerIp => c.max_tcp_clients_per_ip = number(value)?,
            Opt::MaxAllocateTimeout => {
                let seconds: u64 = number(value)?;
                if seconds == 0 {
                    return Err("must be at least 1 second".into());
                }
                c.max_allocate_timeout = Duration::from_secs(seconds);
            }
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
            Opt::DeniedPeerIp => add_range(&mut c.denied_peer_ips, value)?,
            Opt::AllowedPeerIp => add_range(&mut c.allowed_peer_ips, value)?,
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
            Opt::LogFile => c.log_file = Some(log_file(value)),
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
                c.allocation_default_address_family = address_family(value)?;
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
}

/// Adds an IP, `A-B` range or CIDR to a peer list, keeping the value as written.
fn add_range(list: &mut PeerList, value: &str) -> Result<(), String> {
    list.set.insert(ip_range(value)?);
    list.entries.push(value.to_owned());
    Ok(())
}
