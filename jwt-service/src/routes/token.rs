//! `POST /get_token` (MSC4195), `POST /sfu/get` (legacy) and
//! `POST /delegate_delayed_leave` (spec §1.2-§1.4): OpenID token in, LiveKit URL and
//! JWT (or a delegated leave job) out.
//!
//! Order of checks, as upstream (tests count homeserver calls): method → JSON decode →
//! validation (no network yet) → OpenID verification → claimed user → authorisation →
//! signing → CS-API resolution → room creation → job registration.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use tracing::Instrument as _;

use crate::delegation::job::{JobKey, JobParams};
use crate::delegation::manager::timeout_from_ms;
use crate::error::ApiError;
use crate::go_json::{self, Schema};
use crate::livekit::alias;
use crate::livekit::twirp::RoomOutcome;
use crate::request::{
    DelayParams, GET_TOKEN, GetTokenBody, Invalid, SFU_GET, SfuGetBody, Subject, TokenRequest,
};
use crate::state::{AppState, Services};

/// Largest body read (upstream reads without limit; real bodies are under 2 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The delegation rule's message, shared by the 400 (token endpoints) and the 403.
const DELEGATION_FULL_ACCESS_ONLY: &str =
    "Delegation of delayed events is only supported for full access users";

/// `/get_token`.
pub async fn get_token(State(state): State<AppState>, request: Request) -> Response {
    let endpoint = Endpoint {
        name: "/get_token",
        schema: &GET_TOKEN,
        flow: Flow::Token,
    };
    handle(state, request, endpoint, GetTokenBody::validate).await
}

/// `/sfu/get`.
pub async fn sfu_get(State(state): State<AppState>, request: Request) -> Response {
    let endpoint = Endpoint {
        name: "/sfu/get",
        schema: &SFU_GET,
        flow: Flow::Token,
    };
    handle(state, request, endpoint, SfuGetBody::validate).await
}

/// `/delegate_delayed_leave`.
pub async fn delegate_delayed_leave(State(state): State<AppState>, request: Request) -> Response {
    let endpoint = Endpoint {
        name: "/delegate_delayed_leave",
        schema: &GET_TOKEN,
        flow: Flow::Delegate,
    };
    handle(state, request, endpoint, GetTokenBody::validate_delegation).await
}

/// What distinguishes the three endpoints.
struct Endpoint {
    name: &'static str,
    schema: &'static Schema,
    flow: Flow,
}

/// What to do after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Issue a token (and delegate when asked).
    Token,
    /// Only delegate.
    Delegate,
}

async fn handle<T: DeserializeOwned>(
    state: AppState,
    request: Request,
    endpoint: Endpoint,
    validate: fn(T) -> Result<TokenRequest, Invalid>,
) -> Response {
    let name = endpoint.name;
    let response = process(&state, request, endpoint, validate).await;
    state.0.metrics.request(name, response.status().as_u16());
    response
}

async fn process<T: DeserializeOwned>(
    state: &AppState,
    request: Request,
    endpoint: Endpoint,
    validate: fn(T) -> Result<TokenRequest, Invalid>,
) -> Response {
    match *request.method() {
        Method::OPTIONS => return StatusCode::OK.into_response(),
        Method::POST => {}
        _ => return StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("");
    // Upstream logs every request's origin and remote address. As span fields they
    // prefix the line each request logs about its outcome instead of taking a line of
    // their own: one log write per request instead of two.
    let span = tracing::info_span!("request", endpoint = endpoint.name, ?peer, origin);
    checked(state, request, endpoint, validate, peer)
        .instrument(span)
        .await
}

/// Everything after the method check, inside the request's span: every way out logs.
async fn checked<T: DeserializeOwned>(
    state: &AppState,
    request: Request,
    endpoint: Endpoint,
    validate: fn(T) -> Result<TokenRequest, Invalid>,
    peer: Option<SocketAddr>,
) -> Response {
    if let (Some(limiter), Some(peer)) = (&state.0.rate_limit, peer)
        && !limiter.allow(peer.ip(), Instant::now())
    {
        tracing::warn!("rate limit exceeded");
        return ApiError::rate_limited().into_response();
    }
    let Ok(body) = to_bytes(request.into_body(), MAX_BODY_BYTES).await else {
        tracing::warn!("request body larger than {MAX_BODY_BYTES} bytes");
        return ApiError::too_large().into_response();
    };
    let parsed = match go_json::decode::<T>(&body, endpoint.schema) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!("request body is not acceptable JSON: {e}");
            return ApiError::not_json().into_response();
        }
    };
    let token_request = match validate(parsed) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!("invalid request: {e}");
            return ApiError::bad_json(e.0).into_response();
        }
    };
    let result = match endpoint.flow {
        Flow::Token => issue(&state.0, token_request).await,
        Flow::Delegate => delegate(&state.0, token_request).await,
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The token flow after validation.
async fn issue(services: &Services, request: TokenRequest) -> Result<Response, ApiError> {
    let server = &request.openid.matrix_server_name;
    let user_id = verified_user(services, &request).await?;
    let full_access = services.full_access.allows(server);
    if request.delay.is_some() && !full_access {
        tracing::warn!(%user_id, "delegation asked for by a restricted user");
        return Err(ApiError::bad_json(DELEGATION_FULL_ACCESS_ONLY));
    }
    let (room, identity) = derive_ids(&request.subject, &user_id);
    let jwt = services
        .signer
        .join_token(&identity, &room, SystemTime::now())
        .map_err(|e| {
            tracing::error!("{e}");
            ApiError::internal()
        })?;
    if full_access {
        // Resolved before the room is created, so a failure leaves no stray room.
        let job = match &request.delay {
            Some(delay) => Some(job_params(services, server, delay, &room, &identity).await?),
            None => None,
        };
        match services.rooms.create_room(&room).await {
            Ok(outcome) => {
                tracing::info!(%room, ?outcome, "LiveKit room ready");
                services.metrics.room(match outcome {
                    RoomOutcome::Created => "created",
                    RoomOutcome::Reused => "reused",
                });
            }
            Err(e) => {
                tracing::error!(%room, "unable to create room on SFU: {e}");
                services.metrics.room("failed");
                return Err(ApiError::room_creation_failed());
            }
        }
        if let Some(job) = job {
            services.delegation.add(job, &user_id).await.map_err(|e| {
                tracing::warn!(%user_id, %room, "delegation refused: {e}");
                ApiError::from(e)
            })?;
        }
    }
    tracing::info!(%user_id, %room, %identity, full_access, "issued LiveKit token");
    let body = go_json::string_object_line(&[("url", &services.livekit_url), ("jwt", &jwt)]);
    Ok((StatusCode::OK, Body::from(body)).into_response())
}

/// `/delegate_delayed_leave` after validation: no token, no room; just the job.
async fn delegate(services: &Services, request: TokenRequest) -> Result<Response, ApiError> {
    let server = &request.openid.matrix_server_name;
    let user_id = verified_user(services, &request).await?;
    if !services.full_access.allows(server) {
        tracing::warn!(%user_id, "delegation asked for by a restricted user");
        return Err(ApiError::forbidden(DELEGATION_FULL_ACCESS_ONLY));
    }
    let Some(delay) = &request.delay else {
        tracing::warn!(%user_id, "delegation without delay parameters");
        return Err(ApiError::bad_json(
            "The request body is missing `delay_id` or `delay_timeout`",
        ));
    };
    let (room, identity) = derive_ids(&request.subject, &user_id);
    let job = job_params(services, server, delay, &room, &identity).await?;
    services.delegation.add(job, &user_id).await.map_err(|e| {
        tracing::warn!(%user_id, %room, "delegation refused: {e}");
        ApiError::from(e)
    })?;
    tracing::info!(%user_id, %room, "delegated delayed leave");
    Ok((StatusCode::OK, Body::from("{}\n")).into_response())
}

/// The OpenID check plus, for MSC4195 bodies, the claimed-user check.
async fn verified_user(services: &Services, request: &TokenRequest) -> Result<String, ApiError> {
    let server = &request.openid.matrix_server_name;
    let user_id = services
        .verifier
        .verify(&request.openid)
        .await
        .map_err(|e| {
            tracing::warn!(%server, "OpenID token rejected: {e}");
            services.metrics.openid_failure(e.cause());
            ApiError::unauthorized()
        })?;
    if let Subject::Member {
        claimed_user_id, ..
    } = &request.subject
        && *claimed_user_id != user_id
    {
        tracing::warn!(%user_id, %claimed_user_id, "claimed user does not match the token");
        services.metrics.openid_failure("claimed_user_mismatch");
        return Err(ApiError::unauthorized());
    }
    Ok(user_id)
}

/// The LiveKit room alias and identity for a verified user.
fn derive_ids(subject: &Subject, user_id: &str) -> (String, String) {
    match subject {
        Subject::Member {
            room_id,
            slot_id,
            member_id,
            claimed_device_id,
            ..
        } => (
            alias::room_alias(room_id, slot_id),
            alias::member_identity(user_id, claimed_device_id, member_id),
        ),
        Subject::Legacy { room, device_id } => (
            alias::room_alias(room, alias::LEGACY_SLOT),
            alias::legacy_identity(user_id, device_id),
        ),
    }
}

/// A job's parameters, once the homeserver's client-server API is known to resolve.
async fn job_params(
    services: &Services,
    server: &str,
    delay: &DelayParams,
    room: &str,
    identity: &str,
) -> Result<JobParams, ApiError> {
    if let Err(e) = services.cs_api.resolve(server).await {
        tracing::warn!(%server, "cannot resolve the client-server API: {e}");
        return Err(ApiError::cs_api_unresolvable());
    }
    Ok(JobParams {
        delay_id: delay.delay_id.clone(),
        delay_timeout: timeout_from_ms(delay.delay_timeout_ms),
        server_name: server.to_owned(),
        key: JobKey {
            room: room.to_owned(),
            identity: identity.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt;
    use rtc_auth::secret::Secret;
    use tower::ServiceExt;

    use crate::config::FullAccess;
    use crate::delegation::cs_api::CsApiResolver;
    use crate::delegation::homeserver::{Action, DelayedEvents, Outcome};
    use crate::delegation::job::{JobDeps, JobKey, ParticipantLookup, Presence};
    use crate::delegation::manager::Manager;
    use crate::delegation::store::NoStore;
    use crate::livekit::token::{Claims, TokenSigner};
    use crate::livekit::twirp::{RoomCreator, RoomOutcome, TwirpError};
    use crate::openid::discovery::BoxFuture;
    use crate::openid::userinfo::{OpenIdError, Verifier};
    use crate::request::OpenIdToken;
    use crate::routes::app;
    use crate::state::{AppState, Services};

    #[derive(Default)]
    struct FakeVerifier {
        calls: Mutex<Vec<OpenIdToken>>,
    }

    impl Verifier for FakeVerifier {
        fn verify<'a>(
            &'a self,
            token: &'a OpenIdToken,
        ) -> BoxFuture<'a, Result<String, OpenIdError>> {
            self.calls.lock().unwrap().push(token.clone());
            let answer = match token.access_token.as_str() {
                "alice-token" => Ok(format!("@alice:{}", token.matrix_server_name)),
                _ => Err(OpenIdError::Status {
                    status: 401,
                    errcode: "M_UNKNOWN_TOKEN".into(),
                }),
            };
            Box::pin(async move { answer })
        }
    }

    #[derive(Default)]
    struct FakeRooms {
        created: Mutex<Vec<String>>,
        fail: bool,
    }

    impl RoomCreator for FakeRooms {
        fn create_room<'a>(
            &'a self,
            alias: &'a str,
        ) -> BoxFuture<'a, Result<RoomOutcome, TwirpError>> {
            self.created.lock().unwrap().push(alias.to_owned());
            let fail = self.fail;
            Box::pin(async move {
                if fail {
                    Err(TwirpError::Status {
                        status: 502,
                        code: String::new(),
                        msg: String::new(),
                    })
                } else {
                    Ok(RoomOutcome::Created)
                }
            })
        }
    }

    /// Jobs in these tests never get to call out (time does not advance that far).
    struct NeverCalled;

    impl DelayedEvents for NeverCalled {
        fn act<'a>(&'a self, _: &'a str, _: &'a str, _: Action) -> BoxFuture<'a, Outcome> {
            Box::pin(async { Outcome::Transient("test".into()) })
        }
    }

    impl ParticipantLookup for NeverCalled {
        fn presence<'a>(&'a self, _: &'a JobKey) -> BoxFuture<'a, Presence> {
            Box::pin(async { Presence::Unknown })
        }
    }

    struct Harness {
        state: AppState,
        verifier: Arc<FakeVerifier>,
        rooms: Arc<FakeRooms>,
    }

    fn harness(full_access: &[&str], rooms_fail: bool) -> Harness {
        let verifier = Arc::new(FakeVerifier::default());
        let rooms = Arc::new(FakeRooms {
            fail: rooms_fail,
            ..FakeRooms::default()
        });
        let state = AppState(Arc::new(Services {
            rtc_transports: None,
            livekit_url: "wss://sfu.example/livekit?a=1&b=2".into(),
            full_access: match full_access {
                ["*"] => FullAccess::Everyone,
                list => FullAccess::Servers(list.iter().map(|s| (*s).to_owned()).collect()),
            },
            signer: TokenSigner::new("devkey", &Secret::new("devsecret")),
            verifier: verifier.clone(),
            rooms: rooms.clone(),
            rate_limit: None,
            delegation: Manager::new(
                Arc::new(NoStore),
                Arc::new(JobDeps {
                    homeserver: Arc::new(NeverCalled),
                    participants: Arc::new(NeverCalled),
                    sanity_interval: None,
                }),
            ),
            cs_api: Arc::new(CsApiResolver::new(
                std::collections::BTreeMap::from([(
                    "example.com".to_owned(),
                    "http://127.0.0.1:9".to_owned(),
                )]),
                crate::openid::reach::PerReach::build(
                    Arc::new(crate::openid::reach::ReachPolicy::new(
                        [],
                        Default::default(),
                    )),
                    |deny| crate::openid::net::MatrixClient::new(&Default::default(), deny, 0),
                )
                .unwrap(),
            )),
            api_key: "devkey".into(),
            api_secret: Secret::new("devsecret"),
            metrics: crate::metrics::Metrics::default(),
            metrics_enabled: true,
        }));
        Harness {
            state,
            verifier,
            rooms,
        }
    }

    struct Answer {
        status: u16,
        headers: axum::http::HeaderMap,
        body: String,
    }

    async fn call(h: &Harness, method: &str, path: &str, body: &str) -> Answer {
        let request = HttpRequest::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        let response = app(h.state.clone()).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    fn error_body(errcode: &str, message: &str) -> String {
        format!("{{\"errcode\":\"{errcode}\",\"error\":\"{message}\"}}\n")
    }

    const GOOD: &str = r#"{"room_id":"!room:example.com","slot_id":"m.call#ROOM","openid_token":{"access_token":"alice-token","token_type":"Bearer","matrix_server_name":"example.com","expires_in":3600},"member":{"id":"memberABC","claimed_user_id":"@alice:example.com","claimed_device_id":"DEVICE123"}}"#;
    const LEGACY: &str = r#"{"room":"!room:example.com","openid_token":{"access_token":"alice-token","matrix_server_name":"example.com"},"device_id":"DEV"}"#;

    fn claims(body: &str) -> Claims {
        let value: serde_json::Value = serde_json::from_str(body).unwrap();
        let jwt = value["jwt"].as_str().unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&["devkey"]);
        jsonwebtoken::decode::<Claims>(
            jwt,
            &jsonwebtoken::DecodingKey::from_secret(b"devsecret"),
            &validation,
        )
        .unwrap()
        .claims
    }

    #[tokio::test]
    async fn get_token_full_access() {
        let h = harness(&["example.com"], false);
        let a = call(&h, "POST", "/get_token", GOOD).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(
            a.body
                .starts_with("{\"url\":\"wss://sfu.example/livekit?a=1\\u0026b=2\",\"jwt\":\"")
        );
        assert!(a.body.ends_with("\"}\n"));
        let c = claims(&a.body);
        assert_eq!(
            c.sub,
            crate::livekit::alias::member_identity("@alice:example.com", "DEVICE123", "memberABC")
        );
        assert_eq!(c.identity, c.sub);
        assert_eq!(
            c.video.room,
            crate::livekit::alias::room_alias("!room:example.com", "m.call#ROOM")
        );
        assert_eq!(c.video.room, "krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs");
        assert!(c.video.room_join && !c.video.room_create && c.video.can_update_own_metadata);
        assert_eq!(
            *h.rooms.created.lock().unwrap(),
            std::slice::from_ref(&c.video.room)
        );
        assert_eq!(a.headers["access-control-allow-origin"], "*");
        assert_eq!(a.headers["content-type"], "application/json");
    }

    #[tokio::test]
    async fn restricted_users_get_a_token_but_no_room() {
        let h = harness(&["other.example"], false);
        let a = call(&h, "POST", "/get_token", GOOD).await;
        assert_eq!(a.status, 200);
        assert!(h.rooms.created.lock().unwrap().is_empty());
        let delayed = GOOD.replace("}}", r#"},"delay_id":"d","delay_timeout":10000}"#);
        let a = call(&h, "POST", "/get_token", &delayed).await;
        assert_eq!(a.status, 400);
        assert_eq!(
            a.body,
            error_body(
                "M_BAD_JSON",
                "Delegation of delayed events is only supported for full access users"
            )
        );
    }

    #[tokio::test]
    async fn legacy_endpoint() {
        let h = harness(&["*"], false);
        let a = call(&h, "POST", "/sfu/get", LEGACY).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let c = claims(&a.body);
        assert_eq!(c.sub, "@alice:example.com:DEV");
        assert_eq!(c.video.room, "krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs");
        // The new shape is rejected on the legacy endpoint, before any homeserver call.
        let a = call(&h, "POST", "/sfu/get", GOOD).await;
        assert_eq!(
            (a.status, a.body),
            (400, error_body("M_NOT_JSON", "Error reading request"))
        );
        assert_eq!(h.verifier.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn failures_and_their_order() {
        let h = harness(&["example.com"], false);
        let unauthorized = error_body("M_UNAUTHORIZED", "The request could not be authorised.");
        let bad_token = GOOD.replace("alice-token", "wrong");
        let a = call(&h, "POST", "/get_token", &bad_token).await;
        assert_eq!((a.status, a.body.as_str()), (401, unauthorized.as_str()));
        let other_user = GOOD.replace("\"claimed_user_id\":\"@alice", "\"claimed_user_id\":\"@bob");
        let a = call(&h, "POST", "/get_token", &other_user).await;
        assert_eq!((a.status, a.body.as_str()), (401, unauthorized.as_str()));
        let a = call(
            &h,
            "POST",
            "/sfu/get",
            &LEGACY.replace("alice-token", "wrong"),
        )
        .await;
        assert_eq!((a.status, a.body.as_str()), (401, unauthorized.as_str()));
        assert_eq!(h.verifier.calls.lock().unwrap().len(), 3);
        assert!(h.rooms.created.lock().unwrap().is_empty());

        for (body, errcode, message) in [
            ("", "M_NOT_JSON", "Error reading request"),
            ("{", "M_NOT_JSON", "Error reading request"),
            (
                r#"{"room_id":"!r","extra":1}"#,
                "M_NOT_JSON",
                "Error reading request",
            ),
            (
                r#"{"openid_token":{"access_token":"t","surprise":true}}"#,
                "M_NOT_JSON",
                "Error reading request",
            ),
            (
                r#"{"delay_timeout":"10"}"#,
                "M_NOT_JSON",
                "Error reading request",
            ),
            (
                r#"{"delay_timeout":1.5}"#,
                "M_NOT_JSON",
                "Error reading request",
            ),
            (
                "null",
                "M_BAD_JSON",
                "The request body is missing `room_id` or `slot_id`",
            ),
            (
                r#"{"ROOM_ID":"!r","Slot_Id":"s"}"#,
                "M_BAD_JSON",
                "The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`",
            ),
        ] {
            let a = call(&h, "POST", "/get_token", body).await;
            assert_eq!(
                (a.status, a.body),
                (400, error_body(errcode, message)),
                "{body}"
            );
        }
        // None of those reached the homeserver.
        assert_eq!(h.verifier.calls.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn room_creation_failure_is_500() {
        let h = harness(&["example.com"], true);
        let a = call(&h, "POST", "/get_token", GOOD).await;
        assert_eq!(
            (a.status, a.body),
            (500, error_body("M_UNKNOWN", "Unable to create room on SFU"))
        );
    }

    #[tokio::test]
    async fn methods_and_cors() {
        let h = harness(&["*"], false);
        for path in ["/get_token", "/sfu/get"] {
            let a = call(&h, "OPTIONS", path, "").await;
            assert_eq!((a.status, a.body.as_str()), (200, ""));
            for (name, value) in [
                ("content-type", "application/json"),
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "POST"),
                (
                    "access-control-allow-headers",
                    "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token",
                ),
            ] {
                assert_eq!(a.headers[name], value, "{path} {name}");
            }
            assert!(a.headers.get("access-control-max-age").is_none());
            assert!(a.headers.get("vary").is_none());
            for method in ["GET", "HEAD", "PUT", "DELETE", "PATCH"] {
                let a = call(&h, method, path, GOOD).await;
                assert_eq!((a.status, a.body.as_str()), (405, ""), "{method} {path}");
                assert_eq!(a.headers["access-control-allow-origin"], "*");
            }
        }
        assert!(h.verifier.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn healthz_and_unknown_paths() {
        let h = harness(&["*"], false);
        for method in ["GET", "HEAD"] {
            let a = call(&h, method, "/healthz", "").await;
            assert_eq!((a.status, a.body.as_str()), (200, ""));
            assert!(a.headers.get("access-control-allow-origin").is_none());
        }
        for method in ["POST", "PUT", "DELETE"] {
            assert_eq!(call(&h, method, "/healthz", "").await.status, 405);
        }
        let a = call(&h, "GET", "/nope", "").await;
        assert_eq!((a.status, a.body.as_str()), (404, "404 page not found\n"));
        let a = call(&h, "POST", "//get_token?x=1", GOOD).await;
        assert_eq!(a.status, 301);
        assert_eq!(a.headers["location"], "/get_token?x=1");
    }

    #[tokio::test]
    async fn delegation_endpoint() {
        let h = harness(&["example.com", "bad name"], false);
        let delayed = GOOD.replace("}}", r#"},"delay_id":"d","delay_timeout":10000}"#);
        let a = call(&h, "POST", "/delegate_delayed_leave", &delayed).await;
        assert_eq!((a.status, a.body.as_str()), (200, "{}\n"));
        assert_eq!(a.headers["access-control-allow-origin"], "*");
        assert_eq!(h.state.0.delegation.len().await, 1);
        // No token, no room.
        assert!(h.rooms.created.lock().unwrap().is_empty());

        let a = call(&h, "POST", "/delegate_delayed_leave", GOOD).await;
        assert_eq!(
            (a.status, a.body),
            (
                400,
                error_body(
                    "M_BAD_JSON",
                    "The request body is missing `delay_id` or `delay_timeout`"
                )
            )
        );
        let unresolvable = delayed.replace("example.com\",\"expires_in", "bad name\",\"expires_in");
        let unresolvable = unresolvable.replace("@alice:example.com", "@alice:bad name");
        let a = call(&h, "POST", "/delegate_delayed_leave", &unresolvable).await;
        assert_eq!(
            (a.status, a.body),
            (
                400,
                error_body("M_BAD_JSON", "Unable to resolve client-server API")
            )
        );
        // On the token endpoint the same failure happens before room creation.
        let a = call(&h, "POST", "/get_token", &unresolvable).await;
        assert_eq!(a.status, 400);
        assert!(h.rooms.created.lock().unwrap().is_empty());

        let restricted = harness(&["other.example"], false);
        let a = call(&restricted, "POST", "/delegate_delayed_leave", &delayed).await;
        assert_eq!(
            (a.status, a.body),
            (
                403,
                error_body(
                    "M_FORBIDDEN",
                    "Delegation of delayed events is only supported for full access users"
                )
            )
        );
        for method in ["GET", "PUT"] {
            assert_eq!(
                call(&h, method, "/delegate_delayed_leave", "").await.status,
                405
            );
        }
    }

    #[tokio::test]
    async fn get_token_with_delay_registers_a_job_and_shutdown_refuses_new_ones() {
        let h = harness(&["example.com"], false);
        let delayed = GOOD.replace(
            "}}",
            r#"},"delay_id":"d","delay_timeout":10000,"delay_cs_api_url":"https://evil.example"}"#,
        );
        let a = call(&h, "POST", "/get_token", &delayed).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(h.state.0.delegation.len().await, 1);
        assert_eq!(h.rooms.created.lock().unwrap().len(), 1);
        h.state.0.delegation.stop_accepting();
        let a = call(&h, "POST", "/get_token", &delayed).await;
        assert_eq!(
            (a.status, a.body),
            (503, error_body("M_UNKNOWN", "Service is shutting down"))
        );
    }

    #[tokio::test]
    async fn webhooks_always_answer_200() {
        let h = harness(&["*"], false);
        for (auth, body) in [
            (None, "{}"),
            (Some("garbage"), "{}"),
            (Some("Bearer x"), "not json"),
        ] {
            let mut request = HttpRequest::builder().method("POST").uri("/sfu_webhook");
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let request = request.body(axum::body::Body::from(body)).unwrap();
            let response = app(h.state.clone()).oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            assert!(bytes.is_empty());
        }
    }

    #[tokio::test]
    async fn metrics_count_requests_and_causes() {
        let h = harness(&["example.com"], false);
        call(&h, "POST", "/get_token", GOOD).await;
        call(
            &h,
            "POST",
            "/get_token",
            &GOOD.replace("alice-token", "wrong"),
        )
        .await;
        call(&h, "POST", "/get_token", "{").await;
        let a = call(&h, "GET", "/metrics", "").await;
        assert_eq!(a.status, 200);
        assert!(
            a.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        for line in [
            "lk_jwt_requests_total{endpoint=\"/get_token\",status=\"200\"} 1",
            "lk_jwt_requests_total{endpoint=\"/get_token\",status=\"401\"} 1",
            "lk_jwt_requests_total{endpoint=\"/get_token\",status=\"400\"} 1",
            "lk_jwt_openid_failures_total{cause=\"homeserver_refused\"} 1",
            "lk_jwt_livekit_rooms_total{outcome=\"created\"} 1",
            "lk_jwt_delegation_jobs 0",
        ] {
            assert!(
                a.body.lines().any(|l| l == line),
                "missing {line} in\n{}",
                a.body
            );
        }
    }

    #[tokio::test]
    async fn metrics_are_off_unless_enabled() {
        let h = harness(&["*"], false);
        let mut services = Arc::into_inner(h.state.0).unwrap();
        services.metrics_enabled = false;
        let state = AppState(Arc::new(services));
        let request = HttpRequest::builder()
            .uri("/metrics")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app(state).oneshot(request).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused() {
        let h = harness(&["*"], false);
        let huge = format!(r#"{{"room_id":"{}"}}"#, "x".repeat(super::MAX_BODY_BYTES));
        let a = call(&h, "POST", "/get_token", &huge).await;
        assert_eq!(
            (a.status, a.body),
            (413, error_body("M_TOO_LARGE", "Request body too large"))
        );
    }
}
