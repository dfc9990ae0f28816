//! Applying option values to a [`Config`], in coturn's passes (see
//! [`super::load_with`]): logging options first, then everything but users, then `user=`
//! lines, each pass taking the file's lines before the command line's. What each option
//! does is its row's [`Setter`]; scalars are overwritten by later values, lists grow, and
//! where each value came from is kept in [`Config::origins`] for the messages of later
//! checks.

use std::path::PathBuf;

use super::model::{Config, PeerList};
use super::options::{Arg, Pass, Setter, Target};
use super::values::{boolean, ip, ip_range, lifetime, number, port, server_address};
use super::{Diagnostic, Entry};

/// Applies the file's entries and the command line's in coturn's passes; a bad value
/// becomes an error in `errors` naming its line, and the value is skipped. Warnings go
/// to `warnings`.
pub(crate) fn apply(
    file: &[Entry],
    command_line: &[Entry],
    warnings: &mut Vec<Diagnostic>,
    errors: &mut Vec<Diagnostic>,
) -> Config {
    let mut config = Config::default();
    for pass in [Pass::Log, Pass::Main, Pass::User] {
        for entry in file.iter().chain(command_line) {
            if entry.spec.pass() == pass {
                apply_entry(&mut config, entry, warnings, errors);
            }
        }
    }
    config
}

/// Applies one entry; a bad value becomes an error naming its origin and key.
fn apply_entry(
    config: &mut Config,
    entry: &Entry,
    warnings: &mut Vec<Diagnostic>,
    errors: &mut Vec<Diagnostic>,
) {
    let key = entry.spec.name;
    let value = entry.value.as_deref();
    if entry.spec.arg == Arg::Required && value.is_none_or(str::is_empty) {
        errors.push(Diagnostic::at(&entry.origin, key, "needs a value"));
        return;
    }
    let value = value.unwrap_or("");
    let applied = match entry.spec.setter {
        Setter::Port(field) => port(value).map(|port| *field(config) = port),
        Setter::Number(field) => number(value).map(|number| *field(config) = number),
        Setter::Number64(field) => number(value).map(|number| *field(config) = number),
        Setter::Bool(field) => boolean(value).map(|on| *field(config) = on),
        Setter::NotBool(field) => boolean(value).map(|on| *field(config) = !on),
        Setter::Text(field) => {
            *field(config) = Some(value.to_owned());
            Ok(())
        }
        Setter::File(field) => {
            *field(config) = Some(PathBuf::from(value));
            Ok(())
        }
        Setter::Ips(field) => ip(value).map(|ip| field(config).push(ip)),
        Setter::Ranges(field) => add_range(field(config), value),
        Setter::Servers(field, default_port) => {
            server_address(value, default_port).map(|server| field(config).push(server))
        }
        Setter::Lifetime(field, default) => {
            lifetime(value, default).map(|seconds| *field(config) = seconds)
        }
        Setter::Custom(set) => set(
            &mut Target {
                config: &mut *config,
                key,
                origin: &entry.origin,
                warnings,
            },
            value,
        ),
        // The parsers drop these before they reach this point.
        Setter::Ignored(_) | Setter::Action(_) => Ok(()),
    };
    match applied {
        Ok(()) => config.origins.push(key, entry.origin.clone()),
        Err(message) => errors.push(Diagnostic::at(&entry.origin, key, message)),
    }
}

/// Adds an IP, `A-B` range or CIDR to a peer list, keeping the value as written.
fn add_range(list: &mut PeerList, value: &str) -> Result<(), String> {
    list.set.insert(ip_range(value)?);
    list.entries.push(value.to_owned());
    Ok(())
}
