//! Logging and the process: verbosity, log file and syslog, pid file, daemon mode and
//! the user and group to run as.

use crate::config::model::Verbosity;
use crate::config::values::{boolean, log_file};

use super::Arg::{Flag, Required};
use super::Setter::{Bool, Custom, File, Text};
use super::{Pass, Spec, Target, row};

/// Where and how much is logged, and how the process runs.
pub(super) const LOGGING: &[Spec] = &[
    row(
        "verbose",
        Some('v'),
        Flag,
        "verbose logging",
        Custom(verbose),
    ),
    row(
        "Verbose",
        Some('V'),
        Flag,
        "extra verbose logging (per packet)",
        Custom(extra_verbose),
    ),
    row(
        "log-file",
        Some('l'),
        Required,
        "log file path, or stdout, - or syslog",
        Custom(|t, v| {
            t.config.log_file = Some(log_file(v));
            Ok(())
        }),
    )
    .in_pass(Pass::Log),
    row(
        "no-stdout-log",
        None,
        Flag,
        "log only to the log file",
        Bool(|c| &mut c.no_stdout_log),
    )
    .in_pass(Pass::Log),
    row(
        "syslog",
        None,
        Flag,
        "log to syslog",
        Bool(|c| &mut c.syslog),
    )
    .in_pass(Pass::Log),
    row(
        "simple-log",
        None,
        Flag,
        "no date in the log file name, no rollover",
        Bool(|c| &mut c.simple_log),
    )
    .in_pass(Pass::Log),
    row(
        "new-log-timestamp",
        None,
        Flag,
        "ISO-style log timestamps",
        Bool(|c| &mut c.new_log_timestamp),
    )
    .in_pass(Pass::Log),
    row(
        "new-log-timestamp-format",
        None,
        Required,
        "strftime format of log timestamps",
        Text(|c| &mut c.new_log_timestamp_format),
    )
    .in_pass(Pass::Log),
    row(
        "syslog-facility",
        None,
        Required,
        "syslog facility",
        Text(|c| &mut c.syslog_facility),
    )
    .in_pass(Pass::Log),
    row(
        "log-binding",
        None,
        Flag,
        "log STUN binding requests",
        Bool(|c| &mut c.log_binding),
    ),
    row(
        "pidfile",
        None,
        Required,
        "pid file path",
        File(|c| &mut c.pidfile),
    ),
    row(
        "daemon",
        Some('o'),
        Flag,
        "run in the background (use your service manager instead)",
        Bool(|c| &mut c.daemon),
    ),
    row(
        "proc-user",
        None,
        Required,
        "user to run as after binding",
        Text(|c| &mut c.proc_user),
    ),
    row(
        "proc-group",
        None,
        Required,
        "group to run as after binding",
        Text(|c| &mut c.proc_group),
    ),
];

/// `verbose`: coturn's `verbose` never lowers `Verbose`.
fn verbose(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if t.config.verbosity != Verbosity::Extra {
        t.config.verbosity = if boolean(value)? {
            Verbosity::Normal
        } else {
            Verbosity::Quiet
        };
    }
    Ok(())
}

/// `Verbose`: as coturn, `Verbose=off` changes nothing.
fn extra_verbose(t: &mut Target<'_>, value: &str) -> Result<(), String> {
    if boolean(value)? {
        t.config.verbosity = Verbosity::Extra;
    }
    Ok(())
}
