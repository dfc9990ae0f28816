//! Where a homeserver's client-server API lives, for the delayed-event calls (spec
//! §5.2): `LIVEKIT_CS_API_URL_OVERRIDES`, else a 4 h cache of earlier answers, else
//! `m.homeserver.base_url` of `https://<server>/.well-known/matrix/client`. The
//! client's own `delay_cs_api_url` is never used: it is attacker-controlled.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use url::Url;

use std::sync::Arc;

use crate::openid::net::{DenyingResolver, fetch_capped};
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
    http: reqwest::Client,
    resolver: Arc<DenyingResolver>,
    cache: Mutex<HashMap<String, (Instant, Url)>>,
    /// `https` except in tests, which serve the well-known over plain HTTP.
    scheme: &'static str,
}

impl CsApiResolver {
    /// `http` carries the Matrix TLS settings and uses `resolver` (the deny list).
    pub fn new(
        overrides: BTreeMap<String, String>,
        http: reqwest::Client,
        resolver: Arc<DenyingResolver>,
    ) -> Self {
        Self {
            overrides,
            http,
            resolver,
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
        let url = self
            .base_url_from(&format!(
                "{}://{server}/.well-known/matrix/client",
                self.scheme
            ))
            .await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(server.to_owned(), (Instant::now(), url.clone()));
        }
        Ok(url)
    }

    /// `m.homeserver.base_url` of the well-known document at `url`.
    pub async fn base_url_from(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|e| format!("bad well-known URL: {e}"))?;
        if let Err(ip) = self.resolver.check_url(&parsed) {
            return Err(format!("{ip} is on the outgoing deny list"));
        }
        let body = fetch_capped(&self.http, url, MAX_BYTES).await?;
        let document: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("well-known is not JSON: {e}"))?;
        let base = document["m.homeserver"]["base_url"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("well-known has no m.homeserver.base_url")?;
        Url::parse(base).map_err(|e| format!("base_url {base:?} is not a URL: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn open() -> Arc<DenyingResolver> {
        Arc::new(DenyingResolver::new(Default::default()))
    }

    #[tokio::test]
    async fn denied_ip_literals_are_not_fetched() {
        let deny = rtc_auth::ip_range::IpRangeSet::parse(["169.254.0.0/16"]).unwrap();
        let resolver = CsApiResolver::new(
            BTreeMap::new(),
            reqwest::Client::new(),
            Arc::new(DenyingResolver::new(deny)),
        );
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
        (format!("http://{addr}/.well-known/matrix/client"), hits)
    }

    #[tokio::test]
    async fn well_known_parsing() {
        let resolver = CsApiResolver::new(BTreeMap::new(), reqwest::Client::new(), open());
        let (ok, _) = serve(
            r#"{"m.homeserver":{"base_url":"https://matrix.example.com"}}"#,
            200,
        )
        .await;
        assert_eq!(
            resolver.base_url_from(&ok).await.unwrap().as_str(),
            "https://matrix.example.com/"
        );
        for (body, status) in [
            (r#"{"m.homeserver":{"base_url":"https://x"}}"#, 404),
            (r#"{"m.homeserver":{"base_url":""}}"#, 200),
            (r#"{"m.homeserver":{}}"#, 200),
            ("not json", 200),
        ] {
            let (url, _) = serve(body, status).await;
            assert!(
                resolver.base_url_from(&url).await.is_err(),
                "{body} {status}"
            );
        }
    }

    #[tokio::test]
    async fn successes_are_cached_failures_are_not() {
        let (url, hits) = serve(r#"{"m.homeserver":{"base_url":"https://hs.example"}}"#, 200).await;
        let server = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let mut resolver = CsApiResolver::new(BTreeMap::new(), reqwest::Client::new(), open());
        resolver.scheme = "http";
        for _ in 0..3 {
            assert_eq!(
                resolver.resolve(&server).await.unwrap().as_str(),
                "https://hs.example/"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        let (url, hits) = serve("{}", 200).await;
        let server = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        for _ in 0..2 {
            assert!(resolver.resolve(&server).await.is_err());
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn overrides_win_and_bad_names_fail() {
        let overrides =
            BTreeMap::from([("example.com".to_owned(), "http://127.0.0.1:8008".to_owned())]);
        let resolver = CsApiResolver::new(overrides, reqwest::Client::new(), open());
        assert_eq!(
            resolver.resolve("example.com").await.unwrap().as_str(),
            "http://127.0.0.1:8008/"
        );
        assert!(resolver.resolve("bad name/x").await.is_err());
    }
}
