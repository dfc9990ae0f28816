//! The report: docs/benchmarks.md (medians, ratios, goal rows, notes kept across runs),
//! the JSON results and the SVG charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::config::{
    COTURN, CompareConfig, LIMIT, LOADS, Load, NOTES_MARKER, OURS, OURS_KERNEL, REALM, SWEEP_RATES,
    describe,
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
    /// The phases run, in order (`loopback`, then `veth` with `--veth`).
    pub(super) phases: Vec<String>,
    /// `load id → phase/target → runs`.
    pub(super) packet: BTreeMap<u8, BTreeMap<String, Vec<TrafficReport>>>,
    /// `target → (per-client rate, run)`.
    pub(super) sweep: BTreeMap<String, Vec<(u64, TrafficReport)>>,
    /// `phase/target → runs`.
    pub(super) alloc_hold: BTreeMap<String, Vec<AllocReport>>,
    /// `phase/target → runs`.
    pub(super) alloc_rate: BTreeMap<String, Vec<AllocReport>>,
    pub(super) uclient: BTreeMap<String, Vec<UclientResult>>,
    /// lk-jwt-service `/get_token` runs by token variant.
    pub(super) jwt: BTreeMap<String, Vec<crate::modes::jwt::JwtReport>>,
    pub(super) notes: Vec<String>,
    pub(super) total_s: f64,
}

/// The key of a phase's results for one target.
pub(super) fn key(phase: &str, target: &str) -> String {
    format!("{phase}/{target}")
}

/// A target's name in the report.
fn label(target: &str, res: &Results) -> String {
    match target {
        OURS => "turn-server".into(),
        OURS_KERNEL => "turn-server, kernel-offload=on".into(),
        COTURN => format!("coturn {}", res.machine.coturn_version),
        LIMIT => "bare forwarder".into(),
        other => other.into(),
    }
}

/// The first phase: where the sweep, the RSS chart and turnutils_uclient ran.
fn first_phase(res: &Results) -> &str {
    res.phases.first().map_or("loopback", String::as_str)
}

pub(super) fn write_outputs(cfg: &CompareConfig, res: &Results) -> Result<(), String> {
    std::fs::create_dir_all(&cfg.charts).map_err(|e| format!("{}: {e}", cfg.charts.display()))?;
    let sweep_svg = cfg.charts.join("bench-load-sweep.svg");
    let rss_svg = cfg.charts.join("bench-rss-allocations.svg");
    let names = [
        (OURS, label(OURS, res)),
        (COTURN, label(COTURN, res)),
        (LIMIT, label(LIMIT, res)),
    ];
    let sweep: Vec<SweepSeries> = names
        .iter()
        .map(|(k, label)| SweepSeries {
            name: label.clone(),
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
            name: label.clone(),
            points: res
                .alloc_hold
                .get(&key(first_phase(res), k))
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
    let _ = writeln!(s, "| coturn | {} (`{}`) |", m.coturn_version, cfg.coturn);
    let _ = writeln!(s, "| load average at start | {} |", m.loadavg_start);
    let _ = writeln!(s, "| load average at end | {} |", m.loadavg_end);
    let _ = writeln!(
        s,
        "| nice value of loadtest and the servers | {} |\n",
        m.nice.map_or("unknown".into(), |n| n.to_string())
    );
    let _ = writeln!(s, "## Method\n");
    let phases = res.phases.join(" and ");
    let _ = writeln!(
        s,
        "- Phases: {phases}. *loopback*: servers, clients and echo peer on 127.0.0.1{}. \
         *veth*: the servers in one network namespace, loadtest's clients and echo peer in \
         another, joined by a veth pair (10.203.0.1 and 10.203.0.2), so each relayed packet \
         crosses a real interface twice.",
        if cfg.offload || cfg.veth {
            " in a network namespace of its own"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "- The servers run with the same flags: `-n --listening-ip=IP --relay-ip=IP \
         --realm={REALM} --use-auth-secret --static-auth-secret=… --allow-loopback-peers` \
         (over veth `--allowed-peer-ip=10.203.0.2` instead); ours on port 6478 (relay ports \
         8000-19999) with `--unauthorized-ratelimit-rps=0` (all load comes from one address), \
         coturn on 6578 (relay ports 20000-31999) with `--no-tls --no-dtls --log-file=stdout`{}. \
         Both log to a file.",
        if super::machine::coturn_takes_no_cli(&m.coturn_version) {
            ""
        } else {
            " --no-cli"
        }
    );
    if cfg.offload {
        let _ = writeln!(
            s,
            "- *turn-server, kernel-offload=on*: the same turn-server with its eBPF fast path \
             (port 6678, relay ports 7000-7999, exporter on 9650), started for each run after \
             a discarded 1 s warm-up and stopped after it, so its program sits on the \
             interfaces only during its own runs. Its cost per packet counts three parts, \
             reported separately and summed: the server process's CPU; the machine's busy CPU \
             (all cores' wall time less their idle time, which /proc/stat measures at each \
             idle entry and exit; its busy columns are sampled at the tick and miss much of \
             a paced load) that neither the server nor loadtest was charged with \
             (*unattributed*: softirq work done while a core idled, kernel threads, anything \
             else running); and loadtest's extra CPU over the same load relayed by \
             turn-server in userspace (on loopback and veth the kernel charges the receiving \
             side's work, the program's run included, to the sending process, here \
             loadtest's clients and echo peer). The program's own run time as the kernel \
             measures it (`kernel.bpf_stats_enabled=1` for the whole benchmark, read from the \
             server's `turn_offload_program_run_seconds_total` before and after the run) is \
             shown beside them: it lies inside the last two, so it is not added again, and \
             the sum is never taken as less than server CPU + program run time."
        );
    }
    let _ = writeln!(
        s,
        "- Packet loads: every client allocates with a TURN REST credential, installs a \
         permission, binds a channel and sends ChannelData to loadtest's echo peer, which sends \
         each packet back; *received* counts packets that made the round trip, *relayed* is \
         2 × received (the server forwards each packet twice). Loss is counted over everything \
         sent, after a 1 s drain. *Flat out* (load 3) sends as fast as replies come back with \
         at most 256 packets in flight (an open-loop sender only measures loadtest's own \
         receive path); packets unanswered for 50 ms are written off as lost. Loads run in \
         rotating target order for {} rounds after a discarded 1 s warm-up; the tables give \
         medians.",
        res.rounds
    );
    let _ = writeln!(
        s,
        "- Server CPU is utime+stime from /proc/<pid>/stat over the run (drain included); \
         *relayed per CPU-s* divides relayed packets by it (by the summed cost for the fast \
         path). For the bare forwarder (an in-process thread, recvmmsg/sendmmsg, a relay \
         socket per client, no TURN parsing) it is that thread's CPU. The forwarder is the \
         machine's limit for the same load generator; it runs on loopback only."
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

    for phase in &res.phases {
        packet_section(&mut s, res, phase);
        if phase == first_phase(res) {
            let _ = writeln!(
                s,
                "![relayed packets/s and loss vs offered load]({})\n",
                file_name(sweep_svg)
            );
            let _ = writeln!(
                s,
                "Sweep ({phase}): 45 clients × 64 B at {:?} pps per client, {:.0} s each, one \
                 run per point.\n",
                SWEEP_RATES,
                Duration::from_secs(3).min(cfg.duration).as_secs_f64()
            );
        }
    }
    for phase in &res.phases {
        allocation_section(&mut s, cfg, res, phase);
        if phase == first_phase(res) {
            let _ = writeln!(s, "![server RSS vs allocations]({})\n", file_name(rss_svg));
        }
    }

    let _ = writeln!(s, "## Load (1) generated by coturn's turnutils_uclient\n");
    if res.uclient.is_empty() {
        let _ = writeln!(s, "Not run (see notes).\n");
    } else {
        let _ = writeln!(
            s,
            "`turnutils_uclient -m 45 -n {} -l 64 -z 1 -e 127.0.0.1 -r 6600 -W … -u bench-uclient -p PORT -X 127.0.0.1` \
             with `turnutils_peer -L 127.0.0.1 -p 6600` as the echo peer ({}). uclient paces \
             itself (its `-z 1` does not reach 1000 pps per client here), so compare loss and \
             CPU per packet rather than rates.\n",
            cfg.uclient_messages,
            first_phase(res)
        );
        let _ = writeln!(
            s,
            "| server | round | sent | received | lost % | avg RTT ms | max RTT ms | transmit s | server CPU s | relayed per CPU-s | exit |\n|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for t in [OURS, COTURN] {
            for (i, r) in res.uclient.get(t).into_iter().flatten().enumerate() {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {:.3} | {:.2} | {:.0} | {:.0} | {} | {} | {} |",
                    label(t, res),
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
    goals(&mut s, res);

    let _ = writeln!(s, "## Every packet run\n");
    let _ = writeln!(
        s,
        "| load | phase/target | round | received pps | loss % | RTT p99 ms | server CPU % | relayed per CPU-s | loadtest CPU s | machine CPU s | eBPF run s | kernel-relayed % | failures | host RcvbufErrors |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (id, by_target) in &res.packet {
        for (t, runs) in by_target {
            // The fast path's runs are per CPU-s of their full cost, as in the tables above.
            let fast_path_baseline = t
                .split_once('/')
                .filter(|(_, target)| *target == OURS_KERNEL)
                .map(|(phase, _)| loadtest_baseline(res, *id, phase));
            for (i, r) in runs.iter().enumerate() {
                let relayed = 2.0 * r.received as f64;
                let per_cpu = match fast_path_baseline {
                    Some(baseline) => full_cost(r, baseline)
                        .filter(|c| *c > 0.0)
                        .map(|c| relayed / c),
                    None => r.relayed_per_server_cpu_s,
                };
                let kernel_share = r
                    .kernel_relayed
                    .filter(|_| relayed > 0.0)
                    .map(|k| 100.0 * k as f64 / relayed);
                let _ = writeln!(
                    s,
                    "| ({id}) | {t} | {} | {:.0} | {:.3} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    i + 1,
                    r.received_pps,
                    r.loss_pct,
                    r.latency_ms.p99,
                    fmt(r.server_cpu_pct, 0),
                    fmt(per_cpu, 0),
                    fmt(r.loadtest_cpu_s, 2),
                    fmt(r.machine_cpu_s, 2),
                    fmt(r.bpf_cpu_s, 3),
                    fmt(kernel_share, 1),
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

/// The runs of one phase's target for load `id`.
fn runs<'a>(res: &'a Results, id: u8, phase: &str, target: &str) -> Option<&'a Vec<TrafficReport>> {
    res.packet.get(&id)?.get(&key(phase, target))
}

/// loadtest's median CPU per relayed packet for load `id` relayed by turn-server in
/// userspace: the baseline the fast path's runs are charged against.
fn loadtest_baseline(res: &Results, id: u8, phase: &str) -> Option<f64> {
    med_traffic(runs(res, id, phase, OURS), |r| {
        r.loadtest_cpu_s
            .filter(|_| r.received > 0)
            .map(|c| c / (2.0 * r.received as f64))
    })
}

/// loadtest's CPU in run `r` beyond what the userspace baseline would have taken for the
/// same number of packets (never less than nothing).
fn loadtest_extra(r: &TrafficReport, per_packet: Option<f64>) -> Option<f64> {
    let base = per_packet? * 2.0 * r.received as f64;
    Some((r.loadtest_cpu_s? - base).max(0.0))
}

/// CPU the machine spent during run `r` that neither loadtest nor the server process was
/// charged with: softirq work run while a core idled, kernel threads such as ksoftirqd,
/// and anything else running at the time (counted against the fast path, never for it).
fn unattributed_cpu(r: &TrafficReport) -> Option<f64> {
    Some((r.machine_cpu_s? - r.loadtest_cpu_s? - r.server_cpu_s?).max(0.0))
}

/// What one run cost in CPU seconds, all parts together: the server process, the CPU no
/// process was charged with, and loadtest's extra CPU. The eBPF program's run time is
/// inside the last two (the kernel charges softirq work, the program included, to the
/// task it interrupted, or to none on an idle core), so it is not added a second time;
/// the cost is never taken as less than the server's CPU plus the program's run time.
fn full_cost(r: &TrafficReport, per_packet: Option<f64>) -> Option<f64> {
    let spread = unattributed_cpu(r)? + loadtest_extra(r, per_packet)?;
    Some(r.server_cpu_s? + spread.max(r.bpf_cpu_s.unwrap_or(0.0)))
}

/// Relayed packets per CPU-second as the report counts them: server CPU for userspace
/// servers, the full cost for the fast path.
fn per_cpu(res: &Results, id: u8, phase: &str, target: &str) -> Option<f64> {
    if target != OURS_KERNEL {
        return med_traffic(runs(res, id, phase, target), |r| r.relayed_per_server_cpu_s);
    }
    let baseline = loadtest_baseline(res, id, phase);
    med_traffic(runs(res, id, phase, target), |r| {
        full_cost(r, baseline)
            .filter(|c| *c > 0.0)
            .map(|c| 2.0 * r.received as f64 / c)
    })
}

fn packet_section(s: &mut String, res: &Results, phase: &str) {
    let _ = writeln!(
        s,
        "## Packet loads over {phase} (median of {} rounds)\n",
        res.rounds
    );
    let _ = writeln!(
        s,
        "| load | target | offered pps | received pps | loss % | RTT p50 / p99 ms | server CPU % | relayed per CPU-s | ×coturn (per CPU-s) | ×limit (received pps) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for load in &LOADS {
        let id = load.id;
        let recv = |t: &str| med_traffic(runs(res, id, phase, t), |r| Some(r.received_pps));
        for t in [OURS, OURS_KERNEL, COTURN, LIMIT] {
            let Some(list) = runs(res, id, phase, t) else {
                continue;
            };
            let med = |f: &dyn Fn(&TrafficReport) -> Option<f64>| med_traffic(Some(list), f);
            let vs_coturn = if t == COTURN {
                String::new()
            } else {
                fmt(
                    ratio(per_cpu(res, id, phase, t), per_cpu(res, id, phase, COTURN)),
                    2,
                )
            };
            let vs_limit = if t == LIMIT {
                String::new()
            } else {
                fmt(ratio(recv(t), recv(LIMIT)), 2)
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} / {} | {} | {} | {vs_coturn} | {vs_limit} |",
                describe(load),
                label(t, res),
                fmt(med(&|r| Some(r.offered_pps)), 0),
                fmt(recv(t), 0),
                fmt(med(&|r| Some(r.loss_pct)), 3),
                fmt(med(&|r| Some(r.latency_ms.p50)), 2),
                fmt(med(&|r| Some(r.latency_ms.p99)), 2),
                fmt(med(&|r| r.server_cpu_pct), 0),
                fmt(per_cpu(res, id, phase, t), 0),
            );
        }
    }
    s.push('\n');
    if !LOADS
        .iter()
        .any(|l| runs(res, l.id, phase, OURS_KERNEL).is_some())
    {
        return;
    }
    let _ = writeln!(
        s,
        "What the fast path costs over {phase} (CPU seconds per run, medians; *unattributed* \
         is the machine's busy CPU (all cores' wall time less their idle time, /proc/stat) \
         that neither loadtest nor the server process was charged with; *loadtest extra* is loadtest's CPU beyond what it spends per \
         packet when turn-server relays the same load in userspace; the *eBPF run* time is \
         inside those two, as the kernel charges the program to the task its softirq \
         interrupted, so the sum is server + unattributed + loadtest extra, never less than \
         server + eBPF run; relayed per CPU-s divides by the sum):\n"
    );
    let _ = writeln!(
        s,
        "| load | server CPU s | eBPF run s | unattributed s | loadtest extra s | sum s | kernel-relayed % | relayed per CPU-s | ×turn-server userspace | ×coturn |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for load in &LOADS {
        let id = load.id;
        let list = runs(res, id, phase, OURS_KERNEL);
        let baseline = loadtest_baseline(res, id, phase);
        let med = |f: &dyn Fn(&TrafficReport) -> Option<f64>| med_traffic(list, f);
        let kernel = per_cpu(res, id, phase, OURS_KERNEL);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            describe(load),
            fmt(med(&|r| r.server_cpu_s), 3),
            fmt(med(&|r| r.bpf_cpu_s), 3),
            fmt(med(&unattributed_cpu), 3),
            fmt(med(&|r| loadtest_extra(r, baseline)), 3),
            fmt(med(&|r| full_cost(r, baseline)), 3),
            fmt(
                med(&|r| {
                    r.kernel_relayed
                        .filter(|_| r.received > 0)
                        .map(|k| 100.0 * k as f64 / (2.0 * r.received as f64))
                }),
                1
            ),
            fmt(kernel, 0),
            fmt(ratio(kernel, per_cpu(res, id, phase, OURS)), 2),
            fmt(ratio(kernel, per_cpu(res, id, phase, COTURN)), 2),
        );
    }
    s.push('\n');
}

fn allocation_section(s: &mut String, cfg: &CompareConfig, res: &Results, phase: &str) {
    let _ = writeln!(s, "## Allocations over {phase}\n");
    let _ = writeln!(
        s,
        "| metric | {} | {} | ×coturn |\n|---|---|---|---|",
        label(OURS, res),
        label(COTURN, res)
    );
    let hold = |t: &str| res.alloc_hold.get(&key(phase, t));
    let rate = |t: &str| res.alloc_rate.get(&key(phase, t));
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
            "(5) server CPU ms per allocation".into(),
            Box::new(|t: &str| {
                med_alloc(rate(t), |r| {
                    r.server_cpu_s
                        .filter(|_| r.allocations.ok > 0)
                        .map(|c| 1000.0 * c / r.allocations.ok as f64)
                })
            }),
            3,
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
    for (name, f, digits) in &rows {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} |",
            fmt(f(OURS), *digits),
            fmt(f(COTURN), *digits),
            fmt(ratio(f(OURS), f(COTURN)), 2)
        );
    }
    let failures = |t: &str| -> String {
        let mut all: BTreeMap<String, u64> = BTreeMap::new();
        for r in hold(t).into_iter().chain(rate(t)).flatten() {
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
        "| failures (all allocation runs) | {} | {} | |\n",
        failures(OURS),
        failures(COTURN)
    );
}

/// The goals of issue 15 (the fast path, allocations), and those of issue 8 that still
/// stand, per phase.
fn goals(s: &mut String, res: &Results) {
    let _ = writeln!(s, "## Goals\n");
    let _ = writeln!(s, "| goal | measured | met |\n|---|---|---|");
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "not measured",
    };
    for phase in &res.phases {
        let loss = |id: u8, t: &str| med_traffic(runs(res, id, phase, t), |r| Some(r.loss_pct));
        let recv = |id: u8, t: &str| med_traffic(runs(res, id, phase, t), |r| Some(r.received_pps));
        let fast = runs(res, 1, phase, OURS_KERNEL).is_some();
        let (best, which) = if fast {
            (OURS_KERNEL, "with the fast path")
        } else {
            (OURS, "userspace")
        };
        for id in [1u8, 2] {
            let r = ratio(
                per_cpu(res, id, phase, best),
                per_cpu(res, id, phase, COTURN),
            );
            let _ = writeln!(
                s,
                "| {phase}, load ({id}): relayed per CPU-s ≥ 3× coturn ({which}, all costs counted), 0 % loss | {}× coturn; loss {} % | {} |",
                fmt(r, 2),
                fmt(loss(id, best), 3),
                verdict(r.zip(loss(id, best)).map(|(r, l)| r >= 3.0 && l == 0.0))
            );
        }
        let r = ratio(recv(3, best), recv(3, COTURN));
        let _ = writeln!(
            s,
            "| {phase}, load (3): received pps ≥ 2× coturn ({which}), 0 % loss | {}× coturn; loss {} % | {} |",
            fmt(r, 2),
            fmt(loss(3, best), 3),
            verdict(r.zip(loss(3, best)).map(|(r, l)| r >= 2.0 && l == 0.0))
        );
        let ar = ratio(
            med_alloc(res.alloc_rate.get(&key(phase, OURS)), |r| {
                Some(r.allocations.per_s)
            }),
            med_alloc(res.alloc_rate.get(&key(phase, COTURN)), |r| {
                Some(r.allocations.per_s)
            }),
        );
        let _ = writeln!(
            s,
            "| {phase}: allocation rate ≥ 5× coturn | {}× | {} |",
            fmt(ar, 2),
            verdict(ar.map(|r| r >= 5.0))
        );
    }
    let phase = first_phase(res);
    for id in [1u8, 2, 3] {
        let r = ratio(
            med_traffic(runs(res, id, phase, OURS), |r| Some(r.received_pps)),
            med_traffic(runs(res, id, phase, LIMIT), |r| Some(r.received_pps)),
        );
        let _ = writeln!(
            s,
            "| {phase}, load ({id}), userspace: ≥ 80 % of the bare forwarder's packet rate | {} | {} |",
            r.map_or("–".into(), |r| format!("{:.0} %", 100.0 * r)),
            verdict(r.map(|r| r >= 0.8))
        );
    }
    let rss = first(res.alloc_hold.get(&key(phase, OURS))).and_then(|r| r.rss_per_alloc_bytes);
    let _ = writeln!(
        s,
        "| state per allocation ≤ 2 KB beyond kernel socket memory (RSS growth) | {} bytes (coturn {} bytes) | {} |",
        fmt(rss, 0),
        fmt(
            first(res.alloc_hold.get(&key(phase, COTURN))).and_then(|r| r.rss_per_alloc_bytes),
            0
        ),
        verdict(rss.map(|b| b <= 2048.0))
    );
    jwt::goal_rows(s, &res.jwt);
    s.push('\n');
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
    fn the_fast_path_pays_for_loadtest_extra_and_unattributed_cpu() {
        let userspace = TrafficReport {
            received: 1000,
            loadtest_cpu_s: Some(0.2),
            ..TrafficReport::default()
        };
        let per_packet = Some(0.2 / 2000.0);
        let kernel = TrafficReport {
            received: 2000,
            server_cpu_s: Some(0.01),
            bpf_cpu_s: Some(0.05),
            loadtest_cpu_s: Some(0.5),
            machine_cpu_s: Some(0.54),
            ..TrafficReport::default()
        };
        // 2000 round trips would have cost loadtest 0.4 s next to a userspace server; the
        // machine was busy 0.03 s beyond loadtest and the server.
        let extra = loadtest_extra(&kernel, per_packet).unwrap();
        assert!((extra - 0.1).abs() < 1e-9, "{extra}");
        let spread = unattributed_cpu(&kernel).unwrap();
        assert!((spread - 0.03).abs() < 1e-9, "{spread}");
        // The program's 0.05 s ran inside loadtest's and the idle cores' time: not added.
        let cost = full_cost(&kernel, per_packet).unwrap();
        assert!((cost - 0.14).abs() < 1e-9, "{cost}");
        assert_eq!(loadtest_extra(&userspace, per_packet), Some(0.0));
        assert_eq!(full_cost(&TrafficReport::default(), per_packet), None);
    }

    #[test]
    fn the_fast_path_costs_at_least_its_program() {
        // Too little extra CPU to hold the program's measured run time: the run time wins.
        let kernel = TrafficReport {
            received: 2000,
            server_cpu_s: Some(0.01),
            bpf_cpu_s: Some(0.2),
            loadtest_cpu_s: Some(0.45),
            machine_cpu_s: Some(0.40),
            ..TrafficReport::default()
        };
        assert_eq!(unattributed_cpu(&kernel), Some(0.0));
        let cost = full_cost(&kernel, Some(0.2 / 2000.0)).unwrap();
        assert!((cost - 0.21).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(Some(2.0), Some(0.0)), None);
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
    }
}
