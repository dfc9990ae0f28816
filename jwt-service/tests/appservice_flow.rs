//! Application-service mode end to end through a real Synapse 1.163 with MSC4512
//! (request proxying) and MSC4502 (membership) on: the homeserver authenticates the
//! user and proxies the MSC4195 routes to the real binary, which asks Synapse who is
//! joined and what a delayed event is, and a LiveKit Twirp fake.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{KEY, LiveKitFake, SECRET, Service, Synapse, free_port};
use serde_json::{Value, json};

const AS_TOKEN: &str = "as-token-0123456789abcdef";
const HS_TOKEN: &str = "hs-token-0123456789abcdef";
const CS_GET_TOKEN: &str = "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/get_token";
const CS_DELEGATE: &str =
    "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave";
const SS_GET_TOKEN: &str = "/_matrix/federation/unstable/io.element.msc4195/rtc/livekit/get_token";

/// The registration as the docs show it (docs/lk-jwt-service-config.md), proxying to
/// `port`.
fn registration(dir: &Path, port: u16) -> String {
    let file = dir.join("lk-jwt-service.yaml");
    std::fs::write(
        &file,
        format!(
            r#"id: lk-jwt-service
url: null
as_token: "{AS_TOKEN}"
hs_token: "{HS_TOKEN}"
sender_localpart: _lk_jwt_service
rate_limited: false
namespaces:
  users:
    - exclusive: false
      regex: ".*"
io.element.msc4502.scopes:
  - "urn:matrix:client:io.element.msc4502:rooms:is_joined"
io.element.msc4512.proxy_prefix: "rtc/livekit"
io.element.msc4512.proxy_url: "http://127.0.0.1:{port}"
"#
        ),
    )
    .unwrap();
    format!(
        "experimental_features:\n  msc4512_enabled: true\n  msc4502_enabled: true\n\
         app_service_config_files: [\"{}\"]\n",
        file.display()
    )
}

fn claims(jwt: &str) -> Value {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[KEY]);
    jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .expect("token verifies with the LiveKit secret")
    .claims
}

fn hash(parts: &[&str]) -> String {
    lk_jwt_service::livekit::alias::hash_strings(parts)
}

/// A request straight to the service, as the homeserver would send it.
async fn direct(
    service: &Service,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(service.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_routes_through_synapse() {
    let port = free_port();
    let synapse = Synapse::start("appservice", |dir| registration(dir, port));
    let sfu = LiveKitFake::start().await;
    let service = Service::start_on(
        port,
        &[
            ("LIVEKIT_URL", sfu.url()),
            ("LIVEKIT_KEY", KEY.into()),
            ("LIVEKIT_SECRET", SECRET.into()),
            (
                "LIVEKIT_FULL_ACCESS_HOMESERVERS",
                synapse.server_name.clone(),
            ),
            (
                "LIVEKIT_MATRIX_CA_FILE",
                synapse.ca_pem.display().to_string(),
            ),
            ("LIVEKIT_AS_TOKEN", AS_TOKEN.into()),
            ("LIVEKIT_HS_TOKEN", HS_TOKEN.into()),
            ("LIVEKIT_HS_SERVER_NAME", synapse.server_name.clone()),
            (
                "LIVEKIT_CS_API_URL_OVERRIDES",
                format!(
                    "{}=http://127.0.0.1:{}",
                    synapse.server_name, synapse.client_port
                ),
            ),
            ("LIVEKIT_REQUIRE_MEMBERSHIP", "true".into()),
            ("LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS", "1".into()),
        ],
    )
    .await;
    let (alice, _) = synapse.user("alice");
    let (bob, _) = synapse.user("bob");
    let room = synapse.create_room("alice");
    let token_body = json!({
        "url": sfu.url(), "room_id": room, "slot_id": "m.call#", "member_id": "memberABC",
    });

    // The ping: hs_token bearer, constant-time checked.
    let (status, body) = direct(&service, "/_matrix/app/v1/ping", &[], &json!({})).await;
    assert_eq!((status, &body["errcode"]), (401, &json!("M_MISSING_TOKEN")));
    let wrong = [("authorization", "Bearer not-the-token")];
    let (status, body) = direct(&service, "/_matrix/app/v1/ping", &wrong, &json!({})).await;
    assert_eq!((status, &body["errcode"]), (401, &json!("M_UNKNOWN_TOKEN")));
    let right = format!("Bearer {HS_TOKEN}");
    let (status, body) = direct(
        &service,
        "/_matrix/app/v1/ping",
        &[("authorization", &right)],
        &json!({"transaction_id": "t1"}),
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    // The proxied routes refuse anyone but the homeserver, before reading the body.
    let (status, body) = direct(&service, CS_GET_TOKEN, &wrong, &token_body).await;
    assert_eq!((status, &body["errcode"]), (401, &json!("M_UNKNOWN_TOKEN")));

    // A joined user gets a token through Synapse, for the MSC's two-part identity.
    let (status, answer) = synapse.call(Some("alice"), "POST", CS_GET_TOKEN, Some(&token_body));
    assert_eq!(status, 200, "{answer}\n{}", service.log());
    let jwt = answer["jwt"].as_str().expect("jwt");
    let c = claims(jwt);
    assert_eq!(c["sub"], hash(&[&alice, "memberABC"]));
    assert_eq!(
        c["video"],
        json!({"roomJoin": true, "room": hash(&[&room, "m.call#"]), "canPublish": true, "canSubscribe": true})
    );
    assert_eq!(sfu.calls().len(), 1, "the room is created on the SFU");
    assert_eq!(sfu.calls()[0].name, hash(&[&room, "m.call#"]));
    // matrix-js-sdk 43's body shape: same identity.
    let sdk_body = json!({
        "url": sfu.url(), "room_id": room, "slot_id": "m.call#",
        "member": {"id": "memberABC", "claimed_device_id": "DEV"},
    });
    let (status, answer) = synapse.call(Some("alice"), "POST", CS_GET_TOKEN, Some(&sdk_body));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        claims(answer["jwt"].as_str().unwrap())["sub"],
        hash(&[&alice, "memberABC"])
    );

    // Refusals, each with the MSC's answer.
    let (status, answer) = synapse.call(Some("bob"), "POST", CS_GET_TOKEN, Some(&token_body));
    assert_eq!(
        (status, &answer["errcode"]),
        (403, &json!("M_FORBIDDEN")),
        "{answer}"
    );
    let mut other_sfu = token_body.clone();
    other_sfu["url"] = json!("wss://elsewhere.example");
    let (status, answer) = synapse.call(Some("alice"), "POST", CS_GET_TOKEN, Some(&other_sfu));
    assert_eq!(
        (status, &answer["errcode"]),
        (400, &json!("M_INVALID_PARAM")),
        "{answer}"
    );
    let mut remote = token_body.clone();
    remote["server_name"] = json!("remote.example");
    let (status, answer) = synapse.call(Some("alice"), "POST", CS_GET_TOKEN, Some(&remote));
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("The target server is not joined to the room")),
        "{answer}"
    );
    let (status, answer) = synapse.call(Some("alice"), "POST", CS_GET_TOKEN, Some(&json!({})));
    assert_eq!(
        (status, &answer["errcode"]),
        (400, &json!("M_BAD_JSON")),
        "{answer}"
    );
    let (status, answer) = synapse.call(None, "POST", CS_GET_TOKEN, Some(&token_body));
    assert_eq!(status, 401, "Synapse authenticates first: {answer}");
    assert_eq!(sfu.calls().len(), 2, "no room for refused requests");

    // Delegation: the delay comes from Synapse, not from the client.
    let state_key = format!("_{alice}_DEV");
    let delay_id = synapse.delayed_leave("alice", &room, &state_key, 60_000);
    let delegate_body = json!({
        "url": sfu.url(), "room_id": room, "slot_id": "m.call#", "member_id": "memberABC",
        "delay_id": delay_id,
    });
    let mut unknown = delegate_body.clone();
    unknown["delay_id"] = json!("syd_unknown");
    let (status, answer) = synapse.call(Some("alice"), "POST", CS_DELEGATE, Some(&unknown));
    assert_eq!(
        (status, &answer["errcode"]),
        (400, &json!("M_INVALID_PARAM")),
        "{answer}"
    );
    // Bob cannot delegate Alice's delayed event.
    let (status, answer) = synapse.call(Some("bob"), "POST", CS_DELEGATE, Some(&delegate_body));
    assert_eq!(
        (status, &answer["errcode"]),
        (400, &json!("M_INVALID_PARAM")),
        "{answer}"
    );
    let (status, answer) = synapse.call(Some("alice"), "POST", CS_DELEGATE, Some(&delegate_body));
    assert_eq!((status, answer), (200, json!({})), "{}", service.log());
    assert!(
        service.log().contains("delay=60s"),
        "the delay looked up: {}",
        service.log()
    );
    let identity = hash(&[&alice, "memberABC"]);
    let alias = hash(&[&room, "m.call#"]);
    assert_eq!(
        common::send_webhook(&service, "participant_joined", &alias, &identity, "").await,
        200
    );
    assert_eq!(
        common::send_webhook(
            &service,
            "participant_left",
            &alias,
            &identity,
            "CLIENT_INITIATED"
        )
        .await,
        200
    );
    let sent = || synapse.leave_sent("alice", &room, &state_key);
    assert!(
        common::eventually(Duration::from_secs(10), sent).await,
        "leave not sent: {}",
        service.log()
    );

    // The federation route, as Synapse forwards it after checking the signature.
    let ss_body = json!({
        "user_id": alice, "url": sfu.url(), "room_id": room, "slot_id": "m.call#",
        "member_id": "memberABC",
    });
    let origin_ok = [
        ("authorization", right.as_str()),
        ("x-matrix-origin", synapse.server_name.as_str()),
    ];
    let (status, answer) = direct(&service, SS_GET_TOKEN, &origin_ok, &ss_body).await;
    assert_eq!(status, 200, "{answer}");
    let c = claims(answer["jwt"].as_str().unwrap());
    assert_eq!(
        c["video"]["canPublish"], false,
        "federated users never publish here"
    );
    let foreign = [
        ("authorization", right.as_str()),
        ("x-matrix-origin", "evil.example"),
    ];
    let (status, answer) = direct(&service, SS_GET_TOKEN, &foreign, &ss_body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (
            403,
            Some("The user_id does not belong to the origin server")
        )
    );
    let mut not_member = ss_body.clone();
    not_member["user_id"] = json!(bob);
    let (status, answer) = direct(&service, SS_GET_TOKEN, &origin_ok, &not_member).await;
    assert_eq!((status, &answer["errcode"]), (403, &json!("M_FORBIDDEN")));
    let mut unknown_room = ss_body.clone();
    unknown_room["room_id"] = json!(format!("!nowhere:{}", synapse.server_name));
    let (status, answer) = direct(&service, SS_GET_TOKEN, &origin_ok, &unknown_room).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("This server is not joined to the room"))
    );

    // LIVEKIT_REQUIRE_MEMBERSHIP: the standalone endpoint asks Synapse too.
    let standalone = |openid: Value, user: &str| {
        json!({
            "room_id": room, "slot_id": "m.call#", "openid_token": openid,
            "member": {"id": "m1", "claimed_user_id": user, "claimed_device_id": "DEV"},
        })
    };
    let (status, body) = service
        .post("/get_token", &standalone(synapse.openid_token("bob"), &bob))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = service
        .post(
            "/get_token",
            &standalone(synapse.openid_token("alice"), &alice),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Kick on leave. Bob joins the room and the call; Alice is in the call too.
    synapse.invite_and_join("alice", &room, "bob");
    let (status, answer) = synapse.call(Some("bob"), "POST", CS_GET_TOKEN, Some(&token_body));
    assert_eq!(status, 200, "{answer}");
    let bob_identity = hash(&[&bob, "memberABC"]);
    let alice_identity = hash(&[&alice, "memberABC"]);
    sfu.rooms.lock().unwrap().insert(
        alias.clone(),
        vec![alice_identity.clone(), bob_identity.clone()],
    );
    assert_eq!(
        common::send_webhook(&service, "participant_joined", &alias, &bob_identity, "").await,
        200
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        sfu.removed.lock().unwrap().is_empty(),
        "members stay: {}",
        service.log()
    );
    // Bob leaves the Matrix room: the next sweep removes him from the call, only him.
    let leave = format!("/_matrix/client/v3/rooms/{}/leave", common::encode(&room));
    let (status, answer) = synapse.call(Some("bob"), "POST", &leave, Some(&json!({})));
    assert_eq!(status, 200, "{answer}");
    let removed = || sfu.removed.lock().unwrap().len() == 1;
    assert!(
        common::eventually(Duration::from_secs(10), removed).await,
        "not removed: {}",
        service.log()
    );
    assert_eq!(
        *sfu.removed.lock().unwrap(),
        [(alias.clone(), bob_identity.clone())]
    );
    assert_eq!(sfu.rooms.lock().unwrap()[&alias], [alice_identity]);
    // He comes back with his still valid token: LiveKit's join webhook gets him removed
    // again at once.
    sfu.rooms
        .lock()
        .unwrap()
        .get_mut(&alias)
        .unwrap()
        .push(bob_identity.clone());
    assert_eq!(
        common::send_webhook(&service, "participant_joined", &alias, &bob_identity, "").await,
        200
    );
    let removed_again = || sfu.removed.lock().unwrap().len() >= 2;
    assert!(common::eventually(Duration::from_secs(5), removed_again).await);
    assert!(!service.log().contains(AS_TOKEN), "token in the log");
}

/// The relay to another server's SFU (MSC4512 `fed_proxy`), against a homeserver fake
/// that follows the MSC's wire format (one Synapse cannot federate with itself): the
/// remote server's 403 and 400 reach the client, anything else is a 502, and a
/// remote server that is not in the room is never asked.
#[tokio::test]
async fn relay_to_a_remote_server() {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Query, State};
    use axum::routing::{get, post};

    type Script = Arc<Mutex<(bool, Value, Vec<Value>)>>;
    // (remote server joined, fed_proxy answer, fed_proxy requests seen)
    let script: Script = Arc::new(Mutex::new((true, Value::Null, Vec::new())));
    let app = axum::Router::new()
        .route(
            "/_matrix/client/unstable/io.element.msc4502/rooms/{room}/is_joined",
            get(
                |State(script): State<Script>,
                 Query(query): Query<std::collections::HashMap<String, String>>| async move {
                    let remote_joined = script.lock().unwrap().0;
                    let joined = query.contains_key("mxid") || remote_joined;
                    axum::Json(json!({ "joined": joined }))
                },
            ),
        )
        .route(
            "/_matrix/client/unstable/io.element.msc4512/appservice/fed_proxy",
            post(
                |State(script): State<Script>,
                 headers: axum::http::HeaderMap,
                 axum::Json(request): axum::Json<Value>| async move {
                    assert_eq!(headers["authorization"], format!("Bearer {AS_TOKEN}"));
                    let mut script = script.lock().unwrap();
                    script.2.push(request);
                    axum::Json(script.1.clone())
                },
            ),
        )
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let homeserver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&[
        ("LIVEKIT_URL", sfu.url()),
        ("LIVEKIT_KEY", KEY.into()),
        ("LIVEKIT_SECRET", SECRET.into()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "a.example".into()),
        ("LIVEKIT_AS_TOKEN", AS_TOKEN.into()),
        ("LIVEKIT_HS_TOKEN", HS_TOKEN.into()),
        ("LIVEKIT_HS_SERVER_NAME", "a.example".into()),
        (
            "LIVEKIT_CS_API_URL_OVERRIDES",
            format!("a.example=http://{homeserver}"),
        ),
    ])
    .await;
    let auth = format!("Bearer {HS_TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("x-matrix-user-identifier", "@alice:a.example"),
    ];
    let body = json!({
        "url": "wss://sfu.b.example", "room_id": "!r:a.example", "slot_id": "m.call#",
        "member_id": "M", "server_name": "b.example",
    });
    for (answer, status, errcode) in [
        (
            json!({"status": 200, "content": {"jwt": "remote-jwt"}}),
            200,
            None,
        ),
        (
            json!({"status": 403, "content": {"errcode": "M_FORBIDDEN", "error": "x"}}),
            403,
            Some("M_FORBIDDEN"),
        ),
        (
            json!({"status": 400, "content": {"errcode": "M_INVALID_PARAM", "error": "x"}}),
            400,
            Some("M_INVALID_PARAM"),
        ),
        (
            json!({"status": 500, "content": {"errcode": "M_UNKNOWN"}}),
            502,
            Some("M_UNKNOWN"),
        ),
        (
            json!({"status": 404, "content": null}),
            502,
            Some("M_UNKNOWN"),
        ),
    ] {
        script.lock().unwrap().1 = answer.clone();
        let (got, reply) = direct(&service, CS_GET_TOKEN, &headers, &body).await;
        assert_eq!(got, status, "{answer}: {reply}");
        match errcode {
            None => assert_eq!(reply, json!({"jwt": "remote-jwt"})),
            Some(errcode) => assert_eq!(reply["errcode"], errcode, "{answer}"),
        }
    }
    let seen = script.lock().unwrap().2.clone();
    assert_eq!(seen.len(), 5);
    assert_eq!(
        seen[0],
        json!({
            "destination": "b.example",
            "method": "POST",
            "path": SS_GET_TOKEN,
            "body": {
                "user_id": "@alice:a.example", "url": "wss://sfu.b.example",
                "room_id": "!r:a.example", "slot_id": "m.call#", "member_id": "M",
            },
        })
    );
    // A remote server that is not in the room is not asked.
    script.lock().unwrap().0 = false;
    let (got, reply) = direct(&service, CS_GET_TOKEN, &headers, &body).await;
    assert_eq!(
        (got, reply["error"].as_str()),
        (403, Some("The target server is not joined to the room"))
    );
    assert_eq!(script.lock().unwrap().2.len(), 5);
    assert!(
        sfu.calls().is_empty(),
        "relayed tokens create no local room"
    );
}
