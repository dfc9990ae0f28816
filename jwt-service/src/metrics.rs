//! Counters for `/metrics` (Prometheus text format, opt-in with
//! `LIVEKIT_ENABLE_METRICS`): requests by endpoint and status, OpenID failures by cause
//! (the causes upstream only shows as one 401), room creation, webhooks and running
//! delegation jobs. A handful of labelled counters do not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    openid_failures: Mutex<BTreeMap<&'static str, u64>>,
    rooms: Mutex<BTreeMap<&'static str, u64>>,
    webhooks: Mutex<BTreeMap<&'static str, u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    if let Ok(mut map) = map.lock() {
        *map.entry(key).or_default() += 1;
    }
}

impl Metrics {
    /// A request to `endpoint` answered with `status`.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        bump(&self.requests, (endpoint, status));
    }

    /// An OpenID check failed for `cause`.
    pub fn openid_failure(&self, cause: &'static str) {
        bump(&self.openid_failures, cause);
    }

    /// A CreateRoom call ended with `outcome` (`created`, `reused`, `failed`).
    pub fn room(&self, outcome: &'static str) {
        bump(&self.rooms, outcome);
    }

    /// A webhook ended with `outcome` (`routed`, `unrouted`, `ignored`, `rejected`).
    pub fn webhook(&self, outcome: &'static str) {
        bump(&self.webhooks, outcome);
    }

    /// The exposition text, with `jobs` running delegation jobs.
    pub fn render(&self, jobs: usize) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "lk_jwt_requests_total",
            "Requests to the token endpoints by status.",
            "counter",
        );
        if let Ok(map) = self.requests.lock() {
            for ((endpoint, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "lk_jwt_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
                );
            }
        }
        labelled(
            &mut out,
            "lk_jwt_openid_failures_total",
            "OpenID verification failures by cause.",
            "cause",
            &self.openid_failures,
        );
        labelled(
            &mut out,
            "lk_jwt_livekit_rooms_total",
            "CreateRoom calls by outcome.",
            "outcome",
            &self.rooms,
        );
        labelled(
            &mut out,
            "lk_jwt_webhooks_total",
            "LiveKit webhooks by outcome.",
            "outcome",
            &self.webhooks,
        );
        header(
            &mut out,
            "lk_jwt_delegation_jobs",
            "Delegated delayed-leave jobs running.",
            "gauge",
        );
        let _ = writeln!(out, "lk_jwt_delegation_jobs {jobs}");
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    map: &Mutex<BTreeMap<&'static str, u64>>,
) {
    header(out, name, help, "counter");
    if let Ok(map) = map.lock() {
        for (value, n) in map.iter() {
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let metrics = Metrics::default();
        metrics.request("/get_token", 200);
        metrics.request("/get_token", 200);
        metrics.request("/sfu/get", 401);
        metrics.openid_failure("transport");
        metrics.room("created");
        metrics.webhook("rejected");
        let text = metrics.render(2);
        for line in [
            "# TYPE lk_jwt_requests_total counter",
            "lk_jwt_requests_total{endpoint=\"/get_token\",status=\"200\"} 2",
            "lk_jwt_requests_total{endpoint=\"/sfu/get\",status=\"401\"} 1",
            "lk_jwt_openid_failures_total{cause=\"transport\"} 1",
            "lk_jwt_livekit_rooms_total{outcome=\"created\"} 1",
            "lk_jwt_webhooks_total{outcome=\"rejected\"} 1",
            "# TYPE lk_jwt_delegation_jobs gauge",
            "lk_jwt_delegation_jobs 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
