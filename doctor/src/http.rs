//! HTTP as a browser-based client does it, with a timeout on every call; answers are
//! kept whole (status, headers, body) so each check can say who answered.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName};
use serde_json::Value;
use url::Url;

use crate::options::Options;

/// The origin the CORS checks present: Element Call's hosted app.
pub const ORIGIN: &str = "https://call.element.io";

/// An answer, read to the end (bodies are capped).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as text (lossy), at most [`MAX_BODY`] bytes.
    pub body: String,
}

/// Bodies beyond this are cut: the documents checked here are small.
pub const MAX_BODY: usize = 256 * 1024;

impl Answer {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The Matrix `errcode` of a JSON error body.
    pub fn errcode(&self) -> Option<String> {
        self.json()?.get("errcode")?.as_str().map(str::to_owned)
    }

    /// `HTTP 404 (text/html)` or `HTTP 404 M_UNRECOGNIZED`: enough to tell who answered.
    pub fn describe(&self) -> String {
        match self.errcode() {
            Some(code) => format!("HTTP {} {code}", self.status),
            None => format!(
                "HTTP {} ({})",
                self.status,
                self.header("content-type").unwrap_or("no content type")
            ),
        }
    }

    /// Whether `Access-Control-Allow-Origin` lets a web client read this answer.
    pub fn cors_allows(&self) -> bool {
        matches!(self.header("access-control-allow-origin"), Some(v) if v == "*" || v == ORIGIN)
    }
}

/// The HTTP client of one run.
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// A client with the run's timeout, `--ca-file` roots and no proxy (a check of the
    /// deployment from here, not through whatever proxy this shell has).
    pub fn new(options: &Options) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::limited(3))
            // HTTP/1.1 as browsers use for WebSocket upgrades (checked on LiveKit's URL).
            .http1_only()
            .no_proxy()
            .user_agent(concat!("rtc-doctor/", env!("CARGO_PKG_VERSION")));
        for (host, ip) in &options.resolve {
            builder = builder.resolve(host, std::net::SocketAddr::new(*ip, 0));
        }
        if let Some(path) = &options.ca_file {
            let pem =
                std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--ca-file {}: no certificate in it",
                    path.display()
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { client })
    }

    /// `GET url`, with a bearer token when given.
    pub async fn get(&self, url: &Url, token: Option<&str>) -> Result<Answer, String> {
        let mut request = self.client.get(url.clone()).header("origin", ORIGIN);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(url, request.send().await).await
    }

    /// A CORS preflight for `method` with the `Authorization` and `Content-Type` headers.
    pub async fn preflight(&self, url: &Url, method: &str) -> Result<Answer, String> {
        let request = self
            .client
            .request(reqwest::Method::OPTIONS, url.clone())
            .header("origin", ORIGIN)
            .header("access-control-request-method", method)
            .header(
                HeaderName::from_static("access-control-request-headers"),
                "authorization, content-type",
            );
        read(url, request.send().await).await
    }

    /// The opening handshake of a WebSocket (RFC 6455 §4.1) with `key`, as a browser
    /// sends it; the connection is dropped after the answer.
    pub async fn websocket_handshake(&self, url: &Url, key: &str) -> Result<Answer, String> {
        let request = self
            .client
            .get(url.clone())
            .header("origin", ORIGIN)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key);
        read(url, request.send().await).await
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(
        &self,
        url: &Url,
        body: &Value,
        token: Option<&str>,
    ) -> Result<Answer, String> {
        let mut request = self
            .client
            .post(url.clone())
            .header("origin", ORIGIN)
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(url, request.send().await).await
    }
}

async fn read(
    url: &Url,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Answer, String> {
    let mut response = sent.map_err(|e| format!("{}: {}", strip_query(url), describe(&e)))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    if status == 101 {
        // Switching protocols: no HTTP body follows.
        return Ok(Answer {
            status,
            headers,
            body: String::new(),
        });
    }
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{}: {}", strip_query(url), describe(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            body.truncate(MAX_BODY);
            break;
        }
    }
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The URL without its query (which may hold a token), for messages.
pub fn strip_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// A transport error with its causes, e.g. `timeout` or `connection failed: ... certificate`.
pub fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "too many redirects"
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

/// `base` joined with an absolute `path`, keeping `base`'s own path as a prefix
/// (`https://h/livekit/jwt` + `/get_token` → `https://h/livekit/jwt/get_token`).
pub fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_the_prefix() {
        let base = Url::parse("https://h.example/livekit/jwt/").unwrap();
        assert_eq!(
            join(&base, "/get_token").as_str(),
            "https://h.example/livekit/jwt/get_token"
        );
        let root = Url::parse("https://h.example").unwrap();
        assert_eq!(
            join(&root, "/_matrix/client/versions").as_str(),
            "https://h.example/_matrix/client/versions"
        );
    }
}
