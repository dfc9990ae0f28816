//! The report: docs/benchmarks.md (medians, ratios, goal rows, notes kept across runs),
//! the JSON results and the SVG charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::config::{
    COTURN, CompareConfig, LIMIT, LOADS, Load, NOTES_MARKER, OURS, REALM, SWEEP_RATES, describe,
};
use super::jwt;
use super::machine::Machine;
use super::stats::{first, fmt, med_alloc, med_traffic, ratio};
use super::uclient::UclientResult;
use crate::chart::{self, RssSeries, SweepSeries};
use crate::report::{AllocReport, TrafficReport};

/// Everything measured, also written with `--json`.
#[derive(Debug, Default, Serialize)]
pub(super) struct Results {
    pub(super) command: String,
    pub(super) machine: Machine,
    pub(super) rounds: usize,
    pub(super) duration_s: f64,
    pub(super) loads: Vec<Load>,
    /// `load id → target → runs`.
    pub(super) packet: BTreeMap<u8, BTreeMap<String, Vec<TrafficReport>>>,
    /// `target → (per-client rate, run)`.
    pub(super) sweep: BTreeMap<String, Vec<(u64, TrafficReport)>>,
    pub(super) alloc_hold: BTreeMap<String, Vec<AllocReport>>,
    pub(super) alloc_rate: BTreeMap<String, Vec<AllocReport>>,
    pub(super) uclient: BTreeMap<String, Vec<UclientResult>>,
    /// lk-jwt-service `/get_token` runs by token variant.
    pub(super) jwt: BTreeMap<String, Vec<crate::modes::jwt::JwtReport>>,
    pub(super) notes: Vec<String>,
    pub(super) total_s: f64,
}

pub(super) fn write_outputs(cfg: &CompareConfig, res: &Results) -> Result<(), String> {
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
pub(super) fn bench_args(command: &str) -> String {
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

pub(super) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn markdown(
    cfg: &CompareConfig,
    res: &Results,
    sweep_svg: &Path,
    rss_svg: &Path,
) -> String {
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
    fn ratios() {
        assert_eq!(ratio(Some(2.0), Some(0.0)), None);
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
    }
}
