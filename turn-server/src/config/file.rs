//! coturn's configuration file syntax (`read_config_file` / `parse_arg_string`).
//!
//! The rules are coturn's, including the surprising ones, because a file that works with
//! coturn must mean the same thing here:
//!
//! - leading blanks are skipped; a line whose first other character is `#` is a comment,
//!   and `#` anywhere else is part of the value (there are no inline comments);
//! - trailing whitespace is stripped;
//! - the key ends at the first space, tab or `=`, and any run of those is skipped, so
//!   `realm=x`, `realm x`, `realm = x` and `realm==x` are the same;
//! - a value starting with `"` loses that quote and one trailing `"`;
//! - a line ending with `;` is kept but warned about (a habit from other formats);
//! - unknown keys only warn.

use std::path::Path;

use super::options::{self, Opt};
use super::{Diagnostic, Entry, Origin};

/// What a file yielded: entries in file order, warnings and errors.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) entries: Vec<Entry>,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) errors: Vec<Diagnostic>,
}

/// The key and value of one non-comment line, after coturn's splitting and unquoting.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    pub(crate) key: &'a str,
    /// Empty for a bare key.
    pub(crate) value: &'a str,
    /// The line ended with `;`.
    pub(crate) semicolon: bool,
}

/// Splits one line; `None` for blank and comment lines.
pub(crate) fn split_line(line: &str) -> Option<Line<'_>> {
    let line = line.trim_start_matches([' ', '\t']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // C `isspace`: space, \t, \n, \v, \f, \r.
    let line = line.trim_end_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if line.is_empty() {
        return None;
    }
    let is_separator = |c: char| matches!(c, ' ' | '\t' | '=');
    let (key, value) = match line.find(is_separator) {
        Some(end) => (&line[..end], line[end..].trim_start_matches(is_separator)),
        None => (line, ""),
    };
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"').unwrap_or(quoted),
        None => value,
    };
    Some(Line {
        key,
        value,
        semicolon: line.ends_with(';'),
    })
}

/// Parses a whole file; `path` is only used to name lines in messages.
pub(crate) fn parse(bytes: &[u8], path: &Path) -> Parsed {
    let mut parsed = Parsed::default();
    // `split` rather than `lines` keeps numbering right for files with `\r\n` endings
    // (the `\r` is trailing whitespace).
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let origin = Origin::File {
            path: path.to_owned(),
            line: index + 1,
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            parsed.errors.push(Diagnostic::new(
                Some(origin),
                None,
                "line is not valid UTF-8",
            ));
            continue;
        };
        let Some(line) = split_line(text) else {
            continue;
        };
        if line.semicolon {
            parsed.warnings.push(Diagnostic::at(
                &origin,
                line.key,
                "line ends with ';', which becomes part of the value (check the line)",
            ));
        }
        let Some(spec) = options::by_name(line.key) else {
            let hint = options::unknown_hint(line.key);
            parsed.warnings.push(Diagnostic::at(
                &origin,
                line.key,
                format!("unknown option, line ignored{hint}"),
            ));
            continue;
        };
        if spec.cli_only() {
            parsed.warnings.push(Diagnostic::at(
                &origin,
                line.key,
                "only valid on the command line, line ignored",
            ));
            continue;
        }
        if let Opt::Ignored(why) = spec.opt {
            parsed
                .warnings
                .push(Diagnostic::at(&origin, line.key, format!("ignored: {why}")));
            continue;
        }
        parsed.entries.push(Entry {
            spec,
            value: (!line.value.is_empty()).then(|| line.value.to_owned()),
            origin,
        });
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Option<(&str, &str)> {
        split_line(text).map(|l| (l.key, l.value))
    }

    #[test]
    fn separators_are_any_run_of_space_tab_equals() {
        for text in [
            "realm=x",
            "realm x",
            "realm = x",
            "realm==x",
            "realm\t=\t x",
            "realm =  = x",
        ] {
            assert_eq!(line(text), Some(("realm", "x")), "{text:?}");
        }
    }

    #[test]
    fn blanks_comments_and_trailing_whitespace() {
        assert_eq!(line(""), None);
        assert_eq!(line("   \t "), None);
        assert_eq!(line("# realm=x"), None);
        assert_eq!(line("   \t# realm=x"), None);
        assert_eq!(line("  realm=x  \t\r"), Some(("realm", "x")));
        assert_eq!(line("fingerprint"), Some(("fingerprint", "")));
        assert_eq!(line("fingerprint   "), Some(("fingerprint", "")));
        assert_eq!(line("fingerprint="), Some(("fingerprint", "")));
    }

    #[test]
    fn no_inline_comments() {
        assert_eq!(
            line("denied-peer-ip=10.0.0.0-10.255.255.255 # own net"),
            Some(("denied-peer-ip", "10.0.0.0-10.255.255.255 # own net"))
        );
        assert_eq!(line("realm=a#b"), Some(("realm", "a#b")));
    }

    #[test]
    fn quotes() {
        assert_eq!(
            line(r#"pidfile="/var/run/turnserver.pid""#),
            Some(("pidfile", "/var/run/turnserver.pid"))
        );
        assert_eq!(line(r#"realm="x"  "#), Some(("realm", "x")));
        assert_eq!(line(r#"realm="x"#), Some(("realm", "x")));
        assert_eq!(line(r#"realm=""x"""#), Some(("realm", "\"x\"")));
        assert_eq!(
            line(r#"realm=x""#),
            Some(("realm", "x\"")),
            "only a leading quote opens"
        );
        assert_eq!(
            line("realm='x'"),
            Some(("realm", "'x'")),
            "single quotes are plain"
        );
        assert_eq!(line(r#"realm="a b""#), Some(("realm", "a b")));
    }

    #[test]
    fn semicolon_flag() {
        assert!(split_line("realm=x;").is_some_and(|l| l.semicolon && l.value == "x;"));
        assert!(split_line("realm=x").is_some_and(|l| !l.semicolon));
    }

    #[test]
    fn warnings_name_file_and_line() {
        let text = b"# comment\nhide-credentials\nVERBOSE\nno-tlsv1\nrealm=x;\nbogus-key 1\n\
                     check-config\nlisten-port=3478\n";
        let parsed = parse(text, Path::new("/etc/t.conf"));
        let shown: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "/etc/t.conf:2: hide-credentials: ignored: not a coturn option; credentials are \
                 never logged here",
                "/etc/t.conf:3: VERBOSE: unknown option, line ignored (option names are \
                 case-sensitive)",
                "/etc/t.conf:4: no-tlsv1: ignored: TLS 1.0/1.1 and SSL are never offered (rustls \
                 speaks TLS 1.2 and 1.3 only)",
                "/etc/t.conf:5: realm: line ends with ';', which becomes part of the value (check \
                 the line)",
                "/etc/t.conf:6: bogus-key: unknown option, line ignored",
                "/etc/t.conf:7: check-config: only valid on the command line, line ignored",
                "/etc/t.conf:8: listen-port: unknown option, line ignored (did you mean \
                 `listening-port`?)",
            ]
        );
        assert!(parsed.errors.is_empty());
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].value.as_deref(), Some("x;"));
        assert_eq!(
            parsed.entries[0].origin,
            Origin::File {
                path: "/etc/t.conf".into(),
                line: 5
            }
        );
    }

    #[test]
    fn crlf_and_bad_utf8() {
        let parsed = parse(b"realm=x\r\nfingerprint\r\n\xff\xfe\n", Path::new("f"));
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.entries[0].value.as_deref(), Some("x"));
        assert_eq!(parsed.entries[1].value, None);
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].to_string(), "f:3: line is not valid UTF-8");
    }
}
