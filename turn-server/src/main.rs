//! `turn-server`: a coturn-compatible TURN/STUN relay. Takes coturn's command line and
//! `turnserver.conf`; `--check-config` prints the effective configuration;
//! `turn-server healthcheck [options]` probes a running server for container health checks.
//!
//! Signals (docs/operations.md): SIGHUP reloads the configuration and the certificate,
//! SIGUSR2 the certificate, SIGUSR1 drains, SIGTERM/SIGINT stop.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use rtc_auth::secret::Secret;
use turn_server::clock::unix_now;
use turn_server::config::{self, Action, AuthMode, ConfigError, Host, SearchPath, SystemHost};
use turn_server::control::{self, ClientLimits, Listeners, MetricsListener, Operations, Reloaded};
use turn_server::healthcheck;
use turn_server::io::device;
use turn_server::io::relay::{RelayRange, parked_per_shard};
use turn_server::io::relay_ports::RelayPorts;
use turn_server::io::tls::TlsFiles;
use turn_server::metrics::http as metrics_http;
use turn_server::startup::core_config::{core_config, host_addresses};
use turn_server::startup::{embedded_default, kernel_offload, logging};

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let healthcheck = args.first().is_some_and(|first| first == "healthcheck");
    if healthcheck {
        args.remove(0);
    }
    let loaded = config::load(args.clone());
    if healthcheck {
        return match loaded {
            Ok(loaded) => run_healthcheck(&loaded.config),
            Err(error) => {
                eprintln!("turn-server healthcheck: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let loaded = match loaded {
        Ok(loaded) if loaded.action == Action::CheckConfig => {
            let (offload, offload_ok) = check_offload(&loaded.config);
            let refused = refused_devices(&loaded.config);
            let report = config::check_report(&Ok(loaded), &SystemHost, &SearchPath::coturn());
            print!("{}", report.text);
            for line in &refused {
                println!("error: {line}");
            }
            if offload_ok {
                println!("{offload}");
            } else {
                println!("error: {offload}");
            }
            return if report.passed() && refused.is_empty() && offload_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Ok(loaded) => loaded,
        Err(ConfigError::Usage(diagnostic)) => {
            eprintln!("turn-server: {diagnostic}\n\n{}", config::usage());
            return ExitCode::from(2);
        }
        Err(error @ ConfigError::Invalid { .. }) => {
            let report = config::check_report(&Err(error), &SystemHost, &SearchPath::coturn());
            eprint!("{}", report.text);
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("turn-server: {error}");
            return ExitCode::FAILURE;
        }
    };
    match loaded.action {
        Action::Help => {
            print!("{}", config::usage());
            return ExitCode::SUCCESS;
        }
        Action::Version => {
            println!("turn-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    match run(loaded, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("turn-server: {error:#}");
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Probes the server the same options describe.
fn run_healthcheck(config: &config::Config) -> ExitCode {
    let target = healthcheck::target(config);
    match healthcheck::probe(target) {
        Ok(_) => {
            println!("turn-server at udp {target}: healthy");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("turn-server at udp {target}: unhealthy: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(loaded: config::Loaded, args: Vec<OsString>) -> anyhow::Result<()> {
    let mut config = loaded.config;
    let unix_now = unix_now();
    // Held to the end of `run`: the last lines (shutdown) are flushed when it drops.
    let (log_level, _flush, note) = logging::init(&config, unix_now)?;
    if let Some(note) = note {
        tracing::warn!("{note}");
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    match &loaded.config_file {
        Some(path) => tracing::info!(file = %path.display(), "configuration loaded"),
        None => tracing::info!("no configuration file"),
    }
    // Addresses and interfaces this machine lacks fail here with the line that names
    // them, as `--check-config` reports them, rather than at bind time (or never, for an
    // external-ip private half).
    let problems = config.check_host(&SystemHost);
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::bail!("{}", lines.join("\n"));
    }
    // A kernel that refuses SO_BINDTODEVICE (before 5.7, without CAP_NET_RAW) stops the
    // start here. coturn logs it per socket and runs unbound: traffic would leave by
    // other interfaces than the operator named.
    let refused = refused_devices(&config);
    if !refused.is_empty() {
        anyhow::bail!("{}", refused.join("\n"));
    }
    // Nothing configured: a random secret, and loopback unless told where to listen.
    let embedded = config.auth_mode() == AuthMode::Unconfigured;
    let generated = embedded.then(embedded_default::generate_secret);
    let ips = listen_ips(&config, embedded);
    let loopback_only = ips.iter().all(IpAddr::is_loopback);
    if embedded {
        embedded_default::apply(&mut config, loopback_only);
    }
    let tls = load_tls(&config)?;
    let udp: Vec<SocketAddr> = if config.no_udp {
        Vec::new()
    } else {
        ips.iter()
            .map(|ip| SocketAddr::new(*ip, config.listening_port))
            .collect()
    };
    let mut tcp: Vec<SocketAddr> = Vec::new();
    if !config.no_tcp {
        tcp.extend(
            ips.iter()
                .map(|ip| SocketAddr::new(*ip, config.listening_port)),
        );
    }
    if tls.is_some() {
        tcp.extend(
            ips.iter()
                .map(|ip| SocketAddr::new(*ip, config.tls_listening_port)),
        );
    }
    if udp.is_empty() && tcp.is_empty() {
        anyhow::bail!("no listener left: no-udp, no-tcp and no TLS certificate");
    }
    let proxied: Vec<SocketAddr> = match config.tcp_proxy_port {
        Some(port) => ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect(),
        None => Vec::new(),
    };
    let shards = shard_count(config.relay_threads, config.cpus);
    // Listener sockets carry many clients: four relay sockets' worth of buffer.
    let listener_buffer = 4 * config.relay_socket_buffer as usize;
    let proxy = (&proxied[..], config.proxy_sources());
    let clients = ClientLimits {
        total: config.max_tcp_clients,
        per_source: config.max_tcp_clients_per_ip,
        max_allocate_timeout: config.max_allocate_timeout,
    };
    let listeners = Listeners::bind(
        &udp,
        &tcp,
        proxy,
        (shards, listener_buffer),
        clients,
        config.listening_device.as_deref(),
    )?;
    let metrics = if config.prometheus {
        let ip = config
            .prometheus_address
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let address = SocketAddr::new(ip, config.prometheus_port);
        let listener = metrics_http::bind(address)?;
        tracing::info!(%address, path = %config.prometheus_path, "prometheus exporter");
        Some(MetricsListener {
            listener,
            path: config.prometheus_path.clone(),
            username_labels: config.prometheus_username_labels,
        })
    } else {
        None
    };
    let fast_path = kernel_offload::start(&config, &listeners.udp_addresses())?;
    let core = core_config(&config, generated.as_ref(), &host_addresses(&SystemHost));
    let realm = core.realm.clone();
    for address in listeners.udp_addresses() {
        tracing::info!(%address, "listening (udp)");
    }
    for address in listeners.tcp_addresses() {
        let kind = if address.port() == config.tls_listening_port && tls.is_some() {
            "tls (plain tcp accepted)"
        } else if tls.is_some() {
            "tcp (tls accepted)"
        } else {
            "tcp"
        };
        tracing::info!(%address, kind, "listening");
    }
    for address in listeners.proxied_addresses() {
        tracing::info!(%address, kind = "tcp behind a proxy (PROXY protocol v1/v2)", "listening");
    }
    if let Some(secret) = &generated {
        let first = SocketAddr::new(ips[0], config.listening_port);
        println!(
            "{}",
            embedded_default::banner(secret, first, loopback_only, &realm, unix_now)
        );
    }
    let relay = RelayRange {
        ips: config.relay_ips.clone(),
        min_port: config.min_port,
        max_port: config.max_port,
        socket_buffer: config.relay_socket_buffer as usize,
        max_parked: parked_per_shard(config.min_port, config.max_port, shards),
        device: config.relay_device.clone(),
        ports: RelayPorts::default(),
    };
    let operations = Operations {
        metrics,
        drain_timeout: config.drain_timeout,
        drain_min_allocations: config.drain_min_allocations as usize,
        reload: Box::new(
            Reloader {
                args,
                running: config,
                embedded,
                loopback_only,
                generated,
                log_level,
            }
            .into_fn(),
        ),
    };
    control::run(
        core,
        listeners,
        relay,
        tls,
        operations,
        fast_path,
        shutdown_signal(),
    )?;
    Ok(())
}

/// `listening-device` and `relay-device` settings this kernel will not bind a socket to,
/// one line each naming the option; interfaces the machine lacks are `check_host`'s to
/// report.
fn refused_devices(config: &config::Config) -> Vec<String> {
    [
        ("listening-device", &config.listening_device),
        ("relay-device", &config.relay_device),
    ]
    .into_iter()
    .filter_map(|(option, device)| {
        let name = device
            .as_deref()
            .filter(|name| SystemHost.has_interface(name))?;
        let error = device::probe(name).err()?;
        Some(format!("{option}={name}: {error}"))
    })
    .collect()
}

/// `--check-config`'s line on `kernel-offload` for the listeners `run` would bind; false
/// when the server would not start.
fn check_offload(config: &config::Config) -> (String, bool) {
    let embedded = config.auth_mode() == AuthMode::Unconfigured;
    let udp: Vec<SocketAddr> = if config.no_udp {
        Vec::new()
    } else {
        listen_ips(config, embedded)
            .into_iter()
            .map(|ip| SocketAddr::new(ip, config.listening_port))
            .collect()
    };
    kernel_offload::check(config, &udp)
}

/// `relay-threads`: shards to run. Unset: one per CPU (`cpus`, else those this process
/// may use), as coturn's default picks its thread count from the CPUs; 0 (coturn: relay
/// in the listener thread) and 1: one.
fn shard_count(relay_threads: Option<u32>, cpus: Option<u32>) -> usize {
    let wanted = match relay_threads.or(cpus) {
        None => std::thread::available_parallelism().map_or(1, usize::from),
        Some(count) => count.max(1) as usize,
    };
    if wanted > control::MAX_SHARDS {
        tracing::warn!(
            relay_threads = wanted,
            max = control::MAX_SHARDS,
            "relay-threads capped"
        );
    }
    wanted.min(control::MAX_SHARDS)
}

/// SIGHUP: the same command line (and so the same file) read again.
struct Reloader {
    args: Vec<OsString>,
    /// The configuration in force; options that need a restart keep these values.
    running: config::Config,
    embedded: bool,
    /// The embedded default listens on loopback only (its loopback peers stay open).
    loopback_only: bool,
    generated: Option<Secret>,
    log_level: logging::LogLevel,
}

impl Reloader {
    fn into_fn(mut self) -> impl FnMut() -> Option<Reloaded> {
        move || self.reload()
    }

    /// The new configuration, or None (logged) when it cannot be used; a bad file never
    /// touches the running configuration.
    fn reload(&mut self) -> Option<Reloaded> {
        tracing::info!("SIGHUP: reloading the configuration");
        let loaded = match config::load(self.args.clone()) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!("reload failed; keeping the running configuration: {error}");
                return None;
            }
        };
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let mut new = loaded.config;
        if self.embedded {
            embedded_default::apply(&mut new, self.loopback_only);
        }
        for key in self.running.needs_restart(&new) {
            tracing::warn!(
                option = key,
                "changed; needs restart: keeping the running value"
            );
        }
        // The relay addresses are bound: keep the running ones and their mappings.
        new.relay_ips = self.running.relay_ips.clone();
        new.external_ip = self.running.external_ip.clone();
        match self.log_level.set(new.verbosity) {
            Ok(true) => tracing::info!(verbosity = ?new.verbosity, "log level changed"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "log level unchanged"),
        }
        let search = SearchPath::coturn();
        let tls = match (search.find(&new.cert), search.find(&new.pkey)) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                tls13_only: new.no_tlsv1_2,
            }),
            _ => None,
        };
        let core = core_config(&new, self.generated.as_ref(), &host_addresses(&SystemHost));
        let reloaded = Reloaded {
            core,
            tls,
            drain_timeout: new.drain_timeout,
            drain_min_allocations: new.drain_min_allocations as usize,
        };
        self.running = new;
        Some(reloaded)
    }
}

/// `listening-ip` (one socket per address, as coturn); otherwise every address (IPv4
/// and, when the host has it, IPv6 wildcard), or loopback for the embedded default.
fn listen_ips(config: &config::Config, embedded: bool) -> Vec<IpAddr> {
    if !config.listening_ips.is_empty() {
        return config.listening_ips.clone();
    }
    if embedded {
        return vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    }
    let mut ips = vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
    if std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok() {
        ips.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }
    ips
}

/// The TLS listener's configuration: none with `no-tls`; none with a warning when the
/// default certificate files are absent; an error when configured files do not load.
fn load_tls(config: &config::Config) -> anyhow::Result<Option<control::Tls>> {
    if config.no_tls {
        return Ok(None);
    }
    let search = SearchPath::coturn();
    let (Some(cert), Some(key)) = (search.find(&config.cert), search.find(&config.pkey)) else {
        tracing::warn!(
            cert = %config.cert.display(),
            pkey = %config.pkey.display(),
            "TLS certificate or key not found: TLS listener not started"
        );
        return Ok(None);
    };
    if config.pkey_pwd.is_some() {
        anyhow::bail!("pkey-pwd: encrypted private keys are not supported; decrypt the key file");
    }
    let files = TlsFiles {
        cert,
        key,
        tls13_only: config.no_tlsv1_2,
    };
    let loaded = files.load()?;
    Ok(Some(control::Tls {
        files,
        config: loaded,
    }))
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process still stops on the default action.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
