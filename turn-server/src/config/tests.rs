//! End-to-end tests of [`load_with`]: file syntax, passes, precedence, errors, the seed file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

/// A file in a fresh temporary directory, removed on drop.
struct TempConf {
    dir: PathBuf,
    path: PathBuf,
}

impl TempConf {
    fn new(text: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "turn-config-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("turnserver.conf");
        std::fs::write(&path, text).unwrap();
        Self { dir, path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nowhere() -> SearchPath {
    SearchPath::new(Vec::<&str>::new())
}

fn load_file(text: &str, extra: &[&str]) -> (Result<Loaded, ConfigError>, TempConf) {
    let conf = TempConf::new(text);
    let mut args = vec!["-c", conf.arg()];
    args.extend_from_slice(extra);
    (load_with(args, &nowhere()), conf)
}

fn ok(text: &str, extra: &[&str]) -> (Loaded, TempConf) {
    let (result, conf) = load_file(text, extra);
    match result {
        Ok(loaded) => (loaded, conf),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// The error lines with the temporary path replaced by `F`.
fn errors(text: &str, extra: &[&str]) -> Vec<String> {
    let (result, conf) = load_file(text, extra);
    match result {
        Err(ConfigError::Invalid { errors, .. }) => errors
            .iter()
            .map(|e| e.to_string().replace(conf.arg(), "F"))
            .collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn warnings(loaded: &Loaded, conf: &TempConf) -> Vec<String> {
    loaded
        .warnings
        .iter()
        .map(|w| w.to_string().replace(conf.arg(), "F"))
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn defaults() {
    let loaded = load_with(["-n"], &nowhere()).unwrap();
    assert_eq!(loaded.action, Action::Run);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config_file, None);
    let c = loaded.config;
    assert_eq!((c.listening_port, c.tls_listening_port), (3478, 5349));
    assert_eq!(
        (
            c.effective_alt_listening_port(),
            c.effective_alt_tls_listening_port()
        ),
        (3479, 5350)
    );
    assert_eq!((c.min_port, c.max_port), (49152, 65535));
    assert_eq!(c.stale_nonce_lifetime(), Some(Duration::from_secs(600)));
    assert_eq!(
        (
            c.max_allocate_lifetime,
            c.channel_lifetime,
            c.permission_lifetime
        ),
        (3600, 600, 300)
    );
    assert_eq!(c.rest_api_separator, ':');
    assert!(c.no_multicast_peers, "our default: multicast peers denied");
    assert!(!c.allow_loopback_peers && !c.fingerprint && !c.mobility);
    assert_eq!(c.auth_mode(), AuthMode::Unconfigured);
    assert_eq!(c.prometheus_port, 9641);
    assert_eq!(c.prometheus_path, "/metrics");
    assert_eq!(c.cert, Path::new("turn_server_cert.pem"));
    assert_eq!(c.verbosity, Verbosity::Quiet);
    assert_eq!(
        c.allocation_default_address_family,
        AddressFamilyPolicy::Ipv4
    );
}

#[test]
fn coturn_booleans() {
    let cases = [
        ("", true),
        ("1", true),
        ("0", false),
        ("yes", true),
        ("y", true),
        ("no", false),
        ("N", false),
        ("true", true),
        ("T", true),
        ("false", false),
        ("f", false),
        ("on", true),
        ("ON", true),
        ("off", false),
        ("Off", false),
        ("7", true),
    ];
    for (value, expected) in cases {
        let line = if value.is_empty() {
            "fingerprint".to_owned()
        } else {
            format!("fingerprint={value}")
        };
        let (loaded, _conf) = ok(&line, &[]);
        assert_eq!(loaded.config.fingerprint, expected, "{line}");
    }
    assert_eq!(
        errors("\nmobility=maybe\n", &[]),
        ["F:2: mobility: \"maybe\" is not a boolean (use on/off, yes/no, true/false or 1/0)"]
    );
}

#[test]
fn stale_nonce_semantics() {
    let lifetime = |text: &str| {
        let (loaded, conf) = ok(text, &[]);
        (
            loaded.config.stale_nonce_lifetime(),
            warnings(&loaded, &conf),
        )
    };
    let secs = |s| Some(Duration::from_secs(s));
    assert_eq!(lifetime(""), (secs(600), vec![]));
    assert_eq!(lifetime("stale-nonce"), (secs(600), vec![]));
    assert_eq!(lifetime("stale-nonce=120"), (secs(120), vec![]));
    assert_eq!(lifetime("stale-nonce=0"), (None, vec![]));
    assert_eq!(
        lifetime("stale-nonce=soon"),
        (
            None,
            vec![
                "F:1: stale-nonce: \"soon\" is not a number; coturn reads it as 0, so nonces \
                 never expire"
                    .to_owned()
            ]
        )
    );
    assert_eq!(
        lifetime("stale-nonce=30s"),
        (
            secs(30),
            vec!["F:1: stale-nonce: \"30s\": only the leading number 30 is used".to_owned()]
        )
    );
    assert_eq!(
        errors("stale-nonce=-5", &[]),
        ["F:1: stale-nonce: \"-5\" is negative"]
    );
    // On the command line the value needs '=' (optional argument, as getopt).
    let loaded = load_with(["-n", "--stale-nonce", "--stale-nonce=9"], &nowhere()).unwrap();
    assert_eq!(loaded.config.stale_nonce, 9);
}

#[test]
fn file_syntax_end_to_end() {
    let text = "\
# comment
   # indented comment
  realm = example.org
listening-port\t3479
min-port==50000
pidfile=\"/run/turn server.pid\"
fingerprint
listening-ip=10.0.0.1
listening-ip 10.0.0.2
static-auth-secret=s1
static-auth-secret=\"s2 with space\"
verbose
";
    let (loaded, conf) = ok(text, &[]);
    let c = &loaded.config;
    assert_eq!(c.realm.as_deref(), Some("example.org"));
    assert_eq!(c.listening_port, 3479);
    assert_eq!(c.min_port, 50000);
    assert_eq!(
        c.pidfile.as_deref(),
        Some(Path::new("/run/turn server.pid"))
    );
    assert!(c.fingerprint);
    assert_eq!(c.listening_ips, [ip("10.0.0.1"), ip("10.0.0.2")]);
    let secrets: Vec<&[u8]> = c.static_auth_secrets.iter().map(|s| s.expose()).collect();
    assert_eq!(secrets, [&b"s1"[..], b"s2 with space"]);
    assert!(
        c.use_auth_secret,
        "static-auth-secret implies use-auth-secret"
    );
    assert_eq!(c.auth_mode(), AuthMode::SharedSecret);
    assert_eq!(c.verbosity, Verbosity::Normal);
    assert_eq!(loaded.config_file.as_deref(), Some(conf.path.as_path()));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        c.origins.of("listening-ip")[1],
        Origin::File {
            path: conf.path.clone(),
            line: 9
        }
    );
}

#[test]
fn no_inline_comment_fails_closed() {
    assert_eq!(
        errors("denied-peer-ip=10.0.0.0-10.255.255.255 # own net\n", &[]),
        [
            "F:1: denied-peer-ip: invalid IP range \"10.0.0.0-10.255.255.255 # own net\": end \
             of range is not an IP address (there are no inline comments: '#' only starts a \
             comment at the start of a line)"
        ]
    );
}

#[test]
fn errors_name_file_line_and_key() {
    let text = "\
listening-port=99999
tls-listening-port=abc
min-port=60000
max-port=50000
relay-ip=relay.example.org
external-ip=turn.example.org
denied-peer-ip=10.0.0.9-10.0.0.1
allowed-peer-ip=10.0.0.0/33
static-auth-secret=SECRET
user=nopassword
user=bob:0x1234
user=:pw
realm
alternate-server=1.2.3.4:0
prometheus-path=metrics
allocation-default-address-family=ipv5
relay-device=a/b
channel-lifetime=0
total-quota=-1
";
    let text = text.replace("SECRET", &"x".repeat(257));
    assert_eq!(
        errors(&text, &[]),
        [
            "F:1: listening-port: port \"99999\" is not between 1 and 65535",
            "F:2: tls-listening-port: port \"abc\" is not a number between 1 and 65535",
            "F:4: max-port: min-port (60000) is greater than max-port (50000): no relay port \
             is left",
            "F:5: relay-ip: \"relay.example.org\" is not an IP address (host names are not \
             resolved; give the address)",
            "F:6: external-ip: \"turn.example.org\" is not an IP address (host names are not \
             resolved; give the address)",
            "F:7: denied-peer-ip: invalid IP range \"10.0.0.9-10.0.0.1\": start of range is \
             after its end",
            "F:8: allowed-peer-ip: invalid IP range \"10.0.0.0/33\": prefix length too long",
            "F:9: static-auth-secret: secret is 257 bytes long; at most 256 are allowed",
            "F:10: user: expected name:password or name:0x<key> (no ':' found)",
            "F:11: user: user bob: a 0x key must be exactly 32 hex digits (turnadmin -k output)",
            "F:12: user: the user name before ':' is empty",
            "F:13: realm: needs a value",
            "F:14: alternate-server: port \"0\" of \"1.2.3.4:0\" is not between 1 and 65535",
            "F:15: prometheus-path: \"metrics\" must start with '/'",
            "F:16: allocation-default-address-family: \"ipv5\" is not ipv4, ipv6 or keep",
            "F:17: relay-device: \"a/b\" is not a valid network interface name",
            "F:18: channel-lifetime: must be at least 1 second",
            "F:19: total-quota: \"-1\" is not a non-negative whole number",
        ]
    );
}

#[test]
fn conflicts() {
    assert_eq!(
        errors("no-udp-relay\nno-tcp-relay\n", &[]),
        ["F:2: no-tcp-relay: no-udp-relay and no-tcp-relay together leave no relay transport"]
    );
    assert_eq!(
        errors("no-auth\n", &["-a"]),
        ["command line argument 3: lt-cred-mech: lt-cred-mech and no-auth cannot be used together"]
    );
    assert_eq!(
        errors("use-auth-secret\n", &[]),
        [
            "F:1: use-auth-secret: no static-auth-secret is set (user databases are not \
             supported), so no client could authenticate"
        ]
    );
    assert_eq!(
        errors("external-ip=203.0.113.1\nexternal-ip=203.0.113.2\n", &[]),
        [
            "F:2: external-ip: external-ip without '/' may be given only once per address \
             family (203.0.113.1 was set at F:1); use public/private pairs for several addresses"
        ]
    );
    assert_eq!(
        errors(
            "external-ip=2001:db8::1\n",
            &["-X", "203.0.113.1", "-X", "2001:db8::2"]
        ),
        [
            "command line argument 5: external-ip: external-ip without '/' may be given only \
             once per address family (2001:db8::1 was set at F:1); use public/private pairs for \
             several addresses"
        ]
    );
    assert_eq!(
        errors("external-ip=203.0.113.1/fd00::1\n", &[]),
        ["F:1: external-ip: \"203.0.113.1/fd00::1\" maps addresses of different families"]
    );
}

#[test]
fn external_ip_forms() {
    let (loaded, _conf) = ok(
        "external-ip=203.0.113.1\nexternal-ip=198.51.100.1/10.0.0.7\n",
        &["-X", "2001:db8::1/fd00::7"],
    );
    let c = &loaded.config;
    assert_eq!(c.external_ip.addresses, [ip("203.0.113.1")]);
    assert_eq!(
        c.external_ip.mappings,
        [
            ExternalMapping {
                public: ip("198.51.100.1"),
                private: ip("10.0.0.7")
            },
            ExternalMapping {
                public: ip("2001:db8::1"),
                private: ip("fd00::7")
            },
        ]
    );
    // The private halves are not allow entries (which would open every port): the
    // own-host rule allows them on relay ports only (startup::core_config).
    assert!(c.allowed_peer_ips.set.is_empty());
}

#[test]
fn command_line_precedence() {
    let text = "\
log-file=/var/log/turn.log
realm=file.example
listening-port=3478
listening-ip=10.0.0.1
user=bob:0x0123456789abcdef0123456789abcdef
user=carol:pw
verbose
";
    let (loaded, conf) = ok(
        text,
        &[
            "-r",
            "cli.example",
            "-p",
            "3479",
            "-L",
            "10.0.0.2",
            "-u",
            "dave:pw2",
            "-l",
            "stdout",
            "-V",
        ],
    );
    let c = &loaded.config;
    assert_eq!(c.realm.as_deref(), Some("cli.example"), "scalars: CLI wins");
    assert_eq!(c.listening_port, 3479);
    assert_eq!(
        c.listening_ips,
        [ip("10.0.0.1"), ip("10.0.0.2")],
        "lists add up"
    );
    assert_eq!(c.log_file, Some(LogFile::Stdout));
    assert_eq!(c.verbosity, Verbosity::Extra);
    let users: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(users, ["bob", "carol", "dave"], "file users, then -u");
    // Users come after the CLI realm, so the 0x key warns about nothing.
    assert_eq!(
        warnings(&loaded, &conf),
        [
            "F:5: user: user= accounts without lt-cred-mech: turning lt-cred-mech on, as \
             coturn does"
        ]
    );
    assert_eq!(c.auth_mode(), AuthMode::LongTerm);
    assert_eq!(
        c.users[0].long_term_key("ignored"),
        [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef
        ]
    );
    assert_eq!(
        c.users[1].long_term_key("cli.example"),
        rtc_auth::long_term::long_term_key("carol", "cli.example", "pw")
    );
    // `verbose` on the command line never lowers `Verbose` from the file.
    let (loaded, _conf) = ok("Verbose\n", &["-v"]);
    assert_eq!(loaded.config.verbosity, Verbosity::Extra);
}

#[test]
fn user_key_without_realm_warns() {
    let (loaded, conf) = ok(
        "lt-cred-mech\nuser=bob:0x0123456789abcdef0123456789abcdef\n",
        &[],
    );
    assert_eq!(
        warnings(&loaded, &conf),
        [
            "F:2: user: user bob has a 0x key, which only works for the realm it was computed \
             with, but no realm is set",
            "realm: no realm is set; clients will be told an empty realm (set realm=your.domain)",
        ]
    );
}

#[test]
fn openssl_options_warn_that_rustls_decides() {
    let (loaded, conf) = ok(
        "cipher-list=ECDHE-RSA-AES256-GCM-SHA384\ndh-file=/etc/dh.pem\n\
         ec-curve-name=prime256v1\nno-tlsv1_2\n",
        &[],
    );
    assert!(loaded.config.no_tlsv1_2, "applied, without a warning");
    assert_eq!(
        warnings(&loaded, &conf),
        [
            "F:1: cipher-list: ignored: rustls offers its own TLS 1.2/1.3 cipher suites",
            "F:2: dh-file: ignored: rustls uses ECDHE key exchange only",
            "F:3: ec-curve-name: ignored: rustls chooses the key exchange groups",
        ]
    );
}

#[test]
fn multicast_and_misc_flags() {
    let (loaded, conf) = ok(
        "allow-multicast-peers\nallow-loopback-peers\ndaemon\nno-software-attribute\n\
         rest-api-separator=-+\nno-dtls\ndrain-timeout=30\n",
        &[],
    );
    let c = &loaded.config;
    assert!(!c.no_multicast_peers);
    assert!(c.allow_loopback_peers);
    assert!(!c.software_attribute);
    assert_eq!(c.rest_api_separator, '-');
    assert_eq!(c.drain_timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        warnings(&loaded, &conf),
        [
            "F:1: allow-multicast-peers: multicast peers are allowed",
            "F:2: allow-loopback-peers: clients can reach services on this host's loopback; use \
             only for tests",
            "F:3: daemon: ignored: the server never forks; run it under your service manager",
            "F:5: rest-api-separator: only the first character '-' is used as the separator",
            "F:6: no-dtls: ignored: DTLS is off unless `dtls` is set (coturn 4.17 behaviour)",
        ]
    );
    // Later lines win: no-multicast-peers after allow-multicast-peers closes it again.
    let (loaded, _conf) = ok("allow-multicast-peers\n", &["--no-multicast-peers"]);
    assert!(loaded.config.no_multicast_peers);
    let (loaded, conf) = ok("no-multicast-peers=off\n", &[]);
    assert!(!loaded.config.no_multicast_peers);
    assert_eq!(
        warnings(&loaded, &conf),
        ["F:1: no-multicast-peers: multicast peers are allowed"]
    );
}

#[test]
fn config_file_lookup() {
    let conf = TempConf::new("realm=found.example\n");
    let search = SearchPath::new([conf.dir.join("missing"), conf.dir.clone()]);
    // Relative name through the search path; default name when no -c.
    for args in [vec!["-c", "turnserver.conf"], vec![]] {
        let loaded = load_with(args, &search).unwrap();
        assert_eq!(loaded.config.realm.as_deref(), Some("found.example"));
        assert_eq!(loaded.config_file.as_deref(), Some(conf.path.as_path()));
    }
    // -n ignores it.
    let loaded = load_with(["-n"], &search).unwrap();
    assert_eq!(loaded.config.realm, None);
    // A file named with -c must exist (coturn only warns and runs on defaults).
    let Err(ConfigError::Invalid { errors, .. }) =
        load_with(["-c", "nope.conf", "-r", "x"], &search)
    else {
        panic!("a missing -c file is an error");
    };
    let dirs = search
        .dirs()
        .iter()
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "command line argument 1: -c: configuration file nope.conf not found (searched: \
             {dirs})"
        )]
    );
    // The default name is optional: a warning, and defaults are used.
    let loaded = load_with(Vec::<&str>::new(), &nowhere()).unwrap();
    assert_eq!(
        loaded.warnings[0].to_string(),
        "cannot find configuration file turnserver.conf; using defaults and the command line"
    );
}

#[test]
fn actions_and_usage_errors() {
    let conf = TempConf::new("listening-port=notaport\n");
    // --help does not read the file, so its errors don't get in the way.
    let loaded = load_with(["-c", conf.arg(), "--help"], &nowhere()).unwrap();
    assert_eq!(loaded.action, Action::Help);
    let loaded = load_with(["--version"], &nowhere()).unwrap();
    assert_eq!(loaded.action, Action::Version);
    let loaded = load_with(["-n", "--check-config"], &nowhere()).unwrap();
    assert_eq!(loaded.action, Action::CheckConfig);
    match load_with(["-n", "--frobnicate"], &nowhere()) {
        Err(ConfigError::Usage(d)) => {
            assert_eq!(
                d.to_string(),
                "command line argument 2: --frobnicate: unknown option"
            );
        }
        other => panic!("{other:?}"),
    }
    // Errors keep the warnings found on the way, for --check-config.
    match load_with(["-c", conf.arg(), "--no-cli"], &nowhere()) {
        Err(ConfigError::Invalid { errors, warnings }) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(warnings.len(), 1);
            assert!(warnings[0].to_string().contains("no-cli: ignored"));
        }
        other => panic!("{other:?}"),
    }
    assert!(usage().contains("--listening-port"));
}

#[test]
fn directory_named_like_the_config_is_skipped() {
    let conf = TempConf::new("");
    let dir = conf.dir.join("dir.conf");
    std::fs::create_dir_all(dir.join("x")).unwrap();
    let search = SearchPath::new([conf.dir.clone()]);
    // `find` only takes regular files, so a directory is "not found", not an I/O error.
    let Err(ConfigError::Invalid { errors, .. }) = load_with(["-c", "dir.conf"], &search) else {
        panic!("a directory is not a configuration file");
    };
    assert!(
        errors[0].message.contains("dir.conf not found"),
        "{errors:?}"
    );
}

/// The real deployment's file, unchanged (fixtures/seed-turnserver.conf).
fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/seed-turnserver.conf")
}

#[test]
fn seed_config_loads_with_expected_warnings() {
    let path = seed();
    let loaded = load_with(["-c", path.to_str().unwrap()], &nowhere()).unwrap();
    let shown: Vec<String> = loaded
        .warnings
        .iter()
        .map(|w| w.to_string().replace(path.to_str().unwrap(), "seed"))
        .collect();
    assert_eq!(
        shown,
        [
            "seed:17: hide-credentials: ignored: not a coturn option; credentials are never \
             logged here",
            "seed:19: no-cli: ignored: the telnet admin CLI does not exist here (coturn 4.10+ \
             has it off too)",
            "seed:20: no-tlsv1: ignored: TLS 1.0/1.1 and SSL are never offered (rustls speaks \
             TLS 1.2 and 1.3 only)",
            "seed:21: no-tlsv1_1: ignored: TLS 1.0/1.1 and SSL are never offered (rustls speaks \
             TLS 1.2 and 1.3 only)",
        ]
    );
    let c = &loaded.config;
    assert_eq!(c.listening_port, 3478);
    assert_eq!(c.tls_listening_port, 5349);
    assert_eq!(c.external_ip.addresses, [ip("62.122.185.165")]);
    assert_eq!(c.auth_mode(), AuthMode::SharedSecret);
    assert_eq!(c.static_auth_secrets.len(), 1);
    assert!(c.fingerprint && c.mobility && c.no_multicast_peers && c.no_stdout_log);
    assert_eq!(c.verbosity, Verbosity::Normal);
    assert_eq!(c.realm.as_deref(), Some("turn.asapllc.com"));
    assert_eq!(c.server_name(), "turn.asapllc.com");
    assert_eq!(
        (c.max_bps, c.total_quota, c.stale_nonce),
        (1_000_000, 100, 600)
    );
    assert_eq!(c.relay_device.as_deref(), Some("eth0"));
    assert_eq!(c.relay_ips, [ip("62.122.185.165")]);
    assert_eq!(c.denied_peer_ips.entries.len(), 9);
    assert_eq!(c.denied_peer_ips.entries[5], "::1");
    for peer in [
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "::ffff:10.0.0.1",
        "::1",
    ] {
        assert!(c.denied_peer_ips.set.matches(ip(peer)), "{peer}");
    }
    assert!(!c.denied_peer_ips.set.matches(ip("8.8.8.8")));
    let text = c.render();
    assert!(!text.contains("d5286002e9e14a2c"), "secret leaked");
    assert!(text.contains("static-auth-secret=<redacted>"));
    assert_eq!(text.matches("\ndenied-peer-ip=").count(), 9);
}

#[test]
fn seed_config_host_check_names_lines() {
    let path = seed();
    let loaded = load_with(["-c", path.to_str().unwrap()], &nowhere()).unwrap();
    let host = StaticHost {
        addresses: vec![ip("127.0.0.1"), ip("10.0.0.4")],
        interfaces: vec!["lo".into(), "ens3".into()],
    };
    let shown: Vec<String> = loaded
        .config
        .check_host(&host)
        .iter()
        .map(|e| e.to_string().replace(path.to_str().unwrap(), "seed"))
        .collect();
    assert_eq!(
        shown,
        [
            "seed:34: relay-ip: 62.122.185.165 is not an address of this machine, so relay \
             sockets cannot bind to it; behind NAT, put the private address in relay-ip and the \
             public one in external-ip",
            "seed:33: relay-device: network interface \"eth0\" does not exist on this machine",
        ]
    );
    let at_home = StaticHost {
        addresses: vec![ip("62.122.185.165")],
        interfaces: vec!["eth0".into()],
    };
    assert!(loaded.config.check_host(&at_home).is_empty());
}

#[test]
fn reload_reports_options_that_need_a_restart() {
    let old = load_with(["-n", "-p", "3478", "--static-auth-secret=a"], &nowhere()).unwrap();
    let new = load_with(
        [
            "-n",
            "-p",
            "3479",
            "--static-auth-secret=b",
            "--max-port=60000",
            "-r",
            "x",
        ],
        &nowhere(),
    )
    .unwrap();
    assert_eq!(
        old.config.needs_restart(&new.config),
        ["listening-port", "max-port"],
        "secrets and realm apply live"
    );
    assert!(old.config.needs_restart(&old.config).is_empty());
}

#[test]
fn nothing_configured_is_detectable() {
    let loaded = load_with(["-n"], &nowhere()).unwrap();
    assert!(loaded.config.origins.is_empty());
    let loaded = load_with(["-n", "-f"], &nowhere()).unwrap();
    assert!(!loaded.config.origins.is_empty());
}

#[test]
fn relay_socket_buffer_in_bytes_within_bounds() {
    let (loaded, _conf) = ok("", &[]);
    assert_eq!(loaded.config.relay_socket_buffer, 1 << 20);
    let (loaded, _conf) = ok("relay-socket-buffer=8388608", &[]);
    assert_eq!(loaded.config.relay_socket_buffer, 8 << 20);
    assert_eq!(
        errors("relay-socket-buffer=1000\nrelay-socket-buffer=1M", &[]),
        vec![
            "F:1: relay-socket-buffer: 1000 is outside 4096..=268435456 bytes".to_owned(),
            "F:2: relay-socket-buffer: \"1M\" is not a non-negative whole number".to_owned(),
        ]
    );
}

/// coturn 4.17's newer options: applied where they have a meaning here, otherwise a
/// warning with the reason (and never the value: `stateless-nonce-secret` is a secret).
#[test]
fn coturn_4_17_options() {
    let (loaded, conf) = ok(
        "cpus=3\nsock-buf-size=65536\ndrain-min-allocations=2\n\
         udp-alternate-server=192.0.2.1\ntcp-alternate-server=192.0.2.2:3479\n\
         include-reason-string\nstateless-nonce-secret=hush-hush\nmultiplex-peer-port=3480\n",
        &[],
    );
    let c = &loaded.config;
    assert_eq!(c.cpus, Some(3));
    assert_eq!(c.relay_socket_buffer, 65536);
    assert_eq!(c.drain_min_allocations, 2);
    assert_eq!(
        c.udp_alternate_servers,
        ["192.0.2.1:3478".parse::<std::net::SocketAddr>().unwrap()]
    );
    assert_eq!(
        c.tcp_alternate_servers,
        ["192.0.2.2:3479".parse::<std::net::SocketAddr>().unwrap()]
    );
    let shown = warnings(&loaded, &conf);
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(shown[0].starts_with("F:6: include-reason-string: ignored: "));
    assert!(shown[1].starts_with("F:7: stateless-nonce-secret: ignored: "));
    assert!(shown[2].starts_with("F:8: multiplex-peer-port: ignored: "));
    assert!(!format!("{shown:?}{c:?}").contains("hush-hush"));
    assert_eq!(errors("cpus=0\n", &[]), ["F:1: cpus: must be at least 1"]);
}

/// PROXY headers are believed from named proxies only; loopback when none is named,
/// never everyone.
#[test]
fn proxy_sources() {
    let (loaded, conf) = ok("tcp-proxy-port=3479\n", &[]);
    let sources = loaded.config.proxy_sources();
    assert!(sources.contains(ip("127.0.0.1")) && sources.contains(ip("::1")));
    assert!(!sources.contains(ip("192.0.2.1")));
    assert_eq!(
        warnings(&loaded, &conf),
        [
            "F:1: tcp-proxy-port: only a proxy on loopback is trusted to send PROXY headers; \
             name yours with tcp-proxy-trusted-ip (its address, or its network's CIDR)"
        ]
    );
    let (loaded, conf) = ok(
        "tcp-proxy-port=3479\ntcp-proxy-trusted-ip=172.18.0.0/16\n",
        &[],
    );
    let sources = loaded.config.proxy_sources();
    assert!(sources.contains(ip("172.18.0.3")));
    assert!(
        !sources.contains(ip("127.0.0.1")),
        "the list replaces loopback"
    );
    assert!(warnings(&loaded, &conf).is_empty());
    assert_eq!(
        errors("tcp-proxy-trusted-ip=everyone\n", &[]),
        ["F:1: tcp-proxy-trusted-ip: invalid IP range \"everyone\": not an IP address"]
    );
}
