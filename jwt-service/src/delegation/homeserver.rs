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
use crate::openid::net::{MatrixClient, describe, read_capped};

/// Bound on one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest delay a homeserver's 429 may ask for: a job never sleeps longer than this
/// between attempts, whatever `Retry-After` or `retry_after_ms` say.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Largest answer body read; only a 429's is read at all (for `retry_after_ms`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

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
    /// 429 with a server-given delay (at most [`MAX_RETRY_AFTER`]).
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

/// The production implementation: the CS-API URL from `cs_api`, the request with the
/// client of the server's reach.
pub struct HomeserverClient {
    cs_api: Arc<CsApiResolver>,
}

impl HomeserverClient {
    /// Calls homeservers found (and reached) through `cs_api`.
    pub fn new(cs_api: Arc<CsApiResolver>) -> Self {
        Self { cs_api }
    }

    /// One attempt against a known base URL.
    async fn act_at(client: &MatrixClient, base: &Url, delay_id: &str, action: Action) -> Outcome {
        let Ok(url) = Url::parse(&action_url(base, delay_id, action)) else {
            return Outcome::Unresolvable(format!("no action URL under {base}"));
        };
        // A base URL (from an override or a well-known) may name a denied IP literal.
        let request = match client.request(reqwest::Method::POST, url) {
            Ok(request) => request,
            Err(denied) => return Outcome::Unresolvable(denied.to_string()),
        };
        let response = request
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
        // Only a 429's body matters; an unreadable or oversized one just has no delay.
        let body = if status == StatusCode::TOO_MANY_REQUESTS {
            read_capped(response, MAX_BODY_BYTES)
                .await
                .unwrap_or_default()
        } else {
            Vec::new()
        };
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
                Ok(base) => {
                    let client = self.cs_api.client_for(server);
                    Self::act_at(client, &base, delay_id, action).await
                }
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

/// Upstream's classification of an answer; delays are capped at [`MAX_RETRY_AFTER`].
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
                return Outcome::RetryAfter(delay.min(MAX_RETRY_AFTER));
            }
            let ms = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["retry_after_ms"].as_u64());
            match ms {
                // Rounded up to whole seconds, as upstream.
                Some(ms) => {
                    Outcome::RetryAfter(Duration::from_secs(ms.div_ceil(1000)).min(MAX_RETRY_AFTER))
                }
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
    use crate::openid::net::MatrixTls;
    use crate::openid::reach::{PerReach, ReachPolicy};
    use std::collections::BTreeMap;
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

    #[test]
    fn server_chosen_delays_are_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let too_many = StatusCode::TOO_MANY_REQUESTS;
        for huge in [
            "18446744073709551615",
            "99999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(
                classify(too_many, Some(huge), b"", now),
                Outcome::RetryAfter(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
        assert_eq!(
            classify(
                too_many,
                None,
                br#"{"retry_after_ms":18446744073709551615}"#,
                now
            ),
            Outcome::RetryAfter(MAX_RETRY_AFTER)
        );
    }

    /// A homeserver at 127.0.0.1 answering every action with `status`, `headers` and
    /// `body`; returns the overrides naming it `hs`.
    async fn homeserver(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: Vec<u8>,
    ) -> BTreeMap<String, String> {
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move {
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                for (name, value) in headers {
                    response
                        .headers_mut()
                        .insert(*name, axum::http::HeaderValue::from_static(value));
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        BTreeMap::from([("hs".to_owned(), format!("http://{addr}"))])
    }

    fn homeserver_client(
        overrides: BTreeMap<String, String>,
        always_denied: &[&str],
    ) -> HomeserverClient {
        let policy = ReachPolicy::new(
            [],
            rtc_auth::ip_range::IpRangeSet::parse(always_denied.iter().copied()).unwrap(),
        );
        let web = PerReach::build(Arc::new(policy), |deny| {
            MatrixClient::new(&MatrixTls::default(), deny, 0)
        })
        .unwrap();
        HomeserverClient::new(Arc::new(CsApiResolver::new(overrides, web)))
    }

    #[tokio::test]
    async fn huge_answers_are_not_read() {
        // A delay at the end of a body past the cap is never seen.
        let mut body = vec![b' '; MAX_BODY_BYTES];
        body.extend_from_slice(br#"{"retry_after_ms":5000}"#);
        let hs = homeserver_client(homeserver(429, &[], body).await, &[]);
        assert!(matches!(
            hs.act("hs", "d", Action::Send).await,
            Outcome::Transient(_)
        ));
        let small = br#"{"retry_after_ms":5000}"#.to_vec();
        let hs = homeserver_client(homeserver(429, &[], small).await, &[]);
        assert_eq!(
            hs.act("hs", "d", Action::Send).await,
            Outcome::RetryAfter(Duration::from_secs(5))
        );
        let hs = homeserver_client(
            homeserver(429, &[("retry-after", "18446744073709551615")], Vec::new()).await,
            &[],
        );
        assert_eq!(
            hs.act("hs", "d", Action::Send).await,
            Outcome::RetryAfter(MAX_RETRY_AFTER)
        );
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
        let overrides = BTreeMap::from([("hs".to_owned(), format!("http://{addr}"))]);
        let client = homeserver_client(overrides.clone(), &[]);
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
        // With loopback denied for everyone, the same override is refused before any
        // request.
        let strict = homeserver_client(overrides, &["127.0.0.0/8"]);
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
