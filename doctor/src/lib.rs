//! `lk-jwt-service doctor`: checks a Matrix RTC (Element Call) deployment from outside by
//! walking what a client walks, and names each failure with its fix.
//!
//! Order: [`discovery`] (`/.well-known/matrix/client`, `/versions`, whoami), [`transports`]
//! (the endpoint Element Call and Element X read), [`jwt`] (lk-jwt-service behind
//! `livekit_service_url`), [`livekit`] (the SFU URL it hands out), [`turn`] (the homeserver's
//! TURN URIs and a real Allocate), [`federation`] (what lk-jwt-service calls to check
//! OpenID tokens). Only the named server and the hosts its own answers point to are
//! contacted; every network call has a timeout.

pub mod discovery;
pub mod federation;
pub mod http;
pub mod jwt;
pub mod livekit;
pub mod options;
pub mod report;
pub mod transports;
pub mod turn;

use std::process::ExitCode;

use options::{Options, Target, USAGE};
use report::Report;

/// Runs every check; errors only for unusable options (bad target, unreadable CA file).
pub async fn run(options: &Options) -> Result<Report, String> {
    let target = Target::parse(&options.target, options.server_name.as_deref())?;
    let http = http::Http::new(options)?;
    let mut report = Report::new(&options.target);
    let token = options.access_token.as_deref();

    let well_known = discovery::well_known(&http, &target.base, &mut report).await;
    let homeserver = well_known.homeserver.clone();
    discovery::versions(&http, &homeserver, &mut report).await;
    let session = match token {
        Some(token) => discovery::whoami(&http, &homeserver, token, &mut report).await,
        None => None,
    };
    let server_name = session.as_ref().map_or_else(
        || target.server_name.clone(),
        |s| s.server_name().to_owned(),
    );

    let service = transports::check(
        &http,
        &homeserver,
        token,
        well_known.rtc_foci.as_ref(),
        &mut report,
    )
    .await;
    let mut access = None;
    match &service {
        Some(service) => {
            jwt::check(&http, service, &target.base, &server_name, &mut report).await;
            if let (Some(session), Some(token)) = (&session, token) {
                access =
                    jwt::token_flow(&http, &homeserver, service, session, token, &mut report).await;
            }
        }
        None => report.skip("jwt", "no JWT service URL to check"),
    }
    match (&access, &service) {
        (Some(access), Some(service)) => livekit::check(&http, service, access, &mut report).await,
        _ => report.skip(
            "livekit",
            "LIVEKIT_URL is learnt from a real /get_token: give an access token",
        ),
    }
    match (&session, token) {
        (Some(_), Some(token)) => {
            turn::check(&http, &homeserver, token, options, &mut report).await;
        }
        _ => report.skip("turn", "the TURN credentials need an access token"),
    }
    federation::check(&http, &server_name, &mut report).await;
    Ok(report)
}

/// `lk-jwt-service doctor ARGS`: prints the report; exit code 0 when nothing failed, 1
/// when a check failed, 2 for bad arguments.
pub async fn main(args: &[String]) -> ExitCode {
    let options = match Options::parse(args, |name| std::env::var(name).ok()) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("lk-jwt-service doctor: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = match run(&options).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("lk-jwt-service doctor: {e}");
            return ExitCode::from(2);
        }
    };
    if options.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
