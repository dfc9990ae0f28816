//! Delayed-leave delegation end to end: a real Synapse with MSC4140 delayed events, the
//! real binary, LiveKit webhooks signed like the SFU signs them, and a real Redis for
//! persistence across a crash.

mod common;

use std::time::Duration;

use common::{KEY, LiveKitFake, Redis, SECRET, Service, Synapse, eventually, send_webhook};
use lk_jwt_service::livekit::alias;
use serde_json::{Value, json};

fn env(synapse: &Synapse, sfu: &LiveKitFake) -> Vec<(&'static str, String)> {
    vec![
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
    ]
}

fn body(room: &str, openid: &Value, user: &str, delay_id: &str) -> Value {
    json!({
        "room_id": room,
        "slot_id": "m.call#ROOM",
        "openid_token": openid,
        "member": {"id": "member1", "claimed_user_id": user, "claimed_device_id": "DEVICE123"},
        "delay_id": delay_id,
        "delay_timeout": 60000,
        "delay_cs_api_url": "https://attacker.example",
    })
}

/// The whole MSC4140 story: the token request delegates the leave, the SFU reports the
/// participant joined (the service restarts the delayed event) and left (the service
/// sends it, and Synapse puts the leave state event in the room). The CS-API URL comes
/// from Synapse's real `/.well-known/matrix/client`, not from the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leave_event_is_sent_when_the_participant_leaves() {
    let synapse = Synapse::shared();
    let (ivan, _) = synapse.user("ivan");
    let room = synapse.create_room("ivan");
    let state_key = format!("_{ivan}_DEVICE123");
    let delay_id = synapse.delayed_leave("ivan", &room, &state_key, 60_000);
    let openid = synapse.openid_token("ivan");
    let sfu = LiveKitFake::start().await;
    let service = Service::start(&env(synapse, &sfu)).await;

    let (status, answer) = service
        .post("/get_token", &body(&room, &openid, &ivan, &delay_id))
        .await;
    assert_eq!(status, 200, "{answer}\n{}", service.log());
    let alias = alias::room_alias(&room, "m.call#ROOM");
    let identity = alias::member_identity(&ivan, "DEVICE123", "member1");
    assert_eq!(sfu.calls().len(), 1);
    assert_eq!(sfu.calls()[0].name, alias);
    assert!(!synapse.leave_sent("ivan", &room, &state_key));

    // Phase 1 polls GetParticipant with a roomAdmin token for exactly this participant
    // (besides the start-up probe's look-up of a participant that does not exist).
    let wanted = (alias.clone(), identity.clone());
    let polled = || sfu.lookups.lock().unwrap().contains(&wanted);
    assert!(eventually(Duration::from_secs(5), polled).await);

    assert_eq!(
        send_webhook(&service, "participant_joined", &alias, &identity, "").await,
        200
    );
    assert!(
        eventually(Duration::from_secs(10), || service
            .log()
            .contains("participant connected"))
        .await,
        "{}",
        service.log()
    );
    assert!(
        !synapse.leave_sent("ivan", &room, &state_key),
        "sent too early"
    );

    // A webhook for someone else, or with a bad signature, changes nothing.
    assert_eq!(
        send_webhook(
            &service,
            "participant_left",
            &alias,
            "someone-else",
            "CLIENT_INITIATED"
        )
        .await,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!synapse.leave_sent("ivan", &room, &state_key));

    assert_eq!(
        send_webhook(
            &service,
            "participant_left",
            &alias,
            &identity,
            "CLIENT_INITIATED"
        )
        .await,
        200
    );
    assert!(
        eventually(Duration::from_secs(15), || synapse
            .leave_sent("ivan", &room, &state_key))
        .await,
        "the delayed leave event was not sent\n{}",
        service.log()
    );
    assert!(!service.log().contains("attacker.example"));
    // The delay id is a capability: it stays out of the log, as the OpenID token does.
    assert!(
        !service.log().contains(&delay_id),
        "delay id leaked into the log"
    );
    assert!(
        !service
            .log()
            .contains(openid["access_token"].as_str().unwrap())
    );
}

/// Jobs survive a crash with Redis (password-protected, the password in
/// `LIVEKIT_REDIS_PASSWORD` as upstream v0.7 reads it): the record is written before the
/// 200, an expired record is purged at start, and the resumed job still sends the leave
/// event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_crash_with_redis() {
    let synapse = Synapse::shared();
    let (judy, _) = synapse.user("judy");
    let room = synapse.create_room("judy");
    let state_key = format!("_{judy}_DEVICE123");
    let delay_id = synapse.delayed_leave("judy", &room, &state_key, 60_000);
    let openid = synapse.openid_token("judy");
    let sfu = LiveKitFake::start().await;
    let redis = Redis::with_password("s3cret pass");
    let mut vars = env(synapse, &sfu);
    vars.push(("LIVEKIT_REDIS_URL", redis.url()));
    vars.push(("LIVEKIT_REDIS_PASSWORD", "s3cret pass".into()));
    let mut service = Service::start(&vars).await;

    let (status, answer) = service
        .post(
            "/delegate_delayed_leave",
            &body(&room, &openid, &judy, &delay_id),
        )
        .await;
    assert_eq!(
        (status, answer.as_str()),
        (200, "{}\n"),
        "{}",
        service.log()
    );
    assert!(sfu.calls().is_empty(), "delegation alone creates no room");
    let alias = alias::room_alias(&room, "m.call#ROOM");
    let identity = alias::member_identity(&judy, "DEVICE123", "member1");
    let jobs = redis.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].0,
        serde_json::to_string(&[&alias, &identity]).unwrap()
    );
    let record: Value = serde_json::from_str(&jobs[0].1).unwrap();
    assert_eq!(record["Params"]["DelayId"], delay_id.as_str());
    assert_eq!(record["Params"]["DelayTimeout"], 60_000_000_000i64);
    assert_eq!(record["Params"]["ServerName"], synapse.server_name.as_str());
    assert_eq!(record["Params"]["LiveKitRoom"], alias.as_str());
    assert_eq!(record["Params"]["LiveKitIdentity"], identity.as_str());

    service.kill();
    redis
        .put_job(
            r#"["old-room","old-identity"]"#,
            r#"{"Params":{"DelayId":"gone","DelayTimeout":1000000000,"ServerName":"hs","LiveKitRoom":"old-room","LiveKitIdentity":"old-identity"},"RestartedAt":"2020-01-01T00:00:00Z"}"#,
        )
        .await;
    redis.put_job(r#"["junk","junk"]"#, "not json").await;
    assert_eq!(redis.jobs().await.len(), 3);

    // Restarted in place (same host and port: the same replica), it takes its jobs back
    // at once instead of waiting for the dead process's leases to run out.
    let service = Service::start_on(service.port, &vars).await;
    let fields: Vec<String> = redis
        .jobs()
        .await
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert!(
        !fields.contains(&r#"["old-room","old-identity"]"#.to_owned()),
        "expired job kept"
    );
    assert!(fields.contains(&jobs[0].0), "live job lost");
    assert!(
        !fields.contains(&r#"["junk","junk"]"#.to_owned()),
        "unreadable job kept"
    );

    assert_eq!(
        send_webhook(&service, "participant_joined", &alias, &identity, "").await,
        200
    );
    assert!(
        eventually(Duration::from_secs(10), || service
            .log()
            .contains("participant connected"))
        .await
    );
    assert_eq!(
        send_webhook(
            &service,
            "participant_connection_aborted",
            &alias,
            &identity,
            "SIGNAL_CLOSE"
        )
        .await,
        200
    );
    assert!(
        eventually(Duration::from_secs(15), || synapse
            .leave_sent("judy", &room, &state_key))
        .await,
        "{}",
        service.log()
    );
    // The finished job is gone from Redis too.
    let mut remaining = Vec::new();
    for _ in 0..50 {
        remaining = redis
            .jobs()
            .await
            .into_iter()
            .map(|(field, _)| field)
            .collect::<Vec<_>>();
        if !remaining.contains(&jobs[0].0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!remaining.contains(&jobs[0].0), "{remaining:?}");
}

/// An unreachable Redis is fatal at start, naming the variable.
#[tokio::test]
async fn unreachable_redis_is_fatal() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lk-jwt-service"))
        .env("LIVEKIT_URL", "ws://127.0.0.1:7880")
        .env("LIVEKIT_KEY", KEY)
        .env("LIVEKIT_SECRET", SECRET)
        .env("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*")
        .env(
            "LIVEKIT_JWT_BIND",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .env(
            "LIVEKIT_REDIS_URL",
            format!("redis://127.0.0.1:{}/0", common::free_port()),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("LIVEKIT_REDIS_URL"));
}

/// A password-protected Redis: without the password (or with a wrong one) the service
/// stops at start with a message naming the variable; the password in the URL works
/// as before.
#[tokio::test]
async fn redis_passwords() {
    let redis = Redis::with_password("pw");
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = held.local_addr().unwrap().to_string();
    let start = |url: String, password: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lk-jwt-service"));
        for (name, _) in std::env::vars() {
            if name.starts_with("LIVEKIT_") {
                command.env_remove(name);
            }
        }
        command
            .env("LIVEKIT_URL", "ws://127.0.0.1:7880")
            .env("LIVEKIT_KEY", KEY)
            .env("LIVEKIT_SECRET", SECRET)
            .env("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*")
            .env("LIVEKIT_JWT_BIND", &bind)
            .env("LIVEKIT_REDIS_URL", url);
        if let Some(password) = password {
            command.env("LIVEKIT_REDIS_PASSWORD", password);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = start(redis.url(), None);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("NOAUTH"), "{stderr}");
    assert!(stderr.contains("LIVEKIT_REDIS_PASSWORD"), "{stderr}");
    let (code, stderr) = start(redis.url(), Some("not-the-pw-123"));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("wrong password"), "{stderr}");
    assert!(stderr.contains("LIVEKIT_REDIS_PASSWORD"), "{stderr}");
    assert!(
        !stderr.contains("not-the-pw"),
        "the password stays out: {stderr}"
    );
    // The right ways get past Redis, to the listener (whose port this test holds); the
    // variable wins over a password in the URL.
    for (url, password) in [
        (redis.url(), Some("pw")),
        (redis.url_with_password(), None),
        (
            format!("redis://:other@127.0.0.1:{}/0", redis.port),
            Some("pw"),
        ),
    ] {
        let (code, stderr) = start(url.clone(), password);
        assert_eq!(code, Some(1), "{url}");
        assert!(stderr.contains("cannot listen"), "{url}: {stderr}");
    }
}

/// SIGTERM drains and exits cleanly, and leaves persisted jobs for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_jobs_for_the_next_start() {
    let synapse = Synapse::shared();
    let (karl, _) = synapse.user("karl");
    let room = synapse.create_room("karl");
    let state_key = format!("_{karl}_DEVICE123");
    let delay_id = synapse.delayed_leave("karl", &room, &state_key, 60_000);
    let openid = synapse.openid_token("karl");
    let sfu = LiveKitFake::start().await;
    let redis = Redis::start();
    let mut vars = env(synapse, &sfu);
    vars.push(("LIVEKIT_REDIS_URL", redis.url()));
    let mut service = Service::start(&vars).await;
    let (status, _) = service
        .post(
            "/delegate_delayed_leave",
            &body(&room, &openid, &karl, &delay_id),
        )
        .await;
    assert_eq!(status, 200);

    let status = service.terminate(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", service.log());
    assert!(service.log().contains("shut down"), "{}", service.log());
    assert_eq!(
        redis.jobs().await.len(),
        1,
        "the job must survive a clean shutdown"
    );
    assert!(!synapse.leave_sent("karl", &room, &state_key));
}
