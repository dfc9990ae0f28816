//! `POST /get_token` (MSC4195) and `POST /sfu/get` (legacy): OpenID token in, LiveKit
//! URL and JWT out (spec §1.2, §1.3).
//!
//! Order of checks, as upstream (tests count homeserver calls): method → JSON decode →
//! validation (no network yet) → OpenID verification → claimed user → authorisation →
//! signing → room creation for full-access users.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::go_json::{self, Schema};
use crate::livekit::alias;
use crate::request::{GET_TOKEN, GetTokenBody, SFU_GET, SfuGetBody, Subject, TokenRequest};
use crate::state::AppState;

/// Largest body read (upstream reads without limit; real bodies are under 2 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `/get_token`.
pub async fn get_token(State(state): State<AppState>, request: Request) -> Response {
    handle::<GetTokenBody>(
        state,
        request,
        &GET_TOKEN,
        "/get_token",
        GetTokenBody::validate,
    )
    .await
}

/// `/sfu/get`.
pub async fn sfu_get(State(state): State<AppState>, request: Request) -> Response {
    handle::<SfuGetBody>(state, request, &SFU_GET, "/sfu/get", SfuGetBody::validate).await
}

async fn handle<T: DeserializeOwned>(
    state: AppState,
    request: Request,
    schema: &'static Schema,
    endpoint: &'static str,
    validate: fn(T) -> Result<TokenRequest, crate::request::Invalid>,
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
        .unwrap_or("")
        .to_owned();
    tracing::info!(endpoint, ?peer, origin, "token request");

    if let (Some(limiter), Some(peer)) = (&state.0.rate_limit, peer)
        && !limiter.allow(peer.ip(), Instant::now())
    {
        tracing::warn!(endpoint, %peer, "rate limit exceeded");
        return ApiError::rate_limited().into_response();
    }
    let body = match to_bytes(request.into_body(), MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return ApiError::too_large().into_response(),
    };
    let parsed = match go_json::decode::<T>(&body, schema) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!(endpoint, "request body is not acceptable JSON: {e}");
            return ApiError::not_json().into_response();
        }
    };
    let token_request = match validate(parsed) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(endpoint, "invalid request: {e}");
            return ApiError::bad_json(e.0).into_response();
        }
    };
    match issue(&state, token_request).await {
        Ok(answer) => answer,
        Err(e) => e.into_response(),
    }
}

/// The token flow after validation.
async fn issue(state: &AppState, request: TokenRequest) -> Result<Response, ApiError> {
    let services = &state.0;
    let server = &request.openid.matrix_server_name;
    let user_id = services
        .verifier
        .verify(&request.openid)
        .await
        .map_err(|e| {
            tracing::warn!(%server, "OpenID token rejected: {e}");
            ApiError::unauthorized()
        })?;
    if let Subject::Member {
        claimed_user_id, ..
    } = &request.subject
        && *claimed_user_id != user_id
    {
        tracing::warn!(%user_id, %claimed_user_id, "claimed user does not match the token");
        return Err(ApiError::unauthorized());
    }
    let full_access = services.full_access.allows(server);
    if request.delay.is_some() && !full_access {
        return Err(ApiError::bad_json(
            "Delegation of delayed events is only supported for full access users",
        ));
    }
    let (room, identity) = match &request.subject {
        Subject::Member {
            room_id,
            slot_id,
            member_id,
            claimed_device_id,
            ..
        } => (
            alias::room_alias(room_id, slot_id),
            alias::member_identity(&user_id, claimed_device_id, member_id),
        ),
        Subject::Legacy { room, device_id } => (
            alias::room_alias(room, alias::LEGACY_SLOT),
            alias::legacy_identity(&user_id, device_id),
        ),
    };
    let jwt = services
        .signer
        .join_token(&identity, &room, SystemTime::now())
        .map_err(|e| {
            tracing::error!("{e}");
            ApiError::internal()
        })?;
    if full_access {
        if request.delay.is_some() {
            // Delegation (spec §5) is not implemented yet: the parameters are accepted
            // and not acted on, as in upstream v0.4.4-v0.5.0.
            tracing::info!(%user_id, "delayed-leave delegation requested; not supported, ignored");
        }
        match services.rooms.create_room(&room).await {
            Ok(outcome) => tracing::info!(%room, ?outcome, "LiveKit room ready"),
            Err(e) => {
                tracing::error!(%room, "unable to create room on SFU: {e}");
                return Err(ApiError::room_creation_failed());
            }
        }
    }
    tracing::info!(%user_id, %room, %identity, full_access, "issued LiveKit token");
    let body = go_json::string_object_line(&[("url", &services.livekit_url), ("jwt", &jwt)]);
    Ok((StatusCode::OK, Body::from(body)).into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt;
    use rtc_auth::secret::Secret;
    use tower::ServiceExt;

    use crate::config::FullAccess;
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
            livekit_url: "wss://sfu.example/livekit?a=1&b=2".into(),
            full_access: match full_access {
                ["*"] => FullAccess::Everyone,
                list => FullAccess::Servers(list.iter().map(|s| (*s).to_owned()).collect()),
            },
            signer: TokenSigner::new("devkey", &Secret::new("devsecret")),
            verifier: verifier.clone(),
            rooms: rooms.clone(),
            rate_limit: None,
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
