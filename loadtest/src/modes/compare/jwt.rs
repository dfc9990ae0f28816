//! The lk-jwt-service part of the benchmark: `/get_token` load from the `jwt` mode
//! against the release binary, both token variants alternating over the rounds, and its
//! section and goal rows in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::stats::{fmt, median};
use crate::modes::jwt::{JwtConfig, JwtReport, Service};

/// Concurrent clients in the goal of issue 8.
const CONCURRENCY: usize = 16;
/// The variants: each client reuses its OpenID token, or every request has a new one.
const VARIANTS: [(&str, bool); 2] = [("per-client", false), ("fresh", true)];
/// Goal of issue 8: service CPU per request, ms.
const GOAL_CPU_MS: f64 = 0.065;
/// Goal of issue 8: p99 latency, ms.
const GOAL_P99_MS: f64 = 5.0;

/// Runs `rounds` rounds of both variants, each against a service spawned for it (only
/// then is that run's fake homeserver known, which the service must be told it may reach
/// on loopback); failures go to `notes`. Results are keyed by variant.
pub(super) fn series(
    bin: &Path,
    rounds: usize,
    duration: Duration,
    logdir: &Path,
    notes: &mut Vec<String>,
) -> BTreeMap<String, Vec<JwtReport>> {
    let mut out = BTreeMap::new();
    for round in 0..rounds {
        let mut order = VARIANTS;
        order.rotate_left(round % 2);
        for (name, fresh_tokens) in order {
            let log = logdir.join(format!("lk-jwt-service-{name}-{}.log", round + 1));
            let cfg = JwtConfig {
                service: Service::Spawn(bin.to_path_buf()),
                concurrency: CONCURRENCY,
                duration,
                warmup: Duration::from_secs(1),
                max_requests: 10_000_000,
                fresh_tokens,
                service_log: Some(log),
                progress: false,
            };
            let what = format!("round {}/{rounds} jwt {name} tokens", round + 1);
            match crate::modes::jwt::run(&cfg) {
                Ok(r) => {
                    eprintln!(
                        "[compare] {what}: {:.0} req/s, p99 {:.2} ms, service CPU {} ms/request, errors {}",
                        r.ok_per_s,
                        r.latency_ms.p99,
                        fmt(r.service_cpu_ms_per_request, 4),
                        r.errors.values().sum::<u64>()
                    );
                    out.entry(name.to_string()).or_insert_with(Vec::new).push(r);
                }
                Err(e) => notes.push(format!("{what}: error: {e}")),
            }
        }
    }
    out
}

fn med(runs: Option<&Vec<JwtReport>>, f: impl Fn(&JwtReport) -> Option<f64>) -> Option<f64> {
    median(runs?.iter().filter_map(f).collect())
}

fn errors(runs: Option<&Vec<JwtReport>>) -> u64 {
    runs.into_iter()
        .flatten()
        .flat_map(|r| r.errors.values())
        .sum()
}

/// The "lk-jwt-service /get_token" section.
pub(super) fn section(s: &mut String, runs: &BTreeMap<String, Vec<JwtReport>>, rounds: usize) {
    let _ = writeln!(s, "## lk-jwt-service /get_token\n");
    if runs.is_empty() {
        let _ = writeln!(s, "Not run (see notes).\n");
        return;
    }
    let _ = writeln!(
        s,
        "`loadtest jwt` against the release lk-jwt-service on 127.0.0.1: {CONCURRENCY} clients, \
         each with one keep-alive connection and one request in flight, send `POST /get_token` \
         for a restricted user (its homeserver is not in `LIVEKIT_FULL_ACCESS_HOMESERVERS`, so \
         no SFU call) for the run time after a discarded 1 s warm-up; {rounds} rounds per \
         variant, alternating; medians. The homeserver is loadtest's fake: HTTPS with a \
         self-signed certificate (`LIVEKIT_INSECURE_SKIP_VERIFY_TLS`) on 127.0.0.1, answering \
         the federation userinfo call. *per-client*: each client reuses one OpenID token; \
         *fresh*: every request carries a new token, so the homeserver must be asked every \
         time, as upstream always does. Each run has its own service, told it may reach that \
         run's homeserver on loopback (`LIVEKIT_PRIVATE_HOMESERVERS`). Service CPU is utime+stime of the service process \
         divided by requests; the service logs at its default level (info) to a file. \
         Latency is measured by loadtest, which shares the 2 cores with the service.\n"
    );
    let _ = writeln!(
        s,
        "| tokens | ok req/s | latency p50 / p99 / max ms | errors | service CPU ms per request | service CPU % | homeserver calls per request | service RSS MiB |\n|---|---|---|---|---|---|---|---|"
    );
    for (name, _) in VARIANTS {
        let r = runs.get(name);
        let calls = med(r, |x| {
            (x.requests > 0).then(|| x.homeserver_requests as f64 / x.requests as f64)
        });
        let _ = writeln!(
            s,
            "| {name} | {} | {} / {} / {} | {} | {} | {} | {} | {} |",
            fmt(med(r, |x| Some(x.ok_per_s)), 0),
            fmt(med(r, |x| Some(x.latency_ms.p50)), 2),
            fmt(med(r, |x| Some(x.latency_ms.p99)), 2),
            fmt(med(r, |x| Some(x.latency_ms.max)), 2),
            errors(r),
            fmt(med(r, |x| x.service_cpu_ms_per_request), 4),
            fmt(med(r, |x| x.service_cpu_pct), 0),
            fmt(calls, 3),
            fmt(med(r, |x| x.service_rss_kib.map(|k| k as f64 / 1024.0)), 1),
        );
    }
    let _ = writeln!(
        s,
        "\nEvery run:\n\n| tokens | round | ok req/s | p99 ms | service CPU ms per request | errors |\n|---|---|---|---|---|---|"
    );
    for (name, list) in runs {
        for (i, r) in list.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {name} | {} | {:.0} | {:.2} | {} | {} |",
                i + 1,
                r.ok_per_s,
                r.latency_ms.p99,
                fmt(r.service_cpu_ms_per_request, 4),
                r.errors.values().sum::<u64>()
            );
        }
    }
    s.push('\n');
}

/// The rows of the goals table, one per variant.
pub(super) fn goal_rows(s: &mut String, runs: &BTreeMap<String, Vec<JwtReport>>) {
    for (name, _) in VARIANTS {
        let r = runs.get(name);
        let cpu = med(r, |x| x.service_cpu_ms_per_request);
        let p99 = med(r, |x| Some(x.latency_ms.p99));
        let errs = errors(r);
        let met = match (cpu, p99, r.is_some()) {
            (Some(c), Some(p), true) if c <= GOAL_CPU_MS && p < GOAL_P99_MS && errs == 0 => "yes",
            (Some(_), Some(_), true) => "**no**",
            _ => "not measured",
        };
        let _ = writeln!(
            s,
            "| lk-jwt-service /get_token, restricted user, {CONCURRENCY} clients, {name} tokens: \
             service CPU ≤ {GOAL_CPU_MS} ms per request, 0 errors, p99 < {GOAL_P99_MS} ms | \
             {} ms per request, {errs} errors, p99 {} ms | {met} |",
            fmt(cpu, 4),
            fmt(p99, 2),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Percentiles;

    fn report(cpu_ms: f64, p99: f64, errors: u64) -> JwtReport {
        let mut r = JwtReport {
            requests: 1000,
            ok: 1000 - errors,
            ok_per_s: 5000.0,
            latency_ms: Percentiles {
                p50: 1.0,
                p99,
                max: 9.0,
                count: 1000 - errors,
            },
            service_cpu_ms_per_request: Some(cpu_ms),
            service_cpu_pct: Some(50.0),
            service_rss_kib: Some(10240),
            homeserver_requests: 1000,
            ..JwtReport::default()
        };
        if errors > 0 {
            r.errors.insert("http-401 M_UNAUTHORIZED".into(), errors);
        }
        r
    }

    #[test]
    fn section_and_goals_use_medians_and_all_errors() {
        let mut runs = BTreeMap::new();
        runs.insert(
            "per-client".to_string(),
            vec![
                report(0.04, 1.0, 0),
                report(0.05, 2.0, 0),
                report(0.9, 9.0, 0),
            ],
        );
        runs.insert("fresh".to_string(), vec![report(0.1, 3.0, 2)]);
        let mut s = String::new();
        section(&mut s, &runs, 3);
        assert!(
            s.contains(
                "| per-client | 5000 | 1.00 / 2.00 / 9.00 | 0 | 0.0500 | 50 | 1.000 | 10.0 |"
            ),
            "{s}"
        );
        assert!(
            s.contains("| fresh | 5000 | 1.00 / 3.00 / 9.00 | 2 | 0.1000 |"),
            "{s}"
        );
        assert!(
            s.contains("| per-client | 3 | 5000 | 9.00 | 0.9000 | 0 |"),
            "{s}"
        );
        let mut goals = String::new();
        goal_rows(&mut goals, &runs);
        let rows: Vec<&str> = goals.lines().collect();
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].contains("per-client tokens") && rows[0].ends_with("| yes |"),
            "{goals}"
        );
        assert!(
            rows[1].contains("fresh tokens") && rows[1].ends_with("| **no** |"),
            "{goals}"
        );

        let mut empty = String::new();
        section(&mut empty, &BTreeMap::new(), 3);
        assert!(empty.contains("Not run"));
        let mut none = String::new();
        goal_rows(&mut none, &BTreeMap::new());
        assert_eq!(none.matches("not measured").count(), 2);
    }
}
