//! The option table: one row per coturn (or our own) option, shared by the file parser,
//! the argv parser and the usage text, so the three can never disagree on a name. Each
//! row also says what applying the option does ([`Setter`]) and in which pass, so adding
//! an option is one row plus its field in [`Config`].
//!
//! The rows live in one file per topic (`options/listeners.rs`, `relay.rs`, `auth.rs`,
//! ...); [`all`] walks them in the order of the usage text.

mod actions;
mod auth;
mod ignored;
mod limits;
mod listeners;
mod logging;
mod operations;
mod peers;
mod protocol;
mod relay;
mod services;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::model::{Config, PeerList};
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
    /// One more ALTERNATE-SERVER address, `addr[:port]`, with the default port given.
    Servers(fn(&mut Config) -> &mut Vec<SocketAddr>, u16),
    /// A lifetime in whole seconds, at least 1; an empty value means the default given.
    Lifetime(fn(&mut Config) -> &mut u32, u32),
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

/// Every option we know, by topic. The order of the tables and of their rows is the order
/// of the usage text (and of the candidates for an unknown name's hint).
const TABLES: &[&[Spec]] = &[
    listeners::LISTENERS,
    relay::RELAY,
    services::SERVICES,
    auth::AUTH,
    limits::LIMITS,
    protocol::MESSAGES,
    peers::PEERS,
    tls::TLS,
    relay::ALTERNATE_SERVERS,
    logging::LOGGING,
    operations::OPERATIONS,
    protocol::ALLOCATIONS,
    actions::ACTIONS,
    ignored::IGNORED,
    limits::UNAUTHORIZED,
    ignored::IGNORED_LATER,
];

/// Every row, in table order.
pub(crate) fn all() -> impl Iterator<Item = &'static Spec> {
    TABLES.iter().flat_map(|table| table.iter())
}

/// The row for a long name (exact, case-sensitive, as coturn).
pub(crate) fn by_name(name: &str) -> Option<&'static Spec> {
    all().find(|spec| spec.name == name)
}

/// The row for a short letter.
pub(crate) fn by_short(letter: char) -> Option<&'static Spec> {
    all().find(|spec| spec.short == Some(letter))
}

/// What to add to "unknown option" for `name`: the case-sensitivity reminder when only
/// the case differs, else the closest option name when one is close (a typo such as
/// `listen-port` or `static-auth-secert`), else nothing.
pub(crate) fn unknown_hint(name: &str) -> String {
    if all().any(|spec| spec.name.eq_ignore_ascii_case(name)) {
        return " (option names are case-sensitive)".to_owned();
    }
    // Jaro-Winkler weighs a shared start, which is how option names are mistyped; below
    // 0.88 the "closest" name is usually unrelated. No option name is near 64 characters.
    if name.len() > 64 {
        return String::new();
    }
    all()
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
        let rows: Vec<&Spec> = all().collect();
        for (i, a) in rows.iter().enumerate() {
            for b in &rows[i + 1..] {
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
