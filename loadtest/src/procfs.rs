//! Server-side cost from /proc: CPU seconds (utime + stime) and resident memory, so
//! results can be given per server-CPU-second and per allocation.

use std::io;

/// Clock ticks per second for /proc/<pid>/stat times.
fn ticks_per_second() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

fn cpu_seconds_at(path: &str) -> io::Result<f64> {
    let text = std::fs::read_to_string(path)?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| io::Error::other(format!("{path}: no ')' in stat line")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let parse = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other(format!("{path}: bad field {}", i + 3)))
    };
    Ok((parse(11)? + parse(12)?) as f64 / ticks_per_second())
}

/// CPU seconds (user + system) a process has used, all threads included.
pub fn process_cpu_seconds(pid: u32) -> io::Result<f64> {
    cpu_seconds_at(&format!("/proc/{pid}/stat"))
}

/// CPU seconds this process has used (loadtest's clients and echo peer).
pub fn own_cpu_seconds() -> io::Result<f64> {
    cpu_seconds_at("/proc/self/stat")
}

/// The whole machine's time not spent working, read at one instant: with it, the CPU all
/// cores were busy between two readings is their wall time less the idle time, and the
/// kernel's work that no process is charged with (softirq run while a core idles, kernel
/// threads) is in it too. Idle and iowait come from /proc/stat, which a tickless kernel
/// measures at each idle entry and exit; its busy columns are sampled at the tick, which
/// misses most of a load paced in step with it.
#[derive(Debug, Clone, Copy)]
pub struct MachineIdle {
    /// Idle + iowait + steal seconds of all cores (steal: the hypervisor ran something else).
    idle_s: f64,
    /// Cores counted in /proc/stat.
    cores: usize,
    at: std::time::Instant,
}

impl MachineIdle {
    /// Reads /proc/stat now.
    pub fn read() -> io::Result<Self> {
        let text = std::fs::read_to_string("/proc/stat")?;
        let at = std::time::Instant::now();
        let (ticks, cores) = idle_ticks_and_cores(&text)?;
        Ok(Self {
            idle_s: ticks as f64 / ticks_per_second(),
            cores,
            at,
        })
    }

    /// CPU seconds all cores together were busy since `earlier`.
    pub fn busy_since(&self, earlier: &Self) -> f64 {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        let cores = self.cores.min(earlier.cores) as f64;
        (wall * cores - (self.idle_s - earlier.idle_s)).max(0.0)
    }
}

/// Idle + iowait + steal ticks of the `cpu` line and the number of `cpuN` lines.
fn idle_ticks_and_cores(text: &str) -> io::Result<(u64, usize)> {
    let fields: Vec<u64> = text
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .ok_or_else(|| io::Error::other("/proc/stat: no cpu line"))?
        .split_whitespace()
        .map(|f| f.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| io::Error::other(format!("/proc/stat: {e}")))?;
    // user nice system idle iowait irq softirq steal ...
    let [_, _, _, idle, iowait, _, _, steal, ..] = fields[..] else {
        return Err(io::Error::other("/proc/stat: short cpu line"));
    };
    let cores = text
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    if cores == 0 {
        return Err(io::Error::other("/proc/stat: no cpuN lines"));
    }
    Ok((idle + iowait + steal, cores))
}

/// CPU seconds of one thread of this process (for the in-process forwarder).
pub fn thread_cpu_seconds(tid: i32) -> io::Result<f64> {
    cpu_seconds_at(&format!("/proc/self/task/{tid}/stat"))
}

/// Resident set size in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path)?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other(format!("{path}: no VmRSS line")))
}

/// System-wide UDP drop counters from /proc/net/snmp: `(RcvbufErrors, SndbufErrors)`.
/// A delta over a run says whether packets died in a socket buffer (whose, it cannot
/// say; on a quiet loopback machine it is the server's, the peer's or loadtest's).
pub fn udp_buffer_errors() -> io::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/snmp")?;
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Err(io::Error::other("/proc/net/snmp: no Udp lines"));
    };
    let find = |name: &str| -> Option<u64> {
        let i = names.split_whitespace().position(|n| n == name)?;
        values.split_whitespace().nth(i)?.parse().ok()
    };
    match (find("RcvbufErrors"), find("SndbufErrors")) {
        (Some(r), Some(s)) => Ok((r, s)),
        _ => Err(io::Error::other("/proc/net/snmp: no buffer error counters")),
    }
}

/// This process's nice value (field 19 of /proc/self/stat); servers started by the
/// benchmark inherit it, so the report states it.
pub fn own_nice() -> io::Result<i64> {
    let text = std::fs::read_to_string("/proc/self/stat")?;
    text.rfind(')')
        .and_then(|i| text[i + 1..].split_whitespace().nth(16))
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::other("/proc/self/stat: no nice field"))
}

/// The calling thread's kernel id.
pub fn current_tid() -> i32 {
    nix::unistd::gettid().as_raw()
}

/// Checks that a `--server-pid` exists before the run, for a clear early error.
pub fn check_pid(pid: u32) -> Result<(), String> {
    process_cpu_seconds(pid)
        .map(drop)
        .map_err(|e| format!("--server-pid {pid}: cannot read /proc/{pid}/stat: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        let before = process_cpu_seconds(pid).unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed().as_millis() < 60 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(process_cpu_seconds(pid).unwrap() >= before);
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(thread_cpu_seconds(current_tid()).is_ok());
        assert!(check_pid(u32::MAX).is_err());
        assert!(udp_buffer_errors().is_ok());
        assert!((-20..=19).contains(&own_nice().unwrap()));
        let first = MachineIdle::read().unwrap();
        assert!(MachineIdle::read().unwrap().busy_since(&first) >= 0.0);
    }

    #[test]
    fn machine_idle_counts_idle_iowait_and_steal_of_every_core() {
        let stat = "cpu  10 2 30 1000 50 4 5 6 0 0\ncpu0 5 1 15 500 25 2 2 3 0 0\n\
                    cpu1 5 1 15 500 25 2 3 3 0 0\nintr 1 2 3\nctxt 9\n";
        assert_eq!(idle_ticks_and_cores(stat).unwrap(), (1000 + 50 + 6, 2));
        assert!(idle_ticks_and_cores("cpu  1 2 3\ncpu0 1 2 3\n").is_err());
        assert!(idle_ticks_and_cores("cpu0 1 2 3 4 5 6 7 8\n").is_err());
        assert!(idle_ticks_and_cores("cpu  1 2 x 4 5 6 7 8\n").is_err());
        assert!(idle_ticks_and_cores("cpu  1 2 3 4 5 6 7 8\n").is_err());
        let t = std::time::Instant::now();
        let earlier = MachineIdle {
            idle_s: 10.0,
            cores: 2,
            at: t,
        };
        let later = MachineIdle {
            idle_s: 11.5,
            cores: 2,
            at: t + std::time::Duration::from_secs(2),
        };
        // 2 cores × 2 s, of which 1.5 s idle: 2.5 s busy.
        assert!((later.busy_since(&earlier) - 2.5).abs() < 1e-9);
    }
}
