//! `turn-server --check-config` and start-up as an operator (or systemd's
//! `ExecStartPre`) runs them: what is wrong makes the binary exit non-zero with a message
//! naming the file, line or option.

use std::process::{Command, Output};

fn turn_server(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_turn-server"))
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// A file named with `-c` that is not there (coturn: a warning, then defaults; a systemd
/// `ExecStartPre=turn-server --check-config -c ...` passed on a typo'd path).
#[test]
fn a_missing_config_file_is_an_error() {
    let missing = std::env::temp_dir().join(format!("turn-missing-{}.conf", std::process::id()));
    let missing = missing.to_str().unwrap();
    for args in [
        vec!["--check-config", "-c", missing],
        vec!["-c", missing, "--listening-port=0"],
    ] {
        let output = turn_server(&args);
        let shown = text(&output);
        assert!(!output.status.success(), "{args:?}: {shown}");
        assert!(
            shown.contains(&format!("configuration file {missing} not found")),
            "{args:?}: {shown}"
        );
        assert!(!shown.contains("Configuration OK"), "{shown}");
    }
}

/// The private half of `external-ip=PUBLIC/PRIVATE` must be an address of this machine,
/// as `relay-ip` must (TEST-NET-2 is never assigned to a real machine).
#[test]
fn an_external_ip_private_half_of_another_machine_is_an_error() {
    let mapping = ["-n", "--no-tls", "-X", "203.0.113.5/198.51.100.77"];
    let output = turn_server(&[&["--check-config"][..], &mapping[..]].concat());
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains(
            "error: command line argument 4: external-ip: 198.51.100.77 (the private half of \
             203.0.113.5/198.51.100.77) is not an address of this machine"
        ),
        "{shown}"
    );
    // Starting refuses it the same way, before binding anything.
    let output = turn_server(&[&mapping[..], &["--listening-ip=127.0.0.1"][..]].concat());
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(shown.contains("198.51.100.77 (the private half"), "{shown}");
    // With this machine's address it passes.
    let output = turn_server(&["--check-config", "-n", "-X", "203.0.113.5/127.0.0.1"]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn a_typo_gets_the_option_it_meant() {
    let output = turn_server(&["--check-config", "-n", "--listen-port=3478"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("--listen-port: unknown option (did you mean `listening-port`?)"),
        "{shown}"
    );
}
