//! The network side of Matrix traffic: one shared HTTP client (connection reuse, TLS
//! settings scoped to Matrix), DNS through hickory for SRV and the system resolver for
//! addresses, and the outgoing deny list applied to every address we would connect to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rtc_auth::ip_range::IpRangeSet;

use super::discovery::{BoxFuture, ERROR_TTL, Lookup, STATIC_TTL, SrvAnswer, SrvError, WellKnown};

/// Bound on connecting to a homeserver.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a whole userinfo request (upstream: 30 s; clients give up sooner).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on a well-known fetch.
pub const WELL_KNOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest well-known body read (upstream: 50 KiB).
pub const WELL_KNOWN_MAX_BYTES: usize = 50 * 1024;

/// Cap on remembered SRV targets.
const MAX_CONNECT_HOSTS: usize = 10_000;

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
            // Bounded: SRV answers for many names must not grow memory without limit.
            if map.len() >= MAX_CONNECT_HOSTS {
                map.clear();
            }
            map.insert(tls_host.to_ascii_lowercase(), connect_host.to_owned());
        }
    }

    /// Whether `ip` may be contacted.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        !self.deny.matches(ip)
    }

    /// Refuses URLs whose host is a denied IP literal: reqwest connects to those without
    /// asking the resolver, so names alone are not enough.
    pub fn check_url(&self, url: &url::Url) -> Result<(), IpAddr> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        if self.allowed(ip) { Ok(()) } else { Err(ip) }
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

/// A client for Matrix servers with the given TLS settings and resolver, following at
/// most `max_redirects` redirects and none to a denied IP literal.
pub fn matrix_client(
    tls: &MatrixTls,
    resolver: Arc<DenyingResolver>,
    max_redirects: usize,
) -> Result<reqwest::Client, ClientBuildError> {
    let policy_resolver = resolver.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max_redirects {
            attempt.error("too many redirects")
        } else if let Err(ip) = policy_resolver.check_url(attempt.url()) {
            attempt.error(format!(
                "redirect to {ip}, which is on the outgoing deny list"
            ))
        } else {
            attempt.follow()
        }
    });
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
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SrvAnswer, SrvError>> {
        Box::pin(async move {
            let dns = self
                .dns
                .as_ref()
                .ok_or_else(|| SrvError::Failed("no DNS resolver configured".into()))?;
            match dns.srv_lookup(format!("{name}.")).await {
                Ok(lookup) => {
                    let answers = lookup.answers();
                    let ttl = answers.iter().map(|r| r.ttl).min().unwrap_or(0);
                    let records = answers
                        .iter()
                        .filter_map(|record| match &record.data {
                            hickory_resolver::proto::rr::RData::SRV(srv) => {
                                Some((srv.target.to_utf8(), srv.port))
                            }
                            _ => None,
                        })
                        .collect();
                    Ok(SrvAnswer {
                        records,
                        ttl: Duration::from_secs(u64::from(ttl)).min(MAX_CACHE),
                    })
                }
                Err(e) if e.is_no_records_found() || e.is_nx_domain() => Err(SrvError::NotFound),
                Err(e) => Err(SrvError::Failed(e.to_string())),
            }
        })
    }

    fn well_known<'a>(&'a self, server: &'a str) -> BoxFuture<'a, WellKnown> {
        Box::pin(async move {
            let failed = WellKnown {
                server: None,
                ttl: ERROR_TTL,
            };
            let url = format!("https://{server}/.well-known/matrix/server");
            let (body, max_age) =
                match fetch_capped_with_max_age(&self.http, &url, WELL_KNOWN_MAX_BYTES).await {
                    Ok(answer) => answer,
                    Err(e) => {
                        tracing::debug!(%server, "no usable well-known: {e}");
                        return failed;
                    }
                };
            #[derive(serde::Deserialize)]
            struct Document {
                #[serde(rename = "m.server")]
                server: Option<String>,
            }
            match serde_json::from_slice::<Document>(&body)
                .ok()
                .and_then(|w| w.server)
                .filter(|s| !s.is_empty())
            {
                Some(delegated) => WellKnown {
                    server: Some(delegated),
                    ttl: max_age.unwrap_or(STATIC_TTL).min(MAX_CACHE),
                },
                None => failed,
            }
        })
    }
}

/// Longest any discovery answer is kept (the spec's recommended cap).
pub const MAX_CACHE: Duration = Duration::from_secs(48 * 3600);

/// `max-age` of a `Cache-Control` header value.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().trim_matches('"').parse().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

/// [`fetch_capped`], also returning the response's `Cache-Control: max-age`.
pub async fn fetch_capped_with_max_age(
    client: &reqwest::Client,
    url: &str,
    cap: usize,
) -> Result<(Vec<u8>, Option<Duration>), String> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(WELL_KNOWN_TIMEOUT)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    read_capped(response, cap).await.map(|body| (body, max_age))
}

/// GET `url` and return a 200 body of at most `cap` bytes.
pub async fn fetch_capped(
    client: &reqwest::Client,
    url: &str,
    cap: usize,
) -> Result<Vec<u8>, String> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(WELL_KNOWN_TIMEOUT)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    read_capped(response, cap).await
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(max_age("max-age=3600"), Some(Duration::from_secs(3600)));
        assert_eq!(
            max_age("public, Max-Age = 60 , must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("max-age=\"10\""), Some(Duration::from_secs(10)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age(""), None);
    }

    #[tokio::test]
    async fn denied_addresses_are_not_resolved() {
        let resolver = DenyingResolver::new(IpRangeSet::parse(["127.0.0.0/8", "::1"]).unwrap());
        let name: Name = "localhost".parse().unwrap();
        let error = resolver.resolve(name).await.err().expect("denied");
        assert!(error.to_string().contains("deny list"), "{error}");
        let open = DenyingResolver::new(IpRangeSet::new());
        let addrs: Vec<SocketAddr> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()));
    }

    #[tokio::test]
    async fn redirects_to_denied_ip_literals_are_refused() {
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target_port = target.local_addr().unwrap().port();
        let ok = axum::Router::new().route("/ok", axum::routing::get(|| async { "reached" }));
        tokio::spawn(async move { axum::serve(target, ok).await });
        let redirector = axum::Router::new()
            .route(
                "/allowed",
                axum::routing::get(move || async move {
                    axum::response::Redirect::temporary(&format!(
                        "http://127.0.0.1:{target_port}/ok"
                    ))
                }),
            )
            .route(
                "/denied",
                axum::routing::get(move || async move {
                    axum::response::Redirect::temporary(&format!(
                        "http://127.0.0.2:{target_port}/ok"
                    ))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, redirector).await });

        let deny = IpRangeSet::parse(["127.0.0.2"]).unwrap();
        let client = matrix_client(
            &MatrixTls::default(),
            Arc::new(DenyingResolver::new(deny)),
            5,
        )
        .unwrap();
        let body = fetch_capped(&client, &format!("http://{addr}/allowed"), 1024)
            .await
            .unwrap();
        assert_eq!(body, b"reached");
        let error = fetch_capped(&client, &format!("http://{addr}/denied"), 1024)
            .await
            .unwrap_err();
        assert!(error.contains("deny list"), "{error}");
        // No redirects at all for a client built with 0.
        let strict = matrix_client(
            &MatrixTls::default(),
            Arc::new(DenyingResolver::default()),
            0,
        )
        .unwrap();
        assert!(
            fetch_capped(&strict, &format!("http://{addr}/allowed"), 1024)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn srv_targets_replace_the_name() {
        let resolver = DenyingResolver::new(IpRangeSet::new());
        resolver.set_connect_host("matrix.example.test", "localhost");
        let addrs: Vec<SocketAddr> = resolver
            .resolve("matrix.example.test".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
