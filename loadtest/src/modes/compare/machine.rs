//! Facts about the machine and the source, for the report's header.

use std::process::Command;

use serde::Serialize;

use crate::procfs;

/// Machine facts for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct Machine {
    pub(super) nproc: usize,
    pub(super) cpu_model: String,
    pub(super) kernel: String,
    pub(super) coturn_version: String,
    pub(super) loadavg_start: String,
    pub(super) loadavg_end: String,
    pub(super) started_utc: String,
    pub(super) nice: Option<i64>,
    pub(super) source: String,
}

pub(super) fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub(super) fn machine() -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let coturn_version = Command::new("turnserver")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model,
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        coturn_version,
        loadavg_start: read_trim("/proc/loadavg"),
        loadavg_end: String::new(),
        started_utc: utc_now(),
        nice: procfs::own_nice().ok(),
        source: source_revision(),
    }
}

/// The git commit the benchmark ran from, and whether turn-server/ had local changes.
pub(super) fn source_revision() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "turn-server",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev} (with uncommitted changes in turn-server/)")
            } else {
                rev
            }
        }
        None => "unknown (not a git checkout)".into(),
    }
}

/// `YYYY-MM-DD HH:MM UTC` from the system clock (civil-from-days, no time crate needed).
pub(super) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = utc_now();
        assert!(
            d.len() == 20 && d.ends_with(" UTC") && d.starts_with("20"),
            "{d}"
        );
    }
}
