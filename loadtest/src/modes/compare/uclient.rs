//! coturn's own `turnutils_uclient` against both servers, and what it printed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::{CompareConfig, SECRET, UCLIENT_TIMEOUT};
use super::server::ServerProc;
use crate::procfs;

/// What `turnutils_uclient` printed at the end of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct UclientResult {
    pub(super) sent: u64,
    pub(super) received: u64,
    pub(super) lost_pct: f64,
    pub(super) avg_rtt_ms: f64,
    pub(super) max_rtt_ms: f64,
    pub(super) transmit_s: f64,
    pub(super) server_cpu_s: Option<f64>,
    pub(super) relayed_per_server_cpu_s: Option<f64>,
    pub(super) exit: String,
}

pub(super) fn uclient_runs(
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

pub(super) fn one_uclient(
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

pub(super) fn number_after<T: std::str::FromStr>(line: &str, key: &str) -> Option<T> {
    let rest = &line[line.find(key)? + key.len()..];
    let token: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    token.parse().ok()
}

/// Reads the summary lines `turnutils_uclient` prints at the end of a run.
pub(super) fn parse_uclient(text: &str) -> UclientResult {
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
}
