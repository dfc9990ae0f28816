//! `jwt` mode: concurrent `POST /get_token` requests against lk-jwt-service, each
//! client on its own keep-alive connection, with loadtest's fake HTTPS homeserver
//! answering the service's OpenID userinfo calls. Reports requests per second, latency
//! percentiles, errors by HTTP status and errcode, service CPU per request and how many
//! requests reached the homeserver (fewer than requests means the service cached).
//!
//! The users are restricted (their homeserver is not in `LIVEKIT_FULL_ACCESS_HOMESERVERS`),
//! so the service never calls the SFU; a full-access run would need a fake SFU.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::args::{Args, parse_duration};
use crate::homeserver::FakeHomeserver;
use crate::procfs;
use crate::report::Progress;
use crate::stats::{Histogram, Percentiles};

/// Hard caps that keep every run bounded.
const MAX_CONCURRENCY: usize = 1024;
const MAX_DURATION: Duration = Duration::from_secs(600);
const MAX_REQUESTS: u64 = 100_000_000;
/// A request unanswered this long is written off as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a spawned service may take to start listening.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(15);
/// The room every client joins.
const ROOM_ID: &str = "!loadtest-room:loadtest.invalid";
/// The LiveKit key and secret a spawned service signs with (loopback benchmark only).
const SPAWN_KEY: &str = "loadtest";
const SPAWN_SECRET: &str = "loadtest-secret-only-for-a-loopback-benchmark";

/// Flags of `jwt` mode, for `--help`.
pub const HELP: &str = "\
loadtest jwt (--spawn PATH | --service http://127.0.0.1:PORT [--service-pid PID])
             [--concurrency 16] [--duration 5s] [--warmup 1s] [--requests 5000000]
             [--fresh-tokens] [--service-log FILE] [--json FILE]
  --spawn starts that lk-jwt-service binary on a free loopback port with the settings this
  mode needs (its log is deleted afterwards unless --service-log names a file); an external --service must accept self-signed homeserver certificates
  (LIVEKIT_INSECURE_SKIP_VERIFY_TLS=YES_I_KNOW_WHAT_I_AM_DOING) and reach 127.0.0.1
  (LIVEKIT_PRIVATE_HOMESERVERS naming the homeserver printed at the start).
  Each client reuses one OpenID token unless --fresh-tokens gives every request a new
  one (then no service-side cache can answer for the homeserver). Loopback only.";

/// Which service to load.
#[derive(Debug, Clone)]
pub enum Service {
    /// Start this binary.
    Spawn(PathBuf),
    /// An already running service.
    Running {
        /// Its listener.
        addr: SocketAddr,
        /// Its process, for CPU and RSS.
        pid: Option<u32>,
    },
}

/// Everything a `jwt` run needs.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The service.
    pub service: Service,
    /// Clients, each with one connection and one request in flight.
    pub concurrency: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it (connections, pools and caches warm up).
    pub warmup: Duration,
    /// Most requests sent in the measured time.
    pub max_requests: u64,
    /// A new OpenID token for every request.
    pub fresh_tokens: bool,
    /// Where a spawned service logs (default: a file in the temp directory).
    pub service_log: Option<PathBuf>,
    /// Print the progress line.
    pub progress: bool,
}

impl JwtConfig {
    /// Reads the flags of `jwt` mode.
    pub fn from_args(a: &Args) -> Result<Self, String> {
        let spawn: Option<PathBuf> = a.opt("spawn")?;
        let url: Option<String> = a.opt("service")?;
        let pid: Option<u32> = a.opt("service-pid")?;
        let service = match (spawn, url) {
            (Some(path), None) if pid.is_none() => Service::Spawn(path),
            (Some(_), None) => return Err("--service-pid goes with --service, not --spawn".into()),
            (None, Some(url)) => Service::Running {
                addr: service_addr(&url)?,
                pid,
            },
            _ => return Err("give exactly one of --spawn PATH and --service URL".into()),
        };
        let cfg = Self {
            service,
            concurrency: a.get("concurrency", 16)?,
            duration: parse_duration(&a.get("duration", "5s".to_string())?)?,
            warmup: parse_duration(&a.get("warmup", "1s".to_string())?)?,
            max_requests: a.get("requests", 5_000_000)?,
            fresh_tokens: a.flag("fresh-tokens"),
            service_log: a.opt("service-log")?,
            progress: true,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the hard caps.
    pub fn validate(&self) -> Result<(), String> {
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(format!("--concurrency must be 1..={MAX_CONCURRENCY}"));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err("--duration must be between 1 ms and 10 min".into());
        }
        if self.warmup > MAX_DURATION {
            return Err("--warmup must be at most 10 min".into());
        }
        if self.max_requests == 0 || self.max_requests > MAX_REQUESTS {
            return Err(format!("--requests must be 1..={MAX_REQUESTS}"));
        }
        match &self.service {
            Service::Spawn(path) if !path.exists() => Err(format!(
                "--spawn {}: no such file (cargo build --release -p lk-jwt-service)",
                path.display()
            )),
            Service::Running { pid: Some(pid), .. } => procfs::check_pid(*pid),
            _ => Ok(()),
        }
    }
}

/// `http://IP:PORT[/]` on loopback: the fake homeserver only listens there, so a remote
/// service could not reach it anyway.
fn service_addr(url: &str) -> Result<SocketAddr, String> {
    let bad = || format!("--service {url:?}: expected http://127.0.0.1:PORT");
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let addr: SocketAddr = rest.trim_end_matches('/').parse().map_err(|_| bad())?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--service {addr} is not a loopback address; the jwt mode loads loopback only"
        ));
    }
    Ok(addr)
}

/// The result of a `jwt` run (also the `--json` output).
#[derive(Debug, Clone, Default, Serialize)]
pub struct JwtReport {
    /// The service's listener.
    pub service: String,
    /// Whether loadtest started the service.
    pub spawned: bool,
    /// Concurrent clients.
    pub concurrency: usize,
    /// `per-client` (one OpenID token per client) or `fresh` (one per request).
    pub tokens: String,
    /// Measured seconds (until the last answer).
    pub duration_s: f64,
    /// Requests answered (any status) or failed in transport.
    pub requests: u64,
    /// `200` answers holding a LiveKit JWT.
    pub ok: u64,
    /// Requests that did not give a token, by `http-<status> <errcode>` or transport cause.
    pub errors: BTreeMap<String, u64>,
    /// Successful requests per second.
    pub ok_per_s: f64,
    /// Latency of successful requests, ms.
    pub latency_ms: Percentiles,
    /// Service CPU seconds (utime + stime) in the measured time.
    pub service_cpu_s: Option<f64>,
    /// Service CPU per request, ms.
    pub service_cpu_ms_per_request: Option<f64>,
    /// Service CPU use, percent of one core.
    pub service_cpu_pct: Option<f64>,
    /// Service RSS at the end, KiB.
    pub service_rss_kib: Option<u64>,
    /// Userinfo requests the fake homeserver answered in the measured time.
    pub homeserver_requests: u64,
    /// Connections the service opened to the fake homeserver, warm-up included.
    pub homeserver_connections: u64,
}

impl JwtReport {
    /// Table rows for the end-of-run summary.
    pub fn rows(&self) -> Vec<(String, String)> {
        let opt = |v: Option<f64>, d: usize| v.map_or_else(|| "-".into(), |v| format!("{v:.d$}"));
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            (
                "service".into(),
                format!(
                    "{}{}",
                    self.service,
                    if self.spawned { " (spawned)" } else { "" }
                ),
            ),
            (
                "load".into(),
                format!(
                    "{} clients, {} tokens, {:.1} s",
                    self.concurrency, self.tokens, self.duration_s
                ),
            ),
            (
                "requests".into(),
                format!("{} ({} ok)", self.requests, self.ok),
            ),
            ("ok req/s".into(), format!("{:.0}", self.ok_per_s)),
            (
                "latency ms".into(),
                format!(
                    "p50 {:.3}  p99 {:.3}  max {:.3}",
                    self.latency_ms.p50, self.latency_ms.p99, self.latency_ms.max
                ),
            ),
            ("errors".into(), errors),
            (
                "service CPU".into(),
                format!(
                    "{} s ({} % of a core)",
                    opt(self.service_cpu_s, 2),
                    opt(self.service_cpu_pct, 0)
                ),
            ),
            (
                "service CPU per request".into(),
                format!("{} ms", opt(self.service_cpu_ms_per_request, 4)),
            ),
            (
                "service RSS".into(),
                self.service_rss_kib
                    .map_or_else(|| "-".into(), |k| format!("{k} KiB")),
            ),
            (
                "homeserver userinfo calls".into(),
                format!(
                    "{} (over {} connections, warm-up included)",
                    self.homeserver_requests, self.homeserver_connections
                ),
            ),
        ]
    }
}

/// A service loadtest started; killed when dropped.
pub struct SpawnedService {
    child: Child,
    /// Its listener.
    pub addr: SocketAddr,
    /// A log nobody asked for, removed with the service: at one line per request, a
    /// benchmark run writes tens of megabytes.
    scratch_log: Option<PathBuf>,
}

impl SpawnedService {
    /// Starts `bin` on a free loopback port and waits until it accepts connections. The
    /// fake homeserver `homeserver` (a server name) lives on loopback, which the service
    /// reaches only for homeservers it is told about (`LIVEKIT_PRIVATE_HOMESERVERS`).
    pub fn start(
        bin: &std::path::Path,
        log: Option<&std::path::Path>,
        homeserver: &str,
    ) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_path = log.map_or_else(
            || std::env::temp_dir().join(format!("loadtest-jwt-{}-{port}.log", std::process::id())),
            std::path::Path::to_path_buf,
        );
        let log_file = std::fs::File::create(&log_path)
            .map_err(|e| format!("service log {}: {e}", log_path.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("service log: {e}"))?;
        // A clean environment, so a LIVEKIT_* variable of the caller's shell (Redis, key
        // files) cannot change what is measured. The SFU URL points at a closed port: a
        // restricted user's token never needs it (the start-up probe logs one warning).
        let child = Command::new(bin)
            .env_clear()
            .env("LIVEKIT_URL", "ws://127.0.0.1:9")
            .env("LIVEKIT_KEY", SPAWN_KEY)
            .env("LIVEKIT_SECRET", SPAWN_SECRET)
            .env("LIVEKIT_FULL_ACCESS_HOMESERVERS", "full-access.invalid")
            .env("LIVEKIT_PRIVATE_HOMESERVERS", homeserver)
            .env("LIVEKIT_JWT_BIND", addr.to_string())
            .env(
                "LIVEKIT_INSECURE_SKIP_VERIFY_TLS",
                "YES_I_KNOW_WHAT_I_AM_DOING",
            )
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        // The log stays if the service fails to start: the error points at it.
        let mut service = Self {
            child,
            addr,
            scratch_log: None,
        };
        let deadline = Instant::now() + SPAWN_TIMEOUT;
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = service.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before listening; see {}",
                    bin.display(),
                    log_path.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {addr} within {SPAWN_TIMEOUT:?}; see {}",
                    bin.display(),
                    log_path.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        service.scratch_log = log.is_none().then_some(log_path);
        Ok(service)
    }

    /// The service's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SpawnedService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(log) = &self.scratch_log {
            let _ = std::fs::remove_file(log);
        }
    }
}

/// Counters the progress line reads.
#[derive(Debug, Default)]
struct Live {
    started: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    requests: u64,
    ok: u64,
    latency_us: Histogram,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_insert(0) += 1;
    }

    fn merge(&mut self, other: Self) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.latency_us.merge(&other.latency_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
    }
}

/// The next fresh token's number, unique in this process.
static FRESH_SERIAL: AtomicU64 = AtomicU64::new(1);

/// The request of client `user`, number `serial`.
fn body(hs: &FakeHomeserver, user: usize, serial: u64) -> String {
    format!(
        r#"{{"room_id":"{ROOM_ID}","slot_id":"m.call#ROOM","openid_token":{{"access_token":"{}","token_type":"Bearer","matrix_server_name":"{}","expires_in":3600}},"member":{{"id":"member-{user}","claimed_user_id":"{}","claimed_device_id":"LOADTEST"}}}}"#,
        FakeHomeserver::token(user, serial),
        hs.server_name,
        hs.user_id(user)
    )
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The answer's status and body, or a transport failure.
async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    host: &str,
    body: String,
) -> Result<(StatusCode, Bytes), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let request = Request::post("/get_token")
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("transport: {e}"))?
        .to_bytes();
    Ok((status, bytes))
}

/// `None` for a good token answer, else the error key.
fn classify(status: StatusCode, body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        jwt: Option<String>,
        url: Option<String>,
        errcode: Option<String>,
    }
    let answer = serde_json::from_slice::<Answer>(body).ok();
    if status == StatusCode::OK {
        let good = answer
            .is_some_and(|a| a.url.is_some() && a.jwt.is_some_and(|j| j.split('.').count() == 3));
        return (!good).then(|| "http-200 without a JWT".into());
    }
    let errcode = answer.and_then(|a| a.errcode).unwrap_or_default();
    Some(
        format!("http-{} {errcode}", status.as_u16())
            .trim_end()
            .to_string(),
    )
}

/// Shared by every client of one phase.
struct Phase {
    addr: SocketAddr,
    host: String,
    deadline: Instant,
    max_requests: u64,
    fresh_tokens: bool,
    live: Arc<Live>,
}

/// One client: one connection (re-opened after a transport failure), one request in
/// flight, until the deadline or the shared request cap.
async fn client(phase: Arc<Phase>, hs: Arc<FakeHomeserver>, user: usize) -> Tally {
    let mut tally = Tally::default();
    let mut sender = None;
    while Instant::now() < phase.deadline
        && phase.live.started.fetch_add(1, Ordering::Relaxed) < phase.max_requests
    {
        let conn = match sender.as_mut() {
            Some(conn) => conn,
            None => match connect(phase.addr).await {
                Ok(conn) => sender.insert(conn),
                Err(e) => {
                    tally.requests += 1;
                    tally.error(e);
                    phase.live.failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // Fresh tokens are numbered across phases, so the measured phase never repeats a
        // token the warm-up made the service cache.
        let serial = if phase.fresh_tokens {
            FRESH_SERIAL.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let request = body(&hs, user, serial);
        let started = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, post(conn, &phase.host, request)).await;
        tally.requests += 1;
        let failure = match outcome {
            Ok(Ok((status, bytes))) => classify(status, &bytes),
            Ok(Err(e)) => {
                sender = None;
                Some(e)
            }
            Err(_) => {
                sender = None;
                Some("timeout".into())
            }
        };
        match failure {
            None => {
                tally.ok += 1;
                tally
                    .latency_us
                    .record(started.elapsed().as_micros() as u64);
                phase.live.ok.fetch_add(1, Ordering::Relaxed);
            }
            Some(e) => {
                tally.error(e);
                phase.live.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    tally
}

/// Runs `concurrency` clients for `duration` (at most `max_requests`) and merges them.
fn drive(
    rt: &tokio::runtime::Runtime,
    cfg: &JwtConfig,
    hs: &Arc<FakeHomeserver>,
    addr: SocketAddr,
    duration: Duration,
    live: Arc<Live>,
) -> Tally {
    let phase = Arc::new(Phase {
        addr,
        host: addr.to_string(),
        deadline: Instant::now() + duration,
        max_requests: cfg.max_requests,
        fresh_tokens: cfg.fresh_tokens,
        live,
    });
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for user in 0..cfg.concurrency {
            set.spawn(client(phase.clone(), hs.clone(), user));
        }
        let mut total = Tally::default();
        while let Some(done) = set.join_next().await {
            match done {
                Ok(tally) => total.merge(tally),
                Err(_) => total.error("client task panicked".into()),
            }
        }
        total
    })
}

/// Runs a `jwt` load and returns the report.
pub fn run(cfg: &JwtConfig) -> Result<JwtReport, String> {
    crate::modes::ensure_fds(cfg.concurrency as u64 * 2 + 64)?;
    let hs = Arc::new(FakeHomeserver::start()?);
    let mut spawned = None;
    let (addr, pid) = match &cfg.service {
        Service::Spawn(bin) => {
            let log = cfg.service_log.as_deref();
            let service = spawned.insert(SpawnedService::start(bin, log, &hs.server_name)?);
            (service.addr, Some(service.pid()))
        }
        Service::Running { addr, pid } => (*addr, *pid),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    if cfg.progress {
        eprintln!(
            "[jwt] {} clients against {addr}, homeserver {}",
            cfg.concurrency, hs.server_name
        );
    }
    if !cfg.warmup.is_zero() {
        drive(&rt, cfg, &hs, addr, cfg.warmup, Arc::default());
    }
    let live = Arc::new(Live::default());
    let progress = cfg.progress.then(|| progress_line(live.clone(), pid));
    let hs_before = hs.requests();
    let cpu_before = pid.and_then(|p| procfs::process_cpu_seconds(p).ok());
    let started = Instant::now();
    let tally = drive(&rt, cfg, &hs, addr, cfg.duration, live);
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let cpu_after = pid.and_then(|p| procfs::process_cpu_seconds(p).ok());
    drop(progress);
    let service_cpu_s = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    Ok(JwtReport {
        service: format!("http://{addr}"),
        spawned: spawned.is_some(),
        concurrency: cfg.concurrency,
        tokens: if cfg.fresh_tokens {
            "fresh"
        } else {
            "per-client"
        }
        .into(),
        duration_s: wall,
        requests: tally.requests,
        ok: tally.ok,
        ok_per_s: tally.ok as f64 / wall,
        latency_ms: tally.latency_us.summary(1e-3),
        errors: tally.errors,
        service_cpu_ms_per_request: service_cpu_s
            .filter(|_| tally.requests > 0)
            .map(|c| 1e3 * c / tally.requests as f64),
        service_cpu_pct: service_cpu_s.map(|c| 100.0 * c / wall),
        service_cpu_s,
        service_rss_kib: pid.and_then(|p| procfs::rss_kib(p).ok()),
        homeserver_requests: hs.requests() - hs_before,
        homeserver_connections: hs.connections(),
    })
}

fn progress_line(live: Arc<Live>, pid: Option<u32>) -> Progress {
    let state =
        std::sync::Mutex::new((0u64, pid.and_then(|p| procfs::process_cpu_seconds(p).ok())));
    Progress::start(move |t| {
        let ok = live.ok.load(Ordering::Relaxed);
        let failed = live.failed.load(Ordering::Relaxed);
        let cpu = pid.and_then(|p| procfs::process_cpu_seconds(p).ok());
        let Ok(mut prev) = state.lock() else {
            return format!("[jwt] {:>4.0}s", t.as_secs_f64());
        };
        let cpu_txt = match (cpu, prev.1) {
            (Some(now), Some(before)) => format!(" service cpu {:>3.0}%", (now - before) * 100.0),
            _ => String::new(),
        };
        let line = format!(
            "[jwt] {:>4.0}s ok {:>7}/s total ok {ok} errors {failed}{cpu_txt}",
            t.as_secs_f64(),
            ok - prev.0,
        );
        *prev = (ok, cpu);
        line
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_are_loopback_http() {
        assert_eq!(
            service_addr("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(service_addr("http://[::1]:8080").is_ok());
        assert!(service_addr("https://127.0.0.1:8080").is_err());
        assert!(service_addr("http://localhost:8080").is_err());
        assert!(
            service_addr("http://192.0.2.1:8080")
                .unwrap_err()
                .contains("loopback")
        );
    }

    #[test]
    fn answers_are_classified() {
        let ok = br#"{"url":"ws://sfu","jwt":"a.b.c"}"#;
        assert_eq!(classify(StatusCode::OK, ok), None);
        assert_eq!(
            classify(StatusCode::OK, br#"{"url":"ws://sfu","jwt":"nope"}"#).as_deref(),
            Some("http-200 without a JWT")
        );
        assert_eq!(
            classify(
                StatusCode::UNAUTHORIZED,
                br#"{"errcode":"M_UNAUTHORIZED","error":"x"}"#
            )
            .as_deref(),
            Some("http-401 M_UNAUTHORIZED")
        );
        assert_eq!(
            classify(StatusCode::BAD_GATEWAY, b"<html>").as_deref(),
            Some("http-502")
        );
    }
}
