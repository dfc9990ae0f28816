//! `lk-jwt-service` (serve), `lk-jwt-service healthcheck` (probe `/healthz`),
//! `lk-jwt-service doctor <server>` (check a deployment from outside, crate `rtc-doctor`),
//! `--help` and `--version`. The service's configuration comes from `LIVEKIT_*`
//! variables only.

use std::process::ExitCode;

use lk_jwt_service::config::Config;
use lk_jwt_service::{healthcheck, server};

/// mimalloc instead of the system allocator: every request allocates and frees many
/// small buffers (HTTP client and server, JSON, the log line), and glibc's malloc/free
/// cost about an eighth of a fresh-token request's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `--help` prints: the command line and where the configuration is documented.
const USAGE: &str = "\
usage: lk-jwt-service               serve (configuration from LIVEKIT_* variables)
       lk-jwt-service healthcheck   probe /healthz of the configured listener (exit 0/1)
       lk-jwt-service doctor <server name or URL> [--json] [--access-token TOKEN] ...
                                    check an Element Call deployment from outside
       lk-jwt-service --help        this text
       lk-jwt-service --version     the version

Required: LIVEKIT_URL, LIVEKIT_KEY + LIVEKIT_SECRET (or LIVEKIT_KEY_FILE, or the
*_FROM_FILE variants), LIVEKIT_FULL_ACCESS_HOMESERVERS. Application-service mode:
LIVEKIT_AS_TOKEN + LIVEKIT_HS_TOKEN (or LIVEKIT_AS_REGISTRATION_FILE) + LIVEKIT_HS_SERVER_NAME.
Every variable: docs/lk-jwt-service-config.md
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--help" | "-h" | "help"] => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["--version" | "-V" | "version"] => {
            println!("lk-jwt-service {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        [] | ["healthcheck"] | ["doctor", ..] => {}
        _ => {
            eprint!("lk-jwt-service: unknown arguments {args:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("lk-jwt-service: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match args.as_slice() {
        ["healthcheck"] => runtime.block_on(check()),
        ["doctor", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| (*s).to_owned()).collect();
            runtime.block_on(rtc_doctor::main(&rest))
        }
        _ => runtime.block_on(serve()),
    }
}

async fn serve() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lk-jwt-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Colour codes only for a terminal: in files and journald they are noise, and
    // formatting them costs a measurable share of a request.
    tracing_subscriber::fmt()
        .with_max_level(config.log_level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    match server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("lk-jwt-service: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn check() -> ExitCode {
    let bind = match healthcheck::bind_from_env(|name| std::env::var(name).ok()) {
        Ok(bind) => bind,
        Err(e) => {
            eprintln!("lk-jwt-service healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    match healthcheck::probe(&bind.healthz_url()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lk-jwt-service healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}
