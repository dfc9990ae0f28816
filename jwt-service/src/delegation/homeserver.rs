//! The MSC4140 management calls the service makes on the user's behalf:
//! `POST <cs_api>/_matrix/client/unstable/org.matrix.msc4140/delayed_events/<id>/{restart|send}`,
//! body `{}`, no `Authorization` (the delay id is the capability), 5 s per attempt.
//! Answers are classified as upstream does (spec §5.1).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::StatusCode;
use url::Url;

use super::cs_api::CsApiResolver;
use crate::openid::discovery::BoxFuture;
use crate::openid::net::{DenyingResolver, describe};

/// Bound on one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Which management action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Push the delayed event's timeout back.
    Restart,
    /// Send the delayed event now.
    Send,
}

impl Action {
    fn path(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Send => "send",
        }
    }
}

/// What one attempt achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 or 204.
    Done,
    /// 404: the delayed event is gone (sent, cancelled or never existed).
    NotFound,
    /// 429 with a server-given delay.
    RetryAfter(Duration),
    /// Anything else worth retrying (5xx, other statuses including other 2xx, network).
    Transient(String),
    /// The CS-API URL could not be found: retrying will not help soon.
    Unresolvable(String),
}

/// Performs management actions (a trait so the job state machine is tested without a
/// homeserver).
pub trait DelayedEvents: Send + Sync {
    /// One attempt of `action` on `delay_id` at `server`'s homeserver.
    fn act<'a>(
        &'a self,
        server: &'a str,
        delay_id: &'a str,
        action: Action,
    ) -> BoxFuture<'a, Outcome>;
}

/// The production implementation.
pub struct HomeserverClient {
    http: reqwest::Client,
    cs_api: Arc<CsApiResolver>,
    resolver: Arc<DenyingResolver>,
}

impl HomeserverClient {
    /// `http` carries the Matrix TLS settings and uses `resolver` (the deny list).
    pub fn new(
        http: reqwest::Client,
        cs_api: Arc<CsApiResolver>,
        resolver: Arc<DenyingResolver>,
    ) -> Self {
        Self {
            http,
            cs_api,
            resolver,
        }
    }

    /// One attempt against a known base URL.
    pub async fn act_at(&self, base: &Url, delay_id: &str, action: Action) -> Outcome {
        // A base URL (from an override or a well-known) may name a denied IP literal.
        if let Err(ip) = self.resolver.check_url(base) {
            return Outcome::Unresolvable(format!("{ip} is on the outgoing deny list"));
        }
        let url = action_url(base, delay_id, action);
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}")
            .timeout(ATTEMPT_TIMEOUT)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return Outcome::Transient(describe(&e)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.unwrap_or_default();
        classify(status, retry_after.as_deref(), &body, SystemTime::now())
    }
}

impl DelayedEvents for HomeserverClient {
    fn act<'a>(
        &'a self,
        server: &'a str,
        delay_id: &'a str,
        action: Action,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.cs_api.resolve(server).await {
                Ok(base) => self.act_at(&base, delay_id, action).await,
                Err(e) => Outcome::Unresolvable(e),
            }
        })
    }
}

/// Go's `url.PathEscape` for one path segment: everything but unreserved characters and
/// `$&+,:;=@` is escaped, so `../x` cannot climb out of the path.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'!')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'*');

/// The action URL under `base` (whose path is kept).
pub fn action_url(base: &Url, delay_id: &str, action: Action) -> String {
    // A segment of only dots would be resolved away by URL parsers: escape the dots.
    let id = if delay_id.chars().all(|c| c == '.') {
        delay_id.replace('.', "%2E")
    } else {
        utf8_percent_encode(delay_id, PATH_SEGMENT).to_string()
    };
    format!(
        "{}/_matrix/client/unstable/org.matrix.msc4140/delayed_events/{id}/{}",
        base.as_str().trim_end_matches('/'),
        action.path()
    )
}

/// Upstream's classification of an answer.
pub fn classify(
    status: StatusCode,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Outcome {
    match status.as_u16() {
        200 | 204 => Outcome::Done,
        404 => Outcome::NotFound,
        429 => {
            if let Some(delay) = retry_after.and_then(|v| parse_retry_after(v, now)) {
                return Outcome::RetryAfter(delay);
            }
            let ms = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["retry_after_ms"].as_u64());
            match ms {
                // Rounded up to whole seconds, as upstream.
                Some(ms) => Outcome::RetryAfter(Duration::from_secs(ms.div_ceil(1000))),
                None => Outcome::Transient("HTTP 429 without a delay".into()),
            }
        }
        other => Outcome::Transient(format!("HTTP {other}")),
    }
}

/// `Retry-After`: delay seconds or an HTTP date.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn classification() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let c = |status: u16, retry: Option<&str>, body: &str| {
            classify(
                StatusCode::from_u16(status).unwrap(),
                retry,
                body.as_bytes(),
                now,
            )
        };
        assert_eq!(c(200, None, ""), Outcome::Done);
        assert_eq!(c(204, None, ""), Outcome::Done);
        assert_eq!(c(404, None, "{}"), Outcome::NotFound);
        assert_eq!(
            c(429, Some("7"), ""),
            Outcome::RetryAfter(Duration::from_secs(7))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            c(429, Some(&date), ""),
            Outcome::RetryAfter(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(c(429, Some(&past), ""), Outcome::RetryAfter(Duration::ZERO));
        assert_eq!(
            c(
                429,
                None,
                r#"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1500}"#
            ),
            Outcome::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            c(429, Some("soon"), r#"{"retry_after_ms":1000}"#),
            Outcome::RetryAfter(Duration::from_secs(1))
        );
        assert!(matches!(c(429, None, "{}"), Outcome::Transient(_)));
        for status in [201, 202, 400, 401, 403, 500, 502, 503] {
            assert!(
                matches!(c(status, None, ""), Outcome::Transient(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn urls_escape_the_delay_id() {
        let base = Url::parse("https://hs.example/prefix/").unwrap();
        assert_eq!(
            action_url(&base, "syd_abc", Action::Restart),
            "https://hs.example/prefix/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_abc/restart"
        );
        assert!(
            action_url(&base, "../../admin", Action::Send)
                .ends_with("/delayed_events/..%2F..%2Fadmin/send")
        );
        assert!(action_url(&base, "..", Action::Send).ends_with("/delayed_events/%2E%2E/send"));
        assert!(
            action_url(&base, "a b?c#d", Action::Send)
                .ends_with("/delayed_events/a%20b%3Fc%23d/send")
        );
        assert!(action_url(&base, "é", Action::Send).ends_with("/delayed_events/%C3%A9/send"));
    }

    #[tokio::test]
    async fn requests_on_the_wire() {
        /// (path, content type, body, had an Authorization header)
        type Seen = (String, String, String, bool);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let record = record.clone();
            async move {
                let path = request.uri().path().to_owned();
                let ct = request
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let auth = request.headers().contains_key("authorization");
                let body = axum::body::to_bytes(request.into_body(), 1024)
                    .await
                    .unwrap();
                record.lock().unwrap().push((
                    path.clone(),
                    ct,
                    String::from_utf8(body.to_vec()).unwrap(),
                    auth,
                ));
                if path.ends_with("/send") {
                    axum::http::StatusCode::NOT_FOUND
                } else {
                    axum::http::StatusCode::OK
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let overrides =
            std::collections::BTreeMap::from([("hs".to_owned(), format!("http://{addr}"))]);
        let open = Arc::new(DenyingResolver::new(Default::default()));
        let cs_api = Arc::new(CsApiResolver::new(
            overrides,
            reqwest::Client::new(),
            open.clone(),
        ));
        let client = HomeserverClient::new(reqwest::Client::new(), cs_api.clone(), open);
        assert_eq!(
            client.act("hs", "d/1", Action::Restart).await,
            Outcome::Done
        );
        assert_eq!(
            client.act("hs", "d/1", Action::Send).await,
            Outcome::NotFound
        );
        assert!(matches!(
            client.act("not a server name", "d", Action::Send).await,
            Outcome::Unresolvable(_)
        ));
        // With loopback denied, the same override is refused before any request.
        let deny = rtc_auth::ip_range::IpRangeSet::parse(["127.0.0.0/8"]).unwrap();
        let strict = HomeserverClient::new(
            reqwest::Client::new(),
            cs_api,
            Arc::new(DenyingResolver::new(deny)),
        );
        assert!(matches!(
            strict.act("hs", "d", Action::Restart).await,
            Outcome::Unresolvable(e) if e.contains("deny list")
        ));
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0],
            (
                "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/d%2F1/restart"
                    .to_owned(),
                "application/json".to_owned(),
                "{}".to_owned(),
                false
            )
        );
        assert_eq!(seen.len(), 2);
    }
}
