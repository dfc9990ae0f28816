//! turn-server with its kernel fast path (`kernel-offload=on`) as a benchmark target,
//! and the eBPF program's own run time (the kernel measures it while
//! `kernel.bpf_stats_enabled` is 1). What the run cost in all is the report's business:
//! the server process, the machine's CPU no process was charged with, loadtest's extra.
//!
//! The server is started for each run and stopped after it, so the program sits on the
//! interfaces only while its own load runs and costs the other targets nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::config::OURS_KERNEL;
use super::netns::Phase;
use super::server::ServerProc;
use crate::modes::turn::{self, TurnConfig};
use crate::report::TrafficReport;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";
const PORT: u16 = 6678;
const RELAY: (u16, u16) = (7000, 7999);
const METRICS_PORT: u16 = 9650;

/// `kernel.bpf_stats_enabled=1` while it lives; the old value afterwards.
pub(super) struct BpfStats {
    old: String,
}

impl BpfStats {
    pub(super) fn enable() -> Result<Self, String> {
        let old = std::fs::read_to_string(SYSCTL).map_err(|e| format!("{SYSCTL}: {e}"))?;
        std::fs::write(SYSCTL, "1").map_err(|e| format!("{SYSCTL}: {e}"))?;
        Ok(Self { old })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, self.old.trim());
    }
}

/// Starts turn-server with the fast path for each run.
pub(super) struct KernelServer {
    bin: String,
    logdir: PathBuf,
}

/// What the server's exporter says about its fast path.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    program_s: f64,
    relayed: u64,
}

impl KernelServer {
    pub(super) fn new(bin: &str, logdir: &Path) -> Self {
        Self {
            bin: bin.to_owned(),
            logdir: logdir.to_owned(),
        }
    }

    /// One run of the load `make` describes (given the server's address and pid), after
    /// a discarded 1 s warm-up, with the program's run time and relayed packets.
    pub(super) fn run(
        &self,
        phase: &Phase,
        make: impl Fn(SocketAddr, u32) -> TurnConfig,
    ) -> Result<TrafficReport, String> {
        let extra = [
            "--unauthorized-ratelimit-rps=0".to_owned(),
            "--kernel-offload=on".to_owned(),
            "--prometheus".to_owned(),
            format!("--prometheus-address={}", phase.server_ip),
            format!("--prometheus-port={METRICS_PORT}"),
        ];
        let server = ServerProc::start(
            phase,
            OURS_KERNEL,
            &self.bin,
            PORT,
            RELAY,
            &extra,
            &self.logdir,
        )?;
        let metrics = SocketAddr::new(phase.server_ip, METRICS_PORT);
        let mut warm = make(server.addr, server.pid());
        warm.duration = Duration::from_secs(1);
        warm.user = "bench-kwarm".into();
        let _ = turn::run(&warm);
        let before = figures(metrics)?;
        let mut report = turn::run(&make(server.addr, server.pid()))?;
        let after = figures(metrics)?;
        report.bpf_cpu_s = Some((after.program_s - before.program_s).max(0.0));
        report.kernel_relayed = Some(after.relayed.saturating_sub(before.relayed));
        Ok(report)
    }
}

/// Reads the fast path's figures from the server's exporter.
fn figures(metrics: SocketAddr) -> Result<Figures, String> {
    let mut stream = TcpStream::connect_timeout(&metrics, Duration::from_secs(5))
        .map_err(|e| format!("exporter {metrics}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| format!("exporter: {e}"))?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .map_err(|e| format!("exporter: {e}"))?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| format!("exporter: {e}"))?;
    parse(&text)
}

fn parse(text: &str) -> Result<Figures, String> {
    let value = |series: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    };
    if value("turn_offload_active") != Some(1.0) {
        return Err("the server's kernel fast path is not active (turn_offload_active)".into());
    }
    let relayed = ["client_to_peer", "peer_to_client"]
        .iter()
        .filter_map(|d| {
            value(&format!(
                "turn_offload_relayed_packets_total{{direction=\"{d}\"}}"
            ))
        })
        .sum::<f64>();
    Ok(Figures {
        program_s: value("turn_offload_program_run_seconds_total").unwrap_or(0.0),
        relayed: relayed as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_exporter() {
        let doc = "HTTP/1.1 200 OK\r\n\r\n# TYPE turn_offload_active gauge\n\
                   turn_offload_active 1\n\
                   turn_offload_relayed_packets_total{direction=\"client_to_peer\"} 10\n\
                   turn_offload_relayed_packets_total{direction=\"peer_to_client\"} 7\n\
                   turn_offload_program_run_seconds_total 0.25\n";
        let f = parse(doc).unwrap();
        assert_eq!(f.relayed, 17);
        assert!((f.program_s - 0.25).abs() < 1e-12);
        assert!(parse("turn_offload_active 0\n").is_err());
    }
}
