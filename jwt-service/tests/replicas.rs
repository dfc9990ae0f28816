//! Several replicas on one Redis: a delegated leave job belongs to one replica at a time
//! (a lease in Redis); when that replica dies its job is taken over by another within
//! seconds, and the leave event is still sent exactly once (counted at a homeserver fake
//! that records every MSC4140 call). The jobs come from the application-service
//! delegation route, whose delay lookup the fake answers.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use common::{KEY, LiveKitFake, Redis, SECRET, Service, eventually, send_webhook};
use serde_json::json;

const AS_TOKEN: &str = "as-token-0123456789abcdef";
const HS_TOKEN: &str = "hs-token-0123456789abcdef";
const USER: &str = "@alice:hs.example";
const ROOM: &str = "!room:hs.example";

/// Every `(delay_id, action)` the homeserver fake was asked to do.
type Calls = Arc<Mutex<Vec<(String, String)>>>;

async fn homeserver(calls: Calls) -> String {
    let app = axum::Router::new()
        .route(
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/{id}",
            get(|Path(id): Path<String>| async move {
                axum::Json(json!({
                    "delay_id": id, "room_id": ROOM, "type": "org.matrix.msc3401.call.member",
                    "state_key": "_alice", "delay_ms": 60_000, "delayed_since_ts": 0, "content": {},
                }))
            }),
        )
        .route(
            "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/{id}/{action}",
            post(
                |State(calls): State<Calls>, Path((id, action)): Path<(String, String)>| async move {
                    calls.lock().unwrap().push((id, action));
                    axum::Json(json!({}))
                },
            ),
        )
        .with_state(calls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn count(calls: &Calls, action: &str) -> usize {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, a)| a == action)
        .count()
}

async fn owner(redis: &Redis, field: &str) -> Option<String> {
    let mut connection = redis.connection().await;
    redis::cmd("GET")
        .arg(format!("lk-jwt:owner:{field}"))
        .query_async(&mut connection)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replicas_job_is_taken_over_and_the_leave_sent_once() {
    let calls: Calls = Arc::default();
    let hs = homeserver(calls.clone()).await;
    let sfu = LiveKitFake::start().await;
    *sfu.present.lock().unwrap() = true;
    let redis = Redis::with_password("replica-pw");
    let env = vec![
        ("LIVEKIT_URL", sfu.url()),
        ("LIVEKIT_KEY", KEY.to_owned()),
        ("LIVEKIT_SECRET", SECRET.to_owned()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "hs.example".to_owned()),
        ("LIVEKIT_AS_TOKEN", AS_TOKEN.to_owned()),
        ("LIVEKIT_HS_TOKEN", HS_TOKEN.to_owned()),
        ("LIVEKIT_HS_SERVER_NAME", "hs.example".to_owned()),
        ("LIVEKIT_CS_API_URL_OVERRIDES", format!("hs.example={hs}")),
        ("LIVEKIT_REDIS_URL", redis.url()),
        ("LIVEKIT_REDIS_PASSWORD", "replica-pw".to_owned()),
    ];
    let mut replicas = [
        Service::start(&env).await,
        Service::start(&env).await,
        Service::start(&env).await,
    ];

    // Delegated on the first replica, which holds the job.
    let answer =
        reqwest::Client::new()
            .post(replicas[0].url(
                "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave",
            ))
            .bearer_auth(HS_TOKEN)
            .header("x-matrix-user-identifier", USER)
            .json(&json!({
                "url": sfu.url(), "room_id": ROOM, "slot_id": "m.call#", "member_id": "M",
                "delay_id": "syd_1",
            }))
            .send()
            .await
            .unwrap();
    assert_eq!(answer.status(), 200, "{}", replicas[0].log());
    let room = lk_jwt_service::livekit::alias::hash_strings(&[ROOM, "m.call#"]);
    let identity = lk_jwt_service::livekit::alias::hash_strings(&[USER, "M"]);
    let field = serde_json::to_string(&[&room, &identity]).unwrap();
    let holder = |replica: &Service| replica.port;
    let owner_port = |owner: Option<String>| {
        owner.and_then(|o| o.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()))
    };
    assert_eq!(
        owner_port(owner(&redis, &field).await),
        Some(holder(&replicas[0]))
    );
    // The participant is on the SFU: the job keeps the event alive and says so in Redis.
    assert!(
        eventually(Duration::from_secs(10), || count(&calls, "restart") >= 1).await,
        "{}",
        replicas[0].log()
    );
    let connected = async {
        for _ in 0..50 {
            let jobs: HashMap<String, String> = redis.jobs().await.into_iter().collect();
            if jobs
                .get(&field)
                .is_some_and(|r| r.contains(r#""Connected":true"#))
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(connected.await, "{:?}", redis.jobs().await);

    // The holder dies mid-job. Another replica takes the job within the lease and
    // keeps the event alive.
    replicas[0].kill();
    let restarts_before = count(&calls, "restart");
    let mut new_holder = None;
    for _ in 0..250 {
        let port = owner_port(owner(&redis, &field).await);
        if let Some(port) = port.filter(|p| *p != holder(&replicas[0])) {
            new_holder = Some(port);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new_holder = new_holder.expect("nobody took the job over within 25 s");
    assert!(
        eventually(Duration::from_secs(10), || count(&calls, "restart")
            > restarts_before)
        .await,
        "the new holder did not keep the event alive"
    );
    assert_eq!(count(&calls, "send"), 0);

    // The participant leaves; the webhook reaches the replica that does not hold the
    // job, which forwards it.
    *sfu.present.lock().unwrap() = false;
    let other = replicas[1..].iter().find(|r| r.port != new_holder).unwrap();
    assert_eq!(
        send_webhook(
            other,
            "participant_left",
            &room,
            &identity,
            "CLIENT_INITIATED"
        )
        .await,
        200
    );
    assert!(
        eventually(Duration::from_secs(10), || count(&calls, "send") == 1).await,
        "leave not sent: {}\n{}",
        replicas[1].log(),
        replicas[2].log()
    );
    // Exactly once: nobody else sends it, also after another lease period.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count(&calls, "send"), 1, "{:?}", calls.lock().unwrap());
    assert!(
        redis.jobs().await.is_empty(),
        "the finished job stays stored"
    );
    assert_eq!(owner(&redis, &field).await, None);
}
