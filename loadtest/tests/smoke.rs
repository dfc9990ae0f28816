//! CI smoke runs of the real `loadtest` binary, a couple of seconds per mode, against the
//! real `turn-server` and `lk-jwt-service` binaries of the same target directory (built
//! first if missing).
//! Not a benchmark: it checks that every mode moves packets without failures.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use turn_proto::codec::{Class, Message, MessageWriter, Method, TransactionId};

const SECRET: &str = "smoke-secret";

fn loadtest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
}

/// `target/<profile>` of this test binary (`target/<profile>/deps/smoke-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The binary `bin` of package `package` next to ours, built with cargo when it is not
/// there yet (a dev-dependency cannot provide another package's binary).
fn sibling_binary(package: &str, bin: &str) -> PathBuf {
    let dir = profile_dir();
    let path = dir.join(bin);
    if !path.exists() {
        let target_dir = dir.parent().expect("target dir");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", package])
            .env("CARGO_TARGET_DIR", target_dir);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    assert!(path.exists(), "no {bin} at {}", path.display());
    path
}

struct Server {
    child: Child,
    addr: SocketAddr,
    /// TLS listener (self-signed certificate).
    tls_addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (the server listens on both).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("ephemeral port");
        let port = udp.local_addr().expect("local address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether a STUN Binding request gets a success answer.
fn answers_binding(addr: SocketAddr) -> bool {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut req = Vec::with_capacity(20);
    MessageWriter::new(
        &mut req,
        Method::BINDING,
        Class::Request,
        TransactionId([9; 12]),
    );
    if sock.send_to(&req, addr).is_err() {
        return false;
    }
    let mut buf = [0; 1500];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Message::parse(&buf[..n]).is_ok_and(|m| m.class() == Class::Success),
        Err(_) => false,
    }
}

fn start_server() -> Server {
    let bin = sibling_binary("turn-server", "turn-server");
    let (port, tls_port) = (free_port(), free_port());
    let dir =
        std::env::temp_dir().join(format!("loadtest-smoke-tls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("self-signed certificate");
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("cert.pem");
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).expect("key.pem");
    let child = Command::new(bin)
        .args([
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            &format!("--listening-port={port}"),
            "--min-port=42000",
            "--max-port=42999",
            "--realm=example.org",
            "--use-auth-secret",
            &format!("--static-auth-secret={SECRET}"),
            "--allow-loopback-peers",
            &format!("--tls-listening-port={tls_port}"),
            &format!("--cert={}", dir.join("cert.pem").display()),
            &format!("--pkey={}", dir.join("key.pem").display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turn-server");
    let server = Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tls_addr: SocketAddr::from(([127, 0, 0, 1], tls_port)),
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers_binding(server.addr) || TcpStream::connect(server.tls_addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "turn-server did not answer on {}",
            server.addr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Runs loadtest with `args` plus `--json`, asserts success and returns the JSON.
fn run_json(args: &[&str]) -> Value {
    let dir = std::env::temp_dir().join(format!("loadtest-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join(format!(
        "{}.json",
        args.join("_").replace(['/', ':', '.'], "-")
    ));
    let out = loadtest()
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run loadtest");
    assert!(
        out.status.success(),
        "loadtest {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).expect("json written");
    serde_json::from_str(&text).expect("valid json")
}

fn assert_traffic(v: &Value, what: &str) {
    let received = v["received"].as_u64().unwrap_or(0);
    assert!(received > 0, "{what}: nothing received: {v}");
    assert_eq!(
        v["failures"],
        serde_json::json!({}),
        "{what}: failures: {v}"
    );
    assert!(v["sent"].as_u64().unwrap_or(0) >= received, "{what}: {v}");
    assert!(
        v["latency_ms"]["count"].as_u64().unwrap_or(0) > 0,
        "{what}: {v}"
    );
}

#[test]
fn every_mode_against_turn_server() {
    let server = start_server();
    let addr = server.addr.to_string();
    let pid = server.child.id().to_string();
    let common = [
        "--server",
        &addr,
        "--secret",
        SECRET,
        "--clients",
        "4",
        "--rate",
        "200",
        "--size",
        "64",
        "--duration",
        "2s",
        "--drain",
        "500ms",
        "--server-pid",
        &pid,
    ];

    let channels = run_json(&[&["turn"][..], &common].concat());
    assert_traffic(&channels, "turn channels");
    assert_eq!(channels["framing"], "channel");
    assert_eq!(channels["setup"]["ok"], 4);
    assert!(channels["server_cpu_s"].is_number(), "{channels}");

    let send = run_json(&[&["turn", "--send"][..], &common].concat());
    assert_traffic(&send, "turn --send");
    assert_eq!(send["framing"], "send");

    let c2c = run_json(&[&["turn", "--c2c"][..], &common].concat());
    assert_traffic(&c2c, "turn --c2c");
    assert_eq!(c2c["topology"], "c2c");

    let alloc = run_json(&[
        "alloc",
        "--server",
        &addr,
        "--secret",
        SECRET,
        "--count",
        "50",
        "--hold",
        "500ms",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(alloc["allocations"]["ok"], 50, "{alloc}");
    assert_eq!(alloc["deallocated"], 50, "{alloc}");
    assert_eq!(alloc["failures"], serde_json::json!({}), "{alloc}");
    assert!(alloc["rss_held_kib"].as_u64().unwrap_or(0) > 0, "{alloc}");

    // A wrong secret is reported as 401 failures, not as success.
    let out = loadtest()
        .args([
            "alloc", "--server", &addr, "--secret", "wrong", "--count", "2", "--hold", "0s",
        ])
        .output()
        .expect("run loadtest");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("allocate:stun-401: 2"), "{text}");
}

#[test]
fn turn_over_tcp_and_tls() {
    let server = start_server();
    let pid = server.child.id().to_string();
    let common = [
        "--secret",
        SECRET,
        "--clients",
        "4",
        "--rate",
        "200",
        "--size",
        "61",
        "--duration",
        "2s",
        "--drain",
        "500ms",
        "--server-pid",
        &pid,
    ];
    let addr = server.addr.to_string();
    let tcp = run_json(
        &[
            &["turn", "--server", &addr, "--transport", "tcp"][..],
            &common,
        ]
        .concat(),
    );
    assert_traffic(&tcp, "turn over tcp");
    assert_eq!(tcp["mode"], "turn-tcp");
    assert_eq!(tcp["setup"]["ok"], 4, "{tcp}");

    let tls_addr = server.tls_addr.to_string();
    let tls = [
        "turn",
        "--server",
        &tls_addr,
        "--transport",
        "tls",
        "--insecure-tls",
    ];
    let channels = run_json(&[&tls[..], &common].concat());
    assert_traffic(&channels, "turn over tls");
    assert_eq!(channels["mode"], "turn-tls");
    let send = run_json(&[&tls[..], &["--send"], &common].concat());
    assert_traffic(&send, "turn over tls with Send indications");
    let c2c = run_json(&[&tls[..], &["--c2c"], &common].concat());
    assert_traffic(&c2c, "turn over tls client to client");
}

#[test]
fn forward_baseline_moves_packets() {
    let v = run_json(&[
        "forward",
        "--clients",
        "4",
        "--rate",
        "200",
        "--size",
        "64",
        "--duration",
        "2s",
        "--drain",
        "500ms",
    ]);
    assert_traffic(&v, "forward");
    assert!(v["server_cpu_s"].is_number(), "{v}");
    // Flat out, windowed: as fast as replies come back, never more than 64 unanswered.
    let flat = run_json(&[
        "forward",
        "--clients",
        "1",
        "--rate",
        "0",
        "--inflight",
        "64",
        "--size",
        "1000",
        "--duration",
        "1s",
        "--drain",
        "500ms",
    ]);
    assert_traffic(&flat, "forward flat out");
    assert_eq!(flat["rate_per_client"], 0);
}

#[test]
fn jwt_mode_against_lk_jwt_service() {
    let bin = sibling_binary("lk-jwt-service", "lk-jwt-service");
    let bin = bin.to_str().expect("utf-8 path");
    let common = [
        "jwt",
        "--spawn",
        bin,
        "--concurrency",
        "4",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
    ];
    let reused = run_json(&common);
    let ok = reused["ok"].as_u64().unwrap_or(0);
    assert!(ok > 0, "no token issued: {reused}");
    assert_eq!(reused["requests"].as_u64(), Some(ok), "{reused}");
    assert_eq!(reused["errors"], serde_json::json!({}), "{reused}");
    assert!(reused["latency_ms"]["p99"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(reused["service_cpu_ms_per_request"].is_number(), "{reused}");
    // lk-jwt-service reuses a verified token (60 s by default): after the warm-up, the
    // homeserver is not asked again.
    assert!(
        reused["homeserver_requests"].as_u64().unwrap_or(u64::MAX) < ok,
        "{reused}"
    );

    // Fresh tokens: no cache can answer, every request reaches the homeserver.
    let fresh = run_json(&[&common[..], &["--fresh-tokens"]].concat());
    assert_eq!(fresh["errors"], serde_json::json!({}), "{fresh}");
    assert!(fresh["ok"].as_u64().unwrap_or(0) > 0, "{fresh}");
    assert_eq!(fresh["homeserver_requests"], fresh["requests"], "{fresh}");
}

#[test]
fn bad_input_is_refused_clearly() {
    let cases: [(&[&str], &str); 10] = [
        (
            &["turn", "--server", "192.0.2.1:3478", "--secret", "x"],
            "--allow-remote",
        ),
        (
            &["alloc", "--secret", "x", "--transport", "tcp"],
            "not supported by this loadtest build yet",
        ),
        (
            &["turn", "--secret", "x", "--transport", "tls"],
            "needs --insecure-tls",
        ),
        (
            &["turn", "--secret", "x", "--transport", "tcp", "--rate", "0"],
            "UDP only",
        ),
        (
            &["turn", "--secret", "x", "--clinets", "3"],
            "unknown flag --clinets",
        ),
        (&["turn", "--secret", "x", "--size", "8"], "--size must be"),
        (
            &["alloc", "--secret", "x", "--count", "0"],
            "--count must be",
        ),
        (&["nonsense"], "unknown mode"),
        (
            &["jwt", "--service", "http://192.0.2.1:8080"],
            "loopback only",
        ),
        (&["jwt"], "exactly one of --spawn"),
    ];
    for (args, expected) in cases {
        let out = loadtest().args(args).output().expect("run loadtest");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
