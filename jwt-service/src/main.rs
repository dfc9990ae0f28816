//! `lk-jwt-service` (serve), `lk-jwt-service healthcheck` (probe `/healthz`) and
//! `lk-jwt-service doctor <server>` (check a deployment from outside, crate `rtc-doctor`).

use std::process::ExitCode;

use lk_jwt_service::config::Config;
use lk_jwt_service::{healthcheck, server};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => runtime.block_on(serve()),
        ["healthcheck"] => runtime.block_on(check()),
        ["doctor", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| (*s).to_owned()).collect();
            runtime.block_on(rtc_doctor::main(&rest))
        }
        _ => {
            eprintln!(
                "usage: lk-jwt-service [healthcheck]  (configuration comes from LIVEKIT_* variables)\n       lk-jwt-service doctor <server name or URL> [--json] [--access-token TOKEN] ..."
            );
            ExitCode::from(2)
        }
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
    if let Some(warning) = &config.log_level_warning {
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
