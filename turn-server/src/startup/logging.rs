//! Logging as coturn's options ask: `verbose`/`Verbose`, `log-file`, `no-stdout-log`,
//! `simple-log`.
//!
//! Logs go to stdout by default (containers and systemd collect them); coturn's default
//! of a dated file under /var/log only applies when `log-file` names a path. `RUST_LOG`
//! overrides the level. The level follows `verbose`/`Verbose` on reload (SIGHUP) through
//! tracing-subscriber's reload layer, unless `RUST_LOG` fixed it.
//!
//! Lines are written by a background thread (tracing-appender): the shards format a line
//! and queue it, and never wait on a lock or a slow terminal, file or pipe. When 128 000
//! lines are waiting, further lines are dropped rather than stalling the relay.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::config::{Config, LogFile, Verbosity};

/// Changes the level of the installed subscriber.
pub struct LogLevel {
    /// Swaps the filter; the closure hides the subscriber's writer type.
    reload: Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>,
    /// `RUST_LOG` was set: the operator's filter wins over the configuration.
    fixed_by_env: bool,
    current: Mutex<Verbosity>,
}

impl LogLevel {
    /// Applies `verbosity` unless `RUST_LOG` fixed the filter; true when it changed.
    pub fn set(&self, verbosity: Verbosity) -> Result<bool, String> {
        let mut current = self.current.lock().map_err(|_| "log level lock poisoned")?;
        if self.fixed_by_env || *current == verbosity {
            return Ok(false);
        }
        (self.reload)(EnvFilter::new(level(verbosity)))?;
        *current = verbosity;
        Ok(true)
    }
}

/// Flushes the queued log lines when dropped: keep it until the process ends.
pub struct Flush {
    _guards: Vec<WorkerGuard>,
}

/// Installs the global subscriber; returns the level control, the flush guard and a note
/// to log once it is up (e.g. syslog not supported).
pub fn init(config: &Config, unix_now: u64) -> std::io::Result<(LogLevel, Flush, Option<String>)> {
    let mut guards = Vec::new();
    let mut queued = |writer: Box<dyn std::io::Write + Send>| -> NonBlocking {
        let (writer, guard) = tracing_appender::non_blocking(writer);
        guards.push(guard);
        writer
    };
    // The codec crates of test clients are not linked here; our own code logs per
    // allocation, never per packet, below trace.
    let from_env = EnvFilter::try_from_default_env().ok();
    let fixed_by_env = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(level(config.verbosity)));
    // Colours only for a person at a terminal, not in files, pipes or journald.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    macro_rules! install {
        ($builder:expr) => {{
            // Last, as its type names the writer.
            let builder = $builder.with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            Box::new(move |filter| handle.reload(filter).map_err(|e| e.to_string()))
                as Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>
        }};
    }
    let mut note = None;
    let reload = match &config.log_file {
        Some(LogFile::Path(path)) => {
            let path = if config.simple_log {
                path.clone()
            } else {
                dated(path, unix_now)
            };
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|error| {
                    std::io::Error::new(
                        error.kind(),
                        format!("cannot open log file {}: {error}", path.display()),
                    )
                })?;
            let file = queued(Box::new(file));
            if config.no_stdout_log {
                install!(builder.with_ansi(false).with_writer(file))
            } else {
                let stdout = queued(Box::new(std::io::stdout()));
                install!(builder.with_ansi(false).with_writer(file.and(stdout)))
            }
        }
        Some(LogFile::Syslog) => {
            note = Some("log-file=syslog is not supported: logging to stdout".to_owned());
            install!(builder.with_writer(queued(Box::new(std::io::stdout()))))
        }
        Some(LogFile::Stdout) | None => {
            if config.syslog {
                note = Some("syslog is not supported: logging to stdout".to_owned());
            }
            install!(builder.with_writer(queued(Box::new(std::io::stdout()))))
        }
    };
    let level = LogLevel {
        reload,
        fixed_by_env,
        current: Mutex::new(config.verbosity),
    };
    Ok((level, Flush { _guards: guards }, note))
}

fn level(verbosity: Verbosity) -> &'static str {
    match verbosity {
        Verbosity::Quiet => "info",
        Verbosity::Normal => "debug",
        Verbosity::Extra => "trace",
    }
}

/// coturn's naming: `/var/log/turn.log` → `/var/log/turn_2026-11-23.log`.
fn dated(path: &Path, unix_now: u64) -> PathBuf {
    let (year, month, day) = civil_date(unix_now / 86_400);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!(
            "{stem}_{year:04}-{month:02}-{day:02}.{}",
            ext.to_string_lossy()
        ),
        None => format!("{stem}_{year:04}-{month:02}-{day:02}"),
    };
    path.with_file_name(name)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's method).
fn civil_date(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_names() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        assert_eq!(civil_date(20_415), (2025, 11, 23));
        assert_eq!(
            dated(Path::new("/var/log/turn.log"), 1_763_856_000),
            PathBuf::from("/var/log/turn_2025-11-23.log")
        );
        assert_eq!(
            dated(Path::new("turn"), 0),
            PathBuf::from("turn_1970-01-01")
        );
    }
}
