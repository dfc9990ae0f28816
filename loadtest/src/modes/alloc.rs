//! `alloc` mode: allocations at a target rate up to a target count, held (refreshed when
//! the hold outlasts half their lifetime), then deleted. Reports allocations per second,
//! latency, failures, and the server's RSS growth per allocation from /proc.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::args::{Args, parse_duration};
use crate::client::{self, Session};
use crate::modes::turn::{credentials, deallocate_all};
use crate::procfs;
use crate::report::{AllocReport, AllocSummary, Progress};
use crate::stats::Histogram;

/// Most allocations one run may hold (one client socket each).
pub const MAX_COUNT: u64 = 50_000;
const MAX_HOLD: Duration = Duration::from_secs(3600);
/// Pause before reading RSS, so the server has finished the last requests' work.
const SETTLE: Duration = Duration::from_millis(500);

/// Everything an `alloc` run needs.
#[derive(Debug, Clone)]
pub struct AllocConfig {
    /// The TURN server.
    pub server: SocketAddr,
    /// TURN REST shared secret.
    pub secret: String,
    /// User id prefix.
    pub user: String,
    /// Allocations to make.
    pub count: u64,
    /// Allocation starts per second (0: as fast as the window allows).
    pub rate: u64,
    /// Allocations in flight at most.
    pub window: usize,
    /// How long to hold them all.
    pub hold: Duration,
    /// LIFETIME to ask for (server default when `None`).
    pub lifetime: Option<u32>,
    /// Refresh this often while holding (default: half the granted lifetime).
    pub refresh_every: Option<Duration>,
    /// Server process for RSS and CPU.
    pub server_pid: Option<u32>,
    /// Print the progress line.
    pub progress: bool,
}

/// Flags of `alloc` mode, for `--help`.
pub const HELP: &str = "\
loadtest alloc --secret S [--server 127.0.0.1:3478] [--count 1000] [--rate 0] [--window 64]
               [--hold 5s] [--lifetime SECONDS] [--refresh-every DURATION]
               [--user loadtest] [--server-pid PID] [--json FILE] [--allow-remote]
  --rate 0 allocates as fast as --window allows. Allocations are refreshed at half their
  granted lifetime; servers grant at least 600 s (RFC 5766 §6.2), so holds under 300 s
  never refresh unless --refresh-every (at most half the lifetime) asks for more. The
  server's RSS is read after each refresh round (a soak: --count 10000
  --hold 10m, docs/benchmarks.md).";

impl AllocConfig {
    /// Reads the flags of `alloc` mode.
    pub fn from_args(a: &Args) -> Result<Self, String> {
        crate::modes::udp_only(&a.get("transport", "udp".to_string())?)?;
        let server = crate::modes::target(
            &a.get("server", "127.0.0.1:3478".to_string())?,
            a.flag("allow-remote"),
        )?;
        let cfg = Self {
            server,
            secret: a
                .opt("secret")?
                .ok_or("--secret is required (the server's static-auth-secret)")?,
            user: a.get("user", "loadtest".to_string())?,
            count: a.get("count", 1000)?,
            rate: a.get("rate", 0)?,
            window: a.get("window", 64)?,
            hold: parse_duration(&a.get("hold", "5s".to_string())?)?,
            lifetime: a.opt("lifetime")?,
            refresh_every: a
                .opt::<String>("refresh-every")?
                .map(|d| parse_duration(&d))
                .transpose()?,
            server_pid: a.opt("server-pid")?,
            progress: true,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the hard caps.
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 || self.count > MAX_COUNT {
            return Err(format!("--count must be 1..={MAX_COUNT}"));
        }
        if self.window == 0 || self.window > 4096 {
            return Err("--window must be 1..=4096".into());
        }
        if self.rate > 1_000_000 {
            return Err("--rate must be at most 1000000 per second".into());
        }
        if self.hold > MAX_HOLD {
            return Err("--hold must be at most 1 h".into());
        }
        if matches!(self.lifetime, Some(l) if l < 30) {
            return Err("--lifetime must be at least 30 s".into());
        }
        if matches!(self.refresh_every, Some(every) if every < Duration::from_secs(1)) {
            return Err("--refresh-every must be at least 1 s".into());
        }
        if let Some(pid) = self.server_pid {
            procfs::check_pid(pid)?;
        }
        Ok(())
    }
}

/// Runs an `alloc` load and returns the report.
pub fn run(cfg: &AllocConfig) -> Result<AllocReport, String> {
    crate::modes::ensure_fds(cfg.count + 64)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: &AllocConfig) -> Result<AllocReport, String> {
    let pid = cfg.server_pid;
    let rss = move || pid.and_then(|p| procfs::rss_kib(p).ok());
    let cpu = move || pid.and_then(|p| procfs::process_cpu_seconds(p).ok());
    let creds = credentials(&cfg.secret, &cfg.user, cfg.count as usize, cfg.hold);
    let rss_before = rss();
    let cpu_before = cpu();
    let live = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(std::sync::Mutex::new(vec![(0u64, rss_before.unwrap_or(0))]));
    let progress = cfg.progress.then(|| {
        let (live, failed) = (live.clone(), failed.clone());
        let target = cfg.count;
        Progress::start(move |t| {
            format!(
                "[alloc] {:>4.0}s live {} of {target}, failed {}{}",
                t.as_secs_f64(),
                live.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed),
                rss().map_or(String::new(), |r| format!(", server RSS {r} KiB"))
            )
        })
    });
    // RSS samples for the chart, every 100 ms while allocating.
    let sampler = {
        let (live, samples) = (live.clone(), samples.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                if let (Some(r), Ok(mut s)) = (rss(), samples.lock()) {
                    s.push((live.load(Ordering::Relaxed), r));
                }
            }
        })
    };
    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(cfg.window));
    let mut set = JoinSet::new();
    for (i, cred) in creds.into_iter().enumerate() {
        if cfg.rate > 0 {
            let at = started + Duration::from_secs_f64(i as f64 / cfg.rate as f64);
            tokio::time::sleep_until(at.into()).await;
        }
        let Ok(permit) = sem.clone().acquire_owned().await else {
            return Err("allocation window closed".into());
        };
        let (server, lifetime) = (cfg.server, cfg.lifetime);
        let (live, failed) = (live.clone(), failed.clone());
        set.spawn(async move {
            let r = client::allocate(server, &cred, lifetime).await;
            drop(permit);
            match &r {
                Ok(_) => live.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
            };
            (r, Instant::now())
        });
    }
    let mut sessions: Vec<Session> = Vec::new();
    let mut latency = Histogram::default();
    let mut failures = BTreeMap::new();
    let mut last_ok = started;
    while let Some(res) = set.join_next().await {
        match res {
            Ok((Ok((s, lat)), at)) => {
                latency.record(lat.as_micros() as u64);
                sessions.push(s);
                last_ok = last_ok.max(at);
            }
            Ok((Err(f), _)) => *failures.entry(format!("allocate:{f}")).or_insert(0) += 1,
            Err(_) => *failures.entry("allocate:task-panicked".into()).or_insert(0) += 1,
        }
    }
    let alloc_secs = (last_ok - started).as_secs_f64().max(1e-6);
    let cpu_alloc = cpu();
    tokio::time::sleep(SETTLE).await;
    sampler.abort();
    let rss_held = rss();
    if let (Some(r), Ok(mut s)) = (rss_held, samples.lock()) {
        s.push((sessions.len() as u64, r));
    }
    // Hold, refreshing at half the shortest granted lifetime; RSS after each round.
    let (mut refreshes, mut refresh_failed) = (0u64, 0u64);
    let hold_start = Instant::now();
    let hold_end = hold_start + cfg.hold;
    let mut rss_refresh_kib = Vec::new();
    loop {
        let lifetime = sessions
            .iter()
            .map(|s| s.lifetime)
            .min()
            .unwrap_or(600)
            .max(30);
        let half = Duration::from_secs(u64::from(lifetime) / 2);
        let every = cfg.refresh_every.map_or(half, |every| every.min(half));
        let next_refresh = Instant::now() + every;
        if next_refresh >= hold_end {
            tokio::time::sleep_until(hold_end.into()).await;
            break;
        }
        tokio::time::sleep_until(next_refresh.into()).await;
        let (ok, bad, kept) = refresh_all(sessions, cfg.window, lifetime, &mut failures).await;
        refreshes += ok + bad;
        refresh_failed += bad;
        sessions = kept;
        if let Some(r) = rss() {
            rss_refresh_kib.push((hold_start.elapsed().as_secs_f64(), r));
        }
    }
    drop(progress);
    let ok = latency.count();
    let deallocated = deallocate_all(sessions, cfg.window, &mut failures).await;
    tokio::time::sleep(SETTLE).await;
    let rss_after = rss();
    let rss_per_alloc_bytes = match (rss_before, rss_held) {
        (Some(b), Some(h)) if ok > 0 => Some((h as f64 - b as f64) * 1024.0 / ok as f64),
        _ => None,
    };
    let rss_samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(AllocReport {
        server: cfg.server.to_string(),
        target: cfg.count,
        rate: cfg.rate,
        window: cfg.window,
        hold_s: cfg.hold.as_secs_f64(),
        allocations: AllocSummary {
            requested: cfg.count,
            ok,
            failed: cfg.count - ok,
            per_s: ok as f64 / alloc_secs,
            latency_ms: latency.summary(1e-3),
        },
        refreshes,
        refresh_failed,
        deallocated,
        failures,
        rss_before_kib: rss_before,
        rss_held_kib: rss_held,
        rss_after_kib: rss_after,
        rss_per_alloc_bytes,
        rss_samples,
        rss_refresh_kib,
        server_cpu_s: cpu_before.zip(cpu_alloc).map(|(b, a)| a - b),
    })
}

/// Refreshes every session; returns `(ok, failed, sessions still alive)`.
async fn refresh_all(
    sessions: Vec<Session>,
    window: usize,
    lifetime: u32,
    failures: &mut BTreeMap<String, u64>,
) -> (u64, u64, Vec<Session>) {
    let sem = Arc::new(Semaphore::new(window));
    let mut set = JoinSet::new();
    for mut s in sessions {
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = s.refresh(lifetime).await;
            (r, s)
        });
    }
    let (mut ok, mut bad, mut kept) = (0, 0, Vec::new());
    while let Some(res) = set.join_next().await {
        match res {
            Ok((Ok(()), s)) => {
                ok += 1;
                kept.push(s);
            }
            Ok((Err(f), _)) => {
                bad += 1;
                *failures.entry(format!("refresh:{f}")).or_insert(0) += 1;
            }
            Err(_) => bad += 1,
        }
    }
    (ok, bad, kept)
}
