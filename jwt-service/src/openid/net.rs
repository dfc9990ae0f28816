//! The network side of Matrix traffic: HTTP clients with TLS settings scoped to Matrix,
//! one per purpose and [reach](super::reach), DNS through hickory for SRV and the system
//! resolver for addresses, and the reach's deny list applied to every URL, redirect hop
//! and resolved address before we connect.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rtc_auth::ip_range::IpRangeSet;
use url::Url;

use super::discovery::{
    BoxFuture, ERROR_TTL, Lookup, STATIC_TTL, SrvAnswer, SrvError, SrvRecord, WellKnown,
    parse_server_well_known,
};

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

/// An HTTP client for Matrix traffic bound to one deny list: its resolver drops denied
/// addresses, [`Self::request`] refuses a URL whose host is a denied IP literal (reqwest
/// connects to those without asking the resolver), and its redirect policy applies both
/// rules to every hop and follows https→https only.
#[derive(Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    resolver: Arc<DenyingResolver>,
}

/// A request refused before it was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is on the outgoing deny list")]
pub struct Denied(pub IpAddr);

impl MatrixClient {
    /// A client with `tls`, refusing `deny`, following at most `max_redirects` redirects.
    pub fn new(
        tls: &MatrixTls,
        deny: IpRangeSet,
        max_redirects: usize,
    ) -> Result<Self, ClientBuildError> {
        let resolver = Arc::new(DenyingResolver::new(deny));
        let policy_resolver = resolver.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let from = attempt.previous().last();
            match redirect_refusal(from, attempt.url(), attempt.previous().len(), max_redirects)
                .or_else(|| {
                    policy_resolver
                        .check_url(attempt.url())
                        .err()
                        .map(|ip| format!("redirect to {ip}, which is on the outgoing deny list"))
                }) {
                Some(why) => attempt.error(why),
                None => attempt.follow(),
            }
        });
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .dns_resolver(resolver.clone())
            .redirect(redirects)
            // reqwest retries only HTTP/2 and HTTP/3 protocol refusals, and this client
            // speaks HTTP/1.1; the default policy still copied every request (headers,
            // extensions) in case it would retry.
            .retry(reqwest::retry::never().max_retries_per_request(0))
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
        let http = builder
            .build()
            .map_err(|e| ClientBuildError(e.to_string()))?;
        Ok(Self { http, resolver })
    }

    /// A `method` request to `url`, unless its host is a denied IP literal.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: Url,
    ) -> Result<reqwest::RequestBuilder, Denied> {
        self.resolver.check_url(&url).map_err(Denied)?;
        Ok(self.http.request(method, url))
    }

    /// From now on, connections to `tls_host` go to `connect_host`'s addresses (an SRV
    /// target; see [`DenyingResolver::set_connect_host`]).
    pub fn set_connect_host(&self, tls_host: &str, connect_host: &str) {
        self.resolver.set_connect_host(tls_host, connect_host);
    }
}

/// Why a redirect from `from` to `to` (hop number `hops`) is not followed, if it is not:
/// too many hops, or anything but https to https (a downgrade would expose the request,
/// and other schemes reach other services).
pub fn redirect_refusal(
    from: Option<&Url>,
    to: &Url,
    hops: usize,
    max_redirects: usize,
) -> Option<String> {
    if hops > max_redirects {
        return Some("too many redirects".into());
    }
    match from.map(Url::scheme) {
        Some("https") if to.scheme() == "https" => None,
        Some("https") => Some(format!("redirect to a {} URL", to.scheme())),
        _ => Some("redirect from a URL that is not https".into()),
    }
}

/// The production [`Lookup`]: SRV via hickory, well-known over HTTPS with one reach's
/// client.
pub struct NetworkLookup {
    dns: Option<hickory_resolver::TokioResolver>,
    http: MatrixClient,
}

/// The DNS resolver of the system configuration, for SRV look-ups; without one, SRV
/// look-ups fail (and discovery falls back to port 8448).
pub fn system_dns() -> Option<hickory_resolver::TokioResolver> {
    hickory_resolver::TokioResolver::builder_tokio()
        .and_then(|b| b.build())
        .map_err(|e| tracing::warn!("no DNS resolver for SRV look-ups: {e}"))
        .ok()
}

impl NetworkLookup {
    /// Look-ups through `dns` (see [`system_dns`]) and `http`.
    pub fn new(dns: Option<hickory_resolver::TokioResolver>, http: MatrixClient) -> Self {
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
                            hickory_resolver::proto::rr::RData::SRV(srv) => Some(SrvRecord {
                                priority: srv.priority,
                                target: srv.target.to_utf8(),
                                port: srv.port,
                            }),
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
            let Ok(url) = Url::parse(&format!("https://{server}/.well-known/matrix/server")) else {
                return failed;
            };
            let (body, max_age) = match fetch_capped(&self.http, url, WELL_KNOWN_MAX_BYTES).await {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::debug!(%server, "no usable well-known: {e}");
                    return failed;
                }
            };
            match parse_server_well_known(&body) {
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

/// GET `url` and return a 200 body of at most `cap` bytes, with the response's
/// `Cache-Control: max-age`.
pub async fn fetch_capped(
    client: &MatrixClient,
    url: Url,
    cap: usize,
) -> Result<(Vec<u8>, Option<Duration>), String> {
    let response = client
        .request(reqwest::Method::GET, url)
        .map_err(|e| e.to_string())?
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(WELL_KNOWN_TIMEOUT)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    read_capped(response, cap).await.map(|body| (body, max_age))
}

/// The body of `response`, refused once it grows past `cap` bytes (read chunk by chunk,
/// so a huge or endless body never sits in memory).
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
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

    /// Serves `app` over TLS on 127.0.0.1 with a self-signed certificate for `localhost`.
    async fn https_server(app: axum::Router) -> SocketAddr {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        addr
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn redirects_go_from_https_to_https_only() {
        let https = url("https://a.example/x");
        let refusal = |from: &Url, to: &str, hops| redirect_refusal(Some(from), &url(to), hops, 5);
        assert_eq!(refusal(&https, "https://b.example/y", 1), None);
        assert_eq!(refusal(&https, "https://b.example/y", 5), None);
        assert!(refusal(&https, "https://b.example/y", 6).is_some());
        for elsewhere in [
            "http://b.example/",
            "ftp://b.example/",
            "file:///etc/passwd",
        ] {
            assert!(refusal(&https, elsewhere, 1).is_some(), "{elsewhere}");
        }
        let http = url("http://a.example/x");
        assert!(refusal(&http, "https://b.example/y", 1).is_some());
        assert!(redirect_refusal(None, &https, 1, 5).is_some());
    }

    #[tokio::test]
    async fn every_url_and_redirect_hop_is_checked() {
        let target = https_server(
            axum::Router::new().route("/ok", axum::routing::get(|| async { "reached" })),
        )
        .await;
        let target_port = target.port();
        let to = move |location: String| {
            axum::routing::get(
                move || async move { axum::response::Redirect::temporary(&location) },
            )
        };
        let redirector = axum::Router::new()
            .route(
                "/allowed",
                to(format!("https://localhost:{target_port}/ok")),
            )
            .route(
                "/downgrade",
                to(format!("http://localhost:{target_port}/ok")),
            )
            .route("/denied", to(format!("https://127.0.0.2:{target_port}/ok")))
            .route("/hex", to(format!("https://0x7f000002:{target_port}/ok")));
        let addr = https_server(redirector.clone()).await;
        let tls = MatrixTls {
            skip_verify: true,
            extra_roots_pem: None,
        };
        let deny = IpRangeSet::parse(["127.0.0.2"]).unwrap();
        let client = MatrixClient::new(&tls, deny, 5).unwrap();
        let get = |path: &str| {
            fetch_capped(
                &client,
                url(&format!("https://localhost:{}{path}", addr.port())),
                1024,
            )
        };
        assert_eq!(get("/allowed").await.unwrap().0, b"reached");
        let error = get("/downgrade").await.unwrap_err();
        assert!(error.contains("redirect to a http URL"), "{error}");
        for denied in ["/denied", "/hex"] {
            let error = get(denied).await.unwrap_err();
            assert!(
                error.contains("127.0.0.2, which is on the outgoing deny list"),
                "{error}"
            );
        }
        // The first URL too, in whatever form the URL parser reads as an IP.
        for first in [
            "https://127.0.0.2/",
            "https://0x7f000002/",
            "https://2130706434/",
        ] {
            let error = fetch_capped(&client, url(first), 1024).await.unwrap_err();
            assert_eq!(error, "127.0.0.2 is on the outgoing deny list", "{first}");
        }
        // No redirects at all for a client built with 0, nor from plain HTTP.
        let strict = MatrixClient::new(&tls, IpRangeSet::new(), 0).unwrap();
        let strict_get = fetch_capped(
            &strict,
            url(&format!("https://localhost:{}/allowed", addr.port())),
            1024,
        );
        assert!(strict_get.await.unwrap_err().contains("too many redirects"));
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_addr = plain.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(plain, redirector).await });
        let error = fetch_capped(&client, url(&format!("http://{plain_addr}/allowed")), 1024)
            .await
            .unwrap_err();
        assert!(error.contains("not https"), "{error}");
    }

    #[tokio::test]
    async fn bodies_are_capped_while_read() {
        let big = https_server(
            axum::Router::new().route("/", axum::routing::get(|| async { "x".repeat(4096) })),
        )
        .await;
        let tls = MatrixTls {
            skip_verify: true,
            extra_roots_pem: None,
        };
        let client = MatrixClient::new(&tls, IpRangeSet::new(), 0).unwrap();
        let at = url(&format!("https://localhost:{}/", big.port()));
        assert_eq!(
            fetch_capped(&client, at.clone(), 4096)
                .await
                .unwrap()
                .0
                .len(),
            4096
        );
        let error = fetch_capped(&client, at, 4095).await.unwrap_err();
        assert_eq!(error, "body larger than 4095 bytes");
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
