//! Where a homeserver's client-server API lives, for the delayed-event calls (spec
//! §5.2): `LIVEKIT_CS_API_URL_OVERRIDES`, else a 4 h cache of earlier answers, else
//! `m.homeserver.base_url` of `https://<server>/.well-known/matrix/client`. The
//! client's own `delay_cs_api_url` is never used: it is attacker-controlled.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use url::Url;

use crate::openid::net::{MatrixClient, fetch_capped};
use crate::openid::reach::{PerReach, Reach};
use crate::openid::server_name::ServerName;

/// How long a resolved URL is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(4 * 3600);
/// Largest well-known body read.
pub const MAX_BYTES: usize = 64 * 1024;
/// Cap on cached server names.
const CACHE_MAX: usize = 10_000;

/// Resolves and caches CS-API base URLs.
pub struct CsApiResolver {
    overrides: BTreeMap<String, String>,
    web: PerReach<MatrixClient>,
    cache: Mutex<HashMap<String, (Instant, Url)>>,
    /// `https` except in tests, which serve the well-known over plain HTTP.
    scheme: &'static str,
}

impl CsApiResolver {
    /// Well-known documents are fetched with `web`, the client of the server name's reach.
    pub fn new(overrides: BTreeMap<String, String>, web: PerReach<MatrixClient>) -> Self {
        Self {
            overrides,
            web,
            cache: Mutex::default(),
            scheme: "https",
        }
    }

    /// The base URL for `server`, or why there is none.
    pub async fn resolve(&self, server: &str) -> Result<Url, String> {
        if let Some(url) = self.overrides.get(server) {
            return Url::parse(url).map_err(|e| format!("override {url:?} is not a URL: {e}"));
        }
        if let Some((at, url)) = self.cache.lock().ok().and_then(|c| c.get(server).cloned())
            && at.elapsed() < CACHE_TTL
        {
            return Ok(url);
        }
        ServerName::parse(server).map_err(|e| e.to_string())?;
        let well_known = format!("{}://{server}/.well-known/matrix/client", self.scheme);
        let url = self
            .base_url_from(self.client_for(server), &well_known)
            .await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(server.to_owned(), (Instant::now(), url.clone()));
        }
        Ok(url)
    }

    /// The client for requests to `server`'s client-server API: an override is the
    /// operator's, so of private reach; otherwise the server name's reach.
    pub fn client_for(&self, server: &str) -> &MatrixClient {
        if self.overrides.contains_key(server) {
            self.web.get(Reach::Private)
        } else {
            self.web.for_server(server)
        }
    }

    /// `m.homeserver.base_url` of the well-known document at `url`.
    async fn base_url_from(&self, client: &MatrixClient, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|e| format!("bad well-known URL: {e}"))?;
        let (body, _) = fetch_capped(client, parsed, MAX_BYTES).await?;
        parse_client_well_known(&body)
    }
}

/// `m.homeserver.base_url` of a `/.well-known/matrix/client` document.
pub fn parse_client_well_known(body: &[u8]) -> Result<Url, String> {
    let document: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("well-known is not JSON: {e}"))?;
    let base = document["m.homeserver"]["base_url"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("well-known has no m.homeserver.base_url")?;
    Url::parse(base).map_err(|e| format!("base_url {base:?} is not a URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openid::net::MatrixTls;
    use crate::openid::reach::ReachPolicy;
    use rtc_auth::ip_range::IpRangeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Clients under a policy trusting `trusted` and denying `always` for everyone.
    fn web(trusted: &[&str], always: &[&str]) -> PerReach<MatrixClient> {
        let policy = ReachPolicy::new(
            trusted.iter().map(|s| (*s).to_owned()),
            IpRangeSet::parse(always.iter().copied()).unwrap(),
        );
        PerReach::build(Arc::new(policy), |deny| {
            MatrixClient::new(&MatrixTls::default(), deny, 0)
        })
        .unwrap()
    }

    #[tokio::test]
    async fn denied_ip_literals_are_not_fetched() {
        let resolver = CsApiResolver::new(BTreeMap::new(), web(&[], &["169.254.0.0/16"]));
        let error = resolver.resolve("169.254.169.254").await.unwrap_err();
        assert!(error.contains("deny list"), "{error}");
    }

    async fn serve(body: &'static str, status: u16) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/.well-known/matrix/client",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { (axum::http::StatusCode::from_u16(status).unwrap(), body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr.to_string(), hits)
    }

    #[test]
    fn well_known_parsing() {
        assert_eq!(
            parse_client_well_known(
                br#"{"m.homeserver":{"base_url":"https://matrix.example.com"}}"#
            )
            .unwrap()
            .as_str(),
            "https://matrix.example.com/"
        );
        for body in [
            r#"{"m.homeserver":{"base_url":""}}"#,
            r#"{"m.homeserver":{}}"#,
            r#"{"m.homeserver":{"base_url":"not a url"}}"#,
            "not json",
        ] {
            assert!(parse_client_well_known(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[tokio::test]
    async fn successes_are_cached_failures_are_not() {
        let (server, hits) =
            serve(r#"{"m.homeserver":{"base_url":"https://hs.example"}}"#, 200).await;
        let (empty, empty_hits) = serve("{}", 200).await;
        let (missing, _) = serve(r#"{"m.homeserver":{"base_url":"https://x"}}"#, 404).await;
        let mut resolver =
            CsApiResolver::new(BTreeMap::new(), web(&[&server, &empty, &missing], &[]));
        resolver.scheme = "http";
        for _ in 0..3 {
            assert_eq!(
                resolver.resolve(&server).await.unwrap().as_str(),
                "https://hs.example/"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        for _ in 0..2 {
            assert!(resolver.resolve(&empty).await.is_err());
        }
        assert_eq!(empty_hits.load(Ordering::SeqCst), 2);
        assert_eq!(resolver.resolve(&missing).await.unwrap_err(), "HTTP 404");
    }

    #[tokio::test]
    async fn strangers_never_reach_private_addresses() {
        let (server, hits) =
            serve(r#"{"m.homeserver":{"base_url":"https://hs.example"}}"#, 200).await;
        let mut resolver = CsApiResolver::new(BTreeMap::new(), web(&["hs.example"], &[]));
        resolver.scheme = "http";
        let error = resolver.resolve(&server).await.unwrap_err();
        assert_eq!(error, "127.0.0.1 is on the outgoing deny list");
        // Nor through a name that resolves there.
        let port = server.rsplit_once(':').unwrap().1;
        let error = resolver
            .resolve(&format!("localhost:{port}"))
            .await
            .unwrap_err();
        assert!(error.contains("deny list"), "{error}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn overrides_win_and_bad_names_fail() {
        let overrides =
            BTreeMap::from([("example.com".to_owned(), "http://127.0.0.1:8008".to_owned())]);
        let resolver = CsApiResolver::new(overrides, web(&[], &[]));
        assert_eq!(
            resolver.resolve("example.com").await.unwrap().as_str(),
            "http://127.0.0.1:8008/"
        );
        assert!(resolver.resolve("bad name/x").await.is_err());
        assert!(resolver.resolve("0x7f000001").await.is_err());
    }
}
