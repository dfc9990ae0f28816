//! The binary's command line: configuration errors, the `healthcheck` subcommand.

mod common;

use std::process::{Command, Output};

use common::{LiveKitFake, Service, TempDir, free_port};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lk-jwt-service"));
    for (name, _) in std::env::vars() {
        if name.starts_with("LIVEKIT_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

const VALID: &[(&str, &str)] = &[
    ("LIVEKIT_URL", "ws://127.0.0.1:7880"),
    ("LIVEKIT_KEY", "devkey"),
    ("LIVEKIT_SECRET", "devsecret"),
    ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "example.com"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = VALID
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .copied()
        .collect();
    env.extend(extra.iter().filter(|(_, v)| !v.is_empty()).copied());
    env
}

#[test]
fn bad_configuration_exits_with_a_message_naming_the_variable() {
    for (extra, expected) in [
        (&[("LIVEKIT_URL", "")][..], "LIVEKIT_URL must be set"),
        (
            &[("LIVEKIT_SECRET", "")][..],
            "LIVEKIT_SECRET (or LIVEKIT_SECRET_FROM_FILE, or LIVEKIT_KEY_FILE) must be set",
        ),
        (
            &[("LIVEKIT_KEY", "")][..],
            "LIVEKIT_KEY (or LIVEKIT_KEY_FROM_FILE, or LIVEKIT_KEY_FILE) must be set",
        ),
        (
            &[("LIVEKIT_FULL_ACCESS_HOMESERVERS", "")][..],
            "LIVEKIT_FULL_ACCESS_HOMESERVERS must be set",
        ),
        (
            &[("LIVEKIT_JWT_BIND", ":1"), ("LIVEKIT_JWT_PORT", "2")][..],
            "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT",
        ),
        (
            &[("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS", "-1")][..],
            "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS",
        ),
        (
            &[("LIVEKIT_CS_API_URL_OVERRIDES", "example.com")][..],
            "LIVEKIT_CS_API_URL_OVERRIDES",
        ),
        (
            &[("LIVEKIT_KEY_FILE", "/nonexistent/keys")][..],
            "LIVEKIT_KEY_FILE",
        ),
    ] {
        let output = run(&[], &with(extra));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{extra:?} should fail");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
}

#[test]
fn bad_key_file_format() {
    let dir = TempDir::new("cli-keyfile");
    let file = dir.path("keys");
    std::fs::write(&file, "no-colon-here\n").unwrap();
    let path = file.display().to_string();
    let mut env = VALID.to_vec();
    env.push(("LIVEKIT_KEY_FILE", &path));
    let output = run(&[], &env);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid key secret file format!"));
}

#[test]
fn unknown_arguments_are_refused() {
    let output = run(&["--frobnicate"], VALID);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage"));
}

#[test]
fn help_and_version_need_no_configuration() {
    for flag in ["--help", "-h"] {
        let output = run(&[flag], &[]);
        assert!(output.status.success(), "{flag}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.starts_with("usage: lk-jwt-service"), "{stdout}");
        assert!(stdout.contains("docs/lk-jwt-service-config.md"), "{stdout}");
        assert!(stdout.contains("lk-jwt-service doctor <server"), "{stdout}");
    }
    for flag in ["--version", "-V"] {
        let output = run(&[flag], &[]);
        assert!(output.status.success(), "{flag}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("lk-jwt-service {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

/// The warnings are read with the configuration, before logging starts, and must still
/// reach the log. The port is held by this test, so the service stops right after them
/// without ever listening on every interface.
#[test]
fn startup_warnings_reach_the_log() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let mut env = VALID.to_vec();
    env.push(("LIVEKIT_JWT_PORT", &port));
    let output = run(&[], &env);
    assert_eq!(output.status.code(), Some(1));
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        log.contains(&format!(
            "LIVEKIT_JWT_PORT is deprecated, use LIVEKIT_JWT_BIND=:{port}"
        )),
        "{log}"
    );
    assert!(
        log.contains("the LiveKit API secret is 9 bytes long"),
        "{log}"
    );
    assert!(!log.contains("devsecret"), "{log}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot listen"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn healthcheck_subcommand_follows_the_bind_setting() {
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&[
        ("LIVEKIT_URL", sfu.url()),
        ("LIVEKIT_KEY", "devkey".into()),
        ("LIVEKIT_SECRET", "devsecret".into()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*".into()),
    ])
    .await;
    let bind = format!("127.0.0.1:{}", service.port);
    let ok = run(&["healthcheck"], &[("LIVEKIT_JWT_BIND", &bind)]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Upstream's helper breaks on ":port"; ours probes loopback.
    let colon = format!(":{}", service.port);
    let ok = run(&["healthcheck"], &[("LIVEKIT_JWT_BIND", &colon)]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    drop(service);
    let down = format!("127.0.0.1:{}", free_port());
    let failed = run(&["healthcheck"], &[("LIVEKIT_JWT_BIND", &down)]);
    assert_eq!(failed.status.code(), Some(1));
}

#[tokio::test]
async fn real_listener_answers_with_upstream_headers() {
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&[
        ("LIVEKIT_URL", sfu.url()),
        ("LIVEKIT_KEY", "devkey".into()),
        ("LIVEKIT_SECRET", "devsecret".into()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*".into()),
    ])
    .await;
    let client = reqwest::Client::new();
    let options = client
        .request(reqwest::Method::OPTIONS, service.url("/get_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 200);
    assert_eq!(options.headers()["access-control-allow-methods"], "POST");
    let get = client.get(service.url("/sfu/get")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    let (status, body) = service
        .post(
            "/get_token",
            &serde_json::json!({"room_id": "!r", "unknown": 1}),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "{\"errcode\":\"M_NOT_JSON\",\"error\":\"Error reading request\"}\n"
        )
    );
    let missing = client.get(service.url("/missing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "404 page not found\n");
}

#[tokio::test]
async fn per_ip_rate_limit_and_metrics_when_enabled() {
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&[
        ("LIVEKIT_URL", sfu.url()),
        ("LIVEKIT_KEY", "devkey".into()),
        ("LIVEKIT_SECRET", "devsecret".into()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*".into()),
        ("LIVEKIT_RATE_LIMIT_PER_MINUTE", "2".into()),
        ("LIVEKIT_ENABLE_METRICS", "true".into()),
    ])
    .await;
    let body = serde_json::json!({"room_id": "!r"});
    for _ in 0..2 {
        let (status, _) = service.post("/get_token", &body).await;
        assert_eq!(status, 400);
    }
    let (status, answer) = service.post("/get_token", &body).await;
    assert_eq!(
        (status, answer.as_str()),
        (
            429,
            "{\"errcode\":\"M_LIMIT_EXCEEDED\",\"error\":\"Too many requests\"}\n"
        )
    );
    let metrics = reqwest::get(service.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lk_jwt_requests_total{endpoint=\"/get_token\",status=\"429\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lk_jwt_requests_total{endpoint=\"/get_token\",status=\"400\"} 2"),
        "{metrics}"
    );
}

/// Behind a trusted reverse proxy each client gets its own rate-limit bucket (the
/// address from `X-Forwarded-For`); without `LIVEKIT_TRUSTED_PROXIES` the header is
/// ignored and the proxy's address is the one bucket.
#[tokio::test]
async fn trusted_proxies_name_the_client() {
    let sfu = LiveKitFake::start().await;
    let post = |service: &Service, forwarded_for: &'static str| {
        let request = reqwest::Client::new()
            .post(service.url("/get_token"))
            .header("x-forwarded-for", forwarded_for)
            .body("{}");
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let env = |trusted: Option<&str>| {
        let mut env = vec![
            ("LIVEKIT_URL", sfu.url()),
            ("LIVEKIT_KEY", "devkey".into()),
            ("LIVEKIT_SECRET", "devsecret".into()),
            ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*".into()),
            ("LIVEKIT_RATE_LIMIT_PER_MINUTE", "2".into()),
        ];
        if let Some(trusted) = trusted {
            env.push(("LIVEKIT_TRUSTED_PROXIES", trusted.into()));
        }
        env
    };
    let behind_proxy = Service::start(&env(Some("127.0.0.0/8, ::1"))).await;
    for client in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            assert_eq!(post(&behind_proxy, client).await, 400, "{client}");
        }
    }
    assert_eq!(post(&behind_proxy, "203.0.113.1").await, 429);
    // A client that forges the header in front of the proxy gains nothing: the proxy
    // appends the real address, which is the one counted.
    assert_eq!(post(&behind_proxy, "198.51.100.9, 203.0.113.2").await, 429);

    let untrusted = Service::start(&env(None)).await;
    assert_eq!(post(&untrusted, "203.0.113.1").await, 400);
    assert_eq!(post(&untrusted, "203.0.113.2").await, 400);
    assert_eq!(post(&untrusted, "203.0.113.3").await, 429);
}

/// OpenID access tokens never reach the log, however malformed the body that carries
/// them: Go-style decode errors name the field and the kind of value only.
#[tokio::test]
async fn tokens_in_malformed_bodies_are_not_logged() {
    const TOKEN: &str = "syt_bGVha2VkLXRva2Vu_NeverLogMe_0a1b2c";
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&[
        ("LIVEKIT_URL", sfu.url()),
        ("LIVEKIT_KEY", "devkey".into()),
        ("LIVEKIT_SECRET", "devsecret".into()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*".into()),
    ])
    .await;
    let member =
        serde_json::json!({"id": "m", "claimed_user_id": "@u:hs", "claimed_device_id": "D"});
    let bodies = [
        serde_json::json!({"room_id": "!r", "slot_id": "s", "openid_token": TOKEN, "member": member}),
        serde_json::json!({"room_id": "!r", "slot_id": "s", "openid_token": [TOKEN], "member": member}),
        serde_json::json!({"room": "!r", "openid_token": {"access_token": "t", "expires_in": TOKEN}}),
        serde_json::json!({"openid_token": {"access_token": TOKEN, "matrix_server_name": 1}}),
        serde_json::json!({"openid_token": {"access_token": TOKEN, "token_type": ["Bearer"]}}),
    ];
    for path in ["/get_token", "/sfu/get", "/delegate_delayed_leave"] {
        for body in &bodies {
            let (status, answer) = service.post(path, body).await;
            assert_eq!(status, 400, "{path} {body}: {answer}");
            assert!(!answer.contains(TOKEN));
        }
    }
    let log = service.log();
    assert!(
        log.contains("cannot unmarshal string into field openid_token, an object"),
        "{log}"
    );
    assert!(
        !log.contains(TOKEN),
        "the token leaked into the log:\n{log}"
    );
}
