//! Actions: what the command line asks the binary to do instead of starting the server.
//! They are command-line only; a file line naming one is ignored with a warning.

use crate::config::Action;

use super::Arg::Flag;
use super::{Setter, Spec, row};

/// `--check-config`, `--help` and `--version`.
pub(super) const ACTIONS: &[Spec] = &[
    row(
        "check-config",
        None,
        Flag,
        "print the effective configuration and every warning, then exit",
        Setter::Action(Action::CheckConfig),
    ),
    row(
        "help",
        Some('h'),
        Flag,
        "print this help",
        Setter::Action(Action::Help),
    ),
    row(
        "version",
        None,
        Flag,
        "print the version",
        Setter::Action(Action::Version),
    ),
];
