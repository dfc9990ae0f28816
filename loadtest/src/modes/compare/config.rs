//! What a `compare` run is configured with: its flags, the servers' shared secret and
//! realm, and the loads it runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::args::{Args, parse_duration};

pub(super) const SECRET: &str = "loadtest-bench-secret";
pub(super) const REALM: &str = "example.org";
pub(super) const OURS: &str = "ours";
pub(super) const COTURN: &str = "coturn";
pub(super) const LIMIT: &str = "forwarder";
/// Notes below this marker in an existing docs/benchmarks.md survive a re-run.
pub(super) const NOTES_MARKER: &str = "<!-- notes: kept across runs -->";
/// Pause after deleting many allocations: coturn answers 437 (Allocation Mismatch) to a
/// new Allocate from a 5-tuple it deleted less than ~3 s ago, and the kernel hands the
/// freed client ports straight to the next run's sockets.
pub(super) const PORT_QUARANTINE: Duration = Duration::from_secs(4);
/// Kills a `turnutils_uclient` run that takes longer than this.
pub(super) const UCLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Flags of `compare` mode, for `--help`.
pub const HELP: &str = "\
loadtest compare [--ours PATH] [--coturn turnserver] [--uclient turnutils_uclient]
                 [--peer turnutils_peer] [--rounds 3] [--duration 5s] [--alloc-count 10000]
                 [--uclient-messages 1000] [--out docs/benchmarks.md] [--charts docs]
                 [--json FILE] [--skip-uclient] [--jwt PATH]
  --ours defaults to turn-server next to this loadtest binary, --jwt to lk-jwt-service
  there (its section is skipped, with a note, when that default does not exist).";

/// Everything a `compare` run needs.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    pub(super) ours: PathBuf,
    pub(super) coturn: String,
    pub(super) uclient: String,
    pub(super) peer: String,
    pub(super) rounds: usize,
    pub(super) duration: Duration,
    pub(super) alloc_count: u64,
    pub(super) uclient_messages: u64,
    pub(super) out: PathBuf,
    pub(super) charts: PathBuf,
    pub(super) json: Option<String>,
    pub(super) skip_uclient: bool,
    pub(super) jwt: Option<PathBuf>,
    pub(super) command: String,
}

impl CompareConfig {
    /// Reads the flags of `compare` mode.
    pub fn from_args(a: &Args, argv: &[String]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let default_ours = exe.with_file_name("turn-server");
        let jwt = match a.opt::<PathBuf>("jwt")? {
            Some(path) if !path.exists() => {
                return Err(format!(
                    "--jwt {}: no such file (cargo build --release -p lk-jwt-service)",
                    path.display()
                ));
            }
            Some(path) => Some(path),
            None => Some(exe.with_file_name("lk-jwt-service")).filter(|p| p.exists()),
        };
        let cfg = Self {
            ours: a.get("ours", default_ours.display().to_string())?.into(),
            coturn: a.get("coturn", "turnserver".to_string())?,
            uclient: a.get("uclient", "turnutils_uclient".to_string())?,
            peer: a.get("peer", "turnutils_peer".to_string())?,
            rounds: a.get("rounds", 3)?,
            duration: parse_duration(&a.get("duration", "5s".to_string())?)?,
            alloc_count: a.get("alloc-count", 10_000)?,
            uclient_messages: a.get("uclient-messages", 1000)?,
            out: a.get("out", "docs/benchmarks.md".to_string())?.into(),
            charts: a.get("charts", "docs".to_string())?.into(),
            json: a.opt("json")?,
            skip_uclient: a.flag("skip-uclient"),
            jwt,
            command: format!("loadtest compare {}", argv.join(" ")),
        };
        if cfg.rounds == 0 || cfg.rounds > 10 {
            return Err("--rounds must be 1..=10".into());
        }
        if cfg.duration < Duration::from_secs(1) || cfg.duration > Duration::from_secs(60) {
            return Err("--duration must be 1 s..=60 s per run".into());
        }
        if cfg.alloc_count == 0 || cfg.alloc_count > 11_000 {
            return Err("--alloc-count must be 1..=11000 (relay ranges hold 12000 ports)".into());
        }
        if cfg.uclient_messages == 0 || cfg.uclient_messages > 100_000 {
            return Err("--uclient-messages must be 1..=100000".into());
        }
        if !cfg.ours.exists() {
            return Err(format!(
                "no turn-server at {} (build it: cargo build --release -p turn-server, or pass --ours)",
                cfg.ours.display()
            ));
        }
        for tool in [&cfg.coturn, &cfg.uclient, &cfg.peer] {
            if !on_path(tool) {
                return Err(format!(
                    "{tool} not found; install coturn (apt-get install coturn) or pass its path"
                ));
            }
        }
        Ok(cfg)
    }
}

/// One packet load of issue 8.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Load {
    pub(super) id: u8,
    pub(super) clients: usize,
    pub(super) rate: u64,
    pub(super) size: usize,
}

pub(super) const LOADS: [Load; 3] = [
    Load {
        id: 1,
        clients: 45,
        rate: 1000,
        size: 64,
    },
    Load {
        id: 2,
        clients: 45,
        rate: 1000,
        size: 1200,
    },
    Load {
        id: 3,
        clients: 1,
        rate: 0,
        size: 1000,
    },
];

/// Per-client rates of the sweep chart (45 clients × 64 B).
pub(super) const SWEEP_RATES: [u64; 5] = [250, 500, 1000, 2000, 3000];

pub(super) fn describe(l: &Load) -> String {
    if l.rate == 0 {
        format!(
            "({}) {} client flat out × {} B (≤ 256 in flight)",
            l.id, l.clients, l.size
        )
    } else {
        format!(
            "({}) {} clients × {} pps × {} B",
            l.id, l.clients, l.rate, l.size
        )
    }
}

pub(super) fn on_path(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}
