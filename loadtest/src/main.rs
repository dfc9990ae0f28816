//! `loadtest`: load generators for the TURN relay and the side-by-side benchmark against
//! coturn. See `loadtest --help`.

use std::process::ExitCode;

use loadtest::args::Args;
use loadtest::{modes, report};

const USAGE: &str = "\
loadtest MODE [FLAGS]

Modes:
  turn      allocate N clients and relay packets through a TURN server (UDP, TCP or TLS)
  alloc     allocate up to a count at a rate, hold, delete; server RSS per allocation
  forward   the same packet load through an in-process bare UDP forwarder (machine limit)
  jwt       concurrent /get_token requests against lk-jwt-service, with a fake homeserver
  compare   the benchmark: coturn vs turn-server, A/B rounds, writes docs/benchmarks.md

Every mode takes --json FILE for machine-readable results. Targets must be loopback
unless --allow-remote is given.
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(argv: &[String]) -> Result<(), String> {
    let Some((mode, rest)) = argv.split_first() else {
        print!("{USAGE}");
        return Err("no mode given".into());
    };
    let help = rest.iter().any(|a| a == "--help" || a == "-h");
    match mode.as_str() {
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        "turn" if help => {
            println!("{}", modes::turn::HELP);
            Ok(())
        }
        "alloc" if help => {
            println!("{}", modes::alloc::HELP);
            Ok(())
        }
        "jwt" if help => {
            println!("{}", modes::jwt::HELP);
            Ok(())
        }
        "compare" if help => {
            println!("{}", modes::compare::HELP);
            Ok(())
        }
        "forward" if help => {
            println!("{}", modes::forward::HELP);
            Ok(())
        }
        "turn" => {
            let a = Args::parse(rest, &["send", "c2c", "allow-remote", "insecure-tls"])?;
            let cfg = modes::turn::TurnConfig::from_args(&a)?;
            let json: Option<String> = a.opt("json")?;
            a.finish()?;
            let r = modes::turn::run(&cfg)?;
            report::print_table("turn results", &r.rows());
            if let Some(p) = json {
                report::write_json(&p, &r)?;
            }
            Ok(())
        }
        "forward" => {
            let a = Args::parse(rest, &[])?;
            let cfg = modes::forward::config_from_args(&a)?;
            let json: Option<String> = a.opt("json")?;
            a.finish()?;
            let r = modes::forward::run(&cfg)?;
            report::print_table("forward results", &r.rows());
            if let Some(p) = json {
                report::write_json(&p, &r)?;
            }
            Ok(())
        }
        "alloc" => {
            let a = Args::parse(rest, &["allow-remote"])?;
            let cfg = modes::alloc::AllocConfig::from_args(&a)?;
            let json: Option<String> = a.opt("json")?;
            a.finish()?;
            let r = modes::alloc::run(&cfg)?;
            report::print_table("alloc results", &r.rows());
            if let Some(p) = json {
                report::write_json(&p, &r)?;
            }
            Ok(())
        }
        "jwt" => {
            let a = Args::parse(rest, &["fresh-tokens"])?;
            let cfg = modes::jwt::JwtConfig::from_args(&a)?;
            let json: Option<String> = a.opt("json")?;
            a.finish()?;
            let r = modes::jwt::run(&cfg)?;
            report::print_table("jwt results", &r.rows());
            if let Some(p) = json {
                report::write_json(&p, &r)?;
            }
            Ok(())
        }
        "compare" => {
            let a = Args::parse(rest, &["skip-uclient", "offload", "veth"])?;
            let cfg = modes::compare::CompareConfig::from_args(&a, rest)?;
            a.finish()?;
            modes::compare::run(&cfg)
        }
        other => {
            print!("{USAGE}");
            Err(format!("unknown mode {other:?}"))
        }
    }
}
