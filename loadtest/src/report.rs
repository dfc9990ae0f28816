//! Results: the structs written as JSON (`--json FILE`), the human table printed at the
//! end, and the once-a-second progress line on stderr.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::Percentiles;

/// Allocation phase summary (turn and alloc modes).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AllocSummary {
    /// Allocations attempted.
    pub requested: u64,
    /// Allocations that succeeded.
    pub ok: u64,
    /// Allocations that failed (see the failures map).
    pub failed: u64,
    /// Successful allocations per second of wall time in the allocation phase.
    pub per_s: f64,
    /// Allocate latency (both round trips: 401 challenge and the signed request), ms.
    pub latency_ms: Percentiles,
}

/// A packet run (turn and forward modes).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficReport {
    /// `turn` or `forward`.
    pub mode: String,
    /// Target address.
    pub server: String,
    /// `channel`, `send` or `raw`.
    pub framing: String,
    /// `peer` (echo peer, RTT) or `c2c` (client to client, one-way latency).
    pub topology: String,
    /// Clients that got through setup and sent.
    pub clients: usize,
    /// Packets per second per client; 0 means flat out.
    pub rate_per_client: u64,
    /// Payload bytes per packet.
    pub size: usize,
    /// Sending time, seconds.
    pub duration_s: f64,
    /// Packets sent.
    pub sent: u64,
    /// Packets received back.
    pub received: u64,
    /// Packets the schedule wanted but loadtest's own socket refused (loadtest limit).
    pub send_blocked: u64,
    /// Datagrams received that were not valid loadtest payloads.
    pub malformed: u64,
    /// Socket errors on loadtest's side (e.g. ICMP unreachable).
    pub io_errors: u64,
    /// Packets per second offered.
    pub offered_pps: f64,
    /// Packets per second received back.
    pub received_pps: f64,
    /// Packets per second the server relayed (two relay hops per received packet).
    pub relayed_pps: f64,
    /// Lost share of the packets sent, percent.
    pub loss_pct: f64,
    /// Round-trip time (peer) or one-way latency (c2c), ms.
    pub latency_ms: Percentiles,
    /// The allocation phase (turn mode).
    pub setup: Option<AllocSummary>,
    /// Failures by kind (`stun-<code>`, `timeout`, …), setup included.
    pub failures: BTreeMap<String, u64>,
    /// Server (or forwarder thread) CPU seconds during the sending time.
    pub server_cpu_s: Option<f64>,
    /// Server CPU use during sending, percent of one core.
    pub server_cpu_pct: Option<f64>,
    /// Relayed packets per server CPU second.
    pub relayed_per_server_cpu_s: Option<f64>,
    /// Echo peer packets dropped on a full send buffer (loadtest limit).
    pub peer_dropped: u64,
    /// System-wide UDP receive-buffer drops during the run (/proc/net/snmp RcvbufErrors).
    pub udp_rcvbuf_errors: Option<u64>,
    /// loadtest's own CPU seconds (clients and echo peer) during the sending time and
    /// drain: on loopback and veth the kernel charges part of the receiving side's work
    /// to the sender, so a server that does less may make loadtest do more.
    pub loadtest_cpu_s: Option<f64>,
    /// Busy CPU seconds of the whole machine (all cores' wall time less their idle time)
    /// over the same window as `loadtest_cpu_s`: what the kernel did outside any measured
    /// process shows here.
    pub machine_cpu_s: Option<f64>,
    /// CPU seconds spent in the server's eBPF fast path during the run (compare mode,
    /// `kernel.bpf_stats_enabled`). Not in the server process's CPU: the kernel charges
    /// it to whatever task its softirq interrupted (on loopback and veth mostly the
    /// sender, loadtest), or to no process when a core was idle.
    pub bpf_cpu_s: Option<f64>,
    /// Packets the server's kernel fast path relayed during the run (compare mode).
    pub kernel_relayed: Option<u64>,
}

/// An allocation run (alloc mode).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AllocReport {
    /// Target address.
    pub server: String,
    /// Allocations asked for.
    pub target: u64,
    /// Allocation start rate asked for per second; 0 means as fast as the window allows.
    pub rate: u64,
    /// Allocations in flight at most.
    pub window: usize,
    /// Seconds all allocations were held.
    pub hold_s: f64,
    /// The allocation phase.
    pub allocations: AllocSummary,
    /// Refreshes sent while holding, and how many failed.
    pub refreshes: u64,
    /// Failed refreshes.
    pub refresh_failed: u64,
    /// Allocations deleted at the end (Refresh lifetime 0).
    pub deallocated: u64,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// Server RSS before, while holding and after deleting, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server RSS while all allocations are held, KiB.
    pub rss_held_kib: Option<u64>,
    /// Server RSS after the allocations were deleted, KiB.
    pub rss_after_kib: Option<u64>,
    /// (RSS held − RSS before) / allocations, bytes.
    pub rss_per_alloc_bytes: Option<f64>,
    /// `(live allocations, server RSS KiB)` samples for the chart.
    pub rss_samples: Vec<(u64, u64)>,
    /// `(seconds into the hold, server RSS KiB)` after each refresh round: flat in a
    /// soak run (a long `--hold` with a short `--lifetime`).
    pub rss_refresh_kib: Vec<(f64, u64)>,
    /// Server CPU seconds during the allocation phase.
    pub server_cpu_s: Option<f64>,
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn failures_line(f: &BTreeMap<String, u64>) -> String {
    if f.is_empty() {
        return "none".into();
    }
    f.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints `(label, value)` rows as an aligned two-column table.
pub fn print_table(title: &str, rows: &[(String, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("{title}");
    println!("{}", "-".repeat(title.len().max(20)));
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
}

impl TrafficReport {
    /// Table rows for the end-of-run summary.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            ("target".into(), self.server.clone()),
            (
                "load".into(),
                format!(
                    "{} clients × {} × {} B, {} / {}, {:.1} s",
                    self.clients,
                    if self.rate_per_client == 0 {
                        "flat out".into()
                    } else {
                        format!("{} pps", self.rate_per_client)
                    },
                    self.size,
                    self.framing,
                    self.topology,
                    self.duration_s
                ),
            ),
            ("offered pps".into(), format!("{:.0}", self.offered_pps)),
            ("received pps".into(), format!("{:.0}", self.received_pps)),
            (
                "relayed pps (server)".into(),
                format!("{:.0}", self.relayed_pps),
            ),
            (
                "loss".into(),
                format!(
                    "{:.3} % ({} of {})",
                    self.loss_pct,
                    self.sent - self.received.min(self.sent),
                    self.sent
                ),
            ),
            (
                if self.topology == "c2c" {
                    "one-way ms"
                } else {
                    "RTT ms"
                }
                .into(),
                format!(
                    "p50 {:.3}  p99 {:.3}  max {:.3}",
                    self.latency_ms.p50, self.latency_ms.p99, self.latency_ms.max
                ),
            ),
        ];
        if let Some(s) = &self.setup {
            rows.push((
                "allocations".into(),
                format!(
                    "{} ok, {} failed, {:.0}/s, latency p50 {:.2} p99 {:.2} max {:.2} ms",
                    s.ok, s.failed, s.per_s, s.latency_ms.p50, s.latency_ms.p99, s.latency_ms.max
                ),
            ));
        }
        rows.push(("failures".into(), failures_line(&self.failures)));
        rows.push((
            "loadtest-side".into(),
            format!(
                "send blocked {}, malformed {}, io errors {}, peer dropped {}",
                self.send_blocked, self.malformed, self.io_errors, self.peer_dropped
            ),
        ));
        rows.push((
            "UDP RcvbufErrors (host)".into(),
            self.udp_rcvbuf_errors
                .map_or_else(|| "-".into(), |v| v.to_string()),
        ));
        rows.push((
            "server CPU".into(),
            format!(
                "{} s ({} % of a core)",
                fmt_opt(self.server_cpu_s, 2),
                fmt_opt(self.server_cpu_pct, 0)
            ),
        ));
        rows.push((
            "relayed / server CPU s".into(),
            fmt_opt(self.relayed_per_server_cpu_s, 0),
        ));
        rows
    }
}

impl AllocReport {
    /// Server RSS after the first and the last refresh round, and the highest, KiB.
    fn hold_rss_line(&self) -> String {
        let rounds = &self.rss_refresh_kib;
        match (rounds.first(), rounds.last()) {
            (Some(first), Some(last)) => format!(
                "{} refresh rounds: first {} KiB at {:.0} s, last {} KiB at {:.0} s, max {} KiB",
                rounds.len(),
                first.1,
                first.0,
                last.1,
                last.0,
                rounds.iter().map(|r| r.1).max().unwrap_or(0)
            ),
            _ => "no refresh round (hold < half the lifetime, or no --server-pid)".into(),
        }
    }

    /// Table rows for the end-of-run summary.
    pub fn rows(&self) -> Vec<(String, String)> {
        let a = &self.allocations;
        vec![
            ("target".into(), self.server.clone()),
            (
                "asked".into(),
                format!(
                    "{} allocations, rate {}, window {}, hold {:.1} s",
                    self.target,
                    if self.rate == 0 {
                        "max".into()
                    } else {
                        format!("{}/s", self.rate)
                    },
                    self.window,
                    self.hold_s
                ),
            ),
            (
                "allocations".into(),
                format!("{} ok, {} failed, {:.0}/s", a.ok, a.failed, a.per_s),
            ),
            (
                "latency ms".into(),
                format!(
                    "p50 {:.2}  p99 {:.2}  max {:.2}",
                    a.latency_ms.p50, a.latency_ms.p99, a.latency_ms.max
                ),
            ),
            (
                "refreshes".into(),
                format!("{} ({} failed)", self.refreshes, self.refresh_failed),
            ),
            ("deallocated".into(), self.deallocated.to_string()),
            ("failures".into(), failures_line(&self.failures)),
            (
                "server RSS KiB".into(),
                format!(
                    "before {}  held {}  after {}",
                    self.rss_before_kib.map_or("-".into(), |v| v.to_string()),
                    self.rss_held_kib.map_or("-".into(), |v| v.to_string()),
                    self.rss_after_kib.map_or("-".into(), |v| v.to_string())
                ),
            ),
            (
                "RSS per allocation".into(),
                format!("{} bytes", fmt_opt(self.rss_per_alloc_bytes, 0)),
            ),
            ("RSS over the hold".into(), self.hold_rss_line()),
            ("server CPU s".into(), fmt_opt(self.server_cpu_s, 2)),
        ]
    }
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &str, value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| format!("json: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("writing {path}: {e}"))
}

/// A thread printing one progress line per second to stderr until dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts printing `line(elapsed)` every second.
    pub fn start(line: impl Fn(Duration) -> String + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut next = Duration::from_secs(1);
            // Bounded by the caller dropping us; checks the flag every 50 ms.
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if start.elapsed() >= next {
                    eprintln!("{}", line(start.elapsed()));
                    next += Duration::from_secs(1);
                }
            }
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
