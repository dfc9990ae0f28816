//! The command line, coturn style: `-c FILE`, `-n`, `--key=value`, `--key value` for
//! options that need a value, bare `--flag`, and coturn's short letters (`-L 1.2.3.4`,
//! bundles such as `-fv`).
//!
//! Unlike the file, an unknown option here is an error: a typo on the command line is
//! always a mistake of the person typing it, and coturn refuses it too. Options coturn
//! knows but we do not implement only warn, as in the file.

use std::ffi::OsString;
use std::fmt::Write as _;

use super::options::{self, Arg, Opt, Spec};
use super::{Action, DEFAULT_CONFIG_FILE, Diagnostic, Entry, Origin};

/// Which configuration file the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigFile {
    /// No `-c`: look for `turnserver.conf`.
    Default,
    /// `-c NAME`.
    Named { name: String, origin: Origin },
    /// `-n`: no file at all.
    Disabled,
}

impl ConfigFile {
    /// The name to search for and the argument that gave it.
    pub(crate) fn name(&self) -> Option<(String, Option<Origin>)> {
        match self {
            Self::Default => Some((DEFAULT_CONFIG_FILE.to_owned(), None)),
            Self::Named { name, origin } => Some((name.clone(), Some(origin.clone()))),
            Self::Disabled => None,
        }
    }
}

/// The parsed command line.
#[derive(Debug)]
pub(crate) struct CommandLine {
    pub(crate) config_file: ConfigFile,
    pub(crate) action: Action,
    pub(crate) entries: Vec<Entry>,
    pub(crate) warnings: Vec<Diagnostic>,
}

/// Parses the arguments (without the program name); the error is for the usage text.
pub(crate) fn parse<I, S>(args: I) -> Result<CommandLine, Diagnostic>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut collected: Vec<(Origin, String)> = Vec::new();
    for (index, arg) in args_iter(args).enumerate() {
        let origin = Origin::CommandLine {
            position: index + 1,
        };
        match arg.into_string() {
            Ok(text) => collected.push((origin, text)),
            Err(_) => {
                return Err(Diagnostic::new(
                    Some(origin),
                    None,
                    "argument is not valid UTF-8",
                ));
            }
        }
    }
    let mut parser = Parser {
        line: CommandLine {
            config_file: ConfigFile::Default,
            action: Action::Run,
            entries: Vec::new(),
            warnings: Vec::new(),
        },
        args: collected.into_iter(),
    };
    while let Some((origin, arg)) = parser.args.next() {
        if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() {
                return Err(Diagnostic::new(
                    Some(origin),
                    None,
                    "unexpected `--`: this server takes no positional arguments",
                ));
            }
            parser.long(long, origin)?;
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            parser.shorts(shorts, origin)?;
        } else {
            return Err(Diagnostic::new(
                Some(origin),
                None,
                format!("unexpected argument {arg:?}: options start with - or --"),
            ));
        }
    }
    Ok(parser.line)
}

fn args_iter<I, S>(args: I) -> impl Iterator<Item = OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    args.into_iter().map(Into::into)
}

struct Parser {
    line: CommandLine,
    args: std::vec::IntoIter<(Origin, String)>,
}

impl Parser {
    fn long(&mut self, text: &str, origin: Origin) -> Result<(), Diagnostic> {
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (text, None),
        };
        let Some(spec) = options::by_name(name) else {
            let hint = if name == "config" {
                " (coturn has no --config; use -c FILE)".to_owned()
            } else {
                options::unknown_hint(name)
            };
            return Err(Diagnostic::new(
                Some(origin),
                Some(&format!("--{name}")),
                format!("unknown option{hint}"),
            ));
        };
        let value = match (spec.arg, inline) {
            (_, Some(value)) => Some(value),
            (Arg::Required, None) => Some(self.next_value(spec, &origin)?),
            (Arg::Flag | Arg::Optional, None) => None,
        };
        self.add(spec, value, origin);
        Ok(())
    }

    fn shorts(&mut self, cluster: &str, origin: Origin) -> Result<(), Diagnostic> {
        for (offset, letter) in cluster.char_indices() {
            let rest = &cluster[offset + letter.len_utf8()..];
            match letter {
                'c' => {
                    let name = self.short_value(letter, rest, &origin)?;
                    self.line.config_file = ConfigFile::Named { name, origin };
                    return Ok(());
                }
                'n' => {
                    self.line.config_file = ConfigFile::Disabled;
                    continue;
                }
                _ => {}
            }
            let Some(spec) = options::by_short(letter).or_else(|| options::ignored_short(letter))
            else {
                return Err(Diagnostic::new(
                    Some(origin),
                    Some(&format!("-{letter}")),
                    "unknown option",
                ));
            };
            if spec.arg == Arg::Required {
                let value = self.short_value(letter, rest, &origin)?;
                self.add(spec, Some(value), origin);
                return Ok(());
            }
            self.add(spec, None, origin.clone());
        }
        Ok(())
    }

    /// The value of a short option: the rest of the cluster (`-p3478`) or the next
    /// argument (`-p 3478`).
    fn short_value(
        &mut self,
        letter: char,
        rest: &str,
        origin: &Origin,
    ) -> Result<String, Diagnostic> {
        let value = if rest.is_empty() {
            match self.args.next() {
                Some((_, value)) => value,
                None => {
                    return Err(Diagnostic::new(
                        Some(origin.clone()),
                        Some(&format!("-{letter}")),
                        "needs a value",
                    ));
                }
            }
        } else {
            rest.to_owned()
        };
        // coturn warns about `-L=1.2.3.4`; dropping the `=` gives what was meant.
        match value.strip_prefix('=') {
            Some(stripped) => {
                self.line.warnings.push(Diagnostic::new(
                    Some(origin.clone()),
                    Some(&format!("-{letter}")),
                    format!(
                        "short options take `-{letter} VALUE` without '='; the '=' was dropped"
                    ),
                ));
                Ok(stripped.to_owned())
            }
            None => Ok(value),
        }
    }

    fn next_value(&mut self, spec: &Spec, origin: &Origin) -> Result<String, Diagnostic> {
        match self.args.next() {
            Some((_, value)) => Ok(value),
            None => Err(Diagnostic::new(
                Some(origin.clone()),
                Some(&format!("--{}", spec.name)),
                "needs a value",
            )),
        }
    }

    fn add(&mut self, spec: &'static Spec, value: Option<String>, origin: Origin) {
        match spec.opt {
            Opt::Help => self.line.action = Action::Help,
            Opt::Version if self.line.action != Action::Help => self.line.action = Action::Version,
            Opt::CheckConfig if self.line.action == Action::Run => {
                self.line.action = Action::CheckConfig;
            }
            Opt::Version | Opt::CheckConfig => {}
            Opt::Ignored(why) => self.line.warnings.push(Diagnostic::at(
                &origin,
                spec.name,
                format!("ignored: {why}"),
            )),
            _ => self.line.entries.push(Entry {
                spec,
                value: value.filter(|v| !v.is_empty() || spec.arg == Arg::Required),
                origin,
            }),
        }
    }
}

/// The usage text, built from the option table.
pub(crate) fn usage() -> String {
    let mut text = String::from(
        "Usage: turn-server [-c FILE | -n] [--check-config] [OPTIONS]\n\n\
         Reads coturn's turnserver.conf (default: turnserver.conf in ., ./etc, ../etc, /etc,\n\
         /usr/local/etc); command-line options override the file, list options add to it.\n\n  \
         -c FILE                          configuration file\n  \
         -n                               do not read a configuration file\n",
    );
    for spec in options::OPTIONS.iter().filter(|spec| !spec.help.is_empty()) {
        let short = spec.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = match spec.arg {
            Arg::Flag => "",
            Arg::Optional => "[=N]",
            Arg::Required => " VALUE",
        };
        let left = format!("{short}--{}{value}", spec.name);
        // Writing to a String cannot fail.
        let _ = writeln!(text, "  {left:<32} {}", spec.help);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> CommandLine {
        parse(args.iter().copied()).unwrap()
    }

    fn values(line: &CommandLine) -> Vec<(&str, Option<&str>)> {
        line.entries
            .iter()
            .map(|e| (e.spec.name, e.value.as_deref()))
            .collect()
    }

    #[test]
    fn long_forms() {
        let line = parse_ok(&[
            "--realm=example.org",
            "--listening-port",
            "3479",
            "--fingerprint",
            "--stale-nonce",
            "--stale-nonce=30",
            "--mobility=off",
        ]);
        assert_eq!(
            values(&line),
            [
                ("realm", Some("example.org")),
                ("listening-port", Some("3479")),
                ("fingerprint", None),
                ("stale-nonce", None),
                ("stale-nonce", Some("30")),
                ("mobility", Some("off")),
            ]
        );
        assert_eq!(line.action, Action::Run);
        assert_eq!(line.config_file, ConfigFile::Default);
    }

    #[test]
    fn short_letters_and_bundles() {
        let line = parse_ok(&[
            "-p",
            "3479",
            "-L1.2.3.4",
            "-fv",
            "-u",
            "a:b",
            "-X",
            "1.2.3.4/10.0.0.1",
        ]);
        assert_eq!(
            values(&line),
            [
                ("listening-port", Some("3479")),
                ("listening-ip", Some("1.2.3.4")),
                ("fingerprint", None),
                ("verbose", None),
                ("user", Some("a:b")),
                ("external-ip", Some("1.2.3.4/10.0.0.1")),
            ]
        );
        let line = parse_ok(&["-L", "=1.2.3.4"]);
        assert_eq!(values(&line), [("listening-ip", Some("1.2.3.4"))]);
        assert_eq!(line.warnings.len(), 1);
        assert!(
            line.warnings[0]
                .to_string()
                .starts_with("command line argument 1: -L: ")
        );
    }

    #[test]
    fn config_file_choice() {
        let line = parse_ok(&["-c", "my.conf"]);
        assert_eq!(
            line.config_file,
            ConfigFile::Named {
                name: "my.conf".into(),
                origin: Origin::CommandLine { position: 1 }
            }
        );
        assert_eq!(parse_ok(&["-n"]).config_file, ConfigFile::Disabled);
        assert_eq!(
            parse_ok(&["-c", "x", "-n"]).config_file,
            ConfigFile::Disabled
        );
        let err = parse(["-c"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "command line argument 1: -c: needs a value"
        );
    }

    #[test]
    fn actions() {
        assert_eq!(parse_ok(&["--check-config"]).action, Action::CheckConfig);
        assert_eq!(parse_ok(&["--check-config", "--help"]).action, Action::Help);
        assert_eq!(parse_ok(&["-h"]).action, Action::Help);
        assert_eq!(
            parse_ok(&["--version", "--check-config"]).action,
            Action::Version
        );
    }

    #[test]
    fn errors_and_warnings() {
        let cases = [
            (
                vec!["--bogus"],
                "command line argument 1: --bogus: unknown option",
            ),
            (
                vec!["-n", "--config", "x"],
                "command line argument 2: --config: unknown option (coturn has no --config; \
                 use -c FILE)",
            ),
            (
                vec!["--VERBOSE"],
                "command line argument 1: --VERBOSE: unknown option (option names are \
                 case-sensitive)",
            ),
            (vec!["-Y"], "command line argument 1: -Y: unknown option"),
            (
                vec!["--static-auth-secert=x"],
                "command line argument 1: --static-auth-secert: unknown option (did you mean \
                 `static-auth-secret`?)",
            ),
            (
                vec!["-f", "-r"],
                "command line argument 2: -r: needs a value",
            ),
            (
                vec!["--realm"],
                "command line argument 1: --realm: needs a value",
            ),
            (
                vec!["stray"],
                "command line argument 1: unexpected argument \"stray\": options start with \
                 - or --",
            ),
        ];
        for (args, expected) in cases {
            let err = parse(args.clone()).unwrap_err();
            assert_eq!(err.to_string(), expected, "{args:?}");
        }
        let line = parse_ok(&["--no-cli", "-N", "redis://x"]);
        assert!(line.entries.is_empty());
        assert_eq!(line.warnings.len(), 2);
        assert!(line.warnings[0].to_string().contains("no-cli: ignored"));
        assert!(
            line.warnings[1]
                .to_string()
                .contains("redis-userdb: ignored")
        );
    }

    #[test]
    fn usage_lists_options() {
        let text = usage();
        assert!(text.contains("-p, --listening-port VALUE"));
        assert!(text.contains("--stale-nonce[=N]"));
        assert!(text.contains("--check-config"));
        assert!(!text.contains("hide-credentials"));
    }
}
