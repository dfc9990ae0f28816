//! `POST /get_token` (MSC4195), `POST /sfu/get` (legacy) and
//! `POST /delegate_delayed_leave` (spec §1.2-§1.4): the handlers translate between
//! HTTP and [`crate::flows::standalone`]. Method checks, CORS headers, the rate limit,
//! the request span and the metrics are the router's (`token_gate` in [`super`]); the body
//! arrives decoded ([`GoJson`]).

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::go_json_body::GoJson;
use crate::flows::standalone::{self, Issued};
use crate::go_json;
use crate::request::{GetTokenBody, Invalid, SfuGetBody, TokenRequest};
use crate::state::AppState;

/// `/get_token`.
pub async fn get_token(
    State(state): State<AppState>,
    GoJson(body): GoJson<GetTokenBody>,
) -> Result<TokenAnswer, ApiError> {
    let request = validated(body.validate())?;
    Ok(TokenAnswer(standalone::issue(&state.0, request).await?))
}

/// `/sfu/get`.
pub async fn sfu_get(
    State(state): State<AppState>,
    GoJson(body): GoJson<SfuGetBody>,
) -> Result<TokenAnswer, ApiError> {
    let request = validated(body.validate())?;
    Ok(TokenAnswer(standalone::issue(&state.0, request).await?))
}

/// `/delegate_delayed_leave`.
pub async fn delegate_delayed_leave(
    State(state): State<AppState>,
    GoJson(body): GoJson<GetTokenBody>,
) -> Result<Response, ApiError> {
    let request = validated(body.validate_delegation())?;
    standalone::delegate(&state.0, request).await?;
    Ok((StatusCode::OK, Body::from("{}\n")).into_response())
}

/// A validation failure is `400 M_BAD_JSON` with upstream's message.
fn validated(result: Result<TokenRequest, Invalid>) -> Result<TokenRequest, ApiError> {
    result.map_err(|e| {
        tracing::warn!("invalid request: {e}");
        ApiError::bad_json(e.0)
    })
}

/// `{"url":…,"jwt":…}` and a newline, as Go's encoder writes it.
#[derive(Debug)]
pub struct TokenAnswer(pub Issued);

impl IntoResponse for TokenAnswer {
    fn into_response(self) -> Response {
        let body = go_json::string_object_line(&[("url", &self.0.url), ("jwt", &self.0.jwt)]);
        (StatusCode::OK, Body::from(body)).into_response()
    }
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
            livekit_url: "wss://sfu.example/livekit?a=1&b=2".into(),
            full_access: match full_access {
                ["*"] => FullAccess::Everyone,
                list => FullAccess::Servers(list.iter().map(|s| (*s).to_owned()).collect()),
            },
            can_update_own_metadata: false,
            restricted_can_publish: false,
            signer: TokenSigner::new("devkey", &Secret::new("devsecret")),
            verifier: verifier.clone(),
            rooms: rooms.clone(),
            rate_limit: None,
            trusted_proxies: Default::default(),
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
            app_service: None,
            membership: None,
            rtc_transports: None,
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
        assert!(c.video.room_join && !c.video.room_create);
        // Upstream v0.7: metadata updates only when asked for; full access publishes.
        assert!(!c.video.can_update_own_metadata);
        assert_eq!(c.video.can_publish, Some(true));
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
        // They subscribe; they publish on their own deployment's SFU.
        assert_eq!(claims(&a.body).video.can_publish, Some(false));
        let a = call(&h, "POST", "/sfu/get", LEGACY).await;
        assert_eq!(claims(&a.body).video.can_publish, Some(false));
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
    async fn grant_settings() {
        let h = harness(&["other.example"], false);
        let mut services = Arc::into_inner(h.state.0).unwrap();
        services.can_update_own_metadata = true;
        services.restricted_can_publish = true;
        let h = Harness {
            state: AppState(Arc::new(services)),
            ..h
        };
        for (path, body) in [("/get_token", GOOD), ("/sfu/get", LEGACY)] {
            let a = call(&h, "POST", path, body).await;
            let c = claims(&a.body);
            assert_eq!(c.video.can_publish, Some(true), "{path}");
            assert!(c.video.can_update_own_metadata, "{path}");
        }
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

    /// Element Call probes for delegation with an unauthenticated, empty POST: anything
    /// but 404 means "supported".
    #[tokio::test]
    async fn the_delegation_probe_is_not_a_404() {
        let h = harness(&["example.com"], false);
        let a = call(&h, "POST", "/delegate_delayed_leave", "").await;
        assert_eq!(
            (a.status, a.body),
            (400, error_body("M_NOT_JSON", "Error reading request"))
        );
        assert!(h.verifier.calls.lock().unwrap().is_empty());
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
        let huge = format!(
            r#"{{"room_id":"{}"}}"#,
            "x".repeat(crate::extract::go_json_body::MAX_BODY_BYTES)
        );
        let a = call(&h, "POST", "/get_token", &huge).await;
        assert_eq!(
            (a.status, a.body),
            (413, error_body("M_TOO_LARGE", "Request body too large"))
        );
    }
}
