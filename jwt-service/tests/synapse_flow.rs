//! End to end against a real Synapse (OpenID tokens, TLS federation listener with a test
//! CA), the real `lk-jwt-service` binary, and a LiveKit Twirp fake.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{KEY, LiveKitFake, SECRET, Service, Synapse};
use serde_json::{Value, json};

/// The environment for a service that trusts Synapse's CA and talks to `sfu`. Synapse
/// listens on loopback, which only trusted server names may reach: its names (the
/// `127.0.0.1:<port>` it calls itself and `localhost:<port>`) are opted in.
fn env(synapse: &Synapse, sfu: &LiveKitFake, full_access: &str) -> Vec<(&'static str, String)> {
    let mut vars = env_without_opt_in(synapse, sfu, full_access);
    vars.push((
        "LIVEKIT_PRIVATE_HOMESERVERS",
        format!(
            "{} localhost:{}",
            synapse.server_name, synapse.federation_port
        ),
    ));
    vars
}

fn env_without_opt_in(
    synapse: &Synapse,
    sfu: &LiveKitFake,
    full_access: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("LIVEKIT_URL", sfu.url()),
        ("LIVEKIT_KEY", KEY.into()),
        ("LIVEKIT_SECRET", SECRET.into()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", full_access.into()),
        (
            "LIVEKIT_MATRIX_CA_FILE",
            synapse.ca_pem.display().to_string(),
        ),
    ]
}

fn get_token_body(openid: &Value, claimed_user: &str) -> Value {
    json!({
        "room_id": "!room:example.com",
        "slot_id": "m.call#ROOM",
        "openid_token": openid,
        "member": {"id": "memberABC", "claimed_user_id": claimed_user, "claimed_device_id": "DEVICE123"},
    })
}

/// Verifies the JWT like LiveKit (HS256, devsecret, exp) and returns its claims.
fn verified_claims(body: &str) -> Value {
    let answer: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let jwt = answer["jwt"].as_str().expect("jwt");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[KEY]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .expect("token verifies with the LiveKit secret")
    .claims
}

const UNAUTHORIZED: &str =
    "{\"errcode\":\"M_UNAUTHORIZED\",\"error\":\"The request could not be authorised.\"}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_token_full_access_creates_the_room() {
    let synapse = Synapse::shared();
    let openid = synapse.openid_token("alice");
    let (alice, _) = synapse.user("alice");
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&env(synapse, &sfu, &synapse.server_name)).await;

    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &alice))
        .await;
    assert_eq!(status, 200, "{body}\n{}", service.log());
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["url"], sfu.url());
    assert!(body.ends_with("}\n"));

    let claims = verified_claims(&body);
    let identity =
        lk_jwt_service::livekit::alias::member_identity(&alice, "DEVICE123", "memberABC");
    assert_eq!(claims["sub"], identity.as_str());
    assert_eq!(claims["identity"], identity.as_str());
    assert_eq!(claims["iss"], KEY);
    let room = "krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs";
    assert_eq!(
        claims["video"],
        json!({"roomJoin": true, "room": room, "canPublish": true, "canSubscribe": true})
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp.abs_diff(now + 3600) <= 5, "exp {exp} now {now}");
    assert_eq!(claims["iat"], claims["nbf"]);

    assert_eq!(
        sfu.calls(),
        [common::CreateRoomCall {
            name: room.into(),
            empty_timeout: 300,
            max_participants: 0,
            departure_timeout: 20
        }]
    );
    assert!(sfu.rejected.lock().unwrap().is_empty());
    // The start-up probe found the SFU and our key accepted.
    let probed = || service.log().contains("SFU API reachable");
    assert!(
        common::eventually(std::time::Duration::from_secs(5), probed).await,
        "{}",
        service.log()
    );
    // The OpenID access token never reaches the log.
    let token = openid["access_token"].as_str().unwrap();
    assert!(!service.log().contains(token), "token leaked into the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sfu_get_uses_the_plain_identity() {
    let synapse = Synapse::shared();
    let openid = synapse.openid_token("bob");
    let (bob, _) = synapse.user("bob");
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&env(synapse, &sfu, "*")).await;

    let body = json!({"room": "!room:example.com", "openid_token": openid, "device_id": "DEV"});
    let (status, answer) = service.post("/sfu/get", &body).await;
    assert_eq!(status, 200, "{answer}\n{}", service.log());
    let claims = verified_claims(&answer);
    assert_eq!(claims["sub"], format!("{bob}:DEV"));
    // Same room as the MSC4195 endpoint for slot m.call#ROOM.
    assert_eq!(
        claims["video"]["room"],
        "krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs"
    );
    assert_eq!(sfu.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_tokens_and_claims_are_401() {
    let synapse = Synapse::shared();
    let openid = synapse.openid_token("carol");
    let (carol, _) = synapse.user("carol");
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&env(synapse, &sfu, "*")).await;

    // A token Synapse does not know.
    let mut forged = openid.clone();
    forged["access_token"] = json!("not-a-real-token");
    let (status, body) = service
        .post("/get_token", &get_token_body(&forged, &carol))
        .await;
    assert_eq!((status, body.as_str()), (401, UNAUTHORIZED));
    assert!(
        service.log().contains("HTTP 401 M_UNKNOWN_TOKEN"),
        "{}",
        service.log()
    );

    // A real token, but the client claims to be someone else.
    let (status, body) = service
        .post(
            "/get_token",
            &get_token_body(&openid, "@mallory:example.com"),
        )
        .await;
    assert_eq!((status, body.as_str()), (401, UNAUTHORIZED));

    // A real token presented under another server name that reaches the same server:
    // the sub's server part (127.0.0.1:port) does not match "localhost:port".
    let mut renamed = openid.clone();
    renamed["matrix_server_name"] = json!(format!("localhost:{}", synapse.federation_port));
    let (status, body) = service
        .post("/get_token", &get_token_body(&renamed, &carol))
        .await;
    assert_eq!((status, body.as_str()), (401, UNAUTHORIZED));
    assert!(
        service.log().contains("does not belong to"),
        "{}",
        service.log()
    );

    // An invalid server name fails before any connection.
    let mut invalid = openid.clone();
    invalid["matrix_server_name"] = json!("not a server/name");
    let (status, _) = service
        .post("/get_token", &get_token_body(&invalid, &carol))
        .await;
    assert_eq!(status, 401);

    // The genuine request still works, so the failures above were the checks.
    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &carol))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sfu.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verification_and_the_magic_skip_value() {
    let synapse = Synapse::shared();
    let openid = synapse.openid_token("dave");
    let (dave, _) = synapse.user("dave");
    let sfu = LiveKitFake::start().await;
    let mut base = env(synapse, &sfu, "*");
    base.retain(|(name, _)| *name != "LIVEKIT_MATRIX_CA_FILE");

    // Without the test CA, Synapse's certificate is not trusted.
    let service = Service::start(&base).await;
    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &dave))
        .await;
    assert_eq!((status, body.as_str()), (401, UNAUTHORIZED));
    assert!(service.log().contains("cannot reach"), "{}", service.log());
    drop(service);

    // "true" is not the magic value: still verified.
    let mut truthy = base.clone();
    truthy.push(("LIVEKIT_INSECURE_SKIP_VERIFY_TLS", "true".into()));
    let service = Service::start(&truthy).await;
    let (status, _) = service
        .post("/get_token", &get_token_body(&openid, &dave))
        .await;
    assert_eq!(status, 401);
    drop(service);

    let mut skip = base.clone();
    skip.push((
        "LIVEKIT_INSECURE_SKIP_VERIFY_TLS",
        "YES_I_KNOW_WHAT_I_AM_DOING".into(),
    ));
    let service = Service::start(&skip).await;
    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &dave))
        .await;
    assert_eq!(status, 200, "{body}\n{}", service.log());
    assert_eq!(sfu.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_users_get_no_room_and_no_delegation() {
    let synapse = Synapse::shared();
    let openid = synapse.openid_token("erin");
    let (erin, _) = synapse.user("erin");
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&env(synapse, &sfu, "other.example, *")).await;

    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &erin))
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = verified_claims(&body);
    assert_eq!(claims["video"]["canPublish"], false, "{claims}");
    assert!(
        sfu.calls().is_empty(),
        "restricted users must not create rooms"
    );

    let mut delayed = get_token_body(&openid, &erin);
    delayed["delay_id"] = json!("syd_abc");
    delayed["delay_timeout"] = json!(10000);
    let (status, body) = service.post("/get_token", &delayed).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "{\"errcode\":\"M_BAD_JSON\",\"error\":\"Delegation of delayed events is only supported for full access users\"}\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_failures_are_500() {
    let synapse = Synapse::shared();
    let openid = synapse.openid_token("frank");
    let (frank, _) = synapse.user("frank");
    let sfu = LiveKitFake::start().await;
    let mut vars = env(synapse, &sfu, "*");
    // Nothing listens there.
    vars[0].1 = format!("ws://127.0.0.1:{}", common::free_port());
    let service = Service::start(&vars).await;
    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &frank))
        .await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "{\"errcode\":\"M_UNKNOWN\",\"error\":\"Unable to create room on SFU\"}\n"
    );
    assert!(
        service.log().contains("unable to create room on SFU"),
        "{}",
        service.log()
    );
    drop(service);

    // A wrong API secret: the fake refuses the bearer token.
    let mut wrong = env(synapse, &sfu, "*");
    wrong[2].1 = "not-the-secret".into();
    let service = Service::start(&wrong).await;
    let (status, _) = service
        .post("/get_token", &get_token_body(&openid, &frank))
        .await;
    assert_eq!(status, 500);
    assert!(service.log().contains("HTTP 401"), "{}", service.log());
    let refused = || service.log().contains("SFU API refused our key/secret");
    assert!(
        common::eventually(std::time::Duration::from_secs(5), refused).await,
        "{}",
        service.log()
    );
    assert!(sfu.calls().is_empty());
    assert_eq!(sfu.rejected.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_override_and_outgoing_deny_list() {
    let synapse = Synapse::shared();
    let openid = synapse.openid_token("grace");
    let (grace, _) = synapse.user("grace");
    let sfu = LiveKitFake::start().await;

    // The override replaces discovery: pointing it at a dead port fails, at the real
    // listener (by another name) works.
    let dead = format!(
        "{}=https://127.0.0.1:{}",
        synapse.server_name,
        common::free_port()
    );
    let mut vars = env(synapse, &sfu, "*");
    vars.push(("LIVEKIT_FEDERATION_URL_OVERRIDES", dead));
    let service = Service::start(&vars).await;
    let (status, _) = service
        .post("/get_token", &get_token_body(&openid, &grace))
        .await;
    assert_eq!(status, 401);
    drop(service);

    let live = format!(
        "{}=https://localhost:{}",
        synapse.server_name, synapse.federation_port
    );
    let mut vars = env(synapse, &sfu, "*");
    vars.push(("LIVEKIT_FEDERATION_URL_OVERRIDES", live));
    let service = Service::start(&vars).await;
    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &grace))
        .await;
    assert_eq!(status, 200, "{body}\n{}", service.log());
    drop(service);

    // Loopback denied: the homeserver is never contacted.
    let mut vars = env(synapse, &sfu, "*");
    vars.push(("LIVEKIT_DENY_OUTGOING_IPS", "127.0.0.0/8, ::1".into()));
    let service = Service::start(&vars).await;
    let (status, _) = service
        .post("/get_token", &get_token_body(&openid, &grace))
        .await;
    assert_eq!(status, 401);
    assert!(service.log().contains("deny list"), "{}", service.log());
}

/// A homeserver on loopback is reached only for a server name the operator named: a
/// full-access homeserver or one in `LIVEKIT_PRIVATE_HOMESERVERS`. `*` names nobody, and
/// no spelling of the address gets around the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_only_for_named_homeservers() {
    let synapse = Synapse::shared();
    let openid = synapse.openid_token("ivy");
    let (ivy, _) = synapse.user("ivy");
    let sfu = LiveKitFake::start().await;

    for stranger in ["other.example", "*"] {
        let service = Service::start(&env_without_opt_in(synapse, &sfu, stranger)).await;
        let (status, body) = service
            .post("/get_token", &get_token_body(&openid, &ivy))
            .await;
        assert_eq!((status, body.as_str()), (401, UNAUTHORIZED), "{stranger}");
        assert!(
            service
                .log()
                .contains("127.0.0.1 is on the outgoing deny list"),
            "{}",
            service.log()
        );
        // Other spellings of 127.0.0.1 are not server names at all.
        for spelling in ["0x7f000001", "2130706433", "127.1", "0177.0.0.1"] {
            let mut renamed = openid.clone();
            renamed["matrix_server_name"] =
                json!(format!("{spelling}:{}", synapse.federation_port));
            let (status, _) = service
                .post("/get_token", &get_token_body(&renamed, &ivy))
                .await;
            assert_eq!(status, 401, "{spelling}");
        }
        assert!(
            service.log().contains("invalid server name \"0x7f000001:"),
            "{}",
            service.log()
        );
    }

    // Named as full-access homeserver: reached, and the user gets a room.
    let service = Service::start(&env_without_opt_in(synapse, &sfu, &synapse.server_name)).await;
    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &ivy))
        .await;
    assert_eq!(status, 200, "{body}\n{}", service.log());
    assert_eq!(sfu.calls().len(), 1);
    drop(service);

    // Opted in without full access: reached, a token but no room.
    let service = Service::start(&env(synapse, &sfu, "other.example")).await;
    let (status, body) = service
        .post("/get_token", &get_token_body(&openid, &ivy))
        .await;
    assert_eq!(status, 200, "{body}\n{}", service.log());
    assert_eq!(sfu.calls().len(), 1);
}

/// Discovery against the real TLS listener: a well-known delegation to a name whose SRV
/// record points at `localhost:<port>`. TLS must verify the delegated name (in Synapse's
/// certificate) while connecting to the SRV target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_and_srv_use_the_right_tls_name() {
    use std::sync::Arc;

    use lk_jwt_service::openid::discovery::{
        BoxFuture, Lookup, SrvAnswer, SrvError, SrvRecord, WellKnown,
    };
    use lk_jwt_service::openid::net::{MatrixClient, MatrixTls};
    use lk_jwt_service::openid::reach::{PerReach, ReachPolicy};
    use lk_jwt_service::openid::userinfo::{FederationVerifier, OpenIdError, Verifier};
    use lk_jwt_service::request::OpenIdToken;

    /// Synapse's port, a dead port, and how often `moved.example.test` was looked up.
    struct Fake(u16, u16, std::sync::atomic::AtomicUsize);
    impl Lookup for Fake {
        fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SrvAnswer, SrvError>> {
            let answer = match name {
                // The first answer points at a dead port, later ones at Synapse.
                "_matrix-fed._tcp.moved.example.test" => {
                    let calls = self.2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let port = if calls == 0 { self.1 } else { self.0 };
                    Ok(SrvAnswer {
                        records: vec![SrvRecord {
                            priority: 0,
                            target: "localhost".to_owned(),
                            port,
                        }],
                        ttl: std::time::Duration::from_secs(60),
                    })
                }
                "_matrix-fed._tcp.matrix.example.test" | "_matrix-fed._tcp.wrong.example.test" => {
                    Ok(SrvAnswer {
                        records: vec![SrvRecord {
                            priority: 0,
                            target: "localhost.".to_owned(),
                            port: self.0,
                        }],
                        ttl: std::time::Duration::from_secs(60),
                    })
                }
                _ => Err(SrvError::NotFound),
            };
            Box::pin(async move { answer })
        }
        fn well_known<'a>(&'a self, server: &'a str) -> BoxFuture<'a, WellKnown> {
            let server = match server {
                "example.test" | "stranger.test" => Some("matrix.example.test".to_owned()),
                "wrong.test" => Some("wrong.example.test".to_owned()),
                "moved.test" => Some("moved.example.test".to_owned()),
                _ => None,
            };
            Box::pin(async move {
                WellKnown {
                    server,
                    ttl: std::time::Duration::from_secs(60),
                }
            })
        }
    }

    let synapse = Synapse::shared();
    let openid = synapse.openid_token("heidi");
    let (heidi, _) = synapse.user("heidi");
    let tls = MatrixTls {
        skip_verify: false,
        extra_roots_pem: Some(std::fs::read(&synapse.ca_pem).unwrap()),
    };
    // Synapse lives on loopback: the test's names may reach it, a stranger's may not.
    let trusted = [
        "example.test",
        "wrong.test",
        "moved.test",
        &synapse.server_name,
    ];
    let policy = Arc::new(ReachPolicy::new(
        trusted.map(str::to_owned),
        Default::default(),
    ));
    let clients = PerReach::build(policy.clone(), |deny| MatrixClient::new(&tls, deny, 0)).unwrap();
    let fake: Arc<dyn Lookup> = Arc::new(Fake(
        synapse.federation_port,
        common::free_port(),
        Default::default(),
    ));
    let lookups =
        PerReach::build(policy, |_| Ok::<_, std::convert::Infallible>(fake.clone())).unwrap();
    let verifier = FederationVerifier::new(clients, lookups, Default::default());
    let token = |server: &str| OpenIdToken {
        access_token: openid["access_token"].as_str().unwrap().to_owned(),
        matrix_server_name: server.to_owned(),
        expires_in: None,
    };

    // Synapse answered (TLS for matrix.example.test verified, Host accepted): the only
    // failure left is the server-name check, since the user lives on 127.0.0.1:<port>.
    match verifier.verify(&token("example.test")).await {
        Err(OpenIdError::ServerMismatch { sub, server }) => {
            assert_eq!(sub, heidi);
            assert_eq!(server, "example.test");
        }
        other => panic!("expected a server mismatch after a successful lookup, got {other:?}"),
    }
    // wrong.example.test is not in the certificate: the TLS handshake fails.
    match verifier.verify(&token("wrong.test")).await {
        Err(OpenIdError::Transport { cause, .. }) => assert!(
            cause.contains("certificate")
                || cause.contains("Certificate")
                || cause.contains("NotValidForName"),
            "{cause}"
        ),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    // A destination that stopped answering: the service resolves once more and reaches
    // Synapse at the new address within the same request.
    match verifier.verify(&token("moved.test")).await {
        Err(OpenIdError::ServerMismatch { sub, .. }) => assert_eq!(sub, heidi),
        other => panic!("expected Synapse to answer after re-resolving, got {other:?}"),
    }
    // The same delegation and SRV target for a name the operator did not trust: the SRV
    // target resolves to loopback only, which a stranger's name may not reach.
    match verifier.verify(&token("stranger.test")).await {
        Err(OpenIdError::Transport { cause, .. }) => {
            assert!(cause.contains("deny list"), "{cause}");
        }
        other => panic!("expected the loopback SRV target to be refused, got {other:?}"),
    }
    // The direct IP-literal path returns the user.
    assert_eq!(
        verifier.verify(&token(&synapse.server_name)).await.unwrap(),
        heidi
    );
}
