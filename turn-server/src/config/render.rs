//! The effective configuration as text, for `turn-server --check-config`.
//!
//! The output uses the file's own `key=value` syntax so an operator can compare it with
//! what they wrote, and so it reads back as a valid file (apart from redacted secrets).
//! Unset options appear as `# key: meaning` comments, so defaults are visible too.
//! Secrets, passwords and user keys are always `<redacted>`.

use std::fmt::Write as _;

use super::model::{AddressFamilyPolicy, Config, LogFile, UserKey, Verbosity};
use super::{ConfigError, Diagnostic, Host, Loaded, SearchPath};

const REDACTED: &str = "<redacted>";

struct Out(String);

impl Out {
    fn set(&mut self, key: &str, value: impl std::fmt::Display) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "{key}={value}");
    }

    fn flag(&mut self, key: &str, on: bool) {
        self.set(key, if on { "on" } else { "off" });
    }

    fn unset(&mut self, key: &str, meaning: &str) {
        let _ = writeln!(self.0, "# {key}: {meaning}");
    }

    fn opt(&mut self, key: &str, value: Option<impl std::fmt::Display>, meaning: &str) {
        match value {
            Some(value) => self.set(key, value),
            None => self.unset(key, meaning),
        }
    }

    fn list<T: std::fmt::Display>(&mut self, key: &str, values: &[T], meaning: &str) {
        if values.is_empty() {
            self.unset(key, meaning);
        }
        for value in values {
            self.set(key, value);
        }
    }

    fn section(&mut self, title: &str) {
        let _ = writeln!(self.0, "\n# --- {title} ---");
    }
}

impl Config {
    /// The effective configuration, secrets redacted.
    pub fn render(&self) -> String {
        let mut out = Out(String::from("# Effective configuration of turn-server\n"));
        out.section("listeners");
        out.set("listening-port", self.listening_port);
        out.set("tls-listening-port", self.tls_listening_port);
        out.set("alt-listening-port", self.alt_listening_port);
        out.set("alt-tls-listening-port", self.alt_tls_listening_port);
        out.opt("tcp-proxy-port", self.tcp_proxy_port, "off");
        out.list(
            "tcp-proxy-trusted-ip",
            &self.tcp_proxy_trusted_ips.entries,
            "loopback only",
        );
        out.list("listening-ip", &self.listening_ips, "every local address");
        out.opt("listening-device", self.listening_device.as_deref(), "any");
        for (key, on) in [
            ("no-udp", self.no_udp),
            ("no-tcp", self.no_tcp),
            ("no-tls", self.no_tls),
            ("dtls", self.dtls),
            ("stun-only", self.stun_only),
            ("no-stun", self.no_stun),
            ("rfc5780", self.rfc5780),
        ] {
            out.flag(key, on);
        }

        out.section("relay");
        out.list("relay-ip", &self.relay_ips, "automatic");
        out.opt("relay-device", self.relay_device.as_deref(), "any");
        out.list("external-ip", &self.external_ip.addresses, "none");
        for mapping in &self.external_ip.mappings {
            out.set(
                "external-ip",
                format_args!("{}/{}", mapping.public, mapping.private),
            );
        }
        out.opt("relay-threads", self.relay_threads, "one per CPU");
        out.opt("cpus", self.cpus, "detected");
        out.set("relay-socket-buffer", self.relay_socket_buffer);
        out.set("min-port", self.min_port);
        out.set("max-port", self.max_port);
        out.flag("no-udp-relay", self.no_udp_relay);
        out.flag("no-tcp-relay", self.no_tcp_relay);
        for servers in [
            ("alternate-server", &self.alternate_servers),
            ("udp-alternate-server", &self.udp_alternate_servers),
            ("tcp-alternate-server", &self.tcp_alternate_servers),
            ("tls-alternate-server", &self.tls_alternate_servers),
        ] {
            out.list(servers.0, servers.1, "none");
        }

        out.section("authentication");
        let _ = writeln!(out.0, "# mode: {:?}", self.auth_mode());
        out.opt("realm", self.realm.as_deref(), "unset");
        out.opt("server-name", self.server_name.as_deref(), "the realm");
        out.flag("use-auth-secret", self.use_auth_secret);
        out.list(
            "static-auth-secret",
            &vec![REDACTED; self.static_auth_secrets.len()],
            "none",
        );
        out.set("rest-api-separator", self.rest_api_separator);
        out.flag("lt-cred-mech", self.lt_cred_mech);
        out.flag("no-auth", self.no_auth);
        let users: Vec<String> = self
            .users
            .iter()
            .map(|user| match user.key {
                UserKey::Password(_) => format!("{}:{REDACTED}", user.name),
                UserKey::Key(_) => format!("{}:0x{REDACTED}", user.name),
            })
            .collect();
        out.list("user", &users, "none");

        out.section("limits and timers");
        out.set("user-quota", self.user_quota);
        out.set("max-tcp-relay-connections", self.max_tcp_relay_connections);
        out.set("user-tcp-relay-quota", self.user_tcp_relay_quota);
        out.set(
            "unauthorized-ratelimit-rps",
            self.unauthorized_ratelimit_rps,
        );
        out.set("total-quota", self.total_quota);
        out.set("max-bps", self.max_bps);
        out.set("bps-capacity", self.bps_capacity);
        out.set("stale-nonce", self.stale_nonce);
        out.set("max-allocate-lifetime", self.max_allocate_lifetime);
        out.set("channel-lifetime", self.channel_lifetime);
        out.set("permission-lifetime", self.permission_lifetime);
        out.flag("fingerprint", self.fingerprint);
        out.flag("mobility", self.mobility);
        out.flag("check-origin-consistency", self.check_origin_consistency);
        out.set(
            "allocation-default-address-family",
            match self.allocation_default_address_family {
                AddressFamilyPolicy::Ipv4 => "ipv4",
                AddressFamilyPolicy::Ipv6 => "ipv6",
                AddressFamilyPolicy::Keep => "keep",
            },
        );

        out.section("peers");
        out.list("denied-peer-ip", &self.denied_peer_ips.entries, "none");
        out.list("allowed-peer-ip", &self.allowed_peer_ips.entries, "none");
        out.flag("no-multicast-peers", self.no_multicast_peers);
        out.flag("allow-loopback-peers", self.allow_loopback_peers);
        let _ = writeln!(
            out.0,
            "# this host's own addresses: closed to peers except on relay ports {}-{} and \
             allowed-own-host-port",
            self.min_port, self.max_port
        );
        for mapping in &self.external_ip.mappings {
            let _ = writeln!(
                out.0,
                "# {} (private half of external-ip {}/{}): allowed on those ports only",
                mapping.private, mapping.public, mapping.private
            );
        }
        let ports: Vec<String> = self
            .allowed_own_host_ports
            .iter()
            .map(|range| match (range.start(), range.end()) {
                (low, high) if low == high => low.to_string(),
                (low, high) => format!("{low}-{high}"),
            })
            .collect();
        out.list("allowed-own-host-port", &ports, "none");

        out.section("tls");
        out.set("cert", self.cert.display());
        out.set("pkey", self.pkey.display());
        out.opt("pkey-pwd", self.pkey_pwd.as_ref().map(|_| REDACTED), "none");
        out.opt(
            "cipher-list",
            self.cipher_list.as_deref(),
            "rustls defaults",
        );
        out.opt(
            "dh-file",
            self.dh_file.as_ref().map(|p| p.display()),
            "none",
        );
        out.opt(
            "CA-file",
            self.ca_file.as_ref().map(|p| p.display()),
            "none",
        );
        out.opt(
            "ec-curve-name",
            self.ec_curve_name.as_deref(),
            "rustls defaults",
        );
        out.flag("no-tlsv1_2", self.no_tlsv1_2);

        out.section("logging and process");
        match self.verbosity {
            Verbosity::Quiet => out.unset("verbose", "off"),
            Verbosity::Normal => out.flag("verbose", true),
            Verbosity::Extra => out.flag("Verbose", true),
        }
        match &self.log_file {
            Some(LogFile::Stdout) => out.set("log-file", "stdout"),
            Some(LogFile::Syslog) => out.set("log-file", "syslog"),
            Some(LogFile::Path(path)) => out.set("log-file", path.display()),
            None => out.unset("log-file", "default log directory search"),
        }
        out.flag("no-stdout-log", self.no_stdout_log);
        out.flag("syslog", self.syslog);
        out.flag("simple-log", self.simple_log);
        out.flag("new-log-timestamp", self.new_log_timestamp);
        out.opt(
            "new-log-timestamp-format",
            self.new_log_timestamp_format.as_deref(),
            "default",
        );
        out.opt(
            "syslog-facility",
            self.syslog_facility.as_deref(),
            "default",
        );
        out.flag("log-binding", self.log_binding);
        out.opt(
            "pidfile",
            self.pidfile.as_ref().map(|p| p.display()),
            "default",
        );
        out.opt("proc-user", self.proc_user.as_deref(), "unchanged");
        out.opt("proc-group", self.proc_group.as_deref(), "unchanged");

        out.section("operations");
        out.flag("prometheus", self.prometheus);
        out.set("prometheus-port", self.prometheus_port);
        out.opt(
            "prometheus-address",
            self.prometheus_address,
            "all addresses",
        );
        out.set("prometheus-path", &self.prometheus_path);
        out.flag(
            "prometheus-username-labels",
            self.prometheus_username_labels,
        );
        out.opt(
            "drain-timeout",
            self.drain_timeout.map(|d| d.as_secs()),
            "wait until allocations end",
        );
        out.set("drain-min-allocations", self.drain_min_allocations);
        out.flag("software-attribute", self.software_attribute);
        out.opt(
            "software-name",
            self.software_name.as_deref(),
            "turn-server and version",
        );
        out.0
    }
}

/// What `turn-server --check-config` prints, and whether the configuration passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The effective configuration (when it loaded), then every warning and error.
    pub text: String,
    /// Errors found: the binary exits non-zero when this is not 0.
    pub errors: usize,
    /// Warnings found.
    pub warnings: usize,
}

impl CheckReport {
    /// True when there is no error.
    pub fn passed(&self) -> bool {
        self.errors == 0
    }
}

/// Builds the `--check-config` report from the result of [`super::load`]: the
/// configuration, file and machine checks ([`Config::check_files`],
/// [`Config::check_host`]), every warning and error with its file line, and a summary.
pub fn check_report(
    outcome: &Result<Loaded, ConfigError>,
    host: &dyn Host,
    search: &SearchPath,
) -> CheckReport {
    let mut text = String::new();
    let (warnings, errors): (Vec<Diagnostic>, Vec<Diagnostic>) = match outcome {
        Ok(loaded) => {
            match &loaded.config_file {
                Some(path) => {
                    let _ = writeln!(text, "# Configuration file: {}", path.display());
                }
                None => text.push_str("# No configuration file\n"),
            }
            text.push_str(&loaded.config.render());
            let mut warnings = loaded.warnings.clone();
            warnings.extend(loaded.config.check_files(search));
            (warnings, loaded.config.check_host(host))
        }
        Err(ConfigError::Invalid { errors, warnings }) => (warnings.clone(), errors.clone()),
        Err(ConfigError::Usage(problem)) => (Vec::new(), vec![problem.clone()]),
        Err(error @ ConfigError::Read { .. }) => (
            Vec::new(),
            vec![Diagnostic::new(None, None, error.to_string())],
        ),
    };
    if !warnings.is_empty() || !errors.is_empty() {
        text.push('\n');
    }
    for warning in &warnings {
        let _ = writeln!(text, "warning: {warning}");
    }
    for error in &errors {
        let _ = writeln!(text, "error: {error}");
    }
    let _ = if errors.is_empty() {
        writeln!(
            text,
            "\nConfiguration OK ({} warning{}).",
            warnings.len(),
            plural(warnings.len())
        )
    } else {
        writeln!(
            text,
            "\nConfiguration has {} error{} and {} warning{}.",
            errors.len(),
            plural(errors.len()),
            warnings.len(),
            plural(warnings.len())
        )
    };
    CheckReport {
        text,
        errors: errors.len(),
        warnings: warnings.len(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use crate::config::{SearchPath, StaticHost, check_report, load_with};

    #[test]
    fn secrets_are_redacted_everywhere() {
        let loaded = load_with(
            [
                "-n",
                "--static-auth-secret=topsecret1",
                "--static-auth-secret",
                "topsecret2",
                "--realm=example.org",
                "--pkey-pwd=keypass99",
                "--denied-peer-ip=10.0.0.0-10.255.255.255",
                "-X",
                "203.0.113.5/10.0.0.5",
            ],
            &SearchPath::new(Vec::<&str>::new()),
        )
        .unwrap();
        let config = &loaded.config;
        let text = config.render();
        let debug = format!("{config:?}");
        for secret in ["topsecret1", "topsecret2", "keypass99"] {
            assert!(!text.contains(secret), "{secret} in render");
            assert!(!debug.contains(secret), "{secret} in Debug");
        }
        assert_eq!(text.matches("static-auth-secret=<redacted>\n").count(), 2);
        assert!(text.contains("pkey-pwd=<redacted>\n"));
        assert!(text.contains("realm=example.org\n"));
        assert!(text.contains("denied-peer-ip=10.0.0.0-10.255.255.255\n"));
        assert!(text.contains("external-ip=203.0.113.5/10.0.0.5\n"));
        assert!(text.contains(
            "# 10.0.0.5 (private half of external-ip 203.0.113.5/10.0.0.5): allowed on those \
             ports only\n"
        ));
        assert!(text.contains("# allowed-peer-ip: none\n"));
        assert!(text.contains("# mode: SharedSecret\n"));
        assert!(text.contains("# listening-ip: every local address\n"));
        assert!(text.contains("no-multicast-peers=on\n"));
    }

    #[test]
    fn users_are_redacted() {
        let loaded = load_with(
            [
                "-n",
                "-r",
                "example.org",
                "-u",
                "alice:wonderland",
                "-u",
                "bob:0x0123456789abcdef0123456789abcdef",
            ],
            &SearchPath::new(Vec::<&str>::new()),
        )
        .unwrap();
        let text = loaded.config.render();
        let debug = format!("{:?}", loaded.config);
        assert!(text.contains("user=alice:<redacted>\n"));
        assert!(text.contains("user=bob:0x<redacted>\n"));
        for leaked in ["wonderland", "0123456789abcdef"] {
            assert!(
                !text.contains(leaked) && !debug.contains(leaked),
                "{leaked}"
            );
        }
    }

    #[test]
    fn check_report_for_the_seed_file() {
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/seed-turnserver.conf");
        let search = SearchPath::new(Vec::<&str>::new());
        let outcome = load_with(["-c", seed.to_str().unwrap(), "--check-config"], &search);
        let host = StaticHost {
            addresses: vec!["10.0.0.4".parse().unwrap()],
            interfaces: vec!["ens3".into()],
        };
        let report = check_report(&outcome, &host, &search);
        assert!(!report.passed());
        assert_eq!((report.errors, report.warnings), (2, 6));
        let text = report.text.replace(seed.to_str().unwrap(), "seed");
        assert!(text.starts_with("# Configuration file: seed\n# Effective configuration"));
        assert!(text.contains("\nwarning: seed:17: hide-credentials: ignored"));
        assert!(text.contains("\nwarning: pkey: turn_server_pkey.pem not found"));
        assert!(text.contains("\nerror: seed:34: relay-ip: 62.122.185.165 is not an address"));
        assert!(text.contains("\nerror: seed:33: relay-device: network interface \"eth0\""));
        assert!(text.ends_with("\nConfiguration has 2 errors and 6 warnings.\n"));
        assert!(!text.contains("d5286002e9e14a2c"));
    }

    #[test]
    fn check_report_for_errors() {
        let search = SearchPath::new(Vec::<&str>::new());
        let host = StaticHost::default();
        let outcome = load_with(["-n", "--min-port=9", "--max-port=8", "--no-cli"], &search);
        let report = check_report(&outcome, &host, &search);
        assert_eq!(
            report.text,
            "\nwarning: command line argument 4: no-cli: ignored: the telnet admin CLI does not \
             exist here (coturn 4.10+ has it off too)\n\
             error: command line argument 3: max-port: min-port (9) is greater than max-port \
             (8): no relay port is left\n\
             \nConfiguration has 1 error and 1 warning.\n"
        );
        let outcome = load_with(["--bogus"], &search);
        let report = check_report(&outcome, &host, &search);
        assert_eq!(report.errors, 1);
        assert!(
            report
                .text
                .contains("error: command line argument 1: --bogus: unknown option")
        );
        let outcome = load_with(["-n", "--no-tls", "-L", "127.0.0.1"], &search);
        let host = StaticHost {
            addresses: vec!["127.0.0.1".parse().unwrap()],
            interfaces: Vec::new(),
        };
        let report = check_report(&outcome, &host, &search);
        assert!(report.passed(), "{}", report.text);
        assert!(report.text.ends_with("\nConfiguration OK (0 warnings).\n"));
    }
}
