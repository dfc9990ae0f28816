//! `lk-jwt-service healthcheck`: probes `/healthz` of the service configured by the same
//! environment, for Docker's `HEALTHCHECK`. Upstream's helper treats `LIVEKIT_JWT_BIND`
//! as a port and builds an invalid URL for `:8080`; here the URL comes from the parsed
//! bind address.

use std::time::Duration;

use crate::config::{BindAddress, DEFAULT_BIND, parse_bind};

/// Bound on the probe (Docker's `--timeout=3s` kills it anyway).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The listener address from `LIVEKIT_JWT_BIND` / `LIVEKIT_JWT_PORT` alone, so the
/// probe works even where the rest of the configuration is not visible.
pub fn bind_from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<BindAddress, String> {
    let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let text = match (var("LIVEKIT_JWT_BIND"), var("LIVEKIT_JWT_PORT")) {
        (Some(bind), _) => bind,
        (None, Some(port)) => format!(":{port}"),
        (None, None) => DEFAULT_BIND.to_owned(),
    };
    parse_bind(&text).map_err(|e| format!("LIVEKIT_JWT_BIND {text:?}: {e}"))
}

/// Probes `url`; `Ok` on a 200.
pub async fn probe(url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::openid::net::describe(&e)))?;
    if response.status() == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {}", response.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_from_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            bind_from_env(env(&[])).unwrap().healthz_url(),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            bind_from_env(env(&[("LIVEKIT_JWT_BIND", "127.0.0.1:9999")]))
                .unwrap()
                .healthz_url(),
            "http://127.0.0.1:9999/healthz"
        );
        assert_eq!(
            bind_from_env(env(&[("LIVEKIT_JWT_PORT", "7000")]))
                .unwrap()
                .healthz_url(),
            "http://127.0.0.1:7000/healthz"
        );
        assert!(bind_from_env(env(&[("LIVEKIT_JWT_BIND", "nonsense")])).is_err());
    }
}
