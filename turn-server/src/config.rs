//! Configuration: coturn's `turnserver.conf` and command line, into one typed [`Config`].
//!
//! A coturn user must be able to point this server at the file they already have, so the
//! syntax and the order in which values win follow coturn (turn-anchors.md §1.1):
//!
//! - [`options`]: one table of every option, feeding the file parser, the argv parser and
//!   `--help`;
//! - [`file`]: the line format (`key=value`, `key value`, bare flags, quotes, `#` only at
//!   the start of a line); unknown and removed keys only warn;
//! - [`cli`]: `-c FILE`, `-n`, `--key=value`, `--key value` and coturn's short letters;
//! - [`model`]: applying values in coturn's passes (logging, everything but users, then
//!   the command line, then users) and the checks between options;
//! - [`check`]: checks against the machine (local addresses, interfaces), behind the
//!   [`Host`] trait so tests need no network;
//! - [`render`]: the effective configuration for `--check-config`, secrets redacted.
//!
//! Every warning and error is a [`Diagnostic`] that names where the value came from
//! (`file:line` or the command-line argument), so an operator can fix it without guessing.

mod check;
mod cli;
mod file;
mod model;
mod options;
mod render;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

pub use check::{Host, StaticHost, SystemHost};
pub use model::{
    AddressFamilyPolicy, AuthMode, Config, DEFAULT_ALTERNATE_PORT, DEFAULT_CHANNEL_LIFETIME,
    DEFAULT_MAX_ALLOCATE_LIFETIME, DEFAULT_PERMISSION_LIFETIME, DEFAULT_STALE_NONCE,
    DEFAULT_TLS_ALTERNATE_PORT, ExternalIp, ExternalMapping, LogFile, MAX_REALM_CHARS,
    MAX_SECRET_BYTES, Origins, PeerList, StaticUser, UserKey, Verbosity,
};
pub use render::{CheckReport, check_report};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a configuration file (1-based).
    File {
        /// The file as found by the search.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// An argument on the command line (1-based, program name not counted).
    CommandLine {
        /// 1-based position among the arguments.
        position: usize,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, line } => write!(f, "{}:{line}", path.display()),
            Self::CommandLine { position } => write!(f, "command line argument {position}"),
        }
    }
}

/// One warning or error, with where it came from and which option it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file line or argument; `None` for facts about the whole configuration.
    pub origin: Option<Origin>,
    /// The option name as written (`relay-ip`), when the message is about one.
    pub key: Option<String>,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(
        origin: Option<Origin>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            origin,
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    pub(crate) fn at(origin: &Origin, key: &str, message: impl Into<String>) -> Self {
        Self::new(Some(origin.clone()), Some(key), message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What the command line asks the binary to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Start the server.
    Run,
    /// `--check-config`: print [`Config::render`] and the warnings, exit non-zero on errors.
    CheckConfig,
    /// `-h` / `--help`: print [`usage`].
    Help,
    /// `--version`.
    Version,
}

/// A successfully loaded configuration.
#[derive(Debug)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// Every warning, in the order found; each names its file line or argument.
    pub warnings: Vec<Diagnostic>,
    /// What to do with it.
    pub action: Action,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line is malformed (unknown option, missing value): print [`usage`].
    #[error("{0}")]
    Usage(Diagnostic),
    /// The configuration file exists but could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file found by the search.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// One or more values are wrong. Warnings found on the way are kept so that
    /// `--check-config` can show everything at once.
    #[error("{}", join_lines(errors))]
    Invalid {
        /// Every error, in file order.
        errors: Vec<Diagnostic>,
        /// Every warning found while loading.
        warnings: Vec<Diagnostic>,
    },
}

fn join_lines(items: &[Diagnostic]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The directories a relative configuration file name is looked up in, in order.
///
/// coturn searches `.`, `./etc/`, `../etc/`, `/etc/` and `/usr/local/etc/` (plus its
/// install prefix); tests pass their own list so a system `/etc/turnserver.conf` (Debian's
/// coturn package installs one) never leaks in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPath {
    dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// coturn's list.
    pub fn coturn() -> Self {
        Self::new([".", "./etc", "../etc", "/etc", "/usr/local/etc"])
    }

    /// A custom list.
    pub fn new<P: Into<PathBuf>>(dirs: impl IntoIterator<Item = P>) -> Self {
        Self {
            dirs: dirs.into_iter().map(Into::into).collect(),
        }
    }

    /// The directories, in search order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The first existing file for `name`: an absolute name is taken as is.
    pub fn find(&self, name: &Path) -> Option<PathBuf> {
        if name.is_absolute() {
            return name.is_file().then(|| name.to_owned());
        }
        self.dirs
            .iter()
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    }
}

/// The default configuration file name.
pub const DEFAULT_CONFIG_FILE: &str = "turnserver.conf";

/// Loads the configuration from command-line arguments (without the program name), with
/// coturn's configuration file search.
pub fn load<I, S>(args: I) -> Result<Loaded, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    load_with(args, &SearchPath::coturn())
}

/// [`load`] with an explicit search path for relative configuration file names.
pub fn load_with<I, S>(args: I, search: &SearchPath) -> Result<Loaded, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let command_line = cli::parse(args).map_err(ConfigError::Usage)?;
    let mut warnings = command_line.warnings;
    if matches!(command_line.action, Action::Help | Action::Version) {
        return Ok(Loaded {
            config: Config::default(),
            warnings,
            action: command_line.action,
            config_file: None,
        });
    }

    let mut file_entries = Vec::new();
    let mut errors = Vec::new();
    let mut config_file = None;
    if let Some((name, origin)) = command_line.config_file.name() {
        match search.find(Path::new(&name)) {
            Some(path) => {
                let bytes = std::fs::read(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let parsed = file::parse(&bytes, &path);
                file_entries = parsed.entries;
                warnings.extend(parsed.warnings);
                errors.extend(parsed.errors);
                config_file = Some(path);
            }
            // `-c FILE` names a file that must be there (a systemd ExecStartPre
            // `--check-config -c` would otherwise pass, and a container whose file was
            // not mounted would start on defaults); coturn only warns.
            None if origin.is_some() => errors.push(Diagnostic::new(
                origin,
                Some("-c"),
                format!(
                    "configuration file {name} not found{}",
                    searched(search, Path::new(&name))
                ),
            )),
            // The default name, looked for in coturn's places: optional, as in coturn.
            None => warnings.push(Diagnostic::new(
                origin,
                None,
                format!(
                    "cannot find configuration file {name}; using defaults and the command line"
                ),
            )),
        }
    }

    let mut builder = model::Builder::new();
    for pass in [options::Pass::Log, options::Pass::Main, options::Pass::User] {
        for entry in file_entries.iter().chain(&command_line.entries) {
            if entry.spec.pass() == pass {
                builder.apply(entry);
            }
        }
    }
    let (config, build_warnings, build_errors) = builder.finish();
    warnings.extend(build_warnings);
    errors.extend(build_errors);
    // Passes and cross-checks find problems out of file order; operators read top-down.
    warnings.sort_by_key(reading_order);
    errors.sort_by_key(reading_order);
    if errors.is_empty() {
        Ok(Loaded {
            config,
            warnings,
            action: command_line.action,
            config_file,
        })
    } else {
        Err(ConfigError::Invalid { errors, warnings })
    }
}

/// Where a relative name was looked for, for a "not found" message.
fn searched(search: &SearchPath, name: &Path) -> String {
    if name.is_absolute() {
        return String::new();
    }
    let dirs: Vec<String> = search
        .dirs()
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    format!(" (searched: {})", dirs.join(", "))
}

/// File lines first (by line), then command-line arguments, then global facts.
fn reading_order(diagnostic: &Diagnostic) -> (u8, usize) {
    match &diagnostic.origin {
        Some(Origin::File { line, .. }) => (0, *line),
        Some(Origin::CommandLine { position }) => (1, *position),
        None => (2, 0),
    }
}

/// The `--help` text, built from the option table.
pub fn usage() -> String {
    cli::usage()
}

/// One option occurrence, from a file line or the command line.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) spec: &'static options::Spec,
    /// `None` for a bare key or flag.
    pub(crate) value: Option<String>,
    pub(crate) origin: Origin,
}

#[cfg(test)]
mod tests;
