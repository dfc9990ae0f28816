//! The README's first command: `turn-server` with no configuration starts a loopback-only
//! relay with a generated secret, prints a credential and a `turnutils_uclient` line that
//! works, and `turn-server healthcheck` reports it healthy.

mod support;

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn healthcheck(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_turn-server"))
        .args(["healthcheck", "-n", &format!("--listening-port={port}")])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn embedded_default_prints_a_working_credential() {
    let port = free_udp_port();
    let base = 20_000 + (port % 2_000) * 10;
    assert!(!healthcheck(port), "nothing listens yet");
    let mut child = Command::new(env!("CARGO_BIN_EXE_turn-server"))
        .args([
            "-n",
            &format!("--listening-port={port}"),
            &format!("--min-port={base}"),
            &format!("--max-port={}", base + 9),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut command = None;
    let mut secret = None;
    while command.is_none() {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("banner within 10 s");
        if let Some(rest) = line.trim().strip_prefix("shared secret") {
            secret = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.trim().starts_with("turnutils_uclient -y") {
            command = Some(line.trim().to_owned());
        }
    }
    let secret = secret.expect("secret printed");
    assert_eq!(secret.len(), 32);
    let command = command.unwrap();
    assert!(command.contains(&format!("-W {secret}")), "{command}");
    assert!(
        command.ends_with(&format!("-p {port} 127.0.0.1")),
        "{command}"
    );
    assert!(healthcheck(port), "healthcheck sees the running server");

    // Run the printed command as a user would (with its own arguments).
    let args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect();
    let text = support::run_bounded("turnutils_uclient", &args, Duration::from_secs(120)).output;
    let summary = support::parse_summary(&text)
        .unwrap_or_else(|| panic!("no summary in uclient output:\n{text}"));
    let (sent, received) = (summary.sent_msgs, summary.recv_msgs);
    assert!(sent > 0, "{text}");
    assert_eq!(
        received, sent,
        "every message relayed client to client:\n{text}"
    );
}
