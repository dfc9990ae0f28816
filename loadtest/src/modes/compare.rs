//! `compare` mode: the side-by-side benchmark. Starts coturn and our turn-server with
//! equivalent configs on loopback (different ports and relay ranges), alternates A/B runs
//! over several rounds for the loads of issue 8, measures the bare forwarder as the
//! machine's limit, runs coturn's own `turnutils_uclient` against both, loads
//! lk-jwt-service's `/get_token` (`compare/jwt.rs`), and writes docs/benchmarks.md plus
//! two SVG charts.

mod jwt;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::args::{Args, parse_duration};
use crate::chart::{self, RssSeries, SweepSeries};
use crate::modes::alloc::{self, AllocConfig};
use crate::modes::forward;
use crate::modes::turn::{self, TurnConfig};
use crate::procfs;
use crate::report::{AllocReport, TrafficReport};
use crate::stun::{Builder, Class, Message, method};

const SECRET: &str = "loadtest-bench-secret";
const REALM: &str = "example.org";
const OURS: &str = "ours";
const COTURN: &str = "coturn";
const LIMIT: &str = "forwarder";
/// Notes below this marker in an existing docs/benchmarks.md survive a re-run.
const NOTES_MARKER: &str = "<!-- notes: kept across runs -->";
/// Pause after deleting many allocations: coturn answers 437 (Allocation Mismatch) to a
/// new Allocate from a 5-tuple it deleted less than ~3 s ago, and the kernel hands the
/// freed client ports straight to the next run's sockets.
const PORT_QUARANTINE: Duration = Duration::from_secs(4);
/// Kills a `turnutils_uclient` run that takes longer than this.
const UCLIENT_TIMEOUT: Duration = Duration::from_secs(120);

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
    ours: PathBuf,
    coturn: String,
    uclient: String,
    peer: String,
    rounds: usize,
    duration: Duration,
    alloc_count: u64,
    uclient_messages: u64,
    out: PathBuf,
    charts: PathBuf,
    json: Option<String>,
    skip_uclient: bool,
    jwt: Option<PathBuf>,
    command: String,
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

fn on_path(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// A server process under test.
struct ServerProc {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    bin: String,
    args: Vec<String>,
    log: PathBuf,
    restarts: u32,
}

impl ServerProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(bin: &str, args: &[String], log: &Path) -> Result<Child, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("log {}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| format!("log: {e}"))?;
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {bin}: {e}"))
    }

    fn start(
        name: &'static str,
        bin: &str,
        port: u16,
        relay: (u16, u16),
        extra: &[&str],
        logdir: &Path,
    ) -> Result<Self, String> {
        let mut args: Vec<String> = vec![
            "-n".into(),
            "--listening-ip=127.0.0.1".into(),
            "--relay-ip=127.0.0.1".into(),
            format!("--listening-port={port}"),
            format!("--min-port={}", relay.0),
            format!("--max-port={}", relay.1),
            format!("--realm={REALM}"),
            "--use-auth-secret".into(),
            format!("--static-auth-secret={SECRET}"),
            "--allow-loopback-peers".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = logdir.join(format!("{name}.log"));
        let child = Self::spawn(bin, &args, &log)?;
        let mut p = Self {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            bin: bin.to_string(),
            args,
            log,
            restarts: 0,
        };
        p.wait_ready()?;
        Ok(p)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_binding(self.addr) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited at startup ({status}); see {}",
                    self.name,
                    self.log.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} does not answer STUN on {}; see {}",
                    self.name,
                    self.addr,
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Restarts the server if it died; returns a note saying so.
    fn ensure_alive(&mut self, after: &str) -> Result<Option<String>, String> {
        match self.child.try_wait() {
            Ok(None) => Ok(None),
            Ok(Some(status)) => {
                self.restarts += 1;
                self.child = Self::spawn(&self.bin, &self.args, &self.log)?;
                self.wait_ready()?;
                Ok(Some(format!(
                    "{} exited ({status}) after {after}; restarted (log: {})",
                    self.name,
                    self.log.display()
                )))
            }
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a STUN Binding request to `addr` gets a success response within 200 ms.
pub fn answers_binding(addr: SocketAddr) -> bool {
    let Ok(sock) = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)) else {
        return false;
    };
    if sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
    {
        return false;
    }
    let req = Builder::new(method::BINDING, Class::Request, crate::client::new_txid()).finish();
    if sock.send_to(&req, addr).is_err() {
        return false;
    }
    let mut buf = [0; 1500];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Message::parse(&buf[..n]).is_ok_and(|m| m.class == Class::Success),
        Err(_) => false,
    }
}

/// One packet load of issue 8.
#[derive(Debug, Clone, Copy, Serialize)]
struct Load {
    id: u8,
    clients: usize,
    rate: u64,
    size: usize,
}

const LOADS: [Load; 3] = [
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
const SWEEP_RATES: [u64; 5] = [250, 500, 1000, 2000, 3000];

fn describe(l: &Load) -> String {
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

/// What `turnutils_uclient` printed at the end of a run.
#[derive(Debug, Clone, Default, Serialize)]
struct UclientResult {
    sent: u64,
    received: u64,
    lost_pct: f64,
    avg_rtt_ms: f64,
    max_rtt_ms: f64,
    transmit_s: f64,
    server_cpu_s: Option<f64>,
    relayed_per_server_cpu_s: Option<f64>,
    exit: String,
}

/// Machine facts for the report.
#[derive(Debug, Clone, Default, Serialize)]
struct Machine {
    nproc: usize,
    cpu_model: String,
    kernel: String,
    coturn_version: String,
    loadavg_start: String,
    loadavg_end: String,
    started_utc: String,
    nice: Option<i64>,
    source: String,
}

/// Everything measured, also written with `--json`.
#[derive(Debug, Default, Serialize)]
struct Results {
    command: String,
    machine: Machine,
    rounds: usize,
    duration_s: f64,
    loads: Vec<Load>,
    /// `load id → target → runs`.
    packet: BTreeMap<u8, BTreeMap<String, Vec<TrafficReport>>>,
    /// `target → (per-client rate, run)`.
    sweep: BTreeMap<String, Vec<(u64, TrafficReport)>>,
    alloc_hold: BTreeMap<String, Vec<AllocReport>>,
    alloc_rate: BTreeMap<String, Vec<AllocReport>>,
    uclient: BTreeMap<String, Vec<UclientResult>>,
    /// lk-jwt-service `/get_token` runs by token variant.
    jwt: BTreeMap<String, Vec<crate::modes::jwt::JwtReport>>,
    notes: Vec<String>,
    total_s: f64,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn machine() -> Machine {
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
fn source_revision() -> String {
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
fn utc_now() -> String {
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

fn turn_cfg(
    server: SocketAddr,
    pid: u32,
    load: &Load,
    duration: Duration,
    tag: &str,
) -> TurnConfig {
    TurnConfig {
        server,
        secret: SECRET.into(),
        user: format!("bench-{tag}"),
        clients: load.clients,
        rate: load.rate,
        size: load.size,
        duration,
        drain: Duration::from_secs(1),
        send: false,
        c2c: false,
        threads: 1,
        inflight: 256,
        window: 64,
        server_pid: Some(pid),
        progress: false,
        transport: None,
    }
}

fn log_run(what: &str, r: &TrafficReport) {
    eprintln!(
        "[compare] {what}: offered {:.0} pps, received {:.0} pps, loss {:.3} %, RTT p99 {:.2} ms, server CPU {} %, relayed/CPU-s {}, failures {}",
        r.offered_pps,
        r.received_pps,
        r.loss_pct,
        r.latency_ms.p99,
        r.server_cpu_pct.map_or("-".into(), |v| format!("{v:.0}")),
        r.relayed_per_server_cpu_s
            .map_or("-".into(), |v| format!("{v:.0}")),
        r.failures.values().sum::<u64>()
    );
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Runs the whole benchmark and writes the report.
pub fn run(cfg: &CompareConfig) -> Result<(), String> {
    let started = Instant::now();
    crate::modes::ensure_fds(cfg.alloc_count + 256)?;
    let logdir = std::env::temp_dir().join(format!("loadtest-compare-{}", std::process::id()));
    std::fs::create_dir_all(&logdir).map_err(|e| format!("{}: {e}", logdir.display()))?;
    let mut res = Results {
        command: cfg.command.clone(),
        machine: machine(),
        rounds: cfg.rounds,
        duration_s: cfg.duration.as_secs_f64(),
        loads: LOADS.to_vec(),
        ..Results::default()
    };
    eprintln!(
        "[compare] logs in {}; load average at start: {}",
        logdir.display(),
        res.machine.loadavg_start
    );
    // Relay ranges below the kernel's ephemeral range (32768+), where loadtest's client
    // sockets live, and apart from each other.
    let ours_bin = cfg.ours.display().to_string();
    // All load comes from 127.0.0.1, so ours runs without its per-source abuse limits
    // (coturn 4.6 has none); they would cap the allocation loads at 10 challenges/s.
    let mut ours = ServerProc::start(
        OURS,
        &ours_bin,
        6478,
        (8000, 19999),
        &["--unauthorized-ratelimit-rps=0"],
        &logdir,
    )?;
    let mut coturn = ServerProc::start(
        COTURN,
        &cfg.coturn,
        6578,
        (20000, 31999),
        &["--no-cli", "--no-tls", "--no-dtls", "--log-file=stdout"],
        &logdir,
    )?;

    // Warm-up, discarded (coturn's own method: first run after a restart is off).
    for s in [&ours, &coturn] {
        let warm = Load {
            id: 0,
            clients: 45,
            rate: 1000,
            size: 64,
        };
        let _ = turn::run(&turn_cfg(
            s.addr,
            s.pid(),
            &warm,
            Duration::from_secs(1),
            "warm",
        ));
    }

    // Loads (1)-(3), alternating the order of targets every round.
    for round in 0..cfg.rounds {
        for load in &LOADS {
            let mut order = [OURS, COTURN, LIMIT];
            order.rotate_left(round % 3);
            for target in order {
                let what = format!(
                    "round {}/{} load {} {target}",
                    round + 1,
                    cfg.rounds,
                    load.id
                );
                let r = match target {
                    LIMIT => forward::run(
                        &turn_cfg(
                            "127.0.0.1:0".parse().map_err(|_| "addr")?,
                            0,
                            load,
                            cfg.duration,
                            "fwd",
                        )
                        .without_pid(),
                    ),
                    _ => {
                        let s = if target == OURS {
                            &mut ours
                        } else {
                            &mut coturn
                        };
                        let tag = format!("r{round}l{}", load.id);
                        let r = turn::run(&turn_cfg(s.addr, s.pid(), load, cfg.duration, &tag));
                        if let Some(note) = s.ensure_alive(&what)? {
                            eprintln!("[compare] {note}");
                            res.notes.push(note);
                        }
                        r
                    }
                };
                match r {
                    Ok(r) => {
                        log_run(&what, &r);
                        res.packet
                            .entry(load.id)
                            .or_default()
                            .entry(target.to_string())
                            .or_default()
                            .push(r);
                    }
                    Err(e) => {
                        eprintln!("[compare] {what}: error: {e}");
                        res.notes.push(format!("{what}: error: {e}"));
                    }
                }
            }
        }
    }

    // Sweep for the chart: 45 clients × 64 B at rising rates.
    let sweep_duration = Duration::from_secs(3).min(cfg.duration);
    for rate in SWEEP_RATES {
        let load = Load {
            id: 0,
            clients: 45,
            rate,
            size: 64,
        };
        for target in [OURS, COTURN, LIMIT] {
            let what = format!("sweep {rate} pps/client {target}");
            let r = match target {
                LIMIT => forward::run(
                    &turn_cfg(
                        "127.0.0.1:0".parse().map_err(|_| "addr")?,
                        0,
                        &load,
                        sweep_duration,
                        "fwd",
                    )
                    .without_pid(),
                ),
                _ => {
                    let s = if target == OURS {
                        &mut ours
                    } else {
                        &mut coturn
                    };
                    let r = turn::run(&turn_cfg(
                        s.addr,
                        s.pid(),
                        &load,
                        sweep_duration,
                        &format!("s{rate}"),
                    ));
                    if let Some(note) = s.ensure_alive(&what)? {
                        res.notes.push(note);
                    }
                    r
                }
            };
            match r {
                Ok(r) => {
                    log_run(&what, &r);
                    res.sweep
                        .entry(target.to_string())
                        .or_default()
                        .push((rate, r));
                }
                Err(e) => res.notes.push(format!("{what}: error: {e}")),
            }
        }
    }

    // (4) allocations held, with RSS; (5) allocation rate.
    let alloc_count = cfg.alloc_count;
    alloc_series(
        &mut ours,
        &mut coturn,
        cfg.rounds.min(2),
        &mut res,
        |res| &mut res.alloc_hold,
        |round, target, s| {
            let what = format!("alloc hold {alloc_count} round {} {target}", round + 1);
            let acfg = alloc_config(
                s,
                format!("bench-h{round}"),
                alloc_count,
                Duration::from_secs(2),
            );
            (what, acfg)
        },
    )?;
    alloc_series(
        &mut ours,
        &mut coturn,
        cfg.rounds,
        &mut res,
        |res| &mut res.alloc_rate,
        |round, target, s| {
            let what = format!("alloc rate round {} {target}", round + 1);
            let acfg = alloc_config(
                s,
                format!("bench-a{round}"),
                2000.min(alloc_count),
                Duration::ZERO,
            );
            (what, acfg)
        },
    )?;

    // Load (1) generated by coturn's turnutils_uclient against both servers.
    if !cfg.skip_uclient {
        match uclient_runs(cfg, &mut ours, &mut coturn, &logdir) {
            Ok(map) => res.uclient = map,
            Err(e) => res.notes.push(format!("turnutils_uclient: {e}")),
        }
    }
    for s in [&ours, &coturn] {
        if s.restarts > 0 {
            res.notes
                .push(format!("{} was restarted {} time(s)", s.name, s.restarts));
        }
    }
    drop(ours);
    drop(coturn);
    // After the TURN servers are gone, so they take no CPU from the service.
    match &cfg.jwt {
        Some(bin) => {
            res.jwt = jwt::series(bin, cfg.rounds, cfg.duration, &logdir, &mut res.notes);
        }
        None => res.notes.push(
            "lk-jwt-service not found next to loadtest and no --jwt given: its section was not run"
                .into(),
        ),
    }
    res.machine.loadavg_end = read_trim("/proc/loadavg");
    res.total_s = started.elapsed().as_secs_f64();
    write_outputs(cfg, &res)
}

impl TurnConfig {
    fn without_pid(mut self) -> Self {
        self.server_pid = None;
        self
    }
}

/// An allocation run against `s`: as fast as it answers, 64 in flight, RSS measured.
fn alloc_config(s: &ServerProc, user: String, count: u64, hold: Duration) -> AllocConfig {
    AllocConfig {
        server: s.addr,
        secret: SECRET.into(),
        user,
        count,
        rate: 0,
        window: 64,
        hold,
        lifetime: None,
        refresh_every: None,
        server_pid: Some(s.pid()),
        progress: false,
    }
}

/// Rounds of one allocation load, alternating which server goes first (coturn's A/B
/// method). Each run is followed by the port quarantine and a liveness check; its report
/// goes to the map `slot` picks, its error to the notes.
fn alloc_series(
    ours: &mut ServerProc,
    coturn: &mut ServerProc,
    rounds: usize,
    res: &mut Results,
    slot: fn(&mut Results) -> &mut BTreeMap<String, Vec<AllocReport>>,
    setup: impl Fn(usize, &str, &ServerProc) -> (String, AllocConfig),
) -> Result<(), String> {
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [OURS, COTURN]
        } else {
            [COTURN, OURS]
        };
        for target in order {
            let s = if target == OURS {
                &mut *ours
            } else {
                &mut *coturn
            };
            let (what, acfg) = setup(round, target, s);
            let r = alloc::run(&acfg);
            std::thread::sleep(PORT_QUARANTINE);
            if let Some(note) = s.ensure_alive(&what)? {
                res.notes.push(note);
            }
            match r {
                Ok(r) => {
                    log_alloc(&what, &r);
                    slot(res).entry(target.into()).or_default().push(r);
                }
                Err(e) => res.notes.push(format!("{what}: error: {e}")),
            }
        }
    }
    Ok(())
}

fn log_alloc(what: &str, r: &AllocReport) {
    eprintln!(
        "[compare] {what}: {} ok, {} failed, {:.0}/s, p99 {:.2} ms, RSS/alloc {} B",
        r.allocations.ok,
        r.allocations.failed,
        r.allocations.per_s,
        r.allocations.latency_ms.p99,
        r.rss_per_alloc_bytes
            .map_or("-".into(), |v| format!("{v:.0}"))
    );
}

fn uclient_runs(
    cfg: &CompareConfig,
    ours: &mut ServerProc,
    coturn: &mut ServerProc,
    logdir: &Path,
) -> Result<BTreeMap<String, Vec<UclientResult>>, String> {
    let peer_port = 6600u16;
    let peer_log = std::fs::File::create(logdir.join("turnutils_peer.log"))
        .map_err(|e| format!("peer log: {e}"))?;
    let mut peer = Command::new(&cfg.peer)
        .args(["-L", "127.0.0.1", "-p", &peer_port.to_string()])
        .stdin(Stdio::null())
        .stdout(peer_log)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", cfg.peer))?;
    std::thread::sleep(Duration::from_millis(300));
    let mut out: BTreeMap<String, Vec<UclientResult>> = BTreeMap::new();
    let mut result = Ok(());
    for round in 0..cfg.rounds.min(2) {
        let order: [&mut ServerProc; 2] = if round % 2 == 0 {
            [&mut *ours, &mut *coturn]
        } else {
            [&mut *coturn, &mut *ours]
        };
        for s in order {
            match one_uclient(cfg, s, peer_port, logdir) {
                Ok(r) => {
                    eprintln!(
                        "[compare] uclient round {} {}: sent {} received {} lost {:.3} % avg RTT {:.2} ms in {:.1} s",
                        round + 1,
                        s.name,
                        r.sent,
                        r.received,
                        r.lost_pct,
                        r.avg_rtt_ms,
                        r.transmit_s
                    );
                    out.entry(s.name.to_string()).or_default().push(r);
                }
                Err(e) => result = Err(e),
            }
        }
    }
    let _ = peer.kill();
    let _ = peer.wait();
    result.map(|()| out)
}

fn one_uclient(
    cfg: &CompareConfig,
    s: &mut ServerProc,
    peer_port: u16,
    logdir: &Path,
) -> Result<UclientResult, String> {
    let log = logdir.join(format!("uclient-{}.log", s.name));
    let file = std::fs::File::create(&log).map_err(|e| format!("uclient log: {e}"))?;
    let err = file.try_clone().map_err(|e| format!("uclient log: {e}"))?;
    let cpu_before = procfs::process_cpu_seconds(s.pid()).ok();
    let mut child = Command::new(&cfg.uclient)
        .args([
            "-m",
            "45",
            "-n",
            &cfg.uclient_messages.to_string(),
            "-l",
            "64",
            "-z",
            "1",
            "-e",
            "127.0.0.1",
            "-r",
            &peer_port.to_string(),
            "-W",
            SECRET,
            "-u",
            "bench-uclient",
            "-p",
            &s.addr.port().to_string(),
            "-X",
            "127.0.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", cfg.uclient))?;
    let deadline = Instant::now() + UCLIENT_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| format!("uclient: {e}"))? {
            break st.to_string();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break "killed after timeout".to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let cpu_after = procfs::process_cpu_seconds(s.pid()).ok();
    let text = std::fs::read_to_string(&log).map_err(|e| format!("uclient log: {e}"))?;
    let mut r = parse_uclient(&text);
    r.exit = status;
    r.server_cpu_s = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    r.relayed_per_server_cpu_s = r
        .server_cpu_s
        .filter(|c| *c > 0.0)
        .map(|c| 2.0 * r.received as f64 / c);
    if let Some(note) = s.ensure_alive("turnutils_uclient")? {
        eprintln!("[compare] {note}");
    }
    Ok(r)
}

fn number_after<T: std::str::FromStr>(line: &str, key: &str) -> Option<T> {
    let rest = &line[line.find(key)? + key.len()..];
    let token: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    token.parse().ok()
}

/// Reads the summary lines `turnutils_uclient` prints at the end of a run.
fn parse_uclient(text: &str) -> UclientResult {
    let mut r = UclientResult::default();
    for line in text.lines() {
        if line.contains("start_mclient: tot_send_msgs=") {
            r.sent = number_after(line, "tot_send_msgs=").unwrap_or(0);
            r.received = number_after(line, "tot_recv_msgs=").unwrap_or(0);
        } else if line.contains("Total transmit time is") {
            r.transmit_s = number_after(line, "Total transmit time is").unwrap_or(0.0);
        } else if line.contains("Total lost packets") {
            r.lost_pct = number_after(line, "(").unwrap_or(0.0);
        } else if line.contains("Average round trip delay") {
            r.avg_rtt_ms = number_after(line, "Average round trip delay").unwrap_or(0.0);
            r.max_rtt_ms = number_after(line, "max =").unwrap_or(0.0);
        }
    }
    r
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn med_traffic(
    runs: Option<&Vec<TrafficReport>>,
    f: impl Fn(&TrafficReport) -> Option<f64>,
) -> Option<f64> {
    median(runs?.iter().filter_map(f).collect())
}

fn med_alloc(
    runs: Option<&Vec<AllocReport>>,
    f: impl Fn(&AllocReport) -> Option<f64>,
) -> Option<f64> {
    median(runs?.iter().filter_map(f).collect())
}

/// The first run: RSS growth is only meaningful in a process that has not yet freed (and
/// so kept for reuse) the memory of an earlier run.
fn first(runs: Option<&Vec<AllocReport>>) -> Option<&AllocReport> {
    runs?.first()
}

fn write_outputs(cfg: &CompareConfig, res: &Results) -> Result<(), String> {
    std::fs::create_dir_all(&cfg.charts).map_err(|e| format!("{}: {e}", cfg.charts.display()))?;
    let sweep_svg = cfg.charts.join("bench-load-sweep.svg");
    let rss_svg = cfg.charts.join("bench-rss-allocations.svg");
    let names = [
        (OURS, "turn-server"),
        (COTURN, "coturn 4.6.1"),
        (LIMIT, "bare forwarder"),
    ];
    let sweep: Vec<SweepSeries> = names
        .iter()
        .map(|(k, label)| SweepSeries {
            name: (*label).into(),
            points: res
                .sweep
                .get(*k)
                .map(|v| {
                    v.iter()
                        .map(|(_, r)| (r.offered_pps, r.relayed_pps, r.loss_pct))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    chart::sweep_chart(
        &sweep_svg.display().to_string(),
        "45 clients × 64 B: relayed packets/s and loss vs offered load",
        &sweep,
    )?;
    let rss: Vec<RssSeries> = names[..2]
        .iter()
        .map(|(k, label)| RssSeries {
            name: (*label).into(),
            points: res
                .alloc_hold
                .get(*k)
                .and_then(|v| v.first())
                .map(|r| {
                    r.rss_samples
                        .iter()
                        .map(|(n, kib)| (*n as f64, *kib as f64 / 1024.0))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    chart::rss_chart(
        &rss_svg.display().to_string(),
        &format!("server RSS vs live allocations (up to {})", cfg.alloc_count),
        &rss,
    )?;
    if let Some(p) = &cfg.json {
        crate::report::write_json(p, res)?;
    }
    let notes = std::fs::read_to_string(&cfg.out)
        .ok()
        .and_then(|t| t.find(NOTES_MARKER).map(|i| t[i..].to_string()))
        .unwrap_or_else(|| format!("{NOTES_MARKER}\n"));
    let md = markdown(cfg, res, &sweep_svg, &rss_svg) + "\n" + &notes;
    std::fs::write(&cfg.out, md).map_err(|e| format!("writing {}: {e}", cfg.out.display()))?;
    eprintln!(
        "[compare] wrote {}, {} and {} in {:.0} s",
        cfg.out.display(),
        sweep_svg.display(),
        rss_svg.display(),
        res.total_s
    );
    Ok(())
}

/// The compare arguments a user passes through bench.sh: all but `--ours PATH` and
/// `--jwt PATH`, which bench.sh adds itself.
fn bench_args(command: &str) -> String {
    let mut out = String::new();
    let mut words = command.split_whitespace().skip(2);
    while let Some(w) = words.next() {
        if w == "--ours" || w == "--jwt" {
            words.next();
        } else if !w.starts_with("--ours=") && !w.starts_with("--jwt=") {
            out.push(' ');
            out.push_str(w);
        }
    }
    out
}

/// One row of the allocation table: target name → value.
type Metric<'a> = Box<dyn Fn(&str) -> Option<f64> + 'a>;

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn markdown(cfg: &CompareConfig, res: &Results, sweep_svg: &Path, rss_svg: &Path) -> String {
    let mut s = String::new();
    let m = &res.machine;
    let _ = writeln!(s, "# Benchmarks: turn-server against coturn\n");
    let _ = writeln!(
        s,
        "Generated by `loadtest compare` on {}. **These figures are from a shared 2-core machine** \
         (other engineers' builds ran at the same time; see the load averages), so treat small \
         differences as noise and compare ratios within one run, not absolute numbers.\n",
        m.started_utc
    );
    let nice = match m.nice {
        Some(n) if n != 0 => format!("BENCH_NICE={n} "),
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "## Command\n\n```sh\n{nice}./loadtest/bench.sh{}\n```\n",
        bench_args(&res.command)
    );
    let _ = writeln!(
        s,
        "which builds the release binaries and runs `{}` ({} rounds, {:.0} s per packet run, \
         total {:.0} s).\n",
        res.command, res.rounds, res.duration_s, res.total_s
    );
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "| fact | value |\n|---|---|");
    let _ = writeln!(s, "| nproc | {} |", m.nproc);
    let _ = writeln!(s, "| CPU | {} |", m.cpu_model);
    let _ = writeln!(s, "| kernel | {} |", m.kernel);
    let _ = writeln!(s, "| turn-server source | {} |", m.source);
    let _ = writeln!(s, "| coturn | {} (Debian package) |", m.coturn_version);
    let _ = writeln!(s, "| load average at start | {} |", m.loadavg_start);
    let _ = writeln!(s, "| load average at end | {} |", m.loadavg_end);
    let _ = writeln!(
        s,
        "| nice value of loadtest and both servers | {} |\n",
        m.nice.map_or("unknown".into(), |n| n.to_string())
    );
    let _ = writeln!(s, "## Method\n");
    let _ = writeln!(
        s,
        "- Both servers run on 127.0.0.1 with the same flags: `-n --listening-ip=127.0.0.1 \
         --relay-ip=127.0.0.1 --realm={REALM} --use-auth-secret --static-auth-secret=… \
         --allow-loopback-peers`; ours on port 6478 (relay ports 8000-19999), coturn on 6578 \
         (relay ports 20000-31999) with `--no-cli --no-tls --no-dtls --log-file=stdout` added. \
         Both log to a file."
    );
    let _ = writeln!(
        s,
        "- Packet loads: every client allocates with a TURN REST credential, installs a \
         permission, binds a channel and sends ChannelData to loadtest's echo peer, which sends \
         each packet back; *received* counts packets that made the round trip, *relayed* is \
         2 × received (the server forwards each packet twice). Loss is counted over everything \
         sent, after a 1 s drain. *Flat out* (load 3) sends as fast as replies come back with \
         at most 256 packets in flight (an open-loop sender only measures loadtest's own \
         receive path); packets unanswered for 50 ms are written off as lost. Loads run in rotating order (ours, coturn, forwarder) for {} \
         rounds after a discarded 1 s warm-up; the tables give medians.",
        res.rounds
    );
    let _ = writeln!(
        s,
        "- Server CPU is utime+stime from /proc/<pid>/stat over the run (drain included); \
         *relayed per CPU-s* divides relayed packets by it. For the bare forwarder (an \
         in-process thread, recvmmsg/sendmmsg, a relay socket per client, no TURN parsing) it \
         is that thread's CPU. The forwarder is the machine's limit for the same load generator."
    );
    let _ = writeln!(
        s,
        "- Allocations: {} allocations (64 in flight, as fast as the server answers) held 2 s, \
         RSS from /proc/<pid>/status VmRSS before and while holding; allocation rate: 2000 \
         allocations as fast as possible, 64 in flight. Allocation latency covers both round \
         trips (401 challenge, then the signed request). All allocations are deleted afterwards. \
         RSS per allocation comes from each server's first run (later runs reuse memory freed \
         by the earlier one). After every allocation run the benchmark pauses 4 s: coturn \
         answers 437 to a new allocation from a 5-tuple it deleted moments ago, and the kernel \
         hands freed client ports to the next run.\n",
        cfg.alloc_count
    );

    let _ = writeln!(s, "## Packet loads (median of {} rounds)\n", res.rounds);
    let _ = writeln!(
        s,
        "| load | target | offered pps | received pps | loss % | RTT p50 / p99 ms | server CPU % | relayed per CPU-s | us/coturn (per CPU-s) | us/limit (received pps) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for load in &LOADS {
        let runs = res.packet.get(&load.id);
        let get = |t: &str| runs.and_then(|r| r.get(t));
        let per_cpu = |t: &str| med_traffic(get(t), |r| r.relayed_per_server_cpu_s);
        let recv = |t: &str| med_traffic(get(t), |r| Some(r.received_pps));
        for (t, label) in [
            (OURS, "turn-server"),
            (COTURN, "coturn"),
            (LIMIT, "bare forwarder"),
        ] {
            let (vs_coturn, vs_limit) = if t == OURS {
                (
                    fmt(ratio(per_cpu(OURS), per_cpu(COTURN)), 2),
                    fmt(ratio(recv(OURS), recv(LIMIT)), 2),
                )
            } else if t == COTURN {
                ("".into(), fmt(ratio(recv(COTURN), recv(LIMIT)), 2))
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                s,
                "| {} | {label} | {} | {} | {} | {} / {} | {} | {} | {vs_coturn} | {vs_limit} |",
                describe(load),
                fmt(med_traffic(get(t), |r| Some(r.offered_pps)), 0),
                fmt(recv(t), 0),
                fmt(med_traffic(get(t), |r| Some(r.loss_pct)), 3),
                fmt(med_traffic(get(t), |r| Some(r.latency_ms.p50)), 2),
                fmt(med_traffic(get(t), |r| Some(r.latency_ms.p99)), 2),
                fmt(med_traffic(get(t), |r| r.server_cpu_pct), 0),
                fmt(per_cpu(t), 0),
            );
        }
    }
    let _ = writeln!(
        s,
        "\n![relayed packets/s and loss vs offered load]({})\n",
        file_name(sweep_svg)
    );
    let _ = writeln!(
        s,
        "Sweep: 45 clients × 64 B at {:?} pps per client, {:.0} s each, one run per point.\n",
        SWEEP_RATES,
        Duration::from_secs(3).min(cfg.duration).as_secs_f64()
    );

    let _ = writeln!(s, "## Allocations\n");
    let _ = writeln!(
        s,
        "| metric | turn-server | coturn | us/coturn |\n|---|---|---|---|"
    );
    let hold = |t: &str| res.alloc_hold.get(t);
    let rate = |t: &str| res.alloc_rate.get(t);
    let rows: Vec<(String, Metric<'_>, usize)> = vec![
        (
            "(5) allocations/s (2000, 64 in flight)".into(),
            Box::new(|t: &str| med_alloc(rate(t), |r| Some(r.allocations.per_s))),
            0,
        ),
        (
            "(5) allocate latency p50 ms".into(),
            Box::new(|t: &str| med_alloc(rate(t), |r| Some(r.allocations.latency_ms.p50))),
            2,
        ),
        (
            "(5) allocate latency p99 ms".into(),
            Box::new(|t: &str| med_alloc(rate(t), |r| Some(r.allocations.latency_ms.p99))),
            2,
        ),
        (
            format!("(4) allocations/s reaching {}", cfg.alloc_count),
            Box::new(|t: &str| med_alloc(hold(t), |r| Some(r.allocations.per_s))),
            0,
        ),
        (
            format!("(4) allocations held of {}", cfg.alloc_count),
            Box::new(|t: &str| med_alloc(hold(t), |r| Some(r.allocations.ok as f64))),
            0,
        ),
        (
            "(4) server RSS held, MiB (first run)".into(),
            Box::new(|t: &str| {
                first(hold(t)).and_then(|r| r.rss_held_kib.map(|k| k as f64 / 1024.0))
            }),
            1,
        ),
        (
            "(4) RSS growth per allocation, bytes (first run)".into(),
            Box::new(|t: &str| first(hold(t)).and_then(|r| r.rss_per_alloc_bytes)),
            0,
        ),
        (
            "(4) server CPU ms per allocation".into(),
            Box::new(|t: &str| {
                med_alloc(hold(t), |r| {
                    r.server_cpu_s
                        .filter(|_| r.allocations.ok > 0)
                        .map(|c| 1000.0 * c / r.allocations.ok as f64)
                })
            }),
            3,
        ),
    ];
    for (label, f, digits) in &rows {
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {} |",
            fmt(f(OURS), *digits),
            fmt(f(COTURN), *digits),
            fmt(ratio(f(OURS), f(COTURN)), 2)
        );
    }
    let failures = |t: &str| -> String {
        let mut all: BTreeMap<String, u64> = BTreeMap::new();
        for r in res
            .alloc_hold
            .get(t)
            .into_iter()
            .chain(res.alloc_rate.get(t))
            .flatten()
        {
            for (k, v) in &r.failures {
                *all.entry(k.clone()).or_default() += v;
            }
        }
        if all.is_empty() {
            "none".into()
        } else {
            all.iter()
                .map(|(k, v)| format!("{k} × {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(
        s,
        "| failures (all allocation runs) | {} | {} | |",
        failures(OURS),
        failures(COTURN)
    );
    let _ = writeln!(
        s,
        "\n![server RSS vs allocations]({})\n",
        file_name(rss_svg)
    );

    let _ = writeln!(s, "## Load (1) generated by coturn's turnutils_uclient\n");
    if res.uclient.is_empty() {
        let _ = writeln!(s, "Not run (see notes).\n");
    } else {
        let _ = writeln!(
            s,
            "`turnutils_uclient -m 45 -n {} -l 64 -z 1 -e 127.0.0.1 -r 6600 -W … -u bench-uclient -p PORT -X 127.0.0.1` \
             with `turnutils_peer -L 127.0.0.1 -p 6600` as the echo peer. uclient paces itself \
             (its `-z 1` does not reach 1000 pps per client here), so compare loss and CPU \
             per packet rather than rates.\n",
            cfg.uclient_messages
        );
        let _ = writeln!(
            s,
            "| server | round | sent | received | lost % | avg RTT ms | max RTT ms | transmit s | server CPU s | relayed per CPU-s | exit |\n|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for (t, label) in [(OURS, "turn-server"), (COTURN, "coturn")] {
            for (i, r) in res.uclient.get(t).into_iter().flatten().enumerate() {
                let _ = writeln!(
                    s,
                    "| {label} | {} | {} | {} | {:.3} | {:.2} | {:.0} | {:.0} | {} | {} | {} |",
                    i + 1,
                    r.sent,
                    r.received,
                    r.lost_pct,
                    r.avg_rtt_ms,
                    r.max_rtt_ms,
                    r.transmit_s,
                    fmt(r.server_cpu_s, 2),
                    fmt(r.relayed_per_server_cpu_s, 0),
                    r.exit
                );
            }
        }
        s.push('\n');
    }

    jwt::section(&mut s, &res.jwt, res.rounds);

    let _ = writeln!(s, "## Goals of issue 8\n");
    let _ = writeln!(s, "| goal | measured | met |\n|---|---|---|");
    let per_cpu = |id: u8, t: &str| {
        med_traffic(res.packet.get(&id).and_then(|m| m.get(t)), |r| {
            r.relayed_per_server_cpu_s
        })
    };
    let loss = |id: u8, t: &str| {
        med_traffic(res.packet.get(&id).and_then(|m| m.get(t)), |r| {
            Some(r.loss_pct)
        })
    };
    let recv = |id: u8, t: &str| {
        med_traffic(res.packet.get(&id).and_then(|m| m.get(t)), |r| {
            Some(r.received_pps)
        })
    };
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "not measured",
    };
    for id in [1u8, 2] {
        let r = ratio(per_cpu(id, OURS), per_cpu(id, COTURN));
        let lossless = match (loss(id, OURS), loss(id, COTURN)) {
            (Some(o), Some(c)) => Some(c > 0.0 || o == 0.0),
            _ => None,
        };
        let _ = writeln!(
            s,
            "| load ({id}): relayed per server-CPU-s ≥ 2× coturn, 0 % loss where coturn has 0 % | {}× coturn; loss {} % vs coturn {} % | {} |",
            fmt(r, 2),
            fmt(loss(id, OURS), 3),
            fmt(loss(id, COTURN), 3),
            verdict(r.map(|r| r >= 2.0).zip(lossless).map(|(a, b)| a && b))
        );
    }
    let _ = writeln!(
        s,
        "| load (3): no loss where coturn loses | loss {} % vs coturn {} % | {} |",
        fmt(loss(3, OURS), 3),
        fmt(loss(3, COTURN), 3),
        verdict(loss(3, OURS).map(|o| o == 0.0))
    );
    for id in [1u8, 2, 3] {
        let r = ratio(recv(id, OURS), recv(id, LIMIT));
        let _ = writeln!(
            s,
            "| load ({id}): ≥ 80 % of the bare forwarder's packet rate | {} | {} |",
            r.map_or("–".into(), |r| format!("{:.0} %", 100.0 * r)),
            verdict(r.map(|r| r >= 0.8))
        );
    }
    let rss = first(res.alloc_hold.get(OURS)).and_then(|r| r.rss_per_alloc_bytes);
    let _ = writeln!(
        s,
        "| state per allocation ≤ 2 KB beyond kernel socket memory (RSS growth) | {} bytes (coturn {} bytes) | {} |",
        fmt(rss, 0),
        fmt(
            first(res.alloc_hold.get(COTURN)).and_then(|r| r.rss_per_alloc_bytes),
            0
        ),
        verdict(rss.map(|b| b <= 2048.0))
    );
    let ar = ratio(
        med_alloc(res.alloc_rate.get(OURS), |r| Some(r.allocations.per_s)),
        med_alloc(res.alloc_rate.get(COTURN), |r| Some(r.allocations.per_s)),
    );
    let _ = writeln!(
        s,
        "| allocation rate ≥ 5× coturn | {}× | {} |",
        fmt(ar, 2),
        verdict(ar.map(|r| r >= 5.0))
    );
    jwt::goal_rows(&mut s, &res.jwt);
    s.push('\n');

    let _ = writeln!(s, "## Every packet run\n");
    let _ = writeln!(
        s,
        "| load | target | round | received pps | loss % | RTT p99 ms | server CPU % | relayed per CPU-s | failures | host RcvbufErrors |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (id, by_target) in &res.packet {
        for (t, runs) in by_target {
            for (i, r) in runs.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "| ({id}) | {t} | {} | {:.0} | {:.3} | {:.2} | {} | {} | {} | {} |",
                    i + 1,
                    r.received_pps,
                    r.loss_pct,
                    r.latency_ms.p99,
                    fmt(r.server_cpu_pct, 0),
                    fmt(r.relayed_per_server_cpu_s, 0),
                    r.failures.values().sum::<u64>(),
                    r.udp_rcvbuf_errors.map_or("–".into(), |v| v.to_string())
                );
            }
        }
    }
    if !res.notes.is_empty() {
        let _ = writeln!(s, "\n## Run notes\n");
        for n in &res.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uclient_summary() {
        let text = "\
8: : start_mclient: msz=46, tot_send_msgs=87304, tot_recv_msgs=87259, tot_send_bytes ~ 1
8: : start_mclient: tot_send_msgs=92000, tot_recv_msgs=91990
8: : start_mclient: tot_send_bytes ~ 5888000, tot_recv_bytes ~ 5888000
8: : Total transmit time is 8
8: : Total lost packets 10 (0.010870%), total send dropped 0 (0.000000%)
8: : Average round trip delay 3.517315 ms; min = 0 ms, max = 151 ms
";
        let r = parse_uclient(text);
        assert_eq!((r.sent, r.received), (92_000, 91_990));
        assert_eq!(r.transmit_s, 8.0);
        assert!((r.lost_pct - 0.01087).abs() < 1e-9);
        assert!((r.avg_rtt_ms - 3.517315).abs() < 1e-9);
        assert_eq!(r.max_rtt_ms, 151.0);
        assert_eq!(parse_uclient("garbage").sent, 0);
    }

    #[test]
    fn bench_args_drop_ours() {
        assert_eq!(
            bench_args("loadtest compare --ours /x/turn-server --rounds 4"),
            " --rounds 4"
        );
        assert_eq!(
            bench_args("loadtest compare --ours=/x --duration 3s"),
            " --duration 3s"
        );
        assert_eq!(bench_args("loadtest compare"), "");
        assert_eq!(
            bench_args("loadtest compare --ours /x --jwt /y/lk-jwt-service --rounds 2"),
            " --rounds 2"
        );
        assert_eq!(bench_args("loadtest compare --jwt=/y"), "");
    }

    #[test]
    fn medians_and_dates() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN]), None);
        assert_eq!(ratio(Some(2.0), Some(0.0)), None);
        let d = utc_now();
        assert!(
            d.len() == 20 && d.ends_with(" UTC") && d.starts_with("20"),
            "{d}"
        );
    }
}
