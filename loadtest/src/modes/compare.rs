//! `compare` mode: the side-by-side benchmark. Starts coturn and our turn-server with
//! equivalent configs on loopback (different ports and relay ranges), alternates A/B runs
//! over several rounds for the loads of issue 8, measures the bare forwarder as the
//! machine's limit, runs coturn's own `turnutils_uclient` against both, loads
//! lk-jwt-service's `/get_token` (`compare/jwt.rs`), and writes docs/benchmarks.md plus
//! two SVG charts.

mod config;
mod jwt;
mod machine;
mod report;
mod server;
mod stats;
mod uclient;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::modes::alloc::{self, AllocConfig};
use crate::modes::forward;
use crate::modes::turn::{self, TurnConfig};
use crate::report::{AllocReport, TrafficReport};
use config::{COTURN, LIMIT, LOADS, Load, OURS, PORT_QUARANTINE, SECRET, SWEEP_RATES};
pub use config::{CompareConfig, HELP};
use machine::{machine, read_trim};
use report::{Results, write_outputs};
use server::ServerProc;
use uclient::uclient_runs;

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
