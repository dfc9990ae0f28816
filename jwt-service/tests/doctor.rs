//! `lk-jwt-service doctor` against real deployments on loopback: Synapse, lk-jwt-service,
//! our turn-server and Debian's nginx running the shipped template, over TLS with a test
//! CA. Configured as docs/element-call.md says, nothing fails; each of the seeds'
//! mistakes, reproduced, is named by its check id.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{KEY, LiveKitFake, Nginx, SECRET, Service, Synapse, TempDir, TurnServer};
use serde_json::Value;

const TURN_SECRET: &str = "doctor-test-turn-secret";
const SERVER_NAME: &str = "example.test";
const MATRIX_DOMAIN: &str = "matrix.example.test";
const RTC_DOMAIN: &str = "rtc.example.test";
const TURN_DOMAIN: &str = "turn.example.test";

/// The certificate nginx and turn-server present, and a CA bundle that trusts it and
/// Synapse's federation listener.
struct Pki {
    dir: TempDir,
    cert: String,
    key: String,
    bundle: String,
}

/// The certificate for every public name of the test deployment.
fn certificates() -> (TempDir, common::TestPki) {
    let dir = TempDir::new("doctor-pki");
    let pki = common::make_pki(
        &dir.0,
        &[SERVER_NAME, MATRIX_DOMAIN, RTC_DOMAIN, TURN_DOMAIN],
    );
    (dir, pki)
}

impl Pki {
    fn new(synapse: &Synapse) -> Self {
        let (dir, pki) = certificates();
        Self::with(dir, &pki, synapse)
    }

    fn with(dir: TempDir, pki: &common::TestPki, synapse: &Synapse) -> Self {
        let bundle = dir.path("bundle.pem");
        let text = std::fs::read_to_string(&pki.ca_pem).unwrap()
            + &std::fs::read_to_string(&synapse.ca_pem).unwrap();
        std::fs::write(&bundle, text).unwrap();
        let path = |p: &Path| p.display().to_string();
        Self {
            cert: path(&pki.cert_pem),
            key: path(&pki.key_pem),
            bundle: path(&bundle),
            dir,
        }
    }
}

/// The shipped nginx template in front of `synapse`, `service` and `sfu`, with the
/// test's port in the public URLs; `edit` reproduces a mistake.
fn nginx(
    port: u16,
    pki: &Pki,
    synapse: &Synapse,
    service: &Service,
    sfu: &LiveKitFake,
    edit: impl FnOnce(String) -> String,
) -> Nginx {
    let values = [
        ("SERVER_NAME", SERVER_NAME.to_owned()),
        ("MATRIX_DOMAIN", MATRIX_DOMAIN.to_owned()),
        ("RTC_DOMAIN", RTC_DOMAIN.to_owned()),
        ("TLS_CERT", pki.cert.clone()),
        ("TLS_KEY", pki.key.clone()),
        (
            "HOMESERVER_UPSTREAM",
            format!("127.0.0.1:{}", synapse.client_port),
        ),
        ("JWT_UPSTREAM", format!("127.0.0.1:{}", service.port)),
        ("LIVEKIT_UPSTREAM", sfu.addr.to_string()),
    ];
    Nginx::start(port, &values, |text| {
        edit(
            text.replace(
                &format!("https://{MATRIX_DOMAIN}\""),
                &format!("https://{MATRIX_DOMAIN}:{port}\""),
            )
            .replace(
                &format!("https://{RTC_DOMAIN}/"),
                &format!("https://{RTC_DOMAIN}:{port}/"),
            ),
        )
    })
}

/// Drops the two transports locations (for homeservers that answer themselves).
fn without_transports_route(text: String) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.trim_start().starts_with("location = /_matrix/client/") {
            skipping = true;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
        if skipping && line.trim() == "}" {
            skipping = false;
        }
    }
    assert!(!out.contains("rtc/transports {"), "route still there");
    out
}

/// Removes `org.matrix.msc4143.rtc_foci` from the client well-known document.
fn without_rtc_foci(text: String) -> String {
    let start = text
        .find(",\"org.matrix.msc4143.rtc_foci\"")
        .expect("rtc_foci in the template");
    let end = start + text[start..].find("]").expect("end of rtc_foci") + 1;
    format!("{}{}", &text[..start], &text[end..])
}

async fn service(
    sfu: &LiveKitFake,
    synapse: &Synapse,
    extra: &[(&'static str, String)],
) -> Service {
    let mut env = vec![
        ("LIVEKIT_URL", format!("wss://{RTC_DOMAIN}/livekit/sfu")),
        ("LIVEKIT_API_URL", format!("http://{}", sfu.addr)),
        ("LIVEKIT_KEY", KEY.into()),
        ("LIVEKIT_SECRET", SECRET.into()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*".into()),
        // Synapse listens on loopback, which only named homeservers may reach.
        ("LIVEKIT_PRIVATE_HOMESERVERS", synapse.server_name.clone()),
        (
            "LIVEKIT_MATRIX_CA_FILE",
            synapse.ca_pem.display().to_string(),
        ),
    ];
    for (name, value) in extra {
        env.retain(|(n, _)| n != name);
        env.push((name, value.clone()));
    }
    Service::start(&env).await
}

/// Runs `lk-jwt-service doctor https://example.test:PORT --json ...`; returns the exit
/// code and the JSON report.
async fn doctor(port: u16, pki: &Pki, token: Option<&str>) -> (i32, Value) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lk-jwt-service"));
    command.args(["doctor", &format!("https://{SERVER_NAME}:{port}"), "--json"]);
    command.args(["--ca-file", &pki.bundle, "--timeout", "5"]);
    for host in [SERVER_NAME, MATRIX_DOMAIN, RTC_DOMAIN, TURN_DOMAIN] {
        command.args(["--resolve", &format!("{host}:127.0.0.1")]);
    }
    command.env_remove("MATRIX_ACCESS_TOKEN");
    if let Some(token) = token {
        command.env("MATRIX_ACCESS_TOKEN", token);
    }
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("cannot run lk-jwt-service doctor");
    // Every call has a 5 s timeout; a run that takes much longer is a hang.
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "doctor took {:?}",
        started.elapsed()
    );
    eprintln!("doctor run: {:?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

fn ids(report: &Value, status: &str) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn summary(report: &Value, id: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .map(|c| c["summary"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Synapse configured with the block of docs/element-call.md, its TURN URIs pointing
/// at `turn`, its transports at `https://rtc.example.test:nginx_port/livekit/jwt`.
fn docs_synapse(nginx_port: u16, turn: &TurnServer, secret_file: &Path) -> Synapse {
    let block = common::docs_block(
        "synapse-element-call",
        &[
            (
                "https://rtc.example.org/livekit/jwt",
                format!("https://{RTC_DOMAIN}:{nginx_port}/livekit/jwt"),
            ),
            (
                "turn.example.org:3478",
                format!("{TURN_DOMAIN}:{}", turn.port),
            ),
            (
                "turn.example.org:5349",
                format!("{TURN_DOMAIN}:{}", turn.tls_port),
            ),
            (
                "/run/secrets/turn_shared_secret",
                secret_file.display().to_string(),
            ),
        ],
    );
    Synapse::start("doctor-docs", |_| block)
}

#[test]
fn bad_arguments_exit_2_with_the_usage_and_an_unreachable_server_fails_in_bounded_time() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lk-jwt-service"))
            .arg("doctor")
            .args(args)
            .env_remove("MATRIX_ACCESS_TOKEN")
            .output()
            .unwrap()
    };
    for args in [
        &[][..],
        &["example.org", "--timeout", "0"],
        &["example.org", "--resolve", "example.org"],
        &["example.org", "--bogus"],
        &["ftp://example.org"],
        &["example.org", "--ca-file", "/nonexistent/ca.pem"],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).starts_with("lk-jwt-service doctor: "),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Nothing listens there: every step fails or is skipped, exit code 1, in bounded time.
    let port = common::free_port();
    let started = Instant::now();
    let output = run(&[&format!("http://127.0.0.1:{port}"), "--timeout", "2"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("[FAIL] well-known: cannot fetch"), "{text}");
    assert!(text.contains("       fix: "), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_as_the_docs_say_passes_and_ws_behind_https_is_named() {
    let (dir, certs) = certificates();
    let turn = TurnServer::start_with(TURN_SECRET, Some((&certs.cert_pem, &certs.key_pem)));
    let port = common::free_port();
    let secrets = TempDir::new("doctor-secret");
    let secret_file = secrets.path("turn_shared_secret");
    std::fs::write(&secret_file, format!("{TURN_SECRET}\n")).unwrap();
    let synapse = docs_synapse(port, &turn, &secret_file);
    let pki = Pki::with(dir, &certs, &synapse);
    let sfu = LiveKitFake::start().await;
    let (_, token) = synapse.user("alice");

    // Synapse answers the transports itself: the template without its transports route.
    let jwt = service(
        &sfu,
        &synapse,
        &[(
            "LIVEKIT_URL",
            format!("wss://{RTC_DOMAIN}:{port}/livekit/sfu"),
        )],
    )
    .await;
    let proxy = nginx(port, &pki, &synapse, &jwt, &sfu, without_transports_route);
    let (code, report) = doctor(port, &pki, Some(&token)).await;
    assert_eq!(
        ids(&report, "fail"),
        Vec::<String>::new(),
        "{report:#}\nnginx: {}\nservice: {}",
        proxy.error_log(),
        jwt.log()
    );
    assert_eq!(code, 0, "{report:#}");
    for id in [
        "well-known",
        "transports",
        "jwt-get-token",
        "jwt-healthz",
        "jwt-cors",
        "jwt-token-flow",
        "livekit-url",
        "livekit-token",
        "livekit-websocket",
        "turn-config",
        "turn-allocate",
        "federation",
    ] {
        assert!(
            ids(&report, "ok").contains(&id.to_owned()),
            "{id} not ok: {report:#}"
        );
    }
    let allocations = summary(&report, "turn-allocate");
    for transport in ["over UDP", "over TCP", "over TLS"] {
        assert!(
            allocations.contains(transport),
            "{transport}: {allocations}"
        );
    }
    drop(proxy);

    // A proxy that does not pass the WebSocket upgrade to LiveKit.
    let proxy = nginx(port, &pki, &synapse, &jwt, &sfu, |t| {
        without_transports_route(t)
            .lines()
            .filter(|l| {
                !l.contains("proxy_set_header Upgrade")
                    && !l.contains("proxy_set_header Connection")
            })
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let (code, report) = doctor(port, &pki, Some(&token)).await;
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(ids(&report, "fail"), ["livekit-websocket"], "{report:#}");
    drop(proxy);
    drop(jwt);

    // The seeds' LiveKit URL: ws:// straight at the SFU while the site is https.
    let jwt = service(
        &sfu,
        &synapse,
        &[("LIVEKIT_URL", format!("ws://{}", sfu.addr))],
    )
    .await;
    let _proxy = nginx(port, &pki, &synapse, &jwt, &sfu, without_transports_route);
    let (code, report) = doctor(port, &pki, Some(&token)).await;
    assert_eq!(code, 1, "{report:#}");
    assert!(
        ids(&report, "fail").contains(&"livekit-url-insecure".to_owned()),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_seed_mistake_is_named() {
    let turn = TurnServer::start(TURN_SECRET);
    let port = common::free_port();
    // The seeds' homeserver: no transports endpoint, TURN URIs without ?transport=,
    // and a TURN secret the relay does not have.
    let synapse = Synapse::start("doctor-seed", |_| {
        format!(
            "turn_uris: [\"turn:{TURN_DOMAIN}:{}\"]\nturn_shared_secret: \"not-the-relay-secret\"\n",
            turn.port
        )
    });
    let pki = Pki::new(&synapse);
    let sfu = LiveKitFake::start().await;
    let (_, token) = synapse.user("bob");
    let jwt = service(
        &sfu,
        &synapse,
        &[(
            "LIVEKIT_URL",
            format!("wss://{RTC_DOMAIN}:{port}/livekit/sfu"),
        )],
    )
    .await;

    // Missing transports, and no rtc_foci either.
    let proxy = nginx(port, &pki, &synapse, &jwt, &sfu, |t| {
        without_rtc_foci(without_transports_route(t))
    });
    let (code, report) = doctor(port, &pki, None).await;
    assert_eq!(code, 1);
    assert!(
        ids(&report, "fail").contains(&"transports-missing".to_owned()),
        "{report:#}"
    );
    drop(proxy);

    // rtc_foci only: the seeds' well-known, no transports endpoint.
    let proxy = nginx(port, &pki, &synapse, &jwt, &sfu, without_transports_route);
    let (code, report) = doctor(port, &pki, None).await;
    assert_eq!(code, 1);
    let failed = ids(&report, "fail");
    assert!(
        failed.contains(&"transports-rtc-foci-only".to_owned()),
        "{report:#}"
    );
    assert!(
        !failed.contains(&"transports-missing".to_owned()),
        "{report:#}"
    );
    drop(proxy);
    drop(jwt);

    // The transports route to lk-jwt-service, which names a JWT URL on the homeserver's
    // host where no route to it exists (the seeds' /livekit-jwt beside a catch-all):
    // the homeserver answers /get_token with a Matrix 404. TURN shows the seed's URI
    // without ?transport= and the secret mismatch.
    let jwt = service(
        &sfu,
        &synapse,
        &[
            (
                "LIVEKIT_URL",
                format!("wss://{RTC_DOMAIN}:{port}/livekit/sfu"),
            ),
            (
                "LIVEKIT_RTC_TRANSPORTS_SERVICE_URL",
                format!("https://{MATRIX_DOMAIN}:{port}/livekit/jwt"),
            ),
        ],
    )
    .await;
    let proxy = nginx(port, &pki, &synapse, &jwt, &sfu, |t| t);
    let (code, report) = doctor(port, &pki, Some(&token)).await;
    assert_eq!(code, 1);
    let failed = ids(&report, "fail");
    for id in [
        "jwt-route-shadowed",
        "turn-uri-no-transport",
        "turn-secret-mismatch",
    ] {
        assert!(
            failed.contains(&id.to_owned()),
            "{id} not named: {report:#}"
        );
    }
    assert!(
        summary(&report, "jwt-route-shadowed").contains("HTTP 404"),
        "{report:#}"
    );
    assert!(
        ids(&report, "ok").contains(&"transports".to_owned()),
        "{report:#}"
    );
    drop(proxy);
    drop(jwt);

    // The same route with the right URL: transports and the JWT service pass.
    let jwt = service(
        &sfu,
        &synapse,
        &[
            (
                "LIVEKIT_URL",
                format!("wss://{RTC_DOMAIN}:{port}/livekit/sfu"),
            ),
            (
                "LIVEKIT_RTC_TRANSPORTS_SERVICE_URL",
                format!("https://{RTC_DOMAIN}:{port}/livekit/jwt"),
            ),
        ],
    )
    .await;
    let _proxy = nginx(port, &pki, &synapse, &jwt, &sfu, |t| t);
    let (_, report) = doctor(port, &pki, Some(&token)).await;
    let failed = ids(&report, "fail");
    assert!(
        !failed
            .iter()
            .any(|id| id.starts_with("transports") || id.starts_with("jwt")),
        "{report:#}"
    );
    assert!(
        ids(&report, "ok").contains(&"livekit-token".to_owned()),
        "{report:#}"
    );
    let _ = &pki.dir;
}
