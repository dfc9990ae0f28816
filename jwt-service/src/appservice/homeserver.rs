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
use crate::openid::net::{DenyingResolver, describe};

/// Bound on one call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
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

/// The production implementation.
pub struct HttpAppServiceApi {
    http: reqwest::Client,
    cs_api: Arc<CsApiResolver>,
    resolver: Arc<DenyingResolver>,
    server_name: String,
    as_token: Secret,
}

impl HttpAppServiceApi {
    /// `http` carries the Matrix TLS settings and uses `resolver` (the deny list).
    pub fn new(
        http: reqwest::Client,
        cs_api: Arc<CsApiResolver>,
        resolver: Arc<DenyingResolver>,
        server_name: String,
        as_token: Secret,
    ) -> Self {
        Self {
            http,
            cs_api,
            resolver,
            server_name,
            as_token,
        }
    }

    /// `segments` under the homeserver's client-server API, each percent-encoded.
    async fn url(&self, segments: &[&str]) -> Result<Url, String> {
        let mut url = self.cs_api.resolve(&self.server_name).await?;
        if let Err(ip) = self.resolver.check_url(&url) {
            return Err(format!("{ip} is on the outgoing deny list"));
        }
        let display = url.to_string();
        url.path_segments_mut()
            .map_err(|()| format!("{display} cannot take a path"))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends `request` with the application-service token; the status and JSON body.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(StatusCode, Value), String> {
        let token = self
            .as_token
            .expose_str()
            .ok_or("the application-service token is not UTF-8")?;
        let response = request
            .bearer_auth(token)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| describe(&e))?;
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
            let (status, body) = self.send(self.http.get(url)).await?;
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
            let (status, answer) = self.send(self.http.post(url).json(&request)).await?;
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
                .send(self.http.get(url))
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
            let (status, body) = self.send(self.http.get(url)).await?;
            match (status, body["joined"].as_object()) {
                (StatusCode::OK, Some(joined)) => Ok(Some(joined.keys().cloned().collect())),
                (StatusCode::FORBIDDEN, _) => Ok(None),
                _ => Err(failure(status, &body)),
            }
        })
    }
}
