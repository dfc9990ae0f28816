//! The calls this service makes to its homeserver as an application service, each with
//! `Authorization: Bearer <as_token>` to the client-server API found from
//! `LIVEKIT_HS_SERVER_NAME` (overrides or well-known, never from a request):
//!
//! - MSC4502 `GET …/io.element.msc4502/rooms/{roomId}/is_joined?mxid=…|server_name=…`
//!   (`{"joined": bool}`; the registration needs the `is_joined` scope);
//! - MSC4512 `POST …/io.element.msc4512/appservice/fed_proxy` `{destination, method,
//!   path, body}` → `{status, content}`: the homeserver signs and sends a federation
//!   request for us;
//! - MSC4140 `GET …/org.matrix.msc4140/delayed_events/{delayId}?user_id=…`, the delayed
//!   event as its owner sees it (the application service acting as the user);
//! - `GET /_matrix/client/v3/rooms/{roomId}/joined_members`, for kick on leave.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use rtc_auth::secret::Secret;
use serde_json::{Value, json};
use url::Url;

use crate::delegation::cs_api::CsApiResolver;
use crate::openid::discovery::BoxFuture;
use crate::openid::net::{describe, read_capped};

/// Bound on one call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read: a big room's `joined_members` (about 100 bytes a member) fits
/// many times over, an endless body does not fill memory.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Where a remote server's federation route lives.
pub const FEDERATION_GET_TOKEN: &str =
    "/_matrix/federation/unstable/io.element.msc4195/rtc/livekit/get_token";

/// Whose membership is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    /// A user id.
    User(&'a str),
    /// A server name (any of its users joined).
    Server(&'a str),
}

/// A remote server's answer to a relayed token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relayed {
    /// 200 with a `jwt`.
    Token(String),
    /// Anything else: its status and errcode.
    Refused {
        /// The remote server's status.
        status: u16,
        /// Its errcode (empty if none).
        errcode: String,
    },
}

/// A delayed event as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayedEvent {
    /// The room it will be sent to.
    pub room_id: String,
    /// Its delay.
    pub delay: Duration,
}

/// Why a delayed event was not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The homeserver has no such delayed event for that user.
    #[error("no such delayed event")]
    NotFound,
    /// The question could not be answered.
    #[error("{0}")]
    Failed(String),
}

/// The homeserver's answers (a trait so flows are tested without one).
pub trait AppServiceApi: Send + Sync {
    /// Is `member` joined to `room_id`?
    fn is_joined<'a>(
        &'a self,
        room_id: &'a str,
        member: Member<'a>,
    ) -> BoxFuture<'a, Result<bool, String>>;
    /// Sends `body` to `destination`'s federation `get_token` route through the
    /// homeserver.
    fn relay_get_token<'a>(
        &'a self,
        destination: &'a str,
        body: Value,
    ) -> BoxFuture<'a, Result<Relayed, String>>;
    /// The delayed event `delay_id` of `user_id`.
    fn delayed_event<'a>(
        &'a self,
        delay_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<DelayedEvent, LookupError>>;
    /// The joined members of `room_id`; `None` when the homeserver refuses (403: none of
    /// our users, so the homeserver itself, is in the room any more).
    fn joined_members<'a>(
        &'a self,
        room_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<HashSet<String>>, String>>;
}

/// The production implementation: the homeserver found and reached through `cs_api`
/// (with the client of `server_name`'s reach).
pub struct HttpAppServiceApi {
    cs_api: Arc<CsApiResolver>,
    server_name: String,
    as_token: Secret,
}

impl HttpAppServiceApi {
    /// Calls `server_name`'s homeserver with `as_token`.
    pub fn new(cs_api: Arc<CsApiResolver>, server_name: String, as_token: Secret) -> Self {
        Self {
            cs_api,
            server_name,
            as_token,
        }
    }

    /// `segments` under the homeserver's client-server API, each percent-encoded.
    async fn url(&self, segments: &[&str]) -> Result<Url, String> {
        let mut url = self.cs_api.resolve(&self.server_name).await?;
        let display = url.to_string();
        url.path_segments_mut()
            .map_err(|()| format!("{display} cannot take a path"))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a `method` request to `url` (with `body` as JSON) and the
    /// application-service token; the status and JSON body. A URL whose host is on the
    /// deny list is refused before anything is sent.
    async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), String> {
        let token = self
            .as_token
            .expose_str()
            .ok_or("the application-service token is not UTF-8")?;
        let mut request = self
            .cs_api
            .client_for(&self.server_name)
            .request(method, url)
            .map_err(|denied| denied.to_string())?;
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .bearer_auth(token)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        let body = read_capped(response, MAX_ANSWER_BYTES).await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// `HTTP 403 M_FORBIDDEN`, for logs.
fn failure(status: StatusCode, body: &Value) -> String {
    format!(
        "homeserver answered HTTP {} {}",
        status.as_u16(),
        body["errcode"].as_str().unwrap_or("")
    )
}

impl AppServiceApi for HttpAppServiceApi {
    fn is_joined<'a>(
        &'a self,
        room_id: &'a str,
        member: Member<'a>,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let mut url = self
                .url(&[
                    "_matrix",
                    "client",
                    "unstable",
                    "io.element.msc4502",
                    "rooms",
                    room_id,
                    "is_joined",
                ])
                .await?;
            match member {
                Member::User(user) => url.query_pairs_mut().append_pair("mxid", user),
                Member::Server(server) => url.query_pairs_mut().append_pair("server_name", server),
            };
            let (status, body) = self.send(reqwest::Method::GET, url, None).await?;
            match (status, body["joined"].as_bool()) {
                (StatusCode::OK, Some(joined)) => Ok(joined),
                _ => Err(failure(status, &body)),
            }
        })
    }

    fn relay_get_token<'a>(
        &'a self,
        destination: &'a str,
        body: Value,
    ) -> BoxFuture<'a, Result<Relayed, String>> {
        Box::pin(async move {
            let url = self
                .url(&[
                    "_matrix",
                    "client",
                    "unstable",
                    "io.element.msc4512",
                    "appservice",
                    "fed_proxy",
                ])
                .await?;
            let request = json!({
                "destination": destination,
                "method": "POST",
                "path": FEDERATION_GET_TOKEN,
                "body": body,
            });
            let (status, answer) = self
                .send(reqwest::Method::POST, url, Some(&request))
                .await?;
            if status != StatusCode::OK {
                return Err(failure(status, &answer));
            }
            let remote_status = answer["status"].as_u64().unwrap_or(0);
            let content = &answer["content"];
            match (remote_status, content["jwt"].as_str()) {
                (200, Some(jwt)) => Ok(Relayed::Token(jwt.to_owned())),
                _ => Ok(Relayed::Refused {
                    status: u16::try_from(remote_status).unwrap_or(0),
                    errcode: content["errcode"].as_str().unwrap_or("").to_owned(),
                }),
            }
        })
    }

    fn delayed_event<'a>(
        &'a self,
        delay_id: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<DelayedEvent, LookupError>> {
        Box::pin(async move {
            let mut url = self
                .url(&[
                    "_matrix",
                    "client",
                    "unstable",
                    "org.matrix.msc4140",
                    "delayed_events",
                    delay_id,
                ])
                .await
                .map_err(LookupError::Failed)?;
            url.query_pairs_mut().append_pair("user_id", user_id);
            let (status, body) = self
                .send(reqwest::Method::GET, url, None)
                .await
                .map_err(LookupError::Failed)?;
            if status == StatusCode::NOT_FOUND && body["errcode"] == "M_NOT_FOUND" {
                return Err(LookupError::NotFound);
            }
            // `delay_ms` now, `delay` in earlier drafts of MSC4140.
            let delay = body["delay_ms"].as_u64().or(body["delay"].as_u64());
            match (status, body["room_id"].as_str(), delay) {
                (StatusCode::OK, Some(room_id), Some(ms)) => Ok(DelayedEvent {
                    room_id: room_id.to_owned(),
                    delay: Duration::from_millis(ms),
                }),
                _ => Err(LookupError::Failed(failure(status, &body))),
            }
        })
    }

    fn joined_members<'a>(
        &'a self,
        room_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<HashSet<String>>, String>> {
        Box::pin(async move {
            let url = self
                .url(&[
                    "_matrix",
                    "client",
                    "v3",
                    "rooms",
                    room_id,
                    "joined_members",
                ])
                .await?;
            let (status, body) = self.send(reqwest::Method::GET, url, None).await?;
            match (status, body["joined"].as_object()) {
                (StatusCode::OK, Some(joined)) => Ok(Some(joined.keys().cloned().collect())),
                (StatusCode::FORBIDDEN, _) => Ok(None),
                _ => Err(failure(status, &body)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openid::net::{MatrixClient, MatrixTls};
    use crate::openid::reach::{PerReach, ReachPolicy};
    use rtc_auth::ip_range::IpRangeSet;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An application-service client of `hs`, whose client-server API is at `base`
    /// (an override, as an operator configures it), `always_denied` refused.
    fn api(base: &str, always_denied: &[&str]) -> HttpAppServiceApi {
        let policy = ReachPolicy::new(
            [],
            IpRangeSet::parse(always_denied.iter().copied()).unwrap(),
        );
        let web = PerReach::build(Arc::new(policy), |deny| {
            MatrixClient::new(&MatrixTls::default(), deny, 0)
        })
        .unwrap();
        let overrides = BTreeMap::from([("hs".to_owned(), base.to_owned())]);
        HttpAppServiceApi::new(
            Arc::new(CsApiResolver::new(overrides, web)),
            "hs".to_owned(),
            Secret::new("as-token"),
        )
    }

    /// A homeserver on loopback answering every request with `body`; its URL and a
    /// request counter.
    async fn homeserver(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            async move { body }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), hits)
    }

    #[tokio::test]
    async fn answers_past_the_cap_are_not_read() {
        let members = br#"{"joined":{"@a:hs":{}}}"#.to_vec();
        let (base, _) = homeserver(members.clone()).await;
        assert_eq!(
            api(&base, &[]).joined_members("!r").await.unwrap(),
            Some(HashSet::from(["@a:hs".to_owned()]))
        );
        let mut huge = members;
        huge.resize(MAX_ANSWER_BYTES + 1, b' ');
        let (base, _) = homeserver(huge).await;
        let error = api(&base, &[]).joined_members("!r").await.unwrap_err();
        assert!(error.contains("larger than"), "{error}");
    }

    #[tokio::test]
    async fn denied_addresses_are_not_called() {
        let (base, hits) = homeserver(br#"{"joined":true}"#.to_vec()).await;
        let error = api(&base, &["127.0.0.0/8"])
            .is_joined("!r", Member::User("@a:hs"))
            .await
            .unwrap_err();
        assert!(error.contains("deny list"), "{error}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        assert!(
            api(&base, &[])
                .is_joined("!r", Member::User("@a:hs"))
                .await
                .unwrap()
        );
    }
}
