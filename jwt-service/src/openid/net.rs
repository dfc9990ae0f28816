//! The network side of Matrix traffic: one shared HTTP client (connection reuse, TLS
//! settings scoped to Matrix), DNS through hickory for SRV and the system resolver for
//! addresses, and the outgoing deny list applied to every address we would connect to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rtc_auth::ip_range::IpRangeSet;

use super::discovery::{BoxFuture, Lookup, SrvError};

/// Bound on connecting to a homeserver.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a whole userinfo request (upstream: 30 s; clients give up sooner).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on a well-known fetch.
pub const WELL_KNOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest well-known body read (upstream: 50 KiB).
pub const WELL_KNOWN_MAX_BYTES: usize = 50 * 1024;

/// TLS settings for Matrix traffic.
#[derive(Debug, Clone, Default)]
pub struct MatrixTls {
    /// `LIVEKIT_INSECURE_SKIP_VERIFY_TLS` had the magic value.
    pub skip_verify: bool,
    /// Extra roots (PEM) from `LIVEKIT_MATRIX_CA_FILE`.
    pub extra_roots_pem: Option<Vec<u8>>,
}

/// A client could not be built (a bad CA file, a TLS backend failure).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the Matrix HTTP client: {0}")]
pub struct ClientBuildError(String);

/// Resolves host names for reqwest: SRV targets chosen by discovery replace the name's
/// own addresses, and denied addresses are dropped.
#[derive(Debug, Default)]
pub struct DenyingResolver {
    deny: IpRangeSet,
    connect_hosts: RwLock<HashMap<String, String>>,
}

impl DenyingResolver {
    /// A resolver refusing `deny`.
    pub fn new(deny: IpRangeSet) -> Self {
        Self {
            deny,
            connect_hosts: RwLock::default(),
        }
    }

    /// From now on, connections to `tls_host` go to `connect_host`'s addresses.
    ///
    /// Keyed by name only (reqwest's resolver never sees the port): a server reached by
    /// SRV and, separately, by the same name with an explicit port would share the
    /// target. Both point at the same operator, so this is accepted.
    pub fn set_connect_host(&self, tls_host: &str, connect_host: &str) {
        if let Ok(mut map) = self.connect_hosts.write() {
            map.insert(tls_host.to_ascii_lowercase(), connect_host.to_owned());
        }
    }

    /// Whether `ip` may be contacted.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        !self.deny.matches(ip)
    }
}

impl Resolve for DenyingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = self
            .connect_hosts
            .read()
            .ok()
            .and_then(|map| map.get(name.as_str()).cloned())
            .unwrap_or_else(|| name.as_str().to_owned());
        let deny = self.deny.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| !deny.matches(a.ip()))
                .collect();
            if allowed.is_empty() && !found.is_empty() {
                return Err(format!("every address of {host} is on the outgoing deny list").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A client for Matrix servers with the given TLS settings and resolver.
pub fn matrix_client(
    tls: &MatrixTls,
    resolver: Arc<DenyingResolver>,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, ClientBuildError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .dns_resolver(resolver)
        .redirect(redirects)
        .user_agent(concat!("lk-jwt-service-rs/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &tls.extra_roots_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientBuildError(format!("bad CA bundle: {e}")))?;
        if certs.is_empty() {
            return Err(ClientBuildError(
                "the CA bundle holds no certificate".into(),
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    if tls.skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| ClientBuildError(e.to_string()))
}

/// The production [`Lookup`]: SRV via hickory, well-known over HTTPS.
pub struct NetworkLookup {
    dns: Option<hickory_resolver::TokioResolver>,
    http: reqwest::Client,
}

impl NetworkLookup {
    /// DNS from the system configuration; without one, SRV look-ups fail (and discovery
    /// falls back to port 8448).
    pub fn new(http: reqwest::Client) -> Self {
        let dns = hickory_resolver::TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| tracing::warn!("no DNS resolver for SRV look-ups: {e}"))
            .ok();
        Self { dns, http }
    }
}

impl Lookup for NetworkLookup {
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<(String, u16)>, SrvError>> {
        Box::pin(async move {
            let dns = self
                .dns
                .as_ref()
                .ok_or_else(|| SrvError::Failed("no DNS resolver configured".into()))?;
            match dns.srv_lookup(format!("{name}.")).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        hickory_resolver::proto::rr::RData::SRV(srv) => {
                            Some((srv.target.to_utf8(), srv.port))
                        }
                        _ => None,
                    })
                    .collect()),
                Err(e) if e.is_no_records_found() || e.is_nx_domain() => Err(SrvError::NotFound),
                Err(e) => Err(SrvError::Failed(e.to_string())),
            }
        })
    }

    fn well_known<'a>(&'a self, server: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let url = format!("https://{server}/.well-known/matrix/server");
            let body = match fetch_capped(&self.http, &url, WELL_KNOWN_MAX_BYTES).await {
                Ok(body) => body,
                Err(e) => {
                    tracing::debug!(%server, "no usable well-known: {e}");
                    return None;
                }
            };
            #[derive(serde::Deserialize)]
            struct WellKnown {
                #[serde(rename = "m.server")]
                server: Option<String>,
            }
            serde_json::from_slice::<WellKnown>(&body)
                .ok()
                .and_then(|w| w.server)
                .filter(|s| !s.is_empty())
        })
    }
}

/// GET `url` and return a 200 body of at most `cap` bytes.
pub async fn fetch_capped(
    client: &reqwest::Client,
    url: &str,
    cap: usize,
) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(WELL_KNOWN_TIMEOUT)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > cap {
            return Err(format!("body larger than {cap} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error as a log line: the kind, the causes, and never the URL (which may
/// carry an access token).
pub fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "redirect refused"
    } else if error.is_decode() || error.is_body() {
        "bad response body"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
